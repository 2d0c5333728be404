//! The program overview's reads: the whole program's spend, outcomes and top cards over a
//! range of days, from the program rollups (migration 0016) and the card rollup, never the
//! base tables (the live feed is `Store::program_activity`, a page read by an index). A
//! preset's range (the last 7 or 30 days, or the period before) reads the windows (0021):
//! one row per card, merchant or category for the days before today, plus today's rows.

use crate::windows::{self, Plan};
use crate::{Accounts, Error, Store};

/// Days from `from` to `to`, `from` included and `to` not, as days since 1970-01-01 (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DayRange {
    pub from: i32,
    pub to: i32,
}

impl DayRange {
    /// The range of the same length just before this one, to compare against.
    pub fn previous(&self) -> DayRange {
        DayRange {
            from: self.from - (self.to - self.from),
            to: self.from,
        }
    }
}

/// The program's spend in one currency over a range.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProgramSpend {
    pub currency: String,
    /// Captures minus refunds.
    pub spend: i64,
    pub captures: i64,
    pub refunds: i64,
}

/// Spend under one key (a day, a category, a merchant or a card) in one currency.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProgramKeyed {
    pub key: String,
    pub spend: i64,
    pub captures: i64,
}

/// Authorizations with one outcome: approved, or declined with these reasons.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProgramOutcome {
    pub approved: bool,
    /// Stripe's reason ('' when none).
    pub reason: String,
    /// cardstream's own reason ('' when none).
    pub cardstream_reason: String,
    pub authorizations: i64,
}

/// What the program's spend is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProgramKey {
    Day,
    Category,
    Merchant,
    Card,
}

/// The accounts as a nullable array for SQL: NULL is every account.
fn only(accounts: &Accounts) -> Option<Vec<String>> {
    match accounts {
        Accounts::All => None,
        Accounts::Only(only) => Some(only.clone()),
    }
}

/// Reads in one snapshot: the windows' day, then the windows or the daily rollups.
type Snapshot = sqlx::Transaction<'static, sqlx::Postgres>;

impl Store {
    /// A read-only transaction whose statements all see the same snapshot, so that the
    /// windows read are those of the day read (a rebuild may commit between the two).
    async fn snapshot(&self) -> Result<Snapshot, Error> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// How `range` reads from the windows of `sizes`, if it can (see `windows::Plan`).
    async fn plan(
        tx: &mut Snapshot,
        range: DayRange,
        sizes: &[i16],
    ) -> Result<Option<(i32, Plan)>, Error> {
        Ok(windows::as_of(&mut *tx)
            .await?
            .and_then(|as_of| Some((as_of, Plan::of(range, as_of, sizes)?))))
    }

    /// Spend per currency over `range`, largest first.
    pub async fn program_spend(
        &self,
        accounts: &Accounts,
        range: DayRange,
    ) -> Result<Vec<ProgramSpend>, Error> {
        let mut tx = self.snapshot().await?;
        let rows =
            match Self::plan(&mut tx, range, &windows::CATEGORY).await? {
                Some((as_of, plan)) => sqlx::query_as(
                    "SELECT currency, sum(spend)::int8 AS spend, sum(captures)::int8 AS captures,
                            sum(refunds)::int8 AS refunds
                     FROM (
                         SELECT w.currency, t.sign * w.spend AS spend,
                                t.sign * w.captures AS captures, t.sign * w.refunds AS refunds
                         FROM unnest($2::int2[], $3::int4[]) AS t(days, sign)
                         JOIN program_windows w ON w.kind = 'g' AND w.days = t.days
                         WHERE $5::text[] IS NULL OR nullif(w.account, '') = ANY($5)
                         UNION ALL
                         SELECT currency, spend, captures, refunds FROM program_category_daily
                         WHERE $4 AND day = DATE '1970-01-01' + $1
                           AND ($5::text[] IS NULL OR nullif(account, '') = ANY($5))
                     ) s
                     GROUP BY currency
                     HAVING NOT (sum(spend) = 0 AND sum(captures) = 0 AND sum(refunds) = 0)
                     ORDER BY sum(spend) DESC, currency",
                )
                .bind(as_of)
                .bind(plan.days)
                .bind(plan.signs)
                .bind(plan.today)
                .bind(only(accounts))
                .fetch_all(&mut *tx)
                .await?,
                None => sqlx::query_as(
                    "SELECT currency, sum(spend)::int8 AS spend, sum(captures)::int8 AS captures,
                            sum(refunds)::int8 AS refunds
                     FROM program_category_daily
                     WHERE day >= DATE '1970-01-01' + $1 AND day < DATE '1970-01-01' + $2
                       AND ($3::text[] IS NULL OR account = ANY($3))
                     GROUP BY currency
                     ORDER BY sum(spend) DESC, currency",
                )
                .bind(range.from)
                .bind(range.to)
                .bind(only(accounts))
                .fetch_all(&mut *tx)
                .await?,
            };
        tx.commit().await?;
        Ok(rows)
    }

