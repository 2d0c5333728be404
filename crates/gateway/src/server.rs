use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use cardstream_kafka::{EventProducer, ProducerTuning};
use cardstream_policy::PolicyStore;
use cardstream_store::{SpendCache, Store};
use cardstream_stripe::Verifier;
use cardstream_telemetry::{AdminServer, CancellationToken, HttpMetrics, Readiness, Registry};
use secrecy::ExposeSecret;

use crate::{Error, Gateway, GatewayArgs, GatewayMetrics, app};

/// How often the broker is probed for `/readyz`.
const BROKER_PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// How long shutdown waits for queued records (background authorization produces) to land.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(10);

/// A started gateway: where it listens, and the task that ends when it has shut down.
#[derive(Debug)]
pub struct RunningGateway {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    task: tokio::task::JoinHandle<Result<(), Error>>,
}

impl RunningGateway {
    /// Waits until the gateway stopped: in-flight requests finished and the producer flushed.
    pub async fn wait(self) -> Result<(), Error> {
        self.task
            .await
            .map_err(|e| Error::Serve(std::io::Error::other(e)))?
    }
}

/// Starts the gateway and its admin endpoints. It runs until `shutdown` is cancelled, then
/// stops accepting, finishes in-flight requests and flushes the producer.
pub async fn start(
    args: GatewayArgs,
    registry: Registry,
    shutdown: CancellationToken,
) -> Result<RunningGateway, Error> {
    let secrets = args.secrets.load()?;
    let verifier = Verifier::new(&secrets, args.signature_tolerance.as_secs())?;
    let metrics = GatewayMetrics::new(&registry)?;
    let http_metrics = HttpMetrics::new("gateway", &registry)?;

    let policy = PolicyStore::new(args.policy.resolve()?);
    let reloads = metrics.policy_reloads.clone();
    policy.watch(args.policy.clone(), shutdown.clone(), move |result| {
        let outcome = if result.is_ok() { "ok" } else { "invalid" };
        reloads.with_label_values(&[outcome]).inc();
    });

    let producer = EventProducer::new(
        &args.kafka,
        ProducerTuning {
            linger: args.kafka_linger,
            delivery_timeout: args.produce_timeout,
        },
    )?;
    let stripe_version = HeaderValue::from_str(&args.stripe_version)
        .map_err(|_| Error::StripeVersion(args.stripe_version.clone()))?;

    let spend = start_spend_cache(&args, &policy, &metrics, &shutdown).await?;
    let gateway = Arc::new(Gateway {
        verifier,
        producer: producer.clone(),
        policy,
        spend,
        metrics,
        body_limit: args.body_limit,
        produce_timeout: args.produce_timeout,
        body_timeout: args.body_timeout,
        stripe_version,
    });

    let readiness = Readiness::new();
    readiness.require("broker");
    spawn_broker_probe(producer.clone(), readiness.clone(), shutdown.clone());
    let admin = AdminServer::spawn(
        args.admin_listen,
        registry,
        readiness.clone(),
        shutdown.clone(),
    )
    .await?;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: args.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(Error::Serve)?;
    let router = app(gateway.clone(), http_metrics);
    tracing::info!(%addr, topic = %args.kafka.topic, secrets = secrets.len(), "gateway listening");

    let task = tokio::spawn(async move {
        let stopping = shutdown.clone();
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                stopping.cancelled().await;
                readiness.set("shutdown", Err("shutting down".into()));
            })
            .await
            .map_err(Error::Serve);
        // Whatever ended the server, stop the other tasks too.
        shutdown.cancel();
        flush(producer).await;
        served
    });
    Ok(RunningGateway {
        addr,
        admin_addr: admin.local_addr,
        gateway,
        task,
    })
}

