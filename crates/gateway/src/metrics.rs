use cardstream_policy::{Decision, Reason};
use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use cardstream_store::Tally;

use crate::Error;

/// Everything the gateway counts. Names carry no component: Prometheus' `job` label says which
/// process a series came from.
#[derive(Clone, Debug)]
pub struct GatewayMetrics {
    /// Webhooks refused, by route and reason code (the same code the caller got).
    pub rejections: IntCounterVec,
    /// Signature failures by reason: missing, malformed, mismatch, outside tolerance.
    pub signature_failures: IntCounterVec,
    /// Time from handing a record to the producer to the broker's acknowledgement.
    pub produce_duration: Histogram,
    /// Records the broker did not acknowledge, by path (`webhook` answered 503,
    /// `authorization` was produced in the background) and reason.
    pub produce_failures: IntCounterVec,
    /// Authorization decisions, by outcome and reason.
    pub decisions: IntCounterVec,
    /// Policy reloads by outcome.
    pub policy_reloads: IntCounterVec,
    /// Background produces of authorization requests not yet acknowledged.
    pub background_in_flight: IntGauge,
    /// Events accepted (answered 200 after acknowledgement).
    pub events_accepted: IntCounter,
    /// Spend refreshes from Postgres by outcome.
    pub spend_refreshes: IntCounterVec,
    /// Age of the spend snapshot the limits use.
    pub spend_age: Gauge,
    /// Requests answered 503 because the gateway was at capacity, by which limit.
    pub shed: IntCounterVec,
    /// Reloads of the webhook secrets files, by outcome.
    pub secret_reloads: IntCounterVec,
    /// Authorization requests that repeated one already answered.
    pub authorization_replays: IntCounter,
    /// Per-minute counts for the admin console's health page: `webhooks` by event type,
    /// `rejections` by code (see `cardstream_store::Reporter`).
    pub tally: Tally,
    /// When the last authenticated webhook arrived (ms since the epoch; 0 before the first).
    pub last_webhook_ms: Arc<AtomicI64>,
}

