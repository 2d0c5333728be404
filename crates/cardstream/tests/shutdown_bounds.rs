//! Stopping, as Kubernetes stops pods: SIGTERM, then a deadline. A gateway keeps answering
//! while load balancers catch up; every component exits within its bound even when the broker
//! has gone away; and what was not committed on the way out is read again, not lost.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cardstream_testbed::TestDatabase;
use common::gateway::{
    GatewayProcess, approved, authorization_request, free_addr, get, now, signed, try_exchange,
    wait_listening,
};
use common::{Setup, distinct, produce, simulated};
use tokio::process::{Child, Command};

const AUTHORIZATION: &str = "/webhooks/stripe/authorization";
const EVENTS: &str = "SELECT count(*) FROM stripe_events";
/// What a process may take past its configured bound: process start-up noise on a busy
/// machine, not work.
const SLACK: Duration = Duration::from_secs(2);

fn sigterm(child: &Child) {
    let pid = child.id().expect("the process already exited").to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
}

/// Waits for `child`, signalled at `signalled`, to exit within `bound` of it, and returns how
/// long it took; kills it and fails otherwise.
async fn exits_within(
    child: &mut Child,
    what: &str,
    signalled: Instant,
    bound: Duration,
) -> Duration {
    let left = bound.saturating_sub(signalled.elapsed());
    let started = signalled;
    match tokio::time::timeout(left, child.wait()).await {
        Ok(status) => {
            let took = started.elapsed();
            eprintln!("{what}: exited {} after {took:?}", status.unwrap());
            took
        }
        Err(_) => {
            let _ = child.kill().await;
            panic!("{what}: still running {bound:?} after SIGTERM");
        }
    }
}

