use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use crate::{Error, KafkaArgs};

/// Creates `topic` with `partitions` partitions if it does not exist, and adds partitions if it
/// has fewer. Never removes any (Kafka cannot), and is safe to call on every start.
pub async fn ensure_topic(
    kafka: &KafkaArgs,
    topic: &str,
    partitions: i32,
    replication: i32,
) -> Result<i32, Error> {
    reachable(kafka).await?;
    let admin: AdminClient<DefaultClientContext> =
        kafka.client_config(&[]).create().map_err(Error::Config)?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let admin_error = |message: String| Error::Admin {
        topic: topic.to_owned(),
        message,
    };
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    let results = admin
        .create_topics([&new], &options)
        .await
        .map_err(|e| admin_error(e.to_string()))?;
    for result in results {
        match result {
            Ok(_) => tracing::info!(topic, partitions, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(admin_error(format!("create failed: {code}"))),
        }
    }
    let current = partition_count(kafka, topic).await?;
    if current < partitions {
        let grow = NewPartitions::new(topic, usize::try_from(partitions).unwrap_or_default());
        let growing = |why: String| {
            admin_error(format!(
                "adding partitions ({current} → {partitions}): {why}"
            ))
        };
        for result in admin
            .create_partitions([&grow], &options)
            .await
            .map_err(|e| growing(e.to_string()))?
        {
            result.map_err(|(_, code)| growing(code.to_string()))?;
        }
        tracing::info!(topic, from = current, to = partitions, "added partitions");
        return Ok(partitions);
    }
    Ok(current)
}

/// Asks the cluster for its metadata: a cluster that is down says so here as
/// [`Error::Unreachable`], where the admin calls would only time out.
async fn reachable(kafka: &KafkaArgs) -> Result<(), Error> {
    let consumer: BaseConsumer = kafka.client_config(&[]).create().map_err(Error::Config)?;
    tokio::task::spawn_blocking(move || {
        consumer
            .fetch_metadata(None, Duration::from_secs(10))
            .map(|_| ())
            .map_err(Error::Unreachable)
    })
    .await
    .map_err(|e| Error::Admin {
        topic: String::new(),
        message: e.to_string(),
    })?
}

/// How many partitions `topic` has, from the cluster's metadata.
pub async fn partition_count(kafka: &KafkaArgs, topic: &str) -> Result<i32, Error> {
    let consumer: BaseConsumer = kafka.client_config(&[]).create().map_err(Error::Config)?;
    let topic_name = topic.to_owned();
    // Metadata calls block; keep them off the async workers.
    tokio::task::spawn_blocking(move || {
        let metadata = consumer
            .fetch_metadata(Some(&topic_name), Duration::from_secs(10))
            .map_err(Error::Unreachable)?;
        let found = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic_name && t.error().is_none())
            .ok_or_else(|| Error::NoSuchTopic(topic_name.clone()))?;
        if found.partitions().is_empty() {
            return Err(Error::NoSuchTopic(topic_name));
        }
        Ok(i32::try_from(found.partitions().len()).unwrap_or(i32::MAX))
    })
    .await
    .map_err(|e| Error::Admin {
        topic: topic.to_owned(),
        message: e.to_string(),
    })?
}
