//! The overview's windows (migration 0021): sums over the days just before `as_of`, so that a
//! preset range (the last 7 or 30 days, or the period before one) reads one row per card,
//! merchant or category instead of one per day. Kept in step by the fold for the days a
//! batch changes before `as_of`, and rebuilt from the daily rollups when the UTC day changes.
//! Both happen under the rebuild lock (batches take it shared, a rebuild exclusively), so a
//! rebuild never misses a batch in flight.

use std::collections::HashMap;

use sqlx::PgConnection;

use crate::program::DayRange;
use crate::program_rollups::{Emptied, delete_emptied};
use crate::{Error, REBUILD_LOCK, Store};

/// A card's windows, in days before `as_of`: the 7- and 30-day presets without today.
pub(crate) const CARD: [i16; 2] = [6, 29];
/// A merchant's.
pub(crate) const MERCHANT: [i16; 2] = [6, 29];
/// A category's, also the periods just before the presets (13 − 6 and 59 − 29), whose
/// totals the overview compares against; the program's totals are sums over categories.
pub(crate) const CATEGORY: [i16; 4] = [6, 13, 29, 59];

/// Today as a UTC day number, by Postgres's clock (the one the fold's days are compared to).
const TODAY: &str = "floor(extract(epoch FROM now()) / 86400)::int4";

/// [`TODAY`], read.
pub(crate) async fn today(conn: &mut PgConnection) -> Result<i32, Error> {
    Ok(sqlx::query_scalar(&format!("SELECT {TODAY}"))
        .fetch_one(conn)
        .await?)
}

/// What the program's windows are kept by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Category,
    Merchant,
}

impl Kind {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Kind::Category => "g",
            Kind::Merchant => "m",
        }
    }

    pub(crate) fn sizes(self) -> &'static [i16] {
        match self {
            Kind::Category => &CATEGORY,
            Kind::Merchant => &MERCHANT,
        }
    }
}

/// The windows of `sizes` that hold `day`, as of `as_of`.
fn holding(day: i32, as_of: i32, sizes: &[i16]) -> impl Iterator<Item = i16> + '_ {
    sizes
        .iter()
        .copied()
        .filter(move |&w| day < as_of && day >= as_of - i32::from(w))
}

/// How a range reads from the windows: each window's sum with its sign (+1 or −1), plus
/// `as_of`'s own rows from the daily rollups when `today`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) days: Vec<i16>,
    pub(crate) signs: Vec<i32>,
    pub(crate) today: bool,
}

impl Plan {
    /// `range` as windows of `sizes` as of `as_of`, if it is one (ending today or before,
    /// starting where a window starts); `None` for any other range.
    pub(crate) fn of(range: DayRange, as_of: i32, sizes: &[i16]) -> Option<Plan> {
        let today = range.to == as_of + 1;
        let upper = if today { as_of } else { range.to };
        if upper > as_of || range.from > upper {
            return None;
        }
        let mut plan = Plan {
            days: Vec::new(),
            signs: Vec::new(),
            today,
        };
        for (edge, sign) in [(range.from, 1), (upper, -1)] {
            let days = i16::try_from(as_of - edge).ok()?;
            if days == 0 {
                continue;
            }
            if !sizes.contains(&days) {
                return None;
            }
            plan.days.push(days);
            plan.signs.push(sign);
        }
        (today || !plan.days.is_empty()).then_some(plan)
    }
}

/// The day the windows are kept as of, if they are kept (none until the first rebuild).
pub(crate) async fn as_of(conn: &mut PgConnection) -> Result<Option<i32>, Error> {
    Ok(
        sqlx::query_scalar("SELECT as_of - DATE '1970-01-01' FROM rollup_window_state")
            .fetch_optional(conn)
            .await?,
    )
}

/// `(currency, days, card_id) → (spend, captures)`.
type CardKey = (String, i16, String);
/// `(kind, currency, days, account, key) → (spend, captures, refunds)`.
type ProgramKey = (Kind, String, i16, String, String);

/// What a batch changes in the windows.
#[derive(Debug, Default)]
pub(crate) struct WindowDeltas {
    cards: HashMap<CardKey, (i64, i32)>,
    program: HashMap<ProgramKey, (i64, i32, i32)>,
}

impl WindowDeltas {
    /// A card's change on `day`.
    pub(crate) fn card(
        &mut self,
        as_of: i32,
        (card, day, currency): (&str, i32, &str),
        spend: i64,
        captures: i32,
    ) {
        if spend == 0 && captures == 0 {
            return;
        }
        for w in holding(day, as_of, &CARD) {
            let e = self
                .cards
                .entry((currency.to_owned(), w, card.to_owned()))
                .or_default();
            e.0 += spend;
            e.1 += captures;
        }
    }

