use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// A record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: BTreeMap<String, Vec<u8>>,
}

impl Record {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// Reads every partition of `topic` from the beginning until `expected` records arrived or
/// `timeout` passed, then returns what was read (so a test can say how many were missing).
/// Records come back in partition, then offset order. It stops at `expected`: a record beyond
/// those (a duplicate) goes unseen; [`read_to_end`] sees it.
pub async fn read_records(
    brokers: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    timeout: Duration,
) -> Vec<Record> {
    read(brokers, topic, partitions, expected, false, timeout).await
}

/// Everything `topic` holds: reads until at least `at_least` records arrived, then on until
/// every partition is read up to its high watermark as it was then (or `timeout` passed).
/// A record produced twice comes back twice, so a test that counts what it reads sees it.
/// Records come back in partition, then offset order.
pub async fn read_to_end(
    brokers: &str,
    topic: &str,
    partitions: i32,
    at_least: usize,
    timeout: Duration,
) -> Vec<Record> {
    read(brokers, topic, partitions, at_least, true, timeout).await
}

async fn read(
    brokers: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    to_end: bool,
    timeout: Duration,
) -> Vec<Record> {
    let brokers = brokers.to_owned();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", crate::unique_name("testbed_reader"))
            .set("enable.auto.commit", "false")
            .create()
            .expect("test consumer");
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions {
            assignment
                .add_partition_offset(&topic, partition, Offset::Beginning)
                .expect("assignment");
        }
        consumer.assign(&assignment).expect("assign partitions");
        let deadline = Instant::now() + timeout;
        let mut records = Vec::new();
        // Per partition, the offset after the last record read, and (once `expected` arrived,
        // when reading to the end) its low and high watermarks: read up to the high one.
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        let mut ends: Option<BTreeMap<i32, (i64, i64)>> = None;
        while Instant::now() < deadline {
            if records.len() >= expected {
                if !to_end {
                    break;
                }
                let ends = ends.get_or_insert_with(|| {
                    (0..partitions)
                        .map(|p| {
                            let watermarks = consumer
                                .fetch_watermarks(&topic, p, Duration::from_secs(10))
                                .expect("the topic's watermarks");
                            (p, watermarks)
                        })
                        .collect()
                });
                if ends
                    .iter()
                    .all(|(p, (low, high))| next.get(p).copied().unwrap_or(*low) >= *high)
                {
                    break;
                }
            }
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    next.insert(message.partition(), message.offset() + 1);
                    records.push(Record {
                        partition: message.partition(),
                        offset: message.offset(),
                        key: message.key().map(<[u8]>::to_vec),
                        payload: message.payload().unwrap_or_default().to_vec(),
                        headers: message
                            .headers()
                            .map(|headers| {
                                headers
                                    .iter()
                                    .map(|h| {
                                        (h.key.to_owned(), h.value.unwrap_or_default().to_vec())
                                    })
                                    .collect()
                            })
                            .unwrap_or_default(),
                    });
                }
                Some(Err(err)) => eprintln!("test consumer: {err}"),
                None => {}
            }
        }
        records.sort_by_key(|r| (r.partition, r.offset));
        records
    })
    .await
    .expect("reader task")
}
