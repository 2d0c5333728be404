//! `cardstream migrate`, `replay`, `verify` and `users` as an operator (or a script) runs
//! them: data on stdout, messages on stderr, exit statuses that say what happened.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;

use cardstream_store::{IncomingEvent, Position, Store};
use cardstream_testbed::TestDatabase;
use common::simulated;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// What a command printed, and how it ended.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn run_in(url: &str, args: &[&str], stdin: Option<&str>) -> Ran {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cardstream"))
        .args(args)
        .env("CARDSTREAM_DATABASE_URL", url)
        .env_remove("CARDSTREAM_USER_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let output = child.wait_with_output().await.unwrap();
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `email`'s stored hash verifies `password`.
async fn assert_signs_in(db: &TestDatabase, email: &str, password: &str) {
    let store = Store::connect(&db.url, 1).await.unwrap();
    let user = store.user_by_email(email).await.unwrap().unwrap();
    assert!(
        cardstream_api::verify_password(password, &user.password_hash),
        "{email}"
    );
}

/// Success and stderr, as most checks want them.
async fn run(db: &TestDatabase, args: &[&str]) -> (bool, String) {
    let ran = run_in(&db.url, args, None).await;
    (ran.code == 0, format!("{}{}", ran.stdout, ran.stderr))
}

#[tokio::test]
async fn migrate_then_replay_and_verify() {
    let db = TestDatabase::create().await;
    let (ok, out) = run(&db, &["migrate", "status"]).await;
    assert!(
        ok && out.contains("pending\tm20261125_000001_events_and_objects"),
        "{out}"
    );
    let (ok, out) = run(&db, &["migrate"]).await;
    assert!(
        ok && out.contains("applied\tm20261125_000002_rollups"),
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
    let drifted = run_in(&db.url, &["verify"], None).await;
    assert_eq!(
        drifted.code, 4,
        "drift has its own status: {}",
        drifted.stderr
    );
    assert!(drifted.stderr.contains("daily 2"), "{}", drifted.stderr);
    let (ok, out) = run(&db, &["replay", "--chunk", "100"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("replay: {0}/{0} events (100%)", events.len())),
        "{out}"
    );
    assert_eq!(store.table_digests().await.unwrap(), live);
    assert!(run(&db, &["verify"]).await.0);
    // At a terminal (`script` gives it one), a bar with the counts, rate and ETA instead.
    let command = format!("{} replay --chunk 100", env!("CARGO_BIN_EXE_cardstream"));
    let shown = std::process::Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .env("CARDSTREAM_DATABASE_URL", &db.url)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(shown.status.success());
    let shown = String::from_utf8_lossy(&shown.stdout);
    let bar = format!("{0}/{0} events", events.len());
    assert!(
        shown.contains("replay [") && shown.contains(&bar) && shown.contains("eta"),
        "{shown}"
    );

    let (ok, out) = run(&db, &["migrate", "down"]).await;
    assert!(
        ok && out.contains("pending\tm20261125_000001_events_and_objects"),
        "{out}"
    );
}

#[tokio::test]
async fn listings_go_to_stdout_as_text_or_json_and_messages_to_stderr() {
    let db = TestDatabase::create().await;
    let status = run_in(&db.url, &["migrate", "status"], None).await;
    assert_eq!(status.code, 0, "{}", status.stderr);
    let rows: Vec<&str> = status.stdout.lines().collect();
    assert!(rows.len() >= 2, "{}", status.stdout);
    assert!(
        rows.iter().all(|r| r.starts_with("pending\tm2026")),
        "{rows:?}"
    );
    let applied = run_in(&db.url, &["migrate", "--output", "json"], None).await;
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let json: Value = serde_json::from_str(&applied.stdout).unwrap();
    let list = json.as_array().unwrap();
    assert_eq!(list.len(), rows.len());
    assert!(
        list.iter()
            .all(|m| m["applied"] == true && m["name"].as_str().unwrap().starts_with("m2026"))
    );
    // Not a terminal: one line of progress at the end, on stderr.
    assert!(
        applied
            .stderr
            .contains(&format!("migrate: {0}/{0} migrations (100%)", rows.len())),
        "{}",
        applied.stderr
    );

    let password = "a long enough password";
    let added = run_in(
        &db.url,
        &[
            "users",
            "add",
            "--email",
            "ops@example.com",
            "--role",
            "admin",
        ],
        Some(&format!("{password}\n")),
    )
    .await;
    assert_eq!(added.code, 0, "{}", added.stderr);
    assert_eq!(added.stdout, "", "a message is not data");
    assert!(added.stderr.contains("added user ops@example.com (admin)"));
    let text = run_in(&db.url, &["users", "list"], None).await;
    assert_eq!(text.stderr, "");
    let columns: Vec<&str> = text.stdout.trim_end_matches('\n').split('\t').collect();
    assert_eq!(columns[1..], ["ops@example.com", "admin", ""]);
    let json = run_in(&db.url, &["users", "list", "--output", "json"], None).await;
    let users: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(users[0]["email"], "ops@example.com");
    assert_eq!(users[0]["role"], "admin");
    assert_eq!(users[0]["cardholders"], serde_json::json!([]));
    assert!(!json.stdout.contains(password) && !json.stderr.contains(password));
}

#[tokio::test]
async fn init_admin_creates_one_admin_once_and_shows_its_password_once() {
    let db = TestDatabase::create().await;
    assert_eq!(run_in(&db.url, &["migrate"], None).await.code, 0);
    let first = run_in(
        &db.url,
        &["users", "init-admin", "--email", "root@example.com"],
        None,
    )
    .await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let password = first.stdout.trim();
    assert_eq!(password.len(), 24, "{:?}", first.stdout);
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
    assert!(
        first.stderr.contains("created the admin root@example.com"),
        "{}",
        first.stderr
    );
    assert_signs_in(&db, "root@example.com", password).await;
    // Again: nothing to do, nothing shown.
    let again = run_in(
        &db.url,
        &["users", "init-admin", "--email", "other@example.com"],
        None,
    )
    .await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.stdout, "");
    assert!(
        again.stderr.contains("an admin exists (root@example.com)"),
        "{}",
        again.stderr
    );
    let store = Store::connect(&db.url, 1).await.unwrap();
    assert_eq!(store.users().await.unwrap().len(), 1);
}

#[tokio::test]
async fn exit_statuses_say_usage_unreachable_or_failed() {
    let unreachable = "postgres://cardstream@127.0.0.1:1/cardstream";
    for args in [&["migrate", "status"][..], &["verify"], &["users", "list"]] {
        let ran = run_in(unreachable, args, None).await;
        assert_eq!(ran.code, 3, "{args:?}: {}", ran.stderr);
        assert!(
            ran.stderr.contains("cannot connect to Postgres"),
            "{}",
            ran.stderr
        );
    }
    // A Kafka cluster that does not answer, for `topics`.
    let topics = Command::new(env!("CARGO_BIN_EXE_cardstream"))
        .args(["topics"])
        .env("CARDSTREAM_KAFKA_BROKERS", "127.0.0.1:1")
        .output()
        .await
        .unwrap();
    assert_eq!(
        topics.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&topics.stderr)
    );
    let usage = run_in(unreachable, &["migrate", "--no-such-flag"], None).await;
    assert_eq!(usage.code, 2, "{}", usage.stderr);
    let secret = run_in(
        unreachable,
        &["verify", "--database-url", "postgres://x:hunter2@db/x"],
        None,
    )
    .await;
    assert_eq!(secret.code, 2, "{}", secret.stderr);
    // An address the API would refuse at sign-in is a usage error, before any database work.
    let db = TestDatabase::create().await;
    for args in [
        &["users", "add", "--email", "not-an-address"][..],
        &["users", "init-admin", "--email", "ops @example.com"],
    ] {
        let bad = run_in(&db.url, args, Some("a-long-enough-password\n")).await;
        assert_eq!(bad.code, 2, "{args:?}: {}", bad.stderr);
        assert!(
            bad.stderr.contains("not an email address"),
            "{}",
            bad.stderr
        );
    }
    // Any other failure: 1.
    let short = run_in(
        &db.url,
        &["users", "add", "--email", "a@example.com"],
        Some("short\n"),
    )
    .await;
    assert_eq!(short.code, 1, "{}", short.stderr);
    assert!(
        short.stderr.contains("at least 12 characters"),
        "{}",
        short.stderr
    );
}

