//! The reconciler against a mocked API server (named scenarios: install, migration done,
//! update, upgrade, deletion, API error) and, for its Kafka step, a real broker (SQLite storage,
//! whose offsets are exact).

#![allow(clippy::unwrap_used)]

mod fake_api;

use std::sync::Arc;
use std::time::Duration;

use cardstream_kafka::rdkafka::ClientConfig;
use cardstream_kafka::rdkafka::producer::{FutureProducer, FutureRecord};
use cardstream_kafka::{KafkaArgs, ensure_topic, partition_count};
use cardstream_operator::{CardStream, Context, OperatorMetrics, error_policy, reconcile};
use cardstream_testbed::{Broker, Storage, metric_value};
use fake_api::{Exchange, assert_quiet, serve, status};
use http::StatusCode;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

const NS: &str = "payments";
const UID: &str = "6f1c2a8e-0000-4000-8000-000000000001";
const TOPIC: &str = "stripe.events";

fn cardstream(brokers: &str, image: &str, generation: i64) -> CardStream {
    serde_json::from_value(json!({
        "apiVersion": "cardstream.dev/v1alpha1",
        "kind": "CardStream",
        "metadata": { "name": "shop", "namespace": NS, "uid": UID, "generation": generation },
        "spec": {
            "image": image,
            "kafka": { "bootstrapServers": brokers, "partitions": 4, "replicationFactor": 1 },
            "databaseUrlSecret": { "name": "shop", "key": "database-url" },
            "webhookSecretsSecret": { "name": "shop", "key": "webhook-secrets" },
            "tokenSecret": { "name": "shop", "key": "token-secret" },
            "gateway": { "replicas": 2 },
            "api": { "replicas": 2 },
            "aggregator": {
                "replicas": 1,
                "autoscaling": { "minReplicas": 1, "maxReplicas": 8, "targetLagPerReplica": 10 }
            },
            "policy": { "inline": "blocked_categories = [\"betting_casino_gambling\"]\n" }
        }
    }))
    .expect("a valid CardStream")
}

fn context(client: kube::Client) -> (Arc<Context>, prometheus::Registry) {
    let registry = prometheus::Registry::new();
    let metrics = OperatorMetrics::new(&registry).expect("metrics");
    (
        Arc::new(Context::new(client, metrics, Duration::from_secs(30))),
        registry,
    )
}

fn owned_by_the_cardstream(body: &Value) {
    let owner = &body["metadata"]["ownerReferences"][0];
    assert_eq!(owner["uid"], UID, "owner reference: {body}");
    assert_eq!(
        (owner["kind"].as_str(), owner["controller"].as_bool()),
        (Some("CardStream"), Some(true))
    );
}

/// The Secret every reconcile reads, and the objects it applies before looking at the
/// workloads.
fn applies_config_services_and_budgets() -> Vec<Exchange> {
    let mut steps = vec![
        secret_read(),
        Exchange::apply(format!("/api/v1/namespaces/{NS}/configmaps/shop-policy")).check(|b| {
            owned_by_the_cardstream(b);
            assert!(
                b["data"]["policy.toml"]
                    .as_str()
                    .unwrap()
                    .contains("betting_casino_gambling")
            );
        }),
    ];
    for component in ["gateway", "aggregator", "api"] {
        steps.push(
            Exchange::apply(format!("/api/v1/namespaces/{NS}/services/shop-{component}")).check(
                move |b| {
                    owned_by_the_cardstream(b);
                    assert_eq!(
                        b["spec"]["selector"]["app.kubernetes.io/component"],
                        component
                    );
                },
            ),
        );
        steps.push(
            Exchange::apply(format!(
                "/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/shop-{component}"
            ))
            .check(owned_by_the_cardstream),
        );
    }
    steps
}

fn deployment_path(component: &str) -> String {
    format!("/apis/apps/v1/namespaces/{NS}/deployments/shop-{component}")
}

