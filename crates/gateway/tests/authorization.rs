//! `POST /webhooks/stripe/authorization`: decisions from the policy, answered without waiting
//! on the broker. An `issuing_authorization.request` posted to the ordinary webhook endpoint
//! (Stripe sends it there when that endpoint has the type enabled, and `stripe listen` forwards
//! everything to one URL) gets the same answer.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use cardstream_kafka::headers;
use cardstream_testbed::{Broker, Storage, read_records};
use common::{PARTITIONS, READ_TIMEOUT, TestGateway, authorization_request as request};
use serde_json::{Value, json};

const ROUTE: &str = "/webhooks/stripe/authorization";
const EVENTS_ROUTE: &str = "/webhooks/stripe";

fn with_card_status(body: &str, status: &str) -> String {
    let mut event: Value = serde_json::from_str(body).unwrap();
    event["data"]["object"]["card"]["status"] = json!(status);
    event.to_string()
}

const CARD: &str = "ic_1Pgag5B7WZ01zgkWephORn8N";
const HOLDER: &str = "ich_1Pgag4B7WZ01zgkWdPVfBngi";

#[tokio::test]
async fn decisions_follow_the_policy_and_carry_their_reason() {
    decisions_on(ROUTE).await;
}

#[tokio::test]
async fn the_webhook_endpoint_answers_an_authorization_request_with_its_decision() {
    decisions_on(EVENTS_ROUTE).await;
}

async fn decisions_on(route: &str) {
    let broker = Broker::start(Storage::Memory).await;
    let mut gw = TestGateway::start(
        &broker,
        &[
            "--policy-allowed-currencies",
            "usd,jpy",
            "--policy-max-amount",
            "usd=50000,jpy=100000",
            "--policy-blocked-categories",
            "betting_casino_gambling",
            "--stripe-version",
            "2024-06-20",
        ],
    )
    .await;
    let cases = [
        (
            request("evt_a1", 700, "usd", "taxicabs_limousines"),
            true,
            "approved",
        ),
        (
            request("evt_a2", 50_000, "usd", "taxicabs_limousines"),
            true,
            "approved",
        ),
        (
            request("evt_a3", 50_001, "usd", "taxicabs_limousines"),
            false,
            "amount_over_limit",
        ),
        // ¥100,000 is within the JPY limit: limits are per currency, in its own minor unit.
        (
            request("evt_a4", 100_000, "jpy", "taxicabs_limousines"),
            true,
            "approved",
        ),
        (
            request("evt_a5", 700, "eur", "taxicabs_limousines"),
            false,
            "currency_not_allowed",
        ),
        (
            request("evt_a6", 700, "usd", "betting_casino_gambling"),
            false,
            "category_blocked",
        ),
        (
            with_card_status(
                &request("evt_a7", 700, "usd", "taxicabs_limousines"),
                "inactive",
            ),
            false,
            "card_inactive",
        ),
    ];
    for (body, approved, reason) in &cases {
        let response = gw.post_signed(route, body).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.headers["stripe-version"], "2024-06-20");
        assert_eq!(
            response.json(),
            json!({"approved": approved, "metadata": {"cardstream_reason": reason}}),
        );
    }
    assert_eq!(
        gw.metric(
            "cardstream_authorization_decisions_total",
            &[("approved", "true"), ("reason", "approved")]
        ),
        3.0
    );
    assert_eq!(
        gw.metric(
            "cardstream_authorization_decisions_total",
            &[("reason", "category_blocked")]
        ),
        1.0
    );

    // Every request also reaches the topic, keyed by card, in the background.
    let records = read_records(
        &broker.brokers(),
        &gw.topic,
        PARTITIONS,
        cases.len(),
        READ_TIMEOUT,
    )
    .await;
    assert_eq!(records.len(), cases.len());
    assert!(
        records
            .iter()
            .all(|r| r.key.as_deref() == Some(CARD.as_bytes()))
    );
    assert!(
        records
            .iter()
            .all(|r| r.header(headers::EVENT_TYPE) == Some("issuing_authorization.request"))
    );
    gw.stop().await;
}

#[tokio::test]
async fn cards_and_cardholders_listed_inactive_are_declined() {
    let broker = Broker::start(Storage::Memory).await;
    let mut gw = TestGateway::start(&broker, &["--policy-inactive-cardholders", HOLDER]).await;
    let response = gw
        .post_signed(ROUTE, &request("evt_h1", 100, "usd", "bakeries"))
        .await;
    assert_eq!(
        response.json()["metadata"]["cardstream_reason"],
        "cardholder_inactive"
    );
    gw.stop().await;

    let mut gw = TestGateway::start(&broker, &["--policy-inactive-cards", CARD]).await;
    let response = gw
        .post_signed(ROUTE, &request("evt_c1", 100, "usd", "bakeries"))
        .await;
    assert_eq!(
        response.json()["metadata"]["cardstream_reason"],
        "card_inactive"
    );
    gw.stop().await;
}

#[tokio::test]
async fn the_answer_does_not_wait_for_a_broker_that_is_down() {
    answers_with_the_broker_down(ROUTE).await;
}

#[tokio::test]
async fn on_the_webhook_endpoint_too_the_answer_does_not_wait_for_the_broker() {
    answers_with_the_broker_down(EVENTS_ROUTE).await;
}

