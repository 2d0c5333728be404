use cardstream_telemetry::LogFormat;
use clap::parser::ValueSource;
use clap::{ArgMatches, Parser, Subcommand};

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
}

/// Arguments that hold secrets. They are accepted from the environment (or a file), never from
/// the command line, where `ps` and shell history would show them.
const SECRET_ARGS: &[(&str, &str)] = &[
    (
        "webhook_secrets",
        "set CARDSTREAM_WEBHOOK_SECRETS or use --webhook-secrets-file",
    ),
    ("database_url", "set CARDSTREAM_DATABASE_URL"),
];

pub(crate) fn forbid_secrets_on_command_line(matches: &ArgMatches) -> anyhow::Result<()> {
    let mut current = Some(matches);
    while let Some(m) = current {
        for (id, instead) in SECRET_ARGS {
            let given = m.try_get_raw(id).ok().flatten().is_some();
            if given && m.value_source(id) == Some(ValueSource::CommandLine) {
                anyhow::bail!(
                    "--{} would show a secret to anyone who can list processes; {instead} instead",
                    id.replace('_', "-")
                );
            }
        }
        current = m.subcommand().map(|(_, sub)| sub);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
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