/// The reconciler reading the three Deployments: absent, or each running `image` with two
/// ready replicas.
fn deployments_read(image: Option<&str>) -> Vec<Exchange> {
    ["gateway", "aggregator", "api"]
        .into_iter()
        .map(|component| {
            let read = Exchange::get(deployment_path(component));
            match image {
                None => read.not_found(),
                Some(image) => read.returns(running(component, image, 2)),
            }
        })
        .collect()
}

/// A Deployment as the API server would hold it: running `image`, all replicas ready.
fn running(component: &str, image: &str, replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": format!("shop-{component}"), "namespace": NS },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app.kubernetes.io/component": component } },
            "template": { "spec": { "containers": [{ "name": component, "image": image }] } }
        },
        "status": { "replicas": replicas, "readyReplicas": replicas, "updatedReplicas": replicas }
    })
}

/// Answers an applied Deployment as settled: every replica it asks for ready.
fn settled(body: &Value) -> (StatusCode, Value) {
    let mut object = body.clone();
    let replicas = object["spec"]["replicas"].clone();
    object["status"] =
        json!({ "replicas": replicas, "readyReplicas": replicas, "updatedReplicas": replicas });
    (StatusCode::OK, object)
}

/// The migration Job for the CardStream's image: `cardstream migrate`, owned by the CardStream.
fn migration_job(cs: &CardStream) -> Exchange {
    let image = cs.spec.image.clone();
    Exchange::apply(job_path(&job_for(cs))).check(move |b| {
        owned_by_the_cardstream(b);
        let container = &b["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            (container["image"].as_str(), &container["args"]),
            (Some(image.as_str()), &json!(["migrate"]))
        );
    })
}

fn job_path(job: &Value) -> String {
    format!(
        "/apis/batch/v1/namespaces/{NS}/jobs/{}",
        job["metadata"]["name"].as_str().unwrap()
    )
}

const SERVICE_MONITOR_PATH: &str =
    "/apis/monitoring.coreos.com/v1/namespaces/payments/servicemonitors/shop";

/// Applying the ServiceMonitor where the prometheus-operator is not installed.
fn no_service_monitors() -> Exchange {
    Exchange::apply(SERVICE_MONITOR_PATH).reply(|_| {
        status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        )
    })
}

const SECRET_PATH: &str = "/api/v1/namespaces/payments/secrets/shop";

/// The reconciler reading the referenced Secret (once, although three keys are used).
fn secret_read() -> Exchange {
    Exchange::get(SECRET_PATH).returns(secret_at(
        "shop",
        "100",
        &[
            ("database-url", "postgres://shop:pw@db/shop"),
            ("token-secret", "token-0123456789abcdef0123456789abcdef"),
            ("webhook-secrets", "whsec_one"),
        ],
    ))
}
/// The status merge patch, answered with the CardStream holding the new status.
fn status_patch(cs: &CardStream) -> Exchange {
    let object = serde_json::to_value(cs).unwrap();
    Exchange::apply(STATUS_PATH).reply(move |patch| {
        let mut object = object;
        object["status"] = patch["status"].clone();
        (StatusCode::OK, object)
    })
}

const STATUS_PATH: &str =
    "/apis/cardstream.dev/v1alpha1/namespaces/payments/cardstreams/shop/status";

fn condition<'a>(body: &'a Value, type_: &str) -> &'a Value {
    body["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap()
}

/// The migration Job's name for `image` (from the builder, so the scenario asks for the same).
fn job_for(cs: &CardStream) -> Value {
    serde_json::to_value(cardstream_operator::migration_job(cs)).unwrap()
}

async fn produce(brokers: &str, records: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    for i in 0..records {
        let key = format!("card-{i}");
        producer
            .send(
                FutureRecord::to(TOPIC).key(&key).payload("{}"),
                Duration::from_secs(10),
            )
            .await
            .expect("produced");
    }
}

