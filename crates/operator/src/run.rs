//! `cardstream operator`: wait for the leader Lease, then run the controller until shutdown or
//! until the Lease is lost (then exit, so that Kubernetes restarts this replica as a standby and
//! two replicas never reconcile at once).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cardstream_telemetry::{AdminServer, CancellationToken, Readiness, Registry};
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client};

use crate::lease::LeaderLease;
use crate::reconcile::{Context, error_policy, reconcile};
use crate::{CardStream, Error, OperatorMetrics};

/// `cardstream operator` settings.
#[derive(clap::Args, Debug, Clone)]
pub struct OperatorArgs {
    /// Address of the admin endpoints: /healthz, /readyz, /metrics.
    #[arg(long, env = "CARDSTREAM_ADMIN_LISTEN", default_value = "0.0.0.0:9090")]
    pub admin_listen: SocketAddr,

    /// Namespace of the leader Lease (the operator's own; set from the downward API).
    #[arg(long, env = "POD_NAMESPACE", default_value = "cardstream-system")]
    pub lease_namespace: String,

    /// Name of the leader Lease.
    #[arg(
        long,
        env = "CARDSTREAM_LEASE_NAME",
        default_value = "cardstream-operator"
    )]
    pub lease_name: String,

    /// This replica's identity in the Lease (the pod name; set from the downward API).
    #[arg(long, env = "POD_NAME", default_value = "cardstream-operator")]
    pub identity: String,

    /// How long a Lease holds without renewal; a standby takes over this long after the
    /// leader stops renewing.
    #[arg(long, env = "CARDSTREAM_LEASE_DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub lease_duration: Duration,

    /// How often a settled CardStream is reconciled again (and its consumer lag measured).
    #[arg(long, env = "CARDSTREAM_RESYNC", default_value = "30s", value_parser = humantime::parse_duration)]
    pub resync: Duration,
}

/// Runs the operator until `shutdown`; an error when the Lease was lost or the API server
/// could not be reached.
pub async fn run(
    args: OperatorArgs,
    registry: Registry,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let metrics = OperatorMetrics::new(&registry)?;
    let readiness = Readiness::new();
    readiness.require("kubernetes");
    let admin = AdminServer::spawn(
        args.admin_listen,
        registry,
        readiness.clone(),
        shutdown.clone(),
    )
    .await?;
    let client = Client::try_default().await?;
    let lease = LeaderLease::new(
        Api::namespaced(client.clone(), &args.lease_namespace),
        &args.lease_name,
        &args.identity,
        args.lease_duration,
    );

    let result = lead(&lease, client, &args, &metrics, &readiness, &shutdown).await;
    metrics.leader.set(0);
    lease.release().await;
    shutdown.cancel();
    let _ = admin.task.await;
    result
}

async fn lead(
    lease: &LeaderLease,
    client: Client,
    args: &OperatorArgs,
    metrics: &OperatorMetrics,
    readiness: &Readiness,
    shutdown: &CancellationToken,
) -> Result<(), Error> {
    let retry = lease.duration() / 3;
    // Standby: a replica that waits for the Lease is healthy and ready.
    loop {
        match lease.try_acquire_or_renew(Timestamp::now()).await {
            Ok(true) => break,
            Ok(false) => readiness.set("kubernetes", Ok(())),
            Err(error) => {
                tracing::warn!(%error, "cannot reach the leader Lease");
                readiness.set("kubernetes", Err(error.to_string()));
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(retry) => {}
        }
    }
    readiness.set("kubernetes", Ok(()));
    metrics.leader.set(1);
    tracing::info!(
        identity = lease.identity(),
        "leading: reconciling CardStreams"
    );

    let lost = CancellationToken::new();
    let renewing = tokio::spawn(renew(lease.clone(), lost.clone(), shutdown.clone()));
    let stop = {
        let (shutdown, lost) = (shutdown.clone(), lost.clone());
        async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = lost.cancelled() => {}
            }
        }
    };
    let ctx = Arc::new(Context::new(client.clone(), metrics.clone(), args.resync));
    Controller::new(
        Api::<CardStream>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(
        Api::<Deployment>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(Api::<Job>::all(client), watcher::Config::default())
    .graceful_shutdown_on(stop)
    .run(reconcile, error_policy, ctx)
    .for_each(|_| async {})
    .await;
    renewing.abort();
    if lost.is_cancelled() && !shutdown.is_cancelled() {
        return Err(Error::LeaseLost);
    }
    Ok(())
}

/// Renews the Lease every third of its duration; cancels `lost` when another replica holds it
/// or when no renewal has succeeded for a whole duration (it may have expired meanwhile).
async fn renew(lease: LeaderLease, lost: CancellationToken, shutdown: CancellationToken) {
    let mut renewed = Instant::now();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(lease.duration() / 3) => {}
        }
        match lease.try_acquire_or_renew(Timestamp::now()).await {
            Ok(true) => renewed = Instant::now(),
            Ok(false) => {
                tracing::error!("another replica holds the leader Lease; stopping");
                lost.cancel();
                return;
            }
            Err(error) if renewed.elapsed() >= lease.duration() => {
                tracing::error!(%error, "could not renew the leader Lease in time; stopping");
                lost.cancel();
                return;
            }
            Err(error) => tracing::warn!(%error, "could not renew the leader Lease; retrying"),
        }
    }
}