    /// A category's or merchant's change on `day`.
    pub(crate) fn program(
        &mut self,
        as_of: i32,
        kind: Kind,
        (day, currency, account, key): (i32, &str, &str, &str),
        (spend, captures, refunds): (i64, i32, i32),
    ) {
        for w in holding(day, as_of, kind.sizes()) {
            let e = self
                .program
                .entry((
                    kind,
                    currency.to_owned(),
                    w,
                    account.to_owned(),
                    key.to_owned(),
                ))
                .or_default();
            e.0 += spend;
            e.1 += captures;
            e.2 += refunds;
        }
    }

    /// Applies the deltas; rows that come back to zero go, as a rebuild would not have them.
    pub(crate) async fn apply<'a>(
        &self,
        conn: &mut PgConnection,
        account_of: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<(), Error> {
        let cards: Vec<_> = self.cards.iter().filter(|(_, v)| **v != (0, 0)).collect();
        if !cards.is_empty() {
            let emptied: Vec<Emptied> = sqlx::query_as(
                "INSERT INTO card_windows AS t (currency, days, card_id, account, spend, captures)
                     SELECT * FROM unnest($1::text[], $2::int2[], $3::text[], $4::text[],
                                          $5::int8[], $6::int4[])
                     ON CONFLICT (currency, days, card_id) DO UPDATE SET
                         account = COALESCE(excluded.account, t.account),
                         spend = t.spend + excluded.spend,
                         captures = t.captures + excluded.captures
                     RETURNING ctid::text, spend = 0 AND captures = 0",
            )
            .bind(cards.iter().map(|(k, _)| k.0.as_str()).collect::<Vec<_>>())
            .bind(cards.iter().map(|(k, _)| k.1).collect::<Vec<_>>())
            .bind(cards.iter().map(|(k, _)| k.2.as_str()).collect::<Vec<_>>())
            .bind(
                cards
                    .iter()
                    .map(|(k, _)| account_of(&k.2))
                    .collect::<Vec<_>>(),
            )
            .bind(cards.iter().map(|(_, v)| v.0).collect::<Vec<_>>())
            .bind(cards.iter().map(|(_, v)| v.1).collect::<Vec<_>>())
            .fetch_all(&mut *conn)
            .await?;
            delete_emptied(conn, "card_windows", emptied).await?;
        }
        let program: Vec<_> = self
            .program
            .iter()
            .filter(|(_, v)| **v != (0, 0, 0))
            .collect();
        if !program.is_empty() {
            let text =
                |f: fn(&ProgramKey) -> &str| program.iter().map(|(k, _)| f(k)).collect::<Vec<_>>();
            let emptied: Vec<Emptied> = sqlx::query_as(
                "INSERT INTO program_windows AS t
                         (kind, currency, days, account, key, spend, captures, refunds)
                     SELECT kind::\"char\", currency, days, account, key, spend, captures, refunds
                     FROM unnest($1::text[], $2::text[], $3::int2[], $4::text[], $5::text[],
                                 $6::int8[], $7::int4[], $8::int4[])
                          AS d(kind, currency, days, account, key, spend, captures, refunds)
                     ON CONFLICT (kind, currency, days, account, key) DO UPDATE SET
                         spend = t.spend + excluded.spend,
                         captures = t.captures + excluded.captures,
                         refunds = t.refunds + excluded.refunds
                     RETURNING ctid::text, spend = 0 AND captures = 0 AND refunds = 0",
            )
            .bind(text(|k| k.0.code()))
            .bind(text(|k| &k.1))
            .bind(program.iter().map(|(k, _)| k.2).collect::<Vec<_>>())
            .bind(text(|k| &k.3))
            .bind(text(|k| &k.4))
            .bind(program.iter().map(|(_, v)| v.0).collect::<Vec<_>>())
            .bind(program.iter().map(|(_, v)| v.1).collect::<Vec<_>>())
            .bind(program.iter().map(|(_, v)| v.2).collect::<Vec<_>>())
            .fetch_all(&mut *conn)
            .await?;
            delete_emptied(conn, "program_windows", emptied).await?;
        }
        Ok(())
    }
}

