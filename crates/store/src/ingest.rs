//! The aggregator's write path: one transaction per batch holding the raw events (deduplicated
//! by event id), the object rows, the rollups and the consumer positions, followed by a NOTIFY
//! of the cards that changed.

use std::collections::HashSet;

use cardstream_stripe::{Event, Object};
use sqlx::PgConnection;

use crate::fold::{DisputeFunds, FoldEvent, fold};
use crate::version::Version;
use crate::{ACTIVITY_CHANNEL, Error, REBUILD_LOCK, Store};

/// An event read from the topic, parsed and typed.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    pub event: Event,
    pub object: Object,
    /// The record's bytes, exactly as Stripe sent them (valid UTF-8 JSON).
    pub payload: String,
    pub partition: i32,
    pub offset: i64,
}

/// Why a record's bytes are not an event the store can fold. The aggregator dead-letters the
/// record under [`Unreadable::reason`], so each variant is a specific, stable reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    #[error("the record is not UTF-8: {0}")]
    NotUtf8(String),
    #[error("the record is not valid JSON: {0}")]
    NotJson(String),
    #[error("the JSON is not a Stripe event: {0}")]
    NotAnEvent(String),
    /// Postgres' jsonb cannot hold the NUL character; such an event would fail its whole batch.
    #[error("the event contains a \\u0000 escape, which Postgres jsonb cannot store")]
    UnsupportedContent,
    /// Named with the event's API version: a shape this build does not know usually means
    /// the Stripe account's API version (or the endpoint's) moved past the one it was built on.
    #[error("the {event_type} event's object does not have the expected shape (API version {}): {message}", api_version.as_deref().unwrap_or("not given"))]
    InvalidObject {
        event_type: String,
        api_version: Option<String>,
        message: String,
    },
}

impl Unreadable {
    /// Every [`Unreadable::reason`].
    pub const REASONS: [&'static str; 5] = [
        "not_utf8",
        "not_json",
        "not_an_event",
        "unsupported_content",
        "invalid_object",
    ];

    /// The reason as a label (dead-letter header, metric).
    pub fn reason(&self) -> &'static str {
        match self {
            Unreadable::NotUtf8(_) => "not_utf8",
            Unreadable::NotJson(_) => "not_json",
            Unreadable::NotAnEvent(_) => "not_an_event",
            Unreadable::UnsupportedContent => "unsupported_content",
            Unreadable::InvalidObject { .. } => "invalid_object",
        }
    }
}

impl From<cardstream_stripe::Error> for Unreadable {
    fn from(err: cardstream_stripe::Error) -> Self {
        use cardstream_stripe::Error as Stripe;
        match err {
            Stripe::NotJson(message) => Unreadable::NotJson(message),
            Stripe::InvalidObject {
                event_type,
                message,
            } => Unreadable::InvalidObject {
                event_type,
                api_version: None,
                message,
            },
            other @ (Stripe::NotAnEvent(_) | Stripe::InvalidCurrency(_) | Stripe::NoSecrets) => {
                Unreadable::NotAnEvent(other.to_string())
            }
        }
    }
}

/// Whether `text` holds a `\u0000` escape: one preceded by an even number of backslashes, as
/// `\\u0000` is a backslash followed by the letters `u0000`, which jsonb stores.
fn has_nul_escape(text: &str) -> bool {
    text.match_indices("\\u0000").any(|(i, _)| {
        let backslashes = text[..i].bytes().rev().take_while(|b| *b == b'\\').count();
        backslashes % 2 == 0
    })
}

impl IncomingEvent {
    /// Parses a record's bytes into an event with its typed object, or says why they are not
    /// one the store can fold. The aggregator's only parser, and the tests' too.
    pub fn parse(payload: &[u8], partition: i32, offset: i64) -> Result<Self, Unreadable> {
        let payload = std::str::from_utf8(payload)
            .map_err(|err| Unreadable::NotUtf8(err.to_string()))?
            .to_owned();
        let event = Event::parse(payload.as_bytes())?;
        if has_nul_escape(&payload) {
            return Err(Unreadable::UnsupportedContent);
        }
        let object = event.object().map_err(|err| match Unreadable::from(err) {
            Unreadable::InvalidObject {
                event_type,
                message,
                ..
            } => Unreadable::InvalidObject {
                event_type,
                api_version: event.api_version.clone(),
                message,
            },
            other => other,
        })?;
        Ok(IncomingEvent {
            event,
            object,
            payload,
            partition,
            offset,
        })
    }
}

/// Where a consumer group has got to in one partition: the next offset to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub partition: i32,
    pub next_offset: i64,
}

/// What a batch changed.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Events stored for the first time.
    pub new_events: usize,
    /// Events already stored (redelivered, or repeated in the batch): changed nothing.
    pub duplicates: usize,
    /// New events whose object version was older than the stored row.
    pub superseded: usize,
    pub rows_written: usize,
    /// Cards whose activity changed, as notified.
    pub cards: Vec<String>,
}

