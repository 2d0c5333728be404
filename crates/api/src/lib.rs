//! `cardstream api`: the card-spend dashboard's GraphQL API.
//!
//! Cardholder users see only the cardholders linked to them; admins see all and edit users and
//! the authorization policy. Queries read the projections and rollups through sea-orm;
//! subscriptions are fed by the aggregator's NOTIFY.

mod auth;
mod config;
mod export;
mod graphql;
mod headers;
mod http;
mod live;
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;

use cardstream_store::Store;
use cardstream_telemetry::{
    AdminServer, CancellationToken, HttpMetrics, Readiness, Registry, serve,
};
use prometheus::{IntCounterVec, IntGauge, Opts};
use secrecy::ExposeSecret;

pub use auth::{BadProxyRange, Tokens, TrustedProxies, hash_password, verify_password};
pub use config::{ApiArgs, Introspection};
pub use graphql::{ApiSchema, OperationMetrics, QueryLimits, sdl};
pub use headers::CONTENT_SECURITY_POLICY;

/// The smallest token secret accepted.
const MIN_SECRET: usize = 32;

/// Errors that stop the API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("CARDSTREAM_TOKEN_SECRET must be at least {MIN_SECRET} bytes")]
    WeakSecret,
    #[error(transparent)]
    Store(#[from] cardstream_store::Error),
    #[error(transparent)]
    Telemetry(#[from] cardstream_telemetry::Error),
    #[error("could not register metric: {0}")]
    Metric(#[from] prometheus::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the API server failed: {0}")]
    Serve(std::io::Error),
}

/// A started API.
#[derive(Debug)]
pub struct RunningApi {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub store: Store,
    task: tokio::task::JoinHandle<Result<(), Error>>,
}

impl RunningApi {
    pub async fn wait(self) -> Result<(), Error> {
        self.task
            .await
            .map_err(|e| Error::Serve(std::io::Error::other(e)))?
    }
}

/// Starts the API and its admin endpoints; runs until `shutdown`. `extra` routes (the
/// dashboard's assets) are merged in.
pub async fn start(
    args: ApiArgs,
    registry: Registry,
    shutdown: CancellationToken,
    extra: axum::Router,
) -> Result<RunningApi, Error> {
    start_with(args, registry, shutdown, extra, None).await
}

/// [`start`], with GraphiQL's page (served at `GET /graphql` when `--graphiql` is on).
pub async fn start_with(
    args: ApiArgs,
    registry: Registry,
    shutdown: CancellationToken,
    extra: axum::Router,
    graphiql: Option<axum::body::Bytes>,
) -> Result<RunningApi, Error> {
    if args.token_secret.expose_secret().len() < MIN_SECRET {
        return Err(Error::WeakSecret);
    }
    // `shutdown` starts the drain; the API's own tasks (the live feed, the database probe, the
    // admin endpoints) keep running through it, until the server has stopped.
    let stopped = CancellationToken::new();
    let store = Store::connect_lazy(
        args.database.expose_url(),
        args.database_pool,
        args.database.timeouts,
    )
    .await?;
    store.register_pool_metrics(args.database_pool, &registry)?;
    let notifications = IntCounterVec::new(
        Opts::new(
            "cardstream_activity_notifications_total",
            "Activity notifications from Postgres, by outcome.",
        ),
        &["outcome"],
    )?;
    registry.register(Box::new(notifications.clone()))?;
    let listening = IntGauge::new(
        "cardstream_activity_subscriptions",
        "Activity subscriptions that have read their card's current state and wait for its changes.",
    )?;
    registry.register(Box::new(listening.clone()))?;
    let sessions = auth::Sessions::new(store.clone());
    let live = live::Live::start(
        args.database.expose_url().to_owned(),
        store.clone(),
        notifications,
        listening,
        sessions.clone(),
        stopped.clone(),
    );
    let tokens = Tokens::new(args.token_secret.expose_secret().as_bytes(), args.token_ttl);
    let schema = graphql::schema_builder(QueryLimits {
        depth: args.max_depth,
        complexity: args.max_complexity,
        max_page_size: args.max_page_size,
    })
    .extension(OperationMetrics::new(&registry)?)
    .data(store.clone())
    .data(tokens.clone())
    .data(sessions.clone())
    .data(graphql::InvitationTtl(args.invitation_ttl))
    .data(live)
    .data(graphql::ProgramReads::new(args.overview_shared_for))
    .data(
        auth::LoginLimiter::new(
            args.login_attempts_per_account,
            args.login_attempts_per_address,
            args.login_limiter_capacity.get(),
        )
        .with_gauge(&registry)?,
    )
    .data(auth::Passwords::new(
        args.password_hash_concurrency,
        &registry,
    )?)
    .finish();
    register_statement_count(store.clone(), &registry)?;
    let state = Arc::new(http::AppState {
        schema,
        store: store.clone(),
        tokens,
        sessions,
        batch_window: args.batch_window,
        introspection: args.introspection,
        graphiql: graphiql.filter(|_| args.graphiql),
        proxies: args.trusted_proxies.clone(),
    });
    let http_metrics = HttpMetrics::new(&registry)?;
    let router = http::routes(state)
        .merge(extra)
        .layer(axum::middleware::from_fn(headers::secure))
        .layer(axum::middleware::from_fn_with_state(
            http_metrics,
            HttpMetrics::track,
        ));

    let readiness = Readiness::new();
    readiness.require("database");
    spawn_database_probe(store.clone(), readiness.clone(), stopped.clone());
    // This process on the admin console's health page: its version and readiness.
    let ready = readiness.clone();
    cardstream_store::Reporter::new(
        "api",
        cardstream_telemetry::build_version(&registry),
        args.status.every,
    )
    .spawn(
        store.clone(),
        cardstream_store::Tally::new(),
        move || cardstream_store::ComponentState {
            ready: ready.check(),
            details: serde_json::json!({}),
        },
        stopped.clone().cancelled_owned(),
    );
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
    tracing::info!(%addr, "API listening (/graphql, /graphql/ws)");
    let serving = args.serve.clone();
    let task = tokio::spawn(async move {
        serve(listener, router, &serving, shutdown, readiness).await;
        stopped.cancel();
        Ok(())
    });
    Ok(RunningApi {
        addr,
        admin_addr: admin.local_addr,
        store,
        task,
    })
}

/// `cardstream_database_statements_total`: every statement the API sent to Postgres, read
/// from the store's own count when scraped, so the cost of a query can be seen from outside.
#[derive(Debug)]
struct StatementCount {
    store: Store,
    desc: prometheus::core::Desc,
}

const STATEMENTS: &str = "cardstream_database_statements_total";
const STATEMENTS_HELP: &str =
    "SQL statements the API sent to Postgres (reads, sign-ins, admin edits).";

impl prometheus::core::Collector for StatementCount {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        match prometheus::IntCounter::new(STATEMENTS, STATEMENTS_HELP) {
            Ok(counter) => {
                counter.inc_by(self.store.statements());
                counter.collect()
            }
            Err(_) => Vec::new(),
        }
    }
}

fn register_statement_count(store: Store, registry: &Registry) -> Result<(), Error> {
    let desc = prometheus::core::Desc::new(
        STATEMENTS.into(),
        STATEMENTS_HELP.into(),
        Vec::new(),
        Default::default(),
    )?;
    registry.register(Box::new(StatementCount { store, desc }))?;
    Ok(())
}

fn spawn_database_probe(store: Store, readiness: Readiness, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            readiness.set("database", store.ping().await.map_err(|e| e.to_string()));
        }
    });
}
