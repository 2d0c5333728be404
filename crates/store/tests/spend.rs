//! The statement the gateway's spend limits refresh from reads today's and this month's spend,
//! plus holds not yet captured. (The in-memory cache over it is tested in the gateway.)

#![allow(clippy::unwrap_used)]

mod common;

use cardstream_store::{
    CardSpend, IncomingEvent, LedgerBatch, Position, SpendGrant, SpendRequest, Store,
};
use cardstream_stripe::Event;
use common::{GROUP, TOPIC, store};
use serde_json::{Value, json};

fn event(id: &str, kind: &str, created: i64, object: Value) -> IncomingEvent {
    let body = json!({"id": id, "object": "event", "type": kind, "created": created, "data": {"object": object}}).to_string();
    let event = Event::parse(body.as_bytes()).unwrap();
    let object = event.object().unwrap();
    IncomingEvent {
        event,
        object,
        payload: body,
        partition: 0,
        offset: 0,
    }
}

fn capture(id: &str, amount: i64, created: i64) -> Value {
    json!({"id": id, "amount": -amount, "currency": "usd", "type": "capture", "card": "ic_1", "created": created,
           "merchant_data": {"category": "bakeries", "name": "Bakery"}})
}

fn hold(id: &str, amount: i64, created: i64) -> Value {
    json!({"id": id, "amount": amount, "currency": "usd", "approved": true, "status": "pending", "created": created,
           "card": "ic_1", "merchant_data": {"category": "bakeries"},
           "request_history": [{"amount": amount, "currency": "usd", "approved": true, "reason": "webhook_approved"}]})
}

/// 2025-11-01 12:00 UTC, the 1st of a month (day 20393): yesterday was last month.
const ON_THE_FIRST: i64 = 1_761_998_400;
/// 2025-11-15 12:00 UTC (day 20407): yesterday was this month, which began on day 20393.
const MID_MONTH: i64 = 1_763_208_000;

/// Both sides of a month's edge, whatever day the test runs (it used the clock, so the 1st's
/// case ran only on the 1st): the window is passed in as the gateway computes it on those days.
#[tokio::test]
async fn spend_counts_today_this_month_and_open_holds() {
    for (now, day, month_start, yesterday_in_month) in [
        (ON_THE_FIRST, 20_393, 20_393, false),
        (MID_MONTH, 20_407, 20_393, true),
    ] {
        let (_db, store) = store().await;
        let today = now - now % 86_400;
        assert_eq!(today / 86_400, i64::from(day));
        let events = vec![
            event(
                "evt_1",
                "issuing_transaction.created",
                now,
                capture("ipi_today", 1_000, now),
            ),
            // Yesterday: in the month figure only when in this month.
            event(
                "evt_2",
                "issuing_transaction.created",
                today - 3_600,
                capture("ipi_yesterday", 300, today - 3_600),
            ),
            event(
                "evt_3",
                "issuing_authorization.created",
                now,
                hold("iauth_open", 250, now),
            ),
            // Long ago: in neither.
            event(
                "evt_4",
                "issuing_transaction.created",
                today - 90 * 86_400,
                capture("ipi_old", 9_999, today - 90 * 86_400),
            ),
        ];
        store
            .apply_batch(
                GROUP,
                TOPIC,
                &events,
                &[Position {
                    partition: 0,
                    next_offset: 4,
                }],
            )
            .await
            .unwrap();

        let rows = store.card_spend(day, month_start).await.unwrap();
        let month = 1_250 + if yesterday_in_month { 300 } else { 0 };
        assert_eq!(
            rows,
            vec![CardSpend {
                card_id: "ic_1".into(),
                currency: "usd".into(),
                day: 1_250,
                month,
            }],
            "today's capture and open hold, this month's captures; not the old one (day {day})"
        );
    }
}

