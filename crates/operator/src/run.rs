//! `cardstream operator`: wait for the leader Lease, then run the controller until shutdown or
//! until the Lease is lost (then exit, so that Kubernetes restarts this replica as a standby and
//! two replicas never reconcile at once).

use std::sync::Arc;
use std::time::Duration;

use cardstream_telemetry::{AdminArgs, AdminServer, CancellationToken, Readiness, Registry};
use futures_util::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client};

use crate::lease::{LeaderLease, LeaseTiming};
use crate::reconcile::{Context, error_policy, reconcile};
use crate::{CardStream, Error, OperatorMetrics};

/// `cardstream operator` settings.
#[derive(clap::Args, Debug, Clone)]
pub struct OperatorArgs {
    #[command(flatten)]
    pub admin: AdminArgs,

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

    /// This replica's identity in the Lease: the pod name (set from the downward API); without
    /// it, the host name (two replicas with one identity would both lead).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,

    /// How long a Lease holds: a standby takes over once it has seen the Lease unchanged for
    /// this long (measured on its own clock, so clock skew between nodes does not matter).
    #[arg(long, env = "CARDSTREAM_LEASE_DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub lease_duration: Duration,

    /// The leader stops reconciling once no renewal has succeeded for this long; it must be
    /// well inside the lease duration, which is what keeps two leaders apart.
    #[arg(long, env = "CARDSTREAM_LEASE_RENEW_DEADLINE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub lease_renew_deadline: Duration,

    /// How often the leader renews the Lease and a standby tries to take it.
    #[arg(long, env = "CARDSTREAM_LEASE_RETRY_PERIOD", default_value = "2s", value_parser = humantime::parse_duration)]
    pub lease_retry_period: Duration,

    /// How often a settled CardStream is reconciled again (its consumer lag measured, the
    /// Secrets it references read again: a rotated Secret rolls its pods within this).
    #[arg(long, env = "CARDSTREAM_RESYNC", default_value = "30s", value_parser = humantime::parse_duration)]
    pub resync: Duration,

    /// Namespaces whose CardStreams this operator reconciles, comma-separated (it needs a Role
    /// in each). Empty: every namespace, which needs a ClusterRole.
    #[arg(long, env = "CARDSTREAM_WATCH_NAMESPACES", value_delimiter = ',')]
    pub watch_namespaces: Vec<String>,

    /// Image repositories a CardStream may run, comma-separated: `ghcr.io/org/app` (that
    /// repository, any tag or digest) or `registry.example.com/` (everything under a prefix).
    /// A CardStream with another image is refused. Empty: any image.
    #[arg(long, env = "CARDSTREAM_ALLOWED_IMAGES", value_delimiter = ',')]
    pub allowed_images: Vec<String>,
}

