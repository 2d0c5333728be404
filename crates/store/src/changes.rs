//! The change feed of the live dashboard (migration 0019): the authorizations each committed
//! batch changed, numbered in commit order, read after a number by the API.

use std::collections::BTreeSet;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use sqlx::PgConnection;

use crate::entities::authorizations;
use crate::{Error, Store};

/// The advisory lock that orders the change numbers: taken by each batch before it numbers
/// its changes and held until it commits.
const ORDER_LOCK: i64 = 0x6361_7264_6368_6721;

/// How long changes are kept for subscribers to catch up on.
const KEPT_FOR: std::time::Duration = std::time::Duration::from_secs(3_600);

/// One changed authorization, as it is now.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub seq: i64,
    pub card_id: String,
    pub authorization: authorizations::Model,
}

/// Numbers the changes of the batch in `conn`'s transaction: the authorizations written, those
/// of the transactions written, and those of the transactions disputes were written for.
/// Returns the highest number, `None` when nothing changed.
pub(crate) async fn record_changes(
    conn: &mut PgConnection,
    authorizations: &BTreeSet<(String, String)>,
    disputed_transactions: &[String],
) -> Result<Option<i64>, Error> {
    if authorizations.is_empty() && disputed_transactions.is_empty() {
        return Ok(None);
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(ORDER_LOCK)
        .execute(&mut *conn)
        .await?;
    let (cards, ids): (Vec<&str>, Vec<&str>) = authorizations
        .iter()
        .map(|(card, id)| (card.as_str(), id.as_str()))
        .unzip();
    let seq: Option<i64> = sqlx::query_scalar(
        "WITH inserted AS (
             INSERT INTO activity_changes (card_id, authorization_id)
             SELECT changed.card_id, changed.id FROM (
                 SELECT card_id, id FROM unnest($1::text[], $2::text[]) AS a(card_id, id)
                 UNION
                 SELECT card_id, authorization_id FROM transactions
                 WHERE id = ANY($3) AND authorization_id IS NOT NULL
             ) changed
             -- Numbered in the order the purchases happened, as a subscriber shows them.
             LEFT JOIN authorizations a ON a.id = changed.id
             ORDER BY a.created NULLS FIRST, changed.id
             RETURNING seq
         )
         SELECT max(seq) FROM inserted",
    )
    .bind(cards)
    .bind(ids)
    .bind(disputed_transactions)
    .fetch_one(&mut *conn)
    .await?;
    Ok(seq)
}

impl Store {
    /// The changes after `after`, oldest first, at most `limit`, of `card` only when given,
    /// each with its authorization as it is now (two statements).
    pub async fn changes_after(
        &self,
        after: i64,
        card: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Change>, Error> {
        self.tally(2);
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT seq, card_id, authorization_id FROM activity_changes
             WHERE seq > $1 AND ($2::text IS NULL OR card_id = $2)
             ORDER BY seq LIMIT $3",
        )
        .bind(after)
        .bind(card)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: BTreeSet<&str> = rows.iter().map(|(_, _, id)| id.as_str()).collect();
        let models = authorizations::Entity::find()
            .filter(authorizations::Column::Id.is_in(ids))
            .all(self.orm())
            .await
            .map_err(Error::Orm)?;
        let by_id: std::collections::HashMap<&str, &authorizations::Model> =
            models.iter().map(|m| (m.id.as_str(), m)).collect();
        Ok(rows
            .iter()
            .filter_map(|(seq, card, id)| {
                Some(Change {
                    seq: *seq,
                    card_id: card.clone(),
                    authorization: (*by_id.get(id.as_str())?).clone(),
                })
            })
            .collect())
    }

    /// The highest change number so far (0 before any), and the lowest still kept (`None`
    /// when none are): a subscriber asking for changes after a number below that one has
    /// missed some.
    pub async fn change_bounds(&self) -> Result<(i64, Option<i64>), Error> {
        self.tally(1);
        let (high, low): (Option<i64>, Option<i64>) =
            sqlx::query_as("SELECT max(seq), min(seq) FROM activity_changes")
                .fetch_one(self.pool())
                .await?;
        Ok((high.unwrap_or(0), low))
    }

    /// Deletes changes older than [`KEPT_FOR`]; returns how many.
    pub async fn prune_changes(&self) -> Result<u64, Error> {
        Ok(
            sqlx::query("DELETE FROM activity_changes WHERE at < now() - $1::interval")
                .bind(format!("{} seconds", KEPT_FOR.as_secs()))
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }
}
