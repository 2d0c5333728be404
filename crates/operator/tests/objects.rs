//! What the reconciler applies, built from the sample CardStream and checked without an API
//! server: names, labels and selectors that match, owner references, secrets by reference only,
//! probes, a non-root and read-only container, and the migration Job.

#![allow(clippy::unwrap_used)]

use cardstream_operator::{
    CardStream, Component, deployment, disruption_budget, labels, migration_job, policy_config_map,
    service,
};

fn sample() -> CardStream {
    let text = std::fs::read_to_string(format!(
        "{}/../../k8s/sample-cardstream.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut cs: CardStream = serde_yaml::from_str(&text).unwrap();
    cs.metadata.namespace = Some("payments".into());
    cs.metadata.uid = Some("0b6c1d9e-0000-4000-8000-000000000001".into());
    cs
}

fn env_of(
    d: &k8s_openapi::api::apps::v1::Deployment,
) -> Vec<(String, Option<String>, Option<String>)> {
    let pod = d.spec.template.spec.as_ref().unwrap();
    pod.containers[0]
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| {
            let secret = e
                .value_from
                .and_then(|v| v.secret_key_ref)
                .map(|s| format!("{}/{}", s.name, s.key));
            (e.name, e.value, secret)
        })
        .collect()
}

/// The labels of a Deployment's pod template.
fn pod_labels(
    d: &k8s_openapi::api::apps::v1::Deployment,
) -> std::collections::BTreeMap<String, String> {
    d.spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap()
}

#[test]
fn each_workload_runs_its_subcommand_with_matching_selectors_and_an_owner() {
    let cs = sample();
    for component in Component::ALL {
        let d = deployment(&cs, component, 3);
        let name = format!("cardstream-{}", component.name());
        assert_eq!(d.metadata.name.as_deref(), Some(name.as_str()));
        assert_eq!(d.metadata.namespace.as_deref(), Some("payments"));
        let owner = &d.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("CardStream", Some(true))
        );
        assert_eq!(d.spec.replicas, Some(3));
        let selector = d.spec.selector.match_labels.clone().unwrap();
        let template = pod_labels(&d);
        assert!(selector.iter().all(|(k, v)| template.get(k) == Some(v)));
        assert_eq!(selector, labels(&cs, Some(component)));
        let pod = d.spec.template.spec.as_ref().unwrap();
        // Longer than the drain (5 s) and the shutdown timeout (10 s) the binary defaults to,
        // with the second the binary may take past them.
        let (drain, timeout, exit) = (5, 10, 1);
        assert!(pod.termination_grace_period_seconds.unwrap() >= drain + timeout + exit);
        let container = &pod.containers[0];
        assert_eq!(
            container.args.clone().unwrap(),
            vec![component.name().to_owned()]
        );
        assert_eq!(
            container.image.as_deref(),
            Some("ghcr.io/cardstream/cardstream:0.1.0")
        );
        let probe = container
            .readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap();
        assert_eq!(probe.path.as_deref(), Some("/readyz"));
        let security = container.security_context.as_ref().unwrap();
        assert_eq!(security.run_as_non_root, Some(true));
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.allow_privilege_escalation, Some(false));
    }
}

#[test]
fn secrets_are_referenced_never_copied() {
    let cs = sample();
    let gateway = env_of(&deployment(&cs, Component::Gateway, 2));
    let api = env_of(&deployment(&cs, Component::Api, 2));
    let find = |env: &[(String, Option<String>, Option<String>)], name: &str| {
        env.iter().find(|(n, _, _)| n == name).cloned()
    };
    assert_eq!(
        find(&gateway, "CARDSTREAM_DATABASE_URL")
            .unwrap()
            .2
            .as_deref(),
        Some("cardstream/database-url")
    );
    assert_eq!(
        find(&gateway, "CARDSTREAM_WEBHOOK_SECRETS_FILE")
            .unwrap()
            .1
            .as_deref(),
        Some("/var/run/cardstream/webhook-secrets/webhook-secrets")
    );
    assert_eq!(
        find(&api, "CARDSTREAM_TOKEN_SECRET").unwrap().2.as_deref(),
        Some("cardstream/token-secret")
    );
    // Only the API holds the token secret; only the gateway the webhook secrets.
    assert!(find(&gateway, "CARDSTREAM_TOKEN_SECRET").is_none());
    assert!(find(&api, "CARDSTREAM_WEBHOOK_SECRETS_FILE").is_none());
    // The inline policy reaches the gateway through its ConfigMap.
    assert_eq!(
        find(&gateway, "CARDSTREAM_POLICY_FILE")
            .unwrap()
            .1
            .as_deref(),
        Some("/etc/cardstream/policy/policy.toml")
    );
    let config = policy_config_map(&cs).unwrap();
    assert!(config.data.unwrap()["policy.toml"].contains("betting_casino_gambling"));
}

