//! Card spend for the authorization policy's limits, held in memory.
//!
//! A decision must never wait on Postgres, so the gateway reads spend from a snapshot that a
//! background task refreshes from the rollups (captures minus refunds per UTC day) and the
//! approved holds not yet captured ([`Store::card_spend`]). Approvals the gateway itself gives
//! are added to a small local ledger until a snapshot taken well after them includes them, so
//! two quick purchases cannot both slip under a limit between refreshes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use cardstream_policy::{Spend, SpendView};
use cardstream_store::Store;
use cardstream_stripe::{Currency, Money};
use cardstream_telemetry::CancellationToken;

use crate::Error;

/// Settings of the gateway's spend cache.
#[derive(clap::Args, Debug, Clone)]
pub struct SpendCacheArgs {
    /// How often card spend is re-read from Postgres for the spend limits.
    #[arg(
        long = "spend-refresh-interval",
        env = "CARDSTREAM_SPEND_REFRESH_INTERVAL",
        default_value = "1s",
        value_parser = humantime::parse_duration
    )]
    pub refresh_interval: Duration,

    /// Spend read longer ago than this is stale: limits then follow the policy's
    /// `on_spend_unknown`.
    #[arg(
        long = "spend-max-staleness",
        env = "CARDSTREAM_SPEND_MAX_STALENESS",
        default_value = "15s",
        value_parser = humantime::parse_duration
    )]
    pub max_staleness: Duration,

    /// How long an approval given here is counted locally before a refresh is trusted to
    /// include it (the time from answer to stored hold, with margin).
    #[arg(
        long = "spend-ledger-window",
        env = "CARDSTREAM_SPEND_LEDGER_WINDOW",
        default_value = "5s",
        value_parser = humantime::parse_duration
    )]
    pub ledger_window: Duration,
}

#[derive(Debug, Default)]
struct Snapshot {
    /// When the query that produced it started; `None` before the first load.
    taken_at: Option<Instant>,
    /// The UTC day it was taken on (days since 1970-01-01).
    day: i32,
    spend: HashMap<(String, Currency), (i64, i64)>,
}

#[derive(Debug)]
struct Inner {
    snapshot: ArcSwap<Snapshot>,
    ledger: Mutex<Vec<(Instant, String, Money)>>,
    args: SpendCacheArgs,
}

/// Spend per card and currency for today and this month, from memory.
#[derive(Debug, Clone)]
pub struct SpendCache {
    inner: Arc<Inner>,
}

/// The UTC day `now` falls on (days since 1970-01-01).
pub(crate) fn day_of(now: SystemTime) -> i32 {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i32::try_from(secs / 86_400).unwrap_or(i32::MAX)
}

/// The first day of the month containing `day` (days since 1970-01-01), in the proleptic
/// Gregorian calendar (Howard Hinnant's civil-from-days).
pub(crate) fn month_start(day: i32) -> i32 {
    let z = i64::from(day) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day_of_month = doy - (153 * mp + 2) / 5; // 0-based
    i32::try_from(i64::from(day) - day_of_month).unwrap_or(day)
}

impl SpendCache {
    pub fn new(args: SpendCacheArgs) -> Self {
        SpendCache {
            inner: Arc::new(Inner {
                snapshot: ArcSwap::from_pointee(Snapshot::default()),
                ledger: Mutex::new(Vec::new()),
                args,
            }),
        }
    }

    /// Re-reads spend from Postgres once.
    pub async fn refresh(&self, store: &Store) -> Result<(), Error> {
        self.refresh_at(store, SystemTime::now()).await
    }

    /// [`refresh`](Self::refresh) as of `now`: today and this month are `now`'s UTC day and
    /// calendar month. The clock is a parameter so that a test can stand on either side of a
    /// month's edge on any day.
    pub async fn refresh_at(&self, store: &Store, now: SystemTime) -> Result<(), Error> {
        let started = Instant::now();
        let day = day_of(now);
        let rows = store.card_spend(day, month_start(day)).await?;
        // A currency this build does not know cannot be asked about either.
        let spend = rows
            .into_iter()
            .filter_map(|r| Some(((r.card_id, r.currency.parse().ok()?), (r.day, r.month))))
            .collect();
        self.inner.snapshot.store(Arc::new(Snapshot {
            taken_at: Some(started),
            day,
            spend,
        }));
        // Approvals older than the window before this query are in it by now.
        let cutoff = started.checked_sub(self.inner.args.ledger_window);
        if let (Some(cutoff), Ok(mut ledger)) = (cutoff, self.inner.ledger.lock()) {
            ledger.retain(|(at, _, _)| *at >= cutoff);
        }
        Ok(())
    }

