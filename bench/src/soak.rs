//! `cardstream-bench soak`: the whole pipeline (gateway, aggregator, API as processes, a broker,
//! Postgres) under a steady webhook rate for a long time, sampling each component's resident
//! memory and the webhook latency of every window, then saying whether memory stayed flat.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cardstream_simulator::{Answer, Endpoint, generate};

use crate::freshness::{broker_and_database, start};
use crate::gateway::signed;
use crate::load::open_loop;
use crate::processes::rss_mib;

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
}

pub(crate) async fn run(args: SoakArgs) -> anyhow::Result<()> {
    let topic = "bench.soak";
    let (broker, db, _store) = broker_and_database(topic).await?;
    let processes = start(&broker, topic, &db.url).await?;
    let pids: Vec<Option<u32>> = processes.children.iter().map(|c| c.id()).collect();
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
        "cardstream soak: {:.0} webhooks/s for {:?}, sampled every {:?}",
        args.rate, args.duration, args.every
    );
    println!(
        "  {:>6} {:>8} {:>8} {:>10} {:>10} {:>12} {:>12} {:>12}",
        "t (s)", "sent", "2xx", "p50", "p99", "gateway MiB", "aggreg. MiB", "api MiB"
    );
    let started = Instant::now();
    let mut samples: Vec<[f64; 3]> = Vec::new();
    let mut failed = 0;
    for window in 0..windows {
        let from = (window * per_window) % events.len().max(1);
        let slice = &events[from..(from + per_window).min(events.len())];
        // Signed as the window starts: Stripe's signatures are checked against a 5-minute
        // tolerance, so signing everything up front would fail after five minutes.
        let items = Arc::new(signed(slice, Endpoint::Events));
        let result = open_loop(uri.clone(), items, args.rate, args.every).await;
        failed += result.completed - result.ok();
        let rss: Vec<Option<f64>> = pids.iter().map(|pid| rss_mib(*pid)).collect();
        anyhow::ensure!(
            rss.iter().all(Option::is_some),
            "a component exited during the soak"
        );
        let rss = [
            rss[0].unwrap_or(0.0),
            rss[2].unwrap_or(0.0),
            rss[1].unwrap_or(0.0),
        ];
        println!(
            "  {:>6.0} {:>8} {:>8} {:>10} {:>10} {:>12.1} {:>12.1} {:>12.1}",
            started.elapsed().as_secs_f64(),
            result.completed,
            result.ok(),
            crate::ms(result.p(0.5)),
            crate::ms(result.p(0.99)),
            rss[0],
            rss[1],
            rss[2]
        );
        samples.push(rss);
    }

    println!();
    println!("  non-2xx answers or transport errors: {failed}");
    // Flat: after the first minute of warm-up (pools, caches and buffers filling), the second
    // half of the run peaks no higher than the first half's peak plus 10 % and 8 MiB.
    let skip = (60.0 / args.every.as_secs_f64()).ceil() as usize;
    let steady = samples.get(skip..).unwrap_or_default();
    let (first, second) = steady.split_at(steady.len() / 2);
    let mut flat = !first.is_empty();
    for (i, name) in ["gateway", "aggregator", "api"].iter().enumerate() {
        let peak = |s: &[[f64; 3]]| s.iter().map(|r| r[i]).fold(0.0_f64, f64::max);
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
    anyhow::ensure!(flat, "memory grew during the soak");
    Ok(())
}
