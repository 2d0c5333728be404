//! `cardstream-bench all`: every benchmark in one go, each printing its own table, then one
//! summary of figures next to their same-run baselines, formatted for the README.

use clap::{Args, FromArgMatches};

use crate::report::{Line, print_summary};
use crate::{aggregator, api, backfill, gateway, ledger};

#[derive(Debug, clap::Args)]
pub(crate) struct SuiteArgs {
    /// Events through the aggregator, and replayed.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Transactions behind the dashboard queries.
    #[arg(long, default_value_t = 1_000_000)]
    transactions: i64,
}

/// A benchmark's arguments as its own command line would give them.
fn parsed<T: Args + FromArgMatches>(args: &[&str]) -> anyhow::Result<T> {
    let command = T::augment_args(clap::Command::new("bench").no_binary_name(true));
    Ok(T::from_arg_matches(&command.try_get_matches_from(args)?)?)
}

pub(crate) async fn run(args: SuiteArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut lines: Vec<Line> = Vec::new();
    eprintln!("== gateway");
    lines.extend(gateway::run(parsed(&[])?).await?);
    eprintln!("== spend ledger");
    lines.extend(ledger::run(parsed(&[])?).await?);
    eprintln!("== aggregator and replay, {} events", args.events);
    let events = args.events.to_string();
    lines.extend(aggregator::run(parsed(&["--events", &events])?).await?);
    eprintln!("== api and freshness, {} transactions", args.transactions);
    let transactions = args.transactions.to_string();
    lines.extend(api::run(parsed(&["--transactions", &transactions])?).await?);
    eprintln!("== backfill");
    lines.extend(backfill::run(parsed(&[])?).await?);

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    print_summary(
        &[
            format!(
                "{cores} cores shared by the load generator, cardstream, the broker (tansu 0.6.0) and Postgres; release build"
            ),
            format!(
                "the whole suite took {:.0} s",
                started.elapsed().as_secs_f64()
            ),
        ],
        &lines,
    );
    Ok(())
}
