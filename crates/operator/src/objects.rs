//! The objects a CardStream becomes: pure functions from the resource to what should exist, so
//! that what the operator applies is tested without an API server.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    HTTPGetAction, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    SeccompProfile, SecretKeySelector, SecretVolumeSource, SecurityContext, Service, ServicePort,
    ServiceSpec, TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};

use crate::{CardStream, ComponentSpec, SecretKeyRef};

/// The three workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    Gateway,
    Aggregator,
    Api,
}

impl Component {
    pub const ALL: [Component; 3] = [Component::Gateway, Component::Aggregator, Component::Api];

    /// The component's part of the spec.
    pub fn spec(self, cs: &CardStream) -> &ComponentSpec {
        match self {
            Component::Gateway => &cs.spec.gateway,
            Component::Aggregator => &cs.spec.aggregator.component,
            Component::Api => &cs.spec.api,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Component::Gateway => "gateway",
            Component::Aggregator => "aggregator",
            Component::Api => "api",
        }
    }

    /// Whether it serves traffic (and so gets a Service).
    pub fn serves(self) -> bool {
        self != Component::Aggregator
    }
}

const HTTP_PORT: i32 = 8080;
const ADMIN_PORT: i32 = 9090;
/// A non-root user present in distroless-style images.
const USER: i64 = 65532;
const SECRETS_DIR: &str = "/var/run/cardstream/webhook-secrets";
const CONNECT_SECRETS_DIR: &str = "/var/run/cardstream/connect-webhook-secrets";
const POLICY_DIR: &str = "/etc/cardstream/policy";
/// How long Kubernetes waits after SIGTERM before it kills a pod: the components' drain
/// (`--shutdown-delay`, 5 s) and shutdown timeout (10 s), and their 1 s exit bound, with room.
const TERMINATION_GRACE_SECONDS: i64 = 20;

/// The ConfigMap and key the gateway reads its policy file from, if any.
fn policy_source(cs: &CardStream) -> Option<(String, String)> {
    let policy = cs.spec.policy.as_ref()?;
    if policy.inline.is_some() {
        return Some((
            format!("{}-policy", cs.name_any()),
            "policy.toml".to_owned(),
        ));
    }
    let reference = policy.config_map.as_ref()?;
    Some((reference.name.clone(), reference.key.clone()))
}

/// What a component gets when its CardStream names no resources: requests, so that it is
/// scheduled where it fits and is not the first evicted (BestEffort), and a memory limit
/// above what its own bounds allow (the gateway sheds load under 256 MiB; the API hashes at
/// most two passwords of 19 MiB at once; the aggregator's batch is at most 16 MiB of payload
/// and a few times that in memory). No CPU limit: throttling would add latency to
/// authorization decisions rather than protect anything.
fn default_resources(component: Component) -> ResourceRequirements {
    let (cpu, memory, limit) = match component {
        Component::Gateway => ("100m", "128Mi", "512Mi"),
        Component::Api => ("100m", "128Mi", "512Mi"),
        Component::Aggregator => ("250m", "256Mi", "1Gi"),
    };
    let quantity = |q: &str| Quantity(q.to_owned());
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), quantity(cpu)),
            ("memory".to_owned(), quantity(memory)),
        ])),
        limits: Some(BTreeMap::from([("memory".to_owned(), quantity(limit))])),
        ..ResourceRequirements::default()
    }
}

/// `cardstream-<instance>-<component>`.
pub fn object_name(cs: &CardStream, component: Component) -> String {
    format!("{}-{}", cs.name_any(), component.name())
}

/// The aggregator's Kafka consumer group: namespaced, so two CardStreams sharing a Kafka cluster
/// never share (or steal) each other's partitions.
pub fn consumer_group(cs: &CardStream) -> String {
    format!(
        "cardstream.{}.{}.aggregator",
        cs.namespace().unwrap_or_default(),
        cs.name_any()
    )
}

/// The labels every object of a component carries, and selects its pods by. Nothing here may
/// change over a CardStream's life: a Deployment's selector is immutable.
pub fn labels(cs: &CardStream, component: Option<Component>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "cardstream".to_owned()),
        ("app.kubernetes.io/instance".to_owned(), cs.name_any()),
        (
            "app.kubernetes.io/managed-by".to_owned(),
            "cardstream-operator".to_owned(),
        ),
    ]);
    if let Some(component) = component {
        labels.insert(
            "app.kubernetes.io/component".to_owned(),
            component.name().to_owned(),
        );
    }
    labels
}