/// With a database, starts the spend view the limits read from, refreshed in the background.
async fn start_spend_cache(
    args: &GatewayArgs,
    policy: &PolicyStore,
    metrics: &GatewayMetrics,
    shutdown: &CancellationToken,
) -> Result<Option<SpendCache>, Error> {
    let Some(url) = args.database_url.as_ref().map(ExposeSecret::expose_secret) else {
        if policy.current().needs_spend() {
            return Err(Error::NoDatabaseForLimits);
        }
        return Ok(None);
    };
    // Lazy: the gateway starts and answers (following on_spend_unknown) while Postgres is away.
    let store = Store::connect_lazy(url, 2).await?;
    spawn_policy_sync(
        store.clone(),
        policy.clone(),
        metrics.policy_reloads.clone(),
        args.spend.refresh_interval,
        shutdown.clone(),
    );
    let cache = SpendCache::new(args.spend.clone());
    let (refreshes, age, view) = (
        metrics.spend_refreshes.clone(),
        metrics.spend_age.clone(),
        cache.clone(),
    );
    cache.spawn_refresh(store, shutdown.clone(), move |result| {
        match result {
            Ok(()) => refreshes.with_label_values(&["ok"]).inc(),
            Err(err) => {
                refreshes.with_label_values(&["error"]).inc();
                tracing::warn!(error = %err, "cannot read card spend; limits use the last snapshot until it is stale");
            }
        }
        age.set(view.age().map_or(f64::INFINITY, |a| a.as_secs_f64()));
    });
    Ok(Some(cache))
}

/// Follows the policy admins save in the database: each new version is in force within one
/// interval, without a restart.
fn spawn_policy_sync(
    store: Store,
    policy: PolicyStore,
    reloads: prometheus::IntCounterVec,
    every: Duration,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A version found invalid is reported once, not every interval.
        let mut rejected = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let saved = match store.stored_policy().await {
                Ok(saved) => saved,
                // Unreachable database: keep the policy in force; the spend view reports it.
                Err(_) => continue,
            };
            let version = saved.as_ref().map(|s| s.version);
            if version == policy.saved_version() || (version.is_some() && version == rejected) {
                continue;
            }
            match saved {
                None => policy.set_saved(None),
                Some(saved) => {
                    match serde_json::from_value::<cardstream_policy::Policy>(saved.policy)
                        .map_err(|e| e.to_string())
                        .and_then(|p| p.validate().map(|()| p).map_err(|e| e.to_string()))
                    {
                        Ok(parsed) => {
                            policy.set_saved(Some((saved.version, parsed)));
                            reloads.with_label_values(&["saved"]).inc();
                            tracing::info!(version = saved.version, by = ?saved.updated_by, "applied the authorization policy saved by an admin");
                        }
                        Err(err) => {
                            rejected = Some(saved.version);
                            reloads.with_label_values(&["invalid"]).inc();
                            tracing::error!(version = saved.version, error = %err, "the saved policy is invalid; keeping the one in force");
                        }
                    }
                }
            }
        }
    });
}

fn spawn_broker_probe(producer: EventProducer, readiness: Readiness, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(BROKER_PROBE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut was_ready = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let state = producer
                .probe(BROKER_PROBE_INTERVAL)
                .await
                .map_err(|e| e.to_string());
            if was_ready != Some(state.is_ok()) {
                match &state {
                    Ok(()) => tracing::info!("broker reachable; ready"),
                    Err(err) => tracing::warn!(error = %err, "broker unreachable; not ready"),
                }
                was_ready = Some(state.is_ok());
            }
            readiness.set("broker", state);
        }
    });
}

async fn flush(producer: EventProducer) {
    let in_flight = producer.in_flight();
    if in_flight == 0 {
        return;
    }
    tracing::info!(in_flight, "flushing the producer");
    let result = tokio::task::spawn_blocking(move || {
        let result = producer.flush(SHUTDOWN_FLUSH);
        (result, producer.in_flight())
    })
    .await;
    match result {
        Ok((Ok(()), _)) => tracing::info!("producer flushed"),
        Ok((Err(err), left)) => {
            tracing::error!(error = %err, left, "producer flush incomplete; those records were not acknowledged")
        }
        Err(err) => tracing::error!(error = %err, "producer flush task failed"),
    }
}
