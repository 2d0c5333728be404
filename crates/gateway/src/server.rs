use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::http::HeaderValue;
use cardstream_kafka::{ClientStats, EventProducer, ProducerTuning};
use cardstream_policy::{PolicyStore, StoredPolicy};
use cardstream_store::{ComponentState, Reporter, Store};
use cardstream_telemetry::{
    AdminServer, CancellationToken, HttpMetrics, Readiness, Registry, serve,
};
use secrecy::ExposeSecret;

use crate::ledger::{LedgerMode, SpendLedger};
use crate::replays::{self, Answered};
use crate::rotation;
use crate::shed::Capacity;
use crate::spend::SpendCache;
use crate::{Error, Gateway, GatewayArgs, GatewayMetrics, Verifiers, app};

/// How often the broker is probed for `/readyz`.
const BROKER_PROBE_INTERVAL: Duration = Duration::from_secs(2);

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

/// Starts the gateway and its admin endpoints. When `shutdown` is cancelled it drains (not
/// ready, still serving for `--shutdown-delay`), then stops accepting, finishes in-flight
/// requests and flushes the producer, within `--shutdown-timeout`.
pub async fn start(
    args: GatewayArgs,
    registry: Registry,
    shutdown: CancellationToken,
) -> Result<RunningGateway, Error> {
    // The gateway's own tasks (policy and spend refreshes, the broker probe, the admin
    // endpoints) keep running through the drain, until the server has stopped.
    let stopped = CancellationToken::new();
    let secrets = args.secrets.load()?;
    let verifiers = Arc::new(ArcSwap::from_pointee(Verifiers::new(
        &secrets,
        args.signature_tolerance.as_secs(),
    )?));
    let metrics = GatewayMetrics::new(&registry)?;
    rotation::watch(
        args.secrets.clone(),
        args.signature_tolerance,
        verifiers.clone(),
        metrics.secret_reloads.clone(),
        stopped.clone(),
    );
    let http_metrics = HttpMetrics::new(&registry)?;

    let policy = PolicyStore::new(args.policy.resolve()?);
    let reloads = metrics.policy_reloads.clone();
    policy.watch(args.policy.clone(), stopped.clone(), move |result| {
        let outcome = if result.is_ok() { "ok" } else { "invalid" };
        reloads.with_label_values(&[outcome]).inc();
    });

    let producer = EventProducer::with_stats(
        &args.kafka,
        ProducerTuning {
            linger: args.kafka_linger,
            delivery_timeout: args.produce_timeout,
        },
        ClientStats::register(&registry)?,
    )?;
    let producer = match args.record_keys.load()? {
        Some(keys) => producer.signing(keys),
        None => {
            tracing::warn!(
                "no record keys (CARDSTREAM_RECORD_KEYS): records are written unsigned, and aggregators that check them will dead-letter them"
            );
            producer
        }
    };
    let stripe_version = HeaderValue::from_str(&args.stripe_version)
        .map_err(|_| Error::StripeVersion(args.stripe_version.clone()))?;

    let (spend, ledger) = start_spend(&args, &policy, &metrics, &registry, &stopped).await?;
    start_catch_up(&args, &producer, &registry, &stopped).await?;
    let gateway = Arc::new(Gateway {
        verifiers,
        producer: producer.clone(),
        policy,
        spend,
        ledger,
        metrics,
        body_limit: args.body_limit,
        produce_timeout: args.produce_timeout,
        body_timeout: args.body_timeout,
        stripe_version,
        capacity: Capacity::new(args.max_concurrent_requests.get(), args.max_large_bodies),
        answered: Answered::new(args.signature_tolerance, replays::CAPACITY),
    });

    let readiness = Readiness::new();
    readiness.require("broker");
    spawn_broker_probe(producer.clone(), readiness.clone(), stopped.clone());
    start_status(&args, &registry, &gateway.metrics, &readiness, &stopped).await?;
    let admin = AdminServer::spawn(
        args.admin.listen,
        registry,
        readiness.clone(),
        stopped.clone(),
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
    tracing::info!(
        %addr,
        topic = %args.kafka.topic,
        secrets = secrets.account.len(),
        connect_secrets = secrets.connect.len(),
        "gateway listening"
    );

    let serving = args.serve.clone();
    let task = tokio::spawn(async move {
        let finish_by = serve(listener, router, &serving, shutdown, readiness).await;
        flush(producer, finish_by).await;
        stopped.cancel();
        Ok(())
    });
    Ok(RunningGateway {
        addr,
        admin_addr: admin.local_addr,
        gateway,
        task,
    })
}

/// How the limits learn a card's spend: with a database, the shared ledger (or, with
/// `--spend-ledger local`, a snapshot refreshed in the background); without one, never.
async fn start_spend(
    args: &GatewayArgs,
    policy: &PolicyStore,
    metrics: &GatewayMetrics,
    registry: &Registry,
    shutdown: &CancellationToken,
) -> Result<(Option<SpendCache>, Option<SpendLedger>), Error> {
    let Some(url) = args.database_url.as_ref().map(ExposeSecret::expose_secret) else {
        if policy.current().needs_spend() {
            return Err(Error::NoDatabaseForLimits);
        }
        tracing::warn!(
            "no CARDSTREAM_DATABASE_URL: the policy admins save in the dashboard is not followed, \
             only the policy file and settings apply (and spend limits cannot be used)"
        );
        return Ok((None, None));
    };
    // Lazy: the gateway starts and answers (following on_spend_unknown) while Postgres is away.
    let connections = match args.ledger.mode {
        LedgerMode::Shared => args.ledger.connections,
        LedgerMode::Local => 2,
    };
    let store = Store::connect_lazy(url, connections, args.database_timeouts).await?;
    store.register_pool_metrics(connections, registry)?;
    spawn_policy_sync(
        store.clone(),
        policy.clone(),
        metrics.policy_reloads.clone(),
        args.spend.refresh_interval,
        shutdown.clone(),
    );
    if args.ledger.mode == LedgerMode::Shared {
        // Nothing is held in memory: the snapshot's age is not a thing to alert on.
        metrics.spend_age.set(0.0);
        return Ok((None, Some(SpendLedger::new(store, &args.ledger, registry)?)));
    }
    tracing::info!(
        "spend limits counted in this process (--spend-ledger local): right only while this \
         is the one gateway replica answering authorizations"
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
    Ok((Some(cache), None))
}

/// With a database, reports this process to the admin console's health page: readiness,
/// version, the last webhook's time, and the webhooks and refusals counted per minute. Its own
/// pool of one connection, so a busy ledger never delays it (nor it the ledger).
async fn start_status(
    args: &GatewayArgs,
    registry: &Registry,
    metrics: &GatewayMetrics,
    readiness: &Readiness,
    stopped: &CancellationToken,
) -> Result<(), Error> {
    let Some(url) = args.database_url.as_ref().map(ExposeSecret::expose_secret) else {
        return Ok(());
    };
    let store = Store::connect_lazy(url, 1, args.database_timeouts).await?;
    let version = cardstream_telemetry::build_version(registry);
    let (readiness, last) = (readiness.clone(), metrics.last_webhook_ms.clone());
    let state = move || {
        let last = last.load(std::sync::atomic::Ordering::Relaxed);
        ComponentState {
            ready: readiness.check(),
            details: serde_json::json!({
                "last_webhook_at": (last > 0).then_some(last as f64 / 1000.0),
            }),
        }
    };
    Reporter::new("gateway", version, args.status.every).spawn(
        store,
        metrics.tally.clone(),
        state,
        stopped.clone().cancelled_owned(),
    );
    Ok(())
}

/// With `--catch-up-interval`, recovers events whose webhooks never arrived (see
/// `cardstream_sync`). Its own small pool: a round holds one connection for its lock.
async fn start_catch_up(
    args: &GatewayArgs,
    producer: &EventProducer,
    registry: &Registry,
    shutdown: &CancellationToken,
) -> Result<(), Error> {
    if args.catch_up.interval.is_none() {
        return Ok(());
    }
    let url = args
        .database_url
        .as_ref()
        .map(ExposeSecret::expose_secret)
        .ok_or(Error::NoDatabaseForCatchUp)?;
    let store = Store::connect_lazy(url, 2, args.database_timeouts).await?;
    cardstream_sync::spawn_catch_up_loop(
        args.catch_up.clone(),
        producer.clone(),
        store,
        cardstream_sync::CatchUpMetrics::register(registry)?,
        shutdown.clone(),
    )?;
    Ok(())
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
            let Some(row) = saved else {
                policy.set_saved(None);
                continue;
            };
            match StoredPolicy::parse(row.version, &row.policy, row.updated_by) {
                Ok(saved) => {
                    tracing::info!(version = saved.version, by = ?saved.updated_by, "applied the authorization policy saved by an admin");
                    policy.set_saved(Some((saved.version, saved.policy)));
                    reloads.with_label_values(&["saved"]).inc();
                }
                Err(err) => {
                    rejected = Some(row.version);
                    reloads.with_label_values(&["invalid"]).inc();
                    tracing::error!(error = %err, "keeping the authorization policy in force");
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

/// Waits, until `finish_by` at the latest, for queued records (background authorization
/// produces) to land.
async fn flush(producer: EventProducer, finish_by: Instant) {
    let in_flight = producer.in_flight();
    if in_flight == 0 {
        return;
    }
    tracing::info!(in_flight, "flushing the producer");
    let within = finish_by.saturating_duration_since(Instant::now());
    let result = tokio::task::spawn_blocking(move || {
        let result = producer.flush(within);
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
