//! The program overview's rollup reads, shared by every viewer of one API process for a
//! second. The overview refetches on every `programActivity` tick (up to once a second per
//! open page), and its sums over a range (top cards and merchants above all: every card's days
//! in the range) cost the same however many admins ask; so a read younger than `FRESH` is
//! served as it is, an older one (up to `STALE`) is served while one refresh runs in the
//! background, and only a read older than that, or never made, is waited for (once, however
//! many ask at the same time). What a page shows is thus at most about a second behind the
//! rollups, and the live feed of authorizations (not read through here) is not behind at all.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Served as it is.
const FRESH: Duration = Duration::from_secs(1);
/// Served while a refresh runs; older is read again before answering.
const STALE: Duration = Duration::from_secs(30);
/// Reads kept at most (ranges × accounts × currencies × what): past it, those older than
/// `STALE` go, then any.
const KEPT: usize = 512;

struct Entry<V> {
    value: Mutex<Option<(Instant, V)>>,
    /// Held while the value is read from Postgres, so that it is read once.
    reading: tokio::sync::Mutex<()>,
    refreshing: AtomicBool,
}

/// Values of `K`, each read at most once at a time and shared while fresh.
pub struct Shared<K, V> {
    entries: Mutex<HashMap<K, Arc<Entry<V>>>>,
    fresh: Duration,
    stale: Duration,
}

impl<K, V> Default for Shared<K, V> {
    fn default() -> Self {
        Shared::new(FRESH, STALE)
    }
}

impl<K, V> Shared<K, V> {
    /// Values served as they are for `fresh` and while read again up to [`STALE`]; with
    /// `fresh` zero, never shared (each read waits for its own).
    pub fn sharing_for(fresh: Duration) -> Self {
        let stale = if fresh.is_zero() {
            fresh
        } else {
            STALE.max(fresh)
        };
        Shared::new(fresh, stale)
    }

    /// Values served as they are for `fresh`, and while read again up to `stale`.
    pub fn new(fresh: Duration, stale: Duration) -> Self {
        Shared {
            entries: Mutex::default(),
            fresh,
            stale,
        }
    }
}

impl<K, V> Shared<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// The value of `key`: as read less than `FRESH` ago; as read less than `STALE` ago while
    /// `read` refreshes it in the background; or read now.
    pub async fn get<F, Fut, E>(&self, key: K, read: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
        E: Send + 'static,
    {
        if self.fresh.is_zero() {
            return read().await;
        }
        let entry = self.entry(key);
        if let Some((at, value)) = current(&entry) {
            if at.elapsed() < self.fresh {
                return Ok(value);
            }
            if at.elapsed() < self.stale {
                if !entry.refreshing.swap(true, Ordering::AcqRel) {
                    let entry = entry.clone();
                    tokio::spawn(async move {
                        let _reading = entry.reading.lock().await;
                        if let Ok(value) = read().await {
                            store(&entry, value);
                        }
                        entry.refreshing.store(false, Ordering::Release);
                    });
                }
                return Ok(value);
            }
        }
        let _reading = entry.reading.lock().await;
        // Read by whoever held the lock before.
        if let Some((at, value)) = current(&entry)
            && at.elapsed() < self.fresh
        {
            return Ok(value);
        }
        let value = read().await?;
        store(&entry, value.clone());
        Ok(value)
    }

    fn entry(&self, key: K) -> Arc<Entry<V>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= KEPT && !entries.contains_key(&key) {
            let stale = self.stale;
            entries.retain(|_, e| current(e).is_some_and(|(at, _)| at.elapsed() < stale));
            // Still full (an admin asking for many ranges at once): any go, to be read again
            // when asked; those being read finish, as their readers hold them.
            let excess = (entries.len() + 1).saturating_sub(KEPT);
            let gone: Vec<K> = entries.keys().take(excess).cloned().collect();
            for key in gone {
                entries.remove(&key);
            }
        }
        entries
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Entry {
                    value: Mutex::new(None),
                    reading: tokio::sync::Mutex::new(()),
                    refreshing: AtomicBool::new(false),
                })
            })
            .clone()
    }
}

