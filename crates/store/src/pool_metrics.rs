//! The connection pool as Prometheus sees it, read at each scrape: connections in use and idle,
//! and the pool's ceiling. A pool at its ceiling with nothing idle is where requests queue.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGauge, IntGaugeVec, Opts, Registry};

/// Registered once per process for its pool.
#[derive(Debug, Clone)]
pub struct PoolMetrics {
    pool: sqlx::PgPool,
    connections: IntGaugeVec,
    max: IntGauge,
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
        registry.register(Box::new(PoolMetrics {
            pool,
            connections,
            max,
        }))
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
