//! The whole pipeline in one test process: a real broker, a Postgres database of the test's
//! own, the gateway and the aggregator started through their public `start` functions with the
//! flags an operator would give them. Tests that need only one component live in its crate;
//! the ones here cross them all.

// A test harness: its types hold running processes and are never printed.
#![allow(clippy::unwrap_used, missing_debug_implementations)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cardstream_aggregator::{AggregatorArgs, RunningAggregator};
use cardstream_gateway::{GatewayArgs, RunningGateway};
use cardstream_simulator::{Endpoint, SimEvent};
use cardstream_store::Store;
use cardstream_stripe::{WebhookSecret, signature};
use cardstream_telemetry::{CancellationToken, Registry};
use cardstream_testbed::{Broker, HttpResponse, Storage, TestDatabase};
use clap::Parser;

/// How long a test waits for the pipeline to catch up before it fails.
pub const WAIT: Duration = Duration::from_secs(60);
/// The webhook signing secret every gateway here is given.
pub const SECRET: &str = "whsec_e2e";
/// The Connect endpoint's secret: events of connected accounts (carrying `account`) are
/// signed with it, as Stripe signs them.
pub const CONNECT_SECRET: &str = "whsec_e2e_connect";
const PARTITIONS: i32 = 4;

/// A broker, a migrated database and a fresh topic.
pub struct Pipeline {
    pub broker: Broker,
    pub db: TestDatabase,
    pub store: Store,
    pub topic: String,
}

impl Pipeline {
    pub async fn start() -> Pipeline {
        let broker = Broker::start(Storage::Memory).await;
        let db = TestDatabase::create().await;
        let store = Store::connect(&db.url, 2).await.unwrap();
        store.migrate_up().await.unwrap();
        let topic = broker.events_topic(PARTITIONS).await;
        Pipeline {
            broker,
            db,
            store,
            topic,
        }
    }

    /// A gateway on this pipeline's topic, with `extra` flags.
    pub async fn gateway(&self, extra: &[&str]) -> Component<RunningGateway> {
        let brokers = self.broker.brokers();
        let mut argv = vec![
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--kafka-brokers",
            &brokers,
            "--kafka-topic",
            &self.topic,
            "--webhook-secrets",
            SECRET,
            "--connect-webhook-secrets",
            CONNECT_SECRET,
        ];
        argv.extend_from_slice(extra);
        let args = Args::<GatewayArgs>::try_parse_from(argv).unwrap().args;
        Component::start(|registry, shutdown| cardstream_gateway::start(args, registry, shutdown))
            .await
    }

    /// An aggregator in consumer group `group`, batching briefly so tests do not wait.
    pub async fn aggregator(&self, group: &str) -> Component<RunningAggregator> {
        let brokers = self.broker.brokers();
        let argv = [
            "aggregator",
            "--admin-listen",
            "127.0.0.1:0",
            "--kafka-brokers",
            &brokers,
            "--kafka-topic",
            &self.topic,
            "--database-url",
            &self.db.url,
            "--consumer-group",
            group,
            "--batch-wait",
            "50ms",
            "--max-retry-backoff",
            "1s",
        ];
        let args = Args::<AggregatorArgs>::try_parse_from(argv).unwrap().args;
        Component::start(|registry, shutdown| {
            cardstream_aggregator::start(args, registry, shutdown)
        })
        .await
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }

