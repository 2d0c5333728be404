//! Dead letters for the platform's admins: what the aggregator could not fold, why, whether
//! it was written back (`cardstream dlq redrive`), and asking for it to be: the API has no
//! Kafka producer, so it records the request and an aggregator writes the record back.

use async_graphql::{Context, ID, InputObject, Object, ResultExt, SimpleObject};
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
    /// Asked for in the console and not yet written back (an aggregator does so within
    /// seconds).
    pub redrive_requested_at: Option<DateTime>,
    pub redrive_requested_by: Option<String>,
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
            redrive_requested_at: l.redrive_requested_at.map(DateTime),
            redrive_requested_by: l.redrive_requested_by,
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

/// Most dead letters one redrive asks for.
pub const MAX_REDRIVE: usize = 500;

#[derive(InputObject)]
pub struct RedriveDeadLettersInput {
    /// The dead letters to write back (redriven before or not).
    pub dead_letter_ids: Vec<ID>,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject)]
pub struct RedriveDeadLettersPayload {
    /// Those asked for, newest first, with who asked.
    pub dead_letters: Vec<DeadLetterObject>,
    pub client_mutation_id: Option<String>,
}

/// The mutations on dead letters.
#[derive(Default)]
pub struct DeadLetterMutation;

#[Object]
impl DeadLetterMutation {
    /// Platform admin: asks an aggregator to write these dead letters back to the main topic
    /// (within seconds), recorded with who asked; once the cause is fixed, they fold, and one
    /// whose event is already stored changes nothing. NOT_FOUND when an id is not a dead letter.
    async fn redrive_dead_letters(
        &self,
        ctx: &Context<'_>,
        input: RedriveDeadLettersInput,
    ) -> async_graphql::Result<RedriveDeadLettersPayload> {
        async {
            let viewer = platform_admin(ctx).await?;
            if input.dead_letter_ids.is_empty() || input.dead_letter_ids.len() > MAX_REDRIVE {
                return Err(ApiError::BadUserInput(format!(
                    "deadLetterIds must name 1 to {MAX_REDRIVE} dead letters"
                )));
            }
            let ids = input
                .dead_letter_ids
                .iter()
                .map(|id| id.parse::<i64>().map_err(|_| ApiError::NotFound("dead letter")))
                .collect::<Result<Vec<i64>, _>>()?;
            let asked = store(ctx).request_redrive(&ids, &viewer.user.email).await?;
            tracing::info!(count = asked.len(), by = %viewer.user.email, "dead letters' redrive asked for");
            Ok(RedriveDeadLettersPayload {
                dead_letters: asked.into_iter().map(DeadLetterObject::from).collect(),
                client_mutation_id: input.client_mutation_id,
            })
        }
        .await
        .extend()
    }
}
