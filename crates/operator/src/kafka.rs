//! The reconciler's Kafka step: the events topic (and its dead-letter topic) exist with at least
//! the requested partitions, and how far the aggregator's consumer group is behind.

use cardstream_kafka::{Credentials, KafkaArgs, TopicArgs, parse_property};

use crate::{CardStream, Error, consumer_group};

/// What the Kafka step found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KafkaState {
    /// Partitions of the events topic after the step (never fewer than before).
    pub partitions: i32,
    /// Records the aggregator's group has not committed yet, summed over partitions.
    pub lag: i64,
}

/// The client settings a CardStream's spec describes, with the credentials read from its
/// `spec.kafka.credentialsSecret`.
pub fn kafka_args(cs: &CardStream, credentials: Option<Credentials>) -> Result<KafkaArgs, Error> {
    let spec = &cs.spec.kafka;
    let properties = spec
        .properties
        .iter()
        .map(|raw| parse_property(raw).map_err(Error::KafkaProperty))
        .collect::<Result<_, _>>()?;
    Ok(KafkaArgs {
        brokers: spec.bootstrap_servers.clone(),
        topic: spec.topic.clone(),
        properties,
        credentials,
    })
}

/// Creates or grows the topics, then measures the consumer group's lag.
pub async fn observe(
    cs: &CardStream,
    credentials: Option<Credentials>,
) -> Result<KafkaState, Error> {
    let kafka = kafka_args(cs, credentials)?;
    cardstream_kafka::ensure_topics(&TopicArgs {
        kafka: kafka.clone(),
        partitions: cs.spec.kafka.partitions,
        replication: cs.spec.kafka.replication_factor,
    })
    .await?;
    let partitions = cardstream_kafka::partition_count(&kafka, &kafka.topic).await?;
    let lag = cardstream_kafka::total_lag(&kafka, &consumer_group(cs), &kafka.topic).await?;
    Ok(KafkaState { partitions, lag })
}
