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
