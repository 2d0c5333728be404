//! What every cardstream component shares: logging, one Prometheus registry per process, the
//! admin endpoints (`/healthz`, `/readyz`, `/metrics`) on their own port, HTTP metrics by
//! route, and graceful shutdown.

mod admin_server;
mod http_metrics;
mod logging;
mod progress;
mod serve;
mod shutdown;
mod status_args;

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
/// The build a process runs, as `cardstream_build_info` in `registry` names it
/// (`0.1.0 (3f2c1a9b0d4e)`), or this crate's version when the registry has none.
pub fn build_version(registry: &Registry) -> String {
    let labels = registry
        .gather()
        .into_iter()
        .find(|f| f.name() == "cardstream_build_info")
        .and_then(|f| f.get_metric().first().cloned())
        .map(|m| m.get_label().to_vec())
        .unwrap_or_default();
    let label = |name: &str| {
        labels
            .iter()
            .find(|l| l.name() == name)
            .map(|l| l.value().to_owned())
    };
    match (label("version"), label("revision")) {
        (Some(version), Some(revision)) => format!("{version} ({revision})"),
        _ => env!("CARGO_PKG_VERSION").to_owned(),
    }
}

pub use http_metrics::HttpMetrics;
pub use logging::{LogFormat, init_logging};
pub use progress::Progress;
pub use prometheus::Registry;
pub use serve::{ServeArgs, serve};
pub use shutdown::{cancel_on_signal, shutdown_signal};
pub use status_args::{StatusArgs, non_zero_duration};
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_build_version_is_read_from_the_build_info() {
        let registry = Registry::new();
        assert_eq!(build_version(&registry), env!("CARGO_PKG_VERSION"));
        register_build_info(&registry, "9.8.7", "abc123def456").unwrap();
        assert_eq!(build_version(&registry), "9.8.7 (abc123def456)");
    }
}
