//! `cardstream-bench soak`: the whole pipeline (gateway, aggregator, API as processes, a broker,
//! Postgres) under a steady webhook rate for a long time, sampling each component's resident
//! memory and the webhook latency of every window, then saying whether memory stayed flat.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cardstream_simulator::{Answer, Endpoint, generate};

use cardstream_testbed::Storage;

use crate::cpu::cpu_seconds;
use crate::freshness::{HeapProfile, broker_and_database, start};
use crate::gateway::signed;
use crate::load::open_loop;
use crate::processes::{metric_sum, rss_anon_mib, rss_mib, scrape};

/// The processes sampled, in the order of the table's columns.
const SAMPLED: [&str; 4] = ["gateway", "aggregator", "api", "broker"];

#[derive(Debug, clap::Args)]
pub(crate) struct SoakArgs {
    /// How long the load runs.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Webhooks per second (open loop: sent on schedule whatever the answers' speed).
    #[arg(long, default_value_t = 500.0)]
    rate: f64,
    /// How often memory and latency are sampled.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    every: Duration,
    /// Samples left out of the memory check at the start, while pools, caches and buffers
    /// fill.
    #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Broker storage. memory (the default) keeps every record in tansu's RAM, and its fetches
    /// list the whole partition, so the broker slows as the soak goes on; tansu 0.6.0's sqlite
    /// engine stopped answering within 40 s at 500 webhooks/s.
    #[arg(long, default_value = "memory", value_parser = ["sqlite", "memory"])]
    storage: String,
    /// The gateway's producer linger. tansu's memory engine lists every batch stored in a
    /// partition on each fetch, so its cost grows with the number of batches produced; at the
    /// gateway's default 2 ms the broker saturates a core within about 3 minutes at 500/s, its
    /// fetches slow, the aggregator's batches grow with them and so does its memory. Lingering
    /// 100 ms produces about 12 times fewer batches, so the broker stays steady for the run and
    /// a growth that remains is cardstream's.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    gateway_linger: Duration,
    /// Record the gateway's and the aggregator's every allocation with heaptrack (Debian's
    /// `heaptrack` package) into this directory, to tell a leak from allocator behaviour.
    #[arg(long)]
    heap_profile: Option<std::path::PathBuf>,
}

/// Where Debian's heaptrack package puts its preload library.
const HEAPTRACK_PRELOAD: &str = "/usr/lib/heaptrack/libheaptrack_preload.so";

