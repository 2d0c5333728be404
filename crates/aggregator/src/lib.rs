//! The aggregator: a Kafka consumer group that folds Stripe events into Postgres.
//!
//! Each batch is one Postgres transaction (raw events deduplicated by id, object rows, rollups,
//! consumer positions, then a NOTIFY for the live dashboard); its offsets are stored for Kafka
//! only after that transaction committed, and committed synchronously when partitions are
//! revoked. Records that are not Stripe events go to `<topic>.dlq`. Replicas share the topic's
//! partitions; more replicas than partitions sit idle.

mod config;
mod consumer;
mod dlq;
mod housekeeping;
mod metrics;
mod progress;
mod records;
mod redrive;

use std::sync::Arc;
use std::time::Duration;

use cardstream_kafka::{ClientStats, Redriver, StatsContext};
use cardstream_store::{ComponentState, Reporter, Store};
use cardstream_telemetry::{AdminServer, CancellationToken, Readiness, Registry};
use rdkafka::consumer::Consumer;

pub use config::AggregatorArgs;
pub use metrics::AggregatorMetrics;

use crate::consumer::{AggregatorContext, Kafka, Worker};
use crate::dlq::DeadLetters;
use crate::progress::Progress;

const HEALTH_INTERVAL: Duration = Duration::from_secs(5);

