//! No wait on Postgres is unbounded. With a table locked by someone else, the aggregator's
//! writes give up at the lock timeout and are retried; past its stall bound the aggregator
//! reports not ready and says why; once the lock is gone it catches up with nothing lost.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::gateway::{free_addr, get, metric};
use common::{Setup, distinct, produce, simulated};
use sqlx::Connection;

#[tokio::test]
async fn a_locked_table_makes_the_aggregator_unready_with_the_reason_then_it_catches_up() {
    let setup = Setup::new(1).await;
    let admin = free_addr();
    let log = std::fs::File::create(setup.logs.path().join("aggregator.log")).unwrap();
    let _aggregator = setup
        .command(&[
            "aggregator",
            "--consumer-group",
            "locked",
            "--batch-wait",
            "20ms",
        ])
        .env("CARDSTREAM_ADMIN_LISTEN", admin.to_string())
        .env("CARDSTREAM_DATABASE_LOCK_TIMEOUT", "1s")
        .env("CARDSTREAM_BATCH_STALL_TIMEOUT", "2s")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let within = |seconds| Instant::now() + Duration::from_secs(seconds);

    let deadline = within(30);
    while get(admin, "/readyz")
        .await
        .is_none_or(|(status, _)| status != 200)
    {
        assert!(
            Instant::now() < deadline,
            "never ready:\n{}",
            setup.log("aggregator")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Someone else holds the table the aggregator must write to.
    let mut lock = sqlx::PgConnection::connect(&setup.db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut lock).await.unwrap();
    sqlx::query("LOCK TABLE authorizations IN ACCESS EXCLUSIVE MODE")
        .execute(&mut lock)
        .await
        .unwrap();
    let events = simulated(21, 4, 30);
    produce(&setup.kafka(), &events).await;

    let deadline = within(40);
    let why = loop {
        if let Some((503, body)) = get(admin, "/readyz").await
            && body.contains("lock_timeout")
        {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "still ready while its batch waits on the lock:\n{}",
            setup.log("aggregator")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (_, page) = get(admin, "/metrics").await.unwrap();
    let timeouts = metric(
        &page,
        "cardstream_database_failures_total",
        &["kind=\"lock_timeout\""],
    );
    let stalled = metric(&page, "cardstream_batch_stalled_seconds", &[]);
    eprintln!("not ready: {why:?}; lock timeouts counted: {timeouts}; stalled for {stalled} s");
    assert!(timeouts >= 1.0, "{page}");
    assert!(stalled >= 2.0, "{page}");
    assert_eq!(setup.count("SELECT count(*) FROM stripe_events").await, 0);

    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    setup
        .wait_for(
            "SELECT count(*) FROM stripe_events",
            distinct(&events),
            Duration::from_secs(60),
            &["aggregator"],
        )
        .await;
    let deadline = within(20);
    while get(admin, "/readyz")
        .await
        .is_none_or(|(status, _)| status != 200)
    {
        assert!(
            Instant::now() < deadline,
            "not ready again after catching up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, page) = get(admin, "/metrics").await.unwrap();
    assert_eq!(
        metric(
            &page,
            "cardstream_records_total",
            &["outcome=\"dead_letter\""]
        ),
        0.0,
        "a timed-out batch must be retried, not dead-lettered"
    );
}
