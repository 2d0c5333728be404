//! The pipeline's health for the platform's admins, from where each figure lives: the
//! processes' own reports and per-minute counts (`cardstream_store::Reporter`, migration 0020)
//! and the dead letters table. Nothing is scraped from Prometheus.

use async_graphql::{Context, SimpleObject};
use cardstream_store::{ComponentReport, PipelineSnapshot, freshness_quantile};

use super::context::{platform_admin, store};
use super::errors::{ApiError, ApiResult};
use super::scalars::DateTime;

/// The longest window one query reads: a day of minutes.
pub const MAX_MINUTES: i32 = 1_440;

/// The pipeline as its processes last reported it, with what they counted over the last
/// `minutes`.
#[derive(SimpleObject)]
pub struct PipelineHealth {
    /// When this was read, by the database's clock (every "ago" below is from it).
    pub at: DateTime,
    /// The minutes the counts cover, the current one included.
    pub minutes: i32,
    /// The newest authenticated webhook any gateway received.
    pub last_webhook_at: Option<DateTime>,
    pub seconds_since_last_webhook: Option<f64>,
    /// The newest batch any aggregator committed to Postgres.
    pub last_commit_at: Option<DateTime>,
    /// Authenticated webhooks per minute and event type, oldest first (minutes without any
    /// are left out).
    pub webhooks: Vec<WebhookMinute>,
    /// Webhooks refused per minute and reason: signature failures (`signature_mismatch`,
    /// `timestamp_outside_tolerance`, …), other 4xx (`body_not_json`, …) and the 503s
    /// (`overloaded`, `broker_unavailable`), oldest first.
    pub rejections: Vec<RejectionMinute>,
    /// Records the aggregators read, by outcome, over the window.
    pub records: RecordCounts,
    /// From a gateway receiving an event to its batch committing in Postgres, over the window.
    pub freshness: Freshness,
    /// Records behind the end of each partition, as the aggregator holding it last read it.
    pub partitions: Vec<PartitionLag>,
    /// Dead letters not yet written back.
    pub dead_letters_waiting: i64,
    /// Of those, the ones whose redrive was asked for and is not done yet.
    pub redrives_requested: i64,
    /// Every gateway, aggregator and API process that reported in the last day.
    pub components: Vec<PipelineComponent>,
}

#[derive(SimpleObject)]
pub struct WebhookMinute {
    pub minute: DateTime,
    pub event_type: String,
    pub count: i64,
}

#[derive(SimpleObject)]
pub struct RejectionMinute {
    pub minute: DateTime,
    /// The code the caller got in the error body.
    pub reason: String,
    /// A signature failure (as opposed to another refusal).
    pub signature: bool,
    pub count: i64,
}

#[derive(SimpleObject, Default)]
pub struct RecordCounts {
    /// Stored for the first time.
    pub new: i64,
    /// Already stored (a redelivery, or Stripe sending one twice).
    pub duplicate: i64,
    /// Sent to the dead letters.
    pub dead_letter: i64,
}