async fn ready(admin: std::net::SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if get(admin, "/readyz")
            .await
            .is_some_and(|(status, _)| status == 200)
        {
            return;
        }
        assert!(Instant::now() < deadline, "{admin} never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_gateway_told_to_stop_answers_every_authorization_sent_while_it_drains() {
    let setup = Setup::new(1).await;
    let drain = Duration::from_secs(2);
    let gateway = GatewayProcess::start(&setup, &[("CARDSTREAM_SHUTDOWN_DELAY", "2s")]).await;
    ready(gateway.admin).await;

    // An authorization request every 10 ms, each on its own connection, as a load balancer
    // that has not yet noticed the stop would send them.
    let answers = Arc::new(Mutex::new(Vec::new()));
    let stop_sending = Arc::new(tokio::sync::Notify::new());
    let sender = {
        let (answers, stop_sending, addr) = (answers.clone(), stop_sending.clone(), gateway.addr);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let mut requests = Vec::new();
            for i in 0.. {
                tokio::select! {
                    () = stop_sending.notified() => break,
                    _ = tick.tick() => {}
                }
                let answers = answers.clone();
                requests.push(tokio::spawn(async move {
                    let body = authorization_request(&format!("evt_drain_{i}"), 500, "bakeries");
                    let answer = try_exchange(addr, &signed(AUTHORIZATION, &body, now())).await;
                    answers.lock().unwrap().push((i, answer));
                }));
            }
            for request in requests {
                request.await.unwrap();
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut child = gateway.child;
    sigterm(&child);
    let signalled = Instant::now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let readyz = get(gateway.admin, "/readyz").await;
    // Keep sending for most of the drain period.
    tokio::time::sleep(drain - Duration::from_millis(400)).await;
    stop_sending.notify_one();
    sender.await.unwrap();
    let sent_for = signalled.elapsed();

    let answers = answers.lock().unwrap().clone();
    let failed: Vec<_> = answers
        .iter()
        .filter(|(_, a)| {
            !a.as_ref()
                .is_some_and(|(status, body)| *status == 200 && approved(body))
        })
        .collect();
    eprintln!(
        "{} authorization requests, {} failed, sent until {sent_for:?} after SIGTERM; /readyz then: {readyz:?}",
        answers.len(),
        failed.len()
    );
    assert!(
        answers.len() > 100,
        "only {} requests were sent",
        answers.len()
    );
    assert!(failed.is_empty(), "unanswered during the drain: {failed:?}");
    let (status, body) = readyz.expect("/readyz did not answer during the drain");
    assert_eq!(status, 503, "/readyz during the drain: {body}");
    assert!(body.contains("shutting down"), "{body}");
    exits_within(
        &mut child,
        "gateway",
        signalled,
        drain + Duration::from_secs(10) + SLACK,
    )
    .await;
}

/// `cardstream api` on the setup's database.
async fn api(setup: &Setup) -> Child {
    let (addr, admin) = (free_addr(), free_addr());
    let child = setup
        .command(&["api"])
        .env("CARDSTREAM_LISTEN", addr.to_string())
        .env("CARDSTREAM_ADMIN_LISTEN", admin.to_string())
        .env(
            "CARDSTREAM_TOKEN_SECRET",
            "a token secret of more than thirty-two bytes",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(addr).await;
    child
}

/// `cardstream dev` on the setup's broker, with simulated traffic.
async fn dev(setup: &Setup, db: &TestDatabase) -> Child {
    let (addr, webhooks) = (free_addr(), free_addr());
    let child = Command::new(env!("CARGO_BIN_EXE_cardstream"))
        .args(["dev", "--listen", &addr.to_string()])
        .args(["--webhook-listen", &webhooks.to_string()])
        .args(["--admin-listen", "127.0.0.1:0", "--rate", "20"])
        .args(["--kafka-brokers", &setup.broker.brokers()])
        .env("CARDSTREAM_DEV_DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_listening(addr).await;
    child
}

#[tokio::test]
async fn every_component_stops_within_its_bound_when_the_broker_is_gone_and_nothing_is_lost() {
    let mut setup = Setup::new(2).await;
    let events = simulated(15, 6, 400);
    let parts: Vec<_> = events.chunks(events.len() / 4 + 1).collect();
    let bound = Duration::from_secs(10) + SLACK;

    // The aggregator, at several delays between the broker's death and SIGTERM. Each time it
    // is folding a backlog when the broker dies: some batches are in Postgres, their offsets
    // stored but not yet committed to the broker.
    // The first two keep librdkafka's default session timeout (45 s): a shorter one ends the
    // membership, and with it the waits on the coordinator, by itself before the bound. Each
    // has its group: a member that died with a 45 s session would hold the next one's
    // partitions. The last shares its group (and a 6 s session) with the restart below.
    let mut folded = 0;
    let trials = [
        (0, "bounded-0", "session.timeout.ms=45000"),
        (300, "bounded-1", "session.timeout.ms=45000"),
        (
            2_000,
            "bounded",
            "session.timeout.ms=6000,heartbeat.interval.ms=500",
        ),
    ];
    for (trial, (delay, group, properties)) in trials.into_iter().enumerate() {
        produce(&setup.kafka(), parts[trial]).await;
        let name = format!("aggregator-{trial}");
        let mut aggregator = setup.aggregator_with(group, &name, properties);
        let deadline = Instant::now() + Duration::from_secs(60);
        while setup.count(EVENTS).await <= folded {
            assert!(
                Instant::now() < deadline,
                "nothing folded:\n{}",
                setup.log(&name)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        setup.broker.stop().await;
        folded = setup.count(EVENTS).await;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        sigterm(&aggregator);
        let signalled = Instant::now();
        let what = format!(
            "aggregator, SIGTERM {delay} ms after the broker died ({folded} events folded)"
        );
        exits_within(&mut aggregator, &what, signalled, bound).await;
        folded = setup.count(EVENTS).await;
        setup.broker.start_again().await;
    }

    // The gateway (with an authorization's produce in flight), the API and dev.
    let gateway = GatewayProcess::start(&setup, &[]).await;
    let api = api(&setup).await;
    let dev_db = TestDatabase::create().await;
    let dev = dev(&setup, &dev_db).await;
    let request = authorization_request("evt_bounded", 500, "bakeries");
    let answer = try_exchange(gateway.addr, &signed(AUTHORIZATION, &request, now())).await;
    assert_eq!(answer.map(|a| a.0), Some(200));
    setup.broker.stop().await;
    let mut children = [("gateway", gateway.child), ("api", api), ("dev", dev)];
    for (_, child) in &children {
        sigterm(child);
    }
    let signalled = Instant::now();
    // Waited for together, so that each exit time is its own.
    futures_util::future::join_all(children.iter_mut().map(|(what, child)| async move {
        exits_within(child, &format!("{what}, broker gone"), signalled, bound).await
    }))
    .await;

    // Nothing lost: a fresh aggregator reads what the stopped ones did not commit, and the
    // last part, and every event is stored once.
    setup.broker.start_again().await;
    produce(&setup.kafka(), parts[3]).await;
    let _aggregator = setup.aggregator("bounded", "aggregator-last");
    // (The gateway's authorization request may or may not have reached the topic before the
    // broker died; it is not one of the events counted.)
    setup
        .wait_for(
            "SELECT count(*) FROM stripe_events WHERE event_id <> 'evt_bounded'",
            distinct(&events),
            Duration::from_secs(60),
            &["aggregator-last"],
        )
        .await;
}