#[test]
fn services_budgets_and_the_migration_job() {
    let cs = sample();
    for component in [Component::Gateway, Component::Api] {
        let s = service(&cs, component);
        let spec = s.spec.unwrap();
        assert_eq!(spec.selector.unwrap(), labels(&cs, Some(component)));
        assert_eq!(spec.ports.unwrap()[0].port, 80);
    }
    let pdb = disruption_budget(&cs, Component::Aggregator).spec.unwrap();
    assert_eq!(
        pdb.max_unavailable,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
    );
    let job = migration_job(&cs);
    let name = job.metadata.name.clone().unwrap();
    assert!(name.starts_with("cardstream-migrate-"), "{name}");
    // The same image gives the same Job (it migrates once); another image another Job.
    assert_eq!(migration_job(&cs).metadata.name, job.metadata.name);
    let mut next = cs.clone();
    next.spec.image = "ghcr.io/cardstream/cardstream:0.2.0".into();
    assert_ne!(migration_job(&next).metadata.name, job.metadata.name);
    // A Job's pod template is immutable: a template that changes for the same image (here its
    // extraEnv) must get a Job of its own, never an apply over the finished one.
    let mut extra = cs.clone();
    extra.spec.aggregator.component.extra_env = vec![k8s_openapi::api::core::v1::EnvVar {
        name: "TZ".into(),
        value: Some("UTC".into()),
        ..Default::default()
    }];
    assert_ne!(migration_job(&extra).metadata.name, job.metadata.name);
    let pod = job.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(
        pod.containers[0].args.clone().unwrap(),
        vec!["migrate".to_owned()]
    );
}

#[test]
fn record_keys_reach_the_gateway_and_the_aggregator_from_their_secret() {
    let cs = sample();
    for (component, expected) in [
        (Component::Gateway, Some("cardstream/record-keys")),
        (Component::Aggregator, Some("cardstream/record-keys")),
        (Component::Api, None),
    ] {
        let env = env_of(&deployment(&cs, component, 1));
        let keys = env.iter().find(|(n, _, _)| n == "CARDSTREAM_RECORD_KEYS");
        assert_eq!(
            keys.and_then(|(_, _, secret)| secret.as_deref()),
            expected,
            "{component:?}"
        );
        // From the Secret only, never a plain value.
        assert!(keys.is_none_or(|(_, value, _)| value.is_none()));
    }
}

/// A Stripe Connect endpoint's secrets are a second mounted file, in a directory of their own,
/// for the gateway only; without `connectWebhookSecretsSecret` there is none.
#[test]
fn connect_webhook_secrets_are_a_second_mounted_file_of_the_gateway() {
    let mut cs = sample();
    let connect_file = |cs: &CardStream, component| {
        env_of(&deployment(cs, component, 1))
            .into_iter()
            .find(|(n, _, _)| n == "CARDSTREAM_CONNECT_WEBHOOK_SECRETS_FILE")
    };
    assert!(connect_file(&cs, Component::Gateway).is_none());
    cs.spec.connect_webhook_secrets_secret = Some(cardstream_operator::SecretKeyRef {
        name: "stripe-connect".into(),
        key: "whsec".into(),
    });
    let (_, path, secret) = connect_file(&cs, Component::Gateway).unwrap();
    assert_eq!(
        path.as_deref(),
        Some("/var/run/cardstream/connect-webhook-secrets/whsec")
    );
    assert!(
        secret.is_none(),
        "a file, not a variable the kubelet never updates"
    );
    for component in [Component::Api, Component::Aggregator] {
        assert!(connect_file(&cs, component).is_none(), "{component:?}");
    }
    let pod = deployment(&cs, Component::Gateway, 1)
        .spec
        .template
        .spec
        .unwrap();
    let volume = pod
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == "connect-webhook-secrets")
        .unwrap();
    assert_eq!(
        volume.secret.unwrap().secret_name.as_deref(),
        Some("stripe-connect")
    );
    let mount = pod.containers[0]
        .volume_mounts
        .clone()
        .unwrap()
        .into_iter()
        .find(|m| m.name == "connect-webhook-secrets")
        .unwrap();
    assert_eq!(
        mount.mount_path,
        "/var/run/cardstream/connect-webhook-secrets"
    );
    assert_eq!(mount.read_only, Some(true));
}