#[tokio::test]
async fn install_creates_the_topic_and_objects_then_waits_for_the_migration() {
    let broker = Broker::start(Storage::Sqlite).await;
    let cs = cardstream(&broker.brokers(), "cardstream:1", 1);
    let (client, handle) = fake_api::client();
    let mut steps = applies_config_services_and_budgets();
    steps.extend(deployments_read(None));
    steps.push(migration_job(&cs)); // echoed without status: the Job is running
    steps.push(no_service_monitors()); // no Prometheus Operator: the API server has no such resource
    steps.push(status_patch(&cs).check(|b| {
        let ready = condition(b, "Ready");
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("False"), Some("Migrating"))
        );
        assert_eq!(condition(b, "Progressing")["status"], "True");
        assert_eq!(condition(b, "Degraded")["status"], "False");
        assert_eq!(b["status"]["consumerLag"], 0);
        assert_eq!(b["status"]["observedGeneration"], 1);
    }));
    let server = serve(handle, "install", steps);
    let (ctx, _) = context(client);

    let action = reconcile(Arc::new(cs), ctx).await.expect("reconciled");

    assert_eq!(
        action,
        Action::requeue(Duration::from_secs(5)),
        "a running migration is checked again soon"
    );
    assert_quiet(
        server.await.unwrap(),
        "install: no Deployment before the migration",
    )
    .await;
    let kafka = KafkaArgs::new(broker.brokers(), TOPIC);
    assert_eq!(partition_count(&kafka, TOPIC).await.unwrap(), 4);
    assert_eq!(
        partition_count(&kafka, "stripe.events.dlq").await.unwrap(),
        3
    );
}

#[tokio::test]
async fn once_migrated_the_workloads_roll_out_with_the_aggregators_the_lag_calls_for() {
    let broker = Broker::start(Storage::Sqlite).await;
    // A topic made earlier, with 25 records nobody has read.
    let kafka = KafkaArgs::new(broker.brokers(), TOPIC);
    ensure_topic(&kafka, TOPIC, 4, 1).await.unwrap();
    produce(&broker.brokers(), 25).await;

    let cs = cardstream(&broker.brokers(), "cardstream:1", 1);
    let (client, handle) = fake_api::client();
    let mut steps = applies_config_services_and_budgets();
    steps.extend(deployments_read(None));
    steps.push(migration_job(&cs).reply(|b| {
        let mut job = b.clone();
        job["status"] = json!({ "succeeded": 1 });
        (StatusCode::OK, job)
    }));
    for (component, replicas) in [("gateway", 2), ("aggregator", 3), ("api", 2)] {
        steps.push(
            Exchange::apply(deployment_path(component))
                .check(move |b| {
                    owned_by_the_cardstream(b);
                    // 25 records of lag at 10 per replica: 3 aggregators.
                    assert_eq!(b["spec"]["replicas"], replicas, "{component}");
                    let container = &b["spec"]["template"]["spec"]["containers"][0];
                    assert_eq!(container["args"], json!([component]));
                    assert_eq!(container["securityContext"]["runAsNonRoot"], true);
                    let digest = &b["spec"]["template"]["metadata"]["annotations"]
                        ["cardstream.dev/secrets-digest"];
                    assert_eq!(digest.as_str().map(str::len), Some(16), "{component}: {b}");
                })
                .reply(settled),
        );
    }
    steps.push(Exchange::apply(SERVICE_MONITOR_PATH).check(|b| {
        owned_by_the_cardstream(b);
        assert_eq!(b["spec"]["endpoints"][0]["port"], "admin");
        assert_eq!(
            b["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"],
            "shop"
        );
    }));
    steps.push(status_patch(&cs).check(|b| {
        let ready = condition(b, "Ready");
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("True"), Some("AllReplicasReady"))
        );
        assert_eq!(
            b["status"]["consumerLag"], 25,
            "measured on the real broker"
        );
        assert_eq!(b["status"]["aggregatorReplicas"], 3);
        assert_eq!(b["status"]["aggregatorReadyReplicas"], 3);
    }));
    let server = serve(handle, "migrated", steps);
    let (ctx, registry) = context(client);

    let action = reconcile(Arc::new(cs), ctx).await.expect("reconciled");

    assert_eq!(action, Action::requeue(Duration::from_secs(30)));
    assert_quiet(server.await.unwrap(), "migrated").await;
    let labels = [("namespace", NS), ("name", "shop")];
    assert_eq!(
        metric_value(&registry, "cardstream_consumer_group_lag_records", &labels),
        25.0
    );
    assert_eq!(
        metric_value(
            &registry,
            "cardstream_reconciles_total",
            &[("result", "ok")]
        ),
        1.0
    );
}

