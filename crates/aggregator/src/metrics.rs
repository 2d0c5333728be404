//! The aggregator's metrics, updated through one method per observable fact (a batch done, a
//! record dead-lettered, a rebalance) so that the consume loop reads as logic, not plumbing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cardstream_store::{FRESHNESS_LABELS, Tally, freshness_bucket};

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::Error;

/// What one batch came to, once Postgres committed it and its offsets were stored.
#[derive(Debug, Default)]
pub(crate) struct BatchReport {
    /// Events stored for the first time.
    pub(crate) new: usize,
    /// Events already stored (a redelivery, or Stripe sending one twice).
    pub(crate) duplicates: usize,
    /// Records sent to the dead-letter topic: unreadable ones and those Postgres refused.
    pub(crate) dead_lettered: usize,
    /// Records in the batch, events and unreadable ones alike.
    pub(crate) records: usize,
    /// Their payload bytes.
    pub(crate) bytes: usize,
    /// From the batch's start to its commit, retries included.
    pub(crate) duration: Duration,
    /// When the gateway received each event (ms since the epoch), for those that say.
    pub(crate) received_at_ms: Vec<i64>,
    /// When Postgres committed the batch (ms since the epoch).
    pub(crate) committed_at_ms: i64,
}

/// The kinds of failed batch write, each exported from the start at 0.
const DATABASE_FAILURE_KINDS: [&str; 5] = [
    "transient",
    "permanent",
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_timeout",
];

/// A version as a label: Stripe's are dates with an optional release name
/// (`2024-06-20`, `2025-03-31.basil`). The events are signed, so their senders are Stripe and
/// the simulator, but the label set stays bounded whatever a payload holds.
fn version_label(version: Option<&str>) -> &str {
    match version {
        None => "none",
        Some(v)
            if (10..=40).contains(&v.len())
                && v.as_bytes()[..10].iter().enumerate().all(|(i, b)| {
                    if i == 4 || i == 7 {
                        *b == b'-'
                    } else {
                        b.is_ascii_digit()
                    }
                })
                && v[10..].strip_prefix('.').map_or(v.len() == 10, |name| {
                    !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase())
                }) =>
        {
            v
        }
        Some(_) => "malformed",
    }
}

/// A partition rebalance, as the `kind` label says it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rebalanced {
    Assign,
    Revoke,
}

/// Everything the aggregator counts. Names carry no component: Prometheus' `job` label says which
/// process a series came from.
#[derive(Clone, Debug)]
pub struct AggregatorMetrics {
    /// Records read, by outcome: `new` (stored for the first time), `duplicate` (already
    /// stored), `dead_letter` (unreadable, sent to the DLQ), `revoked` (dropped before
    /// processing because their partition moved to another consumer).
    records: IntCounterVec,
    /// Records sent to the dead-letter topic, by reason.
    dead_letters: IntCounterVec,
    /// Events read, by their Stripe API version (`none` without one, `malformed` for a value
    /// that is not a version): a new version appearing is the moment to check its shapes.
    api_versions: IntCounterVec,
    /// Batches committed to Postgres.
    batches: IntCounter,
    batch_duration: Histogram,
    batch_size: Histogram,
    /// Payload bytes per batch: what a batch holds in memory scales with this (the parsed
    /// events and the SQL built from them are a few times the raw bytes).
    batch_bytes: Histogram,
    /// Failed attempts to write a batch, by kind (`transient`: retried; `permanent`: split to
    /// find the record Postgres refuses).
    database_failures: IntCounterVec,
    /// 1 while consumption is held because Postgres is unavailable.
    paused: IntGauge,
    /// How long the batch being written has waited.
    batch_stalled: prometheus::Gauge,
    /// Records behind the end of each assigned partition.
    lag: IntGaugeVec,
    /// Rebalances by kind (`assign`, `revoke`).
    rebalances: IntCounterVec,
    /// Offset commits to Kafka by outcome.
    commits: IntCounterVec,
    /// Seconds from the gateway receiving an event to its batch committing in Postgres.
    freshness: Histogram,
    /// Per-minute counts for the admin console's health page: `records` by outcome and
    /// `freshness_ms` by bucket (see `cardstream_store::Reporter`).
    pub(crate) tally: Tally,
    /// The last lag read, `(partition, records)`, and when the last batch committed (ms since
    /// the epoch), for the same page (the gauges hold only the former, and not as a list).
    pub(crate) last: Arc<Mutex<LastSeen>>,
}

