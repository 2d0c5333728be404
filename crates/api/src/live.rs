//! One LISTEN connection per API process, on two channels: the aggregator's
//! `cardstream_activity`, fanned out to every subscription, and `cardstream_sessions`, which
//! tells the session cache what to forget.

use std::sync::Arc;
use std::time::Duration;

use cardstream_store::{ACTIVITY_CHANNEL, ActivityNotice, SESSIONS_CHANNEL, SessionNotice};
use cardstream_telemetry::CancellationToken;
use prometheus::{IntCounterVec, IntGauge};
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;

use crate::auth::{SessionChange, Sessions};

/// Cards changed by one committed batch.
pub(crate) type ChangedCards = Arc<Vec<String>>;

/// The fan-out of activity notifications.
#[derive(Clone, Debug)]
pub(crate) struct Live {
    sender: broadcast::Sender<ChangedCards>,
    /// Subscriptions that have read their card's current state and wait for changes.
    listening: IntGauge,
}

/// One subscription counted as listening, for as long as it lives.
#[derive(Debug)]
pub(crate) struct Listening(IntGauge);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Live {
    /// Starts listening; reconnects with backoff while Postgres is away.
    pub(crate) fn start(
        database_url: String,
        notifications: IntCounterVec,
        listening: IntGauge,
        sessions: Sessions,
        shutdown: CancellationToken,
    ) -> Live {
        let (sender, _) = broadcast::channel(1024);
        let live = Live {
            sender: sender.clone(),
            listening,
        };
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            loop {
                let listened = async {
                    let mut listener = PgListener::connect(&database_url).await?;
                    listener
                        .listen_all([ACTIVITY_CHANNEL, SESSIONS_CHANNEL])
                        .await?;
                    // Only now is every later session change sure to reach us.
                    sessions.set_listening(true);
                    tracing::info!("listening for activity and session changes");
                    loop {
                        // try_recv, not recv: recv reconnects silently after a lost
                        // connection, hiding that notifications were missed meanwhile.
                        let Some(note) = listener.try_recv().await? else {
                            return Err(sqlx::Error::Protocol(
                                "the notification connection was lost".into(),
                            ));
                        };
                        if note.channel() == SESSIONS_CHANNEL {
                            notifications.with_label_values(&["session"]).inc();
                            // A notice that names no user re-checks every session: the safe
                            // side for a signal that something about sessions changed.
                            let user = SessionNotice::from_payload(note.payload()).ok();
                            sessions.changed(
                                user.map_or(SessionChange::All, |n| SessionChange::User(n.user)),
                            );
                            continue;
                        }
                        // An unreadable notice names no card; it is counted as received
                        // all the same and wakes no subscription.
                        let cards = match ActivityNotice::from_payload(note.payload()) {
                            Ok(notice) => notice.cards,
                            Err(err) => {
                                tracing::warn!(error = %err, "an activity notification could not be read");
                                Vec::new()
                            }
                        };
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
                        // Notifications may be missed until we listen again.
                        sessions.set_listening(false);
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

    /// Counts a subscription as listening from now until the returned guard is dropped: from
    /// then on, every change committed reaches it while the process's listener is connected
    /// (a change committed while it reconnects is seen with the next one for that card).
    pub(crate) fn listening(&self) -> Listening {
        self.listening.inc();
        Listening(self.listening.clone())
    }
}
