//! The committed Kubernetes files agree with the code: `k8s/crd.yaml` is what `cardstream crd`
//! prints, and the sample CardStream parses as the type the operator reads.

#![allow(clippy::unwrap_used)]

use cardstream_operator::{CardStream, crd_yaml};

fn repo_file(path: &str) -> String {
    let full = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

#[test]
fn the_committed_crd_is_what_the_code_generates() {
    let generated = crd_yaml().unwrap();
    assert!(
        repo_file("k8s/crd.yaml") == generated,
        "k8s/crd.yaml drifted from the CardStream type: run `cardstream crd > k8s/crd.yaml`"
    );
}

#[test]
fn the_sample_cardstream_parses_with_defaults_filled_in() {
    let sample: CardStream =
        serde_yaml::from_str(&repo_file("k8s/sample-cardstream.yaml")).unwrap();
    assert_eq!(sample.metadata.name.as_deref(), Some("cardstream"));
    assert_eq!(sample.spec.kafka.topic, "stripe.events");
    assert_eq!(sample.spec.kafka.partitions, 8);
    let autoscaling = sample.spec.aggregator.autoscaling.unwrap();
    assert!(autoscaling.min_replicas <= autoscaling.max_replicas);
    assert_eq!(sample.spec.gateway.replicas, 2);
    let policy = sample.spec.policy.unwrap().inline.unwrap();
    assert!(policy.contains("betting_casino_gambling"), "{policy}");
}

/// Every document of `k8s/operator.yaml`, each parsed as the Kubernetes type its kind names
/// (a value of the wrong type or a missing required field fails here; unknown field names do
/// not, k8s-openapi ignores them); no wildcard in the rules, and Secrets read by name only.
#[test]
fn the_operator_manifests_are_valid_objects_without_wildcards() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::rbac::v1::Role;
    use serde::Deserialize;

    let text = repo_file("k8s/operator.yaml");
    let mut kinds = Vec::new();
    let mut rules = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value = serde_yaml::Value::deserialize(document).unwrap();
        let kind = value["kind"].as_str().unwrap().to_owned();
        let strict = |v: serde_yaml::Value| serde_json::to_value(v).unwrap();
        match kind.as_str() {
            "ClusterRole" | "ClusterRoleBinding" => {
                panic!("k8s/operator.yaml is namespaced: no {kind}")
            }
            "Role" => {
                let role: Role = serde_json::from_value(strict(value)).unwrap();
                rules.extend(role.rules.unwrap());
            }
            "Deployment" => {
                let d: Deployment = serde_json::from_value(strict(value)).unwrap();
                let pod = d.spec.template.spec.unwrap();
                assert_eq!(
                    pod.service_account_name.as_deref(),
                    Some("cardstream-operator")
                );
                assert_eq!(
                    pod.containers[0].args.clone().unwrap(),
                    vec!["operator".to_owned()]
                );
                assert_eq!(pod.security_context.unwrap().run_as_non_root, Some(true));
            }
            _ => {}
        }
        kinds.push(kind);
    }
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "Role",
            "RoleBinding",
            "Deployment",
            "PodDisruptionBudget"
        ]
    );
    // That the rules grant what the operator requests, and nothing more: rbac.rs.
    for rule in &rules {
        assert!(
            !rule.verbs.iter().any(|v| v == "*"),
            "a wildcard verb: {rule:?}"
        );
        assert!(
            !rule.resources.clone().unwrap().iter().any(|r| r == "*"),
            "a wildcard resource"
        );
        if rule
            .resources
            .clone()
            .unwrap()
            .iter()
            .any(|r| r == "secrets")
        {
            // Reads (never lists or watches) the Secrets its CardStream references, by name.
            assert_eq!(rule.verbs, ["get"], "{rule:?}");
            assert_eq!(
                rule.resource_names.as_deref(),
                Some(&["cardstream".to_owned()][..]),
                "{rule:?}"
            );
        }
    }
}
