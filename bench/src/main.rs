//! `cardstream-bench`: measures cardstream against baselines taken in the same run on the same
//! machine, and prints the figures and their ratios. Run through `scripts/bench.sh`, which
//! builds everything in release mode first.

#![allow(clippy::print_stdout)]

mod aggregator;
mod api;
mod cpu;
mod freshness;
mod gateway;
mod graphql;
mod load;
mod processes;
mod report;

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
    /// Aggregator: events/s from the topic to committed rows vs. COPY of the same rows; lag
    /// after the run; time to replay.
    Aggregator(aggregator::AggregatorBench),
    /// API: dashboard queries on 1,000,000 transactions over 10,000 cards from concurrent
    /// clients vs. the cheapest signed-in request; freshness (webhook 200 → subscription).
    Api(api::ApiBench),
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
            Command::Gateway(args) => gateway::run(args).await,
            Command::Aggregator(args) => aggregator::run(args).await,
            Command::Api(args) => api::run(args).await,
            Command::BareServer { listen } => processes::bare_server(listen).await,
        }
    })
}

/// Formats a duration as milliseconds with two decimals.
fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
