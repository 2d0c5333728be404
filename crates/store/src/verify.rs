//! Checks that the rollups equal a recomputation from the base tables.

use crate::{Error, Store, windows};

/// Rows that differ between each rollup and its recomputation (missing, extra or different).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollupDrift {
    pub daily: i64,
    pub category: i64,
    pub merchant: i64,
    /// The program rollups (migration 0016), all three tables together, and the overview's
    /// windows (0021) against a recomputation from the daily rollups as of their day.
    pub program: i64,
}

impl RollupDrift {
    pub fn is_clean(&self) -> bool {
        *self == RollupDrift::default()
    }
}

/// Each table's content in a canonical order, without where and when a raw event was read (a
/// redelivered event keeps its first position), so that two databases fed the same events in
/// any way compare equal.
pub const CONTENT_QUERIES: [(&str, &str); 13] = [
    (
        "stripe_events",
        "SELECT event_id, event_type, created, livemode, payload FROM stripe_events ORDER BY event_id",
    ),
    ("cardholders", "SELECT * FROM cardholders ORDER BY id"),
    ("cards", "SELECT * FROM cards ORDER BY id"),
    ("authorizations", "SELECT * FROM authorizations ORDER BY id"),
    ("transactions", "SELECT * FROM transactions ORDER BY id"),
    ("disputes", "SELECT * FROM disputes ORDER BY id"),
    ("tokens", "SELECT * FROM tokens ORDER BY id"),
    (
        "card_daily_spend",
        "SELECT * FROM card_daily_spend ORDER BY card_id, day, currency",
    ),
    (
        "card_category_spend",
        "SELECT * FROM card_category_spend ORDER BY card_id, category, currency",
    ),
    (
        "card_merchant_spend",
        "SELECT * FROM card_merchant_spend ORDER BY card_id, merchant, currency",
    ),
    (
        "program_category_daily",
        "SELECT * FROM program_category_daily ORDER BY day, currency, account, category",
    ),
    (
        "program_merchant_daily",
        "SELECT * FROM program_merchant_daily ORDER BY day, currency, account, merchant",
    ),
    (
        "program_outcome_daily",
        "SELECT * FROM program_outcome_daily
         ORDER BY day, currency, account, approved, reason, cardstream_reason",
    ),
];

/// A merchant's key in the rollups: its name, else its network id (as `merchant_key` in rows.rs).
const MERCHANT: &str =
    "coalesce(nullif(merchant_name, ''), nullif(merchant_network_id, ''), 'unknown merchant')";

