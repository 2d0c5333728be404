//! The aggregator benchmark: simulator events pre-loaded on the topic, folded by the aggregator
//! process into Postgres; next to it, `COPY` of the very rows it wrote into the same tables of
//! an empty database; then the lag the group leaves and the time to replay.

use std::time::{Duration, Instant};

use cardstream_kafka::{EventProducer, KafkaArgs, OutgoingEvent, ProducerTuning, TopicArgs};
use cardstream_simulator::{Answer, generate};
use cardstream_store::{CONTENT_QUERIES, Store};
use cardstream_stripe::Event;
use cardstream_testbed::{Broker, Storage, TestDatabase};
use futures_util::TryStreamExt;
use tokio::process::Command;

use crate::cpu::CpuMeter;
use crate::processes::{free_addr, mib, peak_rss_mib, sibling_binary};
use crate::report::Line;

#[derive(Debug, clap::Args)]
pub(crate) struct AggregatorBench {
    /// Events to fold (about 4.3 per simulated purchase).
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// The aggregator's batch size (its default is 5000).
    #[arg(long, default_value_t = 5000)]
    batch_size: usize,
}

/// The memory limit the aggregator's defaults are meant to live within (issue: a 128 MiB
/// container); its peak RSS is reported against it.
const CONTAINER_LIMIT_MIB: f64 = 128.0;

/// Tables in the order COPY loads them.
const TABLES: [&str; 12] = [
    "stripe_events",
    "cardholders",
    "cards",
    "authorizations",
    "transactions",
    "disputes",
    "card_daily_spend",
    "card_category_spend",
    "card_merchant_spend",
    "program_category_daily",
    "program_merchant_daily",
    "program_outcome_daily",
];

