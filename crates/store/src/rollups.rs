//! Rollup deltas: what a batch changes in the rollups, summed in memory and applied with one
//! multi-row upsert per rollup table.

use std::collections::{BTreeSet, HashMap};

use sqlx::PgConnection;

use crate::Error;
use crate::program_rollups::ProgramDeltas;
use crate::rows::{AuthorizationContribution, TransactionContribution};
use crate::windows::{self, WindowDeltas};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Daily {
    spend: i64,
    captured: i64,
    refunded: i64,
    captures: i32,
    refunds: i32,
    approved: i32,
    declined: i32,
}

impl Daily {
    fn is_zero(&self) -> bool {
        *self == Daily::default()
    }
}

/// The net change a batch makes to every rollup row it touches.
#[derive(Debug, Default)]
pub(crate) struct RollupDeltas {
    daily: HashMap<(String, i32, String), Daily>,
    category: HashMap<(String, String, String), (i64, i32)>,
    merchant: HashMap<(String, String, String), (i64, i32)>,
    /// The program rollups (migration 0016), keyed `(day, currency, account, …)`.
    program: ProgramDeltas,
    /// Cards whose rollups or activity changed, for the live dashboard.
    pub(crate) cards: BTreeSet<String>,
    /// The Connect account of each card written (a card's objects all belong to its account),
    /// stored on its rollup rows so that an account's views filter them as they do objects.
    accounts: HashMap<String, String>,
}

impl RollupDeltas {
    /// Records the Connect account of `card` (`None`: the platform's own).
    pub(crate) fn account(&mut self, card: &str, account: Option<&str>) {
        if let Some(account) = account {
            self.accounts.insert(card.to_owned(), account.to_owned());
        }
    }

    /// The account to store on `card`'s rollup rows; `None` keeps what the row has.
    fn account_of(&self, card: &str) -> Option<&str> {
        self.accounts.get(card).map(String::as_str)
    }

    /// Adds (`sign` = 1) or removes (`sign` = -1) an authorization's contribution.
    pub(crate) fn authorization(&mut self, c: &AuthorizationContribution, sign: i32) {
        let (approved, declined) = c.counts();
        let entry = self
            .daily
            .entry((c.card_id.clone(), c.day, c.currency.clone()))
            .or_default();
        entry.approved += sign * approved;
        entry.declined += sign * declined;
        self.program.authorization(c, sign);
        self.cards.insert(c.card_id.clone());
    }

    /// Adds (`sign` = 1) or removes (`sign` = -1) a transaction's contribution.
    pub(crate) fn transaction(&mut self, c: &TransactionContribution, sign: i32) {
        let (spend, captured, refunded, captures, refunds) = c.figures();
        let s = i64::from(sign);
        let daily = self
            .daily
            .entry((c.card_id.clone(), c.day, c.currency.clone()))
            .or_default();
        daily.spend += s * spend;
        daily.captured += s * captured;
        daily.refunded += s * refunded;
        daily.captures += sign * captures;
        daily.refunds += sign * refunds;
        if spend != 0 || captures != 0 {
            for (map, key) in [
                (&mut self.category, c.category.clone()),
                (&mut self.merchant, c.merchant.clone()),
            ] {
                let e = map
                    .entry((c.card_id.clone(), key, c.currency.clone()))
                    .or_default();
                e.0 += s * spend;
                e.1 += sign * captures;
            }
        }
        self.program.transaction(c, sign);
        self.cards.insert(c.card_id.clone());
    }

    /// Applies every non-zero delta, then deletes rows that came back to all zeros.
    pub(crate) async fn apply(&self, conn: &mut PgConnection) -> Result<(), Error> {
        self.apply_daily(conn).await?;
        self.apply_windows(conn).await?;
        for (table, column, map) in [
            ("card_category_spend", "category", &self.category),
            ("card_merchant_spend", "merchant", &self.merchant),
        ] {
            apply_keyed(conn, table, column, map, |card| self.account_of(card)).await?;
        }
        self.program.apply(conn).await
    }

    /// What the batch changed on the days before today that the overview's windows cover
    /// (live traffic rarely touches them: a late refund, a backfill).
    async fn apply_windows(&self, conn: &mut PgConnection) -> Result<(), Error> {
        if self.daily.values().all(|d| d.spend == 0 && d.captures == 0) {
            return Ok(());
        }
        let Some(as_of) = windows::as_of(&mut *conn).await? else {
            return Ok(());
        };
        let mut deltas = WindowDeltas::default();
        for ((card, day, currency), d) in &self.daily {
            deltas.card(as_of, (card, *day, currency), d.spend, d.captures);
        }
        self.program.windows(as_of, &mut deltas);
        deltas.apply(conn, |card| self.account_of(card)).await
    }

