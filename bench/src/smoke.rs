//! `cardstream-bench smoke`: every benchmark at a small size, so that the test command
//! catches one that no longer runs, or whose own checks fail (events lost or counted twice,
//! rollups drifting from the base tables, a replay that differs, memory that grows, a drill
//! that loses an acknowledged event). It prints what each benchmark prints and judges no
//! timing: on a debug build, at these sizes, the figures mean nothing.

use std::time::Instant;

use clap::{Args, FromArgMatches};

use crate::{aggregator, api, backfill, drill, gateway, ledger, soak};

/// A benchmark's arguments from one line, as its command line would give them.
fn args<T: Args + FromArgMatches>(line: &str) -> anyhow::Result<T> {
    crate::suite::parsed(&line.split_whitespace().collect::<Vec<_>>())
}

pub(crate) async fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let step = |name: &str| {
        eprintln!(
            "== smoke: {name} ({:.0} s in)",
            started.elapsed().as_secs_f64()
        );
    };
    step("gateway");
    gateway::run(args(
        "--duration 2s --warmup 1s --connections 8 --webhook-rate 200 --authorization-rate 100",
    )?)
    .await?;
    step("spend ledger");
    ledger::run(args("--duration 2s --warmup 1s --rate 100 --cards 50")?).await?;
    step("aggregator and replay");
    aggregator::run(args("--events 4000 --batch-size 500")?).await?;
    step("api and freshness");
    api::run(args(
        "--cards 100 --transactions 5000 --clients 1,2 --duration 2s \
         --freshness-rate 100 --freshness-duration 6s",
    )?)
    .await?;
    step("backfill");
    backfill::run(args(
        "--objects 500 --limiter-rates 20 --limiter-time 2s --limiter-callers 2",
    )?)
    .await?;
    step("soak");
    soak::run(args("--duration 20s --rate 50 --every 4s --warmup 4s")?).await?;
    step("drill (duplicates)");
    drill::run(args("duplicates --rate 100 --load 6s")?).await?;
    eprintln!(
        "== smoke: every benchmark ran and its checks held ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
