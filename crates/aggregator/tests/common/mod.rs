//! An aggregator on a real broker and a real Postgres database of the test's own.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use cardstream_aggregator::{AggregatorArgs, RunningAggregator};
use cardstream_kafka::{EventProducer, KafkaArgs, OutgoingEvent, ProducerTuning};
use cardstream_simulator::{SimEvent, generate_declining_every};
use cardstream_store::Store;
use cardstream_stripe::Event;
use cardstream_telemetry::{CancellationToken, Registry};
use cardstream_testbed::{Broker, Storage, TestDatabase};
use clap::Parser;

pub const PARTITIONS: i32 = 4;

pub struct Setup {
    pub broker: Broker,
    pub db: TestDatabase,
    pub store: Store,
    pub topic: String,
}

impl Setup {
    pub async fn new(storage: Storage) -> Setup {
        let broker = Broker::start(storage).await;
        let db = TestDatabase::create().await;
        Self::with(broker, db).await
    }

    pub async fn with(broker: Broker, db: TestDatabase) -> Setup {
        let store = Store::connect(&db.url, 2).await.unwrap();
        store.migrate_up().await.unwrap();
        let topic = broker.events_topic(PARTITIONS).await;
        Setup {
            broker,
            db,
            store,
            topic,
        }
    }

    pub fn kafka(&self) -> KafkaArgs {
        KafkaArgs::new(self.broker.brokers(), &self.topic)
    }

    pub fn args(&self, group: &str, extra: &[&str]) -> AggregatorArgs {
        aggregator_args(
            &self.broker.brokers(),
            &self.topic,
            &self.db.url,
            group,
            extra,
        )
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }

    /// Waits until `sql` returns `expected`, failing after `timeout` with the last value.
    pub async fn wait_for(&self, sql: &str, expected: i64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let got: Option<i64> = sqlx::query_scalar(sql)
                .fetch_one(self.store.pool())
                .await
                .ok();
            if got == Some(expected) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{sql}: expected {expected}, still {got:?} after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    args: AggregatorArgs,
}

pub fn aggregator_args(
    brokers: &str,
    topic: &str,
    database: &str,
    group: &str,
    extra: &[&str],
) -> AggregatorArgs {
    let mut argv = vec![
        "aggregator",
        "--admin-listen",
        "127.0.0.1:0",
        "--kafka-brokers",
        brokers,
        "--kafka-topic",
        topic,
        "--database-url",
        database,
        "--consumer-group",
        group,
        "--batch-wait",
        "50ms",
        "--max-retry-backoff",
        "1s",
    ];
    argv.extend_from_slice(extra);
    Wrapper::try_parse_from(argv).unwrap().args
}

pub struct TestAggregator {
    pub running: Option<RunningAggregator>,
    pub shutdown: CancellationToken,
    pub registry: Registry,
}

impl TestAggregator {
    pub async fn start(args: AggregatorArgs) -> TestAggregator {
        let shutdown = CancellationToken::new();
        let registry = Registry::new();
        let running = cardstream_aggregator::start(args, registry.clone(), shutdown.clone())
            .await
            .unwrap();
        TestAggregator {
            running: Some(running),
            shutdown,
            registry,
        }
    }

    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        cardstream_testbed::metric_value(&self.registry, name, labels)
    }

    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running.wait().await.unwrap();
        }
    }
}

/// Simulator events, every fourth authorization declined.
pub fn simulated(seed: u64, cards: usize, purchases: usize) -> Vec<SimEvent> {
    generate_declining_every(4, seed, cards, 1_764_000_000, purchases)
}

/// Produces events as the gateway would (key = card, headers), waiting for every ack.
pub async fn produce(kafka: &KafkaArgs, events: &[SimEvent]) {
    let producer = EventProducer::new(kafka, ProducerTuning::default()).unwrap();
    let mut pending = Vec::new();
    for e in events {
        let event = Event::parse(&e.body).unwrap();
        let key = event.partition_key();
        let outgoing = OutgoingEvent {
            key: &key,
            payload: &e.body,
            event_id: &event.id,
            event_type: &event.kind,
            created: event.created,
            received_at_ms: 0,
        };
        pending.push(producer.enqueue(&outgoing).unwrap());
    }
    for delivery in pending {
        cardstream_kafka::await_delivery(delivery, Duration::from_secs(30))
            .await
            .unwrap();
    }
}

/// Produces arbitrary bytes under `key`, with this `stripe-event-id` header (empty: none to
/// speak of); where the broker stored them.
pub async fn produce_raw_as(
    kafka: &KafkaArgs,
    key: &str,
    payload: &[u8],
    event_id: &str,
) -> cardstream_kafka::Delivery {
    let producer = EventProducer::new(kafka, ProducerTuning::default()).unwrap();
    let outgoing = OutgoingEvent {
        key,
        payload,
        event_id,
        event_type: "",
        created: 0,
        received_at_ms: 0,
    };
    producer
        .send(&outgoing, Duration::from_secs(30))
        .await
        .unwrap()
}

/// The distinct events among `events`.
pub fn distinct(events: &[SimEvent]) -> usize {
    events
        .iter()
        .map(|e| e.id.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

pub const WAIT: Duration = Duration::from_secs(60);
