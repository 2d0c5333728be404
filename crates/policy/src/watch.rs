//! Following a file that operators edit in place (a mounted ConfigMap or Secret, or one
//! rewritten by hand). A change counts only once the file holds still, so that what reacts to
//! it never reads the file mid-write.

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How long a changed file must stay unchanged before it is read as complete.
const SETTLE: Duration = Duration::from_millis(250);

/// Calls `on_change` each time `path` changed (and then held still), checking every `every`,
/// until `shutdown`. The baseline is read now, not in the task: an edit made before the task
/// first runs still counts as a change.
pub fn watch_file(
    path: PathBuf,
    every: Duration,
    shutdown: CancellationToken,
    mut on_change: impl FnMut() + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let mut last = std::fs::read(&path).ok();
    tokio::spawn(async move {
        // `interval` panics on zero.
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = tokio::fs::read(&path).await.ok();
            if now == last {
                continue;
            }
            // A file being written changes between two reads: wait until it holds still.
            tokio::time::sleep(SETTLE).await;
            if tokio::fs::read(&path).await.ok() != now {
                continue;
            }
            last = now;
            on_change();
        }
    })
}