    /// Spend in `currency` over `range` by `key`, largest first (by day: oldest first, days
    /// as `YYYY-MM-DD`), at most `limit` keys.
    pub async fn program_keyed(
        &self,
        accounts: &Accounts,
        currency: &str,
        range: DayRange,
        key: ProgramKey,
        limit: i64,
    ) -> Result<Vec<ProgramKeyed>, Error> {
        let (table, column, order) = match key {
            ProgramKey::Day => ("program_category_daily", "day::text", "1"),
            ProgramKey::Category => ("program_category_daily", "category", "2 DESC, 1"),
            ProgramKey::Merchant => ("program_merchant_daily", "merchant", "2 DESC, 1"),
            // The card rollup's covering index (migration 0016) answers this from the index.
            ProgramKey::Card => ("card_daily_spend", "card_id", "2 DESC, 1"),
        };
        let account = if key == ProgramKey::Card {
            "account"
        } else {
            "nullif(account, '')"
        };
        // Where the range is a preset's, its windows (one row per key), else every day's row.
        let windowed = match key {
            ProgramKey::Day => None,
            ProgramKey::Category => Some((
                windows::Kind::Category.sizes(),
                "program_windows",
                "key",
                "w.kind = 'g' AND",
                "nullif(w.account, '')",
            )),
            ProgramKey::Merchant => Some((
                windows::Kind::Merchant.sizes(),
                "program_windows",
                "key",
                "w.kind = 'm' AND",
                "nullif(w.account, '')",
            )),
            ProgramKey::Card => Some((
                &windows::CARD[..],
                "card_windows",
                "card_id",
                "",
                "w.account",
            )),
        };
        let mut tx = self.snapshot().await?;
        let plan = match windowed {
            Some((sizes, ..)) => Self::plan(&mut tx, range, sizes).await?,
            None => None,
        };
        let rows = match (windowed, plan) {
            (Some((_, windows, wkey, kind, account_w)), Some((as_of, plan))) => {
                let sql = format!(
                    "SELECT key, sum(spend)::int8 AS spend, sum(captures)::int8 AS captures
                     FROM (
                         SELECT w.{wkey} AS key, t.sign * w.spend AS spend,
                                t.sign * w.captures AS captures
                         FROM unnest($6::int2[], $7::int4[]) AS t(days, sign)
                         JOIN {windows} w ON {kind} w.currency = $3 AND w.days = t.days
                         WHERE $4::text[] IS NULL OR {account_w} = ANY($4)
                         UNION ALL
                         SELECT {column}, spend, captures FROM {table}
                         WHERE $2 AND day = DATE '1970-01-01' + $1 AND currency = $3
                           AND ($4::text[] IS NULL OR {account} = ANY($4))
                     ) s
                     GROUP BY 1
                     HAVING sum(spend) <> 0 OR sum(captures) <> 0
                     ORDER BY {order}
                     LIMIT $5",
                );
                sqlx::query_as(&sql)
                    .bind(as_of)
                    .bind(plan.today)
                    .bind(currency)
                    .bind(only(accounts))
                    .bind(limit)
                    .bind(plan.days)
                    .bind(plan.signs)
                    .fetch_all(&mut *tx)
                    .await?
            }
            _ => {
                let sql = format!(
                    "SELECT {column} AS key, sum(spend)::int8 AS spend, sum(captures)::int8 AS captures
                     FROM {table}
                     WHERE day >= DATE '1970-01-01' + $1 AND day < DATE '1970-01-01' + $2
                       AND currency = $3 AND ($4::text[] IS NULL OR {account} = ANY($4))
                     GROUP BY 1
                     HAVING sum(spend) <> 0 OR sum(captures) <> 0
                     ORDER BY {order}
                     LIMIT $5"
                );
                sqlx::query_as(&sql)
                    .bind(range.from)
                    .bind(range.to)
                    .bind(currency)
                    .bind(only(accounts))
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await?
            }
        };
        tx.commit().await?;
        Ok(rows)
    }

    /// Authorizations created in `range` by outcome, in every currency.
    pub async fn program_outcomes(
        &self,
        accounts: &Accounts,
        range: DayRange,
    ) -> Result<Vec<ProgramOutcome>, Error> {
        Ok(sqlx::query_as(
            "SELECT approved, reason, cardstream_reason, sum(authorizations)::int8 AS authorizations
             FROM program_outcome_daily
             WHERE day >= DATE '1970-01-01' + $1 AND day < DATE '1970-01-01' + $2
               AND ($3::text[] IS NULL OR account = ANY($3))
             GROUP BY 1, 2, 3
             ORDER BY 4 DESC, 2, 3",
        )
        .bind(range.from)
        .bind(range.to)
        .bind(only(accounts))
        .fetch_all(self.pool())
        .await?)
    }
}
