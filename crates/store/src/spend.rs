//! Card spend for the gateway's spend limits, read for every card at once.
//!
//! The gateway holds the result in memory and decides from there (a decision never waits on
//! Postgres); this is only the statement it refreshes with.

use crate::{Error, Store};

/// One card's spend in one currency, in minor units: captures minus refunds from the daily
/// rollup plus approved holds not yet captured.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CardSpend {
    pub card_id: String,
    /// As stored (lowercase ISO 4217); the reader parses it.
    pub currency: String,
    /// On the day asked for.
    pub day: i64,
    /// From the first day of the month asked for on.
    pub month: i64,
}

impl Store {
    /// Spend of every card with any on `day` or since `month_start` (both days since
    /// 1970-01-01, UTC; `month_start` is the first of `day`'s month). Cards without spend are
    /// left out: their spend is zero.
    pub async fn card_spend(&self, day: i32, month_start: i32) -> Result<Vec<CardSpend>, Error> {
        Ok(sqlx::query_as(
            "SELECT card_id, currency, sum(day_spend)::int8 AS day, sum(month_spend)::int8 AS month
             FROM (
                 SELECT card_id, currency,
                        CASE WHEN day = DATE '1970-01-01' + $1 THEN spend ELSE 0 END AS day_spend,
                        spend AS month_spend
                 FROM card_daily_spend WHERE day >= DATE '1970-01-01' + $2
                 UNION ALL
                 SELECT card_id, currency,
                        CASE WHEN created >= $1::int8 * 86400 THEN amount ELSE 0 END,
                        amount
                 FROM authorizations
                 WHERE status = 'pending' AND approved AND created >= $2::int8 * 86400
             ) s GROUP BY card_id, currency",
        )
        .bind(day)
        .bind(month_start)
        .fetch_all(self.pool())
        .await?)
    }
}
