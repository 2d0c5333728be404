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

/// The gateway's MAC of the payload (`v1=<hex>`), checked by the aggregator: see `RecordKeys`.
pub const MAC: &str = "cardstream-mac";

/// On a record `cardstream dlq redrive` wrote back: the dead letter's id.
pub const REDRIVEN_FROM: &str = "cardstream-redriven-from";

/// On dead letters: why the record could not be folded (a stable code).
pub const DLQ_REASON: &str = "cardstream-dlq-reason";
/// On dead letters: the error, as text (at most 1,000 characters).
pub const DLQ_ERROR: &str = "cardstream-dlq-error";
/// On dead letters: where the record was read.
pub const DLQ_SOURCE_TOPIC: &str = "cardstream-source-topic";
pub const DLQ_SOURCE_PARTITION: &str = "cardstream-source-partition";
pub const DLQ_SOURCE_OFFSET: &str = "cardstream-source-offset";