#[test]
fn components_get_default_resources_unless_given_and_the_pull_secrets() {
    let mut cs = sample();
    for component in Component::ALL {
        let d = deployment(&cs, component, 1);
        let pod = d.spec.template.spec.as_ref().unwrap();
        let resources = pod.containers[0].resources.clone().unwrap();
        let requests = resources.requests.unwrap();
        // Requests for both: never BestEffort. A memory limit; no CPU limit (throttling).
        assert!(
            requests.contains_key("cpu") && requests.contains_key("memory"),
            "{component:?}"
        );
        let limits = resources.limits.unwrap();
        assert!(
            limits.contains_key("memory") && !limits.contains_key("cpu"),
            "{component:?}"
        );
        assert!(pod.image_pull_secrets.is_none());
    }

    cs.spec.image_pull_secrets = vec![k8s_openapi::api::core::v1::LocalObjectReference {
        name: "registry".into(),
    }];
    let given = k8s_openapi::api::core::v1::ResourceRequirements {
        limits: Some(std::collections::BTreeMap::from([(
            "memory".to_owned(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("2Gi".into()),
        )])),
        ..Default::default()
    };
    cs.spec.aggregator.component.resources = Some(given.clone());
    let d = deployment(&cs, Component::Aggregator, 1);
    let pod = d.spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.containers[0].resources, Some(given));
    assert_eq!(
        pod.image_pull_secrets.as_ref().unwrap()[0].name,
        "registry".to_owned()
    );
}

#[test]
fn kafka_credentials_reach_the_kafka_clients_from_their_secret_only() {
    let mut cs = sample();
    cs.spec.kafka.credentials_secret = Some(cardstream_operator::SecretKeyRef {
        name: "kafka-client".into(),
        key: "properties".into(),
    });
    for component in Component::ALL {
        let env = env_of(&deployment(&cs, component, 1));
        let credentials: Vec<_> = env
            .iter()
            .filter(|(n, _, _)| n == "CARDSTREAM_KAFKA_CREDENTIALS")
            .collect();
        let reference = (
            "CARDSTREAM_KAFKA_CREDENTIALS".to_owned(),
            None,
            Some("kafka-client/properties".to_owned()),
        );
        // The API reads Postgres only: no Kafka Secret on its pods.
        let expected = match component {
            Component::Api => vec![],
            _ => vec![&reference],
        };
        assert_eq!(credentials, expected, "{component:?}");
    }
    // Nor on the migration's, which reads the database URL alone.
    let job = migration_job(&cs);
    let pod = job.spec.unwrap().template.spec.unwrap();
    let names: Vec<String> = pod.containers[0]
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["CARDSTREAM_LOG_FORMAT", "CARDSTREAM_DATABASE_URL"]);
}

