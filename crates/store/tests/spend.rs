//! The statement the gateway's spend limits refresh from reads today's and this month's spend,
//! plus holds not yet captured. (The in-memory cache over it is tested in the gateway.)

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

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

#[tokio::test]
async fn spend_counts_today_this_month_and_open_holds() {
    let (_db, store) = store().await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let today = now - now % 86_400;
    let events = vec![
        event(
            "evt_1",
            "issuing_transaction.created",
            now,
            capture("ipi_today", 1_000, now),
        ),
        // Yesterday, or (on the 1st) last month: in the month figure only when in this month.
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

    let day = today / 86_400;
    let month_start = month_start_day(day);
    let rows = store
        .card_spend(day as i32, month_start as i32)
        .await
        .unwrap();
    let yesterday_in_month = (today - 3_600) / 86_400 >= month_start;
    let month = 1_250 + if yesterday_in_month { 300 } else { 0 };
    assert_eq!(
        rows,
        vec![CardSpend {
            card_id: "ic_1".into(),
            currency: "usd".into(),
            day: 1_250,
            month,
        }],
        "today's capture and open hold, this month's captures; not the old one"
    );
}

/// First day of the month of `day` (days since the epoch), computed independently of the gateway's.
fn month_start_day(day: i64) -> i64 {
    let mut d = day;
    // Walk back to the 1st: compare the month of d-1 using a simple civil conversion.
    while civil(d - 1).1 == civil(day).1 && d > 0 {
        d -= 1;
    }
    d
}

fn civil(day: i64) -> (i64, i64) {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m)
}
