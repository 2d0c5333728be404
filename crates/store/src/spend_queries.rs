//! A card's spend from the rollups, read for many cards at once: the API asks for every card
//! of a page in one statement (its loaders batch them), so a page of 100 cards with their
//! summaries costs a few statements, not a few hundred.
//!
//! Each function takes `(card id, currency)` pairs and returns rows tagged with both, so one
//! request may ask for the same card in several currencies.

use sea_orm::{DbBackend, FromQueryResult, Statement, Value};

use crate::queries::{KeyedSpend, SeriesBucket, SpendKey, SpendPoint, SpendTotals};
use crate::{Error, Store};

/// A card in a currency.
pub type CardCurrency = (String, String);

fn db(err: sea_orm::DbErr) -> Error {
    Error::Orm(err)
}

fn pairs(cards: &[CardCurrency]) -> [Value; 2] {
    let (ids, currencies): (Vec<String>, Vec<String>) = cards.iter().cloned().unzip();
    [Value::from(ids), Value::from(currencies)]
}

#[derive(FromQueryResult)]
struct TotalsRow {
    card_id: String,
    currency: String,
    spend: i64,
    captured: i64,
    refunded: i64,
    captures: i64,
    refunds: i64,
    approved: i64,
    declined: i64,
}

#[derive(FromQueryResult)]
struct KeyedRow {
    card_id: String,
    currency: String,
    key: String,
    spend: i64,
    captures: i64,
}

#[derive(FromQueryResult)]
struct PointRow {
    card_id: String,
    currency: String,
    day: i32,
    spend: i64,
    captures: i64,
}