/// The windows as of `$1` (a day number), recomputed from the daily rollups: one query per
/// table, each yielding the table's columns in order. Shared by the rebuild and by the drift
/// check, so that what is checked is what is built.
pub(crate) fn expected() -> [(&'static str, String); 2] {
    let program = |kind: Kind, table: &str, column: &str| {
        format!(
            "SELECT '{code}'::\"char\", currency, w.days, account, {column}, sum(spend)::int8,
                    sum(captures)::int4, sum(refunds)::int4
             FROM {table} JOIN unnest('{{{sizes}}}'::int2[]) AS w(days)
               ON day >= DATE '1970-01-01' + $1 - w.days AND day < DATE '1970-01-01' + $1
             GROUP BY 2, 3, 4, 5
             HAVING NOT (sum(spend) = 0 AND sum(captures) = 0 AND sum(refunds) = 0)",
            code = kind.code(),
            sizes = list(kind.sizes()),
        )
    };
    [
        (
            "card_windows",
            format!(
                "SELECT currency, w.days, card_id, max(account), sum(spend)::int8,
                        sum(captures)::int4
                 FROM card_daily_spend JOIN unnest('{{{}}}'::int2[]) AS w(days)
                   ON day >= DATE '1970-01-01' + $1 - w.days AND day < DATE '1970-01-01' + $1
                 GROUP BY 1, 2, 3
                 HAVING sum(spend) <> 0 OR sum(captures) <> 0",
                list(&CARD)
            ),
        ),
        (
            "program_windows",
            format!(
                "{} UNION ALL {}",
                program(Kind::Category, "program_category_daily", "category"),
                program(Kind::Merchant, "program_merchant_daily", "merchant"),
            ),
        ),
    ]
}

fn list(sizes: &[i16]) -> String {
    sizes
        .iter()
        .map(i16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Rebuilds every window as of `as_of`. The caller holds the rebuild lock exclusively (or
/// is a replay, which does).
pub(crate) async fn rebuild(conn: &mut PgConnection, as_of: i32) -> Result<(), Error> {
    for (table, query) in expected() {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut *conn)
            .await?;
        sqlx::query(&format!("INSERT INTO {table} {query}"))
            .bind(as_of)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(
        "INSERT INTO rollup_window_state (as_of) VALUES (DATE '1970-01-01' + $1)
         ON CONFLICT (only_row) DO UPDATE SET as_of = excluded.as_of",
    )
    .bind(as_of)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// Rebuilds the windows as of today (UTC) unless they already are; returns whether it
    /// did. Every aggregator calls this now and then: the first after midnight rebuilds,
    /// waiting for the batches in flight and holding the next ones back meanwhile (a few
    /// hundred milliseconds on a million transactions); the others find it done.
    pub async fn refresh_windows(&self) -> Result<bool, Error> {
        let current: bool = sqlx::query_scalar(&format!(
            "SELECT EXISTS (SELECT 1 FROM rollup_window_state
                            WHERE as_of = DATE '1970-01-01' + {TODAY})"
        ))
        .fetch_one(self.pool())
        .await?;
        if current {
            return Ok(false);
        }
        let mut tx = self.rebuilding().await?;
        let today = today(&mut tx).await?;
        if as_of(&mut tx).await? == Some(today) {
            return Ok(false);
        }
        rebuild(&mut tx, today).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Rebuilds the windows as of `as_of` (a day number), whatever day it is: for tests of a
    /// day change.
    pub async fn rebuild_windows(&self, as_of: i32) -> Result<(), Error> {
        let mut tx = self.rebuilding().await?;
        rebuild(&mut tx, as_of).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A transaction holding the rebuild lock exclusively: batches in flight have committed,
    /// and the next wait for it.
    async fn rebuilding(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, Error> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(REBUILD_LOCK)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(from: i32, to: i32) -> DayRange {
        DayRange { from, to }
    }

    #[test]
    fn presets_and_the_periods_before_them_are_windows() {
        let today = 100;
        // The last 30 days: 29 before today, and today.
        let p = Plan::of(range(71, 101), today, &CATEGORY).unwrap();
        assert_eq!((p.days, p.signs, p.today), (vec![29], vec![1], true));
        // The 30 days before those: 59 before today less the 29 just before it.
        let p = Plan::of(range(41, 71), today, &CATEGORY).unwrap();
        assert_eq!(
            (p.days, p.signs, p.today),
            (vec![59, 29], vec![1, -1], false)
        );
        // Today alone reads today's rows only.
        let p = Plan::of(range(100, 101), today, &CATEGORY).unwrap();
        assert_eq!((p.days, p.today), (vec![], true));
        // The 7 days before the last 7.
        let p = Plan::of(range(87, 94), today, &CATEGORY).unwrap();
        assert_eq!((p.days, p.signs), (vec![13, 6], vec![1, -1]));
    }

    #[test]
    fn other_ranges_read_the_daily_rollups() {
        let today = 100;
        // Starting where no window starts, ending in the future, or ending after the day
        // the windows are kept as of.
        assert_eq!(Plan::of(range(80, 101), today, &CATEGORY), None);
        assert_eq!(Plan::of(range(71, 102), today, &CATEGORY), None);
        assert_eq!(Plan::of(range(71, 101), 99, &CARD), None);
        // A merchant has no 59-day window.
        assert_eq!(Plan::of(range(41, 71), today, &MERCHANT), None);
    }

    #[test]
    fn a_day_is_in_the_windows_that_reach_back_to_it() {
        let of = |day| holding(day, 100, &CATEGORY).collect::<Vec<_>>();
        assert_eq!(of(99), vec![6, 13, 29, 59]);
        assert_eq!(of(94), vec![6, 13, 29, 59]);
        assert_eq!(of(93), vec![13, 29, 59]);
        assert_eq!(of(41), vec![59]);
        assert_eq!(of(40), Vec::<i16>::new());
        // Today's rows are read from the daily rollups, never from a window.
        assert_eq!(of(100), Vec::<i16>::new());
    }
}
