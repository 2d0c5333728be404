//! The backfill benchmark: a simulated world's history served by the fake Stripe API, read by
//! `cardstream_sync::backfill` at no rate limit and folded by a running aggregator process;
//! next to it, the same world's webhook events produced straight to a fresh topic and folded by
//! another aggregator process. Then the rate limiter's accuracy, from the fake's request log.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use cardstream_kafka::{EventProducer, KafkaArgs, OutgoingEvent, ProducerTuning};
use cardstream_simulator::{SimEvent, generate_declining_every};
use cardstream_store::Store;
use cardstream_stripe::Event;
use cardstream_sync::{BackfillArgs, StripeApi, StripeApiArgs};
use cardstream_telemetry::CancellationToken;
use cardstream_testbed::{Broker, FakeStripe, Storage, TestDatabase};
use tokio::process::{Child, Command};

use crate::aggregator::enqueue_waiting;
use crate::cpu::CpuMeter;
use crate::processes::{free_addr, metric_sum, scrape, sibling_binary};
use crate::report::{Line, ratio};

const KEY: &str = "rk_test_bench_backfill";
/// How long the aggregator may take to fold what was written before the run counts as stalled.
const STALL: Duration = Duration::from_secs(900);

#[derive(Debug, clap::Args)]
pub(crate) struct BackfillBench {
    /// Objects in the simulated world, about: purchases are sized to reach it and the exact
    /// count is printed. For a quick run: --objects 500 --limiter-time 2s.
    #[arg(long, default_value_t = 20_000)]
    objects: usize,
    /// Cards in the world (each one costs the backfill a request for its wallet tokens).
    /// Default: one for every 20 objects.
    #[arg(long)]
    cards: Option<usize>,
    /// Partitions of each topic.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Rate limits (requests/s) whose accuracy is measured.
    #[arg(long, value_delimiter = ',', default_value = "20,50")]
    limiter_rates: Vec<f64>,
    /// How long each rate limit is measured.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    limiter_time: Duration,
    /// Tasks calling the API at once through the one limiter, so that the limiter, not each
    /// request's round trip, sets the pace.
    #[arg(long, default_value_t = 4)]
    limiter_callers: usize,
}