fn ask(event: &str, card: &str, asked: i64, partial: bool) -> SpendRequest {
    SpendRequest {
        event_id: event.into(),
        authorization_id: format!("iauth_{event}"),
        card_id: card.into(),
        currency: "usd".into(),
        asked,
        partial,
        requested_at: MID_MONTH,
        daily_limit: Some(1_000),
        monthly_limit: None,
    }
}

fn batch(skip_busy: bool) -> LedgerBatch {
    LedgerBatch {
        day: 20_407,
        month_start: 20_393,
        ttl: std::time::Duration::from_secs(600),
        wait: std::time::Duration::from_millis(50),
        skip_busy,
    }
}

fn granted(grants: &[Option<SpendGrant>]) -> Vec<Option<i64>> {
    grants.iter().map(|g| g.map(|g| g.granted)).collect()
}

/// One statement reserves many requests: in the order given, each counting the grants before
/// it on its card (not another card's), a retry given what it was given, and the spend
/// before each reported with it.
#[tokio::test]
async fn a_batch_is_decided_in_order_and_a_retry_is_given_the_same() {
    let (_db, store) = store().await;
    let mut conn = store.ledger_connection().await.unwrap();
    let asks = [
        ask("evt_a1", "ic_a", 300, false),
        ask("evt_b1", "ic_b", 900, false),
        ask("evt_a2", "ic_a", 300, false),
        ask("evt_a3", "ic_a", 300, false),
        ask("evt_a4", "ic_a", 300, true),
        ask("evt_a5", "ic_a", 300, true),
        ask("evt_a1", "ic_a", 300, false),
    ];
    let grants = Store::reserve_spend(&mut conn, &asks, &batch(true))
        .await
        .unwrap();
    assert_eq!(
        granted(&grants),
        [
            Some(300),
            Some(900),
            Some(300),
            Some(300),
            Some(100),
            Some(0),
            Some(300)
        ]
    );
    let day_spend: Vec<i64> = grants.iter().map(|g| g.unwrap().day_spend).collect();
    assert_eq!(day_spend, [0, 0, 300, 600, 900, 1_000, 700]);

    // Every one asked again (a replica's retry): the same grants, nothing reserved twice.
    let again = Store::reserve_spend(&mut conn, &asks[..6], &batch(true))
        .await
        .unwrap();
    assert_eq!(granted(&again), granted(&grants[..6]));
    let reserved: (i64, i64) = sqlx::query_as(
        "SELECT count(*), sum(amount)::int8 FROM spend_reservations WHERE card_id = 'ic_a'",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(reserved, (4, 1_000));
}

/// A card whose lock another transaction holds does not hold up the batch: it is reported
/// busy and nothing is reserved for it; asked again waiting, it fails at the wait's bound.
#[tokio::test]
async fn a_busy_card_is_skipped_then_waited_for_within_the_bound() {
    let (_db, store) = store().await;
    let mut holder = store.ledger_connection().await.unwrap();
    sqlx::query("BEGIN").execute(&mut *holder).await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('cardstream.spend.ic_busy', 0))")
        .execute(&mut *holder)
        .await
        .unwrap();

    let mut conn = store.ledger_connection().await.unwrap();
    let asks = [
        ask("evt_1", "ic_free", 100, false),
        ask("evt_2", "ic_busy", 100, false),
    ];
    let grants = Store::reserve_spend(&mut conn, &asks, &batch(true))
        .await
        .unwrap();
    assert_eq!(granted(&grants), [Some(100), None]);

    let started = std::time::Instant::now();
    let err = Store::reserve_spend(&mut conn, &asks[1..], &batch(false))
        .await
        .unwrap_err();
    assert_eq!(err.timeout(), Some("lock_timeout"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(1));

    sqlx::query("ROLLBACK").execute(&mut *holder).await.unwrap();
    let grants = Store::reserve_spend(&mut conn, &asks[1..], &batch(false))
        .await
        .unwrap();
    assert_eq!(granted(&grants), [Some(100)]);
}
