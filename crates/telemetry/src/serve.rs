//! How the public listeners (the gateway's, the API's) serve HTTP: a bound on how long a
//! client may take to send its headers, and a shutdown that drains.
//!
//! When the stop is asked for, a server first reports itself not ready (`/readyz` answers 503)
//! while it keeps accepting and serving for `shutdown_delay`: a load balancer or a Kubernetes
//! Service takes a few seconds to stop routing to an endpoint, and a request it sends meanwhile
//! must find the port open. Then the server stops accepting, asks every connection to close
//! after its current request, and waits at most `shutdown_timeout` for them.

use std::net::SocketAddr;
use std::pin::pin;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::Readiness;

/// After a failed accept (typically out of file descriptors), wait this long before the next:
/// retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How a public listener serves and stops.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// After SIGTERM, how long the server keeps accepting and serving while `/readyz` answers
    /// 503, so that load balancers stop sending before the port closes.
    #[arg(
        long,
        env = "CARDSTREAM_SHUTDOWN_DELAY",
        default_value = "5s",
        value_parser = humantime::parse_duration
    )]
    pub shutdown_delay: Duration,

    /// Then, how long the requests in flight (and the work they started) get to finish. The
    /// process exits at the latest `shutdown-delay + shutdown-timeout` after SIGTERM.
    #[arg(
        long,
        env = "CARDSTREAM_SHUTDOWN_TIMEOUT",
        default_value = "10s",
        value_parser = humantime::parse_duration
    )]
    pub shutdown_timeout: Duration,

    /// Longest a client may take to send a request's headers, counted from the end of the
    /// previous request on a kept-alive connection (hyper has one timer for both); a slower
    /// connection is closed, so trickling clients cannot hold connections forever. Keep it
    /// above the idle timeout of the load balancer's pooled connections (60 s for AWS ALB and
    /// ingress-nginx), or it closes connections the balancer is about to reuse.
    #[arg(
        long,
        env = "CARDSTREAM_HEADER_READ_TIMEOUT",
        default_value = "65s",
        value_parser = humantime::parse_duration
    )]
    pub header_read_timeout: Duration,
}

impl Default for ServeArgs {
    fn default() -> Self {
        ServeArgs {
            shutdown_delay: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(65),
        }
    }
}

impl ServeArgs {
    /// The longest a stop may take from the signal: the drain, then the timeout.
    pub fn bound(&self) -> Duration {
        self.shutdown_delay + self.shutdown_timeout
    }
}

/// Serves `router` on `listener` until `stop` is cancelled, then drains as described above.
/// Handlers see the client's address as [`ConnectInfo<SocketAddr>`]. Returns the instant by
/// which the caller's own shutdown work (flushing, closing) should be done.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    args: &ServeArgs,
    stop: CancellationToken,
    readiness: Readiness,
) -> Instant {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(args.header_read_timeout);
    let close = CancellationToken::new();
    // Once the stop is asked for, every answer says `connection: close`, so that clients and
    // proxies holding kept-alive connections open new ones (to other replicas) instead.
    let stopping = stop.clone();
    let router = router.layer(axum::middleware::map_response(
        move |mut response: axum::response::Response| {
            let stopping = stopping.clone();
            async move {
                // (Not on a websocket's 101: its `connection: upgrade` must stand.)
                if stopping.is_cancelled()
                    && response.status() != axum::http::StatusCode::SWITCHING_PROTOCOLS
                {
                    response.headers_mut().insert(
                        axum::http::header::CONNECTION,
                        axum::http::HeaderValue::from_static("close"),
                    );
                }
                response
            }
        },
    ));
    // Every connection holds a sender; `recv` returns `None` once all of them are gone.
    let (open_tx, mut open_rx) = tokio::sync::mpsc::channel::<()>(1);

    let mut draining = pin!(async {
        stop.cancelled().await;
        readiness.set(
            "shutdown",
            Err(format!(
                "shutting down: serving for {:?} more",
                args.shutdown_delay
            )),
        );
        tracing::info!(delay = ?args.shutdown_delay, "stop asked: not ready, still serving while load balancers catch up");
        tokio::time::sleep(args.shutdown_delay).await;
    });
    loop {
        let (stream, remote) = tokio::select! {
            () = &mut draining => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            router.clone(),
            move |mut request: Request<Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(remote));
                request
            },
        ));
        let connection = http
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let (close, open) = (close.clone(), open_tx.clone());
        tokio::spawn(async move {
            let _open = open;
            let mut connection = pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(%remote, error = %err, "connection ended with an error");
                    }
                    return;
                }
                () = close.cancelled() => {}
            }
            // Finish the request in flight (if any), answer it with `connection: close`.
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        });
    }
    let finish_by = Instant::now() + args.shutdown_timeout;
    drop(listener);
    close.cancel();
    drop(open_tx);
    tracing::info!("stopped accepting; finishing the requests in flight");
    if tokio::time::timeout_at(finish_by.into(), open_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!(timeout = ?args.shutdown_timeout, "connections still busy at the shutdown timeout; they are dropped");
    }
    finish_by
}
