//! One LISTEN connection per API process, on two channels: the aggregator's
//! `cardstream_activity`, after which the process reads the change feed (migration 0019) once
//! and fans the changes out to every subscription, and `cardstream_sessions`, which tells the
//! session cache what to forget.

use std::sync::Arc;
use std::time::Duration;

use cardstream_store::{
    ACTIVITY_CHANNEL, ActivityNotice, Change, SESSIONS_CHANNEL, SessionNotice, Store,
};
use cardstream_telemetry::CancellationToken;
use prometheus::{IntCounterVec, IntGauge};
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;

use crate::auth::{SessionChange, Sessions};

/// Most changes read at once; a longer feed is read in turns.
const READ: i64 = 5_000;

/// What one committed batch (or several, read together) changed.
#[derive(Debug, Default)]
pub(crate) struct Feed {
    /// The cards named by the notifications.
    pub(crate) cards: Vec<String>,
    /// The changed authorizations, in number order.
    pub(crate) changes: Vec<Change>,
}

/// The fan-out of the change feed.
#[derive(Clone, Debug)]
pub(crate) struct Live {
    sender: broadcast::Sender<Arc<Feed>>,
    /// Subscriptions that follow the feed.
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

/// Reads the feed after `last` in turns of [`READ`], moving `last` on; what it read, in order.
async fn read_after(store: &Store, last: &mut i64) -> Result<Vec<Change>, cardstream_store::Error> {
    let mut out = Vec::new();
    loop {
        let changes = store.changes_after(*last, None, READ).await?;
        let full = changes.len() as i64 == READ;
        if let Some(c) = changes.last() {
            *last = c.seq;
        }
        out.extend(changes);
        if !full {
            return Ok(out);
        }
    }
}

impl Live {
    /// Starts listening; reconnects with backoff while Postgres is away, reading the changes
    /// committed meanwhile once it is back.
    pub(crate) fn start(
        database_url: String,
        store: Store,
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
            // The feed is followed from the first change committed after the process starts.
            let mut last: Option<i64> = None;
            loop {
                let listened = async {
                    let mut listener = PgListener::connect(&database_url).await?;
                    listener
                        .listen_all([ACTIVITY_CHANNEL, SESSIONS_CHANNEL])
                        .await?;
                    // Only now is every later session change sure to reach us.
                    sessions.set_listening(true);
                    tracing::info!("listening for activity and session changes");
                    // Listening from here on: what was committed before is read now (after a
                    // reconnect, the changes missed while away).
                    let mut seen = match last {
                        Some(seen) => seen,
                        None => store.change_bounds().await.map_err(to_sqlx)?.0,
                    };
                    let missed = read_after(&store, &mut seen).await.map_err(to_sqlx)?;
                    last = Some(seen);
                    if !missed.is_empty() {
                        let _ = sender.send(Arc::new(Feed {
                            cards: Vec::new(),
                            changes: missed,
                        }));
                    }
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
                        notifications.with_label_values(&["received"]).inc();
                        // An unreadable notice is read as "something changed": the feed says
                        // what.
                        let notice = ActivityNotice::from_payload(note.payload()).unwrap_or_else(|err| {
                            tracing::warn!(error = %err, "an activity notification could not be read");
                            ActivityNotice::default()
                        });
                        // A batch's notice in several parts (many cards) is read once.
                        let changes = if notice.seq.is_some_and(|seq| seq <= seen) {
                            Vec::new()
                        } else {
                            read_after(&store, &mut seen).await.map_err(to_sqlx)?
                        };
                        last = Some(seen);
                        // No subscribers is fine.
                        let _ = sender.send(Arc::new(Feed {
                            cards: notice.cards,
                            changes,
                        }));
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

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Feed>> {
        self.sender.subscribe()
    }

    /// Counts a subscription as listening from now until the returned guard is dropped.
    pub(crate) fn listening(&self) -> Listening {
        self.listening.inc();
        Listening(self.listening.clone())
    }
}

/// A store error where the listener's loop wants sqlx's (it reconnects on either).
fn to_sqlx(err: cardstream_store::Error) -> sqlx::Error {
    sqlx::Error::Protocol(err.to_string())
}
