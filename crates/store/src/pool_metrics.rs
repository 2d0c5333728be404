//! The connection pool as Prometheus sees it, read at each scrape: connections in use and idle,
//! and the pool's ceiling. A pool at its ceiling with nothing idle is where requests queue; how
//! long they queue is sampled by a probe that takes a connection every few seconds, because
//! sqlx 0.8's pool exposes neither its waiters nor a hook around `acquire` (sea-orm acquires
//! inside each query, out of reach).

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use prometheus::{Histogram, HistogramOpts, IntGauge, IntGaugeVec, Opts, Registry};

/// How often the probe waits for a connection like a query would.
const ACQUIRE_PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// Registered once per process for its pool.
#[derive(Debug, Clone)]
pub struct PoolMetrics {
    pool: sqlx::PgPool,
    connections: IntGaugeVec,
    max: IntGauge,
    /// The probe runs while this lives, that is while the registry holding these metrics does.
    _alive: Arc<()>,
}

impl PoolMetrics {
    pub fn register(
        pool: sqlx::PgPool,
        max_connections: u32,
        registry: &Registry,
    ) -> Result<(), prometheus::Error> {
        let connections = IntGaugeVec::new(
            Opts::new(
                "cardstream_database_pool_connections",
                "Postgres connections this process holds, by state (in_use, idle).",
            ),
            &["state"],
        )?;
        let max = IntGauge::new(
            "cardstream_database_pool_max_connections",
            "The most Postgres connections this process's pool opens.",
        )?;
        max.set(i64::from(max_connections));
        let acquire = Histogram::with_opts(
            HistogramOpts::new(
                "cardstream_database_pool_acquire_seconds",
                "Time a probe, every 5 s, waited for a connection from the pool: what a query waits before it runs.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
        )?;
        registry.register(Box::new(acquire.clone()))?;
        let alive = Arc::new(());
        // Outside a runtime (a registry built for a check) there is nothing to probe.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(probe_acquire(pool.clone(), acquire, Arc::downgrade(&alive)));
        }
        registry.register(Box::new(PoolMetrics {
            pool,
            connections,
            max,
            _alive: alive,
        }))
    }
}

/// Until the pool closes or its metrics are dropped, takes a connection every interval and
/// records how long that took. A probe that cannot get one (Postgres away, every connection
/// failing) records the time it waited; errors are the queries' to report.
async fn probe_acquire(pool: sqlx::PgPool, acquire: Histogram, alive: Weak<()>) {
    let mut ticks = tokio::time::interval(ACQUIRE_PROBE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if pool.is_closed() || alive.strong_count() == 0 {
            return;
        }
        let started = Instant::now();
        let connection = pool.acquire().await;
        acquire.observe(started.elapsed().as_secs_f64());
        drop(connection);
    }
}

impl Collector for PoolMetrics {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.connections.desc();
        descs.extend(self.max.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let size = i64::from(self.pool.size());
        let idle = i64::try_from(self.pool.num_idle()).unwrap_or(i64::MAX);
        self.connections
            .with_label_values(&["in_use"])
            .set((size - idle).max(0));
        self.connections.with_label_values(&["idle"]).set(idle);
        let mut families = self.connections.collect();
        families.extend(self.max.collect());
        families
    }
}