    async fn apply_daily(&self, conn: &mut PgConnection) -> Result<(), Error> {
        let rows: Vec<_> = self.daily.iter().filter(|(_, d)| !d.is_zero()).collect();
        if rows.is_empty() {
            return Ok(());
        }
        let emptied: Vec<(String, i32, String)> = sqlx::query_as(
            "INSERT INTO card_daily_spend AS t
                 (card_id, day, currency, spend, captured, refunded, captures, refunds, approved, declined, account)
             SELECT card_id, DATE '1970-01-01' + day, currency,
                    spend, captured, refunded, captures, refunds, approved, declined, account
             FROM unnest($1::text[], $2::int4[], $3::text[], $4::int8[], $5::int8[], $6::int8[],
                         $7::int4[], $8::int4[], $9::int4[], $10::int4[], $11::text[])
                  AS d(card_id, day, currency, spend, captured, refunded, captures, refunds, approved, declined, account)
             ON CONFLICT (card_id, day, currency) DO UPDATE SET
                 account = COALESCE(excluded.account, t.account),
                 spend = t.spend + excluded.spend,
                 captured = t.captured + excluded.captured,
                 refunded = t.refunded + excluded.refunded,
                 captures = t.captures + excluded.captures,
                 refunds = t.refunds + excluded.refunds,
                 approved = t.approved + excluded.approved,
                 declined = t.declined + excluded.declined
             RETURNING card_id, day - DATE '1970-01-01', currency,
                       (spend = 0 AND captured = 0 AND refunded = 0 AND captures = 0
                        AND refunds = 0 AND approved = 0 AND declined = 0)",
        )
        .bind(rows.iter().map(|((c, _, _), _)| c.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|((_, d, _), _)| *d).collect::<Vec<_>>())
        .bind(rows.iter().map(|((_, _, c), _)| c.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, d)| d.spend).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, d)| d.captured).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, d)| d.refunded).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, d)| d.captures).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, d)| d.refunds).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, d)| d.approved).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, d)| d.declined).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|((c, _, _), _)| self.account_of(c))
                .collect::<Vec<_>>(),
        )
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .filter_map(|(card, day, currency, empty): (String, i32, String, bool)| {
            empty.then_some((card, day, currency))
        })
        .collect();
        if !emptied.is_empty() {
            sqlx::query(
                "DELETE FROM card_daily_spend t
                 USING unnest($1::text[], $2::int4[], $3::text[]) AS d(card_id, day, currency)
                 WHERE t.card_id = d.card_id AND t.day = DATE '1970-01-01' + d.day
                   AND t.currency = d.currency",
            )
            .bind(
                emptied
                    .iter()
                    .map(|(c, _, _)| c.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(emptied.iter().map(|(_, d, _)| *d).collect::<Vec<_>>())
            .bind(
                emptied
                    .iter()
                    .map(|(_, _, c)| c.as_str())
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// The category and merchant rollups: `(card_id, <key>, currency) → (spend, captures)`.
async fn apply_keyed<'a>(
    conn: &mut PgConnection,
    table: &str,
    column: &str,
    map: &HashMap<(String, String, String), (i64, i32)>,
    account_of: impl for<'c> Fn(&'c str) -> Option<&'a str>,
) -> Result<(), Error> {
    let rows: Vec<_> = map.iter().filter(|(_, v)| **v != (0, 0)).collect();
    if rows.is_empty() {
        return Ok(());
    }
    let upsert = format!(
        "INSERT INTO {table} AS t (card_id, {column}, currency, spend, captures, account)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int4[],
                              $6::text[])
         ON CONFLICT (card_id, {column}, currency) DO UPDATE SET
             account = COALESCE(excluded.account, t.account),
             spend = t.spend + excluded.spend,
             captures = t.captures + excluded.captures
         RETURNING card_id, {column}, currency, (spend = 0 AND captures = 0)"
    );
    let emptied: Vec<(String, String, String)> = sqlx::query_as(&upsert)
        .bind(
            rows.iter()
                .map(|((c, _, _), _)| c.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|((_, k, _), _)| k.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|((_, _, c), _)| c.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|(_, v)| v.0).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, v)| v.1).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|((c, _, _), _)| account_of(c))
                .collect::<Vec<_>>(),
        )
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .filter_map(
            |(card, key, currency, empty): (String, String, String, bool)| {
                empty.then_some((card, key, currency))
            },
        )
        .collect();
    if !emptied.is_empty() {
        let delete = format!(
            "DELETE FROM {table} t
             USING unnest($1::text[], $2::text[], $3::text[]) AS d(card_id, key, currency)
             WHERE t.card_id = d.card_id AND t.{column} = d.key AND t.currency = d.currency"
        );
        sqlx::query(&delete)
            .bind(
                emptied
                    .iter()
                    .map(|(c, _, _)| c.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                emptied
                    .iter()
                    .map(|(_, k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                emptied
                    .iter()
                    .map(|(_, _, c)| c.as_str())
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
