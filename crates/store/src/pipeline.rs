//! The pipeline's own status (migration 0020), as each process reports it: its row in
//! `pipeline_components` (version, readiness, a few figures only it holds) and what it counted
//! per minute in `pipeline_counts`. The admin console's health page reads both back; nothing
//! here replaces Prometheus, it lets an admin see the pipeline without one.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{Error, Store};

/// How long per-minute counts are kept.
const COUNTS_KEPT_FOR: &str = "7 days";
/// How long a silent process's row is kept (a process that stops cleanly deletes its own).
const SILENT_KEPT_FOR: &str = "1 day";

/// Freshness buckets, by upper bound in milliseconds (the last catches the rest). Fine between
/// 50 and 500 ms, where the p99 target lives, as the Prometheus histogram's are.
pub(crate) const FRESHNESS_BUCKETS_MS: [u32; 24] = [
    5,
    10,
    25,
    50,
    75,
    100,
    125,
    150,
    175,
    200,
    250,
    300,
    400,
    500,
    750,
    1_000,
    2_500,
    5_000,
    10_000,
    30_000,
    60_000,
    300_000,
    3_600_000,
    u32::MAX,
];

/// Each bucket's label in the counts: its upper bound, or `inf` for the last.
pub const FRESHNESS_LABELS: [&str; FRESHNESS_BUCKETS_MS.len()] = [
    "5", "10", "25", "50", "75", "100", "125", "150", "175", "200", "250", "300", "400", "500",
    "750", "1000", "2500", "5000", "10000", "30000", "60000", "300000", "3600000", "inf",
];

/// The bucket (an index into `FRESHNESS_LABELS`) of a freshness of `ms`.
pub fn freshness_bucket(ms: i64) -> usize {
    FRESHNESS_BUCKETS_MS
        .iter()
        .position(|&bound| ms <= i64::from(bound))
        .unwrap_or(FRESHNESS_BUCKETS_MS.len() - 1)
}

/// The `q` quantile (0–1) of freshness bucket counts given as `(label, count)`, interpolated
/// within its bucket as Prometheus' `histogram_quantile` does; `None` without samples. A
/// quantile in the last bucket reads as the bucket's lower bound (there is no upper one).
pub fn freshness_quantile(buckets: &[(String, i64)], q: f64) -> Option<f64> {
    let mut counts = [0i64; FRESHNESS_BUCKETS_MS.len()];
    for (label, count) in buckets {
        if let Some(i) = FRESHNESS_LABELS.iter().position(|l| l == label) {
            counts[i] += (*count).max(0);
        }
    }
    let total: i64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut below = 0i64;
    for (i, &count) in counts.iter().enumerate() {
        if count > 0 && (below + count) as f64 >= rank {
            let lower = if i == 0 {
                0.0
            } else {
                f64::from(FRESHNESS_BUCKETS_MS[i - 1])
            };
            if i == counts.len() - 1 {
                return Some(lower);
            }
            let upper = f64::from(FRESHNESS_BUCKETS_MS[i]);
            let within = (rank - below as f64) / count as f64;
            return Some(lower + (upper - lower) * within);
        }
        below += count;
    }
    None
}

