//! What the gateway's catch-up loop exports.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

/// Catch-up's counters. A non-zero rate of recovered events means webhooks are being missed:
/// the chart's `CardStreamWebhooksMissed` alert fires on it.
#[derive(Debug, Clone)]
pub struct CatchUpMetrics {
    recovered: IntCounter,
    runs: IntCounterVec,
}

impl CatchUpMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let recovered = IntCounter::new(
            "cardstream_catch_up_events_recovered_total",
            "Events Stripe lists that the pipeline had not stored (their webhooks never arrived), written to Kafka by catch-up.",
        )?;
        let runs = IntCounterVec::new(
            Opts::new(
                "cardstream_catch_up_runs_total",
                "Catch-up rounds by outcome: ok, failed (logged), or skipped (another replica held the lock).",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(recovered.clone()))?;
        registry.register(Box::new(runs.clone()))?;
        for outcome in ["ok", "failed", "skipped"] {
            runs.with_label_values(&[outcome]);
        }
        Ok(CatchUpMetrics { recovered, runs })
    }

    pub(crate) fn recovered(&self, events: u64) {
        self.recovered.inc_by(events);
    }

    pub(crate) fn run(&self, outcome: &str) {
        self.runs.with_label_values(&[outcome]).inc();
    }
}
