//! `cardstream simulate`: realistic, signed Stripe Issuing traffic.
//!
//! Cardholders and cards first, then purchases: an `issuing_authorization.request` to the
//! authorization endpoint, and, honouring its answer, `issuing_authorization.created`,
//! captures (some partial, some split in two), reversals, refunds and
//! `issuing_authorization.updated`. Now and then a card is frozen or unfrozen. The same seed
//! gives the same events; delivery can be duplicated and reordered as Stripe's is.

mod accounts;
mod ids;
mod mixer;
mod objects;
mod rhythm;
mod run;
mod script;
mod send;
mod tokens;
mod world;

use std::path::PathBuf;
use std::time::Duration;

use cardstream_stripe::WebhookSecret;
use clap::builder::TypedValueParser;

pub use accounts::{AccountSpreader, spread_over_accounts};
pub use objects::API_VERSION;
pub use run::{Summary, run};
pub use script::{Answer, Endpoint, Purchase, Script, SimEvent, Step};
pub use send::EndpointStats;
pub use world::World;

/// `cardstream simulate` settings.
#[derive(clap::Args, Debug, Clone)]
pub struct SimulateArgs {
    /// Base URL of the gateway; events go to /webhooks/stripe and authorization requests to
    /// /webhooks/stripe/authorization.
    #[arg(
        long,
        env = "CARDSTREAM_SIMULATE_TARGET",
        default_value = "http://127.0.0.1:8080"
    )]
    pub target: String,

    /// Webhook signing secrets; the simulator signs with the first. Set through the
    /// environment only.
    #[arg(
        long = "webhook-secrets",
        env = "CARDSTREAM_WEBHOOK_SECRETS",
        hide_env_values = true,
        value_delimiter = ',',
        value_parser = clap::builder::StringValueParser::new().map(WebhookSecret::new)
    )]
    pub webhook_secrets: Vec<WebhookSecret>,

    /// Stripe Connect: the cardholders are spread, round robin, over the platform's own
    /// account and these connected accounts (`acct_…`, comma-separated), each keeping one
    /// account with its cards and purchases. A connected account's events carry its id in
    /// `account` and are signed with the Connect endpoint's secret.
    #[arg(long = "connect-accounts", value_delimiter = ',')]
    pub connect_accounts: Vec<String>,

    /// Signing secrets of the Connect endpoint; the simulator signs connected accounts' events
    /// with the first. Needed with --connect-accounts. Set through the environment only.
    #[arg(
        long = "connect-webhook-secrets",
        env = "CARDSTREAM_CONNECT_WEBHOOK_SECRETS",
        hide_env_values = true,
        value_delimiter = ',',
        value_parser = clap::builder::StringValueParser::new().map(WebhookSecret::new)
    )]
    pub connect_webhook_secrets: Vec<WebhookSecret>,

    /// Deliveries per second, both endpoints together; 0 sends as fast as the gateway answers.
    #[arg(long, env = "CARDSTREAM_SIMULATE_RATE", default_value_t = 50.0)]
    pub rate: f64,

    /// Stop after about this many distinct events (purchases under way still finish).
    #[arg(long)]
    pub count: Option<u64>,

    /// Stop starting purchases after this long (e.g. `30s`, `5m`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,

    /// Number of cards (cardholders hold one to three each).
    #[arg(long, default_value_t = 100)]
    pub cards: usize,

    /// Seed for every random choice; the same seed (with --start) gives the same events.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Share of events delivered a second time, 0 to 1 (Stripe delivers at least once).
    #[arg(long, default_value_t = 0.0)]
    pub duplicate_rate: f64,

    /// Events are shuffled within a window of this many (Stripe delivers in any order).
    #[arg(long, default_value_t = 0)]
    pub reorder_window: usize,

    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,

    /// Retries of an event answered 5xx or not at all, with doubling backoff from 100 ms.
    /// Authorization requests are never retried.
    #[arg(long, default_value_t = 3)]
    pub retries: u32,

    /// How long one request may take before it counts as unanswered.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Fixed `created` (unix seconds) of the first purchase, for reproducible events; each
    /// next purchase is --time-step-ms later. By default events carry the wall-clock time.
    #[arg(long)]
    pub start: Option<i64>,

    /// First a history: purchases over this long up to now (e.g. `90d`), with a program's
    /// weekly and daily rhythm, sent as fast as the gateway answers; then live traffic at
    /// --rate. Signed and sent through the gateway like any other event.
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "start")]
    pub history: Option<Duration>,

    /// Purchases in the history (each is an authorization and its follow-ups).
    #[arg(long, default_value_t = 3_000)]
    pub history_purchases: u64,

    /// Simulated time between purchases when --start is given.
    #[arg(long, default_value_t = 1000)]
    pub time_step_ms: i64,

    /// Write the id of every event the gateway answered 2xx, one per line.
    #[arg(long)]
    pub accepted_ids_file: Option<PathBuf>,

    /// How often a progress line is printed; 0s prints none.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub progress: Duration,
}

