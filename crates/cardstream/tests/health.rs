//! The admin console's pipeline health on the real processes: a gateway, an aggregator and an
//! API, each a `cardstream` process of its own on a real broker and Postgres, reporting every
//! 300 ms. What `pipelineHealth` says equals what was sent, what the broker holds and what the
//! tables hold; a process stopped cleanly leaves the page, one killed shows as silent.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use cardstream_kafka::{EventProducer, OutgoingEvent, ProducerTuning};
use cardstream_store::Role;
use common::api::{ADMIN, ALICE, ApiProcess, PASSWORD, code, within};
use common::gateway::{GatewayProcess, now, post, post_all, signed, try_exchange};
use common::{Setup, distinct, simulated, terminate};
use serde_json::{Value, json};

const EVERY: &str = "300ms";

const HEALTH: &str = "{ pipelineHealth {
    at lastWebhookAt secondsSinceLastWebhook lastCommitAt
    webhooks { minute eventType count }
    rejections { minute reason signature count }
    records { new duplicate deadLetter }
    freshness { events p50Ms p99Ms }
    partitions { partition lag instance }
    deadLettersWaiting redrivesRequested
    components { component instance version ready notReady secondsSinceReport silent }
} }";

async fn health(api: &ApiProcess, token: &str) -> Value {
    let response = api.gql(Some(token), HEALTH, json!({})).await;
    assert!(response["errors"].is_null(), "{response}");
    response["data"]["pipelineHealth"].clone()
}

/// `rows` summed by `key`, as `{key: count}`.
fn sums(rows: &Value, key: &str) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for row in rows.as_array().unwrap() {
        *out.entry(row[key].as_str().unwrap().to_owned())
            .or_default() += row["count"].as_i64().unwrap();
    }
    out
}

/// `cardstream_build_info`'s labels on a process's /metrics, as the health page names a build.
fn build_of(metrics: &str) -> String {
    let line = metrics
        .lines()
        .find(|l| l.starts_with("cardstream_build_info{"))
        .unwrap();
    let label = |name: &str| {
        let start = line.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        line[start..].split('"').next().unwrap().to_owned()
    };
    format!("{} ({})", label("version"), label("revision"))
}

