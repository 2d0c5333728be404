//! Real parts for cardstream's tests. Nothing here is a mock: tests talk to the real Postgres
//! (a database of their own per test) and a real Kafka-protocol broker (tansu, installed by
//! `scripts/install-tools.sh`, one per test), and a test that cannot find either fails with a
//! message saying how to get it.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod broker;
mod http;
mod metrics;
mod postgres;
mod records;
mod stripe_api;

pub use broker::{Broker, Storage, tansu_binary};
pub use http::{HttpResponse, get, get_with, post};
pub use metrics::{exposed_names, metric_value, promtool_check_metrics};
pub use postgres::{PrivatePostgres, TestDatabase, admin_url};
pub use records::{Record, read_records, read_to_end};
pub use stripe_api::{FakeStripe, Fault, LoggedRequest};

/// A name no other test uses, for topics, groups and databases.
pub fn unique_name(prefix: &str) -> String {
    use rand::Rng;
    let suffix: u64 = rand::rng().random();
    format!("{prefix}_{suffix:016x}")
}
