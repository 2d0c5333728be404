//! From a signed webhook to rows, and back to the gateway as spend for its limits.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cardstream_gateway::{GatewayArgs, RunningGateway};
use cardstream_simulator::SimulateArgs;
use cardstream_stripe::{WebhookSecret, signature};
use cardstream_telemetry::{CancellationToken, Registry};
use cardstream_testbed::{HttpResponse, Storage, post};
use clap::Parser;
use common::{Setup, TestAggregator, WAIT};
use serde_json::{Value, json};

const SECRET: &str = "whsec_full_path";
const CARD: &str = "ic_1Pgag5B7WZ01zgkWephORn8N";

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    args: GatewayArgs,
}

async fn gateway(setup: &Setup, extra: &[&str]) -> (RunningGateway, CancellationToken) {
    let brokers = setup.broker.brokers();
    let mut argv = vec![
        "gateway",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--kafka-brokers",
        &brokers,
        "--kafka-topic",
        &setup.topic,
        "--webhook-secrets",
        SECRET,
    ];
    argv.extend_from_slice(extra);
    let args = Wrapper::try_parse_from(argv).unwrap().args;
    let shutdown = CancellationToken::new();
    let running = cardstream_gateway::start(args, Registry::new(), shutdown.clone())
        .await
        .unwrap();
    (running, shutdown)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn post_signed(gw: &RunningGateway, path: &str, body: &str) -> HttpResponse {
    let header = signature::header(&[WebhookSecret::new(SECRET)], now(), body.as_bytes());
    post(
        &format!("http://{}{path}", gw.addr),
        &[("stripe-signature", &header)],
        body.to_owned(),
    )
    .await
}

#[tokio::test]
async fn signed_webhooks_become_rows_exactly_once() {
    let setup = Setup::new(Storage::Memory).await;
    let (gw, gw_stop) = gateway(&setup, &[]).await;
    let mut aggregator = TestAggregator::start(setup.args("group-full", &[])).await;

    let mut sim = SimulateArgs::new(format!("http://{}", gw.addr), SECRET);
    sim.rate = 0.0;
    sim.count = Some(1200);
    sim.cards = 25;
    sim.duplicate_rate = 0.2;
    sim.reorder_window = 20;
    let summary = cardstream_simulator::run(sim, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(summary.failed, 0);

    setup
        .wait_for(
            "SELECT count(*) FROM stripe_events",
            summary.generated as i64,
            WAIT,
        )
        .await;
    let stored: BTreeSet<String> = sqlx::query_scalar("SELECT event_id FROM stripe_events")
        .fetch_all(setup.store.pool())
        .await
        .unwrap()
        .into_iter()
        .collect();
    let accepted: BTreeSet<String> = summary.accepted_ids.iter().cloned().collect();
    assert_eq!(stored, accepted, "every event answered 2xx is stored, once");
    assert!(setup.store.rollup_drift().await.unwrap().is_clean());
    assert_eq!(setup.count("SELECT count(*) FROM cards").await, 25);
    // Each decision the gateway gave is on its authorization row.
    let decided = setup
        .count("SELECT count(*) FROM authorizations WHERE cardstream_reason IS NOT NULL")
        .await;
    assert_eq!(decided as u64, summary.approved + summary.declined);
    aggregator.stop().await;
    gw_stop.cancel();
    gw.wait().await.unwrap();
}

/// Stripe's fixture authorization, asking for `amount` cents on the fixture card.
fn request(id: &str, amount: i64) -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../stripe/tests/fixtures/issuing.authorization.json"
    );
    let mut auth: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    auth["id"] = json!(format!("iauth_{id}"));
    auth["created"] = json!(now());
    auth["pending_request"]["amount"] = json!(amount);
    json!({"id": id, "object": "event", "type": "issuing_authorization.request", "created": now(), "data": {"object": auth}}).to_string()
}

