//! The send loop: takes steps from the script, paces them, delivers them concurrently, and
//! feeds each purchase's follow-ups back through the mixer.

use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cardstream_stripe::WebhookSecret;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::accounts::{AccountSpreader, is_account_id};
use crate::mixer::Mixer;
use crate::script::{Answer, Endpoint, Script, SimEvent, Step};
use crate::send::{EndpointStats, Pacer, Sender};
use crate::{Error, SimulateArgs};

/// What a run did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub elapsed: Duration,
    /// Distinct events generated (each sent at least once unless the run was cut short).
    pub generated: u64,
    /// Extra deliveries of events already sent (--duplicate-rate).
    pub duplicates_sent: u64,
    /// Deliveries that ended in 2xx (after retries).
    pub accepted: u64,
    /// Deliveries that never got a 2xx.
    pub failed: u64,
    /// Authorization requests approved / declined by the gateway.
    pub approved: u64,
    pub declined: u64,
    pub events: EndpointStats,
    pub authorizations: EndpointStats,
    /// Ids of events answered 2xx, in the order the answers came.
    pub accepted_ids: Vec<String>,
}

impl Summary {
    /// Deliveries per second over the run.
    pub fn throughput(&self) -> f64 {
        let attempts = self.events.attempts + self.authorizations.attempts;
        attempts as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "simulation finished in {:.1} s",
            self.elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "  events generated {}, duplicates sent {}, accepted (2xx) {}, failed {}",
            self.generated, self.duplicates_sent, self.accepted, self.failed
        )?;
        writeln!(
            f,
            "  authorizations approved {}, declined {}",
            self.approved, self.declined
        )?;
        writeln!(f, "  throughput {:.0} deliveries/s", self.throughput())?;
        for (name, stats) in [
            ("webhooks", &self.events),
            ("authorization requests", &self.authorizations),
        ] {
            let statuses: Vec<String> = stats
                .by_status
                .iter()
                .map(|(s, n)| format!("{s}: {n}"))
                .collect();
            writeln!(
                f,
                "  {name}: {} attempts [{}] transport errors {}; latency p50 {} p99 {} max {}",
                stats.attempts,
                statuses.join(", "),
                stats.transport_errors,
                ms(stats.p(0.5)),
                ms(stats.p(0.99)),
                ms(Duration::from_micros(stats.latency_us.max())),
            )?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Tally {
    accepted_ids: Vec<String>,
    failed: u64,
    approved: u64,
    declined: u64,
}

/// Runs a simulation until --count or --duration is reached, or `shutdown` is cancelled.
pub async fn run(args: SimulateArgs, shutdown: CancellationToken) -> Result<Summary, Error> {
    let secret = args
        .webhook_secrets
        .iter()
        .map(|s| s.expose().trim())
        .find(|s| !s.is_empty())
        .map(WebhookSecret::new)
        .ok_or(Error::NoSecret)?;
    let connect_secret = args
        .connect_webhook_secrets
        .iter()
        .map(|s| s.expose().trim())
        .find(|s| !s.is_empty())
        .map(WebhookSecret::new);
    if let Some(bad) = args
        .connect_accounts
        .iter()
        .find(|a| !is_account_id(a.as_str()))
    {
        return Err(Error::Account(bad.clone()));
    }
    if !args.connect_accounts.is_empty() && connect_secret.is_none() {
        return Err(Error::NoConnectSecret);
    }
    if !(0.0..=1.0).contains(&args.duplicate_rate) {
        return Err(Error::DuplicateRate(args.duplicate_rate));
    }
    let concurrency = args.concurrency.max(1);
    let sender = Arc::new(Sender::new(
        &args.target,
        secret,
        connect_secret,
        args.retries,
        args.request_timeout,
        concurrency,
    )?);
    let pacer = Arc::new(Pacer::new(args.rate));
    let permits = Arc::new(Semaphore::new(concurrency));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut script = match args.history {
        Some(history) => {
            let days = u32::try_from(history.as_secs().div_ceil(86_400)).unwrap_or(u32::MAX);
            Script::with_history(args.seed, args.cards, days, args.history_purchases)
        }
        None => Script::new(args.seed, args.cards, args.start, args.time_step_ms),
    };
    let mut mixer = Mixer::new(args.seed, args.reorder_window, args.duplicate_rate);
    // Each event gets its cardholder's account as it is made, before the mixer: a duplicate is
    // the same body, and the signature (made at send time) covers the account.
    let mut accounts = AccountSpreader::new(if args.connect_accounts.is_empty() {
        Vec::new()
    } else {
        std::iter::once(None)
            .chain(args.connect_accounts.iter().cloned().map(Some))
            .collect()
    });
    let (follow_tx, mut follow_rx) = mpsc::unbounded_channel::<Vec<SimEvent>>();
    let mut tasks = JoinSet::new();
    let started = Instant::now();
    let deadline = args.duration.map(|d| started + d);
    let stop_progress = shutdown.child_token();
    let progress = spawn_progress(args.progress, sender.clone(), stop_progress.clone());

    let mut generated: u64 = 0;
    let mut duplicates: u64 = 0;
    let mut purchases_in_flight: usize = 0;
    loop {
        // The history goes as fast as the gateway answers; live traffic at --rate.
        let paced = !script.in_history();
        while let Ok(batch) = follow_rx.try_recv() {
            purchases_in_flight -= 1;
            generated += batch.len() as u64;
            batch.into_iter().for_each(|mut e| {
                accounts.apply(&mut e);
                mixer.push(e);
            });
        }
        let stopping = shutdown.is_cancelled()
            || args.count.is_some_and(|n| generated >= n)
            || deadline.is_some_and(|d| Instant::now() >= d);

        let next: Option<SimEvent> = if mixer.ready() {
            mixer.pop().map(|(event, dup)| {
                duplicates += u64::from(dup);
                event
            })
        } else if !stopping {
            match script.next_step() {
                Step::Event(mut event) => {
                    generated += 1;
                    accounts.apply(&mut event);
                    mixer.push(event);
                    continue;
                }
                Step::Purchase(purchase) => match purchase.request() {
                    None => {
                        let events = purchase.follow_ups(&Answer::NoAnswer);
                        generated += events.len() as u64;
                        events.into_iter().for_each(|mut e| {
                            accounts.apply(&mut e);
                            mixer.push(e);
                        });
                        continue;
                    }
                    Some(mut request) => {
                        accounts.apply(&mut request);
                        generated += 1;
                        purchases_in_flight += 1;
                        if paced {
                            pacer.wait().await;
                        }
                        let Ok(permit) = permits.clone().acquire_owned().await else {
                            break;
                        };
                        let (sender, pacer, tally, follow_tx) = (
                            sender.clone(),
                            pacer.clone(),
                            tally.clone(),
                            follow_tx.clone(),
                        );
                        tasks.spawn(async move {
                            let delivered = sender.deliver(&request, &pacer).await;
                            drop(permit);
                            record(&tally, &request, delivered.accepted, &delivered.answer);
                            let _ = follow_tx.send(purchase.follow_ups(&delivered.answer));
                        });
                        continue;
                    }
                },
            }
        } else if purchases_in_flight > 0 {
            // Stopping: wait for the purchases under way so their follow-ups are sent too.
            let Some(batch) = follow_rx.recv().await else {
                break;
            };
            purchases_in_flight -= 1;
            generated += batch.len() as u64;
            batch.into_iter().for_each(|mut e| {
                accounts.apply(&mut e);
                mixer.push(e);
            });
            continue;
        } else {
            mixer.pop().map(|(event, dup)| {
                duplicates += u64::from(dup);
                event
            })
        };
        let Some(event) = next else { break };
        if paced {
            pacer.wait().await;
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let (sender, pacer, tally) = (sender.clone(), pacer.clone(), tally.clone());
        tasks.spawn(async move {
            let delivered = sender.deliver(&event, &pacer).await;
            drop(permit);
            record(&tally, &event, delivered.accepted, &delivered.answer);
        });
        // Reap finished tasks so the set does not grow with the run.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    // The last figures, then the bar (or line) is left as it ended.
    stop_progress.cancel();
    let _ = progress.await;

    let tally = std::mem::take(&mut *tally.lock().unwrap_or_else(|p| p.into_inner()));
    let summary = Summary {
        elapsed: started.elapsed(),
        generated,
        duplicates_sent: duplicates,
        accepted: tally.accepted_ids.len() as u64,
        failed: tally.failed,
        approved: tally.approved,
        declined: tally.declined,
        events: sender
            .stats
            .events
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default(),
        authorizations: sender
            .stats
            .authorizations
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default(),
        accepted_ids: tally.accepted_ids,
    };
    if let Some(path) = &args.accepted_ids_file {
        write_ids(path, &summary.accepted_ids)?;
    }
    Ok(summary)
}

fn record(tally: &Mutex<Tally>, event: &SimEvent, accepted: bool, answer: &Answer) {
    let Ok(mut tally) = tally.lock() else { return };
    if accepted {
        tally.accepted_ids.push(event.id.clone());
    } else {
        tally.failed += 1;
    }
    if event.endpoint == Endpoint::Authorization {
        match answer {
            Answer::Approved { .. } | Answer::PartiallyApproved { .. } => tally.approved += 1,
            Answer::Declined { .. } => tally.declined += 1,
            Answer::NoAnswer => {}
        }
    }
}

fn write_ids(path: &std::path::Path, ids: &[String]) -> Result<(), Error> {
    let write = || -> std::io::Result<()> {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
        for id in ids {
            writeln!(file, "{id}")?;
        }
        file.flush()
    };
    write().map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })
}

/// Shows the deliveries, their rate, statuses and latency: a spinner with the counts on a
/// terminal, one line per interval otherwise. No ETA: deliveries count retries, duplicates and
/// authorization requests, so `--count` (distinct events) is not their total.
fn spawn_progress(
    every: Duration,
    sender: Arc<Sender>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if every.is_zero() {
            return;
        }
        let mut progress =
            cardstream_telemetry::Progress::new("simulate", "deliveries", None).lines_every(every);
        let mut tick = tokio::time::interval(every.min(Duration::from_millis(250)));
        tick.tick().await;
        loop {
            let stop = tokio::select! {
                () = shutdown.cancelled() => true,
                _ = tick.tick() => false,
            };
            let (Ok(events), Ok(auths)) = (
                sender.stats.events.lock(),
                sender.stats.authorizations.lock(),
            ) else {
                return;
            };
            let attempts = events.attempts + auths.attempts;
            let ok = events.ok() + auths.ok();
            let note = format!(
                "2xx {ok}  other {}  webhook p99 {}  authorization p99 {}",
                attempts - ok,
                ms(events.p(0.99)),
                ms(auths.p(0.99)),
            );
            drop((events, auths));
            progress.set(attempts, &note);
            if stop {
                progress.finish(&note);
                return;
            }
        }
    })
}
