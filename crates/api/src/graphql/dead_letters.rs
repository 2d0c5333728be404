//! Dead letters for the platform's admins: what the aggregator could not fold, why, and
//! whether it was written back (`cardstream dlq redrive`).

use async_graphql::{Context, ID, SimpleObject};
use cardstream_store::{DeadLetter, DeadLetterFilter};

use super::context::{platform_admin, store};
use super::errors::{ApiError, ApiResult};
use super::scalars::DateTime;

/// Most dead letters one query lists.
pub const MAX_DEAD_LETTERS: i32 = 200;

/// A record the aggregator could not fold.
#[derive(SimpleObject, Clone)]
#[graphql(name = "DeadLetter")]
pub struct DeadLetterObject {
    pub id: ID,
    /// A stable code: `unauthenticated`, `not_json`, `invalid_object`, `rejected_by_database`, …
    pub reason: String,
    pub error: String,
    pub source_topic: String,
    pub source_partition: i32,
    /// As a string: Kafka offsets exceed GraphQL's 32-bit Int.
    pub source_offset: String,
    /// From the gateway's headers, when the record has them.
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    /// The record's first 2,000 bytes, as text.
    pub payload_preview: String,
    pub dead_at: DateTime,
    pub redriven_at: Option<DateTime>,
    pub redriven_by: Option<String>,
    pub redrives: i32,
}

impl From<DeadLetter> for DeadLetterObject {
    fn from(l: DeadLetter) -> Self {
        let preview = &l.payload[..l.payload.len().min(2_000)];
        DeadLetterObject {
            id: ID(l.id.to_string()),
            reason: l.reason,
            error: l.error,
            source_topic: l.source_topic,
            source_partition: l.source_partition,
            source_offset: l.source_offset.to_string(),
            event_id: l.event_id,
            event_type: l.event_type,
            payload_preview: String::from_utf8_lossy(preview).into_owned(),
            dead_at: DateTime(l.dead_at),
            redriven_at: l.redriven_at.map(DateTime),
            redriven_by: l.redriven_by,
            redrives: l.redrives,
        }
    }
}

/// Dead letters, newest first: those of `reason` only when given, and those already redriven
/// only with `redriven`.
pub async fn dead_letters(
    ctx: &Context<'_>,
    reason: Option<String>,
    redriven: bool,
    first: i32,
) -> ApiResult<Vec<DeadLetterObject>> {
    platform_admin(ctx).await?;
    if !(1..=MAX_DEAD_LETTERS).contains(&first) {
        return Err(ApiError::BadUserInput(format!(
            "first must be between 1 and {MAX_DEAD_LETTERS}"
        )));
    }
    let filter = DeadLetterFilter {
        reason,
        redriven,
        limit: first.unsigned_abs(),
        ..Default::default()
    };
    let letters = store(ctx).dead_letters(&filter).await?;
    Ok(letters.into_iter().map(DeadLetterObject::from).collect())
}
