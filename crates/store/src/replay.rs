//! `cardstream replay`: rebuild every projection and rollup from the raw events table.

use std::time::{Duration, Instant};

use crate::fold::{DisputeFunds, FoldEvent, fold};
use crate::ingest::{IncomingEvent, notify};
use crate::version::Version;
use crate::{Error, REBUILD_LOCK, Store, windows};

/// Progress of a replay, reported after each chunk.
#[derive(Debug, Clone, Copy)]
pub struct ReplayProgress {
    pub done: u64,
    pub total: u64,
    pub elapsed: Duration,
}

/// What a replay did.
#[derive(Debug, Clone, Copy)]
pub struct ReplayStats {
    pub events: u64,
    pub rows_written: usize,
    pub elapsed: Duration,
}

/// Tables rebuilt by a replay: everything derived from `stripe_events`.
const DERIVED: &str = "cardholders, cards, authorizations, transactions, disputes, tokens, \
                       card_daily_spend, card_category_spend, card_merchant_spend, \
                       program_category_daily, program_merchant_daily, program_outcome_daily, \
                       card_windows, program_windows, rollup_window_state";

impl Store {
    /// Empties the derived tables and folds every stored event again, in one transaction: the
    /// rebuilt state appears all at once, or (on any error) the old one stays. Live batches
    /// wait for it (they take the rebuild lock shared), so nothing written meanwhile is lost.
    pub async fn replay(
        &self,
        chunk: usize,
        mut progress: impl FnMut(&ReplayProgress),
    ) -> Result<ReplayStats, Error> {
        let started = Instant::now();
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(REBUILD_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("TRUNCATE {DERIVED}"))
            .execute(&mut *tx)
            .await?;
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM stripe_events")
            .fetch_one(&mut *tx)
            .await?;
        // A cursor streams the events without holding them all in memory.
        sqlx::query(
            "DECLARE replay_events NO SCROLL CURSOR FOR
             SELECT event_id, event_type, created, payload::text FROM stripe_events
             ORDER BY created, event_id",
        )
        .execute(&mut *tx)
        .await?;
        let fetch = format!("FETCH {} FROM replay_events", chunk.max(1));
        let mut done = 0u64;
        let mut rows_written = 0;
        loop {
            let rows: Vec<(String, String, i64, String)> =
                sqlx::query_as(&fetch).fetch_all(&mut *tx).await?;
            if rows.is_empty() {
                break;
            }
            done += rows.len() as u64;
            let mut events = Vec::with_capacity(rows.len());
            for (event_id, event_type, created, payload) in rows {
                let stored = |message: String| Error::StoredEvent {
                    event_id: event_id.clone(),
                    message,
                };
                // The live path's parser: what was folded then is folded the same way now.
                let incoming = IncomingEvent::parse(payload.as_bytes(), 0, 0)
                    .map_err(|e| stored(e.to_string()))?;
                events.push(FoldEvent {
                    version: Version::new(created, &event_type, event_id.clone()),
                    funds: DisputeFunds::of(&event_type),
                    account: incoming.event.account.clone(),
                    object: incoming.object,
                });
            }
            let folded = fold(&mut tx, &events).await?;
            folded.deltas.apply(&mut tx).await?;
            rows_written += folded.rows_written;
            progress(&ReplayProgress {
                done,
                total: u64::try_from(total).unwrap_or(0),
                elapsed: started.elapsed(),
            });
        }
        sqlx::query("CLOSE replay_events").execute(&mut *tx).await?;
        // The windows were left out of the fold (their state was emptied): built once, now.
        let today = windows::today(&mut tx).await?;
        windows::rebuild(&mut tx, today).await?;
        // Every card may have changed: tell live listeners (a replay rebuilds the same rows,
        // so it adds nothing to the change feed).
        let cards: Vec<String> = sqlx::query_scalar("SELECT id FROM cards")
            .fetch_all(&mut *tx)
            .await?;
        notify(&mut tx, &cards, None).await?;
        tx.commit().await?;
        Ok(ReplayStats {
            events: done,
            rows_written,
            elapsed: started.elapsed(),
        })
    }
}
