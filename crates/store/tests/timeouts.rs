//! Every pool bounds its waits inside Postgres: the settings reach each connection, and a
//! statement cut short by one is reported as that timeout, and as worth retrying.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use cardstream_store::{Store, Timeouts};
use cardstream_testbed::TestDatabase;

#[tokio::test]
async fn each_connection_carries_the_timeouts_and_a_timed_out_statement_is_transient() {
    let db = TestDatabase::create().await;
    let timeouts = Timeouts {
        statement: Duration::from_millis(300),
        lock: Duration::from_millis(200),
        idle_in_transaction: Duration::from_secs(7),
    };
    let store = Store::connect_with(&db.url, 2, timeouts).await.unwrap();
    for (setting, expected) in [
        ("statement_timeout", "300ms"),
        ("lock_timeout", "200ms"),
        ("idle_in_transaction_session_timeout", "7s"),
    ] {
        let value: String = sqlx::query_scalar(&format!("SHOW {setting}"))
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(value, expected, "{setting}");
    }
    let err: cardstream_store::Error = sqlx::query("SELECT pg_sleep(2)")
        .execute(store.pool())
        .await
        .unwrap_err()
        .into();
    assert_eq!(err.timeout(), Some("statement_timeout"), "{err}");
    assert!(err.is_transient());

    // The defaults, as every component gets them unless configured.
    let store = Store::connect(&db.url, 1).await.unwrap();
    let value: String = sqlx::query_scalar("SHOW lock_timeout")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(value, "10s");
}
