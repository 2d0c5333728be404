//! `cardstream backfill`: Stripe's Issuing lists, page by page, into the events topic.

use std::time::{Duration, Instant};

use cardstream_kafka::{EventProducer, OutgoingEvent, await_delivery};
use cardstream_store::{Store, SyncCursor, SyncJob};
use cardstream_telemetry::{CancellationToken, Progress};

use crate::client::{StripeApi, StripeApiArgs};
use crate::snapshot::{Snapshot, snapshot};
use crate::time_arg::parse_time;
use crate::{Error, unix_now};

/// Stripe's largest page.
const PAGE: &str = "100";

/// An Issuing list endpoint.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    Cardholders,
    /// Cards, and each card's wallet tokens (`/v1/issuing/tokens?card=…`).
    Cards,
    Authorizations,
    Transactions,
    Disputes,
}

impl List {
    pub const ALL: [List; 5] = [
        List::Cardholders,
        List::Cards,
        List::Authorizations,
        List::Transactions,
        List::Disputes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            List::Cardholders => "cardholders",
            List::Cards => "cards",
            List::Authorizations => "authorizations",
            List::Transactions => "transactions",
            List::Disputes => "disputes",
        }
    }

    fn path(self) -> String {
        format!("/v1/issuing/{}", self.name())
    }
}

/// Which accounts to read.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AccountArgs {
    /// Read this connected account's objects (sent as the `Stripe-Account` header) instead of
    /// the platform's own.
    #[arg(long, conflicts_with = "all_accounts")]
    pub account: Option<String>,

    /// Read the platform's own objects and those of every connected account
    /// (`GET /v1/accounts`).
    #[arg(long)]
    pub all_accounts: bool,
}

impl AccountArgs {
    /// The accounts to read: `None` is the platform's own.
    pub(crate) async fn resolve(&self, api: &StripeApi) -> Result<Vec<Option<String>>, Error> {
        if let Some(account) = &self.account {
            return Ok(vec![Some(account.clone())]);
        }
        let mut accounts = vec![None];
        if self.all_accounts {
            let mut after: Option<String> = None;
            loop {
                let mut query = vec![("limit", PAGE.to_owned())];
                if let Some(after) = &after {
                    query.push(("starting_after", after.clone()));
                }
                let page = api.list("/v1/accounts", &query, None).await?;
                for account in &page.data {
                    let id = object_id(account).ok_or_else(|| Error::NotAList {
                        endpoint: "/v1/accounts".into(),
                        message: "an account without an id".into(),
                    })?;
                    accounts.push(Some(id.clone()));
                    after = Some(id);
                }
                if !page.has_more || page.data.is_empty() {
                    break;
                }
            }
        }
        Ok(accounts)
    }
}

/// `cardstream backfill` settings (Kafka, record keys and the database come from the binary).
#[derive(clap::Args, Debug, Clone)]
pub struct BackfillArgs {
    #[command(flatten)]
    pub api: StripeApiArgs,

    /// Read objects created at or after this: a date (2026-01-31, UTC), an RFC 3339 time or
    /// unix seconds. Default: from the beginning.
    #[arg(long, value_parser = parse_time)]
    pub since: Option<i64>,

    /// Read objects created at or before this. Default: the moment this backfill first started
    /// (webhooks carry what came after).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<i64>,

    /// Only these lists (comma-separated). Default: all, in the order listed.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<List>,

    /// Forget where earlier runs got to and read everything again. What is already stored is
    /// not duplicated: an unchanged object is the same snapshot event.
    #[arg(long)]
    pub restart: bool,

    #[command(flatten)]
    pub accounts: AccountArgs,

    /// How often a progress line is printed when stderr is not a terminal.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub progress_every: Duration,
}

impl BackfillArgs {
    /// Settings reading `url` with `key`, every list, from the beginning.
    pub fn new(api: StripeApiArgs) -> Self {
        BackfillArgs {
            api,
            since: None,
            until: None,
            only: Vec::new(),
            restart: false,
            accounts: AccountArgs::default(),
            progress_every: Duration::from_secs(5),
        }
    }
}

/// What one list of one account gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListReport {
    /// '' for the platform's own.
    pub account: String,
    pub list: &'static str,
    /// Objects written by this run (tokens counted apart).
    pub objects: u64,
    pub tokens: u64,
    pub pages: u64,
    /// Finished by an earlier run; nothing read.
    pub already_done: bool,
}

/// What a backfill did.
#[derive(Debug, Clone, Default)]
pub struct BackfillReport {
    pub lists: Vec<ListReport>,
    pub requests: u64,
    pub throttled: u64,
    pub server_errors: u64,
    pub network_errors: u64,
    pub elapsed: Duration,
}