/// The program rollups recomputed from the base tables, as migration 0016 first fills them:
/// `(table, query)`, the query's columns in the table's order.
fn program_expected() -> [(&'static str, String); 3] {
    let spend_by = |key: &str| {
        format!(
            "SELECT {DAY} AS day, currency, coalesce(account, '') AS account, {key} AS key,
                    sum(-amount)::int8 AS spend, sum((kind = 'capture')::int)::int4 AS captures,
                    sum((kind = 'refund')::int)::int4 AS refunds
             FROM transactions WHERE kind IN ('capture', 'refund')
             GROUP BY 1, 2, 3, 4
             HAVING NOT (sum(-amount) = 0 AND sum((kind = 'capture')::int) = 0
                         AND sum((kind = 'refund')::int) = 0)"
        )
    };
    [
        ("program_category_daily", spend_by("merchant_category")),
        ("program_merchant_daily", spend_by(MERCHANT)),
        (
            "program_outcome_daily",
            format!(
                "SELECT {DAY} AS day, currency, coalesce(account, '') AS account, approved,
                        CASE WHEN approved THEN '' ELSE coalesce(decline_reason, '') END AS reason,
                        CASE WHEN approved THEN '' ELSE coalesce(cardstream_reason, '') END
                            AS cardstream_reason,
                        count(*)::int4 AS authorizations
                 FROM authorizations WHERE approved OR status <> 'pending'
                 GROUP BY 1, 2, 3, 4, 5, 6"
            ),
        ),
    ]
}

const DAY: &str = "DATE '1970-01-01' + floor(created::numeric / 86400)::int";

impl Store {
    /// Row count and an MD5 of each table's canonical content ([`CONTENT_QUERIES`]).
    pub async fn table_digests(
        &self,
    ) -> Result<std::collections::BTreeMap<&'static str, (i64, String)>, Error> {
        let mut out = std::collections::BTreeMap::new();
        for (table, query) in CONTENT_QUERIES {
            // Each row is hashed first: one string of whole rows passes Postgres's 1 GB limit
            // ("out of memory") at about a million stored events.
            let sql = format!(
                "SELECT count(*), md5(coalesce(string_agg(md5(r::text), E'\\n'), '')) FROM ({query}) r"
            );
            let digest: (i64, String) = sqlx::query_as(&sql).fetch_one(self.pool()).await?;
            out.insert(table, digest);
        }
        Ok(out)
    }

    /// As [`Store::table_digests`], for the projections and rollups only and without the
    /// columns that say which version of an object a row holds. Two databases holding the same
    /// objects compare equal however each learnt them: from webhook events, or from a backfill's
    /// snapshots, whose rows carry the snapshot's version and whose raw events are snapshots.
    /// Nor the funds a dispute moved: Stripe says those in events only, never in the object a
    /// backfill lists (catch-up recovers them for the last 30 days).
    pub async fn content_digests(
        &self,
    ) -> Result<std::collections::BTreeMap<&'static str, (i64, String)>, Error> {
        let mut out = std::collections::BTreeMap::new();
        for (table, query) in CONTENT_QUERIES
            .iter()
            .filter(|(t, _)| *t != "stripe_events")
        {
            let sql = format!(
                "SELECT count(*), md5(coalesce(string_agg(md5(
                     (to_jsonb(r) - 'version_created' - 'version_rank' - 'version_event_id'
                      - 'funds_reinstated_at' - 'funds_rescinded_at')::text
                 ), E'\\n'), '')) FROM ({query}) r"
            );
            let digest: (i64, String) = sqlx::query_as(&sql).fetch_one(self.pool()).await?;
            out.insert(*table, digest);
        }
        Ok(out)
    }

    /// Fills the program rollups afresh from the base tables, and the windows from them as of
    /// today, for data written straight into them (the API benchmark's synthetic program)
    /// rather than folded.
    pub async fn rebuild_program_rollups(&self) -> Result<(), Error> {
        let mut tx = self.pool().begin().await?;
        for (table, expected) in program_expected() {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await?;
            sqlx::query(&format!("INSERT INTO {table} {expected}"))
                .execute(&mut *tx)
                .await?;
        }
        let today = windows::today(&mut tx).await?;
        windows::rebuild(&mut tx, today).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Recomputes every rollup from `transactions` and `authorizations` and counts the rows
    /// that differ from the stored rollups. All zero means the rollups are exact.
    pub async fn rollup_drift(&self) -> Result<RollupDrift, Error> {
        let daily = format!(
            "WITH expected AS (
                SELECT card_id, day, currency, sum(spend)::int8 AS spend, sum(captured)::int8 AS captured,
                       sum(refunded)::int8 AS refunded, sum(captures)::int4 AS captures,
                       sum(refunds)::int4 AS refunds, sum(approved)::int4 AS approved,
                       sum(declined)::int4 AS declined
                FROM (
                    SELECT card_id, {DAY} AS day, currency,
                           CASE WHEN kind IN ('capture', 'refund') THEN -amount ELSE 0 END AS spend,
                           CASE WHEN kind = 'capture' THEN -amount ELSE 0 END AS captured,
                           CASE WHEN kind = 'refund' THEN amount ELSE 0 END AS refunded,
                           (kind = 'capture')::int AS captures, (kind = 'refund')::int AS refunds,
                           0 AS approved, 0 AS declined
                    FROM transactions
                    UNION ALL
                    SELECT card_id, {DAY}, currency, 0, 0, 0, 0, 0,
                           approved::int, (NOT approved AND status <> 'pending')::int
                    FROM authorizations
                ) contributions
                GROUP BY card_id, day, currency
            ),
            nonzero AS (
                SELECT * FROM expected
                WHERE NOT (spend = 0 AND captured = 0 AND refunded = 0 AND captures = 0
                           AND refunds = 0 AND approved = 0 AND declined = 0)
            ),
            actual AS (
                SELECT card_id, day, currency, spend, captured, refunded, captures, refunds,
                       approved, declined
                FROM card_daily_spend
            )
            SELECT (SELECT count(*) FROM (SELECT * FROM nonzero EXCEPT SELECT * FROM actual) a)
                 + (SELECT count(*) FROM (SELECT * FROM actual EXCEPT SELECT * FROM nonzero) b)"
        );
        let keyed = |table: &str, column: &str, key: &str| {
            format!(
                "WITH expected AS (
                    SELECT card_id, {key} AS k, currency, sum(-amount)::int8 AS spend,
                           sum((kind = 'capture')::int)::int4 AS captures
                    FROM transactions WHERE kind IN ('capture', 'refund')
                    GROUP BY 1, 2, 3
                    HAVING NOT (sum(-amount) = 0 AND sum((kind = 'capture')::int) = 0)
                ),
                actual AS (SELECT card_id, {column} AS k, currency, spend, captures FROM {table})
                SELECT (SELECT count(*) FROM (SELECT * FROM expected EXCEPT SELECT * FROM actual) a)
                     + (SELECT count(*) FROM (SELECT * FROM actual EXCEPT SELECT * FROM expected) b)"
            )
        };
        let category = keyed("card_category_spend", "category", "merchant_category");
        let merchant = keyed("card_merchant_spend", "merchant", MERCHANT);
        let count = |sql: String| async move {
            sqlx::query_scalar::<_, i64>(&sql)
                .fetch_one(self.pool())
                .await
        };
        let mut program = 0;
        for (table, expected) in program_expected() {
            let key = match table {
                "program_category_daily" => "category",
                "program_merchant_daily" => "merchant",
                _ => "approved, reason, cardstream_reason",
            };
            let rest = if table == "program_outcome_daily" {
                "authorizations"
            } else {
                "spend, captures, refunds"
            };
            program += count(format!(
                "WITH expected AS ({expected}),
                 actual AS (SELECT day, currency, account, {key}, {rest} FROM {table})
                 SELECT (SELECT count(*) FROM (SELECT * FROM expected EXCEPT SELECT * FROM actual) a)
                      + (SELECT count(*) FROM (SELECT * FROM actual EXCEPT SELECT * FROM expected) b)"
            ))
            .await?;
        }
        program += self.window_drift().await?;
        Ok(RollupDrift {
            daily: count(daily).await?,
            category: count(category).await?,
            merchant: count(merchant).await?,
            program,
        })
    }

    /// Rows of the windows that differ from a recomputation as of their day (none may exist
    /// before the first rebuild).
    async fn window_drift(&self) -> Result<i64, Error> {
        let mut conn = self.pool().acquire().await?;
        let as_of = windows::as_of(&mut conn).await?;
        let mut drift = 0;
        for (table, expected) in windows::expected() {
            drift += match as_of {
                None => {
                    sqlx::query_scalar::<_, i64>(&format!("SELECT count(*) FROM {table}"))
                        .fetch_one(&mut *conn)
                        .await?
                }
                Some(as_of) => {
                    sqlx::query_scalar::<_, i64>(&format!(
                        "WITH expected AS ({expected}), actual AS (SELECT * FROM {table})
                         SELECT (SELECT count(*) FROM (SELECT * FROM expected EXCEPT SELECT * FROM actual) a)
                              + (SELECT count(*) FROM (SELECT * FROM actual EXCEPT SELECT * FROM expected) b)"
                    ))
                    .bind(as_of)
                    .fetch_one(&mut *conn)
                    .await?
                }
            };
        }
        Ok(drift)
    }
}
