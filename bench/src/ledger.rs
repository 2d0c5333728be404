//! The spend ledger benchmark: authorization requests under a daily limit at a fixed rate,
//! answered (1) by one gateway counting spend in memory (`--spend-ledger local`, the only
//! mode before the shared ledger, right for one replica only) and (2) by two gateways
//! reserving every approval in Postgres (`shared`), the rate split between them. Every request
//! is distinct (no replay answered from a cache), and each has a limit to check.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cardstream_simulator::{Answer, Endpoint, SimEvent, generate};
use cardstream_store::Store;
use cardstream_testbed::{Broker, Storage, TestDatabase};
use tokio::process::{Child, Command};

use crate::gateway::{SECRET, signed};
use crate::load::{LoadResult, Signed, open_loop};
use crate::processes::{free_addr, metric_sum, scrape, sibling_binary, spawn_listening};
use crate::report::{Line, Row, print, ratio};

const TOPIC: &str = "bench.ledger";

#[derive(Debug, clap::Args)]
pub(crate) struct LedgerBench {
    /// Measured time of each run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured time at the same rate before each run.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Authorization requests per second, in all.
    #[arg(long, default_value_t = 2000.0)]
    rate: f64,
    /// Cards the requests are spread over.
    #[arg(long, default_value_t = 2_000)]
    cards: usize,
}

/// A running gateway and its admin address.
struct Replica {
    _process: Child,
    addr: SocketAddr,
    admin: SocketAddr,
}

async fn replica(broker: &Broker, database: &str, mode: &str) -> anyhow::Result<Replica> {
    let (addr, admin) = (free_addr()?, free_addr()?);
    let mut command = Command::new(sibling_binary("cardstream")?);
    command
        .arg("gateway")
        .env("CARDSTREAM_WEBHOOK_SECRETS", SECRET)
        .env("CARDSTREAM_LISTEN", addr.to_string())
        .env("CARDSTREAM_ADMIN_LISTEN", admin.to_string())
        .env("CARDSTREAM_KAFKA_BROKERS", broker.brokers())
        .env("CARDSTREAM_KAFKA_TOPIC", TOPIC)
        .env("CARDSTREAM_DATABASE_URL", database)
        // A limit on every request that no card reaches: each is checked, none refused.
        .env("CARDSTREAM_POLICY_DAILY_LIMIT", "usd=100000000000")
        .env("CARDSTREAM_POLICY_ON_SPEND_UNKNOWN", "decline")
        .env("CARDSTREAM_SPEND_LEDGER", mode)
        .env("RUST_LOG", "warn");
    let process = spawn_listening(command, addr).await?;
    Ok(Replica {
        _process: process,
        addr,
        admin,
    })
}

/// The requests signed for one run, their event ids made unique to it (`evt_` →
/// `evt_{run}_`), so no run is answered from another's replay cache or reservations.
fn for_run(requests: &[SimEvent], run: &str) -> Vec<Signed> {
    let renamed: Vec<SimEvent> = requests
        .iter()
        .map(|e| {
            let body =
                String::from_utf8_lossy(&e.body).replacen("\"evt_", &format!("\"evt_{run}_"), 1);
            SimEvent {
                body: body.into_bytes().into(),
                ..e.clone()
            }
        })
        .collect();
    signed(&renamed, Endpoint::Authorization)
}

/// Open loops at `rate` in all, split evenly over `replicas`, each on its own requests; a
/// warm-up first, then the measured run, merged.
async fn run_split(
    replicas: &[&Replica],
    requests: &[SimEvent],
    run: &str,
    args: &LedgerBench,
) -> anyhow::Result<LoadResult> {
    let requests = for_run(requests, run);
    let n = replicas.len();
    let rate = args.rate / n as f64;
    let warm = (args.rate * args.warmup.as_secs_f64()) as usize;
    let mut measured = Vec::new();
    for (phase, duration) in [(0, args.warmup), (1, args.duration)] {
        let mut loops = Vec::new();
        for (i, replica) in replicas.iter().enumerate() {
            // Warm-up requests first, the measured ones after: none asked twice.
            let mine: Vec<Signed> = requests
                .iter()
                .enumerate()
                .filter(|(k, _)| k % n == i && (phase == 0) == (*k < warm))
                .map(|(_, r)| r.clone())
                .collect();
            let uri: http::Uri =
                format!("http://{}/webhooks/stripe/authorization", replica.addr).parse()?;
            loops.push(open_loop(uri, Arc::new(mine), rate, duration));
        }
        let results = futures_util::future::join_all(loops).await;
        if phase == 1 {
            measured = results;
        }
    }
    let mut merged = measured
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no replica"))?;
    for other in measured {
        merged.merge(&other);
    }
    Ok(merged)
}

