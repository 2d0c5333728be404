//! The load: `cardstream simulate` as a child process, pointed at the drill's gateway. Its
//! `--accepted-ids-file` (the id of every delivery the gateway answered 2xx, after retries) is
//! the ground truth of what was acknowledged; its summary (printed to stderr) gives what was
//! sent.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::process::{Child, Command};

use super::system::{SECRET, System};

/// How one simulator runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    pub(crate) rate: f64,
    pub(crate) duration: Duration,
    pub(crate) seed: u64,
    /// `created` of the first purchase: fixed, so the events are a function of the seed (the
    /// duplicates drill relies on it, and lost ids can be classified by regenerating them).
    pub(crate) start: i64,
    pub(crate) cards: usize,
    pub(crate) reorder_window: usize,
}

/// Stripe retries for days; six retries with doubling backoff from 100 ms (6.3 s of waiting,
/// plus up to 5 s per attempt while the gateway waits for the broker) outlast any outage a
/// drill causes, so a delivery is only given up when it is refused.
pub(crate) const RETRIES: u32 = 6;
/// Simulated seconds between purchases (the simulator's default).
pub(crate) const TIME_STEP_MS: i64 = 1000;

impl Spec {
    pub(crate) fn new(rate: f64, duration: Duration, seed: u64) -> Spec {
        Spec {
            rate,
            duration,
            seed,
            start: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
            cards: 200,
            reorder_window: 0,
        }
    }
}

/// A running simulator.
#[derive(Debug)]
pub(crate) struct Simulator {
    child: Child,
    ids: PathBuf,
    log: PathBuf,
    deadline: Instant,
}

/// What a simulator did, from its summary and its accepted-ids file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sent {
    /// Simulators that ran.
    pub(crate) simulators: usize,
    /// Events generated (each simulator's distinct events, summed).
    pub(crate) generated: u64,
    /// Extra deliveries of events already sent.
    pub(crate) duplicates: u64,
    /// Deliveries answered 2xx (after retries).
    pub(crate) accepted: u64,
    /// Deliveries never answered 2xx (authorization requests are never retried).
    pub(crate) failed: u64,
    /// The summary's per-endpoint lines: attempts by status, transport errors, latency.
    pub(crate) endpoints: Vec<String>,
    pub(crate) accepted_ids: Vec<String>,
}

impl Sent {
    /// Deliveries, not counting retries.
    pub(crate) fn deliveries(&self) -> u64 {
        self.generated + self.duplicates
    }

    pub(crate) fn add(&mut self, other: Sent) {
        self.simulators += other.simulators;
        self.generated += other.generated;
        self.duplicates += other.duplicates;
        self.accepted += other.accepted;
        self.failed += other.failed;
        self.endpoints.extend(other.endpoints);
        self.accepted_ids.extend(other.accepted_ids);
    }
}

impl Simulator {
    pub(crate) fn start(system: &System, spec: Spec, name: &str) -> anyhow::Result<Simulator> {
        let ids = system.logs.join(format!("{name}.accepted-ids"));
        let log = system.logs.join(format!("{name}.log"));
        let file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let child = Command::new(system.binary())
            .arg("simulate")
            .args(["--target", &format!("http://{}", system.gateway_addr)])
            .args(["--rate", &spec.rate.to_string()])
            .args(["--duration", &format!("{}ms", spec.duration.as_millis())])
            .args(["--seed", &spec.seed.to_string()])
            .args(["--start", &spec.start.to_string()])
            .args(["--time-step-ms", &TIME_STEP_MS.to_string()])
            .args(["--cards", &spec.cards.to_string()])
            .args(["--reorder-window", &spec.reorder_window.to_string()])
            .args(["--retries", &RETRIES.to_string()])
            .arg("--accepted-ids-file")
            .arg(&ids)
            .env("CARDSTREAM_WEBHOOK_SECRETS", SECRET)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the simulator")?;
        Ok(Simulator {
            child,
            ids,
            log,
            // Purchases under way finish after --duration, with retries of up to ~40 s.
            deadline: Instant::now() + spec.duration + Duration::from_secs(60),
        })
    }

    /// Waits for the simulator to finish and reads what it did. Its exit status is not an
    /// error: it exits non-zero whenever a delivery was never accepted, which some faults
    /// cause on purpose (authorization requests are not retried).
    pub(crate) async fn finish(mut self) -> anyhow::Result<Sent> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, self.child.wait()).await.is_err() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let last = log.lines().last().unwrap_or_default().to_owned();
            anyhow::bail!(
                "the simulator did not finish within 60 s of the end of the load (deliveries still being retried); its last progress: {last}"
            );
        }
        let log = std::fs::read_to_string(&self.log)
            .with_context(|| format!("cannot read {}", self.log.display()))?;
        let mut sent = parse_summary(&log)
            .with_context(|| format!("no summary in the simulator's output:\n{log}"))?;
        let ids = std::fs::read_to_string(&self.ids)
            .with_context(|| format!("cannot read {}", self.ids.display()))?;
        sent.accepted_ids = ids.lines().map(str::to_owned).collect();
        anyhow::ensure!(
            sent.accepted_ids.len() as u64 == sent.accepted,
            "the simulator reported {} accepted but wrote {} ids",
            sent.accepted,
            sent.accepted_ids.len()
        );
        Ok(sent)
    }
}

/// Reads `events generated N, duplicates sent N, accepted (2xx) N, failed N` and the
/// per-endpoint lines from the simulator's summary.
fn parse_summary(log: &str) -> Option<Sent> {
    let line = log
        .lines()
        .find(|l| l.trim_start().starts_with("events generated"))?;
    let numbers: Vec<u64> = line
        .split(',')
        .filter_map(|part| part.split_whitespace().last()?.parse().ok())
        .collect();
    let [generated, duplicates, accepted, failed] = numbers[..] else {
        return None;
    };
    let endpoints = log
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("webhooks:") || l.starts_with("authorization requests:"))
        .map(str::to_owned)
        .collect();
    Some(Sent {
        simulators: 1,
        generated,
        duplicates,
        accepted,
        failed,
        endpoints,
        accepted_ids: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_read() {
        let log = "simulation finished in 24.1 s\n  events generated 9000, duplicates sent 12, accepted (2xx) 8990, failed 22\n  webhooks: 7000 attempts [200: 6990, 503: 10] transport errors 0; latency p50 1 ms\n  authorization requests: 2000 attempts [200: 2000] transport errors 0; latency\n";
        let sent = parse_summary(log).unwrap();
        assert_eq!(
            (sent.generated, sent.duplicates, sent.accepted, sent.failed),
            (9000, 12, 8990, 22)
        );
        assert_eq!(sent.endpoints.len(), 2);
        assert_eq!(sent.deliveries(), 9012);
    }
}
