//! After each committed batch the store NOTIFYs which cards changed; a rolled-back batch
//! notifies nothing.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use cardstream_store::{ACTIVITY_CHANNEL, ActivityNotice, Position};
use common::{GROUP, TOPIC, incoming, simulated, store};
use sqlx::postgres::PgListener;

#[tokio::test]
async fn committed_batches_notify_the_cards_they_changed() {
    let (db, store) = store().await;
    let mut listener = PgListener::connect(&db.url).await.unwrap();
    listener.listen(ACTIVITY_CHANNEL).await.unwrap();

    let events = incoming(&simulated(6, 5, 40));
    let outcome = store
        .apply_batch(
            GROUP,
            TOPIC,
            &events,
            &[Position {
                partition: 0,
                next_offset: 1,
            }],
        )
        .await
        .unwrap();
    let mut notified = BTreeSet::new();
    while notified.len() < outcome.cards.len() {
        let note = tokio::time::timeout(Duration::from_secs(5), listener.recv())
            .await
            .unwrap()
            .unwrap();
        notified.extend(ActivityNotice::from_payload(note.payload()).unwrap().cards);
    }
    assert_eq!(
        notified,
        outcome.cards.iter().cloned().collect::<BTreeSet<_>>()
    );
    assert_eq!(notified.len(), 5, "every simulated card had activity");

    // Redelivering the same events changes nothing and so notifies nothing.
    store.apply_batch(GROUP, TOPIC, &events, &[]).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), listener.recv())
            .await
            .is_err()
    );
}
