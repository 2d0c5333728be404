//! The schema migrates up and down cleanly, and again.

#![allow(clippy::unwrap_used)]

mod common;

use cardstream_store::Store;
use cardstream_testbed::TestDatabase;

async fn tables(store: &Store) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_name <> 'seaql_migrations' ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
}

async fn columns(store: &Store, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = $1 ORDER BY 1",
    )
    .bind(table)
    .fetch_all(store.pool())
    .await
    .unwrap()
}

async fn functions(store: &Store) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT routine_name::text FROM information_schema.routines
         WHERE routine_schema = 'public' AND routine_name LIKE 'reserve_spend%' ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn migrations_go_up_down_and_up_again() {
    let db = TestDatabase::create().await;
    let store = Store::connect(&db.url, 2).await.unwrap();
    assert!(tables(&store).await.is_empty());
    assert!(
        store
            .migration_status()
            .await
            .unwrap()
            .iter()
            .all(|(_, applied)| !applied)
    );

    store.migrate_up().await.unwrap();
    let all = tables(&store).await;
    for expected in [
        "authorizations",
        "card_category_spend",
        "card_daily_spend",
        "card_merchant_spend",
        "cardholders",
        "cards",
        "consumer_positions",
        "disputes",
        "spend_reservations",
        "stripe_events",
        "tokens",
        "stripe_sync_cursors",
        "transactions",
        "user_accounts",
        "program_category_daily",
        "program_merchant_daily",
        "program_outcome_daily",
        "audit_log",
    ] {
        assert!(
            all.iter().any(|t| t == expected),
            "{expected} missing from {all:?}"
        );
    }
    assert!(
        store
            .migration_status()
            .await
            .unwrap()
            .iter()
            .all(|(_, applied)| *applied)
    );
    // Up again is a no-op.
    store.migrate_up().await.unwrap();

    // 0021: the overview's windows.
    for table in ["rollup_window_state", "card_windows", "program_windows"] {
        assert!(tables(&store).await.iter().any(|t| t == table), "{table}");
    }
    store.migrate_down(Some(1)).await.unwrap();
    assert!(!tables(&store).await.iter().any(|t| t.ends_with("_windows")));
    // 0020: the pipeline's own status, for the health page.
    for table in ["pipeline_components", "pipeline_counts"] {
        assert!(tables(&store).await.iter().any(|t| t == table), "{table}");
    }
    store.migrate_down(Some(1)).await.unwrap();
    assert!(
        !tables(&store)
            .await
            .iter()
            .any(|t| t.starts_with("pipeline_"))
    );
    // 0019: the live dashboard's change feed.
    assert!(tables(&store).await.iter().any(|t| t == "activity_changes"));
    store.migrate_down(Some(1)).await.unwrap();
    assert!(!tables(&store).await.iter().any(|t| t == "activity_changes"));
    // 0018: the event log's generated columns.
    assert!(
        columns(&store, "stripe_events")
            .await
            .iter()
            .any(|c| c == "card_id")
    );
    store.migrate_down(Some(1)).await.unwrap();
    assert!(
        !columns(&store, "stripe_events")
            .await
            .iter()
            .any(|c| c == "card_id")
    );
    // 0017: the audit log, append-only.
    assert!(tables(&store).await.iter().any(|t| t == "audit_log"));
    store.migrate_down(Some(1)).await.unwrap();
    assert!(!tables(&store).await.iter().any(|t| t == "audit_log"));
    // 0016: the program rollups, filled from the rows already there.
    assert!(
        tables(&store)
            .await
            .iter()
            .any(|t| t == "program_outcome_daily")
    );
    store.migrate_down(Some(1)).await.unwrap();
    assert!(
        !tables(&store)
            .await
            .iter()
            .any(|t| t == "program_outcome_daily")
    );
    // 0015: redrives asked for in the console.
    assert!(
        columns(&store, "dead_letters")
            .await
            .iter()
            .any(|c| c == "redrive_requested_at")
    );
    store.migrate_down(Some(1)).await.unwrap();
    assert!(
        !columns(&store, "dead_letters")
            .await
            .iter()
            .any(|c| c == "redrive_requested_at")
    );
    // 0014: dead letters.
    assert!(tables(&store).await.iter().any(|t| t == "dead_letters"));
    store.migrate_down(Some(1)).await.unwrap();
    assert!(!tables(&store).await.iter().any(|t| t == "dead_letters"));
    // 0013: the ledger's batches; 0010's single reservation stays for a rolling upgrade.
    assert_eq!(
        functions(&store).await,
        ["reserve_spend", "reserve_spend_batch"]
    );
    store.migrate_down(Some(1)).await.unwrap();
    assert_eq!(functions(&store).await, ["reserve_spend"]);
    // 0012: wallet tokens, and the token of each authorization.
    store.migrate_down(Some(1)).await.unwrap();
    assert!(!tables(&store).await.iter().any(|t| t == "tokens"));
    let left = columns(&store, "authorizations").await;
    assert!(!left.iter().any(|c| c == "token_id"), "{left:?}");
    // 0011: a dispute's loss reason and the funds it moved.
    store.migrate_down(Some(1)).await.unwrap();
    let left = columns(&store, "disputes").await;
    assert!(
        !left
            .iter()
            .any(|c| c.starts_with("funds_") || c == "loss_reason"),
        "{left:?}"
    );
    // 0010: the spend limits' shared ledger.
    store.migrate_down(Some(1)).await.unwrap();
    let left = tables(&store).await;
    assert!(!left.iter().any(|t| t == "spend_reservations"), "{left:?}");
    assert!(
        columns(&store, "authorizations")
            .await
            .iter()
            .any(|c| c == "network_data")
    );
    store.migrate_down(Some(1)).await.unwrap();
    let left = columns(&store, "authorizations").await;
    assert!(
        !left
            .iter()
            .any(|c| c == "verification_data" || c == "network_data"),
        "{left:?}"
    );
    assert!(
        columns(&store, "stripe_events")
            .await
            .iter()
            .any(|c| c == "api_version")
    );
    store.migrate_down(Some(1)).await.unwrap();
    let left = columns(&store, "stripe_events").await;
    assert!(!left.iter().any(|c| c == "api_version"), "{left:?}");
    assert!(
        columns(&store, "invitations")
            .await
            .iter()
            .any(|c| c == "accounts")
    );
    store.migrate_down(Some(1)).await.unwrap();
    let left = columns(&store, "invitations").await;
    assert!(!left.iter().any(|c| c == "accounts"), "{left:?}");
    assert!(tables(&store).await.iter().any(|t| t == "user_accounts"));
    store.migrate_down(Some(1)).await.unwrap();
    let left = tables(&store).await;
    assert!(!left.iter().any(|t| t == "user_accounts"), "{left:?}");
    assert!(left.iter().any(|t| t == "stripe_sync_cursors"), "{left:?}");
    store.migrate_down(Some(1)).await.unwrap();
    let left = tables(&store).await;
    assert!(!left.iter().any(|t| t == "stripe_sync_cursors"), "{left:?}");
    assert!(left.iter().any(|t| t == "sessions"), "{left:?}");
    store.migrate_down(Some(1)).await.unwrap();
    let left = tables(&store).await;
    assert!(
        !left.iter().any(|t| t == "sessions" || t == "invitations"),
        "{left:?}"
    );
    assert!(left.iter().any(|t| t == "users"), "{left:?}");
    store.migrate_down(Some(1)).await.unwrap();
    assert!(!tables(&store).await.iter().any(|t| t == "users"));
    store.migrate_down(Some(1)).await.unwrap();
    assert!(
        !tables(&store)
            .await
            .iter()
            .any(|t| t.starts_with("card_") && t.ends_with("_spend"))
    );
    assert!(tables(&store).await.iter().any(|t| t == "stripe_events"));

    store.migrate_down(None).await.unwrap();
    assert!(
        tables(&store).await.is_empty(),
        "{:?}",
        tables(&store).await
    );

    store.migrate_up().await.unwrap();
    assert_eq!(tables(&store).await, all);
}

