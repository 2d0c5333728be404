use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::Error;

/// Everything the aggregator counts. Names carry no component: Prometheus' `job` label says which
/// process a series came from.
#[derive(Clone, Debug)]
pub struct AggregatorMetrics {
    /// Records read, by outcome: `new` (stored for the first time), `duplicate` (already
    /// stored), `dead_letter` (unreadable, sent to the DLQ), `revoked` (dropped before
    /// processing because their partition moved to another consumer).
    pub records: IntCounterVec,
    /// Records sent to the dead-letter topic, by reason.
    pub dead_letters: IntCounterVec,
    /// Batches committed to Postgres.
    pub batches: IntCounter,
    pub batch_duration: Histogram,
    pub batch_size: Histogram,
    /// Payload bytes per batch: what a batch holds in memory scales with this (the parsed
    /// events and the SQL built from them are a few times the raw bytes).
    pub batch_bytes: Histogram,
    /// Failed attempts to write a batch, by kind (`transient`: retried; `permanent`: split to
    /// find the record Postgres refuses).
    pub database_failures: IntCounterVec,
    /// 1 while consumption is held because Postgres is unavailable.
    pub paused: IntGauge,
    /// How long the batch being written has waited.
    pub batch_stalled: prometheus::Gauge,
    /// Records behind the end of each assigned partition.
    pub lag: IntGaugeVec,
    /// Rebalances by kind (`assign`, `revoke`).
    pub rebalances: IntCounterVec,
    /// Offset commits to Kafka by outcome.
    pub commits: IntCounterVec,
    /// Seconds from the gateway receiving an event to its batch committing in Postgres.
    pub freshness: Histogram,
}

impl AggregatorMetrics {
    pub fn new(registry: &Registry) -> Result<Self, Error> {
        let m = AggregatorMetrics {
            records: IntCounterVec::new(
                Opts::new(
                    "cardstream_records_total",
                    "Records read from the events topic, by outcome.",
                ),
                &["outcome"],
            )?,
            dead_letters: IntCounterVec::new(
                Opts::new(
                    "cardstream_dead_letters_total",
                    "Records sent to the dead-letter topic, by reason.",
                ),
                &["reason"],
            )?,
            batches: IntCounter::new(
                "cardstream_batches_total",
                "Batches committed to Postgres.",
            )?,
            batch_duration: Histogram::with_opts(
                HistogramOpts::new(
                    "cardstream_batch_duration_seconds",
                    "Time to write one batch to Postgres, retries included.",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ]),
            )?,
            batch_size: Histogram::with_opts(
                HistogramOpts::new("cardstream_batch_records", "Records per batch.")
                    .buckets(vec![
                        1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0,
                    ]),
            )?,
            batch_bytes: Histogram::with_opts(
                HistogramOpts::new(
                    "cardstream_batch_bytes",
                    "Payload bytes per batch.",
                )
                .buckets(prometheus::exponential_buckets(16_384.0, 4.0, 7)?),
            )?,
            database_failures: IntCounterVec::new(
                Opts::new(
                    "cardstream_database_failures_total",
                    "Failed attempts to write a batch, by kind (transient, permanent, statement_timeout, lock_timeout, idle_in_transaction_timeout).",
                ),
                &["kind"],
            )?,
            batch_stalled: prometheus::Gauge::new(
                "cardstream_batch_stalled_seconds",
                "How long the batch being written has waited for Postgres to commit it (0 when none waits); past --batch-stall-timeout, /readyz fails with the reason.",
            )?,
            paused: IntGauge::new(
                "cardstream_consumer_paused",
                "1 while consumption is held because Postgres is unavailable (the batch is retried).",
            )?,
            lag: IntGaugeVec::new(
                Opts::new(
                    "cardstream_consumer_lag_records",
                    "Records between this consumer's position and the end of each assigned partition.",
                ),
                &["partition"],
            )?,
            rebalances: IntCounterVec::new(
                Opts::new(
                    "cardstream_rebalances_total",
                    "Partition assignments and revocations.",
                ),
                &["kind"],
            )?,
            commits: IntCounterVec::new(
                Opts::new(
                    "cardstream_offset_commits_total",
                    "Offset commits to Kafka, by outcome.",
                ),
                &["outcome"],
            )?,
            freshness: Histogram::with_opts(
                HistogramOpts::new(
                    "cardstream_freshness_seconds",
                    "From the gateway receiving an event to its batch committing in Postgres.",
                )
                // Fine between 50 ms and 500 ms, where the p99 lives (target: under 100 ms),
                // so that histogram_quantile interpolates over tens of ms, not a quarter second.
                .buckets(vec![
                    0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3, 0.4, 0.5,
                    0.75, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                ]),
            )?,
        };
        registry.register(Box::new(m.records.clone()))?;
        // Every reason from the start, at 0, for rate() and alerts (see DEAD_LETTER_REASONS).
        for reason in crate::records::DEAD_LETTER_REASONS {
            m.dead_letters.with_label_values(&[reason]);
        }
        registry.register(Box::new(m.dead_letters.clone()))?;
        registry.register(Box::new(m.batches.clone()))?;
        registry.register(Box::new(m.batch_duration.clone()))?;
        registry.register(Box::new(m.batch_size.clone()))?;
        registry.register(Box::new(m.batch_bytes.clone()))?;
        for kind in [
            "transient",
            "permanent",
            "statement_timeout",
            "lock_timeout",
            "idle_in_transaction_timeout",
        ] {
            m.database_failures.with_label_values(&[kind]);
        }
        registry.register(Box::new(m.database_failures.clone()))?;
        registry.register(Box::new(m.paused.clone()))?;
        registry.register(Box::new(m.batch_stalled.clone()))?;
        registry.register(Box::new(m.lag.clone()))?;
        registry.register(Box::new(m.rebalances.clone()))?;
        registry.register(Box::new(m.commits.clone()))?;
        registry.register(Box::new(m.freshness.clone()))?;
        Ok(m)
    }
}
