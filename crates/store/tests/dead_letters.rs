//! Dead letters are recorded whatever the record held: a NUL in a header, the event id or the
//! error (Postgres text cannot hold one) must not make the insert fail, which would hold the
//! aggregator's batch, and with it the partition, forever.

#![allow(clippy::unwrap_used)]

mod common;

use cardstream_store::{DeadLetterFilter, NewDeadLetter};
use common::store;

#[tokio::test]
async fn a_dead_letter_with_nul_bytes_in_its_text_is_recorded_with_them_replaced() {
    let (_db, store) = store().await;
    let letter = NewDeadLetter {
        source_topic: "stripe.events".into(),
        source_partition: 0,
        source_offset: 7,
        reason: "not_json".into(),
        error: "bad\0error".into(),
        event_id: Some("evt_\0nul".into()),
        event_type: Some("issuing_card.created\0".into()),
        key: Some(b"k\0ey".to_vec()),
        headers: vec![("stripe-\0event-id".into(), b"evt_\0nul".to_vec())],
        payload: b"{\0}".to_vec(),
    };
    store.record_dead_letters(&[letter]).await.unwrap();
    let stored = store
        .dead_letters(&DeadLetterFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    let stored = &stored[0];
    assert_eq!(stored.error, "bad\u{FFFD}error");
    assert_eq!(stored.event_id.as_deref(), Some("evt_\u{FFFD}nul"));
    assert_eq!(stored.header_names, ["stripe-\u{FFFD}event-id"]);
    // Bytes stay bytes: the record goes back to the topic exactly as it was read.
    assert_eq!(stored.payload, b"{\0}");
    assert_eq!(stored.header_values, [b"evt_\0nul".to_vec()]);
    assert_eq!(stored.record_key.as_deref(), Some(&b"k\0ey"[..]));
}
