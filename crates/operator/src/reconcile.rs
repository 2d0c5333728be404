//! One reconcile of a CardStream: the Kafka step, then every object it owns by server-side
//! apply (so the operator owns exactly the fields it sets and leaves the rest to others), the
//! migration Job before any workload moves to a new image, then the status.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Client, ResourceExt};
use serde::Serialize;

use crate::images;
use crate::kafka::{self, KafkaState};
use crate::secrets::{SECRETS_ANNOTATION, read as read_secrets};
use crate::status::{Migration, Observed, Rollout, refused, status};
use crate::{
    CardStream, Component, Error, OperatorMetrics, Recommender, deployment, disruption_budget,
    migration_job, object_name, policy_config_map, service, service_monitor,
};

/// The field manager of everything the operator applies.
pub const MANAGER: &str = "cardstream-operator";

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub metrics: OperatorMetrics,
    /// How often a settled CardStream is looked at again (the lag is measured this often).
    pub resync: Duration,
    /// Repositories (or `registry/` prefixes) a CardStream's image may come from; empty: any.
    pub allowed_images: Vec<String>,
    /// Per CardStream (namespace, name): the autoscaler's memory of recent recommendations.
    recommenders: Mutex<HashMap<(String, String), Recommender>>,
}

impl Context {
    pub fn new(client: Client, metrics: OperatorMetrics, resync: Duration) -> Self {
        Context {
            client,
            metrics,
            resync,
            allowed_images: Vec::new(),
            recommenders: Mutex::default(),
        }
    }

    /// Refuses CardStreams whose image is not from one of `allowed`.
    #[must_use]
    pub fn with_allowed_images(mut self, allowed: Vec<String>) -> Self {
        self.allowed_images = allowed;
        self
    }
}

impl std::fmt::Debug for Context {
    // `kube::Client` is not `Debug`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("resync", &self.resync)
            .finish_non_exhaustive()
    }
}

/// The controller's reconcile function: [`apply`], counted and timed.
pub async fn reconcile(cs: Arc<CardStream>, ctx: Arc<Context>) -> Result<Action, Error> {
    let timer = ctx.metrics.duration.start_timer();
    let result = apply(&cs, &ctx).await;
    timer.observe_duration();
    match &result {
        Ok(_) => ctx.metrics.reconciles.with_label_values(&["ok"]).inc(),
        Err(error) => {
            ctx.metrics.reconciles.with_label_values(&["error"]).inc();
            ctx.metrics
                .failures
                .with_label_values(&[error.reason()])
                .inc();
            tracing::warn!(cardstream = %cs.name_any(), %error, "reconcile failed");
        }
    }
    result
}

/// After a failure: try again soon, but not in a tight loop against a failing API server.
pub fn error_policy(_cs: Arc<CardStream>, error: &Error, _ctx: Arc<Context>) -> Action {
    match error {
        Error::InvalidSpec(_) => Action::await_change(),
        _ => Action::requeue(Duration::from_secs(15)),
    }
}

