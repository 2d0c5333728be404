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

/// One approval to reserve in the shared ledger (`reserve_spend_batch`, migration 0013).
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
    /// `None`: no such limit in this currency.
    pub daily_limit: Option<i64>,
    pub monthly_limit: Option<i64>,
}

/// A pooled connection the ledger reserves on.
pub type LedgerConnection = PoolConnection<Postgres>;

/// What a batch of reservations is decided against, and how long it may wait.
#[derive(Debug, Clone, Copy)]
pub struct LedgerBatch {
    /// Today (UTC) and the first day of this month, days since 1970-01-01.
    pub day: i32,
    pub month_start: i32,
    /// After this long without its authorization folded, a reservation stops counting.
    pub ttl: std::time::Duration,
    /// Longest wait for any lock in Postgres, after which the statement fails (the gateway has
    /// stopped waiting by then).
    pub wait: std::time::Duration,
    /// Skip a card whose lock another transaction holds (reported `None`) instead of waiting.
    pub skip_busy: bool,
}

/// What the ledger granted, and the card's spend before this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpendGrant {
    /// Minor units reserved: the amount asked, less for a partial approval, 0 for none.
    pub granted: i64,
    pub day_spend: i64,
    pub month_spend: i64,
}

impl Store {
    /// A connection to reserve on.
    pub async fn ledger_connection(&self) -> Result<LedgerConnection, Error> {
        Ok(self.pool().acquire().await?)
    }

    /// Reserves `requests`, in order, against their cards' limits in one statement on `conn`,
    /// serialised per card with every other replica's reservations. One answer per request, in
    /// the same order: `None` for a card that was busy (only with `batch.skip_busy`).
    pub async fn reserve_spend(
        conn: &mut PgConnection,
        requests: &[SpendRequest],
        batch: &LedgerBatch,
    ) -> Result<Vec<Option<SpendGrant>>, Error> {
        fn column<T>(requests: &[SpendRequest], f: impl Fn(&SpendRequest) -> T) -> Vec<T> {
            requests.iter().map(f).collect()
        }
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        /// One request's answer; all `None` when its card was busy.
        #[derive(sqlx::FromRow)]
        struct Row {
            ord: i32,
            granted: Option<i64>,
            day_spend: Option<i64>,
            month_spend: Option<i64>,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT ord, granted, day_spend, month_spend
             FROM reserve_spend_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                                      make_interval(secs => $12::float8 / 1000),
                                      make_interval(secs => $13::float8 / 1000), $14)",
        )
        .bind(column(requests, |r| r.event_id.clone()))
        .bind(column(requests, |r| r.authorization_id.clone()))
        .bind(column(requests, |r| r.card_id.clone()))
        .bind(column(requests, |r| r.currency.clone()))
        .bind(column(requests, |r| r.asked))
        .bind(column(requests, |r| r.partial))
        .bind(column(requests, |r| r.requested_at))
        .bind(column(requests, |r| r.daily_limit))
        .bind(column(requests, |r| r.monthly_limit))
        .bind(batch.day)
        .bind(batch.month_start)
        .bind(ms(batch.ttl))
        .bind(ms(batch.wait).max(1))
        .bind(batch.skip_busy)
        .fetch_all(conn)
        .await?;
        let mut grants = vec![None; requests.len()];
        for Row {
            ord,
            granted,
            day_spend,
            month_spend,
        } in rows
        {
            let slot = usize::try_from(ord)
                .ok()
                .and_then(|ord| grants.get_mut(ord.wrapping_sub(1)))
                .ok_or_else(|| {
                    Error::Inconsistent(format!(
                        "the spend ledger answered for item {ord} of {}",
                        requests.len()
                    ))
                })?;
            if let (Some(granted), Some(day_spend), Some(month_spend)) =
                (granted, day_spend, month_spend)
            {
                *slot = Some(SpendGrant {
                    granted,
                    day_spend,
                    month_spend,
                });
            }
        }
        Ok(grants)
    }
}
