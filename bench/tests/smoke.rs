//! Smoke runs of every benchmark at a tiny size, so that the test command notices when one no
//! longer runs (a renamed flag, a changed schema, a process that no longer starts) or when its
//! own checks fail (events lost or counted twice, rollups drifting, a replay that differs, a
//! watched authorization not pushed, memory that grows, a drill losing an acknowledged event).
//! They check that each finishes and prints its table, never its figures: a debug build on a
//! shared machine says nothing about speed, and `scripts/bench.sh` measures in release.
//!
//! The benchmarks start `cardstream` from their own directory; in the workspace's test run it
//! is built beside this binary (the `cardstream` crate's tests need it). A run of this crate
//! alone needs `cargo build -p cardstream` first, and says so.

use std::process::Command;

fn bench(args: &[&str], expect: &[&str]) {
    let exe = env!("CARGO_BIN_EXE_cardstream-bench");
    let cardstream = std::path::Path::new(exe).with_file_name("cardstream");
    assert!(
        cardstream.is_file(),
        "{} is missing: build it first (cargo build -p cardstream)",
        cardstream.display()
    );
    let out = Command::new(exe)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {exe}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "cardstream-bench {args:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    for line in expect {
        assert!(
            stdout.contains(line),
            "cardstream-bench {args:?} printed no {line:?}:\n{stdout}"
        );
    }
}

#[test]
fn gateway_benchmark_runs() {
    bench(
        &[
            "gateway",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--connections",
            "4",
            "--webhook-rate",
            "100",
            "--authorization-rate",
            "50",
        ],
        &["cardstream gateway benchmark", "authorization"],
    );
}

#[test]
fn ledger_benchmark_runs() {
    bench(
        &[
            "ledger",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--rate",
            "50",
            "--cards",
            "10",
        ],
        &[
            "cardstream spend ledger benchmark",
            "two gateways, shared ledger",
        ],
    );
}

#[test]
fn aggregator_benchmark_runs() {
    bench(
        &["aggregator", "--events", "2000", "--batch-size", "500"],
        &[
            "cardstream aggregator benchmark",
            "identical to the live tables: true",
            "bytes per event: payload",
        ],
    );
}

#[test]
fn api_benchmark_runs() {
    bench(
        &[
            "api",
            "--cards",
            "50",
            "--transactions",
            "2000",
            "--clients",
            "1",
            "--duration",
            "1s",
            // Enough webhooks for some to be on the watched cards: the benchmark fails unless
            // every one of those is pushed.
            "--freshness-rate",
            "100",
            "--freshness-duration",
            "6s",
        ],
        &[
            "cardstream API benchmark",
            "freshness: webhook 200 -> subscription",
            "baseline: the same, batches wait 100 ms",
        ],
    );
}

#[test]
fn backfill_benchmark_runs() {
    bench(
        &[
            "backfill",
            "--objects",
            "400",
            "--limiter-rates",
            "20",
            "--limiter-time",
            "1s",
        ],
        &[
            "cardstream backfill benchmark",
            "tables identical (content digests): true",
        ],
    );
}

#[test]
fn soak_runs() {
    bench(
        &[
            "soak",
            "--duration",
            "20s",
            "--rate",
            "50",
            "--every",
            "4s",
            "--warmup",
            "4s",
        ],
        &["cardstream soak", "memory: flat"],
    );
}

#[test]
fn a_drill_runs() {
    bench(
        &["drill", "duplicates", "--rate", "100", "--load", "6s"],
        &["== duplicates:"],
    );
}
