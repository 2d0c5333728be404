//! The steps every drill shares: start the system, start the load, wait for the moment of the
//! fault, note repairs, and at the end drain, reconcile and stop everything.

use std::time::{Duration, Instant};

use super::Name;
use super::load::{Sent, Simulator, Spec};
use super::reconcile::{drain, reconcile};
use super::recovery::Recovery;
use super::report::{Outcome, Recovered};
use super::system::{Server, System};

#[derive(Debug)]
pub(crate) struct Drill {
    pub(crate) system: System,
    outcome: Outcome,
    simulators: Vec<Simulator>,
    specs: Vec<Spec>,
    load_started: Option<Instant>,
    recoveries: Vec<(String, Recovery)>,
}

impl Drill {
    pub(crate) async fn start(name: Name, fault: &str, server: Server) -> anyhow::Result<Drill> {
        let system = System::start(name.as_str(), server).await?;
        eprintln!("  logs in {}", system.logs.display());
        let mut outcome = Outcome::new(name, fault);
        outcome.started = Some(system.started);
        outcome.mark(Instant::now(), "system up");
        Ok(Drill {
            system,
            outcome,
            simulators: Vec::new(),
            specs: Vec::new(),
            load_started: None,
            recoveries: Vec::new(),
        })
    }

    /// Starts a simulator; the first one marks the start of the load.
    pub(crate) fn load(&mut self, spec: Spec) -> anyhow::Result<()> {
        let name = format!("simulator-{}", self.simulators.len() + 1);
        self.simulators
            .push(Simulator::start(&self.system, spec, &name)?);
        self.specs.push(spec);
        if self.load_started.is_none() {
            let now = Instant::now();
            self.load_started = Some(now);
            self.outcome.mark(now, "load started");
        }
        Ok(())
    }

    /// Sleeps until `offset` after the load started.
    pub(crate) async fn wait_until(&self, offset: Duration) {
        let start = self.load_started.unwrap_or_else(Instant::now);
        tokio::time::sleep_until((start + offset).into()).await;
    }

    /// Notes a moment of the drill and returns it.
    pub(crate) fn mark(&mut self, what: impl Into<String>) -> Instant {
        let now = Instant::now();
        self.outcome.mark(now, what);
        now
    }

    pub(crate) fn note(&mut self, note: impl Into<String>) {
        self.outcome.notes.push(note.into());
    }

    /// Records a workaround the drill applied; a drill that then passes says so by name.
    pub(crate) fn workaround(&mut self, what: impl Into<String>) {
        self.outcome.workarounds.push(what.into());
    }

    /// Notes that `what` was repaired now and starts measuring the recovery from it.
    pub(crate) async fn repaired(&mut self, what: &str) -> anyhow::Result<()> {
        let now = self.mark(what);
        let recovery = Recovery::start(&self.system, now)
            .await
            .map_err(|err| self.with_broker_panics(err))?;
        self.recoveries.push((what.to_owned(), recovery));
        Ok(())
    }

    /// Records a problem the drill saw besides the reconciliation (it fails the drill).
    /// Drops the recoveries being measured: what they started from did not in fact repair
    /// anything (a broker that came back wedged).
    pub(crate) fn abandon_recoveries(&mut self) {
        self.recoveries.clear();
    }

    pub(crate) fn problem(&mut self, problem: impl Into<String>) {
        self.outcome.problems.push(problem.into());
    }

    /// Waits for the load to end, the aggregators to drain and the recoveries to be measured.
    pub(crate) async fn settle(&mut self) -> anyhow::Result<Sent> {
        let mut sent = Sent::default();
        for simulator in std::mem::take(&mut self.simulators) {
            match simulator.finish().await {
                Ok(part) => sent.add(part),
                Err(err) => return Err(self.with_broker_panics(err)),
            }
        }
        self.mark("load finished");
        let drained = drain(&self.system)
            .await
            .map_err(|err| self.with_broker_panics(err))?;
        self.outcome.mark(drained.at, "drained");
        self.outcome.lag_left = drained.lag;
        for (what, recovery) in std::mem::take(&mut self.recoveries) {
            let repaired = recovery.repaired;
            let fresh = recovery.finish().await?;
            if let Some(fresh) = fresh {
                self.outcome.mark(fresh, format!("fresh after {what}"));
            }
            self.outcome.recoveries.push(Recovered {
                what,
                repaired,
                fresh,
            });
        }
        self.outcome.timeline.sort_by_key(|(at, _)| *at);
        Ok(sent)
    }

    /// Adds the broker's panics to an error that stopped the drill (its logs are kept beside
    /// the components' whatever happens, see `System`'s `Drop`).
    fn with_broker_panics(&self, err: anyhow::Error) -> anyhow::Error {
        let panics = self.system.broker_panics();
        let logs = self.system.logs.display();
        if panics.is_empty() {
            return err.context(format!(
                "drill stopped; the broker's logs, kept in {logs}, show no panic"
            ));
        }
        err.context(format!("the broker panicked: {}", panics.join("; ")))
    }

    /// Reconciles what was acknowledged with what Postgres holds and stops the system.
    pub(crate) async fn conclude(mut self, sent: Sent) -> anyhow::Result<Outcome> {
        let reconciliation = reconcile(
            &self.system,
            &sent.accepted_ids,
            &self.specs,
            sent.generated,
        )
        .await?;
        self.outcome.reconciliation = Some(reconciliation);
        self.outcome.sent = sent;
        for panic in self.system.broker_panics() {
            self.problem(format!("the broker panicked: {panic}"));
        }
        let logs = self.system.logs.clone();
        let problems = self.system.shut_down().await;
        self.outcome.problems.extend(problems);
        if self.outcome.passed() {
            System::remove_logs(&logs);
        } else {
            self.outcome.logs = Some(logs);
        }
        Ok(self.outcome)
    }

    pub(crate) async fn finish(mut self) -> anyhow::Result<Outcome> {
        let sent = self.settle().await?;
        self.conclude(sent).await
    }
}
