//! `cardstream migrate`, `replay` and `verify` as an operator runs them.

#![allow(clippy::unwrap_used)]

mod common;

use cardstream_store::{IncomingEvent, Position, Store};
use cardstream_testbed::TestDatabase;
use common::simulated;
use tokio::process::Command;

async fn run(db: &TestDatabase, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cardstream"))
        .args(args)
        .env("CARDSTREAM_DATABASE_URL", &db.url)
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn migrate_then_replay_and_verify() {
    let db = TestDatabase::create().await;
    let (ok, out) = run(&db, &["migrate", "status"]).await;
    assert!(
        ok && out.contains("pending m20261125_000001_events_and_objects"),
        "{out}"
    );
    let (ok, out) = run(&db, &["migrate"]).await;
    assert!(
        ok && out.contains("applied m20261125_000002_rollups"),
        "{out}"
    );

    let store = Store::connect(&db.url, 2).await.unwrap();
    let events: Vec<_> = simulated(41, 10, 200)
        .iter()
        .map(|e| IncomingEvent::parse(&e.body, 0, 0).unwrap())
        .collect();
    store
        .apply_batch(
            "g",
            "t",
            &events,
            &[Position {
                partition: 0,
                next_offset: 1,
            }],
        )
        .await
        .unwrap();
    let live = store.table_digests().await.unwrap();

    let (ok, out) = run(&db, &["verify"]).await;
    assert!(
        ok && out.contains("daily 0, category 0, merchant 0"),
        "{out}"
    );

    // A rollup goes wrong: verify says so and fails; replay repairs it.
    sqlx::query("UPDATE card_daily_spend SET spend = spend + 7 WHERE ctid = (SELECT min(ctid) FROM card_daily_spend)")
        .execute(store.pool())
        .await
        .unwrap();
    let (ok, out) = run(&db, &["verify"]).await;
    assert!(!ok && out.contains("daily 2"), "{out}");
    let (ok, out) = run(&db, &["replay", "--chunk", "100"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("{0}/{0} events (100%)", events.len())),
        "{out}"
    );
    assert_eq!(store.table_digests().await.unwrap(), live);
    assert!(run(&db, &["verify"]).await.0);

    let (ok, out) = run(&db, &["migrate", "down"]).await;
    assert!(
        ok && out.contains("pending m20261125_000001_events_and_objects"),
        "{out}"
    );
}

#[tokio::test]
async fn a_database_url_on_the_command_line_is_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_cardstream"))
        .args([
            "verify",
            "--database-url",
            "postgres://user:hunter2@db/cardstream",
        ])
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains("CARDSTREAM_DATABASE_URL") && !err.contains("hunter2"),
        "{err}"
    );
}

#[tokio::test]
async fn migrate_can_create_the_database() {
    let name = cardstream_testbed::unique_name("cardstream_created");
    let admin = cardstream_testbed::admin_url();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let run = |args: &'static [&'static str]| {
        let url = url.clone();
        async move {
            let output = Command::new(env!("CARGO_BIN_EXE_cardstream"))
                .args(args)
                .env("CARDSTREAM_DATABASE_URL", url)
                .output()
                .await
                .unwrap();
            (
                output.status.success(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        }
    };
    let (ok, out) = run(&["migrate", "--create-database"]).await;
    assert!(
        ok && out.contains("created the database")
            && out.contains("applied m20261125_000002_rollups"),
        "{out}"
    );
    // Idempotent.
    let (ok, out) = run(&["migrate", "--create-database"]).await;
    assert!(ok && !out.contains("created the database"), "{out}");
    let store = Store::connect(&admin, 1).await.unwrap();
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(store.pool())
        .await
        .unwrap();
}
