//! The gateway benchmark: the same ~2 KB simulator events through (1) a bare axum route, (2)
//! rdkafka producing them directly, and (3) the gateway (verify + produce + acknowledge), all
//! against the same broker in the same run; then authorization requests at a fixed rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cardstream_kafka::{EventProducer, KafkaArgs, OutgoingEvent, ProducerTuning};
use cardstream_simulator::{Answer, Endpoint, SimEvent, generate};
use cardstream_stripe::{Event, WebhookSecret, signature};
use cardstream_testbed::{Broker, Storage};
use hdrhistogram::Histogram;
use http::HeaderValue;
use tokio::process::Command;

use crate::cpu::CpuMeter;
use crate::load::{LoadResult, Signed, closed_loop, open_loop};
use crate::processes::{free_addr, mib, peak_rss_mib, sibling_binary, spawn_listening};
use crate::report::{Line, Row, print, ratio};

/// The webhook secret every benchmark signs with.
pub(crate) const SECRET: &str = "whsec_benchmark_secret";

#[derive(Debug, clap::Args)]
pub(crate) struct GatewayBench {
    /// Measured time of each throughput run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured time before each run.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Concurrent connections (closed loop) and concurrent produces (direct baseline).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Webhooks per second in the open-loop latency run (below saturation).
    #[arg(long, default_value_t = 5000.0)]
    webhook_rate: f64,
    /// Authorization requests per second in the open-loop run.
    #[arg(long, default_value_t = 2000.0)]
    authorization_rate: f64,
    /// Partitions of the benchmark topic.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Broker storage: memory (fast) or sqlite (durable).
    #[arg(long, default_value = "memory")]
    storage: String,
    /// The gateway's and the direct producer's linger.
    #[arg(long, default_value = "2ms", value_parser = humantime::parse_duration)]
    linger: Duration,
}

/// `endpoint`'s events, signed now.
pub(crate) fn signed(events: &[SimEvent], endpoint: Endpoint) -> Vec<Signed> {
    let secret = WebhookSecret::new(SECRET);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    events
        .iter()
        .filter(|e| e.endpoint == endpoint)
        .filter_map(|e| {
            let header = signature::header(std::slice::from_ref(&secret), now, &e.body);
            Some(Signed {
                body: e.body.clone(),
                signature: HeaderValue::from_str(&header).ok()?,
            })
        })
        .collect()
}

