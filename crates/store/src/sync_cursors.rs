//! Positions of the reads of Stripe's REST API (backfill, catch-up), and the questions those
//! reads ask of what the pipeline already holds.

use std::collections::HashSet;

use crate::{Error, Store};

/// Which reader a cursor belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncJob {
    Backfill,
    CatchUp,
}

impl SyncJob {
    fn as_str(self) -> &'static str {
        match self {
            SyncJob::Backfill => "backfill",
            SyncJob::CatchUp => "catch_up",
        }
    }
}

/// Where one list's read got to (see the `stripe_sync_cursors` migration).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SyncCursor {
    /// `created` range read, unix seconds, both ends included; `None`: from the beginning.
    pub since: Option<i64>,
    pub until: i64,
    /// The last object of the last page durably written; the next page starts after it.
    pub starting_after: Option<String>,
    pub objects: i64,
    pub done: bool,
}

impl Store {
    /// The cursor of `list` read by `job` for `account` ('' for the platform's own).
    pub async fn sync_cursor(
        &self,
        job: SyncJob,
        account: &str,
        list: &str,
    ) -> Result<Option<SyncCursor>, Error> {
        Ok(sqlx::query_as(
            "SELECT since, until, starting_after, objects, done FROM stripe_sync_cursors
             WHERE job = $1 AND account = $2 AND list = $3",
        )
        .bind(job.as_str())
        .bind(account)
        .bind(list)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Records `cursor`, replacing what was there. Called only after the objects it covers are
    /// durably in Kafka, so a resume never skips one.
    pub async fn save_sync_cursor(
        &self,
        job: SyncJob,
        account: &str,
        list: &str,
        cursor: &SyncCursor,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO stripe_sync_cursors
                 (job, account, list, since, until, starting_after, objects, done, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
             ON CONFLICT (job, account, list) DO UPDATE SET
                 since = EXCLUDED.since, until = EXCLUDED.until,
                 starting_after = EXCLUDED.starting_after, objects = EXCLUDED.objects,
                 done = EXCLUDED.done, updated_at = now()",
        )
        .bind(job.as_str())
        .bind(account)
        .bind(list)
        .bind(cursor.since)
        .bind(cursor.until)
        .bind(&cursor.starting_after)
        .bind(cursor.objects)
        .bind(cursor.done)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Forgets every cursor of `job` for `account`, so the next run starts over.
    pub async fn forget_sync_cursors(&self, job: SyncJob, account: &str) -> Result<u64, Error> {
        let done = sqlx::query("DELETE FROM stripe_sync_cursors WHERE job = $1 AND account = $2")
            .bind(job.as_str())
            .bind(account)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// The ids among `ids` whose events are stored.
    pub async fn stored_event_ids(&self, ids: &[String]) -> Result<HashSet<String>, Error> {
        let stored: Vec<String> =
            sqlx::query_scalar("SELECT event_id FROM stripe_events WHERE event_id = ANY($1)")
                .bind(ids)
                .fetch_all(self.pool())
                .await?;
        Ok(stored.into_iter().collect())
    }
}

/// Held while one process runs catch-up; others skip their round. The lock is Postgres's
/// (session-level, advisory) and goes with the connection when this is dropped.
#[derive(Debug)]
pub struct SyncLock {
    _connection: sqlx::PgConnection,
}

/// The advisory lock key of catch-up ("cs-sync" in ASCII).
const SYNC_LOCK: i64 = 0x0063_732d_7379_6e63;

impl Store {
    /// The catch-up lock, or `None` when another process holds it.
    pub async fn try_sync_lock(&self) -> Result<Option<SyncLock>, Error> {
        let mut connection = self.pool().acquire().await?.detach();
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(SYNC_LOCK)
            .fetch_one(&mut connection)
            .await?;
        Ok(locked.then_some(SyncLock {
            _connection: connection,
        }))
    }
}
