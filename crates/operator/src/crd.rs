//! The `CardStream` custom resource: one cardstream installation (gateway, aggregator and API
//! on a Kafka cluster and a Postgres database), as an operator reads it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, EnvVar, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A cardstream installation.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "cardstream.dev",
    version = "v1alpha1",
    kind = "CardStream",
    namespaced,
    status = "CardStreamStatus",
    shortname = "cs",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Lag","type":"integer","jsonPath":".status.consumerLag"}"#,
    printcolumn = r#"{"name":"Aggregators","type":"integer","jsonPath":".status.aggregatorReplicas"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct CardStreamSpec {
    /// The cardstream image, e.g. `ghcr.io/cardstream/cardstream:0.1.0`.
    pub image: String,
    #[serde(default)]
    pub image_pull_policy: Option<String>,
    /// Secrets (in the CardStream's namespace) to pull the image with, given to every pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<k8s_openapi::api::core::v1::LocalObjectReference>,
    pub kafka: KafkaSpec,
    /// The Secret key holding the Postgres URL (`CARDSTREAM_DATABASE_URL`).
    pub database_url_secret: SecretKeyRef,
    /// The Secret key holding the webhook signing secrets, one per line.
    pub webhook_secrets_secret: SecretKeyRef,
    /// The Secret key holding a Stripe Connect webhook endpoint's signing secrets, one per
    /// line: events signed with them must be connected accounts' (carry `account`), those
    /// signed with `webhookSecretsSecret` the platform's own. Mounted as a file the gateway
    /// reloads, like `webhookSecretsSecret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_webhook_secrets_secret: Option<SecretKeyRef>,
    /// The Secret key holding the API's token-signing secret (at least 32 bytes).
    pub token_secret: SecretKeyRef,
    /// The Secret key holding the record keys (at least 32 bytes each, one per line): the
    /// gateway signs every record on the topic with the first, the aggregator folds only
    /// records signed with one of them. Without it, records are not authenticated.
    #[serde(default)]
    pub record_keys_secret: Option<SecretKeyRef>,
    #[serde(default)]
    pub gateway: ComponentSpec,
    #[serde(default)]
    pub aggregator: AggregatorSpec,
    #[serde(default)]
    pub api: ComponentSpec,
    /// The authorization policy, inline (TOML, as `cardstream gateway --policy-file` reads it)
    /// or from a ConfigMap key. Admins' saved edits win over it.
    #[serde(default)]
    pub policy: Option<PolicySource>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaSpec {
    /// Bootstrap servers, comma-separated `host:port`.
    pub bootstrap_servers: String,
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Partitions of the events topic: the most aggregator replicas that can share the work.
    /// The operator grows the topic to this, never shrinks it.
    #[serde(default = "default_partitions")]
    #[schemars(range(min = 1, max = 1024))]
    pub partitions: i32,
    /// Replication factor of topics the operator creates (existing topics keep theirs).
    #[serde(default = "default_replication")]
    #[schemars(range(min = 1, max = 16))]
    pub replication_factor: i32,
    /// Extra librdkafka properties (TLS, SASL mechanism), `key=value`. Credentials are
    /// refused here: they go in `credentialsSecret`.
    #[serde(default)]
    pub properties: Vec<String>,
    /// The Secret key holding librdkafka properties that are credentials (`sasl.username`,
    /// `sasl.password`, `ssl.key.password`, ...), one `key=value` per line. Pods get it as a
    /// `secretKeyRef`; the operator reads it to reach Kafka itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<SecretKeyRef>,
}

fn default_topic() -> String {
    "stripe.events".into()
}

fn default_partitions() -> i32 {
    8
}

fn default_replication() -> i32 {
    3
}

/// A key of a Secret in the CardStream's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

/// One component's Deployment: how many pods, their resources, and where and how they run
/// (the fields of Bitnami's and prometheus-community's charts, with the same names).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSpec {
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 100))]
    pub replicas: i32,
    #[serde(default)]
    pub resources: Option<ResourceRequirements>,
    /// Nodes the pods may run on, by label.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Spread across zones or nodes; the operator fills in each constraint's `labelSelector`
    /// (the component's pods) when it is left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    /// Added to the pods' annotations; `cardstream.dev/` ones are the operator's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_annotations: BTreeMap<String, String>,
    /// Added to the pods' labels; `app.kubernetes.io/` ones are the operator's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_labels: BTreeMap<String, String>,
    /// More environment variables for the container; the `CARDSTREAM_` ones the operator sets
    /// (brokers, database, secrets, listen addresses) cannot be replaced here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

impl Default for ComponentSpec {
    fn default() -> Self {
        ComponentSpec {
            replicas: default_replicas(),
            resources: None,
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            affinity: None,
            topology_spread_constraints: Vec::new(),
            pod_annotations: BTreeMap::new(),
            pod_labels: BTreeMap::new(),
            extra_env: Vec::new(),
            priority_class_name: None,
        }
    }
}

fn default_replicas() -> i32 {
    2
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct AggregatorSpec {
    /// Replicas while autoscaling is off (never more than the topic's partitions help).
    #[serde(flatten)]
    pub component: ComponentSpec,
    #[serde(default)]
    pub autoscaling: Option<AutoscalingSpec>,
}

/// Scale the aggregator on consumer-group lag.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalingSpec {
    #[schemars(range(min = 1))]
    pub min_replicas: i32,
    /// Capped at the topic's partition count.
    #[schemars(range(min = 1))]
    pub max_replicas: i32,
    /// Records of lag one replica is expected to work off.
    #[schemars(range(min = 1))]
    pub target_lag_per_replica: i64,
    /// How long a lower replica count must be wanted before scaling down (no flapping).
    #[serde(default = "default_window")]
    #[schemars(range(min = 0))]
    pub stabilization_window_seconds: i64,
}

fn default_window() -> i64 {
    300
}

/// Where the authorization policy comes from: one of the two.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct PolicySource {
    /// The policy file's TOML.
    #[serde(default)]
    pub inline: Option<String>,
    /// A ConfigMap key holding the TOML.
    #[serde(default)]
    pub config_map: Option<ConfigMapKeyRef>,
}

/// A key of a ConfigMap in the CardStream's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct ConfigMapKeyRef {
    pub name: String,
    pub key: String,
}

/// What the operator last saw and did.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CardStreamStatus {
    #[serde(default)]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing` and `Degraded`, each with a reason.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub gateway_ready_replicas: i32,
    #[serde(default)]
    pub aggregator_ready_replicas: i32,
    #[serde(default)]
    pub api_ready_replicas: i32,
    /// Records the aggregator's consumer group is behind, summed over partitions.
    #[serde(default)]
    pub consumer_lag: Option<i64>,
    /// Aggregator replicas the operator asked for.
    #[serde(default)]
    pub aggregator_replicas: Option<i32>,
}