#[derive(SimpleObject)]
pub struct Freshness {
    /// Events measured (those whose gateway stamped when it received them).
    pub events: i64,
    /// Interpolated within 5–250 ms wide buckets, as Prometheus' `histogram_quantile` does;
    /// null without events.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(SimpleObject)]
pub struct PartitionLag {
    pub partition: i32,
    /// Records between the consumer's position and the partition's end.
    pub lag: i64,
    /// The aggregator process that read it.
    pub instance: String,
    pub reported_at: DateTime,
}

#[derive(SimpleObject)]
pub struct PipelineComponent {
    /// `gateway`, `aggregator` or `api`.
    pub component: String,
    /// `component@host:pid`; the host is the pod's name in Kubernetes.
    pub instance: String,
    /// The build, `version (revision)`.
    pub version: String,
    /// As its `/readyz` said at its last report.
    pub ready: bool,
    /// Why not, one line per unmet condition.
    pub not_ready: Option<String>,
    pub started_at: DateTime,
    pub reported_at: DateTime,
    pub seconds_since_report: f64,
    /// No report for three of its intervals: stopped without saying so, or cut off from
    /// Postgres. Its last report is shown as it was.
    pub silent: bool,
}

/// `pipelineHealth(minutes)`.
pub async fn pipeline_health(ctx: &Context<'_>, minutes: i32) -> ApiResult<PipelineHealth> {
    platform_admin(ctx).await?;
    if !(1..=MAX_MINUTES).contains(&minutes) {
        return Err(ApiError::BadUserInput(format!(
            "minutes must be between 1 and {MAX_MINUTES}"
        )));
    }
    let snapshot = store(ctx).pipeline_snapshot(minutes).await?;
    Ok(PipelineHealth::from_snapshot(snapshot, minutes))
}

/// A detail a process reported as a number of unix seconds.
fn seconds(report: &ComponentReport, key: &str) -> Option<f64> {
    report.details.get(key).and_then(serde_json::Value::as_f64)
}

fn instant(seconds: f64) -> DateTime {
    DateTime(seconds.floor() as i64)
}

impl PipelineHealth {
    fn from_snapshot(s: PipelineSnapshot, minutes: i32) -> Self {
        let newest = |component: &str, key: &str| {
            s.components
                .iter()
                .filter(|c| c.component == component)
                .filter_map(|c| seconds(c, key))
                .reduce(f64::max)
        };
        let last_webhook = newest("gateway", "last_webhook_at");
        let last_commit = newest("aggregator", "last_commit_at");
        // Replicas of a component add to the same rows: these are the component's totals.
        let of = |metric: &'static str| s.counts.iter().filter(move |c| c.metric == metric);
        let webhooks = of("webhooks")
            .map(|c| WebhookMinute {
                minute: DateTime(c.minute),
                event_type: c.label.clone(),
                count: c.count,
            })
            .collect();
        let rejections = of("rejections")
            .map(|c| RejectionMinute {
                minute: DateTime(c.minute),
                reason: c.label.clone(),
                signature: cardstream_stripe::SignatureError::CODES.contains(&c.label.as_str()),
                count: c.count,
            })
            .collect();
        let mut records = RecordCounts::default();
        for c in of("records") {
            match c.label.as_str() {
                "new" => records.new += c.count,
                "duplicate" => records.duplicate += c.count,
                "dead_letter" => records.dead_letter += c.count,
                _ => {}
            }
        }
        let buckets: Vec<(String, i64)> = of("freshness_ms")
            .map(|c| (c.label.clone(), c.count))
            .collect();
        let freshness = Freshness {
            events: buckets.iter().map(|(_, n)| n).sum(),
            p50_ms: freshness_quantile(&buckets, 0.5),
            p99_ms: freshness_quantile(&buckets, 0.99),
        };
        let mut partitions: Vec<PartitionLag> = s
            .components
            .iter()
            .filter(|c| c.component == "aggregator" && !is_silent(c, s.now))
            .flat_map(|c| {
                let listed = c.details.get("partitions").and_then(|p| p.as_array());
                listed.into_iter().flatten().filter_map(|p| {
                    Some(PartitionLag {
                        partition: i32::try_from(p.get("partition")?.as_i64()?).ok()?,
                        lag: p.get("lag")?.as_i64()?,
                        instance: c.instance.clone(),
                        reported_at: instant(c.reported_at),
                    })
                })
            })
            .collect();
        partitions.sort_by_key(|p| (p.partition, p.instance.clone()));
        let components = s
            .components
            .iter()
            .map(|c| PipelineComponent {
                component: c.component.clone(),
                instance: c.instance.clone(),
                version: c.version.clone(),
                ready: c.ready,
                not_ready: c.not_ready.clone(),
                started_at: instant(c.started_at),
                reported_at: instant(c.reported_at),
                seconds_since_report: (s.now - c.reported_at).max(0.0),
                silent: is_silent(c, s.now),
            })
            .collect();
        PipelineHealth {
            at: instant(s.now),
            minutes,
            last_webhook_at: last_webhook.map(instant),
            seconds_since_last_webhook: last_webhook.map(|at| (s.now - at).max(0.0)),
            last_commit_at: last_commit.map(instant),
            webhooks,
            rejections,
            records,
            freshness,
            partitions,
            dead_letters_waiting: s.dead_letters_waiting,
            redrives_requested: s.redrives_requested,
            components,
        }
    }
}

/// Three intervals without a report.
fn is_silent(c: &ComponentReport, now: f64) -> bool {
    now - c.reported_at > 3.0 * f64::from(c.every_ms) / 1000.0
}