async fn apply(cs: &CardStream, ctx: &Context) -> Result<Action, Error> {
    let namespace = cs
        .namespace()
        .ok_or_else(|| Error::InvalidSpec("a CardStream is namespaced".to_owned()))?;
    let name = cs.name_any();
    if cs.metadata.deletion_timestamp.is_some() {
        // Owner references make Kubernetes delete what this CardStream owns; the Kafka topic is
        // data and outlives it. Only the operator's own memory of it goes.
        if let Ok(mut recommenders) = ctx.recommenders.lock() {
            recommenders.remove(&(namespace.clone(), name.clone()));
        }
        ctx.metrics.forget(&namespace, &name);
        return Ok(Action::await_change());
    }
    let client = &ctx.client;
    if let Err(error) = validate(cs, &ctx.allowed_images) {
        refuse(client, &namespace, cs, "InvalidSpec", &error).await?;
        return Err(error);
    }
    let secrets = match read_secrets(&Api::namespaced(client.clone(), &namespace), cs).await {
        Ok(secrets) => secrets,
        Err(error) => {
            // Missing, lacking the key, or not ours to read (403): the pods could not start.
            refuse(client, &namespace, cs, "SecretUnavailable", &error).await?;
            return Err(error);
        }
    };

    let kafka = kafka::observe(cs, secrets.kafka_credentials.clone()).await;
    if let Some(config_map) = policy_config_map(cs) {
        apply_object::<ConfigMap>(client, &namespace, &config_map).await?;
    }
    for component in Component::ALL {
        apply_object::<Service>(client, &namespace, &service(cs, component)).await?;
        apply_object::<PodDisruptionBudget>(client, &namespace, &disruption_budget(cs, component))
            .await?;
    }

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let mut existing = Vec::new();
    for component in Component::ALL {
        existing.push(deployments.get_opt(&object_name(cs, component)).await?);
    }
    // A migration runs only when some workload is not on the spec's image yet: on install and
    // on each upgrade, not on every resync.
    let migration = if existing.iter().all(|d| {
        d.as_ref()
            .is_some_and(|d| image_of(d) == Some(&cs.spec.image))
    }) {
        Migration::Succeeded
    } else {
        let job = apply_object::<Job>(client, &namespace, &migration_job(cs)).await?;
        migration_of(&job)
    };

    let running_aggregators = existing[1]
        .as_ref()
        .and_then(|d| d.spec.replicas)
        .or(cs.status.as_ref().and_then(|s| s.aggregator_replicas));
    let aggregators = aggregator_replicas(cs, ctx, kafka.as_ref().ok(), running_aggregators);
    let mut rollouts = existing
        .iter()
        .map(|d| d.as_ref().map(rollout_of))
        .collect::<Vec<_>>();
    if migration == Migration::Succeeded {
        for (i, component) in Component::ALL.into_iter().enumerate() {
            let replicas = match component {
                Component::Gateway => cs.spec.gateway.replicas,
                Component::Aggregator => aggregators,
                Component::Api => cs.spec.api.replicas,
            };
            let mut wanted = deployment(cs, component, replicas);
            if let Some(digest) = secrets.digest(component) {
                wanted
                    .spec
                    .template
                    .metadata
                    .get_or_insert_default()
                    .annotations
                    .get_or_insert_default()
                    .insert(SECRETS_ANNOTATION.to_owned(), digest.to_owned());
            }
            let applied = apply_object::<Deployment>(client, &namespace, &wanted).await?;
            rollouts[i] = Some(rollout_of(&applied));
        }
    }

    // Applied where the prometheus-operator is installed; elsewhere the API server answers
    // 404 for the unknown resource. (Asking for its CRD instead would take a cluster-wide
    // permission that a namespaced operator does not have.)
    let gvk = GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor");
    let monitors: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &namespace, &ApiResource::from_gvk(&gvk));
    match monitors
        .patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(service_monitor(cs)),
        )
        .await
    {
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        other => {
            other?;
        }
    }

    let observed = Observed {
        generation: cs.metadata.generation,
        migration: migration.clone(),
        rollouts: [rollouts[0], rollouts[1], rollouts[2]],
        kafka: kafka.as_ref().map(|k| k.lag).map_err(ToString::to_string),
        aggregator_replicas: Some(aggregators),
    };
    let next = status(cs.status.as_ref(), &observed, Timestamp::now());
    if cs.status.as_ref() != Some(&next) {
        let api: Api<CardStream> = Api::namespaced(client.clone(), &namespace);
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "status": next })),
        )
        .await?;
    }
    if let Ok(state) = &kafka {
        ctx.metrics
            .consumer_lag
            .with_label_values(&[&namespace, &name])
            .set(state.lag);
    }
    ctx.metrics
        .aggregator_replicas
        .with_label_values(&[&namespace, &name])
        .set(i64::from(aggregators));

    // The status says Degraded; the error makes the controller retry with backoff.
    kafka?;
    Ok(Action::requeue(match migration {
        Migration::Running => Duration::from_secs(5),
        _ => ctx.resync,
    }))
}

/// Writes why a CardStream is refused into its status (Ready and Degraded), once.
async fn refuse(
    client: &Client,
    namespace: &str,
    cs: &CardStream,
    reason: &str,
    error: &Error,
) -> Result<(), Error> {
    let next = refused(
        cs.status.as_ref(),
        cs.metadata.generation,
        reason,
        error,
        Timestamp::now(),
    );
    if cs.status.as_ref() != Some(&next) {
        let api: Api<CardStream> = Api::namespaced(client.clone(), namespace);
        api.patch_status(
            &cs.name_any(),
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "status": next })),
        )
        .await?;
    }
    Ok(())
}