#[tokio::test]
async fn the_health_page_shows_what_each_process_counted_and_what_the_tables_hold() {
    let setup = Setup::new(2).await;
    let mut gateway = GatewayProcess::start(
        &setup,
        &[
            ("CARDSTREAM_DATABASE_URL", &setup.db.url),
            ("CARDSTREAM_STATUS_INTERVAL", EVERY),
        ],
    )
    .await;
    let mut aggregator = setup.aggregator_env(
        "health",
        "aggregator",
        &[("CARDSTREAM_STATUS_INTERVAL", EVERY)],
    );
    let api = ApiProcess::start_on(&setup.db.url, &["--status-interval", EVERY]).await;
    let hash = cardstream_api::hash_password(PASSWORD).unwrap();
    for (email, role) in [(ADMIN, Role::Admin), (ALICE, Role::Cardholder)] {
        setup
            .store
            .create_user(email, &hash, role, &[], "test")
            .await
            .unwrap();
    }
    let admin = api.login(ADMIN).await;
    let alice = api.login(ALICE).await;
    let started = now();

    // Webhooks of several types, the first sent twice.
    let events = simulated(5, 3, 10);
    post_all(gateway.addr, events.iter().chain(events.first())).await;
    let mut sent: BTreeMap<String, i64> = BTreeMap::new();
    for event in events.iter().chain(events.first()) {
        *sent.entry(event.kind.to_owned()).or_default() += 1;
    }
    // Refusals of three kinds: two forged signatures, one missing, one signed body not JSON.
    let forged = format!("t={},v1={}", now(), "0".repeat(64));
    let body = &events[1].body;
    let refusals = [
        post("/webhooks/stripe", &[("stripe-signature", &forged)], body),
        post("/webhooks/stripe", &[("stripe-signature", &forged)], body),
        post("/webhooks/stripe", &[], body),
        signed("/webhooks/stripe", b"{not json", now()),
    ];
    for request in refusals {
        let (status, _) = try_exchange(gateway.addr, &request).await.unwrap();
        assert_eq!(status / 100, 4);
    }
    // A poison record straight onto the topic: the aggregator dead-letters it.
    let producer = EventProducer::new(&setup.kafka(), ProducerTuning::default()).unwrap();
    let poison = OutgoingEvent {
        key: "poison",
        payload: b"\xff not an event",
        event_id: "",
        event_type: "",
        created: 0,
        received_at_ms: 0,
    };
    producer
        .send(&poison, Duration::from_secs(30))
        .await
        .unwrap();

    // Once everything is folded and reported, the figures are exact.
    let stored = distinct(&events);
    let posted = events.len() as i64 + 1;
    let settled = |h: &Value| {
        let total = sums(&h["webhooks"], "eventType").values().sum::<i64>();
        let partitions = h["partitions"].as_array().unwrap();
        h["records"]["new"] == stored
            && h["records"]["deadLetter"] == 1
            && total == posted
            && sums(&h["rejections"], "reason").values().sum::<i64>() == 4
            && partitions.len() == 2
            && partitions.iter().all(|p| p["lag"] == 0)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let h = loop {
        let h = health(&api, &admin).await;
        if settled(&h) {
            break h;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the health page did not settle in 60 s: {h}\n{}",
            setup.log("aggregator")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(sums(&h["webhooks"], "eventType"), sent, "{h}");
    let refused = sums(&h["rejections"], "reason");
    let expected: BTreeMap<String, i64> = [
        ("signature_mismatch", 2),
        ("signature_missing", 1),
        ("body_not_json", 1),
    ]
    .into_iter()
    .map(|(r, n)| (r.to_owned(), n))
    .collect();
    assert_eq!(refused, expected, "{h}");
    for row in h["rejections"].as_array().unwrap() {
        let signature = row["reason"].as_str().unwrap().starts_with("signature_");
        assert_eq!(row["signature"], signature, "{row}");
    }
    // Every record on the topic read once: stored, already stored, or dead-lettered.
    let offsets = cardstream_kafka::group_lag(&setup.kafka(), "health", &setup.topic)
        .await
        .unwrap();
    let on_topic: i64 = offsets.iter().map(|(p, low)| p.end - low).sum();
    let records = &h["records"];
    assert_eq!(
        setup.count("SELECT count(*) FROM stripe_events").await,
        records["new"].as_i64().unwrap()
    );
    assert_eq!(
        records["new"].as_i64().unwrap()
            + records["duplicate"].as_i64().unwrap()
            + records["deadLetter"].as_i64().unwrap(),
        on_topic,
        "{h}"
    );
    // Freshness: one sample per event the gateway stamped (not the poison record).
    assert_eq!(
        h["freshness"]["events"].as_i64().unwrap(),
        on_topic - 1,
        "{h}"
    );
    let (p50, p99) = (
        h["freshness"]["p50Ms"].as_f64().unwrap(),
        h["freshness"]["p99Ms"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 < 60_000.0, "{h}");
    assert_eq!(
        h["deadLettersWaiting"].as_i64().unwrap(),
        setup
            .count("SELECT count(*) FROM dead_letters WHERE redriven_at IS NULL")
            .await
    );
    assert_eq!(h["deadLettersWaiting"], 1);
    let last_webhook = h["secondsSinceLastWebhook"].as_f64().unwrap();
    assert!(last_webhook < (now() - started + 5) as f64, "{h}");
    assert!(!h["lastCommitAt"].is_null(), "{h}");

    // One row per process, each ready, named after its pid, running this build.
    let metrics = gateway.admin_get("/metrics").await.unwrap().1;
    let build = build_of(&metrics);
    let components = h["components"].as_array().unwrap();
    let names: Vec<&str> = components
        .iter()
        .map(|c| c["component"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["aggregator", "api", "gateway"], "{h}");
    for c in components {
        assert_eq!(c["ready"], true, "{c}");
        assert_eq!(c["silent"], false, "{c}");
        assert_eq!(c["version"], build.as_str(), "{c}");
    }
    assert!(
        components[2]["instance"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{}", gateway.pid())),
        "{h}"
    );

    // Platform admins only; the window is checked.
    let denied = api.gql(Some(&alice), HEALTH, json!({})).await;
    assert_eq!(code(&denied), "FORBIDDEN", "{denied}");
    for minutes in [0, 1_441] {
        let response = api
            .gql(
                Some(&admin),
                "query($m: Int) { pipelineHealth(minutes: $m) { at } }",
                json!({"m": minutes}),
            )
            .await;
        assert_eq!(code(&response), "BAD_USER_INPUT", "{response}");
    }

    // Stopped cleanly, the aggregator leaves the page; killed, the gateway goes silent.
    terminate(&mut aggregator).await;
    gateway.child.start_kill().unwrap();
    within(
        Duration::from_secs(10),
        "the page to show the stops",
        || {
            let (api, admin) = (&api, &admin);
            async move {
                let h = health(api, admin).await;
                let components = h["components"].as_array().unwrap().clone();
                components.iter().all(|c| c["component"] != "aggregator")
                    && components
                        .iter()
                        .any(|c| c["component"] == "gateway" && c["silent"] == true)
            }
        },
    )
    .await;
    let h = health(&api, &admin).await;
    assert!(h["partitions"].as_array().unwrap().is_empty(), "{h}");
}