    /// Refreshes every `refresh_interval` until `shutdown`. Failures are reported to `on_error`
    /// and retried at the next tick; meanwhile the snapshot ages and eventually counts as stale.
    pub fn spawn_refresh(
        &self,
        store: Store,
        shutdown: CancellationToken,
        on_refresh: impl Fn(Result<(), &Error>) + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let cache = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(cache.inner.args.refresh_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                // Bounded, so a hung connection cannot stall refreshes forever.
                let bound = cache.inner.args.max_staleness;
                match tokio::time::timeout(bound, cache.refresh(&store)).await {
                    Ok(result) => on_refresh(result.as_ref().map(|_| ())),
                    Err(_) => on_refresh(Err(&Error::SpendReadTimedOut(bound))),
                }
            }
        })
    }

    /// Counts an approval just given, until a refresh includes it.
    pub fn record_approval(&self, card_id: &str, amount: Money) {
        if let Ok(mut ledger) = self.inner.ledger.lock() {
            ledger.push((Instant::now(), card_id.to_owned(), amount));
        }
    }

    /// Age of the snapshot, if one was ever loaded.
    pub fn age(&self) -> Option<Duration> {
        self.inner.snapshot.load().taken_at.map(|t| t.elapsed())
    }
}

impl SpendCache {
    /// [`SpendView::spend`] as of `now` (see [`refresh_at`](Self::refresh_at)).
    pub fn spend_at(&self, card_id: &str, currency: Currency, now: SystemTime) -> Spend {
        let snapshot = self.inner.snapshot.load();
        let fresh = snapshot
            .taken_at
            .is_some_and(|t| t.elapsed() <= self.inner.args.max_staleness);
        // After midnight UTC the snapshot's "today" is yesterday until the next refresh.
        if !fresh || snapshot.day != day_of(now) {
            return Spend::Unknown;
        }
        let (mut day, mut month) = snapshot
            .spend
            .get(&(card_id.to_owned(), currency))
            .copied()
            .unwrap_or((0, 0));
        if let Ok(ledger) = self.inner.ledger.lock() {
            for (_, card, money) in ledger.iter() {
                if card == card_id && money.currency == currency {
                    day = day.saturating_add(money.amount);
                    month = month.saturating_add(money.amount);
                }
            }
        }
        Spend::Known { day, month }
    }
}

impl SpendView for SpendCache {
    fn spend(&self, card_id: &str, currency: Currency) -> Spend {
        self.spend_at(card_id, currency, SystemTime::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_starts_are_right() {
        // 2024-02-29 is day 19782; February 2024 starts on day 19754.
        assert_eq!(month_start(19_782), 19_754);
        assert_eq!(month_start(19_754), 19_754);
        // 2026-11-25 (day 20417) is in November 2026, which starts on day 20393.
        assert_eq!(month_start(20_417), 20_393);
        assert_eq!(month_start(0), 0);
        // 1970-01-31 is day 30; 1970-02-01 is day 31.
        assert_eq!(month_start(30), 0);
        assert_eq!(month_start(31), 31);
    }

    fn args() -> SpendCacheArgs {
        SpendCacheArgs {
            refresh_interval: Duration::from_secs(1),
            max_staleness: Duration::from_secs(60),
            ledger_window: Duration::from_secs(5),
        }
    }

    fn load(cache: &SpendCache, taken_at: Instant, spend: &[(&str, Currency, i64, i64)]) {
        cache.inner.snapshot.store(Arc::new(Snapshot {
            taken_at: Some(taken_at),
            day: day_of(SystemTime::now()),
            spend: spend
                .iter()
                .map(|&(card, currency, d, m)| ((card.to_owned(), currency), (d, m)))
                .collect(),
        }));
    }

    #[test]
    fn snapshot_plus_local_approvals_until_stale() {
        let cache = SpendCache::new(args());
        assert_eq!(cache.spend("ic_1", Currency::USD), Spend::Unknown);
        load(&cache, Instant::now(), &[("ic_1", Currency::USD, 100, 900)]);
        assert_eq!(
            cache.spend("ic_1", Currency::USD),
            Spend::Known {
                day: 100,
                month: 900
            }
        );
        assert_eq!(
            cache.spend("ic_2", Currency::USD),
            Spend::Known { day: 0, month: 0 }
        );
        cache.record_approval("ic_1", Money::new(50, Currency::USD));
        cache.record_approval("ic_1", Money::new(7, Currency::EUR));
        assert_eq!(
            cache.spend("ic_1", Currency::USD),
            Spend::Known {
                day: 150,
                month: 950
            }
        );
        // Taken longer ago than the staleness bound: not to be decided with.
        if let Some(long_ago) = Instant::now().checked_sub(Duration::from_secs(61)) {
            load(&cache, long_ago, &[("ic_1", Currency::USD, 100, 900)]);
            assert_eq!(cache.spend("ic_1", Currency::USD), Spend::Unknown);
        }
    }
}