pub(crate) async fn run(args: SoakArgs) -> anyhow::Result<()> {
    let topic = "bench.soak";
    let storage = match args.storage.as_str() {
        "memory" => Storage::Memory,
        _ => Storage::Sqlite,
    };
    let (broker, db, _store) = broker_and_database(topic, storage).await?;
    let heap = match &args.heap_profile {
        Some(dir) => {
            anyhow::ensure!(
                std::path::Path::new(HEAPTRACK_PRELOAD).is_file(),
                "--heap-profile needs heaptrack ({HEAPTRACK_PRELOAD} is missing): apt-get install heaptrack"
            );
            std::fs::create_dir_all(dir)?;
            Some(HeapProfile {
                preload: HEAPTRACK_PRELOAD.into(),
                dir: dir.clone(),
            })
        }
        None => None,
    };
    let processes = start(
        &broker,
        topic,
        &db.url,
        heap.as_ref(),
        Some(args.gateway_linger),
        &[],
    )
    .await?;
    // `start` returns gateway, API, aggregator; the table shows gateway, aggregator, API.
    let child = |i: usize| processes.children[i].id();
    let pids = [child(0), child(2), child(1), broker.pid()];
    let uri: http::Uri = format!("http://{}/webhooks/stripe", processes.gateway).parse()?;

    // Distinct events for the whole run, so the aggregator stores new rows throughout.
    let windows = (args.duration.as_secs_f64() / args.every.as_secs_f64()).ceil() as usize;
    let per_window = (args.rate * args.every.as_secs_f64()) as usize;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    eprintln!("generating {} events…", windows * per_window);
    let events = generate(21, 2_000, now, windows * per_window / 3 + 2_000, |_| {
        Answer::Approved {
            reason: "approved".into(),
        }
    });
    let events: Vec<_> = events
        .into_iter()
        .filter(|e| e.endpoint == Endpoint::Events)
        .collect();

    println!();
    println!(
        "cardstream soak: {:.0} webhooks/s for {:?}, sampled every {:?}; broker storage {}; gateway linger {:?}",
        args.rate, args.duration, args.every, args.storage, args.gateway_linger
    );
    println!("  memory is resident (RSS, MiB); CPU is cores used during the window");
    println!(
        "  aggregator: anonymous RSS (heap and stacks), batches written in the window, their mean records and KiB, and the bucket bound of the largest"
    );
    print!(
        "  {:>5} {:>6} {:>6} {:>8} {:>8}",
        "t (s)", "sent", "2xx", "p50", "p99"
    );
    for name in SAMPLED {
        print!(" {:>11}", format!("{name} MiB"));
    }
    for name in SAMPLED {
        print!(" {:>5}", &name[..3]);
    }
    println!(
        " {:>8} {:>7} {:>6} {:>6} {:>7}",
        "agg anon", "batches", "rec/b", "KiB/b", "max rec"
    );
    let started = Instant::now();
    let mut samples: Vec<[f64; 4]> = Vec::new();
    let mut failed = 0;
    let mut cpu_before = pids.map(|pid| pid.map_or(0.0, cpu_seconds));
    let mut window_start = Instant::now();
    let mut batches_before = Batches::read(processes.aggregator_admin).await?;
    for window in 0..windows {
        let from = (window * per_window) % events.len().max(1);
        let slice = &events[from..(from + per_window).min(events.len())];
        // Signed as the window starts: Stripe's signatures are checked against a 5-minute
        // tolerance, so signing everything up front would fail after five minutes.
        let items = Arc::new(signed(slice, Endpoint::Events));
        let result = open_loop(uri.clone(), items, args.rate, args.every).await;
        failed += result.completed - result.ok();
        let rss = pids.map(rss_mib);
        anyhow::ensure!(
            rss.iter().all(Option::is_some),
            "a process exited during the soak"
        );
        let rss = rss.map(|r| r.unwrap_or(0.0));
        let cpu_now = pids.map(|pid| pid.map_or(0.0, cpu_seconds));
        let wall = window_start.elapsed().as_secs_f64().max(1e-9);
        window_start = Instant::now();
        print!(
            "  {:>5.0} {:>6} {:>6} {:>8} {:>8}",
            started.elapsed().as_secs_f64(),
            result.completed,
            result.ok(),
            crate::ms(result.p(0.5)),
            crate::ms(result.p(0.99)),
        );
        for r in rss {
            print!(" {r:>11.1}");
        }
        for (now, before) in cpu_now.iter().zip(cpu_before) {
            print!(" {:>5.2}", (now - before) / wall);
        }
        let batches = Batches::read(processes.aggregator_admin).await?;
        let anon = rss_anon_mib(pids[1]).unwrap_or(0.0);
        println!(" {anon:>8.1} {}", batches.since(&batches_before));
        batches_before = batches;
        cpu_before = cpu_now;
        samples.push(rss);
    }

    println!();
    println!("  non-2xx answers or transport errors: {failed}");
    // Flat: after the warm-up (pools, caches and buffers filling), the second half of the run
    // peaks no higher than the first half's peak plus 10 % and 8 MiB.
    let skip = (args.warmup.as_secs_f64() / args.every.as_secs_f64()).ceil() as usize;
    let steady = samples.get(skip..).unwrap_or_default();
    let (first, second) = steady.split_at(steady.len() / 2);
    let mut flat = !first.is_empty();
    // cardstream's own processes; the broker's memory is shown but is not cardstream's.
    for (i, name) in SAMPLED[..3].iter().enumerate() {
        let peak = |s: &[[f64; 4]]| s.iter().map(|r| r[i]).fold(0.0_f64, f64::max);
        let (early, late) = (peak(first), peak(second));
        let ok = late <= early * 1.10 + 8.0;
        flat &= ok;
        println!(
            "  {name:<10} peak {early:.1} MiB in the first half, {late:.1} MiB in the second: {}",
            if ok { "flat" } else { "GROWING" }
        );
    }
    println!(
        "  memory: {}",
        if flat { "flat" } else { "not flat (see above)" }
    );
    if let Some(heap) = &heap {
        println!("  heap recordings (read them once the processes exited):");
        for name in ["gateway", "aggregator"] {
            let raw = heap.output(name);
            println!(
                "    /usr/lib/heaptrack/libexec/heaptrack_interpret < {raw} | gzip > {name}.gz && heaptrack_print -f {name}.gz",
                raw = raw.display()
            );
        }
    }
    anyhow::ensure!(flat, "memory grew during the soak");
    Ok(())
}

/// The aggregator's batch histograms, as read from its /metrics.
struct Batches {
    count: f64,
    records: f64,
    bytes: f64,
    /// Cumulative batch counts by upper bound of records per batch.
    buckets: Vec<(f64, f64)>,
}

impl Batches {
    async fn read(admin: std::net::SocketAddr) -> anyhow::Result<Self> {
        let text = scrape(admin).await?;
        let buckets = text
            .lines()
            .filter_map(|l| l.strip_prefix("cardstream_batch_records_bucket{le=\""))
            .filter_map(|l| {
                let (bound, count) = l.split_once("\"} ")?;
                Some((bound.parse().ok()?, count.parse().ok()?))
            })
            .collect();
        Ok(Batches {
            count: metric_sum(&text, "cardstream_batch_records_count", ""),
            records: metric_sum(&text, "cardstream_batch_records_sum", ""),
            bytes: metric_sum(&text, "cardstream_batch_bytes_sum", ""),
            buckets,
        })
    }

    /// The window's columns: batches, mean records, mean KiB, and the smallest bucket bound
    /// that holds every batch of the window.
    fn since(&self, before: &Batches) -> String {
        let count = self.count - before.count;
        if count < 1.0 {
            return format!("{:>7} {:>6} {:>6} {:>7}", 0, "-", "-", "-");
        }
        let largest = self
            .buckets
            .iter()
            .zip(&before.buckets)
            .find(|((_, now), (_, then))| now - then >= count)
            .map_or("-".to_owned(), |((bound, _), _)| format!("<={bound}"));
        format!(
            "{count:>7.0} {:>6.0} {:>6.0} {largest:>7}",
            (self.records - before.records) / count,
            (self.bytes - before.bytes) / count / 1024.0,
        )
    }
}
