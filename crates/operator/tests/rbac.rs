//! The operator's RBAC grants what the operator asks the API server for, and nothing more. The
//! operator runs its flows against a stand-in API server that records every request as the
//! access the real one would authorize: the controller of `cardstream operator` listing and
//! watching, and reconciling the sample CardStream (install: the migration Job), the workloads
//! once the migration succeeded, a spec change, a deletion, and the leader Lease acquired,
//! renewed and released. Each access must be granted by a Role of `k8s/operator.yaml` in its
//! namespace (resourceNames included), and each (group, resource, verb) the Roles grant must
//! be one the operator asked for. The chart's `templates/rbac.yaml` renders the same rules,
//! which `charts/tests/test_chart.py` checks against `k8s/operator.yaml` (rendering the chart
//! needs Helm's template engine, which this test does not have).

#![allow(clippy::unwrap_used)]

mod fake_api;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cardstream_operator::{
    CardStream, Context, LeaderLease, OperatorMetrics, controller, error_policy, reconcile,
};
use cardstream_testbed::{Broker, Storage};
use fake_api::Access;
use fake_api::cluster::Cluster;
use futures_util::StreamExt;
use k8s_openapi::api::rbac::v1::Role;
use kube::Api;
use serde::Deserialize;
use serde_json::json;

/// Where `k8s/operator.yaml` reconciles CardStreams and keeps its Lease.
const NS: &str = "cardstream-system";
const CARDSTREAM: &str =
    "/apis/cardstream.dev/v1alpha1/namespaces/cardstream-system/cardstreams/cardstream";

/// Grants no request needs, each with the reason it is kept: (group, resource, verb, why).
/// Empty: every rule is used.
const ALLOWED_UNUSED: &[(&str, &str, &str, &str)] = &[];

fn repo_file(path: &str) -> String {
    let full = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// One rule of a Role, with the Role's namespace.
#[derive(Debug)]
struct Grant {
    namespace: String,
    groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<String>,
    names: Option<Vec<String>>,
}

impl Grant {
    fn allows(&self, access: &Access) -> bool {
        access.namespace.as_deref() == Some(self.namespace.as_str())
            && self.groups.contains(&access.group)
            && self.resources.contains(&access.resource)
            && self.verbs.contains(&access.verb)
            && self
                .names
                .as_ref()
                .is_none_or(|names| access.name.as_ref().is_some_and(|n| names.contains(n)))
    }
}

/// Every rule of the Roles in `k8s/operator.yaml` (it has no ClusterRole: a test in
/// manifests.rs says so).
fn grants() -> Vec<Grant> {
    let text = repo_file("k8s/operator.yaml");
    let mut grants = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value = serde_yaml::Value::deserialize(document).unwrap();
        if value["kind"].as_str() != Some("Role") {
            continue;
        }
        let role: Role = serde_json::from_value(serde_json::to_value(value).unwrap()).unwrap();
        let namespace = role.metadata.namespace.clone().unwrap();
        for rule in role.rules.unwrap_or_default() {
            grants.push(Grant {
                namespace: namespace.clone(),
                groups: rule.api_groups.unwrap_or_default(),
                resources: rule.resources.unwrap_or_default(),
                verbs: rule.verbs,
                names: rule.resource_names,
            });
        }
    }
    grants
}

/// Waits (up to a minute) until `done` holds.
async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn stored_cardstream(cluster: &Cluster) -> CardStream {
    serde_json::from_value(cluster.get(CARDSTREAM).unwrap()).unwrap()
}

