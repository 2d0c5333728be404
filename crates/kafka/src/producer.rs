use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

use crate::stats::{ClientStats, StatsContext};
use crate::{Error, KafkaArgs, RecordKeys, headers};

/// Producer settings that trade latency for throughput.
#[derive(Debug, Clone, Copy)]
pub struct ProducerTuning {
    /// How long librdkafka waits to fill a batch. Small, because every webhook waits for its
    /// acknowledgement.
    pub linger: Duration,
    /// How long a record may wait in the local queue and in flight before librdkafka gives up.
    /// Callers waiting on an acknowledgement use the same bound, so a record nobody waits for
    /// any more does not linger long after.
    pub delivery_timeout: Duration,
}

impl Default for ProducerTuning {
    fn default() -> Self {
        ProducerTuning {
            linger: Duration::from_millis(2),
            delivery_timeout: Duration::from_secs(5),
        }
    }
}

/// One Stripe event on its way to the topic: the raw body, untouched, plus what consumers need
/// to route and deduplicate without parsing it.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingEvent<'a> {
    pub key: &'a str,
    pub payload: &'a [u8],
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub created: i64,
    pub received_at_ms: i64,
}

/// Where the broker stored a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub partition: i32,
    pub offset: i64,
}

/// The idempotent, `acks=all` producer of Stripe events.
#[derive(Clone)]
pub struct EventProducer {
    producer: FutureProducer<StatsContext>,
    topic: String,
    delivery_timeout: Duration,
    /// Signs each record's payload, when set.
    keys: Option<std::sync::Arc<RecordKeys>>,
}

impl std::fmt::Debug for EventProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventProducer")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl EventProducer {
    pub fn new(kafka: &KafkaArgs, tuning: ProducerTuning) -> Result<Self, Error> {
        Self::with_context(kafka, tuning, StatsContext::default())
    }

    /// A producer that also exports librdkafka's statistics into `stats` (see [`ClientStats`]).
    pub fn with_stats(
        kafka: &KafkaArgs,
        tuning: ProducerTuning,
        stats: ClientStats,
    ) -> Result<Self, Error> {
        Self::with_context(kafka, tuning, StatsContext::new(stats, "producer"))
    }

    fn with_context(
        kafka: &KafkaArgs,
        tuning: ProducerTuning,
        context: StatsContext,
    ) -> Result<Self, Error> {
        let linger = tuning.linger.as_millis().to_string();
        let timeout = tuning.delivery_timeout.as_millis().max(1).to_string();
        let statistics = context.config();
        let mut defaults = vec![
            // Idempotence makes librdkafka's internal retries safe (no duplicates, no
            // reordering within a partition) and implies acks=all.
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", linger.as_str()),
            ("message.timeout.ms", timeout.as_str()),
            // Key hashing compatible with the Java client, so every Kafka tool agrees on
            // which partition a card lives in.
            ("partitioner", "murmur2_random"),
        ];
        if let Some((key, value)) = &statistics {
            defaults.push((key, value.as_str()));
        }
        let producer: FutureProducer<StatsContext> = kafka
            .client_config(&defaults)
            .create_with_context(context)
            .map_err(Error::Config)?;
        Ok(EventProducer {
            producer,
            topic: kafka.topic.clone(),
            delivery_timeout: tuning.delivery_timeout,
            keys: None,
        })
    }

    /// Signs every record with `keys` (the `cardstream-mac` header).
    pub fn signing(mut self, keys: RecordKeys) -> Self {
        self.keys = Some(std::sync::Arc::new(keys));
        self
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    fn record<'a>(&'a self, event: &OutgoingEvent<'a>) -> FutureRecord<'a, str, [u8]> {
        let created = event.created.to_string();
        let received = event.received_at_ms.to_string();
        let mac = self.keys.as_ref().map(|keys| keys.sign(event.payload));
        let headers = OwnedHeaders::new_with_capacity(5)
            .insert(Header {
                key: headers::EVENT_ID,
                value: Some(event.event_id),
            })
            .insert(Header {
                key: headers::EVENT_TYPE,
                value: Some(event.event_type),
            })
            .insert(Header {
                key: headers::EVENT_CREATED,
                value: Some(created.as_str()),
            })
            .insert(Header {
                key: headers::RECEIVED_AT_MS,
                value: Some(received.as_str()),
            });
        let headers = match &mac {
            Some(mac) => headers.insert(Header {
                key: headers::MAC,
                value: Some(mac.as_str()),
            }),
            None => headers,
        };
        FutureRecord::to(&self.topic)
            .key(event.key)
            .payload(event.payload)
            .headers(headers)
    }

    /// Enqueues the record without waiting. Fails at once when the local queue is full.
    pub fn enqueue(&self, event: &OutgoingEvent<'_>) -> Result<DeliveryFuture, Error> {
        self.producer
            .send_result(self.record(event))
            .map_err(|(err, _)| classify(err))
    }

    /// Produces the record and waits until the broker acknowledged it (all in-sync replicas),
    /// or `timeout` passed. Only an `Ok` means the event is durable.
    pub async fn send(
        &self,
        event: &OutgoingEvent<'_>,
        timeout: Duration,
    ) -> Result<Delivery, Error> {
        let delivery = self.enqueue(event)?;
        await_delivery(delivery, timeout).await
    }

    /// Waits for what is queued to be delivered, up to `timeout`; for shutdown.
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
        self.producer.flush(timeout).map_err(classify)
    }

    /// Records queued or in flight.
    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }

    /// Whether the cluster answers a metadata request for the topic within `timeout`.
    pub async fn probe(&self, timeout: Duration) -> Result<(), Error> {
        let producer = self.producer.clone();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            let metadata = producer
                .client()
                .fetch_metadata(Some(&topic), timeout)
                .map_err(Error::Unreachable)?;
            match metadata.topics().iter().find(|t| t.name() == topic) {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(()),
                _ => Err(Error::NoSuchTopic(topic)),
            }
        })
        .await
        .map_err(|join| {
            tracing::warn!(%join, "metadata probe task failed");
            Error::Unreachable(KafkaError::Canceled)
        })?
    }

    /// The default bound on waiting for a delivery.
    pub fn delivery_timeout(&self) -> Duration {
        self.delivery_timeout
    }
}

/// Waits for one delivery report, up to `timeout`.
pub async fn await_delivery(
    delivery: DeliveryFuture,
    timeout: Duration,
) -> Result<Delivery, Error> {
    match tokio::time::timeout(timeout, delivery).await {
        Err(_) => Err(Error::Timeout(timeout)),
        // The producer was dropped before reporting: nothing says the record is stored.
        Ok(Err(_canceled)) => Err(Error::Produce(KafkaError::Canceled)),
        Ok(Ok(Err((err, _message)))) => Err(classify(err)),
        Ok(Ok(Ok(delivery))) => Ok(Delivery {
            partition: delivery.partition,
            offset: delivery.offset,
        }),
    }
}

fn classify(err: KafkaError) -> Error {
    match err {
        KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) => Error::QueueFull,
        other => Error::Produce(other),
    }
}
