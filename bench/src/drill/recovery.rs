//! Recovery time, measured the same way in every drill: from the moment the fault was repaired
//! (the broker or Postgres accepting connections again, a replacement started, a scale step)
//! until every partition has committed to Postgres an event the broker received after that
//! moment. It is the time until the whole path (gateway, broker, aggregators, Postgres) works
//! again for every card, not just until some process is up.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use cardstream_store::Store;
use tokio::task::JoinHandle;

use super::system::{GROUP, System, TOPIC};

/// How long a drill waits for recovery before calling it failed.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A running measurement started at a repair.
#[derive(Debug)]
pub(crate) struct Recovery {
    pub(crate) repaired: Instant,
    task: JoinHandle<Option<Instant>>,
}

impl Recovery {
    /// Notes each partition's end offset now and starts watching Postgres for events past it.
    pub(crate) async fn start(system: &System, repaired: Instant) -> anyhow::Result<Recovery> {
        let marks = end_offsets(system).await?;
        let store = system.store.clone();
        let task = tokio::spawn(async move { watch(store, marks).await });
        Ok(Recovery { repaired, task })
    }

    /// When every partition was fresh again, or `None` if it did not happen within a minute.
    pub(crate) async fn finish(self) -> anyhow::Result<Option<Instant>> {
        self.task.await.context("the recovery watch failed")
    }
}

/// Each partition's high watermark: the offset the next record will get. The broker may have
/// just restarted, so this is retried for a while.
async fn end_offsets(system: &System) -> anyhow::Result<BTreeMap<i32, i64>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match cardstream_kafka::group_lag(&system.kafka, GROUP, TOPIC).await {
            Ok(lags) => return Ok(lags.iter().map(|(l, _)| (l.partition, l.end)).collect()),
            Err(err) if Instant::now() < deadline => {
                eprintln!("  reading end offsets again: {err}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => return Err(err).context("cannot read the topic's end offsets"),
        }
    }
}

async fn watch(store: Store, marks: BTreeMap<i32, i64>) -> Option<Instant> {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        // Errors are expected while Postgres itself is down; keep asking.
        if let Ok(rows) = sqlx::query_as::<_, (i32, i64)>(
            "SELECT kafka_partition, max(kafka_offset) FROM stripe_events GROUP BY 1",
        )
        .fetch_all(store.pool())
        .await
        {
            let fresh: BTreeMap<i32, i64> = rows.into_iter().collect();
            if marks
                .iter()
                .all(|(p, end)| fresh.get(p).is_some_and(|max| max >= end))
            {
                return Some(Instant::now());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}