type Minute = i64;
/// Counts by label, per minute and metric.
type Counts = HashMap<(Minute, &'static str), HashMap<String, i64>>;
/// One count taken from a tally: minute, metric, label, count.
type Taken = (Minute, &'static str, String, i64);

/// What a process counted since its last report, per minute, metric and label. Cheap to add
/// to from request paths: one lock, no allocation once a label has been seen that minute.
/// Counts nothing until a reporter takes it (a gateway without a database has none, and its
/// counts would only pile up).
#[derive(Clone, Debug, Default)]
pub struct Tally {
    counts: Arc<Mutex<Counts>>,
    reported: Arc<AtomicBool>,
}

impl Tally {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `n` to `metric{label}` for the current minute.
    pub fn add(&self, metric: &'static str, label: &str, n: i64) {
        if n == 0 || !self.reported.load(Ordering::Relaxed) {
            return;
        }
        let minute = unix_seconds().div_euclid(60) * 60;
        let Ok(mut counts) = self.counts.lock() else {
            return;
        };
        let labels = counts.entry((minute, metric)).or_default();
        match labels.get_mut(label) {
            Some(count) => *count += n,
            None => {
                labels.insert(label.to_owned(), n);
            }
        }
    }

    /// Everything counted, leaving the tally empty.
    fn take(&self) -> Vec<Taken> {
        let Ok(mut counts) = self.counts.lock() else {
            return Vec::new();
        };
        std::mem::take(&mut *counts)
            .into_iter()
            .flat_map(|((minute, metric), labels)| {
                labels
                    .into_iter()
                    .map(move |(label, n)| (minute, metric, label, n))
            })
            .collect()
    }

    /// Counts taken but not stored go back, to be stored with the next report.
    fn put_back(&self, counts: Vec<Taken>) {
        let Ok(mut tally) = self.counts.lock() else {
            return;
        };
        for (minute, metric, label, n) in counts {
            *tally
                .entry((minute, metric))
                .or_default()
                .entry(label)
                .or_default() += n;
        }
    }
}

fn unix_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A process's state at one report.
#[derive(Debug, Clone)]
pub struct ComponentState {
    /// As its `/readyz` says: `Err` holds one line per unmet condition.
    pub ready: Result<(), String>,
    /// Figures only this process holds (the aggregator's lag per partition, say).
    pub details: serde_json::Value,
}

/// Who reports: one process of one component.
#[derive(Debug, Clone)]
pub struct Reporter {
    /// Unique per process: `component@host:pid`.
    pub instance: String,
    /// `gateway`, `aggregator` or `api`.
    pub component: &'static str,
    pub version: String,
    pub every: Duration,
}

impl Reporter {
    /// The reporter of this process's `component`, named after the host (the pod's name in
    /// Kubernetes) and the process id.
    pub fn new(component: &'static str, version: String, every: Duration) -> Self {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        Reporter {
            instance: format!("{component}@{host}:{}", std::process::id()),
            component,
            version,
            every,
        }
    }

    /// Reports every `every` until `stop`, then once more (what was counted since the last
    /// report) and removes the process's row: a process that stopped cleanly is not a
    /// problem to show. Counts a report could not store are kept for the next one.
    pub fn spawn(
        self,
        store: Store,
        tally: Tally,
        state: impl Fn() -> ComponentState + Send + 'static,
        stop: impl Future<Output = ()> + Send + 'static,
    ) {
        tally.reported.store(true, Ordering::Relaxed);
        tokio::spawn(async move {
            let started_at = unix_seconds();
            let mut tick = tokio::time::interval(self.every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tokio::pin!(stop);
            loop {
                let stopping = tokio::select! {
                    () = &mut stop => true,
                    _ = tick.tick() => false,
                };
                let counts = tally.take();
                let result = store
                    .report_status(&self, started_at, &state(), &counts, stopping)
                    .await;
                if let Err(err) = result {
                    tracing::warn!(error = %err, component = self.component, "cannot report this process's status for the health page; keeping its counts for the next report");
                    tally.put_back(counts);
                }
                if stopping {
                    return;
                }
            }
        });
    }
}

impl Store {
    /// One report, in one transaction: the process's row and its counts. With `last`, the
    /// row is removed instead.
    async fn report_status(
        &self,
        reporter: &Reporter,
        started_at: i64,
        state: &ComponentState,
        counts: &[Taken],
        last: bool,
    ) -> Result<(), Error> {
        let mut tx = self.pool().begin().await?;
        if last {
            sqlx::query("DELETE FROM pipeline_components WHERE instance = $1")
                .bind(&reporter.instance)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query(
                "INSERT INTO pipeline_components
                     (instance, component, version, started_at, reported_at, ready, not_ready,
                      every_ms, details)
                 VALUES ($1, $2, $3, to_timestamp($4), now(), $5, $6, $7, $8)
                 ON CONFLICT (instance) DO UPDATE SET
                     version = excluded.version, reported_at = excluded.reported_at,
                     ready = excluded.ready, not_ready = excluded.not_ready,
                     every_ms = excluded.every_ms, details = excluded.details",
            )
            .bind(&reporter.instance)
            .bind(reporter.component)
            .bind(&reporter.version)
            .bind(started_at as f64)
            .bind(state.ready.is_ok())
            .bind(state.ready.as_ref().err())
            .bind(i32::try_from(reporter.every.as_millis()).unwrap_or(i32::MAX))
            .bind(&state.details)
            .execute(&mut *tx)
            .await?;
        }
        if !counts.is_empty() {
            let minutes: Vec<f64> = counts.iter().map(|c| c.0 as f64).collect();
            let metrics: Vec<&str> = counts.iter().map(|c| c.1).collect();
            let labels: Vec<&str> = counts.iter().map(|c| c.2.as_str()).collect();
            let ns: Vec<i64> = counts.iter().map(|c| c.3).collect();
            sqlx::query(
                "INSERT INTO pipeline_counts (minute, component, metric, label, count)
                 SELECT to_timestamp(m), $2, metric, label, n
                 FROM unnest($1::float8[], $3::text[], $4::text[], $5::int8[])
                      AS c(m, metric, label, n)
                 ON CONFLICT (minute, component, metric, label)
                 DO UPDATE SET count = pipeline_counts.count + excluded.count",
            )
            .bind(minutes)
            .bind(reporter.component)
            .bind(metrics)
            .bind(labels)
            .bind(ns)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes counts older than a week and the rows of processes silent for a day; returns
    /// how many rows went.
    pub async fn prune_pipeline_status(&self) -> Result<u64, Error> {
        let counts = sqlx::query(&format!(
            "DELETE FROM pipeline_counts WHERE minute < now() - interval '{COUNTS_KEPT_FOR}'"
        ))
        .execute(self.pool())
        .await?
        .rows_affected();
        let silent = sqlx::query(&format!(
            "DELETE FROM pipeline_components
             WHERE reported_at < now() - interval '{SILENT_KEPT_FOR}'"
        ))
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(counts + silent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
        pairs.iter().map(|(l, n)| ((*l).to_owned(), *n)).collect()
    }

    #[test]
    fn freshness_lands_in_the_bucket_of_its_upper_bound() {
        let label = |ms| FRESHNESS_LABELS[freshness_bucket(ms)];
        assert_eq!(label(0), "5");
        assert_eq!(label(5), "5");
        assert_eq!(label(6), "10");
        assert_eq!(label(99), "100");
        assert_eq!(label(3_600_000), "3600000");
        assert_eq!(label(i64::MAX), "inf");
        // Each label is its bound.
        for (label, bound) in FRESHNESS_LABELS.iter().zip(FRESHNESS_BUCKETS_MS).take(23) {
            assert_eq!(label.parse::<u32>().ok(), Some(bound));
        }
    }

    #[test]
    fn quantiles_interpolate_within_their_bucket() {
        // 100 samples: 50 in (0, 5], 40 in (50, 75], 10 in (100, 125].
        let b = buckets(&[("5", 50), ("75", 40), ("125", 10)]);
        assert_eq!(freshness_quantile(&b, 0.5), Some(5.0));
        // Rank 70 is the 20th of 40 in (50, 75].
        assert_eq!(freshness_quantile(&b, 0.7), Some(62.5));
        // Rank 99 is the 9th of 10 in (100, 125].
        assert!((freshness_quantile(&b, 0.99).unwrap_or(0.0) - 122.5).abs() < 1e-9);
        assert_eq!(freshness_quantile(&[], 0.5), None);
        // Unknown labels are ignored; the last bucket has only a lower bound.
        let b = buckets(&[("7", 3), ("inf", 1)]);
        assert_eq!(freshness_quantile(&b, 0.99), Some(3_600_000.0));
    }

    #[test]
    fn a_tally_no_reporter_takes_counts_nothing() {
        let tally = Tally::new();
        tally.add("webhooks", "issuing_card.created", 1);
        assert!(tally.take().is_empty());
    }

    #[test]
    fn a_tally_adds_up_and_gives_back_what_was_not_stored() {
        let tally = Tally::new();
        tally.reported.store(true, Ordering::Relaxed);
        tally.add("webhooks", "issuing_card.created", 2);
        tally.add("webhooks", "issuing_card.created", 1);
        tally.add("rejections", "signature_mismatch", 1);
        tally.add("rejections", "unused", 0);
        let mut taken = tally.take();
        taken.sort_by(|a, b| a.2.cmp(&b.2));
        let summary: Vec<_> = taken.iter().map(|c| (c.1, c.2.as_str(), c.3)).collect();
        assert_eq!(
            summary,
            [
                ("webhooks", "issuing_card.created", 3),
                ("rejections", "signature_mismatch", 1)
            ]
        );
        assert!(tally.take().is_empty());
        tally.put_back(taken);
        tally.add("rejections", "signature_mismatch", 1);
        let back: i64 = tally.take().iter().map(|c| c.3).sum();
        assert_eq!(back, 5);
    }
}
