//! HTTP load: closed loop (N workers, each sends as soon as its last answer came) for
//! throughput, and open loop (requests at fixed times) for latency at a given rate. Latency in
//! the open loop is measured from the time a request was due, so a stall is not hidden
//! (coordinated omission).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

/// A request body with its `Stripe-Signature`, signed ahead so the load generator spends its
/// CPU on sending.
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    pub(crate) body: Bytes,
    pub(crate) signature: HeaderValue,
}

#[derive(Debug)]
pub(crate) struct LoadResult {
    pub(crate) completed: u64,
    pub(crate) by_status: BTreeMap<u16, u64>,
    pub(crate) errors: u64,
    pub(crate) elapsed: Duration,
    pub(crate) latency_us: Histogram<u64>,
}

impl LoadResult {
    fn new() -> Self {
        LoadResult {
            completed: 0,
            by_status: BTreeMap::new(),
            errors: 0,
            elapsed: Duration::ZERO,
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3)
                .unwrap_or_else(|_| unreachable!()),
        }
    }

    pub(crate) fn rate(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub(crate) fn p(&self, q: f64) -> Duration {
        Duration::from_micros(self.latency_us.value_at_quantile(q))
    }

    pub(crate) fn ok(&self) -> u64 {
        self.by_status
            .iter()
            .filter(|(s, _)| (200..300).contains(*s))
            .map(|(_, n)| n)
            .sum()
    }

    pub(crate) fn record(&mut self, status: Option<u16>, latency: Duration) {
        self.completed += 1;
        match status {
            Some(status) => *self.by_status.entry(status).or_default() += 1,
            None => self.errors += 1,
        }
        let _ = self.latency_us.record(
            u64::try_from(latency.as_micros())
                .unwrap_or(u64::MAX)
                .max(1),
        );
    }

    /// An empty result over `elapsed`, to fill with [`LoadResult::absorb`].
    pub(crate) fn empty(elapsed: Duration) -> Self {
        let mut result = LoadResult::new();
        result.elapsed = elapsed;
        result
    }

    /// Adds outcomes measured outside HTTP (e.g. direct produces): `ok` as 200s.
    pub(crate) fn absorb(&mut self, latencies: &Histogram<u64>, ok: u64, failed: u64) {
        self.completed += ok + failed;
        *self.by_status.entry(200).or_default() += ok;
        self.errors += failed;
        let _ = self.latency_us.add(latencies);
    }

    pub(crate) fn merge(&mut self, other: &LoadResult) {
        self.completed += other.completed;
        self.errors += other.errors;
        for (s, n) in &other.by_status {
            *self.by_status.entry(*s).or_default() += n;
        }
        let _ = self.latency_us.add(&other.latency_us);
    }
}

/// A keep-alive HTTP client with up to `connections` idle connections and no Nagle delay.
pub(crate) fn client(connections: usize) -> Client<HttpConnector, Full<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(connections)
        .build(connector)
}

async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    uri: &Uri,
    item: &Signed,
) -> Option<u16> {
    let request = Request::post(uri.clone())
        .header("content-type", "application/json")
        .header("stripe-signature", item.signature.clone())
        .body(Full::new(item.body.clone()))
        .ok()?;
    let response = client.request(request).await.ok()?;
    let status = response.status().as_u16();
    response.into_body().collect().await.ok()?;
    Some(status)
}

/// `workers` loops, each sending the next body as soon as the previous answer arrived, for
/// `warmup` (not measured) and then `duration`.
pub(crate) async fn closed_loop(
    uri: Uri,
    items: Arc<Vec<Signed>>,
    workers: usize,
    warmup: Duration,
    duration: Duration,
) -> LoadResult {
    let client = client(workers);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let measure_from = started + warmup;
    let end = measure_from + duration;
    let total = Arc::new(Mutex::new(LoadResult::new()));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (client, uri, items, next, total) = (
            client.clone(),
            uri.clone(),
            items.clone(),
            next.clone(),
            total.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut mine = LoadResult::new();
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let item = &items[next.fetch_add(1, Ordering::Relaxed) % items.len()];
                let status = send(&client, &uri, item).await;
                if now >= measure_from {
                    mine.record(status, now.elapsed());
                }
            }
            if let Ok(mut total) = total.lock() {
                total.merge(&mine);
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let mut result = std::mem::replace(
        &mut *total.lock().unwrap_or_else(|p| p.into_inner()),
        LoadResult::new(),
    );
    result.elapsed = duration;
    result
}

/// Requests at `rate` per second for `duration`, each due at a fixed time whatever happened to
/// the previous ones.
pub(crate) async fn open_loop(
    uri: Uri,
    items: Arc<Vec<Signed>>,
    rate: f64,
    duration: Duration,
) -> LoadResult {
    let client = client(256);
    let total = Arc::new(Mutex::new(LoadResult::new()));
    let count = (rate * duration.as_secs_f64()) as usize;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due).await;
        let (client, uri, items, total) =
            (client.clone(), uri.clone(), items.clone(), total.clone());
        tasks.spawn(async move {
            let status = send(&client, &uri, &items[i % items.len()]).await;
            let latency = due.elapsed();
            if let Ok(mut total) = total.lock() {
                total.record(status, latency);
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let mut result = std::mem::replace(
        &mut *total.lock().unwrap_or_else(|p| p.into_inner()),
        LoadResult::new(),
    );
    result.elapsed = started.elapsed();
    result
}