fn capture(id: &str, amount: i64) -> String {
    json!({"id": id, "object": "event", "type": "issuing_transaction.created", "created": now(), "data": {"object": {
        "id": format!("ipi_{id}"), "object": "issuing.transaction", "amount": -amount, "currency": "usd", "type": "capture",
        "card": CARD, "created": now(), "merchant_data": {"category": "bakeries", "name": "Bakery"}}}})
    .to_string()
}

async fn decide(gw: &RunningGateway, id: &str, amount: i64) -> (bool, String, Duration) {
    let started = Instant::now();
    let answer = post_signed(gw, "/webhooks/stripe/authorization", &request(id, amount))
        .await
        .json();
    (
        answer["approved"].as_bool().unwrap(),
        answer["metadata"]["cardstream_reason"]
            .as_str()
            .unwrap()
            .to_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn spend_limits_use_the_folded_spend_and_follow_the_fail_mode_when_it_is_stale() {
    let setup = Setup::new(Storage::Memory).await;
    let fast = [
        "--spend-refresh-interval",
        "100ms",
        "--spend-max-staleness",
        "1s",
        "--spend-ledger-window",
        "30s",
    ];
    let mut extra = vec![
        "--database-url",
        setup.db.url.as_str(),
        "--policy-daily-limit",
        "usd=10000",
    ];
    extra.extend(fast);
    let (gw, gw_stop) = gateway(&setup, &extra).await;
    let mut aggregator = TestAggregator::start(setup.args("group-limits", &[])).await;

    // $90 spent today, through the whole pipeline.
    for (i, amount) in [4000, 5000].iter().enumerate() {
        assert_eq!(
            post_signed(
                &gw,
                "/webhooks/stripe",
                &capture(&format!("evt_cap_{i}"), *amount)
            )
            .await
            .status,
            200
        );
    }
    setup
        .wait_for(
            "SELECT coalesce(sum(spend), 0)::int8 FROM card_daily_spend",
            9000,
            WAIT,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // $5 fits under the $100 daily limit; the next $6 does not, because the $5 just approved
    // counts at once, before it reaches Postgres.
    assert_eq!(decide(&gw, "evt_r1", 500).await.1, "approved");
    let (approved, reason, _) = decide(&gw, "evt_r2", 600).await;
    assert_eq!((approved, reason.as_str()), (false, "daily_limit_exceeded"));

    // Postgres goes away: the spend ages past 1 s and the default fail mode declines, at once.
    setup.db.close().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (approved, reason, took) = decide(&gw, "evt_r3", 100).await;
    assert_eq!((approved, reason.as_str()), (false, "spend_unknown"));
    assert!(
        took < Duration::from_millis(500),
        "a decision took {took:?} with Postgres down"
    );
    setup.db.reopen().await;
    let deadline = Instant::now() + WAIT;
    // A new event each time: the gateway answers a repeated one as it did the first time.
    let mut attempt = 0;
    while decide(&gw, &format!("evt_r4_{attempt}"), 100).await.1 != "approved" {
        attempt += 1;
        assert!(
            Instant::now() < deadline,
            "decisions did not recover with Postgres"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    gw_stop.cancel();
    gw.wait().await.unwrap();

    // Failing open instead: approved, and the reason says why.
    let mut extra = vec![
        "--database-url",
        "postgres://postgres@127.0.0.1:1/nowhere",
        "--policy-daily-limit",
        "usd=10000",
        "--policy-on-spend-unknown",
        "approve",
    ];
    extra.extend(fast);
    let (gw, gw_stop) = gateway(&setup, &extra).await;
    let (approved, reason, took) = decide(&gw, "evt_r5", 100).await;
    assert_eq!(
        (approved, reason.as_str()),
        (true, "approved_spend_unknown")
    );
    assert!(took < Duration::from_millis(500));
    gw_stop.cancel();
    gw.wait().await.unwrap();
    aggregator.stop().await;
}
