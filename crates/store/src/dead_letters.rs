//! Dead letters as the aggregator recorded them (migration 0014): listed, shown and marked
//! redriven here; the records themselves go back to the topic through Kafka, not this crate.

use std::borrow::Cow;

use crate::audit::audit_in;
use crate::{Error, Store};

/// `s` as Postgres text can hold it: a NUL (which a hostile record's header may carry) becomes
/// U+FFFD. Without this the insert would fail on every retry and hold the partition.
fn text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// A record the aggregator could not fold, as it recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeadLetter {
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
    /// A stable code (`unauthenticated`, `not_json`, `rejected_by_database`, …).
    pub reason: String,
    pub error: String,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub key: Option<Vec<u8>>,
    /// The record's own headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    pub payload: Vec<u8>,
}

/// A stored dead letter.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeadLetter {
    pub id: i64,
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
    pub reason: String,
    pub error: String,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub record_key: Option<Vec<u8>>,
    pub header_names: Vec<String>,
    pub header_values: Vec<Vec<u8>>,
    pub payload: Vec<u8>,
    /// Unix seconds.
    pub dead_at: i64,
    pub redriven_at: Option<i64>,
    pub redriven_by: Option<String>,
    pub redrives: i32,
    /// A redrive asked for in the console and not yet done (migration 0015).
    pub redrive_requested_at: Option<i64>,
    pub redrive_requested_by: Option<String>,
}

impl DeadLetter {
    /// The record's headers, paired again.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.header_names
            .iter()
            .map(String::as_str)
            .zip(self.header_values.iter().map(Vec::as_slice))
    }
}

/// Which dead letters a listing or a redrive covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterFilter {
    /// These ids only (whether redriven or not).
    pub ids: Vec<i64>,
    /// Of this reason only.
    pub reason: Option<String>,
    /// Those already redriven too (with `ids`, always).
    pub redriven: bool,
    /// Older than this id (paging, newest first).
    pub before: Option<i64>,
    pub limit: u32,
}

const COLUMNS: &str = "id, source_topic, source_partition, source_offset, reason, error, event_id,
     event_type, record_key, header_names, header_values, payload,
     extract(epoch FROM dead_at)::int8 AS dead_at,
     extract(epoch FROM redriven_at)::int8 AS redriven_at, redriven_by, redrives,
     extract(epoch FROM redrive_requested_at)::int8 AS redrive_requested_at,
     redrive_requested_by";

impl Store {
    /// Records dead letters; one already recorded (the same source record, read again after a
    /// restart) is left as it is.
    pub async fn record_dead_letters(&self, letters: &[NewDeadLetter]) -> Result<(), Error> {
        for letter in letters {
            let (names, values): (Vec<Cow<'_, str>>, Vec<&[u8]>) = letter
                .headers
                .iter()
                .map(|(name, value)| (text(name), value.as_slice()))
                .unzip();
            sqlx::query(
                "INSERT INTO dead_letters (source_topic, source_partition, source_offset, reason,
                     error, event_id, event_type, record_key, header_names, header_values,
                     payload)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING",
            )
            .bind(&letter.source_topic)
            .bind(letter.source_partition)
            .bind(letter.source_offset)
            .bind(text(&letter.reason))
            .bind(text(&letter.error))
            .bind(letter.event_id.as_deref().map(text))
            .bind(letter.event_type.as_deref().map(text))
            .bind(&letter.key)
            .bind(names)
            .bind(values)
            .bind(&letter.payload)
            .execute(self.pool())
            .await?;
        }
        Ok(())
    }

    /// Dead letters matching `filter`, newest first.
    pub async fn dead_letters(&self, filter: &DeadLetterFilter) -> Result<Vec<DeadLetter>, Error> {
        let ids = (!filter.ids.is_empty()).then_some(&filter.ids);
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM dead_letters
             WHERE ($1::int8[] IS NULL OR id = ANY($1))
               AND ($2::text IS NULL OR reason = $2)
               AND ($1::int8[] IS NOT NULL OR $3 OR redriven_at IS NULL)
               AND ($4::int8 IS NULL OR id < $4)
             ORDER BY id DESC LIMIT $5"
        ))
        .bind(ids)
        .bind(&filter.reason)
        .bind(filter.redriven)
        .bind(filter.before)
        .bind(i64::from(filter.limit))
        .fetch_all(self.pool())
        .await?)
    }

    /// Marks `id` written back to the main topic by `by`, now (and any request for it done).
    pub async fn mark_redriven(&self, id: i64, by: &str) -> Result<(), Error> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE dead_letters SET redriven_at = now(), redriven_by = $2, redrives = redrives + 1,
                 redrive_requested_at = NULL, redrive_requested_by = NULL,
                 redrive_claimed_at = NULL
             WHERE id = $1",
        )
        .bind(id)
        .bind(by)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound("dead letter"));
        }
        let subject = format!("dead letter {id}");
        let details = serde_json::json!({"id": id});
        audit_in(&mut tx, by, "dead_letter.redriven", &subject, details).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Asks for `ids` to be written back by an aggregator (migration 0015), for `by`: all of
    /// them, newest first, or none (`NotFound`) when one is not a dead letter.
    pub async fn request_redrive(&self, ids: &[i64], by: &str) -> Result<Vec<DeadLetter>, Error> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut tx = self.pool().begin().await?;
        let mut asked: Vec<DeadLetter> = sqlx::query_as(&format!(
            "UPDATE dead_letters SET redrive_requested_at = now(), redrive_requested_by = $2,
                 redrive_claimed_at = NULL
             WHERE id = ANY($1)
             RETURNING {COLUMNS}"
        ))
        .bind(&ids)
        .bind(by)
        .fetch_all(&mut *tx)
        .await?;
        if asked.len() != ids.len() {
            return Err(Error::NotFound("dead letter"));
        }
        let subject = format!(
            "dead letters {}",
            ids.iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        let details = serde_json::json!({"ids": ids});
        audit_in(
            &mut tx,
            by,
            "dead_letters.redrive_requested",
            &subject,
            details,
        )
        .await?;
        tx.commit().await?;
        asked.sort_by_key(|l| std::cmp::Reverse(l.id));
        Ok(asked)
    }

    /// Claims up to `limit` requested redrives no other aggregator holds (or whose claim is a
    /// minute old: its aggregator stopped mid-way), oldest first.
    pub async fn claim_redrive_requests(&self, limit: u32) -> Result<Vec<RedriveRequest>, Error> {
        let letters: Vec<DeadLetter> = sqlx::query_as(&format!(
            "UPDATE dead_letters SET redrive_claimed_at = now()
             WHERE id IN (SELECT id FROM dead_letters
                          WHERE redrive_requested_at IS NOT NULL
                            AND (redrive_claimed_at IS NULL
                                 OR redrive_claimed_at < now() - interval '1 minute')
                          ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
             RETURNING {COLUMNS}"
        ))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        let mut claimed: Vec<RedriveRequest> = letters
            .into_iter()
            .map(|letter| RedriveRequest {
                by: letter.redrive_requested_by.clone().unwrap_or_default(),
                letter,
            })
            .collect();
        claimed.sort_by_key(|c| c.letter.id);
        Ok(claimed)
    }
}

/// A redrive asked for in the console, claimed by an aggregator.
#[derive(Debug, Clone)]
pub struct RedriveRequest {
    pub letter: DeadLetter,
    /// Who asked.
    pub by: String,
}
