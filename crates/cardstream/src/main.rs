//! The `cardstream` binary: parses configuration and starts the component asked for. All logic
//! lives in the library crates.

mod cli;
mod database_commands;
mod dev;
mod dlq;
#[cfg(test)]
mod operator_env;
mod probe;
mod stripe_commands;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use cardstream_telemetry::{CancellationToken, Registry, cancel_on_signal, init_logging};
use clap::FromArgMatches;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    // Usage errors exit with clap's status, 2.
    let matches = cli::command().get_matches();
    if let Err(error) = cli::forbid_secrets_on_command_line(&matches) {
        eprintln!("error: {error}");
        return ExitCode::from(cli::USAGE);
    }
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_logging(cli.log_format);
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|runtime| {
            let result = runtime.block_on(run(cli.command));
            // A blocking call given up at a shutdown deadline (librdkafka waiting on a broker
            // that is gone) must not hold the exit: dropping the runtime would wait for it.
            runtime.shutdown_timeout(Duration::from_millis(500));
            result
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {error:?}");
            ExitCode::from(exit_status(&error))
        }
    }
}

/// What a failure means to a script: a dependency out of reach (3), drift found (4), or any
/// other failure (1).
fn exit_status(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if cardstream_store::is_unreachable(cause)
            || matches!(
                cause.downcast_ref::<cardstream_kafka::Error>(),
                Some(cardstream_kafka::Error::Unreachable(_))
            )
        {
            return cli::UNREACHABLE;
        }
        if cause.downcast_ref::<database_commands::Drift>().is_some() {
            return cli::DRIFT;
        }
    }
    1
}

/// The process's metrics registry: process metrics and `cardstream_build_info`.
pub(crate) fn registry() -> anyhow::Result<Registry> {
    let registry = cardstream_telemetry::registry()?;
    cardstream_telemetry::register_build_info(
        &registry,
        env!("CARGO_PKG_VERSION"),
        env!("CARDSTREAM_REVISION"),
    )?;
    Ok(registry)
}

/// The longest a long-running command may take to stop once asked, or `None` for commands
/// that end on their own.
fn stop_bound(command: &Command) -> Option<Duration> {
    match command {
        Command::Gateway(args) => Some(args.serve.bound()),
        Command::Api(args) => Some(args.serve.bound()),
        Command::Aggregator(args) => Some(args.shutdown_timeout),
        Command::Dev(_) | Command::Operator(_) => Some(Duration::from_secs(10)),
        _ => None,
    }
}

/// Past its bound (and a second's grace), a stop is stuck: exit anyway, which is safe by
/// design (nothing is acknowledged before it is durable; uncommitted offsets are re-read).
fn exit_if_stuck(shutdown: CancellationToken, bound: Duration) {
    tokio::spawn(async move {
        shutdown.cancelled().await;
        // A thread, not a task: it must fire even if every async worker were blocked.
        std::thread::spawn(move || {
            std::thread::sleep(bound + Duration::from_secs(1));
            tracing::error!(
                ?bound,
                "did not stop within the shutdown bound; exiting anyway"
            );
            std::process::exit(1);
        });
    });
}

async fn run(command: Command) -> anyhow::Result<()> {
    let shutdown = cancel_on_signal();
    if let Some(bound) = stop_bound(&command) {
        exit_if_stuck(shutdown.clone(), bound);
    }
    match command {
        Command::Gateway(args) => {
            let gateway = cardstream_gateway::start(*args, registry()?, shutdown).await?;
            gateway.wait().await?;
        }
        Command::Simulate(args) => {
            let summary = cardstream_simulator::run(*args, shutdown).await?;
            eprint!("{summary}");
            anyhow::ensure!(
                summary.failed == 0,
                "{} deliveries were never accepted",
                summary.failed
            );
        }
        Command::Topics(args) => cardstream_kafka::ensure_topics(&args).await?,
        Command::Aggregator(args) => {
            let aggregator = cardstream_aggregator::start(*args, registry()?, shutdown).await?;
            aggregator.wait().await?;
        }
        Command::Migrate(args) => database_commands::migrate(args).await?,
        Command::Replay(args) => database_commands::replay(args).await?,
        Command::Verify(args) => database_commands::verify(args).await?,
        Command::Dlq(args) => dlq::run(*args).await?,
        Command::Backfill(args) => stripe_commands::backfill(*args, shutdown).await?,
        Command::CatchUp(args) => stripe_commands::catch_up(*args, shutdown).await?,
        Command::Api(args) => {
            let api = cardstream_api::start_with(
                *args,
                registry()?,
                shutdown,
                cardstream_dashboard::router(),
                cardstream_dashboard::graphiql_page(),
            )
            .await?;
            api.wait().await?;
        }
        Command::Users(args) => database_commands::users(args).await?,
        Command::Dev(args) => dev::run(*args, shutdown).await?,
        Command::Crd => {
            use std::io::Write;
            std::io::stdout().write_all(cardstream_operator::crd_yaml()?.as_bytes())?;
        }
        Command::Operator(args) => cardstream_operator::run(*args, registry()?, shutdown).await?,
        Command::Probe(args) => {
            let code = probe::run(args).await;
            if code != 0 {
                std::process::exit(code);
            }
        }
        Command::Schema => {
            use std::io::Write;
            std::io::stdout().write_all(cardstream_api::sdl().as_bytes())?;
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut cli::command(),
                "cardstream",
                &mut std::io::stdout(),
            );
        }
    }
    Ok(())
}
