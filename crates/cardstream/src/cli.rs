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
    Migrate(crate::database_commands::MigrateArgs),
    /// Rebuild every projection and rollup from the stored events.
    Replay(crate::database_commands::ReplayArgs),
    /// Check that the rollups equal a recomputation from the base tables.
    Verify(crate::database_commands::VerifyArgs),
    /// List, show and redrive the records the aggregator dead-lettered.
    Dlq(Box<crate::dlq::DlqArgs>),
    /// Read Stripe's Issuing lists (history from before cardstream) into the pipeline;
    /// resumable, rate-limited.
    Backfill(Box<crate::stripe_commands::BackfillCommand>),
    /// Recover events whose webhooks never arrived, from Stripe's event list (30 days kept).
    CatchUp(Box<crate::stripe_commands::CatchUpCommand>),
    /// Serve the GraphQL API (and the dashboard).
    Api(Box<cardstream_api::ApiArgs>),
    /// Manage dashboard users.
    Users(crate::database_commands::UsersArgs),
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
    /// Print a shell completion script, e.g. `cardstream completions bash >
    /// /etc/bash_completion.d/cardstream`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// The subcommands under the headings `--help` shows them in (clap lists them in one block).
pub(crate) const GROUPS: &[(&str, &[&str])] = &[
    (
        "Runtime components",
        &["gateway", "aggregator", "api", "operator", "dev"],
    ),
    (
        "Data tools",
        &[
            "simulate", "topics", "migrate", "replay", "verify", "dlq", "backfill", "catch-up",
        ],
    ),
    ("Admin", &["users", "probe", "schema", "crd", "completions"]),
];

/// What the exit status means, for scripts (the README says the same).
pub(crate) const EXIT_STATUS: &str = "\
Exit status:
  0  done
  1  failed (the message says why)
  2  usage: an unknown flag, a bad value, or a secret given as a flag
  3  a dependency (Postgres, Kafka, a probed URL) cannot be reached
  4  verify found rollups that differ from the base tables";

/// The exit status of a usage error, as clap's own.
pub(crate) const USAGE: u8 = 2;
/// The exit status when Postgres, Kafka or a probed URL cannot be reached.
pub(crate) const UNREACHABLE: u8 = 3;
/// The exit status when `verify` finds drift.
pub(crate) const DRIFT: u8 = 4;

/// The command line, with `--help` listing the subcommands by group and the exit statuses.
pub(crate) fn command() -> clap::Command {
    let command = Cli::command();
    let width = command
        .get_subcommands()
        .map(|c| c.get_name().len())
        .max()
        .unwrap_or(0);
    let mut groups = String::new();
    for (heading, names) in GROUPS {
        groups.push_str(&format!("{heading}:\n"));
        for name in *names {
            let about = command
                .find_subcommand(name)
                .and_then(|c| c.get_about())
                .map(|a| a.to_string())
                .unwrap_or_default();
            groups.push_str(&format!("  {name:width$}  {about}\n"));
        }
        groups.push('\n');
    }
    let template = format!(
        "{{before-help}}{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{groups}Options:\n{{options}}{{after-help}}"
    );
    command.help_template(template).after_help(EXIT_STATUS)
}

/// Flags that carry secrets. They are accepted from the environment (or a file), never from
/// the command line, where `ps` and shell history would show them.
const SECRET_FLAGS: &[(&str, &str)] = &[
    (
        "webhook-secrets",
        "set CARDSTREAM_WEBHOOK_SECRETS (or, for the gateway, use --webhook-secrets-file)",
    ),
    (
        "connect-webhook-secrets",
        "set CARDSTREAM_CONNECT_WEBHOOK_SECRETS or use --connect-webhook-secrets-file",
    ),
    ("database-url", "set CARDSTREAM_DATABASE_URL"),
    ("token-secret", "set CARDSTREAM_TOKEN_SECRET"),
    (
        "record-keys",
        "set CARDSTREAM_RECORD_KEYS or use --record-keys-file",
    ),
    ("kafka-credentials", "set CARDSTREAM_KAFKA_CREDENTIALS"),
    ("stripe-api-key", "set CARDSTREAM_STRIPE_API_KEY"),
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
        command().debug_assert();
    }

    #[test]
    fn help_lists_every_command_once_under_its_group_and_the_exit_statuses() {
        let help = command().render_help().to_string();
        let names: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .filter(|n| n != "help")
            .collect();
        let grouped: Vec<&str> = GROUPS.iter().flat_map(|(_, n)| n.iter().copied()).collect();
        let mut sorted = grouped.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), grouped.len(), "a command in two groups");
        let mut expected = names.clone();
        expected.sort_unstable();
        assert_eq!(sorted, expected, "every command in exactly one group");
        let mut at = 0;
        for (heading, group) in GROUPS {
            at += help[at..]
                .find(&format!("\n{heading}:\n"))
                .unwrap_or_else(|| panic!("no {heading} heading in\n{help}"));
            let block = help[at..].split("\n\n").next().unwrap_or_default();
            for name in *group {
                assert!(
                    block.contains(&format!("\n  {name} ")),
                    "{name} not under {heading}:\n{help}"
                );
            }
        }
        assert!(help.contains("Exit status:"), "{help}");
        for code in ["  0  ", "  1  ", "  2  ", "  3  ", "  4  "] {
            assert!(help.contains(code), "{code:?} not in\n{help}");
        }
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
