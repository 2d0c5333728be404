//! The event log, for the platform's admins: stored events searched by id, type, object,
//! card and time, newest first, each with its raw JSON and the object it changed.

use async_graphql::{Context, ID, InputObject, Json, SimpleObject};
use cardstream_store::{EventFilter, StoredEvent};

use super::context::{platform_admin, store};
use super::errors::{ApiError, ApiResult};
use super::scalars::DateTime;

/// Most events one page lists.
pub const MAX_EVENTS: i32 = 100;

/// Which events to list; every field given must match.
#[derive(InputObject, Default)]
#[graphql(name = "EventSearchInput")]
pub struct EventSearch {
    /// An event id (`evt_…`).
    pub id: Option<String>,
    /// e.g. `issuing_authorization.created`.
    pub r#type: Option<String>,
    /// The id of the object the event carries (`iauth_…`, `ipi_…`, `ic_…`, …).
    pub object_id: Option<String>,
    /// The card the event is about (a card event's own id, else its object's card).
    pub card_id: Option<ID>,
    /// Stripe's `created`: from (included) and to (excluded).
    pub from: Option<DateTime>,
    pub to: Option<DateTime>,
}

/// The object an event carries, and whether cardstream's stored row is this event's version.
#[derive(SimpleObject)]
#[graphql(name = "EventSubject")]
pub struct EventObject {
    /// Stripe's `object`, e.g. `issuing.authorization`.
    pub kind: String,
    pub id: String,
    /// The event whose version of the object is stored now; none when cardstream keeps no
    /// such object, or has none with this id.
    pub current_version_event_id: Option<String>,
    /// Whether the stored row is this event's version (a later event has not replaced it).
    pub is_current: bool,
}

/// An event as the aggregator stored it.
#[derive(SimpleObject)]
#[graphql(name = "Event")]
pub struct EventEntry {
    pub id: ID,
    pub r#type: String,
    /// Stripe's `created`.
    pub created: DateTime,
    pub livemode: bool,
    pub api_version: Option<String>,
    /// The Connect account, for a connected account's event.
    pub account: Option<String>,
    pub card_id: Option<ID>,
    pub object: Option<EventObject>,
    /// Where the aggregator read it (a redelivery keeps its first position).
    pub topic: String,
    pub partition: i32,
    /// As a string: Kafka offsets exceed GraphQL's 32-bit Int.
    pub offset: String,
    pub ingested_at: DateTime,
    /// The event exactly as Stripe sent it.
    pub payload: Json<serde_json::Value>,
    /// Where the page after this event starts (pass as `after`).
    pub cursor: String,
}

impl From<StoredEvent> for EventEntry {
    fn from(e: StoredEvent) -> Self {
        let object = e
            .object_id
            .clone()
            .zip(e.object_kind.clone())
            .map(|(id, kind)| EventObject {
                kind,
                id,
                is_current: e.current_version.as_deref() == Some(e.event_id.as_str()),
                current_version_event_id: e.current_version.clone(),
            });
        EventEntry {
            cursor: format!("{}:{}", e.created, e.event_id),
            id: ID(e.event_id),
            r#type: e.event_type,
            created: DateTime(e.created),
            livemode: e.livemode,
            api_version: e.api_version,
            account: e.account,
            card_id: e.card_id.map(ID),
            object,
            topic: e.topic,
            partition: e.kafka_partition,
            offset: e.kafka_offset.to_string(),
            ingested_at: DateTime(e.ingested_at),
            payload: Json(e.payload),
        }
    }
}

/// The events matching `search`, newest first, after `after` (a cursor) when given.
pub async fn events(
    ctx: &Context<'_>,
    search: EventSearch,
    after: Option<String>,
    first: i32,
) -> ApiResult<Vec<EventEntry>> {
    platform_admin(ctx).await?;
    if !(1..=MAX_EVENTS).contains(&first) {
        return Err(ApiError::BadUserInput(format!(
            "first must be between 1 and {MAX_EVENTS}"
        )));
    }
    let after = after
        .map(|cursor| {
            cursor
                .split_once(':')
                .and_then(|(created, id)| Some((created.parse::<i64>().ok()?, id.to_owned())))
                .ok_or_else(|| ApiError::BadUserInput(format!("{cursor:?} is not an event cursor")))
        })
        .transpose()?;
    let filter = EventFilter {
        event_id: search.id,
        event_type: search.r#type,
        object_id: search.object_id,
        card_id: search.card_id.map(|c| c.0),
        from: search.from.map(|d| d.0),
        to: search.to.map(|d| d.0),
        after,
        limit: first.unsigned_abs(),
    };
    let events = store(ctx).events(&filter).await?;
    Ok(events.into_iter().map(EventEntry::from).collect())
}
