//! Drills that take a piece of infrastructure or the gateway away under load: the broker, the
//! Postgres server, the gateway.

use std::time::Duration;

use anyhow::Context;

use super::load::Spec;
use super::report::Outcome;
use super::run::Drill;
use super::system::Server;
use super::{Name, Settings};

/// How long the broker or Postgres stays down: shorter than the gateway's produce timeout
/// (5 s), so webhooks arriving meanwhile wait rather than fail, yet long enough for every
/// component to notice.
const DOWN: Duration = Duration::from_secs(3);

pub(crate) async fn broker_restart(settings: Settings) -> anyhow::Result<Outcome> {
    let mut drill = Drill::start(
        Name::BrokerRestart,
        "the broker (tansu, SQLite storage) SIGKILLed under load, started again 3 s later on the same port and storage",
        Server::Shared,
    )
    .await?;
    drill.load(Spec::new(settings.rate, settings.load, 101))?;
    drill.wait_until(settings.fault_at()).await;
    drill.mark("broker SIGKILLed");
    drill.system.broker.stop().await;
    tokio::time::sleep(DOWN).await;
    drill.system.broker.start_again().await;
    drill.repaired("broker accepting connections").await?;
    // tansu 0.6.0's SQLite engine panics on the first write of a producer it knew before the
    // crash (see `survive_broker_panic`).
    survive_broker_panic(&mut drill, "after the restart").await?;
    drill.finish().await
}

/// Watches the broker's log for `WEDGE_CHECK` and, if tansu's storage task panicked, works
/// around it. tansu 0.6.0's SQLite engine panics in its duplicate check for idempotent
/// producers (`lite.rs:503`, "more or less than one row") on the first write of a producer it
/// knew before a crash, and on a produce request the gateway's librdkafka sent again after a
/// timeout; from then on it accepts connections but fails every request. Killing it, starting
/// it again on the same storage and replacing the gateway (a new producer id) gets it serving;
/// what was acknowledged before is then either in Postgres or on the broker's disk, which the
/// reconciliation checks.
pub(super) async fn survive_broker_panic(drill: &mut Drill, when: &str) -> anyhow::Result<()> {
    let mut panics = Vec::new();
    let deadline = std::time::Instant::now() + WEDGE_CHECK;
    while panics.is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        panics = drill.system.broker_panics();
    }
    if panics.is_empty() {
        return Ok(());
    }
    drill.note(format!(
        "tansu panicked {when} ({}) and failed every request",
        panics.join("; ")
    ));
    // Not a plain pass: the verdict names this, and the recovery measured is from it.
    drill.workaround(format!(
        "tansu storage panic {when}: broker restarted on its storage with a new gateway"
    ));
    drill.system.accept_broker_panics(panics);
    drill.abandon_recoveries();
    drill.mark("broker wedged: broker and gateway SIGKILLed");
    drill.system.broker.stop().await;
    if let Some(gateway) = drill.system.gateway.take() {
        gateway.kill().await?;
    }
    drill.system.broker.start_again().await;
    drill.system.start_gateway().await?;
    drill
        .repaired("broker started again on its storage, new gateway")
        .await
}

/// How long after a repair the drill watches for tansu's storage panic (after a broker restart
/// it comes with the old producer's first write, once the gateway has reconnected; after an
/// aggregator's replacement, within about 10 s).
const WEDGE_CHECK: Duration = Duration::from_secs(20);

pub(crate) async fn postgres_restart(settings: Settings) -> anyhow::Result<Outcome> {
    let mut drill = Drill::start(
        Name::PostgresRestart,
        "Postgres (a server of the drill's own) stopped in immediate mode, as a crash, under load; started again 3 s later",
        Server::Private,
    )
    .await?;
    drill.load(Spec::new(settings.rate, settings.load, 102))?;
    drill.wait_until(settings.fault_at()).await;
    drill.mark("Postgres stopped");
    let server = drill
        .system
        .server
        .as_mut()
        .context("the drill has no Postgres of its own")?;
    server.stop().await;
    tokio::time::sleep(DOWN).await;
    server.start_again().await;
    drill.repaired("Postgres accepting connections").await?;
    drill.finish().await
}

pub(crate) async fn gateway_term(settings: Settings) -> anyhow::Result<Outcome> {
    let mut drill = Drill::start(
        Name::GatewayTerm,
        "the gateway sent SIGTERM under load (it stops accepting, finishes requests in flight, flushes); a new one started on the same port once it exited",
        Server::Shared,
    )
    .await?;
    drill.load(Spec::new(settings.rate, settings.load, 103))?;
    drill.wait_until(settings.fault_at()).await;
    let gateway = drill
        .system
        .gateway
        .take()
        .context("the drill has no gateway")?;
    drill.mark("gateway sent SIGTERM");
    let (status, took) = gateway.terminate().await?;
    drill.mark("old gateway exited");
    drill.note(format!(
        "the old gateway exited {:.2} s after SIGTERM with {status}",
        took.as_secs_f64()
    ));
    if !status.success() {
        drill.problem(format!(
            "the gateway did not shut down cleanly on SIGTERM: {status}"
        ));
    }
    drill.system.start_gateway().await?;
    drill.repaired("new gateway listening").await?;
    drill.finish().await
}