fn current<V: Clone>(entry: &Entry<V>) -> Option<(Instant, V)> {
    entry
        .value
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

fn store<V>(entry: &Entry<V>, value: V) {
    *entry.value.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), value));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A read that counts itself and answers `n` after `delay`.
    fn counted(
        reads: &Arc<AtomicUsize>,
        delay: Duration,
    ) -> impl FnOnce() -> std::pin::Pin<Box<dyn Future<Output = Result<usize, ()>> + Send>>
    + Send
    + 'static {
        let reads = reads.clone();
        move || {
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                Ok(reads.fetch_add(1, Ordering::SeqCst) + 1)
            })
        }
    }

    #[tokio::test]
    async fn sharing_for_zero_reads_for_every_ask_at_once() {
        let shared: Arc<Shared<&str, usize>> = Arc::new(Shared::sharing_for(Duration::ZERO));
        // Each read waits for all five to have started: reads held one at a time (or one read
        // shared) would never get there.
        let all = Arc::new(tokio::sync::Barrier::new(5));
        let asks: Vec<_> = (0..5)
            .map(|n| {
                let (shared, all) = (shared.clone(), all.clone());
                tokio::spawn(async move {
                    shared
                        .get("k", move || async move {
                            all.wait().await;
                            Ok::<_, ()>(n)
                        })
                        .await
                })
            })
            .collect();
        let mut got = Vec::new();
        for ask in asks {
            let answer = tokio::time::timeout(Duration::from_secs(10), ask).await;
            got.push(
                answer
                    .expect("the reads waited on each other")
                    .unwrap()
                    .unwrap(),
            );
        }
        got.sort_unstable();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn many_at_once_read_once_and_a_fresh_value_is_not_read_again() {
        let shared: Arc<Shared<&str, usize>> = Arc::default();
        let reads = Arc::new(AtomicUsize::new(0));
        let asks: Vec<_> = (0..10)
            .map(|_| {
                let (shared, read) = (shared.clone(), counted(&reads, Duration::from_millis(50)));
                tokio::spawn(async move { shared.get("k", read).await })
            })
            .collect();
        for ask in asks {
            assert_eq!(ask.await.unwrap(), Ok(1));
        }
        assert_eq!(
            shared.get("k", counted(&reads, Duration::ZERO)).await,
            Ok(1)
        );
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        // Another key is its own.
        assert_eq!(
            shared.get("j", counted(&reads, Duration::ZERO)).await,
            Ok(2)
        );
    }

    #[tokio::test]
    async fn a_value_past_fresh_is_served_while_it_is_read_again_once() {
        let (fresh, stale) = (Duration::from_millis(300), Duration::from_millis(1_000));
        let shared: Shared<&str, usize> = Shared::new(fresh, stale);
        let reads = Arc::new(AtomicUsize::new(0));
        assert_eq!(
            shared.get("k", counted(&reads, Duration::ZERO)).await,
            Ok(1)
        );
        tokio::time::sleep(fresh).await;
        // Stale: served at once, and one refresh starts (not one per ask).
        for _ in 0..3 {
            let read = counted(&reads, Duration::from_millis(50));
            assert_eq!(shared.get("k", read).await, Ok(1));
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        assert_eq!(
            shared.get("k", counted(&reads, Duration::ZERO)).await,
            Ok(2)
        );
        // Past `stale` it is read before answering.
        tokio::time::sleep(stale + Duration::from_millis(100)).await;
        assert_eq!(
            shared.get("k", counted(&reads, Duration::ZERO)).await,
            Ok(3)
        );
    }

    #[tokio::test]
    async fn no_more_than_kept_reads_are_held() {
        let shared: Shared<usize, usize> = Shared::default();
        for key in 0..KEPT + 100 {
            assert_eq!(
                shared
                    .get(key, move || async move { Ok::<_, ()>(key) })
                    .await,
                Ok(key)
            );
        }
        assert!(shared.entries.lock().unwrap().len() <= KEPT);
    }

    #[tokio::test]
    async fn a_failed_read_is_not_kept() {
        let shared: Shared<&str, usize> = Shared::default();
        let failed = shared
            .get("k", || async { Err::<usize, &str>("down") })
            .await;
        assert_eq!(failed, Err("down"));
        assert_eq!(shared.get("k", || async { Ok::<_, &str>(7) }).await, Ok(7));
    }
}