/// A database URL Postgres' driver cannot parse is refused with a message that names neither the
/// URL nor its password (sea-orm quotes an unparseable URL whole), and is not "unreachable".
#[tokio::test]
async fn a_bad_database_url_is_refused_without_showing_its_password() {
    for url in [
        "postgres://ops:hunter2-secret@[bad/cardstream",
        "notaurl:hunter2-secret",
        "postgres://ops:hunter2-secret@127.0.0.1:5432/cardstream?sslmode=bogus",
    ] {
        for args in [&["verify"][..], &["migrate", "status"], &["users", "list"]] {
            let ran = run_in(url, args, None).await;
            assert_eq!(ran.code, 1, "{url} {args:?}: {}", ran.stderr);
            assert!(
                !ran.stderr.contains("hunter2") && !ran.stdout.contains("hunter2"),
                "{args:?} showed the password: {}",
                ran.stderr
            );
        }
    }
    // A wrong password is not an unreachable database either, and is not retried.
    let admin = cardstream_testbed::admin_url();
    let server = admin
        .rsplit_once('@')
        .map_or("127.0.0.1:5432/postgres", |(_, s)| s);
    let wrong = format!("postgres://nosuchuser:wrong@{server}");
    let started = std::time::Instant::now();
    let ran = run_in(&wrong, &["migrate", "--wait-for-database", "30s"], None).await;
    assert_ne!(ran.code, 0, "{}", ran.stderr);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{}",
        ran.stderr
    );
}

