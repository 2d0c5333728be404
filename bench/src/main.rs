//! `cardstream-bench`: measures cardstream against baselines taken in the same run on the same
//! machine, and prints the figures and their ratios. Run through `scripts/bench.sh`, which
//! builds everything in release mode first.

#![allow(clippy::print_stdout)]

mod aggregator;
mod api;
mod backfill;
mod bytes;
mod cpu;
mod drill;
mod freshness;
mod gateway;
mod graphql;
mod ledger;
mod load;
mod processes;
mod report;
mod soak;
mod suite;

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cardstream-bench", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Gateway: verified webhooks/s and latency vs. a bare axum route and vs. producing the
    /// same records with rdkafka directly; authorization latency at a fixed rate.
    Gateway(gateway::GatewayBench),
    /// Spend ledger: authorization p99 at 2,000 requests/s with a daily limit, two gateways
    /// reserving in Postgres vs. one counting spend in memory.
    Ledger(ledger::LedgerBench),
    /// Aggregator: events/s from the topic to committed rows vs. COPY of the same rows; lag
    /// after the run; time to replay.
    Aggregator(aggregator::AggregatorBench),
    /// API: dashboard queries on 1,000,000 transactions over 10,000 cards from concurrent
    /// clients vs. the cheapest signed-in request; freshness (webhook 200 → subscription).
    Api(api::ApiBench),
    /// Backfill: objects/s from the fake Stripe API at no rate limit to committed rows vs. the
    /// aggregator's events/s on the same world's webhook events; the rate limiter's achieved
    /// rate and busiest second at 20/s and 50/s.
    Backfill(backfill::BackfillBench),
    /// All of the above in one go (1,000,000 events through the aggregator and replayed,
    /// 1,000,000 transactions behind the dashboard), then one summary table with every figure,
    /// its same-run baseline and the ratio, and each component's peak RSS.
    All(suite::SuiteArgs),
    /// Soak: the whole pipeline at a steady webhook rate (default 500/s for 10 minutes), with
    /// each component's RSS and the webhook latency sampled every 10 s; fails if memory grows.
    Soak(soak::SoakArgs),
    /// Fault drills: the whole system under simulator load, a fault injected (broker or
    /// Postgres restart, aggregator SIGKILL, scaling, gateway SIGTERM, duplicates), then every
    /// acknowledged event reconciled with Postgres.
    Drill(drill::DrillArgs),
    /// (internal) An axum server whose webhook route reads the body and answers 200: the
    /// baseline for the gateway's HTTP cost.
    #[command(hide = true)]
    BareServer {
        #[arg(long)]
        listen: SocketAddr,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Gateway(args) => gateway::run(args).await.map(drop),
            Command::Ledger(args) => ledger::run(args).await.map(drop),
            Command::Aggregator(args) => aggregator::run(args).await.map(drop),
            Command::Api(args) => api::run(args).await.map(drop),
            Command::Backfill(args) => backfill::run(args).await.map(drop),
            Command::All(args) => suite::run(args).await,
            Command::Soak(args) => soak::run(args).await,
            Command::Drill(args) => drill::run(args).await,
            Command::BareServer { listen } => processes::bare_server(listen).await,
        }
    })
}

/// Formats a duration as milliseconds with two decimals.
fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
