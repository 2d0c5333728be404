//! Card spend for the gateway's spend limits: the shared ledger every replica reserves its
//! approvals in ([`Store::reserve_spend`], the default), and the whole-program read a single
//! replica can decide from in memory instead ([`Store::card_spend`]).

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, Postgres};

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

/// One approval to reserve in the shared ledger (`reserve_spend` in migration 0010). Owned,
/// so that the statement can finish on a task of its own after its caller stopped waiting.
#[derive(Debug, Clone)]
pub struct SpendRequest {
    /// The `issuing_authorization.request` event: the same event asked again is given the same.
    pub event_id: String,
    pub authorization_id: String,
    pub card_id: String,
    /// Lowercase ISO 4217, as stored.
    pub currency: String,
    /// Minor units asked for.
    pub asked: i64,
    /// Whether less than `asked` may be granted (a partial approval).
    pub partial: bool,
    /// The request event's `created`, Unix seconds.
    pub requested_at: i64,
    /// Today (UTC) and the first day of this month, days since 1970-01-01.
    pub day: i32,
    pub month_start: i32,
    /// `None`: no such limit in this currency.
    pub daily_limit: Option<i64>,
    pub monthly_limit: Option<i64>,
    /// After this long without its authorization folded, a reservation stops counting.
    pub ttl: std::time::Duration,
    /// Longest wait for the card's lock in Postgres, after which the statement fails (the
    /// caller has stopped waiting by then).
    pub wait: std::time::Duration,
}

/// What the ledger granted, and the card's spend before this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct SpendGrant {
    /// Minor units reserved: the amount asked, less for a partial approval, 0 for none.
    pub granted: i64,
    pub day_spend: i64,
    pub month_spend: i64,
}

impl Store {
    /// A connection to reserve on: waiting for one can be abandoned at any moment, unlike a
    /// statement in flight, whose connection would then be lost to the pool.
    pub async fn ledger_connection(&self) -> Result<PoolConnection<Postgres>, Error> {
        Ok(self.pool().acquire().await?)
    }

    /// Reserves `request` against its card's limits in one statement on `conn`, serialised
    /// per card with every other replica's reservations.
    pub async fn reserve_spend(
        conn: &mut PgConnection,
        request: &SpendRequest,
    ) -> Result<SpendGrant, Error> {
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Ok(sqlx::query_as(
            "SELECT granted, day_spend, month_spend
             FROM reserve_spend($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                                make_interval(secs => $12::float8 / 1000),
                                make_interval(secs => $13::float8 / 1000))",
        )
        .bind(&request.event_id)
        .bind(&request.authorization_id)
        .bind(&request.card_id)
        .bind(&request.currency)
        .bind(request.asked)
        .bind(request.partial)
        .bind(request.requested_at)
        .bind(request.day)
        .bind(request.month_start)
        .bind(request.daily_limit)
        .bind(request.monthly_limit)
        .bind(ms(request.ttl))
        .bind(ms(request.wait).max(1))
        .fetch_one(conn)
        .await?)
    }
}
