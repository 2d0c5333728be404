use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cardstream_kafka::{OutgoingEvent, await_delivery};
use cardstream_policy::{Decision, NoSpendData, Request, decide};
use cardstream_stripe::{Event, Object, types};
use serde_json::json;

use crate::app::{AUTHORIZATION_ROUTE, Gateway, now_millis};
use crate::error::WebhookError;
use crate::ledger::RequestEvent;
use crate::replays::Answer;

static STRIPE_VERSION: HeaderName = HeaderName::from_static("stripe-version");

/// `POST /webhooks/stripe/authorization`: Stripe waits at most 2 s for this answer, so the
/// decision is taken from memory and, when a spend limit applies, one bounded reservation in
/// the shared ledger (see `ledger`), and returned at once. The request event still goes to the
/// topic, but in the background: a slow or absent broker costs a counted, logged failure,
/// never a late answer.
pub(crate) async fn handle(
    State(gateway): State<Arc<Gateway>>,
    request: axum::extract::Request,
) -> Response {
    // Taking the request whole (not a `HeaderMap` extractor) avoids copying the headers.
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    match answer(&gateway, headers, body).await {
        Ok(response) => response,
        Err(err) => gateway.reject(AUTHORIZATION_ROUTE, err),
    }
}

async fn answer(
    gateway: &Gateway,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, WebhookError> {
    let received_at_ms = now_millis();
    let (bytes, event) = gateway.authenticate(headers, body, received_at_ms).await?;
    answer_request(gateway, &bytes, &event, received_at_ms).await
}

/// Decides an authenticated `issuing_authorization.request` and answers it as Stripe reads an
/// answer (`{"approved": …}` with the `Stripe-Version` header). Stripe sends these to the
/// dedicated authorization endpoint, but also to an ordinary webhook endpoint that has the event
/// type enabled (and `stripe listen --forward-to` forwards everything to one URL), so the
/// webhook route answers them through here too: both URLs give the same answer, counted once.
pub(crate) async fn answer_request(
    gateway: &Gateway,
    bytes: &Bytes,
    event: &Event,
    received_at_ms: i64,
) -> Result<Response, WebhookError> {
    if event.kind != types::AUTHORIZATION_REQUEST {
        return Err(WebhookError::WrongEventType {
            expected: types::AUTHORIZATION_REQUEST,
            got: event.kind.chars().take(100).collect(),
        });
    }
    let Object::Authorization(authorization) = event.object()? else {
        return Err(WebhookError::NotAnEvent(
            "the event's object is not an issuing.authorization".into(),
        ));
    };
    let request = Request::from(&*authorization);
    let answer = match &gateway.ledger {
        Some(ledger) => match gateway.answered.given(&event.id) {
            Some(decision) => Answer::Replayed(decision),
            None => {
                let policy = gateway.policy.current();
                let requested = RequestEvent {
                    event_id: &event.id,
                    authorization_id: &authorization.id,
                    created: event.created,
                };
                let decision = ledger.decide(&policy, &request, requested).await;
                gateway.answered.remember(&event.id, decision)
            }
        },
        None => gateway.answered.answer(&event.id, || {
            let decision = match &gateway.spend {
                Some(cache) => decide(&gateway.policy.current(), &request, cache),
                None => decide(&gateway.policy.current(), &request, &NoSpendData),
            };
            if let (true, Some(cache)) = (decision.approved, &gateway.spend) {
                // Count it now: the hold reaches Postgres only after the aggregator folds it.
                // A partial approval holds what it approved, not what was asked.
                cache.record_approval(request.card_id, decision.held(request.amount));
            }
            decision
        }),
    };
    let decision = match answer {
        Answer::New(decision) => decision,
        Answer::Replayed(decision) => {
            gateway.metrics.authorization_replays.inc();
            // Counted; a debug line only, so that a replayed request cannot flood the logs.
            tracing::debug!(event_id = %event.id, authorization = %authorization.id, "authorization request replayed; answered as before, not counted again");
            return Ok(decision_response(gateway, decision));
        }
    };
    gateway.metrics.record_decision(&decision);
    tracing::debug!(
        authorization = %authorization.id,
        approved = decision.approved,
        reason = decision.reason.as_str(),
        "authorization decided"
    );

    let outgoing = OutgoingEvent {
        key: authorization.card_id(),
        payload: bytes,
        event_id: &event.id,
        event_type: &event.kind,
        created: event.created,
        received_at_ms,
    };
    produce_in_background(gateway, &outgoing);
    Ok(decision_response(gateway, decision))
}

fn decision_response(gateway: &Gateway, decision: Decision) -> Response {
    let mut body = json!({
        "approved": decision.approved,
        "metadata": {"cardstream_reason": decision.reason.as_str()},
    });
    if let Some(amount) = decision.amount {
        // Stripe's field for a partial approval: the amount to hold, in minor units.
        body["amount"] = amount.into();
    }
    (
        [(STRIPE_VERSION.clone(), gateway.stripe_version.clone())],
        Json(body),
    )
        .into_response()
}

/// Hands the record to the producer's queue (never blocks) and watches its delivery from a
/// separate task.
fn produce_in_background(gateway: &Gateway, outgoing: &OutgoingEvent<'_>) {
    let metrics = gateway.metrics.clone();
    let event_id = outgoing.event_id.to_owned();
    let fail = move |metrics: &crate::metrics::GatewayMetrics, err: cardstream_kafka::Error| {
        metrics
            .produce_failures
            .with_label_values(&["authorization", err.reason()])
            .inc();
        tracing::warn!(%event_id, error = %err, "authorization request answered but not stored in Kafka; the issuing_authorization.created event will still arrive");
    };
    match gateway.producer.enqueue(outgoing) {
        Err(err) => fail(&metrics, err),
        Ok(delivery) => {
            let timeout = gateway.producer.delivery_timeout();
            metrics.background_in_flight.inc();
            tokio::spawn(async move {
                let started = Instant::now();
                let result = await_delivery(delivery, timeout).await;
                metrics.background_in_flight.dec();
                match result {
                    Ok(_) => metrics
                        .produce_duration
                        .observe(started.elapsed().as_secs_f64()),
                    Err(err) => fail(&metrics, err),
                }
            });
        }
    }
}
