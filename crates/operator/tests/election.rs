//! Two operator replicas electing a leader through one Lease on a stand-in API server that
//! keeps the Lease as the real one does (resourceVersion checks, 409 on a lost race), and that
//! can cut one replica off: its requests are held, never answered, as behind a network
//! partition.

#![allow(clippy::unwrap_used)]

mod fake_api;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cardstream_operator::{Ended, LeaderLease, LeaseTiming};
use cardstream_telemetry::CancellationToken;
use fake_api::status;
use http::{Method, Response, StatusCode};
use kube::Api;
use kube::client::Body;
use serde_json::{Value, json};
use tokio::time::Instant;

const TIMING: LeaseTiming = LeaseTiming {
    duration: Duration::from_secs(2),
    renew_deadline: Duration::from_millis(1_300),
    retry_period: Duration::from_millis(200),
};

/// The Lease the stand-in API server keeps.
#[derive(Default)]
struct Store {
    lease: Option<Value>,
    version: u64,
}

/// A replica's connection to the shared stand-in server.
struct Replica {
    lease: LeaderLease,
    partitioned: Arc<AtomicBool>,
}

fn replica(identity: &str, store: &Arc<Mutex<Store>>) -> Replica {
    replica_with(identity, store, TIMING)
}

fn replica_with(identity: &str, store: &Arc<Mutex<Store>>, timing: LeaseTiming) -> Replica {
    let (client, mut handle) = fake_api::client();
    let partitioned = Arc::new(AtomicBool::new(false));
    let (store, cut) = (store.clone(), partitioned.clone());
    tokio::spawn(async move {
        // Held requests stay here, unanswered, for as long as the test runs.
        let mut held = Vec::new();
        while let Some((request, respond)) = handle.next_request().await {
            if cut.load(Ordering::SeqCst) {
                held.push(respond);
                continue;
            }
            let method = request.method().clone();
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let (code, answer) = answer(&mut store.lock().unwrap(), &method, body);
            respond.send_response(
                Response::builder()
                    .status(code)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                    .unwrap(),
            );
        }
    });
    Replica {
        lease: LeaderLease::with_timing(
            Api::namespaced(client, "cardstream-system"),
            "cardstream-operator",
            identity,
            timing,
        ),
        partitioned,
    }
}

/// Someone else (an operator with a bad clock, or a person with kubectl) writes itself into
/// the Lease.
fn write_in_another_holder(store: &Mutex<Store>) {
    let mut store = store.lock().unwrap();
    let lease = store.lease.as_mut().unwrap();
    lease["spec"]["holderIdentity"] = json!("operator-z");
    lease["metadata"]["resourceVersion"] = json!("99");
}

/// What the API server answers for a GET, POST (create) or PUT (replace) of the Lease.
fn answer(store: &mut Store, method: &Method, mut body: Value) -> (StatusCode, Value) {
    let conflict = |reason| status(StatusCode::CONFLICT, reason, "the object has been modified");
    let current = store.lease.as_ref();
    if *method == Method::GET {
        return match current {
            Some(lease) => (StatusCode::OK, lease.clone()),
            None => status(StatusCode::NOT_FOUND, "NotFound", "not found"),
        };
    }
    if *method == Method::POST && current.is_some() {
        return conflict("AlreadyExists");
    }
    if *method == Method::PUT
        && current.map(|l| &l["metadata"]["resourceVersion"])
            != Some(&body["metadata"]["resourceVersion"])
    {
        return conflict("Conflict");
    }
    assert!(
        *method == Method::POST || *method == Method::PUT,
        "unexpected {method} of the Lease"
    );
    store.version += 1;
    body["metadata"]["resourceVersion"] = json!(store.version.to_string());
    store.lease = Some(body.clone());
    (StatusCode::OK, body)
}

