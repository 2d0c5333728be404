//! What every cardstream component shares: logging, one Prometheus registry per process, the
//! admin endpoints (`/healthz`, `/readyz`, `/metrics`) on their own port, HTTP metrics by
//! route, and graceful shutdown.

mod admin_server;
mod http_metrics;
mod logging;
mod progress;
mod serve;
mod shutdown;

pub use admin_server::{AdminArgs, AdminServer, Readiness, admin_router};

/// A fresh registry for one process, with process metrics (RSS, CPU) already in it.
pub fn registry() -> Result<Registry, Error> {
    let registry = Registry::new();
    admin_server::register_process_metrics(&registry)?;
    Ok(registry)
}

/// `cardstream_build_info{version, revision} 1`, the convention for telling which build a
/// process runs (join it on `instance` to label other series with the version).
pub fn register_build_info(
    registry: &Registry,
    version: &str,
    revision: &str,
) -> Result<(), Error> {
    let info = prometheus::IntGaugeVec::new(
        prometheus::Opts::new(
            "cardstream_build_info",
            "Always 1; the labels name the running build's version and revision.",
        ),
        &["version", "revision"],
    )?;
    info.with_label_values(&[version, revision]).set(1);
    registry.register(Box::new(info))?;
    Ok(())
}
pub use http_metrics::HttpMetrics;
pub use logging::{LogFormat, init_logging};
pub use progress::Progress;
pub use prometheus::Registry;
pub use serve::{ServeArgs, serve};
pub use shutdown::{cancel_on_signal, shutdown_signal};
pub use tokio_util::sync::CancellationToken;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not register metric: {0}")]
    Metric(#[from] prometheus::Error),
    #[error("could not bind the admin listener on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("the admin server failed: {0}")]
    Serve(std::io::Error),
}