/// Runs the gateway benchmark, prints its table, and returns its rows for the suite's summary.
pub(crate) async fn run(args: GatewayBench) -> anyhow::Result<Vec<Line>> {
    let storage = match args.storage.as_str() {
        "sqlite" => Storage::Sqlite,
        _ => Storage::Memory,
    };
    let broker = Broker::start(storage).await;
    let topic = "bench.events";
    let kafka = KafkaArgs::new(broker.brokers(), topic);
    cardstream_kafka::ensure_topic(&kafka, topic, args.partitions, 1).await?;

    eprintln!("generating events…");
    let events = generate(11, 2_000, 1_760_000_000, 12_000, |_| Answer::Approved {
        reason: "approved".into(),
    });
    let webhooks = Arc::new(signed(&events, Endpoint::Events));
    let authorizations = Arc::new(signed(&events, Endpoint::Authorization));
    let mean_size = webhooks.iter().map(|s| s.body.len()).sum::<usize>() / webhooks.len().max(1);

    // 1. The bare route: what HTTP alone costs on this machine.
    eprintln!("baseline: bare axum route…");
    let bare_addr = free_addr()?;
    let mut bare = Command::new(std::env::current_exe()?);
    bare.args(["bare-server", "--listen", &bare_addr.to_string()]);
    let bare_process = spawn_listening(bare, bare_addr).await?;
    let uri: http::Uri = format!("http://{bare_addr}/webhooks/stripe").parse()?;
    let meter = CpuMeter::start(&[
        ("server", bare_process.id()),
        ("broker", broker.pid()),
        ("load generator", Some(std::process::id())),
    ]);
    let bare = closed_loop(
        uri,
        webhooks.clone(),
        args.connections,
        args.warmup,
        args.duration,
    )
    .await;
    let bare_cpu = meter.finish();
    let bare_rss = peak_rss_mib(bare_process.id());
    drop(bare_process);

    // 2. rdkafka producing the same records directly: what the broker alone allows.
    eprintln!("baseline: direct rdkafka produce…");
    let meter = CpuMeter::start(&[
        ("broker", broker.pid()),
        ("producer", Some(std::process::id())),
    ]);
    let direct = direct_produce(
        &kafka,
        &webhooks,
        args.connections,
        args.linger,
        args.warmup,
        args.duration,
    )
    .await?;
    let direct_cpu = meter.finish();

    // 3. The gateway, as a separate process, on the same broker.
    eprintln!("gateway: verified webhooks…");
    let listen = free_addr()?;
    let admin = free_addr()?;
    let mut gateway = Command::new(sibling_binary("cardstream")?);
    gateway
        .arg("gateway")
        .env("CARDSTREAM_WEBHOOK_SECRETS", SECRET)
        .env("CARDSTREAM_LISTEN", listen.to_string())
        .env("CARDSTREAM_ADMIN_LISTEN", admin.to_string())
        .env("CARDSTREAM_KAFKA_BROKERS", broker.brokers())
        .env("CARDSTREAM_KAFKA_TOPIC", topic)
        .env(
            "CARDSTREAM_KAFKA_LINGER",
            format!("{}ms", args.linger.as_millis()),
        )
        .env("RUST_LOG", "warn");
    let gateway_process = spawn_listening(gateway, listen).await?;
    let uri: http::Uri = format!("http://{listen}/webhooks/stripe").parse()?;
    let meter = CpuMeter::start(&[
        ("gateway", gateway_process.id()),
        ("broker", broker.pid()),
        ("load generator", Some(std::process::id())),
    ]);
    let verified = closed_loop(
        uri,
        webhooks.clone(),
        args.connections,
        args.warmup,
        args.duration,
    )
    .await;
    let verified_cpu = meter.finish();

    // 4. Webhooks at a fixed rate below saturation: latency as Stripe would see it.
    eprintln!("gateway: webhooks at {}/s…", args.webhook_rate);
    let uri: http::Uri = format!("http://{listen}/webhooks/stripe").parse()?;
    let paced = open_loop(uri, webhooks.clone(), args.webhook_rate, args.duration).await;

    // 5. Authorization requests at a fixed rate.
    eprintln!(
        "gateway: authorization requests at {}/s…",
        args.authorization_rate
    );
    let uri: http::Uri = format!("http://{listen}/webhooks/stripe/authorization").parse()?;
    let meter = CpuMeter::start(&[
        ("gateway", gateway_process.id()),
        ("broker", broker.pid()),
        ("load generator", Some(std::process::id())),
    ]);
    let decided = open_loop(
        uri,
        authorizations.clone(),
        args.authorization_rate,
        args.duration,
    )
    .await;
    let decided_cpu = meter.finish();
    let gateway_rss = peak_rss_mib(gateway_process.id());
    drop(gateway_process);

    let check = |name: &str, r: &LoadResult| {
        if r.ok() != r.completed {
            eprintln!(
                "warning: {name}: {} of {} requests were not 2xx: {:?}, transport errors {}",
                r.completed - r.ok(),
                r.completed,
                r.by_status,
                r.errors
            );
        }
    };
    check("bare", &bare);
    check("gateway", &verified);
    check("authorization", &decided);
    check("gateway at a fixed rate", &paced);

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    print(
        "cardstream gateway benchmark",
        &[
            format!(
                "machine: {cores} cores shared by the load generator, the gateway and the broker (tansu 0.6.0, {} storage)",
                args.storage
            ),
            format!(
                "events: {} distinct simulator webhooks, mean {mean_size} bytes; {} connections; {:?} measured after {:?} warm-up",
                webhooks.len(),
                args.connections,
                args.duration,
                args.warmup
            ),
        ],
        &[
            Row {
                name: "baseline: bare axum route (read body, 200)".into(),
                rate: bare.rate(),
                p50: bare.p(0.5),
                p99: bare.p(0.99),
                note: format!("{} ok", bare.ok()),
            },
            Row {
                name: "baseline: rdkafka produce, acks=all".into(),
                rate: direct.rate(),
                p50: direct.p(0.5),
                p99: direct.p(0.99),
                note: format!("{} acknowledged", direct.ok()),
            },
            Row {
                name: "gateway: verified webhooks (200 after ack)".into(),
                rate: verified.rate(),
                p50: verified.p(0.5),
                p99: verified.p(0.99),
                note: format!(
                    "{} ok; {} of bare route, {} of direct produce",
                    verified.ok(),
                    ratio(verified.rate(), bare.rate()),
                    ratio(verified.rate(), direct.rate())
                ),
            },
            Row {
                name: format!(
                    "gateway: verified webhooks @ {:.0}/s open loop",
                    args.webhook_rate
                ),
                rate: paced.rate(),
                p50: paced.p(0.5),
                p99: paced.p(0.99),
                note: format!(
                    "{} ok; max {}",
                    paced.ok(),
                    crate::ms(Duration::from_micros(paced.latency_us.max()))
                ),
            },
            Row {
                name: format!(
                    "gateway: authorization @ {:.0}/s open loop",
                    args.authorization_rate
                ),
                rate: decided.rate(),
                p50: decided.p(0.5),
                p99: decided.p(0.99),
                note: format!(
                    "{} ok; max {}",
                    decided.ok(),
                    crate::ms(Duration::from_micros(decided.latency_us.max()))
                ),
            },
        ],
    );
    println!("  where the cores went (1.00 = one core busy for the whole run):");
    println!("    bare route:    {bare_cpu}");
    println!("    direct produce: {direct_cpu}");
    println!("    gateway:       {verified_cpu}");
    println!("    authorization: {decided_cpu}");

    let per_second = |r: &LoadResult| format!("{:.0}/s, p99 {}", r.rate(), crate::ms(r.p(0.99)));
    let budget = Duration::from_secs(2);
    Ok(vec![
        Line::new(
            "gateway: verified webhooks (200 after the broker's ack)",
            per_second(&verified),
            format!("bare axum route: {}", per_second(&bare)),
            ratio(verified.rate(), bare.rate()),
        )
        .target("≥ 20000/s"),
        Line::new(
            "gateway: verified webhooks vs. producing directly",
            per_second(&verified),
            format!("rdkafka produce, acks=all: {}", per_second(&direct)),
            ratio(verified.rate(), direct.rate()),
        ),
        Line::new(
            format!(
                "authorization decision p99 @ {:.0}/s",
                args.authorization_rate
            ),
            crate::ms(decided.p(0.99)),
            format!("Stripe's budget: {}", crate::ms(budget)),
            ratio(decided.p(0.99).as_secs_f64(), budget.as_secs_f64()),
        )
        .target("< 5 ms"),
        Line::new(
            "peak RSS: gateway",
            mib(gateway_rss),
            format!("bare axum route: {}", mib(bare_rss)),
            match (gateway_rss, bare_rss) {
                (Some(g), Some(b)) => ratio(g, b),
                _ => "n/a".to_owned(),
            },
        ),
    ])
}