#[tokio::test]
async fn the_operators_rbac_grants_what_it_requests_and_nothing_more() {
    let broker = Broker::start(Storage::Sqlite).await;
    let cluster = Cluster::default();
    let mut sample: CardStream =
        serde_yaml::from_str(&repo_file("k8s/sample-cardstream.yaml")).unwrap();
    sample.spec.kafka.bootstrap_servers = broker.brokers();
    sample.metadata.generation = Some(1);
    cluster.put(CARDSTREAM, serde_json::to_value(&sample).unwrap());
    let data = [
        (
            "database-url",
            "postgres://cardstream:pw@postgres/cardstream",
        ),
        ("webhook-secrets", "whsec_one"),
        ("token-secret", "token-0123456789abcdef0123456789abcdef"),
        ("record-keys", "0123456789abcdef0123456789abcdef"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), k8s_openapi::ByteString(value.into())))
    .collect();
    let secret = k8s_openapi::api::core::v1::Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("cardstream".into()),
            namespace: Some(NS.into()),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    };
    cluster.put(
        &format!("/api/v1/namespaces/{NS}/secrets/cardstream"),
        serde_json::to_value(secret).unwrap(),
    );
    let (client, handle) = fake_api::client();
    let _server = cluster.serve(handle);
    let registry = prometheus::Registry::new();
    let ctx = Arc::new(
        Context::new(
            client.clone(),
            OperatorMetrics::new(&registry).unwrap(),
            Duration::from_secs(30),
        )
        .with_allowed_images(vec!["ghcr.io/cardstream/cardstream".to_owned()]),
    );

    // The controller `cardstream operator` runs: its lists and watches, and the install (the
    // objects, the migration Job, the status).
    let running = tokio::spawn(
        controller(&client, Some(NS))
            .run(reconcile, error_policy, ctx.clone())
            .for_each(|_| async {}),
    );
    wait_for("the install's status", || {
        stored_cardstream(&cluster).status.is_some()
    })
    .await;
    running.abort();

    // The migration succeeded (as the Job controller would record it): the workloads.
    let cs = stored_cardstream(&cluster);
    let job = cardstream_operator::migration_job(&cs);
    let job_path = format!(
        "/apis/batch/v1/namespaces/{NS}/jobs/{}",
        job.metadata.name.unwrap()
    );
    cluster.edit(&job_path, |job| job["status"] = json!({ "succeeded": 1 }));
    reconcile(Arc::new(cs), ctx.clone()).await.unwrap();
    assert!(
        cluster
            .get(&format!(
                "/apis/apps/v1/namespaces/{NS}/deployments/cardstream-gateway"
            ))
            .is_some(),
        "the workloads were not created"
    );

    // A spec change.
    let mut cs = stored_cardstream(&cluster);
    cs.spec.gateway.replicas = 3;
    cs.metadata.generation = Some(2);
    reconcile(Arc::new(cs), ctx.clone()).await.unwrap();

    // A deletion (owner references make Kubernetes delete what the CardStream owns).
    let mut cs = stored_cardstream(&cluster);
    cs.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    reconcile(Arc::new(cs), ctx).await.unwrap();

    // The leader Lease: acquired (created), renewed, released.
    let lease = LeaderLease::new(
        Api::namespaced(client.clone(), NS),
        "cardstream-operator",
        "operator-a",
        Duration::from_secs(15),
    );
    let now = k8s_openapi::jiff::Timestamp::now();
    assert!(lease.try_acquire_or_renew(now).await.unwrap(), "acquire");
    assert!(lease.try_acquire_or_renew(now).await.unwrap(), "renew");
    lease.release().await;

    let requested: BTreeSet<Access> = cluster.log.accesses().into_iter().collect();
    let grants = grants();
    let refused: Vec<&Access> = requested
        .iter()
        .filter(|access| !grants.iter().any(|g| g.allows(access)))
        .collect();
    assert!(
        refused.is_empty(),
        "requested but not granted by k8s/operator.yaml: {refused:#?}"
    );
    let used: BTreeSet<(&str, &str, &str)> = requested
        .iter()
        .map(|a| (a.group.as_str(), a.resource.as_str(), a.verb.as_str()))
        .collect();
    let mut unused = Vec::new();
    for grant in &grants {
        for group in &grant.groups {
            for resource in &grant.resources {
                for verb in &grant.verbs {
                    let triple = (group.as_str(), resource.as_str(), verb.as_str());
                    let allowed = ALLOWED_UNUSED
                        .iter()
                        .any(|(g, r, v, _)| (*g, *r, *v) == triple);
                    if !used.contains(&triple) && !allowed {
                        unused.push(triple);
                    }
                }
            }
        }
    }
    assert!(
        unused.is_empty(),
        "granted by k8s/operator.yaml but never requested: {unused:?}\nrequested: {used:#?}"
    );
}