/// Workloads already run the spec's image: no Job; the new replica count is applied.
#[tokio::test]
async fn an_update_on_the_same_image_applies_the_workloads_without_migrating() {
    let broker = Broker::start(Storage::Sqlite).await;
    let mut cs = cardstream(&broker.brokers(), "cardstream:1", 7);
    cs.spec.gateway.replicas = 5;
    cs.spec.aggregator.autoscaling = None;
    let (client, handle) = fake_api::client();
    let mut steps = applies_config_services_and_budgets();
    steps.extend(deployments_read(Some("cardstream:1")));
    for (component, replicas) in [("gateway", 5), ("aggregator", 1), ("api", 2)] {
        steps.push(
            Exchange::apply(deployment_path(component))
                .check(move |b| assert_eq!(b["spec"]["replicas"], replicas, "{component}"))
                .reply(settled),
        );
    }
    steps.push(no_service_monitors());
    steps.push(status_patch(&cs).check(|b| {
        assert_eq!(b["status"]["observedGeneration"], 7);
        assert_eq!(b["status"]["gatewayReadyReplicas"], 5);
        assert_eq!(condition(b, "Ready")["status"], "True");
    }));
    let server = serve(handle, "update", steps);
    let (ctx, _) = context(client);
    reconcile(Arc::new(cs), ctx).await.expect("reconciled");
    assert_quiet(server.await.unwrap(), "update").await;
}

/// A Secret named `name` at `version`, holding `data`, as the API server returns it.
fn secret_at(name: &str, version: &str, data: &[(&str, &str)]) -> Value {
    let data = data
        .iter()
        .map(|(key, value)| {
            (
                (*key).to_owned(),
                k8s_openapi::ByteString(value.as_bytes().to_vec()),
            )
        })
        .collect();
    serde_json::to_value(k8s_openapi::api::core::v1::Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            uid: Some(format!("uid-of-{name}")),
            resource_version: Some(version.into()),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    })
    .unwrap()
}

/// The digest each component's pod template carries after a reconcile of a CardStream whose
/// database URL is in Secret `shop` (at `shop_version`), token secret in `shop-api` (at
/// `api_version`) and webhook secrets in `shop-stripe`, which the operator must not even read.
async fn digests_with(brokers: &str, shop_version: &str, api_version: &str) -> Vec<String> {
    let mut cs = cardstream(brokers, "cardstream:1", 7);
    cs.spec.token_secret.name = "shop-api".into();
    cs.spec.webhook_secrets_secret.name = "shop-stripe".into();
    let (client, handle) = fake_api::client();
    let digests = Arc::new(std::sync::Mutex::new(vec![String::new(); 3]));
    let mut steps = vec![
        Exchange::get(SECRET_PATH).returns(secret_at(
            "shop",
            shop_version,
            &[("database-url", "postgres://shop:pw@db/shop")],
        )),
        Exchange::get(format!("{SECRET_PATH}-api")).returns(secret_at(
            "shop-api",
            api_version,
            &[("token-secret", "token-0123456789abcdef0123456789abcdef")],
        )),
    ];
    steps.extend(applies_config_services_and_budgets().into_iter().skip(1));
    steps.extend(deployments_read(Some("cardstream:1")));
    for (i, component) in ["gateway", "aggregator", "api"].into_iter().enumerate() {
        let digests = digests.clone();
        steps.push(
            Exchange::apply(deployment_path(component))
                .check(move |b| {
                    let digest = &b["spec"]["template"]["metadata"]["annotations"]
                        ["cardstream.dev/secrets-digest"];
                    digests.lock().unwrap()[i] = digest.as_str().unwrap().to_owned();
                })
                .reply(settled),
        );
    }
    steps.push(no_service_monitors());
    steps.push(status_patch(&cs));
    let server = serve(handle, "digests", steps);
    let (ctx, _) = context(client);
    reconcile(Arc::new(cs), ctx).await.expect("reconciled");
    assert_quiet(server.await.unwrap(), "digests").await;
    digests.lock().unwrap().clone()
}