/// What the gateways' metrics say of a run, summed across replicas.
#[derive(Debug, Default)]
struct Counted {
    /// Decisions taken on unknown spend.
    unknown: f64,
    /// Reservations that did not answer within the ledger's timeout.
    timeouts: f64,
    /// Requests reserved, and the statements that reserved them.
    reserved: f64,
    statements: f64,
}

impl Counted {
    /// Requests per ledger statement, on average.
    fn batch(&self) -> f64 {
        self.reserved / self.statements.max(1.0)
    }
}

async fn counted(replicas: &[&Replica]) -> anyhow::Result<Counted> {
    let mut counted = Counted::default();
    for replica in replicas {
        let text = scrape(replica.admin).await?;
        counted.unknown += metric_sum(
            &text,
            "cardstream_authorization_decisions_total",
            "spend_unknown",
        );
        counted.timeouts += metric_sum(
            &text,
            "cardstream_spend_ledger_duration_seconds_count",
            "outcome=\"timeout\"",
        );
        counted.reserved += metric_sum(&text, "cardstream_spend_ledger_batch_size_sum", "");
        counted.statements += metric_sum(&text, "cardstream_spend_ledger_batch_size_count", "");
    }
    Ok(counted)
}

pub(crate) async fn run(args: LedgerBench) -> anyhow::Result<Vec<Line>> {
    let broker = Broker::start(Storage::Memory).await;
    let kafka = cardstream_kafka::KafkaArgs::new(broker.brokers(), TOPIC);
    cardstream_kafka::ensure_topic(&kafka, TOPIC, 4, 1).await?;
    let db = TestDatabase::create().await;
    Store::connect(&db.url, 1).await?.migrate_up().await?;

    eprintln!("generating authorization requests…");
    // Stripe declines some purchases without asking (inactive cards, fraud): a margin.
    let per_run = (args.rate * (args.duration + args.warmup).as_secs_f64() * 1.3) as usize;
    let events = generate(23, args.cards, 1_760_000_000, per_run, |_| {
        Answer::Approved {
            reason: "approved".into(),
        }
    });
    let requests: Vec<SimEvent> = events
        .into_iter()
        .filter(|e| e.endpoint == Endpoint::Authorization)
        .collect();
    anyhow::ensure!(
        requests.len() as f64 >= args.rate * (args.duration + args.warmup).as_secs_f64(),
        "only {} requests for a run",
        requests.len()
    );

    eprintln!("ledger: one gateway, spend counted in memory…");
    let local = replica(&broker, &db.url, "local").await?;
    // Its first spend read comes a refresh interval after the start.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let single = run_split(&[&local], &requests, "local", &args).await?;
    let single_unknown = counted(&[&local]).await?.unknown;
    drop(local);

    eprintln!("ledger: two gateways, every approval reserved in Postgres…");
    let (a, b) = (
        replica(&broker, &db.url, "shared").await?,
        replica(&broker, &db.url, "shared").await?,
    );
    let shared = run_split(&[&a, &b], &requests, "shared", &args).await?;
    let shared_counts = counted(&[&a, &b]).await?;

    let rate = format!("{:.0}/s", args.rate);
    print(
        "cardstream spend ledger benchmark",
        &[format!(
            "{} distinct authorization requests over {} cards, each under a daily limit; {:?} measured after {:?} at the same rate",
            requests.len(),
            args.cards,
            args.duration,
            args.warmup
        )],
        &[
            Row {
                name: format!("one gateway, spend in memory (local) @ {rate}"),
                rate: single.rate(),
                p50: single.p(0.5),
                p99: single.p(0.99),
                note: format!("{} ok; {single_unknown} on unknown spend", single.ok()),
            },
            Row {
                name: format!("two gateways, shared ledger @ {rate} in all"),
                rate: shared.rate(),
                p50: shared.p(0.5),
                p99: shared.p(0.99),
                note: format!(
                    "{} ok; {} on unknown spend ({} ledger timeouts); {:.1} requests per ledger statement",
                    shared.ok(),
                    shared_counts.unknown,
                    shared_counts.timeouts,
                    shared_counts.batch()
                ),
            },
        ],
    );
    Ok(vec![Line::new(
        format!("authorization p99 @ {rate}, two gateways on the shared spend ledger"),
        crate::ms(shared.p(0.99)),
        format!(
            "one gateway, spend in memory: {}",
            crate::ms(single.p(0.99))
        ),
        ratio(shared.p(0.99).as_secs_f64(), single.p(0.99).as_secs_f64()),
    )])
}
