use cardstream_telemetry::LogFormat;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, Parser, Subcommand};

/// cardstream turns Stripe Issuing webhooks into a live card-spend dashboard.
#[derive(Debug, Parser)]
#[command(name = "cardstream", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// Log line format: text for a terminal, json for a cluster.
    #[arg(
        long,
        env = "CARDSTREAM_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub(crate) log_format: LogFormat,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Receive Stripe webhooks, verify them, decide authorizations, and write events to Kafka.
    Gateway(Box<cardstream_gateway::GatewayArgs>),
    /// Send realistic, signed Stripe Issuing traffic to a gateway.
    Simulate(Box<cardstream_simulator::SimulateArgs>),
    /// Create the events topic and its dead-letter topic if missing (grow partitions if fewer).
    Topics(cardstream_kafka::TopicArgs),
    /// Fold events from Kafka into Postgres (run as many replicas as the topic has partitions).
    Aggregator(Box<cardstream_aggregator::AggregatorArgs>),
    /// Apply (or revert) the database schema. Run once per release, before the new version.
    Migrate(crate::admin::MigrateArgs),
    /// Rebuild every projection and rollup from the stored events.
    Replay(crate::admin::ReplayArgs),
    /// Check that the rollups equal a recomputation from the base tables.
    Verify(crate::admin::VerifyArgs),
    /// Serve the GraphQL API (and the dashboard).
    Api(Box<cardstream_api::ApiArgs>),
    /// Manage dashboard users.
    Users(crate::admin::UsersArgs),
    /// Print the GraphQL schema (SDL), as committed in crates/api/schema.graphql.
    Schema,
    /// Print the CardStream CustomResourceDefinition (YAML), as committed in k8s/crd.yaml.
    Crd,
    /// Reconcile CardStream resources on a Kubernetes cluster (one leader, by Lease).
    Operator(Box<cardstream_operator::OperatorArgs>),
    /// GET URLs and exit 0 if each answers 2xx, 1 if one answers otherwise, 3 if one cannot be
    /// reached: health checks where the image has no HTTP client (helm test, Compose).
    Probe(crate::probe::ProbeArgs),
    /// Run everything on this machine: a local broker, a fresh database, gateway, aggregator,
    /// API, demo users and simulated traffic.
    Dev(Box<crate::dev::DevArgs>),
}

/// Flags that carry secrets. They are accepted from the environment (or a file), never from
/// the command line, where `ps` and shell history would show them.
const SECRET_FLAGS: &[(&str, &str)] = &[
    (
        "webhook-secrets",
        "set CARDSTREAM_WEBHOOK_SECRETS or use --webhook-secrets-file",
    ),
    ("database-url", "set CARDSTREAM_DATABASE_URL"),
    ("token-secret", "set CARDSTREAM_TOKEN_SECRET"),
    (
        "record-keys",
        "set CARDSTREAM_RECORD_KEYS or use --record-keys-file",
    ),
    ("kafka-credentials", "set CARDSTREAM_KAFKA_CREDENTIALS"),
];

/// Refuses a secret given as a command-line flag, in any subcommand.
pub(crate) fn forbid_secrets_on_command_line(matches: &ArgMatches) -> anyhow::Result<()> {
    forbid_in(&Cli::command(), matches)
}

fn forbid_in(command: &clap::Command, matches: &ArgMatches) -> anyhow::Result<()> {
    for arg in command.get_arguments() {
        let Some((flag, instead)) = SECRET_FLAGS
            .iter()
            .find(|(flag, _)| arg.get_long() == Some(*flag))
        else {
            continue;
        };
        let id = arg.get_id().as_str();
        if matches.value_source(id) == Some(ValueSource::CommandLine) {
            anyhow::bail!(
                "--{flag} would show a secret to anyone who can list processes; {instead} instead"
            );
        }
    }
    if let Some((name, sub_matches)) = matches.subcommand()
        && let Some(sub) = command.find_subcommand(name)
    {
        forbid_in(sub, sub_matches)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_readme_lists_every_command() {
        let readme = include_str!("../../../README.md");
        let missing: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .filter(|name| name != "help" && !readme.contains(&format!("| `{name}` |")))
            .collect();
        assert!(
            missing.is_empty(),
            "README.md's command table lacks {missing:?}"
        );
    }

    #[test]
    fn secrets_on_the_command_line_are_refused() {
        let matches = Cli::command()
            .try_get_matches_from(["cardstream", "gateway", "--webhook-secrets", "whsec_x"])
            .unwrap();
        let err = forbid_secrets_on_command_line(&matches).unwrap_err();
        assert!(
            err.to_string().contains("CARDSTREAM_WEBHOOK_SECRETS"),
            "{err}"
        );
        assert!(!err.to_string().contains("whsec_x"));
    }
}
