//! librdkafka's own statistics, as metrics: what the client queues locally and how long the
//! brokers take to answer. The events pipeline's metrics say what happened to records; these
//! say why it is slow or growing (a queue filling up, a broker answering in 300 ms).
//!
//! librdkafka emits a JSON document every `statistics.interval.ms` to the client context's
//! `stats` callback, on its own thread; recording it is a few gauge sets.

use std::time::Duration;

use prometheus::{GaugeVec, IntGaugeVec, Opts, Registry};
use rdkafka::ClientContext;
use rdkafka::statistics::Statistics;

/// How often librdkafka reports. Often enough for a 15–30 s scrape, rare enough that the JSON
/// (a few KiB per broker and partition) costs nothing.
pub const STATISTICS_INTERVAL: Duration = Duration::from_secs(10);

/// The client metrics one component exports. Which client reported is the `client` label
/// (`producer`, `consumer`, `dlq`), so a component with several clients keeps them apart.
#[derive(Clone, Debug)]
pub struct ClientStats {
    queue_messages: IntGaugeVec,
    queue_bytes: IntGaugeVec,
    fetch_queue_messages: IntGaugeVec,
    rtt_avg: GaugeVec,
    rtt_p99: GaugeVec,
    requests_waiting: IntGaugeVec,
}

impl ClientStats {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let by_client = ["client"];
        let by_broker = ["client", "broker"];
        let stats = ClientStats {
            queue_messages: IntGaugeVec::new(
                Opts::new(
                    "cardstream_kafka_queue_messages",
                    "Records in the Kafka client's local queues, not yet acknowledged by a broker (librdkafka msg_cnt).",
                ),
                &by_client,
            )?,
            queue_bytes: IntGaugeVec::new(
                Opts::new(
                    "cardstream_kafka_queue_bytes",
                    "Bytes of the records in the Kafka client's local queues (librdkafka msg_size).",
                ),
                &by_client,
            )?,
            fetch_queue_messages: IntGaugeVec::new(
                Opts::new(
                    "cardstream_kafka_fetch_queue_messages",
                    "Records fetched ahead from the brokers and not yet handed to the consumer, over all partitions (librdkafka fetchq_cnt).",
                ),
                &by_client,
            )?,
            rtt_avg: GaugeVec::new(
                Opts::new(
                    "cardstream_kafka_broker_rtt_average_seconds",
                    "Mean round-trip time of requests to each broker over the last statistics interval.",
                ),
                &by_broker,
            )?,
            rtt_p99: GaugeVec::new(
                Opts::new(
                    "cardstream_kafka_broker_rtt_p99_seconds",
                    "99th percentile round-trip time of requests to each broker over the last statistics interval.",
                ),
                &by_broker,
            )?,
            requests_waiting: IntGaugeVec::new(
                Opts::new(
                    "cardstream_kafka_broker_requests_waiting",
                    "Requests sent to each broker and not answered yet (librdkafka waitresp_cnt).",
                ),
                &by_broker,
            )?,
        };
        registry.register(Box::new(stats.queue_messages.clone()))?;
        registry.register(Box::new(stats.queue_bytes.clone()))?;
        registry.register(Box::new(stats.fetch_queue_messages.clone()))?;
        registry.register(Box::new(stats.rtt_avg.clone()))?;
        registry.register(Box::new(stats.rtt_p99.clone()))?;
        registry.register(Box::new(stats.requests_waiting.clone()))?;
        Ok(stats)
    }

    /// Sets the gauges from one statistics document of client `client`.
    pub fn record(&self, client: &str, stats: &Statistics) {
        self.queue_messages
            .with_label_values(&[client])
            .set(saturating(stats.msg_cnt));
        self.queue_bytes
            .with_label_values(&[client])
            .set(saturating(stats.msg_size));
        let fetched: i64 = stats
            .topics
            .values()
            .flat_map(|t| t.partitions.values())
            .map(|p| p.fetchq_cnt.max(0))
            .sum();
        self.fetch_queue_messages
            .with_label_values(&[client])
            .set(fetched);
        // Only brokers the client has talked to: the bootstrap and internal entries (node id
        // -1) have no round trips and would only add empty series.
        for broker in stats.brokers.values().filter(|b| b.nodeid >= 0) {
            let labels = [client, broker.nodename.as_str()];
            self.requests_waiting
                .with_label_values(&labels)
                .set(broker.waitresp_cnt);
            if let Some(rtt) = broker.rtt.as_ref().filter(|w| w.cnt > 0) {
                self.rtt_avg.with_label_values(&labels).set(micros(rtt.avg));
                self.rtt_p99.with_label_values(&labels).set(micros(rtt.p99));
            }
        }
    }
}

fn saturating(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn micros(us: i64) -> f64 {
    us as f64 / 1e6
}

/// A client context that records librdkafka's statistics, when it has somewhere to put them.
#[derive(Clone, Debug, Default)]
pub struct StatsContext {
    stats: Option<(ClientStats, &'static str)>,
}

impl StatsContext {
    /// Records client `client`'s statistics into `stats`.
    pub fn new(stats: ClientStats, client: &'static str) -> Self {
        StatsContext {
            stats: Some((stats, client)),
        }
    }

    /// The client settings that make librdkafka report to this context (none without
    /// metrics: statistics cost a JSON document per interval).
    pub fn config(&self) -> Option<(&'static str, String)> {
        self.stats.as_ref().map(|_| {
            (
                "statistics.interval.ms",
                STATISTICS_INTERVAL.as_millis().to_string(),
            )
        })
    }

    pub fn record(&self, statistics: &Statistics) {
        if let Some((stats, client)) = &self.stats {
            stats.record(client, statistics);
        }
    }
}

impl ClientContext for StatsContext {
    fn stats(&self, statistics: Statistics) {
        self.record(&statistics);
    }
}
