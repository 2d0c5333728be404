//! After the load: wait until the aggregators have drained the topic, then compare what the
//! gateway acknowledged with what Postgres holds.
//!
//! - lost: an event id a webhook delivery was answered 2xx for, not in `stripe_events`. The
//!   gateway answers a webhook only after the broker acknowledged it, so this must be 0.
//!   Authorization requests are counted apart: their 2xx is the decision, and the gateway
//!   produces the request event in the background (README, Gateway), so a missing one is
//!   reported but is not a broken promise.
//! - double-counted: transactions the rollups count more often than the stored raw events hold
//!   them (captures and refunds in `card_daily_spend` against distinct transaction ids in
//!   `issuing_transaction.created` payloads). An event stored twice is not counted apart:
//!   `stripe_events.event_id` is the primary key, so Postgres cannot hold one twice, and a
//!   count of such rows could never be anything but 0.
//! - rollup drift: rows of the rollups that differ from a recomputation from the base tables
//!   (`Store::rollup_drift`, what `cardstream verify` checks).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::Context;
use cardstream_simulator::{Script, Step};
use cardstream_store::RollupDrift;

use super::load::{Spec, TIME_STEP_MS};
use super::system::{System, TOPIC};

const DRAIN_TIMEOUT: Duration = Duration::from_secs(90);
/// The row count must hold still this long, with no lag, to call the topic drained.
const SETTLED: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub(crate) struct Drained {
    pub(crate) at: Instant,
    /// Records the group had not committed when the drill stopped waiting (0 when drained).
    pub(crate) lag: i64,
}

/// Waits until the group's lag is 0 and the stored events stop changing (or 90 s passed).
pub(crate) async fn drain(system: &System) -> anyhow::Result<Drained> {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let mut last = (-1, Instant::now());
    loop {
        let lag = system.lag().await.unwrap_or(-1);
        let stored = stored_count(system).await?;
        if stored != last.0 {
            last = (stored, Instant::now());
        }
        if lag == 0 && last.1.elapsed() >= SETTLED {
            return Ok(Drained {
                at: Instant::now(),
                lag,
            });
        }
        if Instant::now() >= deadline {
            return Ok(Drained {
                at: Instant::now(),
                lag,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn stored_count(system: &System) -> anyhow::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM stripe_events")
        .fetch_one(system.store.pool())
        .await
        .context("cannot count the stored events")
}

#[derive(Debug, Default)]
pub(crate) struct Reconciliation {
    /// Distinct event ids answered 2xx.
    pub(crate) acknowledged: usize,
    pub(crate) stored: i64,
    /// Acknowledged webhook events missing from Postgres.
    pub(crate) lost: Vec<String>,
    /// Acknowledged (decided) authorization requests whose event is missing from Postgres.
    pub(crate) requests_missing: Vec<String>,
    /// Stored although never answered 2xx: a delivery that timed out or got 503 but reached
    /// the broker after all (at-least-once; Stripe's retry is then a harmless duplicate).
    pub(crate) stored_unacknowledged: usize,
    /// Captures and refunds counted in the daily rollup.
    pub(crate) rollup_transactions: i64,
    /// Distinct capture and refund transactions among the stored raw events.
    pub(crate) raw_transactions: i64,
    pub(crate) drift: RollupDrift,
    /// Records in the dead-letter topic; `None` when the broker could not say.
    pub(crate) dead_letters: Option<i64>,
}

impl Reconciliation {
    pub(crate) fn double_counted(&self) -> i64 {
        (self.rollup_transactions - self.raw_transactions).max(0)
    }

    pub(crate) fn drift_rows(&self) -> i64 {
        self.drift.daily + self.drift.category + self.drift.merchant + self.drift.program
    }
}

/// Compares `acknowledged` (every id answered 2xx, repeats included) with Postgres. `specs`
/// are the simulators that ran, to tell webhook events from authorization requests among
/// missing ids; `generated` bounds how far to regenerate their scripts.
pub(crate) async fn reconcile(
    system: &System,
    acknowledged: &[String],
    specs: &[Spec],
    generated: u64,
) -> anyhow::Result<Reconciliation> {
    let pool = system.store.pool();
    let stored: Vec<String> = sqlx::query_scalar("SELECT event_id FROM stripe_events")
        .fetch_all(pool)
        .await
        .context("cannot read the stored event ids")?;
    let stored_set: HashSet<&str> = stored.iter().map(String::as_str).collect();
    let acknowledged: HashSet<&str> = acknowledged.iter().map(String::as_str).collect();
    let missing: Vec<&str> = acknowledged
        .iter()
        .copied()
        .filter(|id| !stored_set.contains(id))
        .collect();
    let requests = if missing.is_empty() {
        HashSet::new()
    } else {
        authorization_requests(specs, generated)
    };
    let (requests_missing, lost): (Vec<String>, Vec<String>) = missing
        .into_iter()
        .map(str::to_owned)
        .partition(|id| requests.contains(id));

    let (rollup_transactions, raw_transactions): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT coalesce(sum(captures + refunds), 0) FROM card_daily_spend)::int8,
                (SELECT count(DISTINCT payload #>> '{data,object,id}') FROM stripe_events
                 WHERE event_type = 'issuing_transaction.created'
                   AND payload #>> '{data,object,type}' IN ('capture', 'refund'))::int8",
    )
    .fetch_one(pool)
    .await
    .context("cannot count the transactions")?;
    let drift = system
        .store
        .rollup_drift()
        .await
        .context("cannot recompute the rollups")?;
    Ok(Reconciliation {
        acknowledged: acknowledged.len(),
        stored: stored.len() as i64,
        lost,
        requests_missing,
        stored_unacknowledged: stored_set
            .iter()
            .filter(|id| !acknowledged.contains(*id))
            .count(),
        rollup_transactions,
        raw_transactions,
        drift,
        dead_letters: dead_letters(system).await,
    })
}

/// The ids of the `issuing_authorization.request` events the simulators' scripts hold. The
/// script does not depend on the gateway's answers, so with the same seed, cards and start it
/// gives the same ids.
fn authorization_requests(specs: &[Spec], generated: u64) -> HashSet<String> {
    let mut ids = HashSet::new();
    for spec in specs {
        let mut script = Script::new(spec.seed, spec.cards, Some(spec.start), TIME_STEP_MS);
        // Each purchase makes at least one event, so `generated` purchases cover the run.
        let mut purchases = 0;
        while purchases < generated {
            if let Step::Purchase(purchase) = script.next_step() {
                purchases += 1;
                if let Some(request) = purchase.request() {
                    ids.insert(request.id);
                }
            }
        }
    }
    ids
}

/// A broker that failed in the drill cannot answer; the rest of the reconciliation needs only
/// Postgres, so that is not an error.
async fn dead_letters(system: &System) -> Option<i64> {
    let dlq = cardstream_kafka::dlq_topic(TOPIC);
    let ends = cardstream_kafka::group_lag(&system.kafka, "cardstream-drill", &dlq)
        .await
        .ok()?;
    Some(ends.iter().map(|(lag, start)| lag.end - start).sum())
}