/// Runs the aggregator benchmark, prints its table, and returns its rows for the suite.
pub(crate) async fn run(args: AggregatorBench) -> anyhow::Result<Vec<Line>> {
    eprintln!("generating {} events…", args.events);
    // About 3.9 events per purchase: generate enough, then keep exactly `events`.
    let mut events = generate(12, 2_000, 1_760_000_000, args.events / 3, |_| {
        Answer::Approved {
            reason: "approved".into(),
        }
    });
    anyhow::ensure!(
        events.len() >= args.events,
        "generated only {} events",
        events.len()
    );
    events.truncate(args.events);
    let bytes: usize = events.iter().map(|e| e.body.len()).sum();

    // Memory storage: SQLite storage could not serve 100,000 records (its fetches and metadata
    // requests timed out and the group rebalanced without end). A single consumer reading from
    // offset 0 is not affected by the memory engine's defects; its high watermark is, so the
    // lag below is computed from the offsets the broker acknowledged on produce.
    let broker = Broker::start(Storage::Memory).await;
    let topic = "bench.events";
    let kafka = KafkaArgs::new(broker.brokers(), topic);
    cardstream_kafka::ensure_topics(&TopicArgs {
        kafka: kafka.clone(),
        partitions: args.partitions,
        replication: 1,
    })
    .await?;
    eprintln!("loading the topic…");
    let load_started = Instant::now();
    let producer = EventProducer::new(
        &kafka,
        ProducerTuning {
            linger: Duration::from_millis(20),
            delivery_timeout: Duration::from_secs(120),
        },
    )?;
    let mut pending = Vec::with_capacity(events.len());
    for e in &events {
        let event = Event::parse(&e.body)?;
        let key = event.partition_key();
        let outgoing = OutgoingEvent {
            key: &key,
            payload: &e.body,
            event_id: &event.id,
            event_type: &event.kind,
            created: event.created,
            received_at_ms: 0,
        };
        pending.push(enqueue_waiting(&producer, &outgoing).await?);
    }
    let mut ends: std::collections::BTreeMap<i32, i64> = std::collections::BTreeMap::new();
    for delivery in pending {
        let stored = cardstream_kafka::await_delivery(delivery, Duration::from_secs(120)).await?;
        let end = ends.entry(stored.partition).or_default();
        *end = (*end).max(stored.offset + 1);
    }
    let load = load_started.elapsed();

    let live_db = TestDatabase::create().await;
    let store = crate::processes::bench_store(&live_db.url, 2).await?;
    store.migrate_up().await?;

    let wal_before = crate::bytes::wal(&store).await?;
    eprintln!("aggregating…");
    let admin = free_addr()?;
    let mut aggregator = Command::new(sibling_binary("cardstream")?);
    aggregator
        .arg("aggregator")
        .env("CARDSTREAM_KAFKA_BROKERS", broker.brokers())
        .env("CARDSTREAM_KAFKA_TOPIC", topic)
        .env("CARDSTREAM_DATABASE_URL", &live_db.url)
        .env("CARDSTREAM_ADMIN_LISTEN", admin.to_string())
        .env("CARDSTREAM_BATCH_SIZE", args.batch_size.to_string())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    let started = Instant::now();
    let child = aggregator.spawn()?;
    let meter =
        CpuMeter::start(&[("aggregator", child.id()), ("broker", broker.pid())]).with_postgres();
    let target = events.len() as i64;
    let mut first_commit = None;
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(next_offset), 0)::int8 FROM consumer_positions",
        )
        .fetch_one(store.pool())
        .await?;
        if done > 0 && first_commit.is_none() {
            first_commit = Some(Instant::now());
        }
        if done >= target {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(900),
            "aggregation stalled at {done} of {target}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let total = started.elapsed();
    let sustained = first_commit.map_or(total, |t| t.elapsed());
    let cpu = meter.finish();
    // The loop commits within a second of its last batch; then read the group's lag.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let committed = cardstream_kafka::group_lag(&kafka, "cardstream-aggregator", topic).await?;
    let lag: i64 = committed
        .iter()
        .map(|(p, _)| ends.get(&p.partition).copied().unwrap_or(0) - p.committed.unwrap_or(0))
        .sum();
    let aggregator_rss = peak_rss_mib(child.id());
    drop(child);
    // Its connections' statistics reach pg_stat_wal as they close.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let wal = crate::bytes::wal(&store).await? - wal_before;
    let table_bytes = crate::bytes::tables(&store).await?;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM stripe_events")
        .fetch_one(store.pool())
        .await?;
    let drift = store.rollup_drift().await?;

    eprintln!("COPY baseline…");
    let copy = copy_baseline(&store).await?;

    eprintln!("replay…");
    let before = store.table_digests().await?;
    let replay = store.replay(5_000, |_| {}).await?;
    let identical = store.table_digests().await? == before;

    let rate = |d: Duration| events.len() as f64 / d.as_secs_f64().max(1e-9);
    println!();
    println!("cardstream aggregator benchmark");
    println!(
        "  {} simulator events ({} MB) on {} partitions; batch size {}; broker tansu 0.6.0 (memory storage); Postgres on this machine",
        events.len(),
        bytes / 1_000_000,
        args.partitions,
        args.batch_size
    );
    println!(
        "  topic loaded in {:.1} s ({:.0} records/s), not measured below",
        load.as_secs_f64(),
        rate(load)
    );
    println!();
    println!(
        "  {:<48} {:>12} {:>10}  notes",
        "measurement", "events/s", "seconds"
    );
    println!("  {}", "-".repeat(100));
    println!(
        "  {:<48} {:>12.0} {:>10.1}  first commit to last; {:.0}/s counting start-up",
        "aggregator: topic -> committed rows",
        rate(sustained),
        sustained.as_secs_f64(),
        rate(total)
    );
    println!(
        "  {:<48} {:>12.0} {:>10.1}  {} rows in {} tables",
        "baseline: COPY of the same rows, same tables",
        rate(copy.elapsed),
        copy.elapsed.as_secs_f64(),
        copy.rows,
        TABLES.len()
    );
    println!(
        "  {:<48} {:>12} {:>10}  aggregator / COPY",
        "ratio",
        format!(
            "{:.2}x",
            copy.elapsed.as_secs_f64() / sustained.as_secs_f64()
        ),
        ""
    );
    println!(
        "  {:<48} {:>12.0} {:>10.1}  identical to the live tables: {identical}",
        "replay from stripe_events",
        rate(replay.elapsed),
        replay.elapsed.as_secs_f64()
    );
    println!();
    println!(
        "  stored {stored} of {} events; rollup drift {:?}; group lag after the run: {lag} records (acknowledged ends minus committed offsets)",
        events.len(),
        drift
    );
    anyhow::ensure!(
        usize::try_from(stored).is_ok_and(|n| n == events.len()),
        "stored {stored} of {} events",
        events.len()
    );
    anyhow::ensure!(drift.is_clean(), "the rollups drifted: {drift:?}");
    anyhow::ensure!(identical, "the replay's tables differ from the live ones");
    crate::bytes::print(events.len(), bytes, wal, &table_bytes);
    println!("  during aggregation, {cpu}");
    println!(
        "  aggregator peak RSS {} (batch size {})",
        mib(aggregator_rss),
        args.batch_size
    );

    let copy_rate = format!("COPY of the same rows: {:.0} events/s", rate(copy.elapsed));
    Ok(vec![
        Line::new(
            format!(
                "aggregator: {} events, topic → committed rows",
                events.len()
            ),
            format!("{:.0} events/s", rate(sustained)),
            copy_rate.clone(),
            format!(
                "{:.2}x",
                copy.elapsed.as_secs_f64() / sustained.as_secs_f64()
            ),
        )
        .target("≥ 20000 events/s"),
        Line::new(
            format!(
                "replay of {} events (rebuild every projection)",
                events.len()
            ),
            format!(
                "{:.1} s ({:.0} events/s); identical: {identical}",
                replay.elapsed.as_secs_f64(),
                rate(replay.elapsed)
            ),
            copy_rate,
            format!(
                "{:.2}x",
                copy.elapsed.as_secs_f64() / replay.elapsed.as_secs_f64()
            ),
        )
        .target("< 60 s"),
        Line::new(
            "aggregator: write-ahead log per event",
            format!("{:.0} bytes", wal.bytes as f64 / events.len().max(1) as f64),
            format!(
                "the event's payload: {:.0} bytes",
                bytes as f64 / events.len().max(1) as f64
            ),
            format!("{:.2}x", wal.bytes as f64 / bytes.max(1) as f64),
        ),
        Line::new(
            format!("peak RSS: aggregator (batch size {})", args.batch_size),
            mib(aggregator_rss),
            format!("container limit: {CONTAINER_LIMIT_MIB:.0} MiB"),
            aggregator_rss.map_or_else(String::new, |rss| {
                format!("{:.2}x", rss / CONTAINER_LIMIT_MIB)
            }),
        )
        .target("< 100 MiB"),
    ])
}

