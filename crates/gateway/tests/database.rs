//! What the gateway reads from Postgres: card spend for the limits, held in memory, and the
//! policy admins save in the dashboard, followed without a restart.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use cardstream_gateway::{SpendCache, SpendCacheArgs};
use cardstream_policy::{Spend, SpendView};
use cardstream_store::{IncomingEvent, Position, Store};
use cardstream_stripe::{Currency, Money};
use cardstream_testbed::{Broker, Storage, TestDatabase};
use common::{TestGateway, authorization_request as request, now};
use serde_json::{Value, json};

const ROUTE: &str = "/webhooks/stripe/authorization";
/// The card of the authorization fixture.
const CARD: &str = "ic_1Pgag5B7WZ01zgkWephORn8N";

async fn store() -> (TestDatabase, Store) {
    let db = TestDatabase::create().await;
    let store = Store::connect(&db.url, 2).await.unwrap();
    store.migrate_up().await.unwrap();
    (db, store)
}

fn event(id: &str, kind: &str, object: Value, offset: i64) -> IncomingEvent {
    let body = json!({"id": id, "object": "event", "type": kind, "created": now(), "data": {"object": object}});
    IncomingEvent::parse(body.to_string().as_bytes(), 0, offset).unwrap()
}

fn cache(ledger_window: Duration) -> SpendCache {
    SpendCache::new(SpendCacheArgs {
        refresh_interval: Duration::from_secs(1),
        max_staleness: Duration::from_secs(60),
        ledger_window,
    })
}

#[tokio::test]
async fn spend_is_read_into_memory_and_local_approvals_count_until_a_refresh_covers_them() {
    let (_db, store) = store().await;
    let events = [
        event(
            "evt_capture",
            "issuing_transaction.created",
            json!({"id": "ipi_1", "amount": -1_000, "currency": "usd", "type": "capture", "card": "ic_1",
                   "created": now(), "merchant_data": {"category": "bakeries", "name": "Bakery"}}),
            0,
        ),
        event(
            "evt_hold",
            "issuing_authorization.created",
            json!({"id": "iauth_1", "amount": 250, "currency": "usd", "approved": true, "status": "pending",
                   "created": now(), "card": "ic_1", "merchant_data": {"category": "bakeries"},
                   "request_history": [{"amount": 250, "currency": "usd", "approved": true, "reason": "webhook_approved"}]}),
            1,
        ),
    ];
    let positions = [Position {
        partition: 0,
        next_offset: 2,
    }];
    store
        .apply_batch("group", "topic", &events, &positions)
        .await
        .unwrap();

    let kept = cache(Duration::from_secs(600));
    assert_eq!(
        kept.spend("ic_1", Currency::USD),
        Spend::Unknown,
        "nothing loaded yet"
    );
    kept.refresh(&store).await.unwrap();
    assert!(kept.age().is_some());
    // Today's capture and today's open hold, in the day's and the month's figure alike.
    assert_eq!(
        kept.spend("ic_1", Currency::USD),
        Spend::Known {
            day: 1_250,
            month: 1_250
        }
    );
    assert_eq!(
        kept.spend("ic_1", Currency::EUR),
        Spend::Known { day: 0, month: 0 }
    );
    assert_eq!(
        kept.spend("ic_other", Currency::USD),
        Spend::Known { day: 0, month: 0 }
    );

    // An approval given here counts at once, and through a refresh that may not include it yet.
    kept.record_approval("ic_1", Money::new(400, Currency::USD));
    let with_approval = Spend::Known {
        day: 1_650,
        month: 1_650,
    };
    assert_eq!(kept.spend("ic_1", Currency::USD), with_approval);
    kept.refresh(&store).await.unwrap();
    assert_eq!(kept.spend("ic_1", Currency::USD), with_approval);

    // Past its window, a refresh is trusted to hold it: it is not counted twice.
    let trusted = cache(Duration::ZERO);
    trusted.refresh(&store).await.unwrap();
    trusted.record_approval("ic_1", Money::new(400, Currency::USD));
    trusted.refresh(&store).await.unwrap();
    assert_eq!(
        trusted.spend("ic_1", Currency::USD),
        Spend::Known {
            day: 1_250,
            month: 1_250
        }
    );
}

