use prometheus::core::Collector;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::Error;

/// Everything the operator counts. Names carry no component: Prometheus' `job` label says which
/// process a series came from, as for every cardstream component.
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
                    "cardstream_reconciles_total",
                    "Reconciles of CardStream resources, by result.",
                ),
                &["result"],
            )?,
            failures: IntCounterVec::new(
                Opts::new(
                    "cardstream_reconcile_failures_total",
                    "Reconciles that failed, by reason: kubernetes (the API server refused or \
                     was unreachable), kafka (the broker was), invalid_spec.",
                ),
                &["reason"],
            )?,
            duration: Histogram::with_opts(
                HistogramOpts::new(
                    "cardstream_reconcile_duration_seconds",
                    "Time for one reconcile, the Kafka step included.",
                )
                .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            )?,
            leader: IntGauge::new(
                "cardstream_leader",
                "1 while this replica holds the leader Lease and reconciles; 0 on standby.",
            )?,
            consumer_lag: IntGaugeVec::new(
                Opts::new(
                    "cardstream_consumer_group_lag_records",
                    "Records the CardStream's aggregator group has not committed, as last measured.",
                ),
                &per_resource,
            )?,
            aggregator_replicas: IntGaugeVec::new(
                Opts::new(
                    "cardstream_aggregator_replicas",
                    "Aggregator replicas the operator asked for.",
                ),
                &per_resource,
            )?,
        };
        for collector in m.collectors() {
            registry.register(collector)?;
        }
        Ok(m)
    }

    /// Every metric family the operator serves, by name: what checks of the chart's alerts and
    /// dashboard read to tell the operator's series from the components'.
    pub fn names(&self) -> Vec<String> {
        self.collectors()
            .iter()
            .flat_map(|c| c.desc())
            .map(|d| d.fq_name.clone())
            .collect()
    }

    /// The one list of what is registered, so `names` cannot leave a metric out.
    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.reconciles.clone()),
            Box::new(self.failures.clone()),
            Box::new(self.duration.clone()),
            Box::new(self.leader.clone()),
            Box::new(self.consumer_lag.clone()),
            Box::new(self.aggregator_replicas.clone()),
        ]
    }

    /// Drops a deleted CardStream's series, so its last lag is not reported forever.
    pub fn forget(&self, namespace: &str, name: &str) {
        let _ = self.consumer_lag.remove_label_values(&[namespace, name]);
        let _ = self
            .aggregator_replicas
            .remove_label_values(&[namespace, name]);
    }
}