impl Store {
    /// Totals of each card in its currency over days `[from_day, to_day)` (days since
    /// 1970-01-01; open ends when `None`), from the daily rollup. Every pair asked for is
    /// answered, with zeros where there is no spend.
    pub async fn spend_totals(
        &self,
        cards: &[CardCurrency],
        from_day: Option<i32>,
        to_day: Option<i32>,
    ) -> Result<Vec<(CardCurrency, SpendTotals)>, Error> {
        let [ids, currencies] = pairs(cards);
        let rows = TotalsRow::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT w.card_id, w.currency,
                    coalesce(sum(s.spend), 0)::int8 AS spend, coalesce(sum(s.captured), 0)::int8 AS captured,
                    coalesce(sum(s.refunded), 0)::int8 AS refunded, coalesce(sum(s.captures), 0)::int8 AS captures,
                    coalesce(sum(s.refunds), 0)::int8 AS refunds, coalesce(sum(s.approved), 0)::int8 AS approved,
                    coalesce(sum(s.declined), 0)::int8 AS declined
             FROM unnest($1::text[], $2::text[]) AS w(card_id, currency)
             LEFT JOIN card_daily_spend s ON s.card_id = w.card_id AND s.currency = w.currency
               AND ($3::int4 IS NULL OR s.day >= DATE '1970-01-01' + $3::int4)
               AND ($4::int4 IS NULL OR s.day < DATE '1970-01-01' + $4::int4)
             GROUP BY w.card_id, w.currency",
            [ids, currencies, from_day.into(), to_day.into()],
        ))
        .all(self.orm())
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let totals = SpendTotals {
                    spend: r.spend,
                    captured: r.captured,
                    refunded: r.refunded,
                    captures: r.captures,
                    refunds: r.refunds,
                    approved: r.approved,
                    declined: r.declined,
                };
                ((r.card_id, r.currency), totals)
            })
            .collect())
    }

    /// Each card's spend by category or by merchant, largest first, at most `limit` keys a
    /// card. Over all time it reads the rollup; over a range (unix seconds, end exclusive),
    /// the cards' transactions (indexed by card).
    pub async fn spend_by(
        &self,
        key: SpendKey,
        cards: &[CardCurrency],
        range: (Option<i64>, Option<i64>),
        limit: u64,
    ) -> Result<Vec<(CardCurrency, KeyedSpend)>, Error> {
        let (rollup, column, expression) = match key {
            SpendKey::Category => ("card_category_spend", "category", "t.merchant_category"),
            SpendKey::Merchant => (
                "card_merchant_spend",
                "merchant",
                "coalesce(nullif(t.merchant_name, ''), nullif(t.merchant_network_id, ''), 'unknown merchant')",
            ),
        };
        let grouped = if range == (None, None) {
            format!(
                "SELECT r.card_id, r.currency, r.{column} AS key, r.spend::int8 AS spend,
                        r.captures::int8 AS captures
                 FROM {rollup} r JOIN unnest($1::text[], $2::text[]) AS w(card_id, currency)
                   ON r.card_id = w.card_id AND r.currency = w.currency"
            )
        } else {
            format!(
                "SELECT t.card_id, t.currency, {expression} AS key, sum(-t.amount)::int8 AS spend,
                        sum((t.kind = 'capture')::int)::int8 AS captures
                 FROM transactions t JOIN unnest($1::text[], $2::text[]) AS w(card_id, currency)
                   ON t.card_id = w.card_id AND t.currency = w.currency
                 WHERE t.kind IN ('capture', 'refund')
                   AND ($4::int8 IS NULL OR t.created >= $4) AND ($5::int8 IS NULL OR t.created < $5)
                 GROUP BY 1, 2, 3"
            )
        };
        let sql = format!(
            "SELECT card_id, currency, key, spend, captures FROM (
               SELECT g.*, row_number() OVER (PARTITION BY card_id, currency
                                              ORDER BY spend DESC, key) AS rank
               FROM ({grouped}) g) ranked
             WHERE rank <= $3 ORDER BY card_id, currency, rank"
        );
        let [ids, currencies] = pairs(cards);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut values: Vec<Value> = vec![ids, currencies, limit.into()];
        if range != (None, None) {
            values.push(range.0.into());
            values.push(range.1.into());
        }
        let rows = KeyedRow::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .all(self.orm())
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let spend = KeyedSpend {
                    key: r.key,
                    spend: r.spend,
                    captures: r.captures,
                };
                ((r.card_id, r.currency), spend)
            })
            .collect())
    }

    /// Each card's spend per bucket over days `[from_day, to_day)`, from the daily rollup,
    /// oldest first. Weeks start on Monday; buckets without a capture or a refund are left
    /// out (the rollup also has rows for days of authorizations only).
    pub async fn spend_series(
        &self,
        cards: &[CardCurrency],
        from_day: Option<i32>,
        to_day: Option<i32>,
        bucket: SeriesBucket,
    ) -> Result<Vec<(CardCurrency, SpendPoint)>, Error> {
        let sql = format!(
            "SELECT s.card_id, s.currency,
                    (date_trunc('{unit}', s.day)::date - DATE '1970-01-01')::int4 AS day,
                    sum(s.spend)::int8 AS spend, sum(s.captures)::int8 AS captures
             FROM card_daily_spend s JOIN unnest($1::text[], $2::text[]) AS w(card_id, currency)
               ON s.card_id = w.card_id AND s.currency = w.currency
             WHERE ($3::int4 IS NULL OR s.day >= DATE '1970-01-01' + $3::int4)
               AND ($4::int4 IS NULL OR s.day < DATE '1970-01-01' + $4::int4)
             GROUP BY 1, 2, 3
             HAVING sum(s.captures) <> 0 OR sum(s.refunds) <> 0 OR sum(s.spend) <> 0
             ORDER BY 1, 2, 3",
            unit = bucket.unit()
        );
        let [ids, currencies] = pairs(cards);
        let rows = PointRow::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [ids, currencies, from_day.into(), to_day.into()],
        ))
        .all(self.orm())
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let point = SpendPoint {
                    day: r.day,
                    spend: r.spend,
                    captures: r.captures,
                };
                ((r.card_id, r.currency), point)
            })
            .collect())
    }
}
