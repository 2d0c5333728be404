//! The Kubernetes side of cardstream: the `CardStream` custom resource (group
//! `cardstream.dev`, version `v1alpha1`), the YAML `cardstream crd` prints (committed as
//! `k8s/crd.yaml` and checked for drift by a test), and the operator that reconciles it.

mod crd;
mod images;
mod kafka;
mod lease;
mod metrics;
mod objects;
mod reconcile;
mod run;
mod scaling;
mod secrets;
mod status;

pub use crd::{
    AggregatorSpec, AutoscalingSpec, CardStream, CardStreamSpec, CardStreamStatus, ComponentSpec,
    ConfigMapKeyRef, KafkaSpec, PolicySource, SecretKeyRef,
};
pub use kafka::{KafkaState, kafka_args, observe as observe_kafka};
use kube::CustomResourceExt;
pub use lease::{Ended, LeaderLease, LeaseTiming};
pub use metrics::OperatorMetrics;
pub use objects::{
    Component, consumer_group, deployment, disruption_budget, labels, migration_job, object_labels,
    object_name, policy_config_map, service, service_monitor,
};
pub use reconcile::{Context, MANAGER, error_policy, reconcile};
pub use run::{OperatorArgs, controller, run};
pub use scaling::Recommender;
pub use secrets::{Referenced, SECRETS_ANNOTATION, read as read_secrets};
pub use status::{Migration, Observed, Rollout, refused, status};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot render the CRD as YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("Kafka: {0}")]
    Kafka(#[from] cardstream_kafka::Error),
    #[error("spec.kafka.properties: {0}")]
    KafkaProperty(String),
    #[error("invalid settings: {0}")]
    InvalidSettings(String),
    #[error("invalid CardStream: {0}")]
    InvalidSpec(String),
    #[error("a referenced Secret: {0}")]
    Secret(String),
    #[error(
        "lost the leader Lease (another replica holds it, or no renewal succeeded within the renew deadline)"
    )]
    LeaseLost,
    #[error("the API server did not answer about the leader Lease within {0:?}")]
    LeaseTimeout(std::time::Duration),
    #[error(transparent)]
    Telemetry(#[from] cardstream_telemetry::Error),
    #[error("cannot register a metric: {0}")]
    Metric(#[from] prometheus::Error),
}

impl Error {
    /// The `reason` label of `cardstream_reconcile_failures_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kubernetes",
            Error::Kafka(_) => "kafka",
            Error::KafkaProperty(_) | Error::InvalidSpec(_) => "invalid_spec",
            Error::Secret(_) => "secret",
            _ => "internal",
        }
    }
}

/// The CustomResourceDefinition, as YAML.
pub fn crd_yaml() -> Result<String, Error> {
    Ok(serde_yaml::to_string(&CardStream::crd())?)
}
