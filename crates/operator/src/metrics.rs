use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::Error;

/// Everything the operator counts, named `cardstream_operator_*`.
#[derive(Clone, Debug)]
pub struct OperatorMetrics {
    /// Reconciles finished, by result (`ok`, `error`).
    pub reconciles: IntCounterVec,
    /// Failed reconciles, by reason (`kubernetes`, `kafka`, `invalid_spec`).
    pub failures: IntCounterVec,
    pub duration: Histogram,
    /// 1 while this replica holds the Lease and reconciles.
    pub leader: IntGauge,
    /// The aggregator consumer group's lag, per CardStream, as last measured.
    pub consumer_lag: IntGaugeVec,
    /// The aggregator replicas asked for, per CardStream.
    pub aggregator_replicas: IntGaugeVec,
}

impl OperatorMetrics {
    pub fn new(registry: &Registry) -> Result<Self, Error> {
        let per_resource = ["namespace", "name"];
        let m = OperatorMetrics {
            reconciles: IntCounterVec::new(
                Opts::new(
                    "cardstream_operator_reconciles_total",
                    "Reconciles of CardStream resources, by result.",
                ),
                &["result"],
            )?,
            failures: IntCounterVec::new(
                Opts::new(
                    "cardstream_operator_reconcile_failures_total",
                    "Reconciles that failed, by reason: kubernetes (the API server refused or \
                     was unreachable), kafka (the broker was), invalid_spec.",
                ),
                &["reason"],
            )?,
            duration: Histogram::with_opts(
                HistogramOpts::new(
                    "cardstream_operator_reconcile_duration_seconds",
                    "Time for one reconcile, the Kafka step included.",
                )
                .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            )?,
            leader: IntGauge::new(
                "cardstream_operator_leader",
                "1 while this replica holds the leader Lease and reconciles; 0 on standby.",
            )?,
            consumer_lag: IntGaugeVec::new(
                Opts::new(
                    "cardstream_operator_consumer_lag_records",
                    "Records the CardStream's aggregator group has not committed, as last measured.",
                ),
                &per_resource,
            )?,
            aggregator_replicas: IntGaugeVec::new(
                Opts::new(
                    "cardstream_operator_aggregator_replicas",
                    "Aggregator replicas the operator asked for.",
                ),
                &per_resource,
            )?,
        };
        registry.register(Box::new(m.reconciles.clone()))?;
        registry.register(Box::new(m.failures.clone()))?;
        registry.register(Box::new(m.duration.clone()))?;
        registry.register(Box::new(m.leader.clone()))?;
        registry.register(Box::new(m.consumer_lag.clone()))?;
        registry.register(Box::new(m.aggregator_replicas.clone()))?;
        Ok(m)
    }

    /// Drops a deleted CardStream's series, so its last lag is not reported forever.
    pub fn forget(&self, namespace: &str, name: &str) {
        let _ = self.consumer_lag.remove_label_values(&[namespace, name]);
        let _ = self
            .aggregator_replicas
            .remove_label_values(&[namespace, name]);
    }
}