/// `concurrency` tasks, each producing a record and waiting for its acknowledgement.
async fn direct_produce(
    kafka: &KafkaArgs,
    items: &Arc<Vec<Signed>>,
    concurrency: usize,
    linger: Duration,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let producer = EventProducer::new(
        kafka,
        ProducerTuning {
            linger,
            delivery_timeout: Duration::from_secs(10),
        },
    )?;
    // The same key and headers the gateway would attach.
    let records: Arc<Vec<(String, Event)>> = Arc::new(
        items
            .iter()
            .filter_map(|s| Event::parse(&s.body).ok().map(|e| (e.partition_key(), e)))
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let started = tokio::time::Instant::now();
    let measure_from = started + warmup;
    let end = measure_from + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (producer, records, items, next) = (
            producer.clone(),
            records.clone(),
            items.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
                .unwrap_or_else(|_| unreachable!());
            let (mut ok, mut failed) = (0u64, 0u64);
            loop {
                let now = tokio::time::Instant::now();
                if now >= end {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed) % records.len();
                let (key, event) = &records[i];
                let outgoing = OutgoingEvent {
                    key,
                    payload: &items[i].body,
                    event_id: &event.id,
                    event_type: &event.kind,
                    created: event.created,
                    received_at_ms: 0,
                };
                let result = producer.send(&outgoing, Duration::from_secs(10)).await;
                if now >= measure_from {
                    if result.is_ok() {
                        ok += 1
                    } else {
                        failed += 1
                    }
                    let _ = latencies.record(
                        u64::try_from(now.elapsed().as_micros())
                            .unwrap_or(u64::MAX)
                            .max(1),
                    );
                }
            }
            (latencies, ok, failed)
        }));
    }
    let mut result = LoadResult::empty(duration);
    for task in tasks {
        let (latencies, ok, failed) = task.await?;
        result.absorb(&latencies, ok, failed);
    }
    Ok(result)
}