impl GatewayMetrics {
    pub fn new(registry: &Registry) -> Result<Self, Error> {
        let m = GatewayMetrics {
            rejections: IntCounterVec::new(
                Opts::new(
                    "cardstream_webhook_rejections_total",
                    "Webhooks refused, by route and the error code returned.",
                ),
                &["route", "reason"],
            )?,
            signature_failures: IntCounterVec::new(
                Opts::new(
                    "cardstream_signature_failures_total",
                    "Webhooks whose Stripe-Signature did not verify, by reason.",
                ),
                &["reason"],
            )?,
            produce_duration: Histogram::with_opts(
                HistogramOpts::new(
                    "cardstream_produce_duration_seconds",
                    "Time from producing an event to the broker's acknowledgement (acks=all).",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
            )?,
            produce_failures: IntCounterVec::new(
                Opts::new(
                    "cardstream_produce_failures_total",
                    "Events the broker did not acknowledge, by path and reason.",
                ),
                &["path", "reason"],
            )?,
            decisions: IntCounterVec::new(
                Opts::new(
                    "cardstream_authorization_decisions_total",
                    "Authorization decisions returned to Stripe, by outcome and reason.",
                ),
                &["approved", "reason"],
            )?,
            policy_reloads: IntCounterVec::new(
                Opts::new(
                    "cardstream_policy_reloads_total",
                    "Policy file reloads, by outcome (ok, invalid).",
                ),
                &["outcome"],
            )?,
            background_in_flight: IntGauge::new(
                "cardstream_authorization_produce_in_flight",
                "Authorization requests answered but not yet acknowledged by the broker.",
            )?,
            events_accepted: IntCounter::new(
                "cardstream_events_accepted_total",
                "Events acknowledged by the broker and answered 200.",
            )?,
            spend_refreshes: IntCounterVec::new(
                Opts::new(
                    "cardstream_spend_refreshes_total",
                    "Reads of card spend from Postgres for the spend limits, by outcome (ok, error).",
                ),
                &["outcome"],
            )?,
            spend_age: Gauge::new(
                "cardstream_spend_age_seconds",
                "Age of the card spend the limits decide with; past the staleness bound, limits follow on_spend_unknown.",
            )?,
            shed: IntCounterVec::new(
                Opts::new(
                    "cardstream_shed_total",
                    "Requests answered 503 with Retry-After because the gateway was at capacity, by limit (requests: --max-concurrent-requests; large_bodies: --max-large-bodies).",
                ),
                &["reason"],
            )?,
            secret_reloads: IntCounterVec::new(
                Opts::new(
                    "cardstream_webhook_secret_reloads_total",
                    "Reloads of the webhook secrets files after one changed, by outcome (ok; invalid: empty or unreadable, the secrets in force stay).",
                ),
                &["outcome"],
            )?,
            authorization_replays: IntCounter::new(
                "cardstream_authorization_replays_total",
                "Authorization request events received again after being answered: given the same answer, not counted against limits again.",
            )?,
            tally: Tally::new(),
            last_webhook_ms: Arc::default(),
        };
        for reason in ["requests", "large_bodies"] {
            m.shed.with_label_values(&[reason]);
        }
        registry.register(Box::new(m.shed.clone()))?;
        registry.register(Box::new(m.authorization_replays.clone()))?;
        registry.register(Box::new(m.secret_reloads.clone()))?;
        registry.register(Box::new(m.rejections.clone()))?;
        // Every reason from the start, at 0: a rate() over a series that appears only with its
        // first failure misses that failure, and an alert on it would never fire.
        for code in cardstream_stripe::SignatureError::CODES {
            m.signature_failures.with_label_values(&[code]);
        }
        registry.register(Box::new(m.signature_failures.clone()))?;
        registry.register(Box::new(m.produce_duration.clone()))?;
        for path in ["webhook", "authorization"] {
            for reason in cardstream_kafka::Error::PRODUCE_REASONS {
                m.produce_failures.with_label_values(&[path, reason]);
            }
        }
        registry.register(Box::new(m.produce_failures.clone()))?;
        registry.register(Box::new(m.decisions.clone()))?;
        registry.register(Box::new(m.policy_reloads.clone()))?;
        registry.register(Box::new(m.background_in_flight.clone()))?;
        registry.register(Box::new(m.events_accepted.clone()))?;
        registry.register(Box::new(m.spend_refreshes.clone()))?;
        // Zeros with the shared ledger, which never refreshes: the series exist either way.
        for outcome in ["ok", "error"] {
            m.spend_refreshes.with_label_values(&[outcome]);
        }
        registry.register(Box::new(m.spend_age.clone()))?;
        // Create every decision series up front so dashboards and alerts see zeros, not gaps.
        for reason in Reason::ALL {
            let approved = if reason == Reason::Approved {
                "true"
            } else {
                "false"
            };
            m.decisions.with_label_values(&[approved, reason.as_str()]);
        }
        Ok(m)
    }

    /// An authenticated webhook of `kind` arrived at `at_ms`.
    pub fn webhook_received(&self, kind: &str, at_ms: i64) {
        self.tally.add("webhooks", type_label(kind), 1);
        self.last_webhook_ms.fetch_max(at_ms, Ordering::Relaxed);
    }

    /// A webhook was refused with `code`.
    pub fn webhook_refused(&self, route: &str, code: &str) {
        self.rejections.with_label_values(&[route, code]).inc();
        self.tally.add("rejections", code, 1);
    }

    pub fn record_decision(&self, decision: &Decision) {
        let approved = if decision.approved { "true" } else { "false" };
        self.decisions
            .with_label_values(&[approved, decision.reason.as_str()])
            .inc();
    }
}

/// An event type as a count's label: itself when it reads like one of Stripe's
/// (`issuing_authorization.created`), else `other`. Events are signed, so only Stripe (or a
/// holder of the secret) names them, but the labels stay bounded whatever a payload says.
fn type_label(kind: &str) -> &str {
    let plausible = (3..=64).contains(&kind.len())
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
    if plausible { kind } else { "other" }
}

#[cfg(test)]
mod tests {
    use super::type_label;

    #[test]
    fn event_types_label_as_themselves_or_other() {
        assert_eq!(type_label("issuing_card.created"), "issuing_card.created");
        for odd in [
            "",
            "x",
            "Issuing_card.created",
            "a b",
            &"a".repeat(65),
            "café",
        ] {
            assert_eq!(type_label(odd), "other", "{odd:?}");
        }
    }
}
