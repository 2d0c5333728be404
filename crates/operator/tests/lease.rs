//! Leader election against a mocked API server: each scenario is what two operator replicas
//! would see of the same Lease.

#![allow(clippy::unwrap_used)]

mod fake_api;

use std::time::Duration;

use cardstream_operator::LeaderLease;
use fake_api::{Exchange, assert_quiet, serve, status};
use http::{Method, StatusCode};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use serde_json::{Value, json};

const PATH: &str =
    "/apis/coordination.k8s.io/v1/namespaces/cardstream-system/leases/cardstream-operator";
const COLLECTION: &str = "/apis/coordination.k8s.io/v1/namespaces/cardstream-system/leases";

fn lease_of(client: kube::Client, identity: &str) -> LeaderLease {
    LeaderLease::new(
        Api::namespaced(client, "cardstream-system"),
        "cardstream-operator",
        identity,
        Duration::from_secs(15),
    )
}

fn now() -> Timestamp {
    "2026-11-25T12:00:00Z".parse().unwrap()
}

/// The Lease as stored: held by `holder`, last renewed `renewed_ago` seconds before `now()`.
fn stored(holder: &str, renewed_ago: i64, transitions: i32) -> Value {
    stored_for(holder, renewed_ago, transitions, 15)
}

/// The same, for a Lease of `duration` seconds.
fn stored_for(holder: &str, renewed_ago: i64, transitions: i32, duration: i64) -> Value {
    let renewed = now() - k8s_openapi::jiff::SignedDuration::from_secs(renewed_ago);
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": { "name": "cardstream-operator", "namespace": "cardstream-system", "resourceVersion": "41" },
        "spec": {
            "holderIdentity": holder, "leaseDurationSeconds": duration,
            "acquireTime": "2026-11-25T11:00:00.000000Z",
            "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            "leaseTransitions": transitions
        }
    })
}

#[tokio::test]
async fn no_lease_yet_the_first_replica_creates_it() {
    let (client, handle) = fake_api::client();
    let server = serve(
        handle,
        "create",
        vec![
            Exchange::get(PATH).not_found(),
            Exchange::new(Method::POST, COLLECTION).check(|b| {
                assert_eq!(b["spec"]["holderIdentity"], "operator-a");
                assert_eq!(b["spec"]["leaseDurationSeconds"], 15);
                assert_eq!(b["spec"]["leaseTransitions"], 0);
            }),
        ],
    );
    assert!(
        lease_of(client, "operator-a")
            .try_acquire_or_renew(now())
            .await
            .unwrap()
    );
    assert_quiet(server.await.unwrap(), "create").await;
}

#[tokio::test]
async fn two_replicas_create_at_once_and_the_second_one_waits() {
    let (client, handle) = fake_api::client();
    let server = serve(
        handle,
        "create race",
        vec![
            Exchange::get(PATH).not_found(),
            Exchange::new(Method::POST, COLLECTION).reply(|_| {
                status(
                    StatusCode::CONFLICT,
                    "AlreadyExists",
                    "leases \"cardstream-operator\" already exists",
                )
            }),
        ],
    );
    assert!(
        !lease_of(client, "operator-b")
            .try_acquire_or_renew(now())
            .await
            .unwrap()
    );
    assert_quiet(server.await.unwrap(), "create race").await;
}

#[tokio::test]
async fn a_lease_held_and_renewed_by_another_is_left_alone() {
    let (client, handle) = fake_api::client();
    let server = serve(
        handle,
        "held",
        vec![Exchange::get(PATH).returns(stored("operator-a", 5, 0))],
    );
    assert!(
        !lease_of(client, "operator-b")
            .try_acquire_or_renew(now())
            .await
            .unwrap()
    );
    assert_quiet(server.await.unwrap(), "held: no write").await;
}

