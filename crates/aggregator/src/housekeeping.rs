//! Housekeeping every aggregator does now and then: deleting the live dashboard's change feed
//! older than it is kept for (an hour; migration 0019) and the health page's old counts and
//! long-silent processes (migration 0020); and rebuilding the overview's windows when the UTC
//! day has changed (migration 0021). Several aggregators doing it at once is harmless: each
//! deletes what is old, and the first to take the rebuild lock rebuilds the windows.

use std::time::Duration;

use cardstream_store::Store;
use cardstream_telemetry::CancellationToken;

/// How often: the windows are thus behind a new day by at most this (the overview reads the
/// daily rollups meanwhile).
const EVERY: Duration = Duration::from_secs(60);

/// Runs until `shutdown`.
pub(crate) fn spawn(store: Store, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match store.prune_changes().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(deleted = n, "pruned the change feed"),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot prune the change feed; trying again in a minute")
                }
            }
            match store.refresh_windows().await {
                Ok(false) => {}
                Ok(true) => tracing::info!("rebuilt the overview's windows for the new UTC day"),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot rebuild the overview's windows; the overview reads the daily rollups meanwhile; trying again in a minute")
                }
            }
            match store.prune_pipeline_status().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(deleted = n, "pruned the pipeline's old status"),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot prune the pipeline's old status; trying again in a minute")
                }
            }
        }
    });
}