    /// Waits until `sql` returns `expected`, failing after [`WAIT`] with the last value.
    pub async fn wait_for(&self, sql: &str, expected: i64) {
        let deadline = Instant::now() + WAIT;
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
                "{sql}: expected {expected}, still {got:?} after {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[derive(Parser)]
struct Args<T: clap::Args> {
    #[command(flatten)]
    args: T,
}

/// A component running in this process, with its own metrics registry and shutdown signal.
pub struct Component<R> {
    pub running: Option<R>,
    pub shutdown: CancellationToken,
    pub registry: Registry,
}

impl<R> Component<R> {
    async fn start<F, Fut, E>(start: F) -> Self
    where
        F: FnOnce(Registry, CancellationToken) -> Fut,
        Fut: Future<Output = Result<R, E>>,
        E: std::fmt::Debug,
    {
        let registry = Registry::new();
        let shutdown = CancellationToken::new();
        let running = start(registry.clone(), shutdown.clone()).await.unwrap();
        Component {
            running: Some(running),
            shutdown,
            registry,
        }
    }

    /// The sum of the metric's series matching `labels`.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        cardstream_testbed::metric_value(&self.registry, name, labels)
    }

    /// Waits until the metric's value reaches at least `at_least`.
    pub async fn wait_for_metric(&self, name: &str, labels: &[(&str, &str)], at_least: f64) {
        let deadline = Instant::now() + WAIT;
        while self.metric(name, labels) < at_least {
            assert!(
                Instant::now() < deadline,
                "{name}{labels:?} still {} after {WAIT:?}, waiting for {at_least}",
                self.metric(name, labels)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Component<RunningGateway> {
    pub fn addr(&self) -> SocketAddr {
        self.running.as_ref().unwrap().addr
    }

    /// POSTs `body` to `path`, signed as Stripe would sign it now: with [`CONNECT_SECRET`]
    /// when it is a connected account's event, else with [`SECRET`].
    pub async fn post_signed(&self, path: &str, body: &str) -> HttpResponse {
        let connected = cardstream_stripe::Event::parse(body.as_bytes())
            .is_ok_and(|event| event.account.is_some());
        let secret = if connected { CONNECT_SECRET } else { SECRET };
        let header = signature::header(&[WebhookSecret::new(secret)], now(), body.as_bytes());
        cardstream_testbed::post(
            &format!("http://{}{path}", self.addr()),
            &[("stripe-signature", &header)],
            body.to_owned(),
        )
        .await
    }
}

/// A component's handle that finishes once its shutdown signal fired.
pub trait Stoppable {
    fn finished(self) -> impl Future<Output = ()>;
}

impl Stoppable for RunningGateway {
    async fn finished(self) {
        self.wait().await.unwrap();
    }
}

impl Stoppable for RunningAggregator {
    async fn finished(self) {
        self.wait().await.unwrap();
    }
}

impl<R: Stoppable> Component<R> {
    /// Signals shutdown and waits for the component to finish it.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running.finished().await;
        }
    }
}

impl Pipeline {
    /// A producer to this pipeline's topic, as `cardstream backfill` and `catch-up` make one.
    pub fn producer(&self) -> cardstream_kafka::EventProducer {
        let brokers = self.broker.brokers();
        let argv = [
            "x",
            "--kafka-brokers",
            &brokers,
            "--kafka-topic",
            &self.topic,
        ];
        let kafka = Args::<cardstream_kafka::KafkaArgs>::try_parse_from(argv)
            .unwrap()
            .args;
        cardstream_kafka::EventProducer::new(
            &kafka,
            cardstream_kafka::ProducerTuning {
                linger: Duration::from_millis(5),
                delivery_timeout: Duration::from_secs(30),
            },
        )
        .unwrap()
    }

    /// Waits until `stripe_events` holds `expected` events and returns the content digests
    /// (see `Store::content_digests`), after checking the rollups against the base tables.
    pub async fn settled_digests(
        &self,
        expected: i64,
    ) -> std::collections::BTreeMap<&'static str, (i64, String)> {
        self.wait_for("SELECT count(*) FROM stripe_events", expected)
            .await;
        assert!(self.store.rollup_drift().await.unwrap().is_clean());
        self.store.content_digests().await.unwrap()
    }
}

impl Component<RunningGateway> {
    /// Posts each event to its endpoint, signed, `concurrency` at a time; every one must be
    /// answered 200.
    pub async fn post_all(&self, events: &[SimEvent], concurrency: usize) {
        for chunk in events.chunks(concurrency.max(1)) {
            let answers = futures_util::future::join_all(chunk.iter().map(|event| {
                let path = match event.endpoint {
                    Endpoint::Events => cardstream_gateway::EVENTS_ROUTE,
                    Endpoint::Authorization => cardstream_gateway::AUTHORIZATION_ROUTE,
                };
                self.post_signed(path, std::str::from_utf8(&event.body).unwrap())
            }))
            .await;
            for (event, answer) in chunk.iter().zip(answers) {
                assert_eq!(
                    answer.status,
                    200,
                    "{}: {}",
                    event.id,
                    String::from_utf8_lossy(&answer.body)
                );
            }
        }
    }
}

/// The events of a simulated program of `cards` cards and `purchases` purchases, the first
/// at `start` and one a second after, every fifth authorization declined.
pub fn world(seed: u64, cards: usize, start: i64, purchases: usize) -> Vec<SimEvent> {
    cardstream_simulator::generate_declining_every(5, seed, cards, start, purchases)
}

/// The same events as Stripe's API holds them.
pub fn as_json(events: &[SimEvent]) -> Vec<serde_json::Value> {
    events
        .iter()
        .map(|e| serde_json::from_slice(&e.body).unwrap())
        .collect()
}

/// Distinct Stripe objects among `events`' `data.object`s.
pub fn distinct_objects(events: &[SimEvent]) -> usize {
    as_json(events)
        .iter()
        .map(|e| e["data"]["object"]["id"].as_str().unwrap().to_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

/// Seconds since the Unix epoch, as Stripe's `created` and signature timestamps count.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
