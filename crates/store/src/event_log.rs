//! The admin's event log: stored events searched by id, type, object, card and time, newest
//! first, with the raw payload and whether the object's stored row is still this event's
//! version (migration 0018).

use serde_json::Value;

use crate::{Error, Store};

/// Which events to list; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub object_id: Option<String>,
    pub card_id: Option<String>,
    /// Stripe's `created`, unix seconds: from (included) and to (excluded).
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Events older than this `(created, event id)`: the previous page's last.
    pub after: Option<(i64, String)>,
    pub limit: u32,
}

/// A stored event, as the aggregator stored it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredEvent {
    pub event_id: String,
    pub event_type: String,
    pub created: i64,
    pub livemode: bool,
    pub api_version: Option<String>,
    pub account: Option<String>,
    pub object_id: Option<String>,
    pub object_kind: Option<String>,
    pub card_id: Option<String>,
    pub topic: String,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    /// Unix seconds.
    pub ingested_at: i64,
    pub payload: Value,
    /// The version event of the object's stored row, when cardstream keeps such objects.
    pub current_version: Option<String>,
}

impl Store {
    /// Events newest first (by Stripe's `created`, then id), as `filter` says.
    pub async fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, Error> {
        let (after_created, after_id) = filter.after.clone().unzip();
        Ok(sqlx::query_as(
            "SELECT e.event_id, e.event_type, e.created, e.livemode, e.api_version,
                    e.payload ->> 'account' AS account, e.object_id,
                    e.payload #>> '{data,object,object}' AS object_kind, e.card_id, e.topic,
                    e.kafka_partition, e.kafka_offset,
                    extract(epoch FROM e.ingested_at)::int8 AS ingested_at, e.payload,
                    CASE e.payload #>> '{data,object,object}'
                        WHEN 'issuing.authorization' THEN
                            (SELECT version_event_id FROM authorizations WHERE id = e.object_id)
                        WHEN 'issuing.transaction' THEN
                            (SELECT version_event_id FROM transactions WHERE id = e.object_id)
                        WHEN 'issuing.card' THEN
                            (SELECT version_event_id FROM cards WHERE id = e.object_id)
                        WHEN 'issuing.cardholder' THEN
                            (SELECT version_event_id FROM cardholders WHERE id = e.object_id)
                        WHEN 'issuing.dispute' THEN
                            (SELECT version_event_id FROM disputes WHERE id = e.object_id)
                        WHEN 'issuing.token' THEN
                            (SELECT version_event_id FROM tokens WHERE id = e.object_id)
                    END AS current_version
             FROM stripe_events e
             WHERE ($1::text IS NULL OR e.event_id = $1)
               AND ($2::text IS NULL OR e.event_type = $2)
               AND ($3::text IS NULL OR e.object_id = $3)
               AND ($4::text IS NULL OR e.card_id = $4)
               AND ($5::int8 IS NULL OR e.created >= $5)
               AND ($6::int8 IS NULL OR e.created < $6)
               AND ($7::int8 IS NULL OR (e.created, e.event_id) < ($7, $8::text))
             ORDER BY e.created DESC, e.event_id DESC
             LIMIT $9",
        )
        .bind(&filter.event_id)
        .bind(&filter.event_type)
        .bind(&filter.object_id)
        .bind(&filter.card_id)
        .bind(filter.from)
        .bind(filter.to)
        .bind(after_created)
        .bind(after_id)
        .bind(i64::from(filter.limit))
        .fetch_all(self.pool())
        .await?)
    }

    /// The event types stored, for a search's choices.
    pub async fn event_types(&self) -> Result<Vec<String>, Error> {
        // A loose index scan over stripe_events_type_created: one probe per type, not a scan.
        Ok(sqlx::query_scalar(
            "WITH RECURSIVE t(kind) AS (
                 SELECT min(event_type) FROM stripe_events
                 UNION ALL
                 SELECT (SELECT min(event_type) FROM stripe_events WHERE event_type > t.kind)
                 FROM t WHERE t.kind IS NOT NULL
             )
             SELECT kind FROM t WHERE kind IS NOT NULL",
        )
        .fetch_all(self.pool())
        .await?)
    }
}
