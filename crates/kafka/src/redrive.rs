//! Writing a dead letter back to the main topic, as `cardstream dlq redrive` and the
//! aggregator (for a redrive asked for in the console) both do: the record's key, payload and
//! own headers, its MAC made again when keys are given (the original kept otherwise), and a
//! header naming the dead letter it came from.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::{Delivery, Error, KafkaArgs, RecordKeys, await_delivery, headers};

/// A dead letter to write back.
#[derive(Debug, Clone, Copy)]
pub struct Redriven<'a> {
    /// The dead letter's id, for the `cardstream-redriven-from` header.
    pub id: i64,
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
    /// The record's own headers, as it was read.
    pub headers: &'a [(&'a str, &'a [u8])],
}

/// Writes dead letters back to the main topic.
pub struct Redriver {
    producer: FutureProducer,
    topic: String,
    keys: Option<RecordKeys>,
}

impl std::fmt::Debug for Redriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redriver")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl Redriver {
    /// A producer to `kafka`'s topic; `keys` sign what it writes.
    pub fn new(kafka: &KafkaArgs, keys: Option<RecordKeys>) -> Result<Self, Error> {
        let producer = kafka
            .client_config(&[
                ("enable.idempotence", "true"),
                ("acks", "all"),
                ("message.timeout.ms", "30000"),
            ])
            .create()
            .map_err(Error::Config)?;
        Ok(Redriver {
            producer,
            topic: kafka.topic.clone(),
            keys,
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Writes `record` and waits until the broker stored it.
    pub async fn write(&self, record: Redriven<'_>) -> Result<Delivery, Error> {
        let mut out = OwnedHeaders::new_with_capacity(record.headers.len() + 1);
        for &(name, value) in record.headers {
            if name == headers::MAC && self.keys.is_some() {
                continue;
            }
            out = out.insert(Header {
                key: name,
                value: Some(value),
            });
        }
        if let Some(keys) = &self.keys {
            let mac = keys.sign(record.payload);
            out = out.insert(Header {
                key: headers::MAC,
                value: Some(mac.as_bytes()),
            });
        }
        let from = record.id.to_string();
        out = out.insert(Header {
            key: headers::REDRIVEN_FROM,
            value: Some(&from),
        });
        let mut outgoing = FutureRecord::<[u8], [u8]>::to(&self.topic)
            .payload(record.payload)
            .headers(out);
        if let Some(key) = record.key {
            outgoing = outgoing.key(key);
        }
        let delivery = self
            .producer
            .send_result(outgoing)
            .map_err(|(err, _)| Error::Produce(err))?;
        await_delivery(delivery, Duration::from_secs(30)).await
    }
}