impl SimulateArgs {
    /// Settings for `target` with the defaults above and nothing else.
    pub fn new(target: impl Into<String>, secret: impl Into<String>) -> Self {
        SimulateArgs {
            target: target.into(),
            webhook_secrets: vec![WebhookSecret::new(secret)],
            connect_accounts: Vec::new(),
            connect_webhook_secrets: Vec::new(),
            rate: 50.0,
            count: None,
            duration: None,
            cards: 100,
            seed: 42,
            duplicate_rate: 0.0,
            reorder_window: 0,
            concurrency: 64,
            retries: 3,
            request_timeout: Duration::from_secs(10),
            start: None,
            history: None,
            history_purchases: 3_000,
            time_step_ms: 1000,
            accepted_ids_file: None,
            progress: Duration::ZERO,
        }
    }

    /// Spreads the cardholders over the platform's own account and `accounts` (Stripe
    /// Connect), signing the connected accounts' events with the Connect endpoint's `secret`.
    pub fn with_connect(mut self, accounts: Vec<String>, secret: impl Into<String>) -> Self {
        self.connect_accounts = accounts;
        self.connect_webhook_secrets = vec![WebhookSecret::new(secret)];
        self
    }
}

/// Errors of the simulator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no webhook secret to sign with: set CARDSTREAM_WEBHOOK_SECRETS")]
    NoSecret,
    #[error(
        "no Connect endpoint secret to sign connected accounts' events with: set CARDSTREAM_CONNECT_WEBHOOK_SECRETS"
    )]
    NoConnectSecret,
    #[error("--connect-accounts: {0:?} is not a Stripe account id (acct_ and letters and digits)")]
    Account(String),
    #[error("invalid target URL {0}")]
    Target(String),
    #[error("--duplicate-rate must be between 0 and 1, got {0}")]
    DuplicateRate(f64),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// [`generate`] with a fixed mix of answers: every `nth` authorization request declined (as
/// `category_blocked`), the others approved. For tests and benchmarks.
pub fn generate_declining_every(
    nth: usize,
    seed: u64,
    cards: usize,
    start: i64,
    purchases: usize,
) -> Vec<SimEvent> {
    let mut n = 0;
    generate(seed, cards, start, purchases, |_| {
        n += 1;
        if nth > 0 && n % nth == 0 {
            Answer::Declined {
                reason: "category_blocked".into(),
            }
        } else {
            Answer::Approved {
                reason: "approved".into(),
            }
        }
    })
}

/// Generates the events of `purchases` purchases without sending anything, in the order they
/// happen, deciding each authorization request with `decide`. For tests and benchmarks that
/// need the simulator's events without a gateway.
pub fn generate(
    seed: u64,
    cards: usize,
    start: i64,
    purchases: usize,
    mut decide: impl FnMut(&Purchase) -> Answer,
) -> Vec<SimEvent> {
    let script = Script::new(seed, cards, Some(start), 1000);
    run_script(script, |_, done| done < purchases, &mut decide)
}

/// The events of a history of `purchases` purchases over the `days` up to now (as
/// `simulate --history` sends them), without sending anything, deciding each authorization
/// request with `decide`.
pub fn generate_history(
    seed: u64,
    cards: usize,
    days: u32,
    purchases: u64,
    mut decide: impl FnMut(&Purchase) -> Answer,
) -> Vec<SimEvent> {
    let script = Script::with_history(seed, cards, days, purchases);
    run_script(script, |script, _| script.in_history(), &mut decide)
}

/// Steps `script` while `more(script, purchases so far)`, collecting its events.
fn run_script(
    mut script: Script,
    more: impl Fn(&Script, usize) -> bool,
    decide: &mut impl FnMut(&Purchase) -> Answer,
) -> Vec<SimEvent> {
    let mut events = Vec::new();
    let mut done = 0;
    while more(&script, done) {
        match script.next_step() {
            Step::Event(event) => events.push(event),
            Step::Purchase(purchase) => {
                done += 1;
                let answer = match purchase.request() {
                    Some(request) => {
                        events.push(request);
                        decide(&purchase)
                    }
                    None => Answer::NoAnswer,
                };
                events.extend(purchase.follow_ups(&answer));
            }
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::SimulateArgs;

    #[derive(Parser)]
    struct Simulate {
        #[command(flatten)]
        args: SimulateArgs,
    }

    /// A history runs up to now: a start of its own would put it elsewhere, so the two are
    /// refused together, naming both.
    #[test]
    fn a_history_and_a_start_are_not_given_together() {
        let parsed =
            Simulate::try_parse_from(["simulate", "--history", "90d", "--start", "1764000000"]);
        let Err(err) = parsed else {
            panic!("--history with --start was accepted")
        };
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        let text = err.to_string();
        assert!(
            text.contains("--history") && text.contains("--start"),
            "{text}"
        );
        let history = Simulate::try_parse_from(["simulate", "--history", "90d"]);
        assert_eq!(
            history.ok().and_then(|s| s.args.history),
            Some(std::time::Duration::from_secs(90 * 86_400))
        );
    }
}
