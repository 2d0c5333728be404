//! Drills on the consumer group and on delivery: an aggregator killed mid-batch, the group
//! scaled 1 → 3 → 1 under load, and every event delivered three times in shuffled order.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::faults::survive_broker_panic;
use super::load::Spec;
use super::report::Outcome;
use super::run::Drill;
use super::system::Server;
use super::{Name, Settings};

/// The aggregators' session timeout (6 s, see `system.rs`) and some margin. tansu 0.6.0 can
/// form a group in which nobody reads a dead member's partitions when a newcomer joins before
/// the dead member's session expired (README), so the replacement waits this long, as the
/// integration test does and as a restarted pod usually would.
const SESSION_EXPIRY: Duration = Duration::from_secs(8);

pub(crate) async fn aggregator_kill(settings: Settings) -> anyhow::Result<Outcome> {
    let mut drill = Drill::start(
        Name::AggregatorKill,
        "the only aggregator SIGKILLed mid-batch under load (no final commit); a replacement started once its session expired",
        Server::Shared,
    )
    .await?;
    drill.load(Spec::new(settings.rate, settings.load, 104))?;
    drill.wait_until(settings.fault_at()).await;
    // Mid-batch: a batch is being collected or written whenever records are arriving, so wait
    // for a moment where records are on the topic that the group has not committed.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut uncommitted = drill.system.lag().await?;
    while uncommitted == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        uncommitted = drill.system.lag().await?;
    }
    let aggregator = drill
        .system
        .aggregators
        .pop()
        .context("the drill has no aggregator")?;
    aggregator.kill().await?;
    drill.mark("aggregator SIGKILLed");
    drill.note(format!(
        "killed with {uncommitted} records on the topic not yet committed by the group"
    ));
    tokio::time::sleep(SESSION_EXPIRY).await;
    drill.system.start_aggregator().await?;
    drill.repaired("replacement started").await?;
    // In 1 of 20 runs here, tansu's SQLite engine panicked about 8 s after the replacement
    // joined, on a produce the gateway sent again after it timed out.
    survive_broker_panic(&mut drill, "after the replacement joined").await?;
    let sent = drill.settle().await?;
    // The replacement resumed from the last committed offsets: records the killed one had
    // already written to Postgres were read again and found to be duplicates.
    if let Some(replacement) = drill.system.aggregators.first() {
        let again = replacement
            .metric("cardstream_records_total", "outcome=\"duplicate\"")
            .await?;
        drill.note(format!(
            "the replacement re-read {again} records the killed aggregator had stored but not committed to Kafka (deduplicated)"
        ));
    }
    drill.conclude(sent).await
}

pub(crate) async fn scale(settings: Settings) -> anyhow::Result<Outcome> {
    let mut drill = Drill::start(
        Name::Scale,
        "aggregators scaled 1 → 3 under load (two started), then 3 → 1 (two sent SIGTERM) on a 4-partition topic",
        Server::Shared,
    )
    .await?;
    drill.load(Spec::new(settings.rate, settings.load, 105))?;
    drill.wait_until(settings.load / 4).await;
    drill.mark("scaling 1 → 3");
    drill.system.start_aggregator().await?;
    drill.system.start_aggregator().await?;
    drill.repaired("scale-up").await?;
    drill.wait_until(settings.load * 5 / 8).await;
    // Whether the newcomers were really given partitions, before they go.
    let logs = drill.system.logs.clone();
    let took_part: Vec<bool> = drill.system.aggregators[1..]
        .iter()
        .map(|a| a.logged(&logs, "partitions assigned"))
        .collect();
    drill.note(format!(
        "the two added aggregators were assigned partitions: {took_part:?}"
    ));
    let leaving: Vec<_> = drill.system.aggregators.drain(1..).collect();
    drill.mark("scaling 3 → 1");
    // Both at once, as a scale-down of a Deployment would.
    let stops: Vec<_> = leaving
        .into_iter()
        .map(|a| {
            let name = a.name.clone();
            tokio::spawn(async move { (name, a.terminate().await) })
        })
        .collect();
    drill.repaired("scale-down").await?;
    for stop in stops {
        let (name, stopped) = stop.await.context("a stopping task failed")?;
        match stopped {
            Ok((status, took)) if status.success() => drill.note(format!(
                "{name} left the group cleanly in {:.2} s",
                took.as_secs_f64()
            )),
            Ok((status, _)) => drill.problem(format!("{name} exited with {status} on SIGTERM")),
            Err(err) => drill.problem(format!("{name}: {err:#}")),
        }
    }
    drill.finish().await
}

pub(crate) async fn duplicates(settings: Settings) -> anyhow::Result<Outcome> {
    let mut drill = Drill::start(
        Name::Duplicates,
        "every event delivered 3 times: three simulators with the same seed and start, 1 s apart, each shuffling within a window of 32",
        Server::Shared,
    )
    .await?;
    // The simulator's --duplicate-rate sends an event at most twice; three simulators with the
    // same script send each event exactly three times, and each one's reorder window shuffles
    // the order, so copies of an event arrive in different places and different batches.
    let mut spec = Spec::new(settings.rate / 3.0, settings.load, 106);
    spec.reorder_window = 32;
    for copy in 0..3 {
        if copy > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        drill.load(spec)?;
    }
    let sent = drill.settle().await?;
    let mut copies: HashMap<&str, usize> = HashMap::new();
    for id in &sent.accepted_ids {
        *copies.entry(id.as_str()).or_default() += 1;
    }
    let times = |k: usize| copies.values().filter(|n| **n == k).count();
    drill.note(format!(
        "of {} distinct acknowledged events, {} were acknowledged 3 times, {} twice, {} once (each simulator stops starting purchases after the same time from its own start, so the last few purchases are not in all three scripts' runs)",
        copies.len(),
        times(3),
        times(2),
        times(1)
    ));
    drill.conclude(sent).await
}
