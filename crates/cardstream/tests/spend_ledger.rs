//! Spend limits across gateway replicas: two `cardstream gateway` processes on one Postgres
//! reserve their approvals in the shared ledger, so a burst for one card split between them
//! never approves past its daily limit (each used to count only its own approvals, and two
//! replicas could approve up to twice the limit). Then the aggregator folds the approvals'
//! authorizations, the reservations are released in the same transactions, and the holds
//! count in their place: the limit still holds to the cent.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::Setup;
use common::gateway::{GatewayProcess, authorization_request, now, signed, try_exchange};
use futures_util::future::join_all;
use serde_json::{Value, json};

const ROUTE: &str = "/webhooks/stripe/authorization";
/// $100.00 a day.
const LIMIT: i64 = 10_000;
const REQUESTS: usize = 200;

/// An authorization request of its own (id `iauth_burst_{n}`, created now) for `amount` cents.
fn request(n: usize, amount: i64) -> Value {
    let mut event: Value = serde_json::from_slice(&authorization_request(
        &format!("evt_burst_{n}"),
        amount,
        "grocery_stores_supermarkets",
    ))
    .unwrap();
    event["data"]["object"]["id"] = json!(format!("iauth_burst_{n}"));
    event["data"]["object"]["created"] = json!(now());
    event
}

/// Stripe's `issuing_authorization.created` for a request approved for `amount`: a hold.
fn created(n: usize, amount: i64) -> Value {
    let mut event = request(n, amount);
    event["id"] = json!(format!("evt_created_{n}"));
    event["type"] = json!("issuing_authorization.created");
    let object = &mut event["data"]["object"];
    object["approved"] = json!(true);
    object["status"] = json!("pending");
    object["amount"] = json!(amount);
    object["pending_request"] = Value::Null;
    event
}

/// `(approved, reason)` of one request posted to `gateway`.
async fn ask(gateway: &GatewayProcess, n: usize, amount: i64) -> (bool, String) {
    let body = request(n, amount).to_string();
    let (status, answer) = try_exchange(gateway.addr, &signed(ROUTE, body.as_bytes(), now()))
        .await
        .expect("the gateway answers");
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    let reason = answer["metadata"]["cardstream_reason"]
        .as_str()
        .unwrap()
        .to_owned();
    (answer["approved"].as_bool().unwrap(), reason)
}

