//! Redrives asked for in the console: the API records the request on the dead letter
//! (migration 0015) and every aggregator looks for requests each `--redrive-interval`, claims
//! some, writes them back to the main topic and marks them redriven by whoever asked. A claim
//! left by an aggregator that stopped mid-way is taken again after a minute; writing a record
//! twice is harmless (events are deduplicated by id).

use std::time::Duration;

use cardstream_kafka::{Redriven, Redriver};
use cardstream_store::Store;
use cardstream_telemetry::CancellationToken;

use crate::Error;

/// Most dead letters one round claims.
const CLAIM: u32 = 100;

/// Runs until `shutdown`: a round every `interval`.
pub(crate) fn spawn(
    store: Store,
    redriver: Redriver,
    interval: Duration,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(err) = round(&store, &redriver).await {
                tracing::warn!(error = %err, "cannot redrive the dead letters asked for; trying again next round");
            }
        }
    });
}

async fn round(store: &Store, redriver: &Redriver) -> Result<(), Error> {
    let claimed = store.claim_redrive_requests(CLAIM).await?;
    for letter in claimed {
        let headers: Vec<(&str, &[u8])> = letter.letter.headers().collect();
        redriver
            .write(Redriven {
                id: letter.letter.id,
                key: letter.letter.record_key.as_deref(),
                payload: &letter.letter.payload,
                headers: &headers,
            })
            .await?;
        store.mark_redriven(letter.letter.id, &letter.by).await?;
        tracing::info!(id = letter.letter.id, reason = %letter.letter.reason, by = %letter.by, topic = redriver.topic(), "dead letter redriven");
    }
    Ok(())
}
