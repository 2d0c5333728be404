//! The statement the gateway's spend limits refresh from reads today's and this month's spend,
//! plus holds not yet captured. (The in-memory cache over it is tested in the gateway.)

#![allow(clippy::unwrap_used)]

mod common;

use cardstream_store::{CardSpend, IncomingEvent, Position};
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