/// Environment variables never change in a running pod: a rotated Secret reaches the pods only
/// when their template changes. Each component's template carries a digest of the versions of
/// the Secrets it reads from its environment (not of their values, which anyone who can read
/// Deployments could then guess at), so a change rolls the components that read that Secret,
/// and only those. The gateway's webhook secrets are a mounted file it reloads by itself: the
/// operator never reads them.
#[tokio::test]
async fn a_changed_secret_rolls_exactly_the_pods_that_read_it() {
    let broker = Broker::start(Storage::Sqlite).await;
    let brokers = broker.brokers();
    let before = digests_with(&brokers, "100", "200").await;
    assert_eq!(
        digests_with(&brokers, "100", "200").await,
        before,
        "the same Secrets must give the same digests, or every resync would roll"
    );
    let token_rotated = digests_with(&brokers, "100", "201").await;
    assert_eq!(
        [0, 1, 2].map(|i| token_rotated[i] == before[i]),
        [true, true, false],
        "a new token secret rolls the API only: {before:?} -> {token_rotated:?}"
    );
    let database_rotated = digests_with(&brokers, "101", "200").await;
    assert_eq!(
        [0, 1, 2].map(|i| database_rotated[i] == before[i]),
        [false, false, false],
        "a new database URL rolls every component: {before:?} -> {database_rotated:?}"
    );
}

/// A new image: the migration Job for it runs first; the Deployments keep the old image until
/// it has succeeded.
#[tokio::test]
async fn an_upgrade_migrates_before_any_workload_moves() {
    let broker = Broker::start(Storage::Sqlite).await;
    let cs = cardstream(&broker.brokers(), "cardstream:2", 8);
    let (client, handle) = fake_api::client();
    let mut steps = applies_config_services_and_budgets();
    steps.extend(deployments_read(Some("cardstream:1")));
    steps.push(migration_job(&cs));
    steps.push(no_service_monitors());
    steps.push(status_patch(&cs).check(|b| {
        assert_eq!(condition(b, "Progressing")["reason"], "Migrating");
        assert_eq!(
            b["status"]["gatewayReadyReplicas"], 2,
            "the old version still serves"
        );
    }));
    let server = serve(handle, "upgrade", steps);
    let (ctx, _) = context(client);
    let action = reconcile(Arc::new(cs), ctx).await.expect("reconciled");
    assert_eq!(action, Action::requeue(Duration::from_secs(5)));
    assert_quiet(
        server.await.unwrap(),
        "upgrade: no Deployment patched mid-migration",
    )
    .await;
}

/// Deletion: owner references make Kubernetes delete the owned objects; the operator writes
/// nothing (the Kafka topic is data and stays).
#[tokio::test]
async fn deletion_makes_no_requests() {
    let mut cs = cardstream("127.0.0.1:1", "cardstream:1", 3);
    cs.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    let (client, handle) = fake_api::client();
    let (ctx, _) = context(client);
    let action = reconcile(Arc::new(cs), ctx).await.expect("reconciled");
    assert_eq!(action, Action::await_change());
    assert_quiet(handle, "deletion").await;
}

