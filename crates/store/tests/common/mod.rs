//! Shared helpers: a migrated database of the test's own, simulator events as incoming
//! records, ingestion in batches, and table dumps to compare states.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::BTreeMap;

use cardstream_simulator::{SimEvent, generate_declining_every};
use cardstream_store::{IncomingEvent, Position, Store};
use cardstream_testbed::TestDatabase;

pub const GROUP: &str = "test-aggregators";
pub const TOPIC: &str = "stripe.events";

pub async fn store() -> (TestDatabase, Store) {
    let db = TestDatabase::create().await;
    let store = Store::connect(&db.url, 4).await.unwrap();
    store.migrate_up().await.unwrap();
    (db, store)
}

/// Simulator events for `purchases` purchases on `cards` cards; every fourth authorization
/// request is declined by the "gateway".
pub fn simulated(seed: u64, cards: usize, purchases: usize) -> Vec<SimEvent> {
    generate_declining_every(4, seed, cards, 1_764_000_000, purchases)
}

/// As records read from a 4-partition topic, in the given order.
pub fn incoming(events: &[SimEvent]) -> Vec<IncomingEvent> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| IncomingEvent::parse(&e.body, (i % 4) as i32, i as i64).unwrap())
        .collect()
}

/// Applies `events` in batches of `batch` records.
pub async fn ingest(store: &Store, events: &[IncomingEvent], batch: usize) {
    for chunk in events.chunks(batch.max(1)) {
        let positions: Vec<Position> = chunk
            .iter()
            .map(|e| Position {
                partition: e.partition,
                next_offset: e.offset + 1,
            })
            .collect();
        store
            .apply_batch(GROUP, TOPIC, chunk, &positions)
            .await
            .unwrap();
    }
}

/// Every table's content, rows sorted, as text. The raw events are compared without where
/// and when they were read (a duplicate keeps its first position).
pub async fn dump(store: &Store) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    for (name, query) in cardstream_store::CONTENT_QUERIES {
        let sql = format!("SELECT coalesce(string_agg(r::text, E'\\n'), '') FROM ({query}) r");
        let text: String = sqlx::query_scalar(&sql)
            .fetch_one(store.pool())
            .await
            .unwrap();
        out.insert(name, text);
    }
    out
}

pub async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// The rollups equal their recomputation from the base tables.
pub async fn assert_rollups_exact(store: &Store) {
    let drift = store.rollup_drift().await.unwrap();
    assert!(
        drift.is_clean(),
        "rollups drifted from the base tables: {drift:?}"
    );
}