impl BackfillReport {
    pub fn objects(&self) -> u64 {
        self.lists.iter().map(|l| l.objects + l.tokens).sum()
    }
}

impl std::fmt::Display for BackfillReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for l in &self.lists {
            let account = if l.account.is_empty() {
                String::new()
            } else {
                format!(" ({})", l.account)
            };
            if l.already_done {
                writeln!(f, "{}{account}: already complete", l.list)?;
            } else if l.list == "cards" {
                writeln!(
                    f,
                    "{}{account}: {} objects and {} tokens in {} pages",
                    l.list, l.objects, l.tokens, l.pages
                )?;
            } else {
                writeln!(
                    f,
                    "{}{account}: {} objects in {} pages",
                    l.list, l.objects, l.pages
                )?;
            }
        }
        writeln!(
            f,
            "{} objects written to Kafka in {:.1}s; {} requests, {} throttled (429), {} server errors, {} without an answer",
            self.objects(),
            self.elapsed.as_secs_f64(),
            self.requests,
            self.throttled,
            self.server_errors,
            self.network_errors
        )
    }
}

/// Everything a run needs.
struct Run<'a> {
    api: &'a StripeApi,
    producer: &'a EventProducer,
    store: &'a Store,
    shutdown: &'a CancellationToken,
    args: &'a BackfillArgs,
    started_at: i64,
}

/// Reads every list asked for, for every account asked for, into the topic, resuming where an
/// earlier run of the same range stopped.
pub async fn backfill(
    args: &BackfillArgs,
    api: &StripeApi,
    producer: &EventProducer,
    store: &Store,
    shutdown: &CancellationToken,
) -> Result<BackfillReport, Error> {
    let started = Instant::now();
    if let (Some(since), Some(until)) = (args.since, args.until)
        && since > until
    {
        return Err(Error::EmptyRange { since, until });
    }
    let accounts = args.accounts.resolve(api).await?;
    let run = Run {
        api,
        producer,
        store,
        shutdown,
        args,
        started_at: unix_now(),
    };
    let lists: Vec<List> = if args.only.is_empty() {
        List::ALL.to_vec()
    } else {
        List::ALL
            .into_iter()
            .filter(|l| args.only.contains(l))
            .collect()
    };
    let mut report = BackfillReport::default();
    for account in &accounts {
        if args.restart {
            let forgotten = store
                .forget_sync_cursors(SyncJob::Backfill, account.as_deref().unwrap_or_default())
                .await?;
            tracing::info!(
                account = account.as_deref().unwrap_or("platform"),
                forgotten,
                "--restart: starting over"
            );
        }
        for list in &lists {
            report
                .lists
                .push(run.list(account.as_deref(), *list).await?);
        }
    }
    let stats = api.stats();
    report.requests = stats.requests();
    report.throttled = stats.throttled();
    report.server_errors = stats.server_errors();
    report.network_errors = stats.network_errors();
    report.elapsed = started.elapsed();
    Ok(report)
}

