//! The property behind at-least-once, any-order delivery: ingesting the same events in any
//! order, with any repetitions, in any batch sizes, gives byte-identical tables (rollups
//! included) to ingesting them once, in order.

#![allow(clippy::unwrap_used)]

mod common;

use cardstream_store::Store;
use common::{assert_rollups_exact, dump, incoming, ingest, simulated, store};
use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

async fn truncate(store: &Store) {
    sqlx::query(
        "TRUNCATE stripe_events, cardholders, cards, authorizations, transactions, disputes,
                  card_daily_spend, card_category_spend, card_merchant_spend, program_category_daily, program_merchant_daily,
                  program_outcome_daily, consumer_positions",
    )
    .execute(store.pool())
    .await
    .unwrap();
}

#[test]
fn any_permutation_with_any_duplication_gives_identical_tables() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // A few cards and many purchases, so that objects have several versions that collide.
    let events = incoming(&simulated(9, 6, 60));
    let (_db, store) = runtime.block_on(store());
    let expected = runtime.block_on(async {
        ingest(&store, &events, events.len()).await;
        assert_rollups_exact(&store).await;
        dump(&store).await
    });
    assert!(expected["transactions"].lines().count() > 40);

    let config = ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    };
    proptest!(config, |(shuffle_seed in any::<u64>(), duplicate_percent in 0u32..60, batch in 1usize..80)| {
        let mut rng = ChaCha8Rng::seed_from_u64(shuffle_seed);
        let mut delivered = events.clone();
        for event in &events {
            if rng.random_range(0..100) < duplicate_percent {
                delivered.push(event.clone());
            }
        }
        delivered.shuffle(&mut rng);
        let actual = runtime.block_on(async {
            truncate(&store).await;
            ingest(&store, &delivered, batch).await;
            assert_rollups_exact(&store).await;
            dump(&store).await
        });
        for (table, want) in &expected {
            prop_assert!(actual[table] == *want, "table {} differs after {} deliveries in batches of {}", table, delivered.len(), batch);
        }
    });
}
