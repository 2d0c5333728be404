//! The operator sets each component's configuration through environment variables; a variable
//! that no flag of the subcommand reads is silently ignored (clap looks up only the ones it
//! declares), so a renamed flag or a typo would leave a setting at its default without a word.
//! This checks every variable the operator puts on a container against the `env` names clap
//! declares for the subcommand that container runs.

use std::collections::BTreeSet;

use clap::CommandFactory;

use crate::cli::Cli;

/// Variables the operator may set that no clap flag declares, with who reads them. Empty today:
/// everything the operator sets is a flag's variable. A new entry needs its reader named here
/// (e.g. `RUST_LOG`, read by the tracing subscriber, or the downward API's `POD_NAME` if a
/// component read it by hand).
const NOT_CLAP: &[(&str, &str)] = &[];

/// The `env` names clap declares for `subcommand`, global flags included.
fn clap_env(subcommand: &str) -> BTreeSet<String> {
    let mut root = Cli::command();
    // Building propagates global flags (`--log-format`) into the subcommands.
    root.build();
    let Some(sub) = root.find_subcommand(subcommand) else {
        panic!("the operator runs `cardstream {subcommand}`, which is no subcommand");
    };
    sub.get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .collect()
}

/// The sample CardStream with every optional part that adds a variable set.
fn everything_set() -> cardstream_operator::CardStream {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../k8s/sample-cardstream.yaml"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut cs: cardstream_operator::CardStream =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    cs.metadata.uid = Some("0b6c1d9e-0000-4000-8000-000000000001".into());
    let secret = |key: &str| cardstream_operator::SecretKeyRef {
        name: "cardstream".into(),
        key: key.into(),
    };
    cs.spec.kafka.properties = vec!["security.protocol=SASL_SSL".into()];
    cs.spec.kafka.credentials_secret = Some(secret("kafka-credentials"));
    cs.spec.record_keys_secret = Some(secret("record-keys"));
    cs.spec.connect_webhook_secrets_secret = Some(secret("connect-webhook-secrets"));
    assert!(cs.spec.policy.is_some(), "the sample has a policy");
    // The user's own variables are theirs to get right; only the operator's are checked.
    for component in cardstream_operator::Component::ALL {
        assert!(component.spec(&cs).extra_env.is_empty());
    }
    cs
}

#[test]
fn every_variable_the_operator_sets_is_one_the_subcommand_reads() {
    let cs = everything_set();
    // (what runs it, the subcommand, the variables set on its container)
    let mut containers: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut add = |owner: String, pod: Option<k8s_openapi::api::core::v1::PodSpec>| {
        for container in pod.unwrap_or_default().containers {
            let env = container.env.unwrap_or_default();
            let args = container.args.unwrap_or_default().join(" ");
            containers.push((
                owner.clone(),
                args,
                env.into_iter().map(|e| e.name).collect(),
            ));
        }
    };
    for component in cardstream_operator::Component::ALL {
        let deployment = cardstream_operator::deployment(&cs, component, 1);
        add(
            format!("the {} Deployment", component.name()),
            deployment.spec.template.spec,
        );
    }
    let job = cardstream_operator::migration_job(&cs);
    add(
        "the migration Job".into(),
        job.spec.and_then(|s| s.template.spec),
    );
    assert!(containers.len() >= 4, "{containers:?}");

    let allowed: BTreeSet<&str> = NOT_CLAP.iter().map(|(name, _)| *name).collect();
    let mut unread = Vec::new();
    let mut set_anywhere = BTreeSet::new();
    for (owner, subcommand, env) in &containers {
        let declared = clap_env(subcommand);
        assert!(!env.is_empty(), "{owner} sets no variables");
        for name in env {
            set_anywhere.insert(name.clone());
            if !declared.contains(name) && !allowed.contains(name.as_str()) {
                unread.push(format!(
                    "{owner} sets {name}, which `cardstream {subcommand}` does not read"
                ));
            }
        }
    }
    assert!(unread.is_empty(), "{}", unread.join("\n"));
    // An allow-list entry the operator no longer sets is stale.
    for (name, _) in NOT_CLAP {
        assert!(
            set_anywhere.contains(*name),
            "NOT_CLAP lists {name}, which the operator does not set"
        );
    }
}
