//! The Kubernetes side of cardstream: the `CardStream` custom resource (group
//! `cardstream.dev`, version `v1alpha1`), and the YAML `cardstream crd` prints, which is
//! committed as `k8s/crd.yaml` and checked for drift by a test. The reconciler follows.

mod crd;
mod objects;
mod scaling;

pub use crd::{
    AggregatorSpec, AutoscalingSpec, CardStream, CardStreamSpec, CardStreamStatus, ComponentSpec,
    ConfigMapKeyRef, KafkaSpec, PolicySource, SecretKeyRef,
};
use kube::CustomResourceExt;
pub use objects::{
    Component, deployment, disruption_budget, labels, migration_job, object_name,
    policy_config_map, service,
};
pub use scaling::Recommender;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot render the CRD as YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
}

/// The CustomResourceDefinition, as YAML.
pub fn crd_yaml() -> Result<String, Error> {
    Ok(serde_yaml::to_string(&CardStream::crd())?)
}
