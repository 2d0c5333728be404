//! From a signed webhook to rows, and back to the gateway as spend for its limits.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cardstream_e2e::{Component, Pipeline, SECRET, WAIT, now};
use cardstream_gateway::RunningGateway;
use cardstream_simulator::SimulateArgs;
use cardstream_telemetry::CancellationToken;
use serde_json::{Value, json};

const CARD: &str = "ic_1Pgag5B7WZ01zgkWephORn8N";
/// Stripe waits 2 s for an authorization's answer, then decides without it. The contract, not
/// a performance figure: a decision that waited on a Postgres that is down would miss it by
/// the database's connect timeout.
const STRIPE_BUDGET: Duration = Duration::from_secs(2);

/// Sends `count` simulated deliveries over `cards` cards (as fast as they are answered) through
/// `gw`, every one accepted, and waits until all are stored.
async fn simulate(
    pipeline: &Pipeline,
    gw: &Component<RunningGateway>,
    count: u64,
    cards: usize,
    tune: impl FnOnce(&mut SimulateArgs),
) -> cardstream_simulator::Summary {
    let mut sim = SimulateArgs::new(format!("http://{}", gw.addr()), SECRET);
    sim.rate = 0.0;
    sim.count = Some(count);
    sim.cards = cards;
    tune(&mut sim);
    let summary = cardstream_simulator::run(sim, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(summary.failed, 0);
    pipeline
        .wait_for(
            "SELECT count(*) FROM stripe_events",
            summary.generated as i64,
        )
        .await;
    summary
}

#[tokio::test]
async fn signed_webhooks_become_rows_exactly_once() {
    let pipeline = Pipeline::start().await;
    let mut gw = pipeline.gateway(&[]).await;
    let mut aggregator = pipeline.aggregator("group-full").await;

    let summary = simulate(&pipeline, &gw, 1200, 25, |sim| {
        sim.duplicate_rate = 0.2;
        sim.reorder_window = 20;
    })
    .await;
    let stored: BTreeSet<String> = sqlx::query_scalar("SELECT event_id FROM stripe_events")
        .fetch_all(pipeline.store.pool())
        .await
        .unwrap()
        .into_iter()
        .collect();
    let accepted: BTreeSet<String> = summary.accepted_ids.iter().cloned().collect();
    assert_eq!(stored, accepted, "every event answered 2xx is stored, once");
    assert!(pipeline.store.rollup_drift().await.unwrap().is_clean());
    assert_eq!(pipeline.count("SELECT count(*) FROM cards").await, 25);
    // Each decision the gateway gave is on its authorization row.
    let decided = pipeline
        .count("SELECT count(*) FROM authorizations WHERE cardstream_reason IS NOT NULL")
        .await;
    assert_eq!(decided as u64, summary.approved + summary.declined);
    aggregator.stop().await;
    gw.stop().await;
}

/// Simulated traffic through a gateway whose daily limit is low and whose policy allows
/// partial approvals: the simulator's fuel purchases (controllable amounts) over what a card's
/// day has left are approved for less, folded with the gateway's reason, and captured within
/// what was approved; every decision is on its row and the rollups agree with the rows.
#[tokio::test]
async fn partial_approvals_from_simulated_traffic_are_folded_and_captured_within_the_approval() {
    let pipeline = Pipeline::start().await;
    let mut gw = pipeline
        .gateway(&[
            "--database-url",
            pipeline.db.url.as_str(),
            // Low, so that many cards run close to it and their fuel purchases go over.
            "--policy-daily-limit",
            "usd=3000,eur=3000,gbp=3000,jpy=4000",
            "--policy-partial-approval",
            "true",
            // A loaded machine (the whole test command on 2 cores) must not turn the limits
            // into `spend_unknown` declines, which leave nothing to approve partially.
            "--spend-ledger-timeout",
            "5s",
        ])
        .await;
    let mut aggregator = pipeline.aggregator("group-partial").await;
    // A fixed world: whether a fuel purchase meets a nearly spent limit is the draws' doing.
    let summary = simulate(&pipeline, &gw, 1500, 60, |sim| sim.seed = 7).await;

    let partial = pipeline
        .count("SELECT count(*) FROM authorizations WHERE cardstream_reason = 'partially_approved'")
        .await;
    assert!(
        partial > 0,
        "{partial} partial approvals in {} decisions (seed 7)",
        summary.approved + summary.declined
    );
    // Each was approved for less than its request asked, and more than nothing.
    let wrong = pipeline
        .count(
            "SELECT count(*) FROM authorizations a JOIN stripe_events e
               ON e.event_type = 'issuing_authorization.request'
              AND e.payload->'data'->'object'->>'id' = a.id
             WHERE a.cardstream_reason = 'partially_approved'
               AND NOT (a.approved AND a.requested_amount > 0
                        AND a.requested_amount < (e.payload->'data'->'object'->'pending_request'->>'amount')::int8
                        AND (e.payload->'data'->'object'->'pending_request'->>'is_amount_controllable')::bool)",
        )
        .await;
    assert_eq!(
        wrong, 0,
        "partial approvals that asked for less, or were not controllable"
    );
    // Captured within the approval.
    let over = pipeline
        .count(
            "SELECT count(*) FROM authorizations a
             WHERE a.cardstream_reason = 'partially_approved'
               AND (SELECT coalesce(-sum(t.amount), 0) FROM transactions t
                    WHERE t.authorization_id = a.id AND t.amount < 0) > a.requested_amount",
        )
        .await;
    assert_eq!(over, 0);
    let decided = pipeline
        .count("SELECT count(*) FROM authorizations WHERE cardstream_reason IS NOT NULL")
        .await;
    assert_eq!(decided as u64, summary.approved + summary.declined);
    assert!(pipeline.store.rollup_drift().await.unwrap().is_clean());
    aggregator.stop().await;
    gw.stop().await;
}

/// Stripe's fixture authorization, asking for `amount` cents on the fixture card.
fn request(id: &str, amount: i64) -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/stripe/tests/fixtures/issuing.authorization.json"
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

/// Asks the gateway to decide; the answer must come within Stripe's budget.
async fn decide(gw: &Component<RunningGateway>, id: &str, amount: i64) -> (bool, String) {
    let body = request(id, amount);
    let answer = tokio::time::timeout(
        STRIPE_BUDGET,
        gw.post_signed("/webhooks/stripe/authorization", &body),
    )
    .await
    .unwrap_or_else(|_| panic!("{id}: no answer within Stripe's {STRIPE_BUDGET:?}"))
    .json();
    (
        answer["approved"].as_bool().unwrap(),
        answer["metadata"]["cardstream_reason"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

/// Waits for `n` more spend refreshes with `outcome` than the gateway had counted: a refresh
/// that started after the caller's change has then finished.
async fn refreshes(gw: &Component<RunningGateway>, outcome: &str, n: f64) {
    let labels = [("outcome", outcome)];
    let seen = gw.metric("cardstream_spend_refreshes_total", &labels);
    gw.wait_for_metric("cardstream_spend_refreshes_total", &labels, seen + n)
        .await;
}

#[tokio::test]
async fn spend_limits_use_the_folded_spend_and_follow_the_fail_mode_without_postgres() {
    spend_limits("shared").await;
}

#[tokio::test]
async fn spend_limits_in_memory_use_the_folded_spend_and_follow_the_fail_mode_when_stale() {
    spend_limits("local").await;
}

/// The limits through the whole pipeline with `--spend-ledger mode`: folded spend counts,
/// an approval counts at once, and without Postgres the fail mode decides.
async fn spend_limits(mode: &str) {
    let local = mode == "local";
    let pipeline = Pipeline::start().await;
    let fast = [
        "--spend-ledger",
        mode,
        "--spend-refresh-interval",
        "100ms",
        "--spend-max-staleness",
        "1s",
        "--spend-ledger-window",
        "30s",
    ];
    let mut extra = vec![
        "--database-url",
        pipeline.db.url.as_str(),
        "--policy-daily-limit",
        "usd=10000",
    ];
    extra.extend(fast);
    let mut gw = pipeline.gateway(&extra).await;
    let mut aggregator = pipeline.aggregator("group-limits").await;

    // $90 spent today, through the whole pipeline.
    for (i, amount) in [4000, 5000].iter().enumerate() {
        let body = capture(&format!("evt_cap_{i}"), *amount);
        assert_eq!(gw.post_signed("/webhooks/stripe", &body).await.status, 200);
    }
    pipeline
        .wait_for(
            "SELECT coalesce(sum(spend), 0)::int8 FROM card_daily_spend",
            9000,
        )
        .await;
    if local {
        // Two refreshes: the second began after the rows above were committed.
        refreshes(&gw, "ok", 2.0).await;
    }

    // $5 fits under the $100 daily limit; the next $6 does not, because the $5 just approved
    // counts at once, before it reaches Postgres.
    assert_eq!(decide(&gw, "evt_r1", 500).await.1, "approved");
    let (approved, reason) = decide(&gw, "evt_r2", 600).await;
    assert_eq!((approved, reason.as_str()), (false, "daily_limit_exceeded"));

    // Postgres goes away: the ledger cannot reserve (in memory: once the last good snapshot
    // is older than the 1 s staleness bound), and the default fail mode declines, within
    // Stripe's budget.
    pipeline.db.close().await;
    if local {
        refreshes(&gw, "error", 1.0).await;
        gw.wait_for_metric("cardstream_spend_age_seconds", &[], 1.1)
            .await;
    }
    let (approved, reason) = decide(&gw, "evt_r3", 100).await;
    assert_eq!((approved, reason.as_str()), (false, "spend_unknown"));
    pipeline.db.reopen().await;
    let deadline = Instant::now() + WAIT;
    // A new event each time: the gateway answers a repeated one as it did the first time.
    let mut attempt = 0;
    while decide(&gw, &format!("evt_r4_{attempt}"), 100).await.1 != "approved" {
        attempt += 1;
        assert!(
            Instant::now() < deadline,
            "decisions did not recover with Postgres"
        );
        if local {
            refreshes(&gw, "ok", 1.0).await;
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    gw.stop().await;

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
    let mut gw = pipeline.gateway(&extra).await;
    let (approved, reason) = decide(&gw, "evt_r5", 100).await;
    assert_eq!(
        (approved, reason.as_str()),
        (true, "approved_spend_unknown")
    );
    gw.stop().await;
    aggregator.stop().await;
}