#[tokio::test]
async fn a_partitioned_leader_stops_before_a_standby_takes_over() {
    let store = Arc::new(Mutex::new(Store::default()));
    let (a, b) = (replica("operator-a", &store), replica("operator-b", &store));
    let shutdown = CancellationToken::new();

    let acquired = a.lease.acquire(&shutdown, |_| {}).await.unwrap();
    let leading = CancellationToken::new();
    let keeping = tokio::spawn({
        let (lease, leading) = (a.lease.clone(), leading.clone());
        async move { lease.keep(acquired, &leading).await }
    });
    let standby = tokio::spawn({
        let (lease, shutdown) = (b.lease.clone(), shutdown.clone());
        async move {
            lease.acquire(&shutdown, |_| {}).await.unwrap();
            Instant::now()
        }
    });

    // While the leader renews, the standby (which sees the Lease change) stays a standby.
    tokio::time::sleep(TIMING.duration * 2).await;
    assert!(!leading.is_cancelled(), "the leader lost a Lease it renews");
    assert!(
        !standby.is_finished(),
        "the standby took a Lease being renewed"
    );

    a.partitioned.store(true, Ordering::SeqCst);
    let cut = Instant::now();
    leading.cancelled().await;
    let stopped = Instant::now();
    let took_over = standby.await.unwrap();
    keeping.await.unwrap();

    let stopped_after = stopped - cut;
    let took_over_after = took_over - cut;
    eprintln!(
        "partitioned at 0: leader stopped at {stopped_after:?} (+{:?} grace for reconciles in flight), standby took over at {took_over_after:?}",
        TIMING.stop_grace()
    );
    assert!(
        stopped_after <= TIMING.renew_deadline,
        "the leader went on for {stopped_after:?}, past its renew deadline"
    );
    assert!(
        stopped + TIMING.stop_grace() < took_over,
        "split brain: the standby took over at {took_over_after:?}, before the leader had stopped for good at {:?}",
        stopped_after + TIMING.stop_grace()
    );
    assert!(
        took_over_after >= TIMING.duration,
        "the standby took over {took_over_after:?} after the leader's last renewal could have landed"
    );
    assert_eq!(
        store.lock().unwrap().lease.as_ref().unwrap()["spec"]["holderIdentity"],
        "operator-b"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_leader_that_finds_another_holder_stops_at_once() {
    let store = Arc::new(Mutex::new(Store::default()));
    let a = replica("operator-a", &store);
    let shutdown = CancellationToken::new();
    let acquired = a.lease.acquire(&shutdown, |_| {}).await.unwrap();
    write_in_another_holder(&store);
    let leading = CancellationToken::new();
    let started = Instant::now();
    assert_eq!(a.lease.keep(acquired, &leading).await, Ended::Taken);
    assert!(leading.is_cancelled());
    assert!(
        started.elapsed() < TIMING.retry_period * 3,
        "took {:?}",
        started.elapsed()
    );
}

/// What `hold` guards: work that goes on after leadership ended, because it ignores the signal
/// (a reconcile stuck in a slow request) or because the process is draining for a shutdown, is
/// dropped before a standby can take over. Every write the old leader makes lands before the
/// new leader's first.
#[tokio::test]
async fn work_that_outlives_leadership_is_dropped_before_a_standby_takes_over() {
    let store = Arc::new(Mutex::new(Store::default()));
    let (a, b) = (replica("operator-a", &store), replica("operator-b", &store));
    let shutdown = CancellationToken::new();
    let acquired = a.lease.acquire(&shutdown, |_| {}).await.unwrap();
    let writes = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let holding = tokio::spawn({
        let (lease, writes) = (a.lease.clone(), writes.clone());
        async move {
            lease
                .hold(acquired, |_leading| async move {
                    // Never looks at `_leading`: a reconcile that does not stop by itself.
                    loop {
                        writes.lock().unwrap().push(Instant::now());
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
                .await
        }
    });
    let standby = tokio::spawn({
        let (lease, shutdown) = (b.lease.clone(), shutdown.clone());
        async move {
            lease.acquire(&shutdown, |_| {}).await.unwrap();
            Instant::now()
        }
    });
    tokio::time::sleep(TIMING.duration).await;
    a.partitioned.store(true, Ordering::SeqCst);
    let cut = Instant::now();

    let held = holding.await.unwrap();
    let dropped = Instant::now();
    let took_over = standby.await.unwrap();
    let last_write = *writes.lock().unwrap().last().unwrap();
    eprintln!(
        "partitioned at 0: last write of the old leader at {:?}, its work dropped at {:?}, standby took over at {:?}",
        last_write - cut,
        dropped - cut,
        took_over - cut
    );
    assert!(
        matches!(held, Err(cardstream_operator::Error::LeaseLost)),
        "{held:?}"
    );
    assert!(
        dropped - cut <= TIMING.renew_deadline + TIMING.stop_grace() + Duration::from_millis(100),
        "the work ran on for {:?}",
        dropped - cut
    );
    assert!(
        last_write < took_over,
        "split brain: the old leader wrote at {:?}, after the standby took over at {:?}",
        last_write - cut,
        took_over - cut
    );
    shutdown.cancel();
}

/// Work that finishes while leading (a clean shutdown) returns its output, and renewals stop.
#[tokio::test]
async fn work_that_finishes_while_leading_returns_its_output() {
    let store = Arc::new(Mutex::new(Store::default()));
    let a = replica("operator-a", &store);
    let shutdown = CancellationToken::new();
    let acquired = a.lease.acquire(&shutdown, |_| {}).await.unwrap();
    let out = a
        .lease
        .hold(acquired, |leading| async move {
            tokio::time::sleep(TIMING.retry_period * 3).await;
            leading.is_cancelled()
        })
        .await
        .unwrap();
    assert!(!out, "leadership ended while renewals succeeded");
    let version = store.lock().unwrap().version;
    assert!(
        version >= 2,
        "the Lease was not renewed while the work ran: version {version}"
    );
    tokio::time::sleep(TIMING.retry_period * 2).await;
    assert_eq!(
        store.lock().unwrap().version,
        version,
        "renewals went on after hold returned"
    );
}

/// When another replica already holds the Lease it may be reconciling already: work still
/// running is dropped at once, with no grace (the grace is for a lost renewal, when no standby
/// can have taken over yet).
#[tokio::test]
async fn work_is_dropped_at_once_when_another_replica_holds_the_lease() {
    // A long grace (1.35 s), so that waiting it out would show.
    let timing = LeaseTiming {
        duration: Duration::from_secs(4),
        ..TIMING
    };
    let store = Arc::new(Mutex::new(Store::default()));
    let a = replica_with("operator-a", &store, timing);
    let shutdown = CancellationToken::new();
    let acquired = a.lease.acquire(&shutdown, |_| {}).await.unwrap();
    write_in_another_holder(&store);
    let started = Instant::now();
    let held = a
        .lease
        .hold(acquired, |_leading| std::future::pending::<()>())
        .await;
    let took = started.elapsed();
    assert!(
        matches!(held, Err(cardstream_operator::Error::LeaseLost)),
        "{held:?}"
    );
    assert!(
        took < timing.stop_grace(),
        "the work ran on for {took:?} under another replica's leadership"
    );
}