/// At a terminal, the password is typed without echo: run under `script`, which gives the
/// command a pseudo-terminal and copies everything the terminal shows to its output.
#[tokio::test]
async fn a_password_typed_at_a_terminal_is_not_echoed() {
    let db = TestDatabase::create().await;
    assert_eq!(run_in(&db.url, &["migrate"], None).await.code, 0);
    let password = "typed-at-the-terminal-42";
    let command = format!(
        "{} users add --email tty@example.com --role admin",
        env!("CARGO_BIN_EXE_cardstream")
    );
    let mut child = Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .env("CARDSTREAM_DATABASE_URL", &db.url)
        .env_remove("CARDSTREAM_USER_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs the command on a pseudo-terminal");
    let mut input = child.stdin.take().unwrap();
    let mut terminal = child.stdout.take().unwrap();
    // Once the prompt is up, so that the terminal is in no-echo mode when the line comes.
    let mut seen = Vec::new();
    let prompted = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let mut chunk = [0u8; 1024];
        while !String::from_utf8_lossy(&seen).contains("password for") {
            let n = terminal.read(&mut chunk).await.unwrap();
            assert!(
                n > 0,
                "the command ended before asking: {}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    assert!(
        prompted.is_ok(),
        "no prompt: {}",
        String::from_utf8_lossy(&seen)
    );
    // The prompt is printed just before echo is turned off (rpassword writes it, then reads
    // without echo): a line sent the instant the prompt shows can beat that and be echoed by
    // the terminal, as a person typing never could (seen once in eight full runs).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    input
        .write_all(format!("{password}\r").as_bytes())
        .await
        .unwrap();
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        terminal.read_to_end(&mut seen),
    )
    .await
    .expect("the command ends")
    .unwrap();
    let output = child.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    let shown = String::from_utf8_lossy(&seen);
    assert!(shown.contains("password for tty@example.com:"), "{shown}");
    assert!(shown.contains("added user tty@example.com"), "{shown}");
    assert!(
        !shown.contains(password),
        "the password was echoed: {shown}"
    );
    assert_signs_in(&db, "tty@example.com", password).await;
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
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
            )
        }
    };
    let (ok, out) = run(&["migrate", "--create-database"]).await;
    assert!(
        ok && out.contains("created the database")
            && out.contains("applied\tm20261125_000002_rollups"),
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