async fn answers_with_the_broker_down(route: &str) {
    // Stripe's budget for an answer, against a produce bound five times longer: an answer that
    // waited for the broker would miss the budget by seconds.
    const PRODUCE_TIMEOUT: Duration = Duration::from_secs(10);
    const ANSWER_DEADLINE: Duration = Duration::from_secs(2);
    let mut broker = Broker::start(Storage::Memory).await;
    let mut gw = TestGateway::start(&broker, &["--produce-timeout", "10s"]).await;
    broker.stop().await;
    let lost_at = Instant::now();
    for i in 0..20 {
        let body = request(&format!("evt_down_{i}"), 700, "usd", "bakeries");
        let response = tokio::time::timeout(ANSWER_DEADLINE, gw.post_signed(route, &body))
            .await
            .unwrap_or_else(|_| {
                panic!("answer {i} missed Stripe's 2 s budget: it waited for the broker")
            });
        assert_eq!(response.status, 200);
        assert_eq!(response.json()["approved"], true);
    }
    // The lost background produces are counted once their delivery timeout passes.
    let deadline = lost_at + PRODUCE_TIMEOUT + Duration::from_secs(20);
    while gw.metric(
        "cardstream_produce_failures_total",
        &[("path", "authorization")],
    ) < 20.0
    {
        assert!(
            Instant::now() < deadline,
            "background produce failures were not counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gw.stop().await;
}

#[tokio::test]
async fn other_event_types_and_bad_signatures_are_refused() {
    let broker = Broker::start(Storage::Memory).await;
    let mut gw = TestGateway::start(&broker, &[]).await;
    let created = request("evt_w1", 700, "usd", "bakeries").replace(
        "issuing_authorization.request",
        "issuing_authorization.created",
    );
    let response = gw.post_signed(ROUTE, &created).await;
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["error"]["code"], "wrong_event_type");

    let body = request("evt_w2", 700, "usd", "bakeries");
    let response = gw
        .post(ROUTE, &[("stripe-signature", "t=1,v1=00")], &body)
        .await;
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["error"]["code"], "signature_mismatch");

    // An authorization request whose object is not an authorization.
    let broken = json!({"id": "evt_w3", "object": "event", "type": "issuing_authorization.request",
        "created": 1, "data": {"object": {"id": "iauth_x"}}})
    .to_string();
    let response = gw.post_signed(ROUTE, &broken).await;
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["error"]["code"], "not_a_stripe_event");
    // On the webhook route too, now that it decides requests: refused, not stored as received.
    let response = gw.post_signed(EVENTS_ROUTE, &broken).await;
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["error"]["code"], "not_a_stripe_event");
    assert_eq!(
        gw.metric(
            "cardstream_webhook_rejections_total",
            &[("route", EVENTS_ROUTE), ("reason", "not_a_stripe_event")]
        ),
        1.0
    );
    gw.stop().await;
}

#[tokio::test]
async fn an_edited_policy_file_applies_to_the_next_request() {
    let broker = Broker::start(Storage::Memory).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, "blocked_categories = []\n").unwrap();
    let file_arg = file.to_str().unwrap().to_owned();
    let mut gw = TestGateway::start(
        &broker,
        &[
            "--policy-file",
            &file_arg,
            "--policy-reload-interval",
            "50ms",
        ],
    )
    .await;
    let body = request("evt_p1", 700, "usd", "bakeries");
    assert_eq!(gw.post_signed(ROUTE, &body).await.json()["approved"], true);

    // As a ConfigMap update does it: the whole file written beside it, then renamed over it,
    // so the gateway reads the old policy or the new one, never a half-written file.
    let mut staged = tempfile::NamedTempFile::new_in(dir.path()).unwrap();
    std::io::Write::write_all(&mut staged, b"blocked_categories = [\"bakeries\"]\n").unwrap();
    staged.persist(&file).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    // A new event each time: the gateway answers a repeated one as it did the first time.
    for attempt in 0.. {
        let body = request(&format!("evt_p1_{attempt}"), 700, "usd", "bakeries");
        let answer = gw.post_signed(ROUTE, &body).await.json();
        if answer["approved"] == false {
            assert_eq!(answer["metadata"]["cardstream_reason"], "category_blocked");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the edited policy was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        gw.metric("cardstream_policy_reloads_total", &[("outcome", "ok")]),
        1.0
    );
    gw.stop().await;
}

/// Stripe retries a request it got no answer to; if a program has both endpoints enabled, the
/// same request may come to each. It is decided once, and answered the same way both times.
#[tokio::test]
async fn one_request_on_both_urls_is_decided_once_and_answered_alike() {
    let broker = Broker::start(Storage::Memory).await;
    let mut gw = TestGateway::start(&broker, &["--policy-max-amount", "usd=500"]).await;
    let body = request("evt_both", 700, "usd", "bakeries");
    let first = gw.post_signed(EVENTS_ROUTE, &body).await;
    let second = gw.post_signed(ROUTE, &body).await;
    assert_eq!(first.status, 200);
    assert_eq!(second.status, 200);
    assert_eq!(
        first.json(),
        json!({"approved": false, "metadata": {"cardstream_reason": "amount_over_limit"}})
    );
    assert_eq!(second.json(), first.json());
    assert_eq!(
        gw.metric("cardstream_authorization_decisions_total", &[]),
        1.0
    );
    assert_eq!(
        gw.metric("cardstream_authorization_replays_total", &[]),
        1.0
    );
    gw.stop().await;
}
