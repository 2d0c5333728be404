//! The program rollups (migration 0016): what a batch changes in the whole program's spend per
//! day by category and by merchant, and in its authorizations per day by outcome. Kept as the
//! card rollups are: summed in memory, applied with one multi-row upsert per table, rows that
//! come back to zero deleted.

use std::collections::HashMap;

use sqlx::PgConnection;

use crate::Error;
use crate::rows::{AuthorizationContribution, TransactionContribution};
use crate::windows::{Kind, WindowDeltas};

/// `(day, currency, account, category or merchant)`.
type SpendKey = (i32, String, String, String);
/// `(day, currency, account, approved, reason, cardstream_reason)`.
type OutcomeKey = (i32, String, String, bool, String, String);

/// `(spend, captures, refunds)`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Spend(i64, i32, i32);

#[derive(Debug, Default)]
pub(crate) struct ProgramDeltas {
    category: HashMap<SpendKey, Spend>,
    merchant: HashMap<SpendKey, Spend>,
    outcome: HashMap<OutcomeKey, i32>,
}

impl ProgramDeltas {
    pub(crate) fn authorization(&mut self, c: &AuthorizationContribution, sign: i32) {
        let (approved, declined) = c.counts();
        if approved + declined == 0 {
            return;
        }
        // An approval's reasons are not a decline's: one row per day holds every approval.
        let (reason, cardstream_reason) = if c.approved {
            (String::new(), String::new())
        } else {
            (c.reason.clone(), c.cardstream_reason.clone())
        };
        let key = (
            c.day,
            c.currency.clone(),
            c.account.clone(),
            c.approved,
            reason,
            cardstream_reason,
        );
        *self.outcome.entry(key).or_default() += sign;
    }

    pub(crate) fn transaction(&mut self, c: &TransactionContribution, sign: i32) {
        let (spend, _, _, captures, refunds) = c.figures();
        if spend == 0 && captures == 0 && refunds == 0 {
            return;
        }
        for (map, key) in [
            (&mut self.category, &c.category),
            (&mut self.merchant, &c.merchant),
        ] {
            let e = map
                .entry((c.day, c.currency.clone(), c.account.clone(), key.clone()))
                .or_default();
            e.0 += i64::from(sign) * spend;
            e.1 += sign * captures;
            e.2 += sign * refunds;
        }
    }

    /// Adds what these deltas change in the windows as of `as_of` to `windows`.
    pub(crate) fn windows(&self, as_of: i32, windows: &mut WindowDeltas) {
        for (kind, map) in [
            (Kind::Category, &self.category),
            (Kind::Merchant, &self.merchant),
        ] {
            for ((day, currency, account, key), v) in map {
                windows.program(as_of, kind, (*day, currency, account, key), (v.0, v.1, v.2));
            }
        }
    }

    pub(crate) async fn apply(&self, conn: &mut PgConnection) -> Result<(), Error> {
        apply_spend(conn, "program_category_daily", "category", &self.category).await?;
        apply_spend(conn, "program_merchant_daily", "merchant", &self.merchant).await?;
        self.apply_outcomes(conn).await
    }

    async fn apply_outcomes(&self, conn: &mut PgConnection) -> Result<(), Error> {
        let rows: Vec<_> = self.outcome.iter().filter(|(_, n)| **n != 0).collect();
        if rows.is_empty() {
            return Ok(());
        }
        let text = |f: fn(&OutcomeKey) -> &String| {
            rows.iter().map(|(k, _)| f(k).as_str()).collect::<Vec<_>>()
        };
        let emptied: Vec<Emptied> = sqlx::query_as(
            "INSERT INTO program_outcome_daily AS t
                 (day, currency, account, approved, reason, cardstream_reason, authorizations)
             SELECT DATE '1970-01-01' + day, currency, account, approved, reason,
                    cardstream_reason, n
             FROM unnest($1::int4[], $2::text[], $3::text[], $4::bool[], $5::text[], $6::text[],
                         $7::int4[])
                  AS d(day, currency, account, approved, reason, cardstream_reason, n)
             ON CONFLICT (day, currency, account, approved, reason, cardstream_reason)
             DO UPDATE SET authorizations = t.authorizations + excluded.authorizations
             RETURNING ctid::text, authorizations = 0",
        )
        .bind(rows.iter().map(|(k, _)| k.0).collect::<Vec<_>>())
        .bind(text(|k| &k.1))
        .bind(text(|k| &k.2))
        .bind(rows.iter().map(|(k, _)| k.3).collect::<Vec<_>>())
        .bind(text(|k| &k.4))
        .bind(text(|k| &k.5))
        .bind(rows.iter().map(|(_, n)| **n).collect::<Vec<_>>())
        .fetch_all(&mut *conn)
        .await?;
        delete_emptied(conn, "program_outcome_daily", emptied).await
    }
}

/// A row an upsert returned: where it is (its ctid, good until the transaction ends, as the
/// row is locked by the upsert) and whether its counters all came back to zero.
pub(crate) type Emptied = (String, bool);

/// Deletes the rows that came back to zero, as the aggregate would have no such group.
pub(crate) async fn delete_emptied(
    conn: &mut PgConnection,
    table: &str,
    rows: Vec<Emptied>,
) -> Result<(), Error> {
    let ctids: Vec<String> = rows
        .into_iter()
        .filter_map(|(ctid, empty)| empty.then_some(ctid))
        .collect();
    if !ctids.is_empty() {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE ctid = ANY($1::text[]::tid[])"
        ))
        .bind(ctids)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The category and merchant tables: `(day, currency, account, <key>) → (spend, captures,
/// refunds)`.
async fn apply_spend(
    conn: &mut PgConnection,
    table: &str,
    column: &str,
    map: &HashMap<SpendKey, Spend>,
) -> Result<(), Error> {
    let rows: Vec<_> = map
        .iter()
        .filter(|(_, v)| **v != Spend::default())
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO {table} AS t (day, currency, account, {column}, spend, captures, refunds)
         SELECT DATE '1970-01-01' + day, currency, account, key, spend, captures, refunds
         FROM unnest($1::int4[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int4[],
                     $7::int4[]) AS d(day, currency, account, key, spend, captures, refunds)
         ON CONFLICT (day, currency, account, {column}) DO UPDATE SET
             spend = t.spend + excluded.spend,
             captures = t.captures + excluded.captures,
             refunds = t.refunds + excluded.refunds
         RETURNING ctid::text, (spend = 0 AND captures = 0 AND refunds = 0)"
    );
    let text =
        |f: fn(&SpendKey) -> &String| rows.iter().map(|(k, _)| f(k).as_str()).collect::<Vec<_>>();
    let emptied: Vec<Emptied> = sqlx::query_as(&sql)
        .bind(rows.iter().map(|(k, _)| k.0).collect::<Vec<_>>())
        .bind(text(|k| &k.1))
        .bind(text(|k| &k.2))
        .bind(text(|k| &k.3))
        .bind(rows.iter().map(|(_, v)| v.0).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, v)| v.1).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, v)| v.2).collect::<Vec<_>>())
        .fetch_all(&mut *conn)
        .await?;
    delete_emptied(conn, table, emptied).await
}
