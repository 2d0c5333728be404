//! The spend limits' calendar: "today" and "this month" are the UTC day and calendar month of
//! the moment the cache is asked about, checked on the last second of a month and the first
//! second of the next with the clock given, so the month's edge is tested whatever day the
//! test runs (it was only exercised on the 1st).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cardstream_gateway::{SpendCache, SpendCacheArgs};
use cardstream_policy::Spend;
use cardstream_store::{IncomingEvent, Position, Store};
use cardstream_stripe::Currency;
use cardstream_testbed::TestDatabase;
use serde_json::{Value, json};

const OCT_15_NOON: i64 = 1_760_529_600; // 2025-10-15 12:00:00 UTC
const OCT_31_LAST_SECOND: i64 = 1_761_955_199; // 2025-10-31 23:59:59 UTC
const NOV_1_MIDNIGHT: i64 = 1_761_955_200; // 2025-11-01 00:00:00 UTC

fn at(unix_seconds: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(unix_seconds).unwrap())
}

fn event(id: &str, kind: &str, object: Value) -> IncomingEvent {
    let body = json!({"id": id, "object": "event", "type": kind, "created": object["created"],
                      "data": {"object": object}});
    IncomingEvent::parse(body.to_string().as_bytes(), 0, 0).unwrap()
}

fn capture(id: &str, amount: i64, created: i64) -> IncomingEvent {
    event(
        &format!("evt_{id}"),
        "issuing_transaction.created",
        json!({"id": id, "amount": -amount, "currency": "usd", "type": "capture", "card": "ic_1",
               "created": created, "merchant_data": {"category": "bakeries", "name": "Bakery"}}),
    )
}

/// An approved authorization not yet captured: a hold.
fn hold(id: &str, amount: i64, created: i64) -> IncomingEvent {
    event(
        &format!("evt_{id}"),
        "issuing_authorization.created",
        json!({"id": id, "amount": amount, "currency": "usd", "approved": true, "status": "pending",
               "created": created, "card": "ic_1", "merchant_data": {"category": "bakeries"},
               "request_history": [{"amount": amount, "currency": "usd", "approved": true,
                                    "reason": "webhook_approved"}]}),
    )
}

async fn ingest(store: &Store, events: &[IncomingEvent], next_offset: i64) {
    let positions = [Position {
        partition: 0,
        next_offset,
    }];
    store
        .apply_batch("spend-calendar", "events", events, &positions)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_day_and_the_month_turn_over_at_midnight_utc_on_the_first() {
    let db = TestDatabase::create().await;
    let store = Store::connect(&db.url, 2).await.unwrap();
    store.migrate_up().await.unwrap();
    ingest(
        &store,
        &[
            capture("ipi_mid_october", 1_000, OCT_15_NOON),
            capture("ipi_last_second", 300, OCT_31_LAST_SECOND),
            hold("iauth_last_second", 20, OCT_31_LAST_SECOND),
        ],
        3,
    )
    .await;
    let cache = SpendCache::new(SpendCacheArgs {
        refresh_interval: Duration::from_secs(1),
        max_staleness: Duration::from_secs(60),
        ledger_window: Duration::from_secs(5),
    });

    // The last second of October: today is the 31st, this month October.
    cache
        .refresh_at(&store, at(OCT_31_LAST_SECOND))
        .await
        .unwrap();
    assert_eq!(
        cache.spend_at("ic_1", Currency::USD, at(OCT_31_LAST_SECOND)),
        Spend::Known {
            day: 320,
            month: 1_320
        }
    );
    // Midnight passes before the next refresh: October's figures are not November's.
    assert_eq!(
        cache.spend_at("ic_1", Currency::USD, at(NOV_1_MIDNIGHT)),
        Spend::Unknown
    );

    // The first second of November: a new day and a new month, October's spend and holds in
    // neither.
    ingest(
        &store,
        &[capture("ipi_first_second", 50, NOV_1_MIDNIGHT)],
        4,
    )
    .await;
    cache.refresh_at(&store, at(NOV_1_MIDNIGHT)).await.unwrap();
    assert_eq!(
        cache.spend_at("ic_1", Currency::USD, at(NOV_1_MIDNIGHT)),
        Spend::Known { day: 50, month: 50 }
    );
}