/// What the schema cannot say, and what this operator will not run.
fn validate(cs: &CardStream, allowed_images: &[String]) -> Result<(), Error> {
    if !images::allowed(&cs.spec.image, allowed_images) {
        return Err(Error::InvalidSpec(format!(
            "spec.image {:?} is not from an allowed repository ({}); the operator's --allowed-images decides",
            cs.spec.image,
            allowed_images.join(", ")
        )));
    }
    for (i, property) in cs.spec.kafka.properties.iter().enumerate() {
        // Every entry must parse, or one like `sasl.password: x` would reach the pods as a
        // plain environment value. The error never shows the entry.
        let (key, _) = cardstream_kafka::parse_property(property)
            .map_err(|why| Error::InvalidSpec(format!("spec.kafka.properties[{i}]: {why}")))?;
        if cardstream_kafka::is_credential(&key) {
            return Err(Error::InvalidSpec(format!(
                "spec.kafka.properties holds {key}, a credential: put it in the Secret that spec.kafka.credentialsSecret names"
            )));
        }
    }
    if let Some(policy) = &cs.spec.policy
        && policy.inline.is_some()
        && policy.config_map.is_some()
    {
        return Err(Error::InvalidSpec(
            "spec.policy: give inline or configMap, not both".to_owned(),
        ));
    }
    for component in Component::ALL {
        validate_component(cs, component)?;
    }
    if let Some(scaling) = &cs.spec.aggregator.autoscaling
        && scaling.min_replicas > scaling.max_replicas
    {
        return Err(Error::InvalidSpec(format!(
            "spec.aggregator.autoscaling: minReplicas {} is above maxReplicas {}",
            scaling.min_replicas, scaling.max_replicas
        )));
    }
    Ok(())
}

/// What a component's pod settings may not touch: the labels its Service and Deployment select
/// by, the annotations the operator rolls pods with, the environment it configures.
fn validate_component(cs: &CardStream, component: Component) -> Result<(), Error> {
    let own = component.spec(cs);
    let at = match component {
        Component::Gateway => "spec.gateway",
        Component::Aggregator => "spec.aggregator",
        Component::Api => "spec.api",
    };
    if let Some(key) = own
        .pod_labels
        .keys()
        .find(|k| k.starts_with("app.kubernetes.io/"))
    {
        return Err(Error::InvalidSpec(format!(
            "{at}.podLabels: {key} is set by the operator (the Deployment selects its pods by it)"
        )));
    }
    if let Some(key) = own
        .pod_annotations
        .keys()
        .find(|k| k.starts_with("cardstream.dev/"))
    {
        return Err(Error::InvalidSpec(format!(
            "{at}.podAnnotations: {key} is the operator's (it rolls pods when a Secret changes)"
        )));
    }
    let reserved = crate::objects::operator_env(cs, component);
    if let Some(var) = own.extra_env.iter().find(|e| reserved.contains(&e.name)) {
        return Err(Error::InvalidSpec(format!(
            "{at}.extraEnv: {} is set by the operator from the spec; change the spec instead",
            var.name
        )));
    }
    Ok(())
}

/// Server-side apply of one namespaced object; the answer is the object as stored.
async fn apply_object<K>(client: &Client, namespace: &str, object: &K) -> Result<K, Error>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Serialize,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let name = object.meta().name.clone().unwrap_or_default();
    Ok(api
        .patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(object),
        )
        .await?)
}

fn image_of(deployment: &Deployment) -> Option<&String> {
    deployment
        .spec
        .template
        .spec
        .as_ref()?
        .containers
        .first()?
        .image
        .as_ref()
}

fn rollout_of(deployment: &Deployment) -> Rollout {
    let status = deployment.status.clone().unwrap_or_default();
    Rollout {
        desired: deployment.spec.replicas.unwrap_or(1),
        ready: status.ready_replicas.unwrap_or(0),
        updated: status.updated_replicas.unwrap_or(0),
    }
}

fn migration_of(job: &Job) -> Migration {
    let status = job.status.clone().unwrap_or_default();
    if status.succeeded.unwrap_or(0) > 0 {
        return Migration::Succeeded;
    }
    let failed = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Failed" && c.status == "True");
    match failed {
        Some(c) => Migration::Failed(format!(
            "migration Job {} failed: {}",
            job.name_any(),
            c.message.or(c.reason).unwrap_or_default()
        )),
        None => Migration::Running,
    }
}

/// The aggregator replicas to run: the spec's count, or the autoscaler's answer to the lag.
/// Without a lag measurement the count stays where it is.
fn aggregator_replicas(
    cs: &CardStream,
    ctx: &Context,
    kafka: Option<&KafkaState>,
    running: Option<i32>,
) -> i32 {
    let Some(scaling) = &cs.spec.aggregator.autoscaling else {
        return cs.spec.aggregator.component.replicas;
    };
    let running = running.unwrap_or(scaling.min_replicas);
    let Some(kafka) = kafka else {
        return running;
    };
    let key = (cs.namespace().unwrap_or_default(), cs.name_any());
    let Ok(mut recommenders) = ctx.recommenders.lock() else {
        return running;
    };
    recommenders.entry(key).or_default().recommend(
        scaling,
        Timestamp::now().as_second(),
        kafka.lag,
        running,
        kafka.partitions,
    )
}
