//! Names of the record headers the gateway attaches to every event, so that consumers can
//! route, deduplicate and measure without parsing the body.

/// Stripe's event id (`evt_…`), the idempotency key.
pub const EVENT_ID: &str = "stripe-event-id";
/// Stripe's event type, e.g. `issuing_authorization.created`.
pub const EVENT_TYPE: &str = "stripe-event-type";
/// The event's `created`, unix seconds, as decimal text.
pub const EVENT_CREATED: &str = "stripe-event-created";
/// When the gateway received the webhook, unix milliseconds, as decimal text; for freshness.
pub const RECEIVED_AT_MS: &str = "cardstream-received-at-ms";
