use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio_util::sync::CancellationToken;

use crate::Error;

/// The conditions a component needs before it should receive traffic, by name. `/readyz` is 200
/// only when every condition holds, and lists the ones that do not.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    conditions: Arc<Mutex<BTreeMap<&'static str, Result<(), String>>>>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a condition, initially unmet, so that a component is not ready before its
    /// first check has run.
    pub fn require(&self, name: &'static str) -> &Self {
        self.set(name, Err("not checked yet".to_owned()));
        self
    }

    pub fn set(&self, name: &'static str, state: Result<(), String>) {
        if let Ok(mut conditions) = self.conditions.lock() {
            conditions.insert(name, state);
        }
    }

    /// `Ok` when ready; otherwise one line per unmet condition.
    pub fn check(&self) -> Result<(), String> {
        let conditions = self
            .conditions
            .lock()
            .map_err(|_| "readiness state poisoned".to_owned())?;
        let unmet: Vec<String> = conditions
            .iter()
            .filter_map(|(name, state)| state.as_ref().err().map(|why| format!("{name}: {why}")))
            .collect();
        if unmet.is_empty() {
            Ok(())
        } else {
            Err(unmet.join("\n"))
        }
    }
}

#[derive(Clone)]
struct AdminState {
    registry: Registry,
    readiness: Readiness,
}

/// `/healthz` (the process is alive), `/readyz` (it should get traffic), `/metrics`.
pub fn admin_router(registry: Registry, readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(AdminState {
            registry,
            readiness,
        })
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    match state.readiness.check() {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(unmet) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready\n{unmet}\n"),
        ),
    }
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    let encoder = TextEncoder::new();
    let mut buffer = Vec::new();
    match encoder.encode(&state.registry.gather(), &mut buffer) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
            buffer,
        ),
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain".to_owned())],
            format!("could not encode metrics: {err}\n").into_bytes(),
        ),
    }
}

/// Where a component serves its admin endpoints; each component's settings flatten this, so
/// the flag, its variable and its default are the same everywhere (the chart, the operator and
/// the Compose file set the variable for all of them alike).
#[derive(clap::Args, Debug, Clone)]
pub struct AdminArgs {
    /// Address of the admin endpoints: /healthz, /readyz, /metrics.
    #[arg(
        id = "admin_listen",
        long = "admin-listen",
        env = "CARDSTREAM_ADMIN_LISTEN",
        default_value = "0.0.0.0:9090"
    )]
    pub listen: SocketAddr,
}

/// The admin endpoints served on their own port, so that scraping and probing never compete
/// with (or are exposed like) the public API.
#[derive(Debug)]
pub struct AdminServer {
    pub local_addr: SocketAddr,
    pub task: tokio::task::JoinHandle<Result<(), Error>>,
}

impl AdminServer {
    pub async fn spawn(
        addr: SocketAddr,
        registry: Registry,
        readiness: Readiness,
        shutdown: CancellationToken,
    ) -> Result<AdminServer, Error> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let local_addr = listener.local_addr().map_err(Error::Serve)?;
        let app = admin_router(registry, readiness);
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
                .map_err(Error::Serve)
        });
        tracing::info!(%local_addr, "admin endpoints listening (/healthz, /readyz, /metrics)");
        Ok(AdminServer { local_addr, task })
    }
}

/// Registers process metrics (RSS, CPU, open files) where the platform has them.
pub(crate) fn register_process_metrics(registry: &Registry) -> Result<(), Error> {
    #[cfg(target_os = "linux")]
    registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))?;
    let _ = registry;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(app: &Router, path: &str) -> (StatusCode, String) {
        let response = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[derive(clap::Parser)]
    struct Component {
        #[command(flatten)]
        admin: AdminArgs,
    }

    #[test]
    fn the_admin_address_has_one_flag_variable_and_default() {
        use clap::{CommandFactory, Parser};
        let parsed = Component::try_parse_from(["component"]).unwrap();
        assert_eq!(parsed.admin.listen, SocketAddr::from(([0, 0, 0, 0], 9090)));
        let parsed =
            Component::try_parse_from(["component", "--admin-listen", "127.0.0.1:0"]).unwrap();
        assert_eq!(parsed.admin.listen, SocketAddr::from(([127, 0, 0, 1], 0)));
        let command = Component::command();
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some("admin-listen"))
            .unwrap();
        assert_eq!(
            arg.get_env().and_then(|e| e.to_str()),
            Some("CARDSTREAM_ADMIN_LISTEN")
        );
    }

    #[tokio::test]
    async fn readyz_lists_unmet_conditions() {
        let readiness = Readiness::new();
        readiness.require("broker");
        let app = admin_router(Registry::new(), readiness.clone());
        let (status, body) = get(&app, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("broker: not checked yet"), "{body}");
        readiness.set("broker", Ok(()));
        assert_eq!(get(&app, "/readyz").await.0, StatusCode::OK);
        assert_eq!(get(&app, "/healthz").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn metrics_are_exposed_in_text_format() {
        let registry = Registry::new();
        let counter = prometheus::IntCounter::new("cardstream_test_total", "a test").unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        counter.inc();
        let (status, body) = get(&admin_router(registry, Readiness::new()), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("cardstream_test_total 1"), "{body}");
    }
}