/// Runs the operator until `shutdown`; an error when the Lease was lost or the API server
/// could not be reached.
pub async fn run(
    args: OperatorArgs,
    registry: Registry,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let timing = LeaseTiming {
        duration: args.lease_duration,
        renew_deadline: args.lease_renew_deadline,
        retry_period: args.lease_retry_period,
    };
    timing.validate().map_err(Error::InvalidSettings)?;
    if args.allowed_images.is_empty() {
        tracing::warn!("no --allowed-images: CardStreams may run any image");
    }
    let metrics = OperatorMetrics::new(&registry)?;
    let readiness = Readiness::new();
    readiness.require("kubernetes");
    let admin = AdminServer::spawn(
        args.admin.listen,
        registry,
        readiness.clone(),
        shutdown.clone(),
    )
    .await?;
    let client = Client::try_default().await?;
    let lease = LeaderLease::with_timing(
        Api::namespaced(client.clone(), &args.lease_namespace),
        &args.lease_name,
        &identity(&args)?,
        timing,
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
    // Standby: a replica that waits for the Lease is healthy and ready.
    let Some(acquired) = lease
        .acquire(shutdown, |attempt| {
            readiness.set("kubernetes", attempt.map_err(ToString::to_string));
        })
        .await
    else {
        return Ok(());
    };
    readiness.set("kubernetes", Ok(()));
    metrics.leader.set(1);
    tracing::info!(
        identity = lease.identity(),
        "leading: reconciling CardStreams"
    );

    let ctx = Arc::new(
        Context::new(client.clone(), metrics.clone(), args.resync)
            .with_allowed_images(args.allowed_images.clone()),
    );
    let scopes = namespaces(&args.watch_namespaces);
    // No reconcile starts once leadership ends or shutdown begins; the Lease keeps being
    // renewed while those in flight finish, and `hold` drops them if leadership ends first.
    let held = lease
        .hold(acquired, |leading| {
            let stop = {
                let (shutdown, leading) = (shutdown.clone(), leading.clone());
                async move {
                    tokio::select! {
                        () = shutdown.cancelled() => {}
                        () = leading.cancelled() => {}
                    }
                }
                .shared()
            };
            let controllers = futures_util::future::join_all(scopes.iter().map(|namespace| {
                let (client, ctx, namespace) = (client.clone(), ctx.clone(), namespace.as_deref());
                controller(&client, namespace)
                    .graceful_shutdown_on(stop.clone())
                    .run(reconcile, error_policy, ctx)
                    .for_each(|_| async {})
            }));
            // A controller notices the stop only once its caches have loaded, and a reconcile
            // may hang: the drain is bounded so that the Lease is still released in time.
            let shutdown = shutdown.clone();
            let drained = async move {
                shutdown.cancelled().await;
                tokio::time::sleep(SHUTDOWN_DRAIN).await;
            };
            let demoted = async move {
                leading.cancelled().await;
                metrics.leader.set(0);
                std::future::pending::<()>().await;
            };
            async move {
                tokio::select! {
                    _ = controllers => {}
                    () = drained => tracing::warn!(
                        drain = ?SHUTDOWN_DRAIN,
                        "reconciles still running at shutdown were abandoned"
                    ),
                    () = demoted => {}
                }
            }
        })
        .await;
    metrics.leader.set(0);
    match held {
        Err(error) if !shutdown.is_cancelled() => Err(error),
        _ => Ok(()),
    }
}

/// The controller of the CardStreams in `namespace` (every namespace for `None`): it lists and
/// watches them and the Deployments and Jobs they own. Public so that the RBAC test runs this
/// very controller against its stand-in API server.
pub fn controller(client: &Client, namespace: Option<&str>) -> Controller<CardStream> {
    Controller::new(
        scoped::<CardStream>(client, namespace),
        watcher::Config::default(),
    )
    .owns(
        scoped::<Deployment>(client, namespace),
        watcher::Config::default(),
    )
    .owns(scoped::<Job>(client, namespace), watcher::Config::default())
}

fn identity(args: &OperatorArgs) -> Result<String, Error> {
    let host = || {
        std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .map(|name| name.trim().to_owned())
    };
    args.identity
        .clone()
        .or_else(host)
        .filter(|name| !name.is_empty())
        .ok_or_else(|| {
            Error::InvalidSettings("no --identity (POD_NAME) and no host name to use".to_owned())
        })
}

/// The namespaces to watch, trimmed and without repeats (two controllers on one namespace
/// would reconcile the same CardStream at once); `[None]` for every namespace.
fn namespaces(given: &[String]) -> Vec<Option<String>> {
    let mut scopes: Vec<Option<String>> = Vec::new();
    for namespace in given.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        if !scopes.iter().any(|s| s.as_deref() == Some(namespace)) {
            scopes.push(Some(namespace.to_owned()));
        }
    }
    if scopes.is_empty() {
        scopes.push(None);
    }
    scopes
}

/// How long reconciles in flight may run once shutdown begins; the Lease is released after, and
/// the process must be done within `--shutdown-timeout` (10 s).
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

/// An `Api` over one namespace, or over all of them.
fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::namespaces;

    #[test]
    fn namespaces_are_trimmed_and_deduplicated() {
        let given = ["a", " b", "a", "", " "].map(String::from);
        assert_eq!(
            namespaces(&given),
            [Some("a".to_owned()), Some("b".to_owned())]
        );
        assert_eq!(namespaces(&[]), [None]);
        assert_eq!(namespaces(&[" ".to_owned()]), [None]);
    }
}