/// What the health page shows of this consumer beyond its counts.
#[derive(Debug, Default, Clone)]
pub(crate) struct LastSeen {
    pub(crate) lag: Vec<(i32, i64)>,
    pub(crate) committed_at_ms: Option<i64>,
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
            api_versions: IntCounterVec::new(
                Opts::new(
                    "cardstream_events_by_api_version_total",
                    "Events read from the topic, by the Stripe API version they were sent with.",
                ),
                &["api_version"],
            )?,
            batches: IntCounter::new("cardstream_batches_total", "Batches committed to Postgres.")?,
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
                HistogramOpts::new("cardstream_batch_records", "Records per batch.").buckets(vec![
                    1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0,
                ]),
            )?,
            batch_bytes: Histogram::with_opts(
                HistogramOpts::new("cardstream_batch_bytes", "Payload bytes per batch.")
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
            tally: Tally::new(),
            last: Arc::default(),
        };
        registry.register(Box::new(m.records.clone()))?;
        // Every reason from the start, at 0, for rate() and alerts (see DEAD_LETTER_REASONS).
        for reason in crate::records::DEAD_LETTER_REASONS {
            m.dead_letters.with_label_values(&[reason]);
        }
        registry.register(Box::new(m.dead_letters.clone()))?;
        registry.register(Box::new(m.api_versions.clone()))?;
        registry.register(Box::new(m.batches.clone()))?;
        registry.register(Box::new(m.batch_duration.clone()))?;
        registry.register(Box::new(m.batch_size.clone()))?;
        registry.register(Box::new(m.batch_bytes.clone()))?;
        for kind in DATABASE_FAILURE_KINDS {
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

    /// A batch is committed in Postgres and its offsets stored.
    pub(crate) fn batch_done(&self, report: &BatchReport) {
        for (outcome, count) in [
            ("new", report.new),
            ("duplicate", report.duplicates),
            ("dead_letter", report.dead_lettered),
        ] {
            self.records
                .with_label_values(&[outcome])
                .inc_by(count as u64);
        }
        self.batches.inc();
        self.batch_size.observe(report.records as f64);
        self.batch_bytes.observe(report.bytes as f64);
        self.batch_duration.observe(report.duration.as_secs_f64());
        let mut buckets = [0i64; FRESHNESS_LABELS.len()];
        for at in &report.received_at_ms {
            // A gateway clock ahead of this one would make it negative.
            let ms = (report.committed_at_ms - at).max(0);
            self.freshness.observe(ms as f64 / 1000.0);
            buckets[freshness_bucket(ms)] += 1;
        }
        for (label, n) in FRESHNESS_LABELS.iter().zip(buckets) {
            self.tally.add("freshness_ms", label, n);
        }
        for (outcome, n) in [
            ("new", report.new),
            ("duplicate", report.duplicates),
            ("dead_letter", report.dead_lettered),
        ] {
            self.tally.add("records", outcome, n as i64);
        }
        if let Ok(mut last) = self.last.lock() {
            last.committed_at_ms = Some(report.committed_at_ms);
        }
    }

    /// Records dropped before processing: their partition moved to another consumer, which
    /// reads them again.
    pub(crate) fn revoked_records(&self, count: usize) {
        if count > 0 {
            self.records
                .with_label_values(&["revoked"])
                .inc_by(count as u64);
        }
    }

    /// A batch's events were read, each sent with its `api_version`. Counted by runs of one
    /// version (a batch has one or a few), so the series is looked up once per run, not once
    /// per event.
    pub(crate) fn events_read<'a>(&self, versions: impl Iterator<Item = Option<&'a str>>) {
        let mut versions = versions.peekable();
        while let Some(version) = versions.next() {
            let mut count = 1;
            while versions.next_if_eq(&version).is_some() {
                count += 1;
            }
            self.api_versions
                .with_label_values(&[version_label(version)])
                .inc_by(count);
        }
    }

    /// A record is on the dead-letter topic, for `reason` (one of `DEAD_LETTER_REASONS`).
    pub(crate) fn dead_lettered(&self, reason: &str) {
        self.dead_letters.with_label_values(&[reason]).inc();
    }

    /// A batch write failed; `kind` is one of `DATABASE_FAILURE_KINDS`.
    pub(crate) fn database_failed(&self, kind: &str) {
        self.database_failures.with_label_values(&[kind]).inc();
    }

    /// Consumption is held (or resumes) while Postgres is unavailable.
    pub(crate) fn paused(&self, paused: bool) {
        self.paused.set(i64::from(paused));
    }

    /// Whether consumption is held now (what `paused` last said).
    pub(crate) fn is_paused(&self) -> bool {
        self.paused.get() == 1
    }

    /// How long the batch being written has waited so far (zero when none waits).
    pub(crate) fn batch_waiting(&self, waited: Duration) {
        self.batch_stalled.set(waited.as_secs_f64());
    }

    /// The records behind the end of each assigned partition, as `(partition, lag)`; partitions
    /// not listed (no longer assigned) disappear.
    pub(crate) fn lag(&self, partitions: &[(i32, i64)]) {
        self.lag.reset();
        for (partition, lag) in partitions {
            self.lag
                .with_label_values(&[&partition.to_string()])
                .set(*lag);
        }
        if let Ok(mut last) = self.last.lock() {
            last.lag = partitions.to_vec();
        }
    }

    pub(crate) fn rebalanced(&self, kind: Rebalanced) {
        let kind = match kind {
            Rebalanced::Assign => "assign",
            Rebalanced::Revoke => "revoke",
        };
        self.rebalances.with_label_values(&[kind]).inc();
    }

    /// An offset commit reached Kafka (or, `false`, failed; the next one carries its offsets).
    pub(crate) fn offsets_committed(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.commits.with_label_values(&[outcome]).inc();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_batchs_versions_are_counted_per_event_whatever_their_order() {
        let registry = Registry::new();
        let m = AggregatorMetrics::new(&registry).unwrap();
        let v = Some("2024-06-20");
        m.events_read([v, v, None, v, Some("bad")].into_iter());
        let count = |label| {
            value(
                &registry,
                "cardstream_events_by_api_version_total",
                ("api_version", label),
            )
        };
        assert_eq!(count("2024-06-20"), 3.0);
        assert_eq!(count("none"), 1.0);
        assert_eq!(count("malformed"), 1.0);
    }

    #[test]
    fn api_versions_are_labelled_as_themselves_or_as_what_they_are_not() {
        assert_eq!(version_label(Some("2024-06-20")), "2024-06-20");
        assert_eq!(version_label(Some("2025-03-31.basil")), "2025-03-31.basil");
        assert_eq!(version_label(None), "none");
        for bad in [
            "",
            "2024-06-2",
            "2024/06/20",
            "2024-06-20.",
            "2024-06-20.Basil",
            "2024-06-20x",
            "x".repeat(50).as_str(),
        ] {
            assert_eq!(version_label(Some(bad)), "malformed", "{bad:?}");
        }
    }

    /// The value of `name{label=value}` (the first series when `label` is empty): a counter's
    /// or gauge's value, a histogram's sample count.
    fn value(registry: &Registry, name: &str, label: (&str, &str)) -> f64 {
        let family = registry
            .gather()
            .into_iter()
            .find(|f| f.name() == name)
            .unwrap_or_else(|| panic!("no {name}"));
        let metric = family
            .get_metric()
            .iter()
            .find(|m| {
                label.0.is_empty()
                    || m.get_label()
                        .iter()
                        .any(|l| l.name() == label.0 && l.value() == label.1)
            })
            .unwrap_or_else(|| panic!("no {name}{{{}={}}}", label.0, label.1))
            .clone();
        metric.get_counter().get_value()
            + metric.get_gauge().get_value()
            + metric.get_histogram().get_sample_count() as f64
    }

    #[test]
    fn a_batch_report_lands_in_the_series_the_chart_reads() {
        let registry = Registry::new();
        let metrics = AggregatorMetrics::new(&registry).unwrap();
        metrics.batch_done(&BatchReport {
            new: 3,
            duplicates: 1,
            dead_lettered: 2,
            records: 6,
            bytes: 4096,
            duration: Duration::from_millis(20),
            received_at_ms: vec![1_000, 1_050, 2_000],
            committed_at_ms: 1_100,
        });
        metrics.revoked_records(4);
        let records = "cardstream_records_total";
        assert_eq!(value(&registry, records, ("outcome", "new")), 3.0);
        assert_eq!(value(&registry, records, ("outcome", "duplicate")), 1.0);
        assert_eq!(value(&registry, records, ("outcome", "dead_letter")), 2.0);
        assert_eq!(value(&registry, records, ("outcome", "revoked")), 4.0);
        assert_eq!(value(&registry, "cardstream_batches_total", ("", "")), 1.0);
        for histogram in [
            "cardstream_batch_records",
            "cardstream_batch_bytes",
            "cardstream_batch_duration_seconds",
        ] {
            assert_eq!(value(&registry, histogram, ("", "")), 1.0, "{histogram}");
        }
        // One sample per event that says when it was received; the one from a clock ahead
        // counts as 0 s rather than going negative.
        let freshness = registry
            .gather()
            .into_iter()
            .find(|f| f.name() == "cardstream_freshness_seconds")
            .unwrap();
        let histogram = freshness.get_metric()[0].get_histogram();
        assert_eq!(histogram.get_sample_count(), 3);
        assert!((histogram.get_sample_sum() - 0.15).abs() < 1e-9);
    }

    #[test]
    fn each_event_counts_under_its_label() {
        let registry = Registry::new();
        let metrics = AggregatorMetrics::new(&registry).unwrap();
        metrics.dead_lettered("not_json");
        metrics.database_failed("lock_timeout");
        metrics.paused(true);
        metrics.batch_waiting(Duration::from_secs(3));
        metrics.lag(&[(0, 7), (2, 0)]);
        metrics.lag(&[(2, 5)]);
        metrics.rebalanced(Rebalanced::Assign);
        metrics.rebalanced(Rebalanced::Revoke);
        metrics.offsets_committed(true);
        metrics.offsets_committed(false);
        let cases = [
            ("cardstream_dead_letters_total", ("reason", "not_json"), 1.0),
            ("cardstream_dead_letters_total", ("reason", "not_utf8"), 0.0),
            (
                "cardstream_database_failures_total",
                ("kind", "lock_timeout"),
                1.0,
            ),
            (
                "cardstream_database_failures_total",
                ("kind", "transient"),
                0.0,
            ),
            ("cardstream_consumer_paused", ("", ""), 1.0),
            ("cardstream_batch_stalled_seconds", ("", ""), 3.0),
            ("cardstream_consumer_lag_records", ("partition", "2"), 5.0),
            ("cardstream_rebalances_total", ("kind", "assign"), 1.0),
            ("cardstream_rebalances_total", ("kind", "revoke"), 1.0),
            ("cardstream_offset_commits_total", ("outcome", "ok"), 1.0),
            ("cardstream_offset_commits_total", ("outcome", "error"), 1.0),
        ];
        for (name, label, expected) in cases {
            assert_eq!(value(&registry, name, label), expected, "{name}{label:?}");
        }
        // A partition no longer assigned leaves the lag gauge.
        let lag = registry
            .gather()
            .into_iter()
            .find(|f| f.name() == "cardstream_consumer_lag_records")
            .unwrap();
        assert_eq!(lag.get_metric().len(), 1);
    }
}
