use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::{Error, KafkaArgs};

/// How far a consumer group is behind in one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLag {
    pub partition: i32,
    /// The next offset the broker will write (high watermark).
    pub end: i64,
    /// The group's committed offset; `None` when it has committed nothing yet.
    pub committed: Option<i64>,
}

impl PartitionLag {
    /// Records written but not yet committed by the group (from the log start when it has
    /// committed nothing).
    pub fn lag(&self, start: i64) -> i64 {
        (self.end - self.committed.unwrap_or(start)).max(0)
    }
}

/// The committed offsets of `group` on every partition of `topic`, with each partition's
/// high watermark. Reads without joining the group, so it never disturbs the consumers.
pub async fn group_lag(
    kafka: &KafkaArgs,
    group: &str,
    topic: &str,
) -> Result<Vec<(PartitionLag, i64)>, Error> {
    let partitions = crate::partition_count(kafka, topic).await?;
    let consumer: BaseConsumer = kafka
        .client_config(&[("group.id", group), ("enable.auto.commit", "false")])
        .create()
        .map_err(Error::Config)?;
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let timeout = Duration::from_secs(10);
        let mut wanted = TopicPartitionList::new();
        for p in 0..partitions {
            wanted.add_partition(&topic, p);
        }
        let committed = consumer
            .committed_offsets(wanted, timeout)
            .map_err(Error::Unreachable)?;
        let mut out = Vec::new();
        for p in 0..partitions {
            let (low, high) = consumer
                .fetch_watermarks(&topic, p, timeout)
                .map_err(Error::Unreachable)?;
            let committed = committed
                .find_partition(&topic, p)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                });
            out.push((
                PartitionLag {
                    partition: p,
                    end: high,
                    committed,
                },
                low,
            ));
        }
        Ok(out)
    })
    .await
    .map_err(|e| Error::Admin {
        topic: String::new(),
        message: e.to_string(),
    })?
}

/// Total lag of `group` on `topic`, in records.
pub async fn total_lag(kafka: &KafkaArgs, group: &str, topic: &str) -> Result<i64, Error> {
    Ok(group_lag(kafka, group, topic)
        .await?
        .iter()
        .map(|(lag, start)| lag.lag(*start))
        .sum())
}