impl Store {
    /// Applies a batch atomically. When it returns `Ok`, everything in it is committed; when it
    /// returns `Err`, nothing is, and the batch can be retried as it is.
    pub async fn apply_batch(
        &self,
        group: &str,
        topic: &str,
        events: &[IncomingEvent],
        positions: &[Position],
    ) -> Result<BatchOutcome, Error> {
        let mut tx = self.pool().begin().await?;
        lock_partitions(&mut tx, topic, positions).await?;
        let new_ids = insert_raw(&mut tx, topic, events).await?;

        let mut seen = HashSet::new();
        let fresh: Vec<FoldEvent> = events
            .iter()
            .filter(|e| new_ids.contains(e.event.id.as_str()) && seen.insert(e.event.id.as_str()))
            .map(|e| FoldEvent {
                version: Version::new(e.event.created, &e.event.kind, e.event.id.clone()),
                funds: DisputeFunds::of(&e.event.kind),
                account: e.event.account.clone(),
                object: e.object.clone(),
            })
            .collect();
        let folded = fold(&mut tx, &fresh).await?;
        folded.deltas.apply(&mut tx).await?;
        save_positions(&mut tx, group, topic, positions).await?;
        let cards: Vec<String> = folded.cards().map(str::to_owned).collect();
        // Last before the commit: the feed's numbering lock is held until then.
        let seq =
            crate::changes::record_changes(&mut tx, &folded.changed, &folded.disputed).await?;
        notify(&mut tx, &cards, seq).await?;
        tx.commit().await?;
        Ok(BatchOutcome {
            new_events: fresh.len(),
            duplicates: events.len() - fresh.len(),
            superseded: folded.superseded,
            rows_written: folded.rows_written,
            cards,
        })
    }
}

/// Serialises batches of the same partition (two consumers may briefly own one during a
/// rebalance), in partition order so two batches never wait on each other crosswise; and
/// shares the rebuild lock, so a replay waits for batches in flight and batches wait for it.
async fn lock_partitions(
    conn: &mut PgConnection,
    topic: &str,
    positions: &[Position],
) -> Result<(), Error> {
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(REBUILD_LOCK)
        .execute(&mut *conn)
        .await?;
    let mut partitions: Vec<i32> = positions.iter().map(|p| p.partition).collect();
    partitions.sort_unstable();
    partitions.dedup();
    for partition in partitions {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1), $2)")
            .bind(topic)
            .bind(partition)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Inserts the events not seen before; returns their ids.
async fn insert_raw(
    conn: &mut PgConnection,
    topic: &str,
    events: &[IncomingEvent],
) -> Result<HashSet<String>, Error> {
    if events.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<String> = sqlx::query_scalar(
        "INSERT INTO stripe_events
             (event_id, event_type, created, livemode, payload, topic, kafka_partition, kafka_offset,
              api_version)
         SELECT id, kind, created, livemode, payload::jsonb, $6, partition, kafka_offset, version
         FROM unnest($1::text[], $2::text[], $3::int8[], $4::bool[], $5::text[], $7::int4[], $8::int8[],
                     $9::text[])
              AS e(id, kind, created, livemode, payload, partition, kafka_offset, version)
         ON CONFLICT (event_id) DO NOTHING
         RETURNING event_id",
    )
    .bind(events.iter().map(|e| e.event.id.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.event.kind.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.event.created).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.event.livemode).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.payload.as_str()).collect::<Vec<_>>())
    .bind(topic)
    .bind(events.iter().map(|e| e.partition).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.offset).collect::<Vec<_>>())
    .bind(
        events
            .iter()
            .map(|e| e.event.api_version.as_deref())
            .collect::<Vec<_>>(),
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(ids.into_iter().collect())
}

async fn save_positions(
    conn: &mut PgConnection,
    group: &str,
    topic: &str,
    positions: &[Position],
) -> Result<(), Error> {
    // One row per partition (an upsert may not touch a row twice): the furthest position.
    let mut furthest: std::collections::BTreeMap<i32, i64> = std::collections::BTreeMap::new();
    for p in positions {
        let entry = furthest.entry(p.partition).or_insert(p.next_offset);
        *entry = (*entry).max(p.next_offset);
    }
    if furthest.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO consumer_positions AS t (consumer_group, topic, kafka_partition, next_offset)
         SELECT $1, $2, p, o FROM unnest($3::int4[], $4::int8[]) AS u(p, o)
         ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE SET
             next_offset = GREATEST(t.next_offset, excluded.next_offset),
             updated_at = now()",
    )
    .bind(group)
    .bind(topic)
    .bind(furthest.keys().copied().collect::<Vec<_>>())
    .bind(furthest.values().copied().collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What [`ACTIVITY_CHANNEL`] carries: the cards a committed batch changed. The store sends it
/// and the API's listener reads it, both through this type.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ActivityNotice {
    pub cards: Vec<String>,
    /// The highest change-feed number the batch recorded (migration 0019), when it recorded
    /// any; every part of a batch's notice carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
}

impl ActivityNotice {
    /// The NOTIFY payload: `{"cards": [...], "seq": 42}`.
    pub fn to_payload(&self) -> String {
        // A struct of strings always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_payload(payload: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(payload)
    }
}

