//! Reading Stripe's REST API into the pipeline.
//!
//! - [`backfill`]: the Issuing lists (cardholders, cards with their wallet tokens,
//!   authorizations, transactions, disputes), each object written to the events topic as a
//!   *snapshot* event, so the aggregator stays the only writer of the tables and replay rebuilds
//!   them. A snapshot is versioned by the second its read was sent and ranks below any webhook
//!   event of that second (see `cardstream_store::Version`), so backfill and live webhooks can
//!   interleave in any order. Resumable: a cursor per list and account is saved in Postgres after
//!   each page is durably in Kafka.
//! - [`catch_up`]: `GET /v1/events` since the last window read, writing every Issuing event the
//!   pipeline has not stored, exactly as Stripe sent it.
//!
//! Both are polite (a requests-per-second limit, `Retry-After` on 429, backoff on 5xx) and never
//! log the API key.

mod backfill;
mod catch_up;
mod client;
mod limiter;
mod metrics;
mod snapshot;
mod time_arg;

pub use backfill::AccountArgs;
pub use backfill::{BackfillArgs, BackfillReport, List, backfill};
pub use catch_up::{
    CatchUpArgs, CatchUpLoopArgs, CatchUpReport, ISSUING_EVENT_TYPES, SettleArgs, catch_up,
    spawn_catch_up_loop,
};
pub use client::{ApiStats, Page, StripeApi, StripeApiArgs};
pub use limiter::RateLimiter;
pub use metrics::CatchUpMetrics;
pub use snapshot::{Snapshot, snapshot};
pub use time_arg::parse_time;

/// What can go wrong reading Stripe or writing what was read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no Stripe API key: set CARDSTREAM_STRIPE_API_KEY (a restricted key with read access is enough)"
    )]
    NoApiKey,
    #[error("invalid Stripe API URL {0:?}")]
    Url(String),
    #[error("cannot set up TLS for Stripe's API: {0}")]
    Tls(String),
    /// Stripe refused the request for a reason retrying will not fix (bad key, missing
    /// permission, bad parameter): the run stops here.
    #[error("GET {endpoint} was refused with {status}: {message}")]
    Refused {
        endpoint: String,
        status: u16,
        message: String,
    },
    /// 429s, 5xx or network failures past the retry budget.
    #[error("GET {endpoint} still failed after {attempts} attempts; last: {last}")]
    GaveUp {
        endpoint: String,
        attempts: u32,
        last: String,
    },
    #[error("GET {endpoint} answered something that is not a Stripe list: {message}")]
    NotAList { endpoint: String, message: String },
    /// A backfill of a different range is half done; resuming it with this one would leave a
    /// gap or read twice.
    #[error(
        "an unfinished backfill of {list}{account} read {range}; run again with the same --since/--until to resume it, or pass --restart to start over"
    )]
    RangeMismatch {
        list: &'static str,
        account: String,
        range: String,
    },
    #[error("--since {since} is after --until {until}")]
    EmptyRange { since: i64, until: i64 },
    #[error("interrupted; the next run resumes after the last page written")]
    Interrupted,
    #[error(transparent)]
    Kafka(#[from] cardstream_kafka::Error),
    #[error(transparent)]
    Store(#[from] cardstream_store::Error),
}

/// Seconds since the Unix epoch, as Stripe counts `created`.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
