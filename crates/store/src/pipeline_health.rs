//! The health page's read: the processes' reports and counts (migration 0020) and the dead
//! letters waiting, in three statements, timed by the database's clock so that "how long
//! ago" does not depend on the API host's.

use crate::{Error, Store};

/// One process's last report.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ComponentReport {
    pub instance: String,
    pub component: String,
    pub version: String,
    /// Unix seconds.
    pub started_at: f64,
    pub reported_at: f64,
    pub ready: bool,
    pub not_ready: Option<String>,
    pub every_ms: i32,
    pub details: serde_json::Value,
}

/// What processes of one component counted in one minute.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MinuteCount {
    /// Unix seconds at the minute's start.
    pub minute: i64,
    pub component: String,
    pub metric: String,
    pub label: String,
    pub count: i64,
}

/// Everything the health page shows, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineSnapshot {
    /// The database's clock, unix seconds.
    pub now: f64,
    /// Every process that reported in the last day, by component then instance.
    pub components: Vec<ComponentReport>,
    /// The counts of the last `minutes` minutes (the current one included), oldest first.
    pub counts: Vec<MinuteCount>,
    /// Dead letters not redriven.
    pub dead_letters_waiting: i64,
    /// Of those, redrives asked for in the console and not yet done.
    pub redrives_requested: i64,
}

impl Store {
    /// The processes' reports, their counts over the last `minutes` minutes, and the dead
    /// letters waiting.
    pub async fn pipeline_snapshot(&self, minutes: i32) -> Result<PipelineSnapshot, Error> {
        let mut conn = self.pool().acquire().await?;
        let now: f64 = sqlx::query_scalar("SELECT extract(epoch FROM now())::float8")
            .fetch_one(&mut *conn)
            .await?;
        let components = sqlx::query_as(
            "SELECT instance, component, version,
                    extract(epoch FROM started_at)::float8 AS started_at,
                    extract(epoch FROM reported_at)::float8 AS reported_at,
                    ready, not_ready, every_ms, details
             FROM pipeline_components ORDER BY component, instance",
        )
        .fetch_all(&mut *conn)
        .await?;
        let counts = sqlx::query_as(
            "SELECT extract(epoch FROM minute)::int8 AS minute, component, metric, label,
                    count
             FROM pipeline_counts
             WHERE minute > date_trunc('minute', now()) - make_interval(mins => $1)
             ORDER BY minute, component, metric, label",
        )
        .bind(minutes)
        .fetch_all(&mut *conn)
        .await?;
        let (dead_letters_waiting, redrives_requested): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(redrive_requested_at)
             FROM dead_letters WHERE redriven_at IS NULL",
        )
        .fetch_one(&mut *conn)
        .await?;
        self.tally(4);
        Ok(PipelineSnapshot {
            now,
            components,
            counts,
            dead_letters_waiting,
            redrives_requested,
        })
    }
}
