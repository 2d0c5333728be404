//! Dead letters, recorded and redriven, on the real processes: a gateway rolled out with a new
//! record key before the aggregators knew it has every record it writes dead-lettered
//! (`unauthenticated`); once the aggregators know the key, `cardstream dlq redrive` writes
//! them back, they fold, and the tables equal those of the same events delivered once.
//! Redriving one again, from the shell or as the console asks, changes nothing: events are
//! deduplicated by id.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::gateway::{GatewayProcess, post_all};
use common::{Setup, distinct, expected_digests, simulated, terminate};
use serde_json::Value;

const OLD_KEY: &str = "an-old-record-key-of-at-least-32-bytes";
const NEW_KEY: &str = "the-new-record-key-of-at-least-32-bytes";

/// `cardstream dlq <args>`, its JSON output when it prints some.
async fn dlq(setup: &Setup, args: &[&str]) -> Value {
    let mut all = vec!["dlq"];
    all.extend_from_slice(args);
    let out = setup.command(&all).output().await.unwrap();
    assert!(
        out.status.success(),
        "cardstream {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if all.contains(&"json") {
        serde_json::from_slice(&out.stdout).unwrap()
    } else {
        Value::Null
    }
}

#[tokio::test]
async fn dead_letters_are_redriven_once_their_cause_is_fixed_and_fold_exactly_once() {
    let setup = Setup::new(1).await;
    let gateway = GatewayProcess::start(&setup, &[("CARDSTREAM_RECORD_KEYS", NEW_KEY)]).await;
    let mut aggregator = setup.aggregator_env(
        "dlq",
        "aggregator-old",
        &[("CARDSTREAM_RECORD_KEYS", OLD_KEY)],
    );

    let events = simulated(41, 4, 12);
    post_all(gateway.addr, &events).await;
    let written = events.len() as i64;
    setup
        .wait_for(
            "SELECT count(*) FROM dead_letters",
            written,
            Duration::from_secs(60),
            &["aggregator-old"],
        )
        .await;
    assert_eq!(setup.count("SELECT count(*) FROM stripe_events").await, 0);

    let listed = dlq(&setup, &["list", "--limit", "1000", "--output", "json"]).await;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len() as i64, written);
    for letter in listed {
        assert_eq!(letter["reason"], "unauthenticated", "{letter}");
        assert_eq!(letter["source"]["partition"], 0);
        assert!(
            letter["event_id"].as_str().unwrap().starts_with("evt_"),
            "{letter}"
        );
        assert_eq!(letter["redriven_by"], Value::Null);
    }
    let first = listed.last().unwrap()["id"].as_i64().unwrap().to_string();
    let shown = dlq(&setup, &["show", &first, "--output", "json"]).await;
    let payload: Value = serde_json::from_str(shown["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload["id"], shown["event_id"], "{shown}");
    assert!(shown["headers"]["cardstream-mac"].is_string(), "{shown}");

    // The cause fixed: the aggregators learn the new key (and keep the old one).
    terminate(&mut aggregator).await;
    let both = format!("{NEW_KEY},{OLD_KEY}");
    let _aggregator = setup.aggregator_env(
        "dlq",
        "aggregator-both",
        &[("CARDSTREAM_RECORD_KEYS", both.as_str())],
    );
    dlq(&setup, &["redrive", "--all", "--by", "test-operator"]).await;
    let unique = distinct(&events);
    setup
        .wait_for(
            "SELECT count(*) FROM stripe_events",
            unique,
            Duration::from_secs(60),
            &["aggregator-both"],
        )
        .await;
    // Counts exact: the same tables as the events delivered once.
    let expected = expected_digests(&events).await;
    assert_eq!(setup.store.table_digests().await.unwrap(), expected);
    let waiting = dlq(&setup, &["list", "--output", "json"]).await;
    assert_eq!(waiting.as_array().unwrap().len(), 0, "{waiting}");
    let redriven = dlq(
        &setup,
        &["list", "--redriven", "--limit", "1000", "--output", "json"],
    )
    .await;
    assert!(
        redriven
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["redriven_by"] == "test-operator" && l["redrives"] == 1),
        "{redriven}"
    );

    // Redriven again: on the topic a second time, folded to nothing.
    dlq(
        &setup,
        &["redrive", "--id", &first, "--by", "test-operator"],
    )
    .await;
    let end = 2 * written + 1;
    setup
        .wait_for(
            "SELECT coalesce(sum(next_offset), 0)::int8 FROM consumer_positions",
            end,
            Duration::from_secs(60),
            &["aggregator-both"],
        )
        .await;
    assert_eq!(setup.store.table_digests().await.unwrap(), expected);
    let again = dlq(&setup, &["show", &first, "--output", "json"]).await;
    assert_eq!(again["redrives"], 2, "{again}");

    // Asked for in the console (the API records the request): the aggregator writes it back
    // and marks it with who asked; it folds to nothing as well.
    let id: i64 = first.parse().unwrap();
    setup
        .store
        .request_redrive(&[id], "console@example.com")
        .await
        .unwrap();
    setup
        .wait_for(
            &format!(
                "SELECT count(*) FROM dead_letters WHERE id = {id} AND redrives = 3
                   AND redriven_by = 'console@example.com' AND redrive_requested_at IS NULL"
            ),
            1,
            Duration::from_secs(30),
            &["aggregator-both"],
        )
        .await;
    setup
        .wait_for(
            "SELECT coalesce(sum(next_offset), 0)::int8 FROM consumer_positions",
            end + 1,
            Duration::from_secs(60),
            &["aggregator-both"],
        )
        .await;
    assert_eq!(setup.store.table_digests().await.unwrap(), expected);
}
