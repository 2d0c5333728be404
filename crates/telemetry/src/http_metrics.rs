use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use crate::Error;

/// Request counts and latency by route and status, for one component's HTTP server.
///
/// Routes are labelled by their matched pattern (`/webhooks/stripe`), never the raw path, so a
/// scanner probing random URLs cannot blow up the label set: unmatched requests share one label.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    /// Registers `cardstream_http_requests_total` and
    /// `cardstream_http_request_duration_seconds`.
    pub fn new(registry: &Registry) -> Result<Self, Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "cardstream_http_requests_total",
                "HTTP requests answered, by route pattern and status code.",
            ),
            &["route", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "cardstream_http_request_duration_seconds",
                "Time from request received to response ready, by route pattern.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0,
            ]),
            &["route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(HttpMetrics { requests, duration })
    }

    /// The middleware; install with `axum::middleware::from_fn_with_state(metrics, HttpMetrics::track)`.
    pub async fn track(
        State(metrics): State<HttpMetrics>,
        request: Request,
        next: Next,
    ) -> Response {
        let started = Instant::now();
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
        let response = next.run(request).await;
        metrics
            .requests
            .with_label_values(&[route.as_str(), response.status().as_str()])
            .inc();
        metrics
            .duration
            .with_label_values(&[route.as_str()])
            .observe(started.elapsed().as_secs_f64());
        response
    }
}
