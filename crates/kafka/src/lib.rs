//! Kafka as cardstream uses it: connection settings shared by every component, the event
//! producer, topic administration, and the record headers that travel with each event.

mod config;
pub mod headers;
mod lag;
mod mac;
mod producer;
mod redrive;
mod stats;
mod topics;

pub use config::{Credentials, KafkaArgs, Quiet, TopicArgs, is_credential, parse_property};
pub use lag::{PartitionLag, group_lag, total_lag};
pub use mac::{MacError, RecordKeyArgs, RecordKeys};
pub use producer::{Delivery, EventProducer, OutgoingEvent, ProducerTuning, await_delivery};
pub use rdkafka;
pub use redrive::{Redriven, Redriver};
pub use stats::{ClientStats, STATISTICS_INTERVAL, StatsContext};
pub use topics::{ensure_topic, partition_count};

/// Ensures the events topic and its dead-letter topic exist with at least `partitions`.
pub async fn ensure_topics(args: &TopicArgs) -> Result<(), Error> {
    let events = ensure_topic(
        &args.kafka,
        &args.kafka.topic,
        args.partitions,
        args.replication,
    )
    .await?;
    let dlq_name = dlq_topic(&args.kafka.topic);
    // Dead letters are rare; a few partitions are plenty.
    let dlq = ensure_topic(
        &args.kafka,
        &dlq_name,
        args.partitions.min(3),
        args.replication,
    )
    .await?;
    tracing::info!(topic = %args.kafka.topic, partitions = events, dlq = %dlq_name, dlq_partitions = dlq, "topics ready");
    Ok(())
}

/// The dead-letter topic for a given events topic.
pub fn dlq_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid Kafka client configuration: {0}")]
    Config(#[source] rdkafka::error::KafkaError),
    #[error("the broker did not acknowledge the record within {0:?}")]
    Timeout(std::time::Duration),
    #[error("the broker rejected or failed to store the record: {0}")]
    Produce(#[source] rdkafka::error::KafkaError),
    #[error("the producer's local queue is full; the broker is not keeping up or unreachable")]
    QueueFull,
    #[error("cannot reach the Kafka cluster: {0}")]
    Unreachable(#[source] rdkafka::error::KafkaError),
    #[error("topic administration failed for {topic}: {message}")]
    Admin { topic: String, message: String },
    #[error("topic {0} does not exist")]
    NoSuchTopic(String),
    #[error("invalid record keys: {0}")]
    RecordKeys(String),
}

impl Error {
    /// The [`Error::reason`]s a produce can end with, so that a metric can export each from the
    /// start.
    pub const PRODUCE_REASONS: [&'static str; 4] =
        ["timeout", "rejected", "queue_full", "unreachable"];

    /// A short, stable label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Timeout(_) => "timeout",
            Error::Produce(_) => "rejected",
            Error::QueueFull => "queue_full",
            Error::Unreachable(_) => "unreachable",
            Error::Admin { .. } => "admin",
            Error::NoSuchTopic(_) => "no_such_topic",
            Error::RecordKeys(_) => "record_keys",
        }
    }
}