/// Runs the backfill benchmark, prints its table, and returns its rows for a summary.
pub(crate) async fn run(args: BackfillBench) -> anyhow::Result<Vec<Line>> {
    let cards = args.cards.unwrap_or(args.objects / 20).max(1);
    let (events, objects) = sized_world(args.objects, cards);
    let bytes: usize = events.iter().map(|e| e.body.len()).sum();
    let broker = Broker::start(Storage::Memory).await;

    eprintln!("backfill of {objects} objects at no rate limit…");
    let backfilled = backfill_to_rows(&broker, &events, objects, args.partitions).await?;
    eprintln!("the same world's {} events produced…", events.len());
    let produced = produce_to_rows(&broker, &events, args.partitions).await?;
    let identical = backfilled.digests == produced.digests;
    let mut limits = Vec::new();
    for rate in &args.limiter_rates {
        eprintln!("rate limiter at {rate}/s for {:?}…", args.limiter_time);
        limits.push(limiter(*rate, args.limiter_time, args.limiter_callers).await?);
    }

    let backfill_rate = objects as f64 / backfilled.total.as_secs_f64().max(1e-9);
    let aggregator_rate = events.len() as f64 / produced.total.as_secs_f64().max(1e-9);
    let backfill_ratio = ratio(backfill_rate, aggregator_rate);
    println!();
    println!("cardstream backfill benchmark");
    println!(
        "  a simulated world of {objects} Stripe objects ({} webhook events, {} MB; {} cards; purchases a second apart from 3 days ago)",
        events.len(),
        bytes / 1_000_000,
        cards
    );
    println!(
        "  the fake Stripe API in this process over local HTTP; broker tansu (memory storage), {} partitions; Postgres on this machine; each aggregator its own process, started and assigned before the clock starts",
        args.partitions
    );
    println!();
    println!(
        "  {:<52} {:>14} {:>9}  notes",
        "measurement", "per second", "seconds"
    );
    println!("  {}", "-".repeat(110));
    println!(
        "  {:<52} {:>14} {:>9.1}  {} requests; all in Kafka after {:.1} s",
        "backfill, --stripe-rate 0: start -> committed rows",
        format!("{backfill_rate:.0} objects"),
        backfilled.total.as_secs_f64(),
        backfilled.requests,
        backfilled.written.as_secs_f64(),
    );
    println!(
        "  {:<52} {:>14} {:>9.1}  all in Kafka after {:.1} s",
        "baseline: the webhook events produced -> committed",
        format!("{aggregator_rate:.0} events"),
        produced.total.as_secs_f64(),
        produced.written.as_secs_f64(),
    );
    println!(
        "  {:<52} {:>14} {:>9}  backfill objects/s / aggregator events/s",
        "ratio", backfill_ratio, ""
    );
    println!();
    println!(
        "  stored {} snapshots for {objects} objects, {} events for {} events; tables identical (content digests): {identical}",
        backfilled.stored,
        produced.stored,
        events.len()
    );
    println!(
        "  during the backfill, {} (bench: the fake Stripe and the backfill)",
        backfilled.cpu
    );
    println!(
        "  during the baseline, {} (bench: the producer)",
        produced.cpu
    );
    println!();
    println!(
        "  rate limiter: {} callers sharing one StripeApi, {:.0} s at each rate, request arrivals from the fake's log",
        args.limiter_callers,
        args.limiter_time.as_secs_f64()
    );
    println!(
        "  {:>8} {:>10} {:>8} {:>24} {:>9}",
        "target/s", "achieved/s", "ratio", "most starts in any 1 s", "requests"
    );
    for l in &limits {
        println!(
            "  {:>8} {:>10.2} {:>8} {:>24} {:>9}",
            l.target,
            l.achieved,
            ratio(l.achieved, l.target),
            l.most_in_a_second,
            l.requests
        );
    }
    println!();

    let mut lines = vec![Line::new(
        format!("backfill: {objects} objects from the fake Stripe → committed rows"),
        format!("{backfill_rate:.0} objects/s"),
        format!(
            "aggregator on the same world's {} events: {aggregator_rate:.0} events/s",
            events.len()
        ),
        backfill_ratio,
    )];
    for l in &limits {
        lines.push(Line::new(
            format!("backfill rate limit {}/s", l.target),
            format!(
                "{:.2} requests/s; at most {} in any 1 s",
                l.achieved, l.most_in_a_second
            ),
            format!("target {}/s", l.target),
            ratio(l.achieved, l.target),
        ));
    }
    Ok(lines)
}

/// A world (every fifth authorization declined, as e2e's) of at least `objects` distinct Stripe
/// objects: its events and that count. The purchases start at half the objects and grow by
/// the objects per purchase seen so far.
fn sized_world(objects: usize, cards: usize) -> (Vec<SimEvent>, usize) {
    eprintln!("generating a world of about {objects} objects…");
    // Three days back, a purchase a second: all of it history by now, as a backfill finds it.
    let start = unix_now() - 3 * 86_400;
    let generate = |purchases: usize| {
        let events = generate_declining_every(5, 7, cards, start, purchases.max(1));
        let count = distinct_objects(&events);
        (events, count)
    };
    let mut purchases = objects / 2;
    let (mut events, mut count) = generate(purchases);
    while count < objects {
        let per_purchase = count as f64 / purchases.max(1) as f64;
        let more = ((objects - count) as f64 / per_purchase.max(0.1)).ceil() as usize;
        purchases += more.max(1);
        (events, count) = generate(purchases);
    }
    (events, count)
}

