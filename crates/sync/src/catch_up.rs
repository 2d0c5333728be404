//! `cardstream catch-up`: Stripe's events since the last window read, written to the topic
//! when the pipeline has not stored them. A webhook that never arrived (an outage longer than
//! Stripe's three days of retries, an endpoint misconfigured or deleted) is recovered this way.
//! Stripe keeps events for 30 days; anything older needs a backfill.

use std::time::Duration;

use cardstream_kafka::{EventProducer, OutgoingEvent, await_delivery};
use cardstream_store::{Store, SyncCursor, SyncJob};
use cardstream_stripe::Event;
use cardstream_telemetry::CancellationToken;

use crate::backfill::AccountArgs;
use crate::client::{StripeApi, StripeApiArgs};
use crate::metrics::CatchUpMetrics;
use crate::time_arg::parse_time;
use crate::{Error, unix_now};

/// The Issuing event types read (Stripe accepts up to 20 in `types[]`).
pub const ISSUING_EVENT_TYPES: [&str; 17] = [
    "issuing_authorization.request",
    "issuing_authorization.created",
    "issuing_authorization.updated",
    "issuing_card.created",
    "issuing_card.updated",
    "issuing_cardholder.created",
    "issuing_cardholder.updated",
    "issuing_transaction.created",
    "issuing_transaction.updated",
    "issuing_dispute.created",
    "issuing_dispute.updated",
    "issuing_dispute.submitted",
    "issuing_dispute.closed",
    "issuing_dispute.funds_reinstated",
    "issuing_dispute.funds_rescinded",
    "issuing_token.created",
    "issuing_token.updated",
];

/// How long Stripe keeps events.
const RETENTION: i64 = 30 * 24 * 3600;

/// `cardstream catch-up` settings.
#[derive(clap::Args, Debug, Clone)]
pub struct CatchUpArgs {
    #[command(flatten)]
    pub api: StripeApiArgs,

    /// Read events created at or after this (a date, an RFC 3339 time or unix seconds) instead
    /// of after the last window read. The first run without it reads the 30 days Stripe keeps.
    #[arg(long, value_parser = parse_time)]
    pub since: Option<i64>,

    #[command(flatten)]
    pub window: SettleArgs,

    #[command(flatten)]
    pub accounts: AccountArgs,
}

/// The end of the window read.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct SettleArgs {
    /// Leave events younger than this to their webhooks, which Stripe may still be delivering:
    /// reading them would write (harmless) duplicates and count them as missed.
    #[arg(
        long = "catch-up-settle",
        env = "CARDSTREAM_CATCH_UP_SETTLE",
        default_value = "2m",
        value_parser = humantime::parse_duration
    )]
    pub settle: Duration,
}

/// The catch-up loop inside the gateway: off unless an interval is given.
#[derive(clap::Args, Debug, Clone)]
pub struct CatchUpLoopArgs {
    /// Run catch-up this often (e.g. `10m`), recovering events whose webhooks never arrived.
    /// Needs CARDSTREAM_STRIPE_API_KEY and the database. Off by default.
    #[arg(long = "catch-up-interval", env = "CARDSTREAM_CATCH_UP_INTERVAL", value_parser = humantime::parse_duration)]
    pub interval: Option<Duration>,

    #[command(flatten)]
    pub window: SettleArgs,

    #[command(flatten)]
    pub api: StripeApiArgs,
}

/// What one catch-up did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatchUpReport {
    /// The window read, unix seconds, both ends included (per account, the same bounds).
    pub from: i64,
    pub until: i64,
    /// Events Stripe listed in the window.
    pub listed: u64,
    /// Events the pipeline had not stored, now written to the topic.
    pub recovered: u64,
    pub requests: u64,
    pub throttled: u64,
}

impl std::fmt::Display for CatchUpReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "read {} events created {}..={} (unix seconds); {} were missing and are now in Kafka; {} requests, {} throttled (429)",
            self.listed, self.from, self.until, self.recovered, self.requests, self.throttled
        )
    }
}

/// One catch-up over every account asked for.
pub async fn catch_up(
    args: &CatchUpArgs,
    api: &StripeApi,
    producer: &EventProducer,
    store: &Store,
    shutdown: &CancellationToken,
) -> Result<CatchUpReport, Error> {
    let until = unix_now() - args.window.settle.as_secs() as i64;
    let mut report = CatchUpReport {
        until,
        from: i64::MAX,
        ..CatchUpReport::default()
    };
    for account in args.accounts.resolve(api).await? {
        let key = account.as_deref().unwrap_or_default();
        // Without a position, all Stripe keeps: the first round is the one that finds what an
        // outage before catch-up was turned on lost.
        let from = match args.since {
            Some(since) => since,
            None => match store.sync_cursor(SyncJob::CatchUp, key, "events").await? {
                Some(cursor) => cursor.until + 1,
                None => until - RETENTION,
            },
        }
        .max(until - RETENTION);
        report.from = report.from.min(from);
        if from > until {
            continue;
        }
        let (listed, recovered) = read_window(
            api,
            producer,
            store,
            shutdown,
            account.as_deref(),
            from,
            until,
        )
        .await?;
        report.listed += listed;
        report.recovered += recovered;
        let cursor = SyncCursor {
            since: Some(from),
            until,
            starting_after: None,
            objects: recovered as i64,
            done: true,
        };
        store
            .save_sync_cursor(SyncJob::CatchUp, key, "events", &cursor)
            .await?;
    }
    if report.from == i64::MAX {
        report.from = until;
    }
    report.requests = api.stats().requests();
    report.throttled = api.stats().throttled();
    Ok(report)
}