struct Copied {
    rows: u64,
    elapsed: Duration,
}

/// Exports what the aggregator wrote and times loading it with COPY into an empty database
/// with the same schema (indexes included).
async fn copy_baseline(store: &Store) -> anyhow::Result<Copied> {
    let mut exported = Vec::new();
    let mut source = store.pool().acquire().await?;
    for (table, _) in CONTENT_QUERIES.iter().filter(|(t, _)| TABLES.contains(t)) {
        let mut data = Vec::new();
        let mut stream = source
            .copy_out_raw(&format!("COPY {table} TO STDOUT"))
            .await?;
        while let Some(chunk) = stream.try_next().await? {
            data.extend_from_slice(&chunk);
        }
        drop(stream);
        exported.push((*table, data));
    }
    let target_db = TestDatabase::create().await;
    let target = crate::processes::bench_store(&target_db.url, 1).await?;
    target.migrate_up().await?;
    let mut conn = target.pool().acquire().await?;
    let started = Instant::now();
    let mut rows = 0;
    for (table, data) in &exported {
        let mut copy = conn
            .copy_in_raw(&format!("COPY {table} FROM STDIN"))
            .await?;
        copy.send(data.as_slice()).await?;
        rows += copy.finish().await?;
    }
    Ok(Copied {
        rows,
        elapsed: started.elapsed(),
    })
}

/// Enqueues `event`, waiting while librdkafka's local queue is full: a benchmark producing as
/// fast as it can outruns the broker's acknowledgements.
pub(crate) async fn enqueue_waiting(
    producer: &EventProducer,
    event: &OutgoingEvent<'_>,
) -> anyhow::Result<cardstream_kafka::rdkafka::producer::DeliveryFuture> {
    loop {
        match producer.enqueue(event) {
            Ok(delivery) => return Ok(delivery),
            Err(cardstream_kafka::Error::QueueFull) => {
                tokio::time::sleep(Duration::from_millis(5)).await
            }
            Err(err) => return Err(err.into()),
        }
    }
}
