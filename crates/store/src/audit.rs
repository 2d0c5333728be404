//! The audit log (migration 0017): every admin action with who, when and what changed,
//! written in the transaction that makes the change, so that no change is without its entry.

use sea_orm::{ConnectionTrait, DatabaseTransaction, Statement};
use serde_json::Value;
use sqlx::PgConnection;

use crate::{Error, Store};

/// One admin action.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: Value,
}

/// Which entries to list: newest first, of one action or actor when given, before `before`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub actor: Option<String>,
    /// Entries older than this id (the previous page's last).
    pub before: Option<i64>,
    pub limit: u32,
}

const INSERT: &str =
    "INSERT INTO audit_log (actor, action, subject, details) VALUES ($1, $2, $3, $4)";

/// Records `action` by `actor` on `subject` in the transaction `conn` is in.
pub(crate) async fn audit_in(
    conn: &mut PgConnection,
    actor: &str,
    action: &str,
    subject: &str,
    details: Value,
) -> Result<(), Error> {
    sqlx::query(INSERT)
        .bind(actor)
        .bind(action)
        .bind(subject)
        .bind(details)
        .execute(conn)
        .await?;
    Ok(())
}

/// As [`audit_in`], in a sea-orm transaction.
pub(crate) async fn audit_in_orm(
    tx: &DatabaseTransaction,
    actor: &str,
    action: &str,
    subject: &str,
    details: Value,
) -> Result<(), Error> {
    tx.execute(Statement::from_sql_and_values(
        sea_orm::DatabaseBackend::Postgres,
        INSERT,
        [actor.into(), action.into(), subject.into(), details.into()],
    ))
    .await
    .map_err(Error::Orm)?;
    Ok(())
}

impl Store {
    /// Entries newest first, as `filter` says.
    pub async fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, Error> {
        Ok(sqlx::query_as(
            "SELECT id, extract(epoch FROM at)::int8 AS at, actor, action, subject, details
             FROM audit_log
             WHERE ($1::text IS NULL OR action = $1) AND ($2::text IS NULL OR actor = $2)
               AND ($3::int8 IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4",
        )
        .bind(&filter.action)
        .bind(&filter.actor)
        .bind(filter.before)
        .bind(i64::from(filter.limit))
        .fetch_all(self.pool())
        .await?)
    }
}