/// Postgres limits a NOTIFY payload to 8000 bytes; card ids are sent in chunks below that.
const NOTIFY_CHUNK_BYTES: usize = 7_000;

/// Tells listeners (the live dashboard) which cards changed. Delivered when the transaction
/// commits, never for a batch that rolled back.
pub(crate) async fn notify(
    conn: &mut PgConnection,
    cards: &[String],
    seq: Option<i64>,
) -> Result<(), Error> {
    let mut chunk = ActivityNotice {
        seq,
        ..ActivityNotice::default()
    };
    let mut size = 0;
    for card in cards {
        if size + card.len() + 4 > NOTIFY_CHUNK_BYTES && !chunk.cards.is_empty() {
            send(
                conn,
                &std::mem::replace(
                    &mut chunk,
                    ActivityNotice {
                        seq,
                        ..ActivityNotice::default()
                    },
                ),
            )
            .await?;
            size = 0;
        }
        size += card.len() + 4;
        chunk.cards.push(card.clone());
    }
    // A batch that changed authorizations but named no card (a dispute alone) still tells.
    if !chunk.cards.is_empty() || seq.is_some() {
        send(conn, &chunk).await?;
    }
    Ok(())
}

async fn send(conn: &mut PgConnection, notice: &ActivityNotice) -> Result<(), Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(ACTIVITY_CHANNEL)
        .bind(notice.to_payload())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_unreadable_record_has_its_own_reason() {
        let event = |object: &str, kind: &str| {
            format!(
                r#"{{"id":"evt_1","object":"event","type":"{kind}","created":1,"data":{{"object":{object}}}}}"#
            )
        };
        let cases: [(&str, Vec<u8>); 5] = [
            ("not_utf8", vec![0xff, 0xfe, 0x00]),
            ("not_json", b"this is not json".to_vec()),
            ("not_an_event", br#"{"hello":"world"}"#.to_vec()),
            (
                "unsupported_content",
                event(r#"{"id":"p","name":"a\u0000b"}"#, "plan.created").into_bytes(),
            ),
            (
                "invalid_object",
                event(r#"{"id":"ipi_x"}"#, "issuing_transaction.created").into_bytes(),
            ),
        ];
        for (reason, bytes) in &cases {
            let err = IncomingEvent::parse(bytes, 0, 0).unwrap_err();
            assert_eq!(err.reason(), *reason, "{err}");
        }
        let reasons: Vec<&str> = cases.iter().map(|(reason, _)| *reason).collect();
        assert_eq!(reasons, Unreadable::REASONS);
    }

    #[test]
    fn an_object_of_an_unknown_shape_is_refused_naming_its_api_version() {
        let body = br#"{"id":"evt_1","object":"event","type":"issuing_transaction.created","created":1,"api_version":"2099-01-01.future","data":{"object":{"id":"ipi_x"}}}"#;
        let err = IncomingEvent::parse(body, 0, 0).unwrap_err();
        assert_eq!(err.reason(), "invalid_object");
        assert!(
            err.to_string().contains("API version 2099-01-01.future"),
            "{err}"
        );
        let without = br#"{"id":"evt_1","object":"event","type":"issuing_transaction.created","created":1,"data":{"object":{"id":"ipi_x"}}}"#;
        let err = IncomingEvent::parse(without, 0, 0).unwrap_err();
        assert!(err.to_string().contains("API version not given"), "{err}");
    }

    #[test]
    fn an_escaped_backslash_before_u0000_is_not_a_nul() {
        assert!(has_nul_escape(r#"{"a":"x\u0000"}"#));
        assert!(has_nul_escape(r#"{"a":"\\\u0000"}"#));
        assert!(!has_nul_escape(r#"{"a":"\\u0000"}"#));
        assert!(!has_nul_escape(r#"{"a":"u0000"}"#));
        let literal = r#"{"id":"evt_1","object":"event","type":"plan.created","created":1,
            "data":{"object":{"path":"C:\\u0000"}}}"#;
        assert!(IncomingEvent::parse(literal.as_bytes(), 0, 0).is_ok());
    }

    #[test]
    fn an_activity_notice_reads_back_what_was_sent() {
        let notice = ActivityNotice {
            cards: vec!["ic_1".into(), "ic_\"quoted\"".into()],
            seq: None,
        };
        assert_eq!(notice.to_payload(), r#"{"cards":["ic_1","ic_\"quoted\""]}"#);
        let numbered = ActivityNotice {
            cards: vec!["ic_1".into()],
            seq: Some(42),
        };
        assert_eq!(numbered.to_payload(), r#"{"cards":["ic_1"],"seq":42}"#);
        assert_eq!(
            ActivityNotice::from_payload(&numbered.to_payload()).unwrap(),
            numbered
        );
        assert_eq!(
            ActivityNotice::from_payload(&notice.to_payload()).unwrap(),
            notice
        );
        assert!(ActivityNotice::from_payload(r#"{"cards":"ic_1"}"#).is_err());
    }
}