/// [`labels`] and the recommended labels that are not for selecting: `part-of`, and `version`
/// (the image's tag, when it is a valid label value).
pub fn object_labels(cs: &CardStream, component: Option<Component>) -> BTreeMap<String, String> {
    let mut all = labels(cs, component);
    all.insert(
        "app.kubernetes.io/part-of".to_owned(),
        "cardstream".to_owned(),
    );
    let valid = |tag: &&str| {
        tag.len() <= 63
            && tag.starts_with(|c: char| c.is_ascii_alphanumeric())
            && tag.ends_with(|c: char| c.is_ascii_alphanumeric())
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if let Some(version) = crate::images::tag(&cs.spec.image).filter(valid) {
        all.insert("app.kubernetes.io/version".to_owned(), version.to_owned());
    }
    all
}

fn meta(cs: &CardStream, name: String, component: Option<Component>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: cs.namespace(),
        labels: Some(object_labels(cs, component)),
        // Deleting the CardStream deletes everything it made.
        owner_references: owner(cs).map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

fn owner(cs: &CardStream) -> Option<OwnerReference> {
    cs.controller_owner_ref(&())
}

fn secret_env(name: &str, secret: &SecretKeyRef) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.name.clone(),
                key: secret.key.clone(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn plain(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

fn http_probe(path: &str) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String("admin".to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(5),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

/// Whether `component` talks to Kafka: the API reads Postgres only.
pub(crate) fn reads_kafka(component: Component) -> bool {
    component != Component::Api
}

/// The container of `component`, as `cardstream <component>`. It gets only the variables its
/// subcommand reads (a test in the binary checks them against its flags): one it ignores would
/// hide a misspelt setting, and a Secret it does not need is one more place to leak it from.
fn container(cs: &CardStream, component: Component) -> Container {
    let spec = &cs.spec;
    let mut env = Vec::new();
    if reads_kafka(component) {
        env.push(plain(
            "CARDSTREAM_KAFKA_BROKERS",
            spec.kafka.bootstrap_servers.clone(),
        ));
        env.push(plain("CARDSTREAM_KAFKA_TOPIC", spec.kafka.topic.clone()));
    }
    if component.serves() {
        env.push(plain("CARDSTREAM_LISTEN", format!("0.0.0.0:{HTTP_PORT}")));
    }
    env.extend([
        plain("CARDSTREAM_ADMIN_LISTEN", format!("0.0.0.0:{ADMIN_PORT}")),
        plain("CARDSTREAM_LOG_FORMAT", "json"),
        secret_env("CARDSTREAM_DATABASE_URL", &spec.database_url_secret),
    ]);
    if reads_kafka(component) && !spec.kafka.properties.is_empty() {
        env.push(env_joined(
            "CARDSTREAM_KAFKA_PROPERTIES",
            &spec.kafka.properties,
        ));
    }
    if reads_kafka(component)
        && let Some(credentials) = &spec.kafka.credentials_secret
    {
        env.push(secret_env("CARDSTREAM_KAFKA_CREDENTIALS", credentials));
    }
    let mut mounts = Vec::new();
    match component {
        Component::Gateway => {
            env.push(plain(
                "CARDSTREAM_WEBHOOK_SECRETS_FILE",
                format!("{SECRETS_DIR}/{}", spec.webhook_secrets_secret.key),
            ));
            mounts.push(VolumeMount {
                name: "webhook-secrets".to_owned(),
                mount_path: SECRETS_DIR.to_owned(),
                read_only: Some(true),
                ..VolumeMount::default()
            });
            if let Some(connect) = &spec.connect_webhook_secrets_secret {
                // Its own directory: the two Secrets may be one, with two keys.
                env.push(plain(
                    "CARDSTREAM_CONNECT_WEBHOOK_SECRETS_FILE",
                    format!("{CONNECT_SECRETS_DIR}/{}", connect.key),
                ));
                mounts.push(VolumeMount {
                    name: "connect-webhook-secrets".to_owned(),
                    mount_path: CONNECT_SECRETS_DIR.to_owned(),
                    read_only: Some(true),
                    ..VolumeMount::default()
                });
            }
            if let Some((_, key)) = policy_source(cs) {
                // Mounted as a directory (not subPath) so edits reach the running pod.
                env.push(plain(
                    "CARDSTREAM_POLICY_FILE",
                    format!("{POLICY_DIR}/{key}"),
                ));
                mounts.push(VolumeMount {
                    name: "policy".to_owned(),
                    mount_path: POLICY_DIR.to_owned(),
                    read_only: Some(true),
                    ..VolumeMount::default()
                });
            }
        }
        Component::Api => env.push(secret_env("CARDSTREAM_TOKEN_SECRET", &spec.token_secret)),
        Component::Aggregator => env.push(plain("CARDSTREAM_CONSUMER_GROUP", consumer_group(cs))),
    }
    if let (Component::Gateway | Component::Aggregator, Some(keys)) =
        (component, &spec.record_keys_secret)
    {
        env.push(secret_env("CARDSTREAM_RECORD_KEYS", keys));
    }
    // The user's variables come last; `validate` refuses any that would replace one above.
    env.extend(component.spec(cs).extra_env.iter().cloned());
    let resources = component
        .spec(cs)
        .resources
        .clone()
        .filter(|r| r.requests.is_some() || r.limits.is_some())
        .unwrap_or_else(|| default_resources(component));
    let mut ports = vec![ContainerPort {
        name: Some("admin".to_owned()),
        container_port: ADMIN_PORT,
        ..ContainerPort::default()
    }];
    if component.serves() {
        ports.push(ContainerPort {
            name: Some("http".to_owned()),
            container_port: HTTP_PORT,
            ..ContainerPort::default()
        });
    }
    Container {
        name: component.name().to_owned(),
        image: Some(spec.image.clone()),
        image_pull_policy: spec.image_pull_policy.clone(),
        args: Some(vec![component.name().to_owned()]),
        env: Some(env),
        ports: Some(ports),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        liveness_probe: Some(http_probe("/healthz")),
        readiness_probe: Some(http_probe("/readyz")),
        resources: Some(resources),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(USER),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

/// The environment variables the operator sets for `component`, which `extraEnv` may not
/// replace.
pub(crate) fn operator_env(cs: &CardStream, component: Component) -> Vec<String> {
    let extra = component.spec(cs).extra_env.len();
    let env = container(cs, component).env.unwrap_or_default();
    let own = env.len().saturating_sub(extra);
    env.into_iter().take(own).map(|e| e.name).collect()
}

fn env_joined(name: &str, values: &[String]) -> EnvVar {
    plain(name, values.join(","))
}

fn pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(USER),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

/// The Deployment of `component` with `replicas` (the aggregator's come from the autoscaler).
pub fn deployment(cs: &CardStream, component: Component, replicas: i32) -> Deployment {
    let volumes = (component == Component::Gateway).then(|| {
        let mut volumes = vec![Volume {
            name: "webhook-secrets".to_owned(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(cs.spec.webhook_secrets_secret.name.clone()),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        }];
        if let Some(connect) = &cs.spec.connect_webhook_secrets_secret {
            volumes.push(Volume {
                name: "connect-webhook-secrets".to_owned(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(connect.name.clone()),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            });
        }
        if let Some((name, _)) = policy_source(cs) {
            volumes.push(Volume {
                name: "policy".to_owned(),
                config_map: Some(ConfigMapVolumeSource {
                    name: name.clone(),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            });
        }
        volumes
    });
    let own = component.spec(cs);
    let mut annotations = BTreeMap::from([
        ("prometheus.io/scrape".to_owned(), "true".to_owned()),
        ("prometheus.io/port".to_owned(), ADMIN_PORT.to_string()),
    ]);
    // The user's may replace the scrape hints; `validate` keeps `cardstream.dev/` ones ours.
    annotations.extend(own.pod_annotations.clone());
    // The operator's labels win: the selector depends on them (`validate` refuses the clash).
    let mut pod_labels = own.pod_labels.clone();
    pod_labels.extend(object_labels(cs, Some(component)));
    let spread: Vec<TopologySpreadConstraint> = own
        .topology_spread_constraints
        .iter()
        .cloned()
        .map(|mut constraint| {
            constraint
                .label_selector
                .get_or_insert_with(|| LabelSelector {
                    match_labels: Some(labels(cs, Some(component))),
                    ..LabelSelector::default()
                });
            constraint
        })
        .collect();
    Deployment {
        metadata: meta(cs, object_name(cs, component), Some(component)),
        spec: DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(labels(cs, Some(component))),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container(cs, component)],
                    node_selector: (!own.node_selector.is_empty())
                        .then(|| own.node_selector.clone()),
                    tolerations: (!own.tolerations.is_empty()).then(|| own.tolerations.clone()),
                    affinity: own.affinity.clone(),
                    topology_spread_constraints: (!spread.is_empty()).then_some(spread),
                    priority_class_name: own.priority_class_name.clone(),
                    termination_grace_period_seconds: Some(TERMINATION_GRACE_SECONDS),
                    image_pull_secrets: (!cs.spec.image_pull_secrets.is_empty())
                        .then(|| cs.spec.image_pull_secrets.clone()),
                    volumes,
                    security_context: Some(pod_security()),
                    automount_service_account_token: Some(false),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    }
}

/// The Service of a component: `http` and `admin` in front of the gateway and the API; for the
/// aggregator, which serves no traffic, a headless one with `admin` only, so that a
/// ServiceMonitor finds every component's `/metrics` the same way.
pub fn service(cs: &CardStream, component: Component) -> Service {
    let admin = ServicePort {
        name: Some("admin".to_owned()),
        port: ADMIN_PORT,
        target_port: Some(IntOrString::String("admin".to_owned())),
        ..ServicePort::default()
    };
    let (ports, cluster_ip) = if component.serves() {
        let http = ServicePort {
            name: Some("http".to_owned()),
            port: 80,
            target_port: Some(IntOrString::String("http".to_owned())),
            ..ServicePort::default()
        };
        (vec![http, admin], None)
    } else {
        (vec![admin], Some("None".to_owned()))
    };
    Service {
        metadata: meta(cs, object_name(cs, component), Some(component)),
        spec: Some(ServiceSpec {
            selector: Some(labels(cs, Some(component))),
            ports: Some(ports),
            cluster_ip,
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// At most one pod of a component down at a time during voluntary disruptions (drains).
pub fn disruption_budget(cs: &CardStream, component: Component) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta(cs, object_name(cs, component), Some(component)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(labels(cs, Some(component))),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

/// Of the variables the operator gives the aggregator, those `cardstream migrate` reads.
const MIGRATE_ENV: [&str; 2] = ["CARDSTREAM_LOG_FORMAT", "CARDSTREAM_DATABASE_URL"];

/// `cardstream migrate` for the CardStream's image, run before its workloads move to it. It runs
/// in the aggregator's container (and with its `extraEnv`), without the Kafka settings and record
/// keys it has no use for. Named after its whole pod template, not only the image: a Job's
/// template cannot change once created, so a new operator or a new `extraEnv` for the same image
/// gets a new Job (migrating again is a no-op) instead of an apply the API server refuses until
/// the old Job expires a day later.
pub fn migration_job(cs: &CardStream) -> Job {
    let mut container = container(cs, Component::Aggregator);
    let aggregators = operator_env(cs, Component::Aggregator);
    if let Some(env) = &mut container.env {
        env.retain(|e| !aggregators.contains(&e.name) || MIGRATE_ENV.contains(&e.name.as_str()));
    }
    container.name = "migrate".to_owned();
    container.args = Some(vec!["migrate".to_owned()]);
    container.ports = None;
    container.liveness_probe = None;
    container.readiness_probe = None;
    let template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(object_labels(cs, None)),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container],
            restart_policy: Some("Never".to_owned()),
            security_context: Some(pod_security()),
            automount_service_account_token: Some(false),
            ..PodSpec::default()
        }),
    };
    // Serializing a k8s-openapi struct cannot fail; an empty text would still name a Job.
    let rendered = serde_json::to_string(&template).unwrap_or_default();
    Job {
        metadata: meta(
            cs,
            format!("{}-migrate-{}", cs.name_any(), short_hash(&rendered)),
            None,
        ),
        spec: Some(JobSpec {
            backoff_limit: Some(4),
            ttl_seconds_after_finished: Some(86_400),
            template,
            ..JobSpec::default()
        }),
        ..Job::default()
    }
}

/// The inline policy as a ConfigMap the gateway mounts (none for a ConfigMap reference).
pub fn policy_config_map(cs: &CardStream) -> Option<ConfigMap> {
    let inline = cs.spec.policy.as_ref()?.inline.clone()?;
    Some(ConfigMap {
        metadata: meta(cs, format!("{}-policy", cs.name_any()), None),
        data: Some(BTreeMap::from([("policy.toml".to_owned(), inline)])),
        ..ConfigMap::default()
    })
}

/// 8 hex digits of FNV-1a: stable across builds and platforms, unlike `DefaultHasher`.
fn short_hash(text: &str) -> String {
    let hash = text.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{hash:08x}")
}

/// The ServiceMonitor (Prometheus Operator, `monitoring.coreos.com/v1`) scraping every
/// component's `admin` port. Built as JSON: the operator creates it only when that CRD exists,
/// and there is no Rust type for it in k8s-openapi.
pub fn service_monitor(cs: &CardStream) -> serde_json::Value {
    let selector = labels(cs, None);
    serde_json::json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": meta(cs, cs.name_any(), None),
        "spec": {
            "selector": { "matchLabels": selector },
            "endpoints": [{ "port": "admin", "path": "/metrics", "interval": "30s" }],
        },
    })
}
