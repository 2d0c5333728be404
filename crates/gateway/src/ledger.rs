//! The spend limits' shared ledger: every approval is reserved in Postgres (migration 0013)
//! before Stripe hears it, serialised per card across all gateway replicas, so that no
//! interleaving of requests approves past a card's limit however many replicas answer.
//!
//! The ledger answers within `--spend-ledger-timeout` (50 ms) or not at all: a slow or absent
//! database then decides by the policy's `on_spend_unknown`, well inside Stripe's 2 s budget.
//! A reservation that timed out here but still committed counts until its authorization is
//! folded or its TTL passes, so a timeout can only make the limits stricter, never looser.

use std::time::{Duration, Instant};

use cardstream_policy::{Decision, Limits, Policy, Request, Rules, check_rules, spend_unknown};
use cardstream_store::{SpendRequest, Store};
use prometheus::{Histogram, HistogramOpts, HistogramVec, Registry};

use crate::Error;
use crate::reservations::{Reservations, Unreserved};

/// Where the spend limits count approvals.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerMode {
    /// Reserved in Postgres before answering: limits hold across any number of replicas.
    Shared,
    /// Counted in this process's memory between 1-second reads of Postgres: no database round
    /// trip per request, but each replica approves up to the limit on its own. For a single
    /// replica only.
    Local,
}

/// Settings of the shared ledger.
#[derive(clap::Args, Debug, Clone)]
pub struct SpendLedgerArgs {
    /// `shared` (the default) reserves each approval in Postgres; `local` counts approvals in
    /// memory and is right only when one gateway replica answers.
    #[arg(
        long = "spend-ledger",
        env = "CARDSTREAM_SPEND_LEDGER",
        value_enum,
        default_value_t = LedgerMode::Shared
    )]
    pub mode: LedgerMode,

    /// Longest wait for a reservation, connection included; past it, the policy's
    /// `on_spend_unknown` decides.
    #[arg(
        long = "spend-ledger-timeout",
        env = "CARDSTREAM_SPEND_LEDGER_TIMEOUT",
        default_value = "50ms",
        value_parser = humantime::parse_duration
    )]
    pub timeout: Duration,

    /// A reservation whose authorization has not been folded after this long (Stripe never
    /// created it, or its webhook is lost) stops counting.
    #[arg(
        long = "spend-reservation-ttl",
        env = "CARDSTREAM_SPEND_RESERVATION_TTL",
        default_value = "10m",
        value_parser = humantime::parse_duration
    )]
    pub ttl: Duration,

    /// Postgres connections for reservations, one kept for the policy's reload. Each other
    /// reserves, in one statement, the requests waiting when it is free: few connections make
    /// larger batches, and at 2,000 requests a second on two cores 4 answered as fast as 2 and
    /// 3 while 8 let some requests wait past the timeout.
    #[arg(
        long = "spend-ledger-connections",
        env = "CARDSTREAM_SPEND_LEDGER_CONNECTIONS",
        default_value_t = 4,
        value_parser = clap::value_parser!(u32).range(2..=256)
    )]
    pub connections: u32,
}

/// The ledger, with the store it reserves in.
#[derive(Debug, Clone)]
pub struct SpendLedger {
    reservations: Reservations,
    timeout: Duration,
    /// Reservation time by outcome: granted, partial, refused, timeout, error.
    duration: HistogramVec,
}

/// The request event an authorization request came in.
#[derive(Debug, Clone, Copy)]
pub struct RequestEvent<'a> {
    pub event_id: &'a str,
    pub authorization_id: &'a str,
    /// The event's `created`, Unix seconds.
    pub created: i64,
}

impl SpendLedger {
    pub fn new(store: Store, args: &SpendLedgerArgs, registry: &Registry) -> Result<Self, Error> {
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "cardstream_spend_ledger_duration_seconds",
                "Time to reserve an approval in the shared spend ledger, by outcome (granted, \
                 partial, refused, timeout, error); a timeout or error decides by on_spend_unknown.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25,
            ]),
            &["outcome"],
        )?;
        registry.register(Box::new(duration.clone()))?;
        for outcome in ["granted", "partial", "refused", "timeout", "error"] {
            duration.with_label_values(&[outcome]);
        }
        let batches = Histogram::with_opts(
            HistogramOpts::new(
                "cardstream_spend_ledger_batch_size",
                "Authorization requests reserved in one statement: those waiting when a ledger \
                 connection was free (1 when idle, more under load).",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
        )?;
        registry.register(Box::new(batches.clone()))?;
        // One connection is left for the policy's reload.
        let workers = args.connections.saturating_sub(1) as usize;
        Ok(SpendLedger {
            reservations: Reservations::start(store, workers, args.ttl, batches),
            timeout: args.timeout,
            duration,
        })
    }

    /// Decides `request` by the policy's rules, then (when a limit applies) by what the ledger
    /// grants it.
    pub async fn decide(
        &self,
        policy: &Policy,
        request: &Request<'_>,
        event: RequestEvent<'_>,
    ) -> Decision {
        match check_rules(policy, request) {
            Rules::Decided(decision) => decision,
            Rules::Limits(limits) => self
                .reserve(&limits, request, event)
                .await
                .unwrap_or_else(|| spend_unknown(policy)),
        }
    }

    /// The decision the ledger's grant makes, or `None` when it did not answer in time.
    async fn reserve(
        &self,
        limits: &Limits,
        request: &Request<'_>,
        event: RequestEvent<'_>,
    ) -> Option<Decision> {
        let started = Instant::now();
        let asked = request.amount.amount;
        let reservation = SpendRequest {
            event_id: event.event_id.to_owned(),
            authorization_id: event.authorization_id.to_owned(),
            card_id: request.card_id.to_owned(),
            currency: request.amount.currency.as_str().to_owned(),
            asked,
            partial: limits.partial,
            requested_at: event.created,
            daily_limit: limits.daily,
            monthly_limit: limits.monthly,
        };
        let deadline = tokio::time::Instant::now() + self.timeout;
        let result = self.reservations.reserve(reservation, deadline).await;
        let (outcome, decision) = match result {
            Ok(grant) => {
                let decision =
                    limits.granted(asked, grant.granted, grant.day_spend, grant.month_spend);
                let outcome = match decision.amount {
                    _ if !decision.approved => "refused",
                    Some(_) => "partial",
                    None => "granted",
                };
                (outcome, Some(decision))
            }
            // Debug lines: under overload these come by the thousand a second; the outcome
            // series of the histogram counts them.
            Err(Unreserved::TimedOut) => {
                tracing::debug!(timeout = ?self.timeout, card = request.card_id, "no spend reservation in time; on_spend_unknown decides");
                ("timeout", None)
            }
            Err(Unreserved::Failed(err)) => {
                tracing::debug!(error = %err, card = request.card_id, "cannot reserve spend; on_spend_unknown decides");
                ("error", None)
            }
        };
        self.duration
            .with_label_values(&[outcome])
            .observe(started.elapsed().as_secs_f64());
        decision
    }
}
