//! The `cardstream` binary as separate processes, on a real broker and Postgres.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod api;
pub mod gateway;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use cardstream_kafka::{EventProducer, KafkaArgs, OutgoingEvent, ProducerTuning};
use cardstream_simulator::{SimEvent, generate_declining_every};
use cardstream_store::{IncomingEvent, Position, Store};
use cardstream_stripe::Event;
use cardstream_testbed::{Broker, Storage, TestDatabase};
use tokio::process::{Child, Command};

pub struct Setup {
    pub broker: Broker,
    pub db: TestDatabase,
    pub store: Store,
    pub topic: String,
    pub logs: tempfile::TempDir,
}

impl Setup {
    /// SQLite storage: these tests restart consumers, which resume from committed offsets,
    /// and the broker's memory engine skips records when a fetch starts inside a
    /// multi-record batch (seen with tansu 0.6.0: 19 of 216 records lost after a resume).
    pub async fn new(partitions: i32) -> Setup {
        let broker = Broker::start(Storage::Sqlite).await;
        let db = TestDatabase::create().await;
        let store = Store::connect(&db.url, 2).await.unwrap();
        store.migrate_up().await.unwrap();
        let topic = broker.events_topic(partitions).await;
        Setup {
            broker,
            db,
            store,
            topic,
            logs: tempfile::tempdir().unwrap(),
        }
    }

    pub fn kafka(&self) -> KafkaArgs {
        KafkaArgs::new(self.broker.brokers(), &self.topic)
    }

    /// `cardstream <args>` with this setup's broker, topic and database in its environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cardstream"));
        command
            .args(args)
            .env("CARDSTREAM_KAFKA_BROKERS", self.broker.brokers())
            .env("CARDSTREAM_KAFKA_TOPIC", &self.topic)
            .env("CARDSTREAM_DATABASE_URL", &self.db.url)
            .env("CARDSTREAM_ADMIN_LISTEN", "127.0.0.1:0")
            // Tests stop processes often; the drain is tested on its own.
            .env("CARDSTREAM_SHUTDOWN_DELAY", "0s")
            .env("RUST_LOG", "info,librdkafka=warn,rdkafka=warn")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Starts an aggregator process in `group`, logging to a file named `name`.
    pub fn aggregator(&self, group: &str, name: &str) -> Child {
        // A killed member is noticed within seconds rather than librdkafka's default 45 s.
        self.aggregator_with(
            group,
            name,
            "session.timeout.ms=6000,heartbeat.interval.ms=500",
        )
    }

    /// [`Setup::aggregator`] with these librdkafka properties.
    pub fn aggregator_with(&self, group: &str, name: &str, properties: &str) -> Child {
        self.aggregator_env(group, name, &[("CARDSTREAM_KAFKA_PROPERTIES", properties)])
    }

    /// An aggregator process in `group` with `env` added, logging to a file named `name`.
    pub fn aggregator_env(&self, group: &str, name: &str, env: &[(&str, &str)]) -> Child {
        let log = std::fs::File::create(self.logs.path().join(format!("{name}.log"))).unwrap();
        let mut command = self.command(&[
            "aggregator",
            "--consumer-group",
            group,
            "--batch-size",
            "100",
            "--batch-wait",
            "20ms",
        ]);
        for (key, value) in env {
            command.env(key, value);
        }
        command
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.logs.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }

    pub async fn wait_for(&self, sql: &str, expected: i64, timeout: Duration, logs: &[&str]) {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.count(sql).await;
            if got == expected {
                return;
            }
            if Instant::now() > deadline {
                for name in logs {
                    eprintln!("--- {name} ---\n{}", self.log(name));
                }
                panic!("{sql}: expected {expected}, still {got} after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

pub fn simulated(seed: u64, cards: usize, purchases: usize) -> Vec<SimEvent> {
    generate_declining_every(4, seed, cards, 1_764_000_000, purchases)
}

/// Produces `events` straight into the topic (unsigned, as no gateway wrote them); where the
/// broker stored each, in order.
pub async fn produce(kafka: &KafkaArgs, events: &[SimEvent]) -> Vec<cardstream_kafka::Delivery> {
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
    let mut stored = Vec::with_capacity(pending.len());
    for delivery in pending {
        stored.push(
            cardstream_kafka::await_delivery(delivery, Duration::from_secs(30))
                .await
                .unwrap(),
        );
    }
    stored
}

/// The tables the same events give when folded once, in order, into a fresh database.
pub async fn expected_digests(events: &[SimEvent]) -> BTreeMap<&'static str, (i64, String)> {
    let (_db, store) = folded(events).await;
    store.table_digests().await.unwrap()
}

/// A database of its own holding `events` folded in one batch, without Kafka: what any
/// delivery of them must end as.
pub async fn folded(events: &[SimEvent]) -> (TestDatabase, Store) {
    let db = TestDatabase::create().await;
    let store = Store::connect(&db.url, 2).await.unwrap();
    store.migrate_up().await.unwrap();
    let incoming: Vec<_> = events
        .iter()
        .map(|e| IncomingEvent::parse(&e.body, 0, 0).unwrap())
        .collect();
    store
        .apply_batch(
            "expected",
            "expected",
            &incoming,
            &[Position {
                partition: 0,
                next_offset: 1,
            }],
        )
        .await
        .unwrap();
    (db, store)
}

pub fn distinct(events: &[SimEvent]) -> i64 {
    events
        .iter()
        .map(|e| e.id.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len() as i64
}

/// Sends SIGTERM and waits for a clean exit.
pub async fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap()
}