/// Errors that stop the aggregator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kafka(#[from] cardstream_kafka::Error),
    #[error("cannot subscribe to {topic}: {source}")]
    Subscribe {
        topic: String,
        source: rdkafka::error::KafkaError,
    },
    #[error(transparent)]
    Store(#[from] cardstream_store::Error),
    #[error(transparent)]
    Telemetry(#[from] cardstream_telemetry::Error),
    #[error("could not register metric: {0}")]
    Metric(#[from] prometheus::Error),
    #[error("the consume loop failed: {0}")]
    Task(String),
}

/// A started aggregator.
#[derive(Debug)]
pub struct RunningAggregator {
    pub admin_addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<Result<(), Error>>,
}

impl RunningAggregator {
    /// Waits until it stopped (after `shutdown` was cancelled) and committed its offsets.
    pub async fn wait(self) -> Result<(), Error> {
        self.task.await.map_err(|e| Error::Task(e.to_string()))?
    }
}

/// Starts consuming. Runs until `shutdown` is cancelled.
pub async fn start(
    args: AggregatorArgs,
    registry: Registry,
    shutdown: CancellationToken,
) -> Result<RunningAggregator, Error> {
    let metrics = AggregatorMetrics::new(&registry)?;
    // Lazy: start, and wait for Postgres, rather than crash-loop while it restarts.
    let store = Store::connect_lazy(
        args.database.expose_url(),
        args.database_pool,
        args.database.timeouts,
    )
    .await?;
    store.register_pool_metrics(args.database_pool, &registry)?;
    let client_stats = ClientStats::register(&registry)?;
    let stats = StatsContext::new(client_stats.clone(), "consumer");
    let statistics = stats.config();
    let mut settings = vec![
        ("group.id", args.consumer_group.clone()),
        // Offsets are stored by hand after Postgres committed, and committed by the loop: at
        // most every second after a batch, on revoke, and (waited for, within the shutdown
        // timeout) at shutdown.
        ("enable.auto.offset.store", "false".to_owned()),
        ("enable.auto.commit", "false".to_owned()),
        ("auto.offset.reset", "earliest".to_owned()),
        // How long the broker may hold a fetch that found nothing new. A dashboard waits on
        // this when traffic is light (librdkafka's 500 ms default was most of the
        // webhook-to-screen delay); at 50 ms an idle consumer sends 20 small requests/s.
        ("fetch.wait.max.ms", "50".to_owned()),
        // A Postgres outage can hold the loop without reading for a while; stay in the group
        // for up to this long before letting another consumer take over.
        (
            "max.poll.interval.ms",
            args.max_poll_interval.as_millis().to_string(),
        ),
    ];
    settings.extend(statistics);
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let consumer: Kafka = args
        .kafka
        .client_config(&settings)
        .create_with_context(AggregatorContext {
            metrics: metrics.clone(),
            closing: Default::default(),
            stats,
        })
        .map_err(|e| Error::Kafka(cardstream_kafka::Error::Config(e)))?;
    consumer
        .subscribe(&[&args.kafka.topic])
        .map_err(|source| Error::Subscribe {
            topic: args.kafka.topic.clone(),
            source,
        })?;
    let consumer = Arc::new(consumer);
    let dead_letters = DeadLetters::new(&args.kafka, client_stats)?;

    let readiness = Readiness::new();
    readiness.require("database").require("kafka");
    let progress = Progress::default();
    spawn_health(
        Arc::downgrade(&consumer),
        store.clone(),
        (progress.clone(), args.batch_stall_timeout),
        args.kafka.topic.clone(),
        metrics.clone(),
        readiness.clone(),
        shutdown.clone(),
    );
    spawn_status(
        &args,
        &registry,
        store.clone(),
        &metrics,
        readiness.clone(),
        &shutdown,
    );
    let admin =
        AdminServer::spawn(args.admin.listen, registry, readiness, shutdown.clone()).await?;
    tracing::info!(topic = %args.kafka.topic, group = %args.consumer_group, batch_size = args.batch_size, batch_max_bytes = args.batch_max_bytes, "aggregator consuming");

    let keys = args.record_keys.load()?;
    if keys.is_none() {
        tracing::warn!(
            "no record keys (CARDSTREAM_RECORD_KEYS): records on the topic are folded without checking that the gateway wrote them"
        );
    }
    redrive::spawn(
        store.clone(),
        Redriver::new(&args.kafka, keys.clone())?,
        args.redrive_interval,
        shutdown.clone(),
    );
    housekeeping::spawn(store.clone(), shutdown.clone());
    let worker = Worker::new(consumer, store, dead_letters, metrics, args, progress, keys);
    let task = tokio::spawn(async move {
        let result = worker.run(shutdown.clone()).await;
        // Whatever ended the loop ends the process's other tasks too (the admin server).
        shutdown.cancel();
        result
    });
    Ok(RunningAggregator {
        admin_addr: admin.local_addr,
        task,
    })
}

/// Reports this process to the admin console's health page: readiness, version, the lag of
/// each assigned partition and the last commit, with the records and freshness counted per
/// minute.
fn spawn_status(
    args: &AggregatorArgs,
    registry: &Registry,
    store: Store,
    metrics: &AggregatorMetrics,
    readiness: Readiness,
    shutdown: &CancellationToken,
) {
    let seen = metrics.clone();
    let state = move || {
        let last = seen.last.lock().map(|l| l.clone()).unwrap_or_default();
        let partitions: Vec<_> = last
            .lag
            .iter()
            .map(|(partition, lag)| serde_json::json!({"partition": partition, "lag": lag}))
            .collect();
        ComponentState {
            ready: readiness.check(),
            details: serde_json::json!({
                "partitions": partitions,
                "paused": seen.is_paused(),
                "last_commit_at": last.committed_at_ms.map(|ms| ms as f64 / 1000.0),
            }),
        }
    };
    Reporter::new(
        "aggregator",
        cardstream_telemetry::build_version(registry),
        args.status.every,
    )
    .spawn(
        store,
        metrics.tally.clone(),
        state,
        shutdown.clone().cancelled_owned(),
    );
}

/// Every few seconds: is Postgres reachable, is the broker, and how far behind is each
/// assigned partition.
/// Holds the consumer weakly: the loop owns it and closes it on shutdown.
fn spawn_health(
    consumer: std::sync::Weak<Kafka>,
    store: Store,
    (progress, stall_bound): (Progress, Duration),
    topic: String,
    metrics: AggregatorMetrics,
    readiness: Readiness,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEALTH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let db = sqlx_ping(&store).await;
            readiness.set("database", db);
            metrics.batch_waiting(progress.waiting());
            readiness.set("batches", progress.check(stall_bound));
            let Some(consumer) = consumer.upgrade() else {
                return;
            };
            let (topic, metrics) = (topic.clone(), metrics.clone());
            let kafka =
                tokio::task::spawn_blocking(move || report_lag(&consumer, &topic, &metrics))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
            readiness.set("kafka", kafka);
        }
    });
}

async fn sqlx_ping(store: &Store) -> Result<(), String> {
    store.ping().await.map_err(|e| e.to_string())
}

/// Sets the lag gauge of each assigned partition: the end of the partition minus this
/// consumer's position.
fn report_lag(consumer: &Kafka, topic: &str, metrics: &AggregatorMetrics) -> Result<(), String> {
    let timeout = Duration::from_secs(2);
    consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| e.to_string())?;
    let positions = consumer.position().map_err(|e| e.to_string())?;
    let mut lags = Vec::new();
    for element in positions.elements_for_topic(topic) {
        let partition = element.partition();
        let Ok((_, high)) = consumer.fetch_watermarks(topic, partition, timeout) else {
            continue;
        };
        let lag = match element.offset() {
            rdkafka::Offset::Offset(position) => (high - position).max(0),
            _ => continue,
        };
        lags.push((partition, lag));
    }
    metrics.lag(&lags);
    Ok(())
}