/// The API server refuses (403): the reconcile stops at that request, fails with the API's
/// reason, counts it, and is retried later.
#[tokio::test]
async fn an_api_server_error_stops_the_reconcile_and_is_counted() {
    let broker = Broker::start(Storage::Sqlite).await;
    let cs = Arc::new(cardstream(&broker.brokers(), "cardstream:1", 1));
    let (client, handle) = fake_api::client();
    let steps = vec![
        secret_read(),
        Exchange::apply(format!("/api/v1/namespaces/{NS}/configmaps/shop-policy")).reply(|_| {
            status(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "configmaps is forbidden: User cannot patch",
            )
        }),
    ];
    let server = serve(handle, "forbidden", steps);
    let (ctx, registry) = context(client);

    let error = reconcile(cs.clone(), ctx.clone())
        .await
        .expect_err("the reconcile fails");

    assert!(error.to_string().contains("forbidden"), "{error}");
    assert_eq!(error.reason(), "kubernetes");
    assert_eq!(
        error_policy(cs, &error, ctx),
        Action::requeue(Duration::from_secs(15))
    );
    assert_quiet(server.await.unwrap(), "forbidden").await;
    assert_eq!(
        metric_value(
            &registry,
            "cardstream_reconcile_failures_total",
            &[("reason", "kubernetes")]
        ),
        1.0
    );
    // What the operator's /metrics serves from this registry passes Prometheus' own linter.
    let mut exposition = String::new();
    prometheus::TextEncoder::new()
        .encode_utf8(&registry.gather(), &mut exposition)
        .unwrap();
    assert!(
        exposition.contains("cardstream_reconciles_total"),
        "{exposition}"
    );
    let problems = cardstream_testbed::promtool_check_metrics(&exposition);
    assert!(problems.is_empty(), "{problems}");
}

/// A spec the schema accepts but the operator cannot act on: refused before anything else is
/// read or written, with a status that says why; no retry until it changes.
#[tokio::test]
async fn an_invalid_spec_is_refused_with_a_status_that_says_why() {
    let mut cs = cardstream("127.0.0.1:1", "cardstream:1", 1);
    cs.spec
        .aggregator
        .autoscaling
        .as_mut()
        .unwrap()
        .min_replicas = 9;
    let error = refused(cs, None, "InvalidSpec").await;
    assert!(
        error
            .to_string()
            .contains("minReplicas 9 is above maxReplicas 8"),
        "{error}"
    );
}

/// Reconciles `cs` against an API server that expects only the status patch of a refusal with
/// `reason`; returns the error, after checking it is not retried until the spec changes.
async fn refused(
    cs: CardStream,
    allowed_images: Option<&[&str]>,
    reason: &str,
) -> cardstream_operator::Error {
    let (client, handle) = fake_api::client();
    let reason = reason.to_owned();
    let server = serve(
        handle,
        "refused",
        vec![status_patch(&cs).check(move |b| {
            for (type_, holds) in [("Ready", "False"), ("Degraded", "True")] {
                let condition = condition(b, type_);
                assert_eq!(
                    (condition["status"].as_str(), condition["reason"].as_str()),
                    (Some(holds), Some(reason.as_str())),
                    "{b}"
                );
            }
        })],
    );
    let (ctx, registry) = context(client);
    let ctx = match allowed_images {
        Some(images) => {
            let ctx = Arc::into_inner(ctx).unwrap();
            Arc::new(ctx.with_allowed_images(images.iter().map(|i| (*i).to_owned()).collect()))
        }
        None => ctx,
    };
    let cs = Arc::new(cs);
    let error = reconcile(cs.clone(), ctx.clone())
        .await
        .expect_err("refused");
    assert_eq!(error_policy(cs, &error, ctx), Action::await_change());
    assert_quiet(server.await.unwrap(), "refused: nothing but the status").await;
    assert_eq!(
        metric_value(
            &registry,
            "cardstream_reconcile_failures_total",
            &[("reason", "invalid_spec")]
        ),
        1.0
    );
    error
}

/// Whoever may write a CardStream must not choose an image of their own to run with its
/// Secrets: only the allowed repositories (the chart's own by default) run.
#[tokio::test]
async fn an_image_outside_the_allow_list_is_refused() {
    let allowed: &[&str] = &["ghcr.io/cardstream/cardstream", "registry.example.com/"];
    for image in [
        "evil.example.com/cardstream:0.1.0",
        "ghcr.io/cardstream/cardstream-debug:0.1.0",
        "ghcr.io/attacker/cardstream@sha256:0000",
    ] {
        let cs = cardstream("127.0.0.1:1", image, 1);
        let error = refused(cs, Some(allowed), "InvalidSpec").await;
        assert!(
            error.to_string().contains("not from an allowed repository"),
            "{image}: {error}"
        );
    }
}