/// Two `cardstream migrate` at once (two migration Jobs while the operator rolls, or a Job and
/// a hand-run one): both succeed, and each migration is applied once.
#[tokio::test]
async fn concurrent_migrations_apply_each_migration_once() {
    let db = TestDatabase::create().await;
    let stores: Vec<Store> = futures_util::future::join_all(
        (0..4).map(|_| async { Store::connect(&db.url, 2).await.unwrap() }),
    )
    .await;
    let results = futures_util::future::join_all(stores.iter().map(Store::migrate_up)).await;
    for result in &results {
        assert!(result.is_ok(), "{result:?}");
    }
    let status = stores[0].migration_status().await.unwrap();
    assert!(status.iter().all(|(_, applied)| *applied), "{status:?}");
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM seaql_migrations")
        .fetch_one(stores[0].pool())
        .await
        .unwrap();
    assert_eq!(recorded as usize, status.len());
}

/// Migration 0016 fills the program rollups from the rows already stored: taken down and up
/// again over a folded program, they equal a recomputation, and further folds keep them so.
#[tokio::test]
async fn the_program_rollups_are_filled_from_rows_already_stored() {
    let (_db, store) = common::store().await;
    let events = common::incoming(&common::simulated(5, 8, 300));
    let (first, rest) = events.split_at(events.len() / 2);
    common::ingest(&store, first, 100).await;
    // Down to before 0016: every migration after it, then it.
    let after_0016 = store
        .migration_status()
        .await
        .unwrap()
        .iter()
        .filter(|(name, _)| name.as_str() >= "m20261201_000017")
        .count() as u32;
    store.migrate_down(Some(after_0016 + 1)).await.unwrap();
    assert!(
        !tables(&store)
            .await
            .iter()
            .any(|t| t == "program_category_daily")
    );
    store.migrate_up().await.unwrap();
    let filled = common::count(&store, "SELECT count(*) FROM program_outcome_daily").await;
    assert!(filled > 0, "the migration filled the outcomes");
    common::assert_rollups_exact(&store).await;
    common::ingest(&store, rest, 100).await;
    common::assert_rollups_exact(&store).await;
}
