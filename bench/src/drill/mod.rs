//! Fault drills: the whole system (the real `cardstream` processes on a tansu broker with
//! SQLite storage and a database of their own) runs under simulator load, a fault is injected
//! in the middle, and afterwards the drill reconciles what the gateway acknowledged with what
//! Postgres holds: every event answered 2xx stored exactly once, rollups equal to their
//! recomputation from the base tables. Run through `scripts/drill.sh`.

mod faults;
mod load;
mod members;
mod reconcile;
mod recovery;
mod report;
mod run;
mod system;

use std::time::{Duration, Instant};

use report::Outcome;

#[derive(Debug, clap::Args)]
pub(crate) struct DrillArgs {
    /// The drill to run; `all` runs each in turn and prints one table.
    #[arg(value_enum, default_value = "all")]
    name: Name,
    /// Simulator deliveries per second (all simulators of a drill together).
    #[arg(long, default_value_t = 400.0)]
    rate: f64,
    /// How long the simulator starts new purchases; the fault falls in the first half.
    #[arg(long, default_value = "24s", value_parser = humantime::parse_duration)]
    load: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Name {
    BrokerRestart,
    PostgresRestart,
    AggregatorKill,
    Scale,
    GatewayTerm,
    Duplicates,
    All,
}

impl Name {
    const EACH: [Name; 6] = [
        Name::BrokerRestart,
        Name::PostgresRestart,
        Name::AggregatorKill,
        Name::Scale,
        Name::GatewayTerm,
        Name::Duplicates,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Name::BrokerRestart => "broker-restart",
            Name::PostgresRestart => "postgres-restart",
            Name::AggregatorKill => "aggregator-kill",
            Name::Scale => "scale",
            Name::GatewayTerm => "gateway-term",
            Name::Duplicates => "duplicates",
            Name::All => "all",
        }
    }
}

/// What every drill is given.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) rate: f64,
    pub(crate) load: Duration,
}

impl Settings {
    /// When the fault is injected: a third into the load, so there is traffic before, during
    /// and well after it.
    pub(crate) fn fault_at(&self) -> Duration {
        self.load / 3
    }
}

pub(crate) async fn run(args: DrillArgs) -> anyhow::Result<()> {
    let settings = Settings {
        rate: args.rate,
        load: args.load,
    };
    let names: Vec<Name> = match args.name {
        Name::All => Name::EACH.to_vec(),
        one => vec![one],
    };
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for name in names {
        eprintln!("drill {}…", name.as_str());
        let outcome = match run_one(name, settings).await {
            Ok(outcome) => outcome,
            // One drill failing to run must not hide the others' results.
            Err(err) => Outcome::error(name, format!("{err:#}")),
        };
        outcome.print_details();
        outcomes.push(outcome);
    }
    report::print_table(&outcomes, started.elapsed());
    let worked_around = outcomes
        .iter()
        .filter(|o| o.passed() && !o.workarounds.is_empty())
        .count();
    if worked_around > 0 {
        println!(
            "{worked_around} of {} drill(s) passed only with a workaround (named in the verdict)",
            outcomes.len()
        );
    }
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    anyhow::ensure!(
        failed == 0,
        "{failed} of {} drill(s) failed",
        outcomes.len()
    );
    Ok(())
}

async fn run_one(name: Name, settings: Settings) -> anyhow::Result<Outcome> {
    match name {
        Name::BrokerRestart => faults::broker_restart(settings).await,
        Name::PostgresRestart => faults::postgres_restart(settings).await,
        Name::GatewayTerm => faults::gateway_term(settings).await,
        Name::AggregatorKill => members::aggregator_kill(settings).await,
        Name::Scale => members::scale(settings).await,
        Name::Duplicates => members::duplicates(settings).await,
        Name::All => anyhow::bail!("`all` is not a single drill"),
    }
}