/// Distinct `data.object.id`s among the events: what a backfill reads, one snapshot each.
fn distinct_objects(events: &[SimEvent]) -> usize {
    events
        .iter()
        .filter_map(|e| serde_json::from_slice::<serde_json::Value>(&e.body).ok())
        .filter_map(|e| e["data"]["object"]["id"].as_str().map(str::to_owned))
        .collect::<BTreeSet<_>>()
        .len()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// One path from a source into Postgres, timed.
struct Folded {
    /// From the start to every record acknowledged by the broker.
    written: Duration,
    /// From the start to every row committed.
    total: Duration,
    stored: i64,
    requests: u64,
    cpu: String,
    digests: std::collections::BTreeMap<&'static str, (i64, String)>,
}

/// A fresh topic and database with an aggregator process folding the one into the other,
/// assigned its partitions.
struct Lane {
    _db: TestDatabase,
    store: Store,
    kafka: KafkaArgs,
    aggregator: Child,
}

impl Lane {
    /// `group` is the lane's own consumer group: an aggregator joining a group whose last
    /// member was killed waits out that member's session (45 s) first.
    async fn start(broker: &Broker, partitions: i32, group: &str) -> anyhow::Result<Lane> {
        let topic = broker.events_topic(partitions).await;
        let db = TestDatabase::create().await;
        let store = crate::processes::bench_store(&db.url, 2).await?;
        store.migrate_up().await?;
        let admin = free_addr()?;
        let aggregator = Command::new(sibling_binary("cardstream")?)
            .arg("aggregator")
            .env("CARDSTREAM_KAFKA_BROKERS", broker.brokers())
            .env("CARDSTREAM_KAFKA_TOPIC", &topic)
            .env("CARDSTREAM_DATABASE_URL", &db.url)
            .env("CARDSTREAM_CONSUMER_GROUP", group)
            .env("CARDSTREAM_ADMIN_LISTEN", admin.to_string())
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the aggregator")?;
        let mut lane = Lane {
            _db: db,
            store,
            kafka: KafkaArgs::new(broker.brokers(), &topic),
            aggregator,
        };
        lane.wait_assigned(admin).await?;
        Ok(lane)
    }

    /// Waits for the aggregator's first partition assignment: a group join takes seconds on
    /// this broker, which is not the path being measured.
    async fn wait_assigned(&mut self, admin: SocketAddr) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = scrape(admin).await
                && metric_sum(&text, "cardstream_rebalances_total", "kind=\"assign\"") >= 1.0
            {
                return Ok(());
            }
            if let Some(status) = self.aggregator.try_wait()? {
                anyhow::bail!("the aggregator exited at start: {status}");
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the aggregator was not assigned partitions within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The producer `cardstream backfill` makes (its linger and delivery timeout).
    fn producer(&self) -> anyhow::Result<EventProducer> {
        Ok(EventProducer::new(
            &self.kafka,
            ProducerTuning {
                linger: Duration::from_millis(5),
                delivery_timeout: Duration::from_secs(30),
            },
        )?)
    }

    /// Waits until `stripe_events` holds at least `target` rows; their count.
    async fn wait_rows(&self, target: i64) -> anyhow::Result<i64> {
        let started = Instant::now();
        loop {
            let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM stripe_events")
                .fetch_one(self.store.pool())
                .await?;
            if stored >= target {
                return Ok(stored);
            }
            anyhow::ensure!(
                started.elapsed() < STALL,
                "aggregation stalled at {stored} of {target} rows"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn meter(&self, broker: &Broker) -> CpuMeter {
        CpuMeter::start(&[
            ("aggregator", self.aggregator.id()),
            ("broker", broker.pid()),
            ("bench", Some(std::process::id())),
        ])
        .with_postgres()
    }
}

/// Backfill from the fake holding `events`, at no rate limit, until every snapshot is a row.
async fn backfill_to_rows(
    broker: &Broker,
    events: &[SimEvent],
    objects: usize,
    partitions: i32,
) -> anyhow::Result<Folded> {
    let fake = FakeStripe::start(KEY).await;
    fake.load_events(
        None,
        events
            .iter()
            .map(|e| serde_json::from_slice(&e.body))
            .collect::<Result<Vec<serde_json::Value>, _>>()?,
    );
    let lane = Lane::start(broker, partitions, "bench-backfill").await?;
    let producer = lane.producer()?;
    let mut api = StripeApiArgs::new(fake.url(), KEY);
    api.stripe_rate = 0.0;
    let args = BackfillArgs::new(api);
    let client = StripeApi::new(&args.api)?;
    let meter = lane.meter(broker);
    let started = Instant::now();
    let report = cardstream_sync::backfill(
        &args,
        &client,
        &producer,
        &lane.store,
        &CancellationToken::new(),
    )
    .await?;
    let written = started.elapsed();
    // Correctness, not timing: every object read once, and each one a row.
    anyhow::ensure!(
        report.objects() == objects as u64,
        "the backfill wrote {} objects of {objects}:\n{report}",
        report.objects()
    );
    let stored = lane.wait_rows(objects as i64).await?;
    let total = started.elapsed();
    let cpu = meter.finish();
    anyhow::ensure!(
        stored == objects as i64,
        "{stored} snapshot rows for {objects} objects"
    );
    Ok(Folded {
        written,
        total,
        stored,
        requests: report.requests,
        cpu,
        digests: lane.store.content_digests().await?,
    })
}

/// The webhook events produced to a fresh topic as fast as the producer takes them, until
/// every one is a row.
async fn produce_to_rows(
    broker: &Broker,
    events: &[SimEvent],
    partitions: i32,
) -> anyhow::Result<Folded> {
    let parsed = events
        .iter()
        .map(|e| Ok((Event::parse(&e.body)?, &e.body)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let lane = Lane::start(broker, partitions, "bench-webhooks").await?;
    let producer = lane.producer()?;
    let meter = lane.meter(broker);
    let started = Instant::now();
    let mut pending = Vec::with_capacity(parsed.len());
    for (event, body) in &parsed {
        let key = event.partition_key();
        let outgoing = OutgoingEvent {
            key: &key,
            payload: body,
            event_id: &event.id,
            event_type: &event.kind,
            created: event.created,
            received_at_ms: 0,
        };
        pending.push(enqueue_waiting(&producer, &outgoing).await?);
    }
    for delivery in pending {
        cardstream_kafka::await_delivery(delivery, producer.delivery_timeout()).await?;
    }
    let written = started.elapsed();
    let stored = lane.wait_rows(events.len() as i64).await?;
    let total = started.elapsed();
    let cpu = meter.finish();
    anyhow::ensure!(
        stored == events.len() as i64,
        "{stored} rows for {} events",
        events.len()
    );
    Ok(Folded {
        written,
        total,
        stored,
        requests: 0,
        cpu,
        digests: lane.store.content_digests().await?,
    })
}

/// What one rate limit achieved.
struct Limit {
    target: f64,
    achieved: f64,
    most_in_a_second: usize,
    requests: usize,
}

/// `callers` tasks listing cardholders through one `StripeApi` limited to `rate` for `time`;
/// the rate and the busiest second from when the fake saw each request arrive.
async fn limiter(rate: f64, time: Duration, callers: usize) -> anyhow::Result<Limit> {
    let fake = FakeStripe::start(KEY).await;
    // A small world: each request costs the fake little, so its answers do not set the pace.
    fake.load_events(
        None,
        generate_declining_every(5, 3, 10, unix_now() - 86_400, 20)
            .iter()
            .map(|e| serde_json::from_slice(&e.body))
            .collect::<Result<Vec<serde_json::Value>, _>>()?,
    );
    let mut args = StripeApiArgs::new(fake.url(), KEY);
    args.stripe_rate = rate;
    let api = StripeApi::new(&args)?;
    let deadline = Instant::now() + time;
    let tasks: Vec<_> = (0..callers.max(1))
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    api.list(
                        "/v1/issuing/cardholders",
                        &[("limit", "10".to_owned())],
                        None,
                    )
                    .await?;
                }
                Ok::<_, cardstream_sync::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let log = fake.requests();
    anyhow::ensure!(
        log.iter().all(|r| r.status == 200),
        "the fake refused a request"
    );
    let mut at: Vec<Instant> = log.iter().map(|r| r.at).collect();
    at.sort();
    let (Some(first), Some(last)) = (at.first(), at.last()) else {
        anyhow::bail!("no requests were made");
    };
    let span = last.duration_since(*first).as_secs_f64();
    let achieved = if span > 0.0 {
        (at.len() - 1) as f64 / span
    } else {
        0.0
    };
    // For each request, how many start in the second from it (a window [t, t + 1 s)).
    let mut most = 0;
    let mut end = 0;
    for (i, t) in at.iter().enumerate() {
        while end < at.len() && at[end] < *t + Duration::from_secs(1) {
            end += 1;
        }
        most = most.max(end - i);
    }
    Ok(Limit {
        target: rate,
        achieved,
        most_in_a_second: most,
        requests: at.len(),
    })
}
