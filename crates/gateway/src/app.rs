use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use cardstream_kafka::EventProducer;
use cardstream_policy::PolicyStore;
use cardstream_stripe::Event;
use cardstream_telemetry::HttpMetrics;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::error::WebhookError;
use crate::ledger::SpendLedger;
use crate::metrics::GatewayMetrics;
use crate::replays::Answered;
use crate::shed::Capacity;
use crate::spend::SpendCache;
use crate::{Verifiers, authorization, endpoints, events, shed};

pub const EVENTS_ROUTE: &str = "/webhooks/stripe";
pub const AUTHORIZATION_ROUTE: &str = "/webhooks/stripe/authorization";

/// What the handlers share.
#[derive(Debug)]
pub struct Gateway {
    /// Swapped whole when a secrets file changes.
    pub verifiers: Arc<ArcSwap<Verifiers>>,
    pub producer: EventProducer,
    pub policy: PolicyStore,
    /// Card spend for the policy's limits in memory (`--spend-ledger local`); `None` without
    /// a database or with the shared ledger.
    pub spend: Option<SpendCache>,
    /// The shared ledger approvals are reserved in (`--spend-ledger shared`, the default with a
    /// database).
    pub ledger: Option<SpendLedger>,
    pub metrics: GatewayMetrics,
    pub body_limit: usize,
    pub produce_timeout: Duration,
    pub body_timeout: Duration,
    pub stripe_version: HeaderValue,
    pub(crate) capacity: Capacity,
    pub(crate) answered: Answered,
}

/// The public router. Tests call it without a socket.
pub fn app(gateway: Arc<Gateway>, http_metrics: HttpMetrics) -> Router {
    Router::new()
        .route(EVENTS_ROUTE, post(events::receive))
        .route(AUTHORIZATION_ROUTE, post(authorization::handle))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            gateway.clone(),
            shed::limit_requests,
        ))
        .with_state(gateway)
        .layer(axum::middleware::from_fn_with_state(
            http_metrics,
            HttpMetrics::track,
        ))
}

async fn not_found() -> Response {
    let body = serde_json::json!({"error": {
        "code": "not_found",
        "message": format!("no such endpoint; Stripe posts to {EVENTS_ROUTE} and {AUTHORIZATION_ROUTE}"),
    }});
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Gateway {
    /// Reads the body within the limit, verifies its signature on the raw bytes, then parses
    /// the envelope and checks that the event belongs to the endpoint whose secret signed it
    /// (see `endpoints`). In that order: nothing is parsed before it is authenticated.
    pub(crate) async fn authenticate(
        &self,
        headers: &HeaderMap,
        body: Body,
        received_at_ms: i64,
    ) -> Result<(Bytes, Event), WebhookError> {
        let bytes = self.read_body(headers, body).await?;
        let signature = headers.get("stripe-signature").map(HeaderValue::as_bytes);
        let verified =
            self.verifiers
                .load()
                .verify(signature, &bytes, received_at_ms.div_euclid(1000));
        let endpoint = match verified {
            Ok(endpoint) => endpoint,
            Err(err) => {
                self.metrics
                    .signature_failures
                    .with_label_values(&[err.code()])
                    .inc();
                return Err(err.into());
            }
        };
        let event = Event::parse(&bytes)?;
        endpoints::check(endpoint, event.account.as_deref())?;
        self.metrics.webhook_received(&event.kind, received_at_ms);
        Ok((bytes, event))
    }

    async fn read_body(&self, headers: &HeaderMap, body: Body) -> Result<Bytes, WebhookError> {
        let too_large = WebhookError::BodyTooLarge {
            limit: self.body_limit,
        };
        // Refuse a declared oversize body before reading a byte of it.
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.body_limit as u64) {
            return Err(too_large);
        }
        // Held until the body is read (or refused): see `shed`.
        let _permit = self.capacity.body(declared)?;
        let read = Limited::new(body, self.body_limit).collect();
        match tokio::time::timeout(self.body_timeout, read).await {
            Err(_) => Err(WebhookError::BodyTimeout {
                after: self.body_timeout,
            }),
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(err)) if err.downcast_ref::<LengthLimitError>().is_some() => Err(too_large),
            Ok(Err(err)) => Err(WebhookError::BodyUnreadable(err.to_string())),
        }
    }

    /// Counts and logs a refused webhook, and turns it into the response.
    pub(crate) fn reject(&self, route: &'static str, err: WebhookError) -> Response {
        self.metrics.webhook_refused(route, err.code());
        match &err {
            WebhookError::Overloaded { reason, .. } => {
                self.metrics.shed.with_label_values(&[reason]).inc();
                tracing::debug!(route, reason, "request shed");
            }
            WebhookError::BrokerUnavailable(source) => {
                tracing::error!(route, error = %source, "event not acknowledged by the broker; answering 503 so Stripe retries");
            }
            other => tracing::info!(route, code = other.code(), error = %other, "webhook refused"),
        }
        err.into_response()
    }
}