/// The recommended labels: every object says what it is part of and which version it runs;
/// selectors (immutable on a Deployment) say neither, so an upgrade can change the version.
#[test]
fn objects_carry_version_and_part_of_but_selectors_do_not() {
    let mut cs = sample();
    for component in Component::ALL {
        let d = deployment(&cs, component, 1);
        for object_labels in [d.metadata.labels.clone().unwrap(), pod_labels(&d)] {
            assert_eq!(
                object_labels
                    .get("app.kubernetes.io/version")
                    .map(String::as_str),
                Some("0.1.0"),
                "{component:?}"
            );
            assert_eq!(
                object_labels
                    .get("app.kubernetes.io/part-of")
                    .map(String::as_str),
                Some("cardstream")
            );
        }
        let selector = d.spec.selector.match_labels.clone().unwrap();
        assert!(
            !selector.contains_key("app.kubernetes.io/version"),
            "{selector:?}"
        );
        let service = service(&cs, component);
        assert!(
            service
                .metadata
                .labels
                .unwrap()
                .contains_key("app.kubernetes.io/part-of")
        );
        assert_eq!(
            service.spec.unwrap().selector.unwrap(),
            labels(&cs, Some(component))
        );
    }
    // An image without a tag (or with one no label may hold) gets no version label.
    cs.spec.image = "registry.example.com:5000/cardstream@sha256:0000".into();
    let d = deployment(&cs, Component::Api, 1);
    assert!(
        !d.metadata
            .labels
            .unwrap()
            .contains_key("app.kubernetes.io/version")
    );
}

#[test]
fn a_components_scheduling_and_pod_settings_reach_its_pods_only() {
    let mut cs = sample();
    cs.spec.gateway = serde_yaml::from_str(
        r#"
replicas: 3
nodeSelector: {kubernetes.io/os: linux, pool: edge}
tolerations: [{key: dedicated, operator: Equal, value: edge, effect: NoSchedule}]
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms: [{matchExpressions: [{key: zone, operator: In, values: [a, b]}]}]
topologySpreadConstraints:
  - {maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: DoNotSchedule}
  - maxSkew: 2
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector: {matchLabels: {team: payments}}
podAnnotations: {vault.hashicorp.com/agent-inject: "true", prometheus.io/scrape: "false"}
podLabels: {team: payments}
extraEnv: [{name: RUST_LOG, value: debug}, {name: HTTPS_PROXY, value: "http://proxy:3128"}]
priorityClassName: payments-critical
"#,
    )
    .unwrap();
    let gateway = deployment(&cs, Component::Gateway, 3);
    let pod = gateway.spec.template.spec.as_ref().unwrap();
    let meta = gateway.spec.template.metadata.as_ref().unwrap();
    assert_eq!(
        pod.node_selector.as_ref().unwrap()["pool"],
        "edge",
        "nodeSelector"
    );
    assert_eq!(
        pod.tolerations.as_ref().unwrap()[0].key.as_deref(),
        Some("dedicated")
    );
    assert!(pod.affinity.as_ref().unwrap().node_affinity.is_some());
    assert_eq!(
        pod.priority_class_name.as_deref(),
        Some("payments-critical")
    );
    let spread = pod.topology_spread_constraints.as_ref().unwrap();
    // Left out, the selector is the component's own pods; given, it is kept as given.
    assert_eq!(
        spread[0].label_selector.as_ref().unwrap().match_labels,
        Some(labels(&cs, Some(Component::Gateway)))
    );
    assert_eq!(
        spread[1]
            .label_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap()["team"],
        "payments"
    );
    let annotations = meta.annotations.as_ref().unwrap();
    assert_eq!(annotations["vault.hashicorp.com/agent-inject"], "true");
    assert_eq!(annotations["prometheus.io/scrape"], "false");
    let gateway_labels = pod_labels(&gateway);
    assert_eq!(gateway_labels["team"], "payments");
    for (key, value) in labels(&cs, Some(Component::Gateway)) {
        assert_eq!(gateway_labels[&key], value, "{key}");
    }
    let env = env_of(&gateway);
    let names: Vec<&str> = env.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names[names.len() - 2..], ["RUST_LOG", "HTTPS_PROXY"]);
    assert!(names.contains(&"CARDSTREAM_DATABASE_URL"));

    // The other components keep their defaults.
    for component in [Component::Aggregator, Component::Api] {
        let d = deployment(&cs, component, 2);
        let pod = d.spec.template.spec.as_ref().unwrap();
        assert!(pod.node_selector.is_none() && pod.tolerations.is_none());
        assert!(pod.affinity.is_none() && pod.topology_spread_constraints.is_none());
        assert!(pod.priority_class_name.is_none());
        assert!(!pod_labels(&d).contains_key("team"));
        assert!(!env_of(&d).iter().any(|(n, _, _)| n == "RUST_LOG"));
    }
}