/// Reads every Issuing event created in `from..=until` and writes those not stored.
async fn read_window(
    api: &StripeApi,
    producer: &EventProducer,
    store: &Store,
    shutdown: &CancellationToken,
    account: Option<&str>,
    from: i64,
    until: i64,
) -> Result<(u64, u64), Error> {
    let mut listed = 0;
    let mut recovered = 0;
    let mut after: Option<String> = None;
    loop {
        if shutdown.is_cancelled() {
            return Err(Error::Interrupted);
        }
        let mut query = vec![
            ("limit", "100".to_owned()),
            ("created[gte]", from.to_string()),
            ("created[lte]", until.to_string()),
        ];
        query.extend(
            ISSUING_EVENT_TYPES
                .iter()
                .map(|t| ("types[]", (*t).to_owned())),
        );
        if let Some(after) = &after {
            query.push(("starting_after", after.clone()));
        }
        let page = api.list("/v1/events", &query, account).await?;
        let mut events = Vec::with_capacity(page.data.len());
        for raw in &page.data {
            let event = Event::parse(raw.get().as_bytes()).map_err(|e| Error::NotAList {
                endpoint: "/v1/events".into(),
                message: e.to_string(),
            })?;
            after = Some(event.id.clone());
            events.push((event, raw));
        }
        listed += events.len() as u64;
        let ids: Vec<String> = events.iter().map(|(e, _)| e.id.clone()).collect();
        let stored = store.stored_event_ids(&ids).await?;
        let received_at_ms = unix_now() * 1000;
        let mut deliveries = Vec::new();
        for (event, raw) in events.iter().filter(|(e, _)| !stored.contains(&e.id)) {
            tracing::info!(event = %event.id, kind = %event.kind, created = event.created, "recovering an event whose webhook never arrived");
            let key = event.partition_key();
            deliveries.push(producer.enqueue(&OutgoingEvent {
                key: &key,
                // The event exactly as Stripe serves it: the same bytes a webhook would carry.
                payload: raw.get().as_bytes(),
                event_id: &event.id,
                event_type: &event.kind,
                created: event.created,
                received_at_ms,
            })?);
        }
        recovered += deliveries.len() as u64;
        for delivery in deliveries {
            await_delivery(delivery, producer.delivery_timeout()).await?;
        }
        if !page.has_more || page.data.is_empty() {
            return Ok((listed, recovered));
        }
    }
}

/// Starts the gateway's catch-up loop when `args` has an interval: every interval, one
/// catch-up of the platform's events, run by one replica at a time (a Postgres advisory lock),
/// counted in `metrics`. A missing key fails here, at start; a failed round is logged and
/// counted, and the next round tries again.
pub fn spawn_catch_up_loop(
    args: CatchUpLoopArgs,
    producer: EventProducer,
    store: Store,
    metrics: CatchUpMetrics,
    shutdown: CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<()>>, Error> {
    let Some(interval) = args.interval else {
        return Ok(None);
    };
    let api = StripeApi::new(&args.api)?;
    let run_args = CatchUpArgs {
        api: args.api.clone(),
        since: None,
        window: args.window,
        accounts: AccountArgs::default(),
    };
    tracing::info!(?interval, settle = ?args.window.settle, "catch-up of missed webhooks is on");
    Ok(Some(tokio::spawn(async move {
        loop {
            let outcome = match store.try_sync_lock().await {
                Ok(Some(lock)) => {
                    let result = catch_up(&run_args, &api, &producer, &store, &shutdown).await;
                    drop(lock);
                    match result {
                        Ok(report) => {
                            metrics.recovered(report.recovered);
                            if report.recovered > 0 {
                                tracing::warn!(
                                    recovered = report.recovered,
                                    from = report.from,
                                    until = report.until,
                                    "catch-up recovered events whose webhooks never arrived"
                                );
                            }
                            "ok"
                        }
                        Err(Error::Interrupted) => return,
                        Err(err) => {
                            tracing::error!(error = %err, "catch-up failed; trying again next round");
                            "failed"
                        }
                    }
                }
                Ok(None) => "skipped",
                Err(err) => {
                    tracing::error!(error = %err, "catch-up could not take its lock");
                    "failed"
                }
            };
            metrics.run(outcome);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    })))
}