#[tokio::test]
async fn two_replicas_alternating_a_burst_never_approve_past_the_daily_limit() {
    let setup = Setup::new(1).await;
    let env = [
        ("CARDSTREAM_DATABASE_URL", setup.db.url.as_str()),
        ("CARDSTREAM_POLICY_DAILY_LIMIT", "usd=10000"),
        ("CARDSTREAM_POLICY_ON_SPEND_UNKNOWN", "decline"),
        // The test is about interleavings, not this machine's speed under 200 connections at
        // once: a reservation may take its time rather than decline for `spend_unknown`.
        ("CARDSTREAM_SPEND_LEDGER_TIMEOUT", "5s"),
    ];
    let replicas = [
        GatewayProcess::start(&setup, &env).await,
        GatewayProcess::start(&setup, &env).await,
    ];
    // Both deciding on spend (a $0.01 request of this card is approved, not `spend_unknown`).
    for (i, replica) in replicas.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(20);
        for attempt in 0.. {
            let (approved, reason) = ask(replica, 10_000 + 1_000 * i + attempt, 1).await;
            if approved {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "replica {i} never decided on spend: {reason}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let warmed = 2;

    // $7.00 to $12.99 each, $1,990 asked in all against a $100 limit, replicas alternating.
    let amounts: Vec<i64> = (0..REQUESTS).map(|n| 700 + (n as i64 * 37) % 600).collect();
    let answers = join_all(
        amounts
            .iter()
            .enumerate()
            .map(|(n, &amount)| ask(&replicas[n % 2], n, amount)),
    )
    .await;
    let asked: i64 = amounts.iter().sum();
    let approved: Vec<usize> = (0..REQUESTS).filter(|&n| answers[n].0).collect();
    let total: i64 = approved.iter().map(|&n| amounts[n]).sum::<i64>() + warmed;
    let by_replica = [0, 1].map(|r| approved.iter().filter(|&&n| n % 2 == r).count());
    let reasons: std::collections::BTreeMap<&str, usize> =
        answers.iter().fold(Default::default(), |mut m, (_, r)| {
            *m.entry(r.as_str()).or_default() += 1;
            m
        });
    eprintln!(
        "asked {asked} in {REQUESTS} requests; approved {} ({total} with the warm-ups) against a \
         limit of {LIMIT}; approvals by replica {by_replica:?}; reasons {reasons:?}",
        approved.len()
    );
    assert!(
        total <= LIMIT,
        "approved {total}, past the limit of {LIMIT}"
    );
    // Not a ledger that declines everything: what is left after it is less than one request.
    assert!(total > LIMIT - 1_300, "approved only {total} of {LIMIT}");
    // Each replica decided on the approvals of both: one of them declined for the limit while
    // its own approvals left room for more than any request, which only the other's explain.
    // (Which one depends on whose reservations reached Postgres first: a replica sends the
    // requests waiting at that moment as one batch.)
    let own = [0, 1].map(|r| {
        let spent: i64 = approved
            .iter()
            .filter(|&&n| n % 2 == r)
            .map(|&n| amounts[n])
            .sum();
        let declined = (0..REQUESTS)
            .filter(|&n| n % 2 == r && !answers[n].0)
            .count();
        (spent, declined)
    });
    assert!(
        own.iter()
            .any(|&(spent, declined)| spent < LIMIT - 1_300 && declined > 0),
        "each replica declined only once its own approvals reached the limit (spent, \
         declined): {own:?}"
    );
    let declined = REQUESTS - approved.len();
    assert_eq!(
        reasons.get("daily_limit_exceeded"),
        Some(&declined),
        "{reasons:?}"
    );
    let standing = approved.len() as i64 + warmed;
    assert_eq!(
        setup.count("SELECT count(*) FROM spend_reservations").await,
        standing
    );

    // Stripe creates the approved authorizations; the aggregator folds them and releases
    // every reservation as it does.
    let mut aggregator = setup.aggregator("ledger", "aggregator");
    for &n in &approved {
        let body = created(n, amounts[n]).to_string();
        let (status, answer) = try_exchange(
            replicas[0].addr,
            &signed("/webhooks/stripe", body.as_bytes(), now()),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{answer}");
    }
    let folded = approved.len() as i64;
    setup
        .wait_for(
            "SELECT count(*) FROM authorizations WHERE id LIKE 'iauth_burst_%' AND version_rank = 1",
            folded,
            Duration::from_secs(60),
            &["aggregator"],
        )
        .await;
    // The warm-ups' authorizations never come: theirs stand until their TTL.
    setup
        .wait_for(
            "SELECT count(*) FROM spend_reservations",
            warmed,
            Duration::from_secs(10),
            &[],
        )
        .await;

    // Holds now count where reservations did: what is left is approved, a cent more is not.
    let left = LIMIT - total;
    let (over, reason) = ask(&replicas[1], 20_000, left + 1).await;
    assert!(!over, "{} approved past the limit: {reason}", left + 1);
    if left > 0 {
        let (exact, reason) = ask(&replicas[0], 20_001, left).await;
        assert!(
            exact,
            "what the limit leaves ({left}) was declined: {reason}"
        );
    }
    aggregator.kill().await.unwrap();
}

/// The ledger answers within its bound or not at all: with the card's ledger lock held (as a
/// stuck transaction would), the request is decided by `on_spend_unknown` after the 50 ms
/// default, far inside Stripe's 2 s; once the lock is free, the ledger decides again.
#[tokio::test]
async fn a_ledger_that_cannot_answer_in_50_ms_leaves_the_decision_to_on_spend_unknown() {
    let setup = Setup::new(1).await;
    let env = [
        ("CARDSTREAM_DATABASE_URL", setup.db.url.as_str()),
        ("CARDSTREAM_POLICY_DAILY_LIMIT", "usd=10000"),
        ("CARDSTREAM_POLICY_ON_SPEND_UNKNOWN", "decline"),
    ];
    let gateway = GatewayProcess::start(&setup, &env).await;
    let card = request(0, 1)["data"]["object"]["card"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Connected and answering first, so that the bound below is the ledger's, not a cold start.
    let (approved, reason) = ask(&gateway, 0, 100).await;
    assert!(approved, "{reason}");

    let mut holder = setup.store.pool().acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(hashtextextended('cardstream.spend.' || $1, 0))")
        .bind(&card)
        .execute(&mut *holder)
        .await
        .unwrap();
    let started = Instant::now();
    let (approved, reason) = ask(&gateway, 1, 100).await;
    let took = started.elapsed();
    eprintln!("answered in {took:?} with the ledger locked: {reason}");
    assert!(!approved);
    assert_eq!(reason, "spend_unknown");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    let (_, metrics) = gateway.admin_get("/metrics").await.unwrap();
    let timeouts = common::gateway::metric(
        &metrics,
        "cardstream_spend_ledger_duration_seconds_count",
        &["outcome=\"timeout\""],
    );
    assert_eq!(timeouts, 1.0, "{metrics}");

    sqlx::query("SELECT pg_advisory_unlock_all()")
        .execute(&mut *holder)
        .await
        .unwrap();
    let (approved, reason) = ask(&gateway, 2, 100).await;
    assert!(approved, "{reason}");
}
