//! One LISTEN per API process on the aggregator's `cardstream_activity` channel, fanned out to
//! every subscription.

use std::sync::Arc;
use std::time::Duration;

use cardstream_store::ACTIVITY_CHANNEL;
use cardstream_telemetry::CancellationToken;
use prometheus::IntCounterVec;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;

/// Cards changed by one committed batch.
pub(crate) type ChangedCards = Arc<Vec<String>>;

/// The fan-out of activity notifications.
#[derive(Clone, Debug)]
pub(crate) struct Live {
    sender: broadcast::Sender<ChangedCards>,
}

impl Live {
    /// Starts listening; reconnects with backoff while Postgres is away.
    pub(crate) fn start(
        database_url: String,
        notifications: IntCounterVec,
        shutdown: CancellationToken,
    ) -> Live {
        let (sender, _) = broadcast::channel(1024);
        let live = Live {
            sender: sender.clone(),
        };
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            loop {
                let listened = async {
                    let mut listener = PgListener::connect(&database_url).await?;
                    listener.listen(ACTIVITY_CHANNEL).await?;
                    tracing::info!(channel = ACTIVITY_CHANNEL, "listening for activity");
                    loop {
                        let note = listener.recv().await?;
                        let cards: Vec<String> =
                            serde_json::from_str::<serde_json::Value>(note.payload())
                                .ok()
                                .and_then(|v| {
                                    v["cards"].as_array().map(|a| {
                                        a.iter()
                                            .filter_map(|c| c.as_str().map(str::to_owned))
                                            .collect()
                                    })
                                })
                                .unwrap_or_default();
                        notifications.with_label_values(&["received"]).inc();
                        // No subscribers is fine.
                        let _ = sender.send(Arc::new(cards));
                    }
                    #[allow(unreachable_code)]
                    Ok::<(), sqlx::Error>(())
                };
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    result = listened => {
                        if let Err(err) = result {
                            notifications.with_label_values(&["listener_error"]).inc();
                            tracing::warn!(error = %err, retry_in = ?backoff, "activity listener lost; reconnecting");
                        }
                    }
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        });
        live
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<ChangedCards> {
        self.sender.subscribe()
    }
}
