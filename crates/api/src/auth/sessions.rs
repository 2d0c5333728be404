//! Which sessions are open, as of now, cheaply.
//!
//! Every request and every websocket operation asks; answering from Postgres each time would
//! double the API's statements, so answers are cached. The cache is only trusted while this
//! process is listening on `cardstream_sessions`: every change that ends a session or edits a
//! user NOTIFYs there in its own transaction, and each notification drops that user's entries
//! (and tells open websockets to check theirs). While the listener is down, nothing is served
//! from the cache. An ended session is therefore refused as soon as its NOTIFY arrives,
//! normally within milliseconds on every replica.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cardstream_store::Store;
use tokio::sync::broadcast;

use super::tokens::Credentials;
use super::viewer::Viewer;

/// How long an answer is reused even without a notification: a bound on how wrong a cache
/// can be if a notification were ever lost while the listener still looked healthy.
const FRESH_FOR: Duration = Duration::from_secs(30);
/// At most this many sessions are cached; past it the cache starts over (it is only a cache).
const CAPACITY: usize = 50_000;

/// What changed: one user's sessions or account, or possibly anything (the listener
/// reconnected, so notifications may have been missed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionChange {
    User(i64),
    All,
}

#[derive(Debug)]
struct Entry {
    viewer: Option<Arc<Viewer>>,
    user_id: i64,
    fetched: Instant,
}

/// The session cache of one API process.
#[derive(Debug, Clone)]
pub(crate) struct Sessions {
    store: Store,
    cache: Arc<Mutex<HashMap<String, Entry>>>,
    listening: Arc<AtomicBool>,
    changes: broadcast::Sender<SessionChange>,
}

impl Sessions {
    pub(crate) fn new(store: Store) -> Self {
        Sessions {
            store,
            cache: Arc::new(Mutex::new(HashMap::new())),
            listening: Arc::new(AtomicBool::new(false)),
            changes: broadcast::channel(256).0,
        }
    }

    /// The viewer behind verified credentials, or `None` when the session is ended, expired,
    /// unknown, or its user is disabled or gone. `Err` when Postgres could not say.
    pub(crate) async fn viewer(
        &self,
        credentials: &Credentials,
    ) -> Result<Option<Arc<Viewer>>, cardstream_store::Error> {
        if credentials.expired() {
            return Ok(None);
        }
        if self.listening.load(Ordering::Acquire)
            && let Ok(cache) = self.cache.lock()
            && let Some(entry) = cache.get(&credentials.session_id)
            && entry.fetched.elapsed() < FRESH_FOR
            && entry.user_id == credentials.user_id
        {
            return Ok(entry.viewer.clone());
        }
        // Taken before the read: a change announced while the read runs must not be hidden
        // by the (older) answer this read stores.
        let was_listening = self.listening.load(Ordering::Acquire);
        let mut notified = self.changes.subscribe();
        let viewer = self
            .store
            .session(&credentials.session_id)
            .await?
            .filter(|open| open.user.id == credentials.user_id)
            .map(|open| {
                Arc::new(Viewer {
                    user: open.user,
                    cardholders: open.cardholders.into_iter().collect(),
                    accounts: open.accounts.into_iter().collect(),
                    session_id: credentials.session_id.clone(),
                })
            });
        let raced = loop {
            match notified.try_recv() {
                Ok(SessionChange::User(user)) if user != credentials.user_id => continue,
                Err(broadcast::error::TryRecvError::Empty) => break false,
                _ => break true,
            }
        };
        if was_listening
            && !raced
            && let Ok(mut cache) = self.cache.lock()
        {
            if cache.len() >= CAPACITY {
                cache.clear();
            }
            cache.insert(
                credentials.session_id.clone(),
                Entry {
                    viewer: viewer.clone(),
                    user_id: credentials.user_id,
                    fetched: Instant::now(),
                },
            );
        }
        Ok(viewer)
    }

    /// Forgets what is cached about a user (or everyone) and tells open websockets.
    pub(crate) fn changed(&self, change: SessionChange) {
        if let Ok(mut cache) = self.cache.lock() {
            match change {
                SessionChange::User(user) => cache.retain(|_, e| e.user_id != user),
                SessionChange::All => cache.clear(),
            }
        }
        // No open websocket is fine.
        let _ = self.changes.send(change);
    }

    /// Whether notifications are arriving; the cache is bypassed (and emptied) while not.
    pub(crate) fn set_listening(&self, listening: bool) {
        if !listening {
            self.listening.store(false, Ordering::Release);
            self.changed(SessionChange::All);
        } else {
            // Anything cached before was cached without notifications: start clean.
            self.changed(SessionChange::All);
            self.listening.store(true, Ordering::Release);
        }
    }

    /// Announcements of changes, for open websockets.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<SessionChange> {
        self.changes.subscribe()
    }
}