/// Kafka credentials inline in the spec would be readable by anyone who can read CardStreams
/// and would reach the pods as plain environment values: refused, naming the key, not the value.
#[tokio::test]
async fn kafka_credentials_inline_in_the_spec_are_refused() {
    for property in [
        "sasl.password=hunter2",
        "ssl.key.pem=-----BEGIN PRIVATE KEY-----",
        "sasl.oauthbearer.client.secret=hunter2",
        "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule password=hunter2",
    ] {
        let mut cs = cardstream("127.0.0.1:1", "cardstream:1", 1);
        cs.spec.kafka.properties = vec!["security.protocol=SASL_SSL".into(), property.into()];
        let error = refused(cs, None, "InvalidSpec").await.to_string();
        let key = property.split_once('=').unwrap().0;
        assert!(
            error.contains(key) && error.contains("credentialsSecret"),
            "{error}"
        );
        assert!(
            !error.contains("hunter2") && !error.contains("BEGIN"),
            "{error}"
        );
    }
    // Not key=value at all: refused as malformed (it would otherwise reach the pods as a
    // plain environment value), without being shown.
    let mut cs = cardstream("127.0.0.1:1", "cardstream:1", 1);
    cs.spec.kafka.properties = vec![
        "security.protocol=SASL_SSL".into(),
        "sasl.password: hunter2".into(),
    ];
    let error = refused(cs, None, "InvalidSpec").await.to_string();
    assert!(error.contains("spec.kafka.properties[1]"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
}

/// A component's pod settings cannot take over what the operator relies on: the labels its
/// selectors match, its own annotations, the environment it derives from the spec.
#[tokio::test]
async fn pod_settings_that_would_clash_with_the_operators_are_refused() {
    let mut cs = cardstream("127.0.0.1:1", "cardstream:1", 1);
    cs.spec
        .gateway
        .pod_labels
        .insert("app.kubernetes.io/instance".into(), "other".into());
    let error = refused(cs, None, "InvalidSpec").await.to_string();
    assert!(
        error.contains("spec.gateway.podLabels: app.kubernetes.io/instance"),
        "{error}"
    );

    let mut cs = cardstream("127.0.0.1:1", "cardstream:1", 1);
    cs.spec
        .api
        .pod_annotations
        .insert("cardstream.dev/secrets-digest".into(), "x".into());
    let error = refused(cs, None, "InvalidSpec").await.to_string();
    assert!(
        error.contains("spec.api.podAnnotations: cardstream.dev/secrets-digest"),
        "{error}"
    );

    let mut cs = cardstream("127.0.0.1:1", "cardstream:1", 1);
    cs.spec.aggregator.component.extra_env.push(
        serde_json::from_value(
            json!({"name": "CARDSTREAM_DATABASE_URL", "value": "postgres://elsewhere"}),
        )
        .unwrap(),
    );
    let error = refused(cs, None, "InvalidSpec").await.to_string();
    assert!(
        error.contains("spec.aggregator.extraEnv: CARDSTREAM_DATABASE_URL"),
        "{error}"
    );
    assert!(!error.contains("elsewhere"), "{error}");
}

/// The Kafka step alone, on the real broker: the topic and its DLQ are created with the spec's
/// partitions, and the lag is every record the group has not committed, over all partitions.
#[tokio::test]
async fn the_kafka_step_creates_the_topics_and_measures_the_groups_lag() {
    let broker = Broker::start(Storage::Sqlite).await;
    let cs = cardstream(&broker.brokers(), "cardstream:1", 1);
    let first = cardstream_operator::observe_kafka(&cs, None).await.unwrap();
    assert_eq!((first.partitions, first.lag), (4, 0));
    let kafka = KafkaArgs::new(broker.brokers(), TOPIC);
    assert_eq!(
        partition_count(&kafka, "stripe.events.dlq").await.unwrap(),
        3
    );

    produce(&broker.brokers(), 25).await;
    let second = cardstream_operator::observe_kafka(&cs, None).await.unwrap();
    assert_eq!((second.partitions, second.lag), (4, 25));
}

/// The broker refuses the Kafka step (tansu 0.6.0 cannot add partitions to a topic, as a
/// cluster with a restrictive ACL would refuse it): the Kubernetes objects are still applied,
/// the aggregators stay as they are, the status says Degraded with the broker's words, and the
/// reconcile fails as `kafka` so that it is retried.
#[tokio::test]
async fn a_broker_that_refuses_degrades_the_status_and_keeps_the_aggregators() {
    let broker = Broker::start(Storage::Sqlite).await;
    let kafka = KafkaArgs::new(broker.brokers(), TOPIC);
    ensure_topic(&kafka, TOPIC, 2, 1).await.unwrap(); // the spec asks for 4
    let cs = cardstream(&broker.brokers(), "cardstream:1", 4);
    let (client, handle) = fake_api::client();
    let mut steps = applies_config_services_and_budgets();
    steps.extend(deployments_read(Some("cardstream:1")));
    for (component, replicas) in [("gateway", 2), ("aggregator", 2), ("api", 2)] {
        steps.push(
            Exchange::apply(deployment_path(component))
                .check(move |b| {
                    assert_eq!(
                        b["spec"]["replicas"], replicas,
                        "{component}: unchanged without a lag"
                    )
                })
                .reply(settled),
        );
    }
    steps.push(no_service_monitors());
    steps.push(status_patch(&cs).check(|b| {
        let degraded = condition(b, "Degraded");
        assert_eq!(
            (degraded["status"].as_str(), degraded["reason"].as_str()),
            (Some("True"), Some("KafkaError"))
        );
        assert!(
            degraded["message"].as_str().unwrap().contains("partitions"),
            "{degraded}"
        );
        assert_eq!(
            condition(b, "Ready")["status"],
            "True",
            "the pods still serve"
        );
    }));
    let server = serve(handle, "kafka refuses", steps);
    let (ctx, registry) = context(client);
    let cs = Arc::new(cs);

    let error = reconcile(cs.clone(), ctx.clone())
        .await
        .expect_err("the Kafka step failed");

    assert_eq!(error.reason(), "kafka", "{error}");
    assert_eq!(
        error_policy(cs, &error, ctx),
        Action::requeue(Duration::from_secs(15))
    );
    assert_quiet(server.await.unwrap(), "kafka refuses").await;
    assert_eq!(
        metric_value(
            &registry,
            "cardstream_reconcile_failures_total",
            &[("reason", "kafka")]
        ),
        1.0
    );
}

/// A Secret the CardStream names does not exist (yet), or lacks the key: nothing is applied
/// (the pods could not start), the status says which field, Secret and key, and the reconcile
/// is retried, since creating a Secret does not change the CardStream.
#[tokio::test]
async fn a_missing_secret_is_reported_and_retried() {
    let cs = cardstream("127.0.0.1:1", "cardstream:1", 1);
    for (answer, expected) in [
        (None, r#"spec.databaseUrlSecret: Secret "shop" not found"#),
        (
            Some(
                json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "shop" }, "data": {} }),
            ),
            r#"spec.databaseUrlSecret: Secret "shop" has no key "database-url""#,
        ),
    ] {
        let (client, handle) = fake_api::client();
        let read = Exchange::get(SECRET_PATH);
        let read = match answer {
            Some(secret) => read.returns(secret),
            None => read.not_found(),
        };
        let server = serve(
            handle,
            "missing secret",
            vec![
                read,
                status_patch(&cs).check(move |b| {
                    let degraded = condition(b, "Degraded");
                    assert_eq!(degraded["reason"], "SecretUnavailable", "{b}");
                    assert!(
                        degraded["message"].as_str().unwrap().contains(expected),
                        "{b}"
                    );
                }),
            ],
        );
        let (ctx, _) = context(client);
        let cs = Arc::new(cs.clone());
        let error = reconcile(cs.clone(), ctx.clone())
            .await
            .expect_err("no Secret");
        assert_eq!(error.reason(), "secret");
        assert_eq!(
            error_policy(cs, &error, ctx),
            Action::requeue(Duration::from_secs(15))
        );
        assert_quiet(server.await.unwrap(), "missing secret: nothing applied").await;
    }
}
