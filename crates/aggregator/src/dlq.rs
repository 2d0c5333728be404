//! The dead-letter topic: records the aggregator cannot fold, with headers saying why and where
//! they came from. A record's offset is stored only after its dead letter was acknowledged.

use std::time::Duration;

use cardstream_kafka::{ClientStats, Error as KafkaError, KafkaArgs, StatsContext, dlq_topic};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::Error;
use crate::records::DeadLetter;

use cardstream_kafka::headers::{
    DLQ_ERROR as ERROR, DLQ_REASON as REASON, DLQ_SOURCE_OFFSET as SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION as SOURCE_PARTITION, DLQ_SOURCE_TOPIC as SOURCE_TOPIC,
};

/// Produces dead letters.
pub(crate) struct DeadLetters {
    producer: FutureProducer<StatsContext>,
    source_topic: String,
    topic: String,
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl DeadLetters {
    /// A producer of dead letters whose librdkafka statistics go to `stats` as `client="dlq"`.
    pub(crate) fn new(kafka: &KafkaArgs, stats: ClientStats) -> Result<Self, Error> {
        let context = StatsContext::new(stats, "dlq");
        let statistics = context.config();
        let mut settings = vec![
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("message.timeout.ms", "10000"),
        ];
        if let Some((key, value)) = &statistics {
            settings.push((key, value.as_str()));
        }
        let producer = kafka
            .client_config(&settings)
            .create_with_context(context)
            .map_err(|e| Error::Kafka(KafkaError::Config(e)))?;
        Ok(DeadLetters {
            producer,
            source_topic: kafka.topic.clone(),
            topic: dlq_topic(&kafka.topic),
        })
    }

    /// Sends every dead letter and waits for all acknowledgements.
    pub(crate) async fn send(&self, letters: &[&DeadLetter]) -> Result<(), KafkaError> {
        let mut pending = Vec::with_capacity(letters.len());
        for letter in letters {
            let partition = letter.partition.to_string();
            let offset = letter.offset.to_string();
            // Error texts come from parsers and may quote the record; keep headers small.
            let error: String = letter.error.chars().take(1_000).collect();
            let mut headers = OwnedHeaders::new_with_capacity(letter.headers.len() + 5);
            for (key, value) in &letter.headers {
                headers = headers.insert(Header {
                    key,
                    value: Some(value),
                });
            }
            let headers = headers
                .insert(Header {
                    key: REASON,
                    value: Some(letter.reason),
                })
                .insert(Header {
                    key: ERROR,
                    value: Some(&error),
                })
                .insert(Header {
                    key: SOURCE_TOPIC,
                    value: Some(&self.source_topic),
                })
                .insert(Header {
                    key: SOURCE_PARTITION,
                    value: Some(&partition),
                })
                .insert(Header {
                    key: SOURCE_OFFSET,
                    value: Some(&offset),
                });
            let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic)
                .payload(&letter.payload)
                .headers(headers);
            if let Some(key) = &letter.key {
                record = record.key(key);
            }
            let delivery = self
                .producer
                .send_result(record)
                .map_err(|(err, _)| KafkaError::Produce(err))?;
            pending.push(delivery);
        }
        for delivery in pending {
            cardstream_kafka::await_delivery(delivery, Duration::from_secs(15)).await?;
        }
        Ok(())
    }
}
