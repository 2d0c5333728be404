use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use cardstream_kafka::OutgoingEvent;
use cardstream_stripe::types;
use serde_json::json;

use crate::app::{EVENTS_ROUTE, Gateway, now_millis};
use crate::authorization;
use crate::error::WebhookError;

/// `POST /webhooks/stripe`: verify, produce the raw body, and answer 200 only once the broker
/// acknowledged it. Anything short of that is a 4xx (Stripe's request is wrong) or a 503
/// (cardstream could not store it; Stripe retries for up to three days). The exception is an
/// `issuing_authorization.request`, answered with its decision as on the authorization route
/// (see `authorization::answer_request`).
pub(crate) async fn receive(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    // Taking the request whole (not a `HeaderMap` extractor) avoids copying the headers.
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    match accept(&gateway, headers, body).await {
        Ok(response) => response,
        Err(err) => gateway.reject(EVENTS_ROUTE, err),
    }
}

async fn accept(
    gateway: &Gateway,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, WebhookError> {
    let received_at_ms = now_millis();
    let (bytes, event) = gateway.authenticate(headers, body, received_at_ms).await?;
    if event.kind == types::AUTHORIZATION_REQUEST {
        // Stripe reads this answer as the decision: a plain `{"received": true}` would be
        // no approval at all.
        return authorization::answer_request(gateway, &bytes, &event, received_at_ms).await;
    }
    let key = event.partition_key();
    let outgoing = OutgoingEvent {
        key: &key,
        payload: &bytes,
        event_id: &event.id,
        event_type: &event.kind,
        created: event.created,
        received_at_ms,
    };
    let started = Instant::now();
    let delivery = gateway
        .producer
        .send(&outgoing, gateway.produce_timeout)
        .await
        .map_err(|err| {
            gateway
                .metrics
                .produce_failures
                .with_label_values(&["webhook", err.reason()])
                .inc();
            WebhookError::BrokerUnavailable(err)
        })?;
    gateway
        .metrics
        .produce_duration
        .observe(started.elapsed().as_secs_f64());
    gateway.metrics.events_accepted.inc();
    tracing::debug!(
        event_id = %event.id,
        event_type = %event.kind,
        partition = delivery.partition,
        offset = delivery.offset,
        "event stored"
    );
    Ok(Json(json!({"received": true})).into_response())
}