/// Asks for a new authorization at a bakery until the answer's reason is `reason`.
async fn until_reason(gw: &TestGateway, tag: &str, reason: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for attempt in 0.. {
        // A new event each time: the gateway answers a repeated one as it did the first time.
        let body = request(&format!("evt_{tag}_{attempt}"), 700, "usd", "bakeries");
        let answer = gw.post_signed(ROUTE, &body).await.json();
        if answer["metadata"]["cardstream_reason"] == reason {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {answer} rather than {reason}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn until_metric(gw: &TestGateway, outcome: &str, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let labels = [("outcome", outcome)];
    while gw.metric("cardstream_policy_reloads_total", &labels) != value {
        assert!(
            Instant::now() < deadline,
            "reloads {{outcome={outcome}}} never reached {value}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_policy_an_admin_saves_applies_and_a_broken_one_leaves_it_in_force() {
    let broker = Broker::start(Storage::Memory).await;
    let (db, store) = store().await;
    let mut gw = TestGateway::start(
        &broker,
        &[
            "--database-url",
            &db.url,
            "--spend-refresh-interval",
            "50ms",
        ],
    )
    .await;
    until_reason(&gw, "before", "approved").await;

    // Saved as the API saves it.
    store
        .save_policy(
            Some(0),
            json!({"blocked_categories": ["bakeries"]}),
            "admin@example.com",
        )
        .await
        .unwrap();
    until_reason(&gw, "saved", "category_blocked").await;
    until_metric(&gw, "saved", 1.0).await;

    // A row the policy crate refuses (not a Stripe category; it would block nothing).
    store
        .save_policy(
            Some(1),
            json!({"blocked_categories": ["gambling"]}),
            "admin@example.com",
        )
        .await
        .unwrap();
    until_metric(&gw, "invalid", 1.0).await;
    until_reason(&gw, "broken", "category_blocked").await;
    assert_eq!(
        gw.metric("cardstream_policy_reloads_total", &[("outcome", "saved")]),
        1.0,
        "the broken version was applied"
    );

    store
        .save_policy(Some(2), json!({}), "admin@example.com")
        .await
        .unwrap();
    until_reason(&gw, "cleared", "approved").await;
    gw.stop().await;
}

/// A request for `amount` cents whose amount Stripe lets the gateway choose (or not).
fn asking(id: &str, amount: i64, controllable: bool) -> String {
    let mut event: Value =
        serde_json::from_str(&request(id, amount, "usd", "fuel_dealers_non_automotive")).unwrap();
    event["data"]["object"]["pending_request"]["is_amount_controllable"] = json!(controllable);
    event.to_string()
}

/// Partial approvals against a real daily limit: each case in turn on one card (spend 0 in
/// Postgres, limit $100.00), the approvals counted by the gateway's own ledger between
/// refreshes.
#[tokio::test]
async fn a_controllable_request_over_the_limit_is_approved_for_what_is_left() {
    let broker = Broker::start(Storage::Memory).await;
    let (db, _store) = store().await;
    let mut gw = TestGateway::start(
        &broker,
        &[
            "--database-url",
            &db.url,
            "--spend-refresh-interval",
            "50ms",
            "--policy-daily-limit",
            "usd=10000",
            "--policy-partial-approval",
            "true",
        ],
    )
    .await;
    // Spend loaded: a request of another card is decided on it, not on `spend_unknown`.
    let deadline = Instant::now() + Duration::from_secs(10);
    for attempt in 0.. {
        let body = asking(&format!("evt_warm_{attempt}"), 1, false).replace(CARD, "ic_warmup");
        let answer = gw.post_signed(ROUTE, &body).await.json();
        if answer["metadata"]["cardstream_reason"] == "approved" {
            break;
        }
        assert!(Instant::now() < deadline, "spend never loaded: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let decline =
        |reason: &str| json!({"approved": false, "metadata": {"cardstream_reason": reason}});
    let cases = [
        // Not controllable: over the limit is declined.
        (
            asking("evt_p1", 12_000, false),
            decline("daily_limit_exceeded"),
        ),
        // Controllable and under: all of it, no amount.
        (
            asking("evt_p2", 6_000, true),
            json!({"approved": true, "metadata": {"cardstream_reason": "approved"}}),
        ),
        // Controllable and over: the $40.00 the day has left.
        (
            asking("evt_p3", 6_000, true),
            json!({"approved": true, "amount": 4_000, "metadata": {"cardstream_reason": "partially_approved"}}),
        ),
        // The limit used up: nothing left to approve.
        (asking("evt_p4", 100, true), decline("daily_limit_exceeded")),
    ];
    for (body, expected) in &cases {
        let response = gw.post_signed(ROUTE, body).await;
        assert_eq!(response.status, 200);
        assert_eq!(&response.json(), expected);
    }
    assert_eq!(
        gw.metric(
            "cardstream_authorization_decisions_total",
            &[("reason", "partially_approved")]
        ),
        1.0
    );
    gw.stop().await;

    // With the option off (the default), the same controllable request is declined.
    let mut gw = TestGateway::start(
        &broker,
        &[
            "--database-url",
            &db.url,
            "--policy-daily-limit",
            "usd=10000",
        ],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    for attempt in 0.. {
        let body = asking(&format!("evt_off_{attempt}"), 12_000, true);
        let answer = gw.post_signed(ROUTE, &body).await.json();
        if answer["metadata"]["cardstream_reason"] != "spend_unknown" {
            assert_eq!(answer, decline("daily_limit_exceeded"));
            break;
        }
        assert!(Instant::now() < deadline, "spend never loaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gw.stop().await;
}