impl Run<'_> {
    async fn list(&self, account: Option<&str>, list: List) -> Result<ListReport, Error> {
        let key = account.unwrap_or_default();
        let since = self.args.since;
        let same_range = |c: &SyncCursor| {
            c.since == since && self.args.until.is_none_or(|until| until == c.until)
        };
        let mut report = ListReport {
            account: key.to_owned(),
            list: list.name(),
            objects: 0,
            tokens: 0,
            pages: 0,
            already_done: false,
        };
        let mut cursor = match self
            .store
            .sync_cursor(SyncJob::Backfill, key, list.name())
            .await?
        {
            Some(c) if c.done && same_range(&c) => {
                report.already_done = true;
                return Ok(report);
            }
            Some(c) if !c.done && same_range(&c) => {
                tracing::info!(list = list.name(), account = key, after = ?c.starting_after, "resuming");
                c
            }
            Some(c) if !c.done => {
                return Err(Error::RangeMismatch {
                    list: list.name(),
                    account: account.map(|a| format!(" ({a})")).unwrap_or_default(),
                    range: range_text(c.since, c.until),
                });
            }
            _ => SyncCursor {
                since,
                until: self.args.until.unwrap_or(self.started_at),
                starting_after: None,
                objects: 0,
                done: false,
            },
        };
        // Stripe's lists carry no total, so the bar measures the range covered: objects come
        // newest first, each page reaches further back towards `since`.
        let hours = since.map(|s| ((cursor.until - s).max(0) as u64).div_ceil(3600).max(1));
        let label = match account {
            Some(a) => format!("backfill {} ({a})", list.name()),
            None => format!("backfill {}", list.name()),
        };
        let unit = if hours.is_some() { "hours" } else { "objects" };
        let mut progress = Progress::new(&label, unit, hours).lines_every(self.args.progress_every);
        loop {
            if self.shutdown.is_cancelled() {
                return Err(Error::Interrupted);
            }
            let mut query = vec![("limit", PAGE.to_owned())];
            if let Some(since) = cursor.since {
                query.push(("created[gte]", since.to_string()));
            }
            query.push(("created[lte]", cursor.until.to_string()));
            if let Some(after) = &cursor.starting_after {
                query.push(("starting_after", after.clone()));
            }
            let page = self.api.list(&list.path(), &query, account).await?;
            let mut snapshots = Vec::with_capacity(page.data.len());
            let mut last = None;
            let mut oldest = None;
            for object in &page.data {
                let s = snapshot(object, page.read_at, account)
                    .ok_or_else(|| not_an_object(&list.path()))?;
                last = object_id(object);
                oldest = object_created(object).or(oldest);
                if list == List::Cards
                    && let Some(card) = &last
                {
                    report.tokens += self.tokens(account, card, &mut snapshots).await?;
                }
                snapshots.push(s);
            }
            self.write(&snapshots).await?;
            report.pages += 1;
            report.objects += page.data.len() as u64;
            cursor.objects += page.data.len() as i64;
            cursor.done = !page.has_more || last.is_none();
            if last.is_some() {
                cursor.starting_after = last;
            }
            self.store
                .save_sync_cursor(SyncJob::Backfill, key, list.name(), &cursor)
                .await?;
            let note = format!(
                "{} objects{}, {} requests, {} throttled",
                cursor.objects,
                oldest
                    .map(|o| format!(", back to {}", day(o)))
                    .unwrap_or_default(),
                self.api.stats().requests(),
                self.api.stats().throttled()
            );
            match (hours, oldest, since) {
                (Some(_), Some(oldest), Some(_)) if !cursor.done => {
                    progress.set(((cursor.until - oldest).max(0) as u64) / 3600, &note);
                }
                (Some(hours), _, _) => progress.set(if cursor.done { hours } else { 0 }, &note),
                _ => progress.set(cursor.objects as u64, &note),
            }
            if cursor.done {
                progress.finish(&note);
                return Ok(report);
            }
        }
    }

    /// Every wallet token of `card`, as snapshots appended to `out`; their count.
    async fn tokens(
        &self,
        account: Option<&str>,
        card: &str,
        out: &mut Vec<Snapshot>,
    ) -> Result<u64, Error> {
        let mut after: Option<String> = None;
        let mut count = 0;
        loop {
            let mut query = vec![("card", card.to_owned()), ("limit", PAGE.to_owned())];
            if let Some(after) = &after {
                query.push(("starting_after", after.clone()));
            }
            let page = self.api.list("/v1/issuing/tokens", &query, account).await?;
            for token in &page.data {
                out.push(
                    snapshot(token, page.read_at, account)
                        .ok_or_else(|| not_an_object("/v1/issuing/tokens"))?,
                );
                after = object_id(token);
                count += 1;
            }
            if !page.has_more || page.data.is_empty() {
                return Ok(count);
            }
        }
    }

    /// Produces `snapshots` and waits until the broker acknowledged every one: only then may
    /// the cursor move past them.
    async fn write(&self, snapshots: &[Snapshot]) -> Result<(), Error> {
        let received_at_ms = unix_now() * 1000;
        let mut deliveries = Vec::with_capacity(snapshots.len());
        for s in snapshots {
            deliveries.push(self.producer.enqueue(&OutgoingEvent {
                key: &s.key,
                payload: s.payload.as_bytes(),
                event_id: &s.id,
                event_type: &s.kind,
                created: s.created,
                received_at_ms,
            })?);
        }
        for delivery in deliveries {
            await_delivery(delivery, self.producer.delivery_timeout()).await?;
        }
        Ok(())
    }
}

fn not_an_object(endpoint: &str) -> Error {
    Error::NotAList {
        endpoint: endpoint.to_owned(),
        message: "an item without an `id` and an `object` type".into(),
    }
}

pub(crate) fn object_id(object: &serde_json::value::RawValue) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: String,
    }
    serde_json::from_str::<Id>(object.get()).ok().map(|o| o.id)
}

fn object_created(object: &serde_json::value::RawValue) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Created {
        created: i64,
    }
    serde_json::from_str::<Created>(object.get())
        .ok()
        .map(|o| o.created)
}

fn day(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| unix.to_string())
}

fn range_text(since: Option<i64>, until: i64) -> String {
    match since {
        Some(since) => format!("objects created {since}..={until} (unix seconds)"),
        None => format!("objects created up to {until} (unix seconds)"),
    }
}
