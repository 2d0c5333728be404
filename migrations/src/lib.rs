//! cardstream's Postgres schema. Each migration is plain SQL (in `sql/`, commented), applied
//! and reverted through sea-orm-migration by `cardstream migrate`, never silently at start.

use sea_orm_migration::prelude::*;

/// All migrations, oldest first.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(SqlMigration {
                name: "m20261125_000001_events_and_objects",
                up: include_str!("../sql/0001_events_and_objects.up.sql"),
                down: include_str!("../sql/0001_events_and_objects.down.sql"),
            }),
            Box::new(SqlMigration {
                name: "m20261125_000002_rollups",
                up: include_str!("../sql/0002_rollups.up.sql"),
                down: include_str!("../sql/0002_rollups.down.sql"),
            }),
            Box::new(SqlMigration {
                name: "m20261125_000003_accounts_and_policy",
                up: include_str!("../sql/0003_accounts_and_policy.up.sql"),
                down: include_str!("../sql/0003_accounts_and_policy.down.sql"),
            }),
            Box::new(SqlMigration {
                name: "m20261130_000004_sessions_and_invitations",
                up: include_str!("../sql/0004_sessions_and_invitations.up.sql"),
                down: include_str!("../sql/0004_sessions_and_invitations.down.sql"),
            }),
            Box::new(SqlMigration {
                name: "m20261130_000005_stripe_sync",
                up: include_str!("../sql/0005_stripe_sync.up.sql"),
                down: include_str!("../sql/0005_stripe_sync.down.sql"),
            }),
            Box::new(SqlMigration {
                name: "m20261201_000006_connect_accounts",
                up: include_str!("../sql/0006_connect_accounts.up.sql"),
                down: include_str!("../sql/0006_connect_accounts.down.sql"),
            }),
            Box::new(SqlMigration {
                name: "m20261201_000007_invitation_accounts",
                up: include_str!("../sql/0007_invitation_accounts.up.sql"),
                down: include_str!("../sql/0007_invitation_accounts.down.sql"),
            }),
            Box::new(SqlMigration {
                name: "m20261201_000008_event_api_versions",
                up: include_str!("../sql/0008_event_api_versions.up.sql"),
                down: include_str!("../sql/0008_event_api_versions.down.sql"),
            }),
            Box::new(SqlMigration {
                name: "m20261201_000009_authorization_checks",
                up: include_str!("../sql/0009_authorization_checks.up.sql"),
                down: include_str!("../sql/0009_authorization_checks.down.sql"),
            }),
            Box::new(SqlMigration {
                name: "m20261201_000010_spend_reservations",
                up: include_str!("../sql/0010_spend_reservations.up.sql"),
                down: include_str!("../sql/0010_spend_reservations.down.sql"),
            }),
            Box::new(SqlMigration {
                name: "m20261201_000011_dispute_lifecycle",
                up: include_str!("../sql/0011_dispute_lifecycle.up.sql"),
                down: include_str!("../sql/0011_dispute_lifecycle.down.sql"),
            }),
            Box::new(SqlMigration {
                name: "m20261201_000012_wallet_tokens",
                up: include_str!("../sql/0012_wallet_tokens.up.sql"),
                down: include_str!("../sql/0012_wallet_tokens.down.sql"),
            }),
            Box::new(SqlMigration {
                name: "m20261201_000013_spend_reservation_batches",
                up: include_str!("../sql/0013_spend_reservation_batches.up.sql"),
                down: include_str!("../sql/0013_spend_reservation_batches.down.sql"),
            }),
            Box::new(SqlMigration {
                name: "m20261201_000014_dead_letters",
                up: include_str!("../sql/0014_dead_letters.up.sql"),
                down: include_str!("../sql/0014_dead_letters.down.sql"),
            }),
            Box::new(SqlMigration {
                name: "m20261201_000015_dead_letter_redrive_requests",
                up: include_str!("../sql/0015_dead_letter_redrive_requests.up.sql"),
                down: include_str!("../sql/0015_dead_letter_redrive_requests.down.sql"),
            }),
            Box::new(SqlMigration {
                name: "m20261201_000016_program_rollups",
                up: include_str!("../sql/0016_program_rollups.up.sql"),
                down: include_str!("../sql/0016_program_rollups.down.sql"),
            }),
            Box::new(SqlMigration {
                name: "m20261201_000017_audit_log",
                up: include_str!("../sql/0017_audit_log.up.sql"),
                down: include_str!("../sql/0017_audit_log.down.sql"),
            }),
            Box::new(SqlMigration {
                name: "m20261201_000018_event_log",
                up: include_str!("../sql/0018_event_log.up.sql"),
                down: include_str!("../sql/0018_event_log.down.sql"),
            }),
            Box::new(SqlMigration {
                name: "m20261201_000019_activity_changes",
                up: include_str!("../sql/0019_activity_changes.up.sql"),
                down: include_str!("../sql/0019_activity_changes.down.sql"),
            }),
            Box::new(SqlMigration {
                name: "m20261201_000020_pipeline_status",
                up: include_str!("../sql/0020_pipeline_status.up.sql"),
                down: include_str!("../sql/0020_pipeline_status.down.sql"),
            }),
            Box::new(SqlMigration {
                name: "m20261201_000021_rollup_windows",
                up: include_str!("../sql/0021_rollup_windows.up.sql"),
                down: include_str!("../sql/0021_rollup_windows.down.sql"),
            }),
        ]
    }
}

/// A migration written as SQL. Postgres runs DDL in transactions, so each direction applies
/// wholly or not at all.
struct SqlMigration {
    name: &'static str,
    up: &'static str,
    down: &'static str,
}

impl MigrationName for SqlMigration {
    fn name(&self) -> &str {
        self.name
    }
}

// `async_trait` needs the elided lifetime that rust_2018_idioms warns about.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for SqlMigration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(self.up).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(self.down)
            .await?;
        Ok(())
    }
}