#[tokio::test]
async fn a_lease_seen_unchanged_for_its_duration_is_taken_over_with_the_version_read() {
    let (client, handle) = fake_api::client();
    let server = serve(
        handle,
        "take over",
        vec![
            Exchange::get(PATH).returns(stored_for("operator-a", 0, 2, 1)),
            Exchange::get(PATH).returns(stored_for("operator-a", 0, 2, 1)),
            Exchange::new(Method::PUT, PATH).check(|b| {
                assert_eq!(
                    b["metadata"]["resourceVersion"], "41",
                    "optimistic concurrency"
                );
                assert_eq!(b["spec"]["holderIdentity"], "operator-b");
                assert_eq!(b["spec"]["leaseTransitions"], 3);
                assert_eq!(b["spec"]["acquireTime"], b["spec"]["renewTime"]);
            }),
        ],
    );
    let standby = lease_of(client, "operator-b");
    // First sight: however old its renewTime looks, the Lease has just been seen.
    assert!(!standby.try_acquire_or_renew(now()).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(standby.try_acquire_or_renew(now()).await.unwrap());
    assert_quiet(server.await.unwrap(), "take over").await;
}

#[tokio::test]
async fn a_standby_whose_clock_runs_ahead_leaves_a_renewed_lease_alone() {
    // The standby's clock is an hour ahead of the leader's: by renewTime the Lease looks
    // long expired, but the leader is renewing it (the record changes between looks).
    // A 1 s Lease, looked at again 1.1 s later: only the change in between keeps it held.
    let ahead = now() + k8s_openapi::jiff::SignedDuration::from_hours(1);
    let mut renewed = stored_for("operator-a", 0, 2, 1);
    renewed["metadata"]["resourceVersion"] = json!("42");
    renewed["spec"]["renewTime"] = json!("2026-11-25T12:00:02.000000Z");
    let (client, handle) = fake_api::client();
    let server = serve(
        handle,
        "clock ahead",
        vec![
            Exchange::get(PATH).returns(stored_for("operator-a", 0, 2, 1)),
            Exchange::get(PATH).returns(renewed),
        ],
    );
    let standby = lease_of(client, "operator-b");
    assert!(!standby.try_acquire_or_renew(ahead).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(!standby.try_acquire_or_renew(ahead).await.unwrap());
    assert_quiet(server.await.unwrap(), "clock ahead: no write").await;
}

#[tokio::test]
async fn a_standby_whose_clock_runs_behind_takes_over_from_a_dead_leader() {
    // The dead leader's clock was an hour ahead: its last renewTime lies in the standby's
    // future. The standby still takes over once it has seen the record unchanged for the
    // Lease's duration (1 s here).
    let behind = now() - k8s_openapi::jiff::SignedDuration::from_hours(1);
    let (client, handle) = fake_api::client();
    let server = serve(
        handle,
        "clock behind",
        vec![
            Exchange::get(PATH).returns(stored_for("operator-a", 0, 2, 1)),
            Exchange::get(PATH).returns(stored_for("operator-a", 0, 2, 1)),
            Exchange::new(Method::PUT, PATH)
                .check(|b| assert_eq!(b["spec"]["holderIdentity"], "operator-b")),
        ],
    );
    let standby = lease_of(client, "operator-b");
    assert!(!standby.try_acquire_or_renew(behind).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(standby.try_acquire_or_renew(behind).await.unwrap());
    assert_quiet(server.await.unwrap(), "clock behind").await;
}

#[tokio::test]
async fn losing_the_takeover_race_is_not_leading() {
    let (client, handle) = fake_api::client();
    let server = serve(
        handle,
        "takeover race",
        vec![
            Exchange::get(PATH).returns({
                // Released by its last holder: free to take at once, so the race is on.
                let mut released = stored("operator-a", 60, 2);
                released["spec"]["holderIdentity"] = Value::Null;
                released
            }),
            Exchange::new(Method::PUT, PATH).reply(|_| {
                status(
                    StatusCode::CONFLICT,
                    "Conflict",
                    "the object has been modified",
                )
            }),
        ],
    );
    assert!(
        !lease_of(client, "operator-c")
            .try_acquire_or_renew(now())
            .await
            .unwrap()
    );
    assert_quiet(server.await.unwrap(), "takeover race").await;
}

#[tokio::test]
async fn the_holder_renews_keeping_its_acquire_time() {
    let (client, handle) = fake_api::client();
    let server = serve(
        handle,
        "renew",
        vec![
            Exchange::get(PATH).returns(stored("operator-a", 5, 2)),
            Exchange::new(Method::PUT, PATH).check(|b| {
                assert_eq!(b["spec"]["acquireTime"], "2026-11-25T11:00:00.000000Z");
                assert_eq!(b["spec"]["renewTime"], "2026-11-25T12:00:00.000000Z");
                assert_eq!(b["spec"]["leaseTransitions"], 2);
            }),
        ],
    );
    assert!(
        lease_of(client, "operator-a")
            .try_acquire_or_renew(now())
            .await
            .unwrap()
    );
    assert_quiet(server.await.unwrap(), "renew").await;
}

#[tokio::test]
async fn an_api_server_error_is_an_error_not_a_lost_election() {
    let (client, handle) = fake_api::client();
    let server = serve(
        handle,
        "error",
        vec![Exchange::get(PATH).reply(|_| {
            status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "etcdserver: request timed out",
            )
        })],
    );
    let error = lease_of(client, "operator-a")
        .try_acquire_or_renew(now())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("etcdserver"), "{error}");
    assert_quiet(server.await.unwrap(), "error").await;
}

#[tokio::test]
async fn release_clears_the_holder_so_a_standby_need_not_wait() {
    let (client, handle) = fake_api::client();
    let server = serve(
        handle,
        "release",
        vec![
            Exchange::get(PATH).returns(stored("operator-a", 1, 2)),
            Exchange::new(Method::PUT, PATH).check(|b| {
                assert!(
                    b["spec"].get("holderIdentity").is_none_or(Value::is_null),
                    "{b}"
                );
            }),
        ],
    );
    lease_of(client, "operator-a").release().await;
    assert_quiet(server.await.unwrap(), "release").await;
}

/// Timing that would let two replicas lead at once (a renew deadline at or past the duration)
/// or never renew in time is refused at start, before any Lease is touched.
#[test]
fn lease_timing_that_could_split_is_refused() {
    use cardstream_operator::LeaseTiming;
    let s = Duration::from_secs;
    assert!(LeaseTiming::for_duration(s(15)).validate().is_ok());
    for (duration, renew_deadline, retry_period) in [
        (s(15), s(15), s(2)),           // deadline not inside the duration
        (s(15), s(20), s(2)),           // deadline past it
        (s(15), s(10), s(10)),          // no retry before the deadline
        (s(15), s(10), Duration::ZERO), // no retry period
        (
            Duration::from_millis(1_500),
            s(1),
            Duration::from_millis(100),
        ), // not whole seconds
    ] {
        let timing = LeaseTiming {
            duration,
            renew_deadline,
            retry_period,
        };
        assert!(timing.validate().is_err(), "{timing:?} accepted");
    }
}
