use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cardstream_stripe::SignatureError;
use serde_json::json;

/// Why a webhook was not accepted. Each variant knows its status and a stable `code`; the JSON
/// body is `{"error": {"code", "message"}}`. Messages describe the caller's input; internal
/// failures are logged, never echoed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("the body is larger than the {limit}-byte limit")]
    BodyTooLarge { limit: usize },
    #[error("the body did not arrive within {after:?}")]
    BodyTimeout { after: std::time::Duration },
    #[error("the body could not be read to the end: {0}")]
    BodyUnreadable(String),
    #[error("{0}")]
    NotJson(String),
    #[error("{0}")]
    NotAnEvent(String),
    #[error(
        "signed with a Connect endpoint secret but carries no `account`: a Connect endpoint's \
         events are connected accounts' (the platform's own come through the account endpoint)"
    )]
    ConnectEventWithoutAccount,
    #[error(
        "signed with a Connect endpoint secret but its `account` is not an account id (acct_…): {0}"
    )]
    ConnectEventBadAccount(String),
    #[error(
        "signed with the account endpoint's secret but carries `account` {0}: a connected \
         account's events come through the Connect endpoint, signed with its secret"
    )]
    AccountEventWithAccount(String),
    #[error("this endpoint takes {expected} events, not {got}")]
    WrongEventType { expected: &'static str, got: String },
    #[error("the event could not be stored durably in time; retry later")]
    BrokerUnavailable(#[source] cardstream_kafka::Error),
    #[error("the gateway is serving as many {what} as it takes at once; retry shortly")]
    Overloaded {
        what: &'static str,
        /// The shed metric's label.
        reason: &'static str,
    },
}

impl WebhookError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebhookError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            WebhookError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            WebhookError::BrokerUnavailable(_) | WebhookError::Overloaded { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// Stable, machine-readable; also the `reason` label of the rejection metric.
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::Signature(e) => e.code(),
            WebhookError::BodyTooLarge { .. } => "body_too_large",
            WebhookError::BodyTimeout { .. } => "body_timeout",
            WebhookError::BodyUnreadable(_) => "body_unreadable",
            WebhookError::NotJson(_) => "body_not_json",
            WebhookError::NotAnEvent(_) => "not_a_stripe_event",
            WebhookError::ConnectEventWithoutAccount => "connect_event_without_account",
            WebhookError::ConnectEventBadAccount(_) => "connect_event_bad_account",
            WebhookError::AccountEventWithAccount(_) => "account_event_with_account",
            WebhookError::WrongEventType { .. } => "wrong_event_type",
            WebhookError::BrokerUnavailable(_) => "broker_unavailable",
            WebhookError::Overloaded { .. } => "overloaded",
        }
    }
}

impl From<cardstream_stripe::Error> for WebhookError {
    fn from(err: cardstream_stripe::Error) -> Self {
        match err {
            cardstream_stripe::Error::NotJson(_) => WebhookError::NotJson(err.to_string()),
            other => WebhookError::NotAnEvent(other.to_string()),
        }
    }
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code(), "message": self.to_string()}});
        let mut response = (self.status(), Json(body)).into_response();
        if let WebhookError::Overloaded { .. } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
