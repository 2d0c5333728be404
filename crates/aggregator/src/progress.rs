//! Whether batches are being committed. A batch that cannot be written (Postgres away, a table
//! locked, statements timing out) is retried without end, which is right for the data but
//! invisible from outside unless someone says so: past a bound, `/readyz` turns false with the
//! reason, and `cardstream_batch_stalled_seconds` shows for how long.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
pub(crate) struct Progress {
    pending: Arc<Mutex<Option<Pending>>>,
}

#[derive(Debug)]
struct Pending {
    since: Instant,
    /// The last failure while writing it, e.g. `lock_timeout`.
    why: Option<String>,
}

impl Progress {
    fn with<T>(&self, f: impl FnOnce(&mut Option<Pending>) -> T) -> T {
        f(&mut self.pending.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A batch with records is being written.
    pub(crate) fn started(&self) {
        self.with(|p| {
            p.get_or_insert(Pending {
                since: Instant::now(),
                why: None,
            });
        });
    }

    /// An attempt at writing it failed.
    pub(crate) fn failed(&self, why: String) {
        self.with(|p| {
            if let Some(pending) = p {
                pending.why = Some(why);
            }
        });
    }

    /// Postgres committed it.
    pub(crate) fn committed(&self) {
        self.with(|p| *p = None);
    }

    /// How long the batch being written has waited (zero when none is).
    pub(crate) fn waiting(&self) -> Duration {
        self.with(|p| p.as_ref().map_or(Duration::ZERO, |p| p.since.elapsed()))
    }

    /// `Err` with the reason once a batch has waited longer than `bound`.
    pub(crate) fn check(&self, bound: Duration) -> Result<(), String> {
        self.with(|p| match p {
            Some(pending) if pending.since.elapsed() > bound => Err(format!(
                "no batch committed for {}s while records wait (last failure: {})",
                pending.since.elapsed().as_secs(),
                pending
                    .why
                    .as_deref()
                    .unwrap_or("none yet; a write is in progress")
            )),
            _ => Ok(()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_waiting_past_the_bound_is_reported_with_its_reason() {
        let progress = Progress::default();
        assert!(progress.check(Duration::ZERO).is_ok());
        progress.started();
        progress.failed("lock_timeout".into());
        std::thread::sleep(Duration::from_millis(5));
        let why = progress.check(Duration::from_millis(1)).unwrap_err();
        assert!(why.contains("lock_timeout"), "{why}");
        assert!(progress.check(Duration::from_secs(60)).is_ok());
        progress.committed();
        assert!(progress.check(Duration::ZERO).is_ok());
        assert_eq!(progress.waiting(), Duration::ZERO);
    }
}
