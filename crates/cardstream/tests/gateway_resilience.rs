//! A running gateway under hostile load and careless operations: thousands of stalled
//! uploads, replayed authorization requests, a policy file caught mid-rewrite. It sheds what
//! it cannot take (503 with `Retry-After`), keeps its memory bounded, answers Stripe's signed
//! traffic meanwhile, counts a replayed authorization once, and never lets a half-written
//! policy approve what the last good one declines.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Setup;
use common::gateway::{
    GatewayProcess, approved, authorization_request, metric, now, peak_rss_mib, signed,
    try_exchange,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const STALLED: usize = 3_000;
const MIB: usize = 1 << 20;
const AUTHORIZATION: &str = "/webhooks/stripe/authorization";
const EVENTS: &str = "/webhooks/stripe";

/// Opens a connection that declares a 1 MiB body, sends all of it but the last byte, and
/// holds the connection until `release`.
async fn stall(addr: std::net::SocketAddr, body: Arc<Vec<u8>>, release: Arc<tokio::sync::Notify>) {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return;
    };
    let head = format!(
        "POST {EVENTS} HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\nstripe-signature: t=1,v1=00\r\ncontent-length: {MIB}\r\n\r\n"
    );
    if stream.write_all(head.as_bytes()).await.is_ok() {
        // The gateway may refuse (and close) at once; then this write fails, as expected.
        let _ = stream.write_all(&body[..MIB - 1]).await;
    }
    release.notified().await;
}

#[tokio::test]
async fn stalled_uploads_are_shed_while_signed_traffic_is_answered_in_bounded_memory() {
    let setup = Setup::new(1).await;
    let gateway = GatewayProcess::start(&setup, &[]).await;
    let baseline = peak_rss_mib(gateway.pid());

    let body = Arc::new(vec![b'x'; MIB]);
    let release = Arc::new(tokio::sync::Notify::new());
    let mut stalls = Vec::with_capacity(STALLED);
    let started = Instant::now();
    for _ in 0..STALLED {
        stalls.push(tokio::spawn(stall(
            gateway.addr,
            body.clone(),
            release.clone(),
        )));
        // Not all 3,000 SYNs in one instant: the listen backlog would drop some.
        tokio::task::yield_now().await;
    }

    // Meanwhile, Stripe's own traffic: signed events and authorization requests.
    let (mut slowest_event, mut slowest_authorization) = (Duration::ZERO, Duration::ZERO);
    for i in 0..20 {
        let event = authorization_request(&format!("evt_load_event_{i}"), 500, "bakeries");
        let sent = Instant::now();
        let answer = try_exchange(gateway.addr, &signed(EVENTS, &event, now())).await;
        slowest_event = slowest_event.max(sent.elapsed());
        assert_eq!(
            answer.as_ref().map(|a| a.0),
            Some(200),
            "event {i}: {answer:?}"
        );

        let request = authorization_request(&format!("evt_load_auth_{i}"), 500, "bakeries");
        let sent = Instant::now();
        let answer = try_exchange(gateway.addr, &signed(AUTHORIZATION, &request, now())).await;
        slowest_authorization = slowest_authorization.max(sent.elapsed());
        let (status, body) = answer.unwrap();
        assert_eq!(status, 200, "authorization {i}: {body}");
        assert!(approved(&body), "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let every stalled upload arrive before measuring.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let peak = peak_rss_mib(gateway.pid());
    let (_, page) = gateway.admin_get("/metrics").await.unwrap();
    let shed = metric(&page, "cardstream_shed_total", &[]);
    eprintln!(
        "{STALLED} stalled 1 MiB uploads over {:?}: peak RSS {baseline:.0} → {peak:.0} MiB; shed {shed}; slowest signed event {slowest_event:?}, slowest authorization {slowest_authorization:?}",
        started.elapsed()
    );
    release.notify_waiters();
    for stall in stalls {
        stall.abort();
    }

    assert!(
        peak < 256.0,
        "peak RSS {peak:.0} MiB under {STALLED} stalled uploads"
    );
    assert!(
        slowest_authorization < Duration::from_secs(2),
        "an authorization took {slowest_authorization:?}, past Stripe's 2 s"
    );
    assert!(
        slowest_event < Duration::from_secs(5),
        "an event took {slowest_event:?}"
    );
    assert!(shed > 0.0, "nothing was counted as shed:\n{page}");
}

#[tokio::test]
async fn a_shed_request_gets_503_with_retry_after() {
    let setup = Setup::new(1).await;
    let gateway = GatewayProcess::start(&setup, &[("CARDSTREAM_MAX_LARGE_BODIES", "1")]).await;
    let body = Arc::new(vec![b'x'; MIB]);
    let release = Arc::new(tokio::sync::Notify::new());
    let holder = tokio::spawn(stall(gateway.addr, body, release.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A second large body while the only permit is held: refused at once, before its body.
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    let head = format!(
        "POST {EVENTS} HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\nstripe-signature: t=1,v1=00\r\ncontent-length: {MIB}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut answer);
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(answer.starts_with("http/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("\"code\":\"overloaded\""), "{answer}");

    let (_, page) = gateway.admin_get("/metrics").await.unwrap();
    assert_eq!(
        metric(&page, "cardstream_shed_total", &["reason=\"large_bodies\""]),
        1.0,
        "{page}"
    );
    release.notify_waiters();
    holder.abort();
}

#[tokio::test]
async fn a_replayed_authorization_request_gets_the_same_answer_and_is_counted_once() {
    replayed_requests_count_once("shared").await;
}

#[tokio::test]
async fn a_replayed_request_counts_once_with_spend_counted_in_memory_too() {
    replayed_requests_count_once("local").await;
}

/// With `--spend-ledger mode`.
async fn replayed_requests_count_once(mode: &str) {
    let setup = Setup::new(1).await;
    let url = setup.db.url.clone();
    let gateway = GatewayProcess::start(
        &setup,
        &[
            ("CARDSTREAM_DATABASE_URL", &url),
            ("CARDSTREAM_POLICY_DAILY_LIMIT", "usd=10000"),
            ("CARDSTREAM_SPEND_LEDGER", mode),
        ],
    )
    .await;
    // In memory, the limits decide only once the card's spend has been read.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, page) = gateway.admin_get("/metrics").await.unwrap();
        let read = metric(
            &page,
            "cardstream_spend_refreshes_total",
            &["outcome=\"ok\""],
        );
        if mode != "local" || read > 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the spend was never read:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let first = signed(
        AUTHORIZATION,
        &authorization_request("evt_replayed", 6000, "bakeries"),
        now(),
    );
    let (status, answer) = try_exchange(gateway.addr, &first).await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert!(approved(&answer), "{answer}");
    // The same signed bytes again, as an attacker who captured them would send them.
    for _ in 0..3 {
        let (status, again) = try_exchange(gateway.addr, &first).await.unwrap();
        assert_eq!((status, &again), (200, &answer));
    }
    // 6,000 counted once leaves room for 3,000 of the 10,000 daily limit; counted four times
    // it would not.
    let second = signed(
        AUTHORIZATION,
        &authorization_request("evt_after_replays", 3000, "bakeries"),
        now(),
    );
    let (status, answer) = try_exchange(gateway.addr, &second).await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert!(
        approved(&answer),
        "the replays were counted against the limit: {answer}"
    );

    let (_, page) = gateway.admin_get("/metrics").await.unwrap();
    assert_eq!(
        metric(&page, "cardstream_authorization_replays_total", &[]),
        3.0,
        "{page}"
    );
}

#[tokio::test]
async fn a_policy_file_caught_mid_rewrite_never_applies() {
    let setup = Setup::new(1).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, "blocked_categories = [\"bakeries\"]\n").unwrap();
    let file = path.to_str().unwrap();
    let gateway = GatewayProcess::start(
        &setup,
        &[
            ("CARDSTREAM_POLICY_FILE", file),
            ("CARDSTREAM_POLICY_RELOAD_INTERVAL", "100ms"),
        ],
    )
    .await;
    let decide = |id: &str| {
        let request = signed(
            AUTHORIZATION,
            &authorization_request(id, 500, "bakeries"),
            now(),
        );
        let addr = gateway.addr;
        async move {
            let (status, body) = try_exchange(addr, &request).await.unwrap();
            assert_eq!(status, 200, "{body}");
            approved(&body)
        }
    };
    assert!(
        !decide("evt_policy_before").await,
        "the policy blocks bakeries"
    );

    // A rewrite starts by truncating the file; the gateway reloads in the meantime.
    std::fs::File::create(&path).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !decide("evt_policy_truncated").await,
        "an empty policy file approved what the policy in force declines"
    );
    // Half of a new policy, cut inside a value.
    std::fs::write(&path, "blocked_categories = [\"bake").unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!decide("evt_policy_half").await);
    let (_, page) = gateway.admin_get("/metrics").await.unwrap();
    let refused = metric(
        &page,
        "cardstream_policy_reloads_total",
        &["outcome=\"invalid\""],
    );
    assert!(refused >= 2.0, "{page}");

    // The rewrite completes: the new policy applies.
    std::fs::write(
        &path,
        "blocked_categories = [\"betting_casino_gambling\"]\n",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    for attempt in 0.. {
        if decide(&format!("evt_policy_after_{attempt}")).await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the completed policy never applied"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn webhook_secrets_rotate_without_a_restart() {
    let setup = Setup::new(1).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("webhook-secrets");
    let (old, new) = ("whsec_rotation_old", "whsec_rotation_new");
    std::fs::write(&path, format!("{old}\n")).unwrap();
    let gateway = GatewayProcess::start(
        &setup,
        &[
            ("CARDSTREAM_WEBHOOK_SECRETS", ""),
            ("CARDSTREAM_WEBHOOK_SECRETS_FILE", path.to_str().unwrap()),
            ("CARDSTREAM_WEBHOOK_SECRETS_RELOAD_INTERVAL", "100ms"),
        ],
    )
    .await;
    let mut sent = 0;
    let mut status_with = async |secret: &str| {
        sent += 1;
        let body = authorization_request(&format!("evt_rotation_{sent}"), 500, "bakeries");
        let header = cardstream_stripe::signature::header(
            &[cardstream_stripe::WebhookSecret::new(secret)],
            now(),
            &body,
        );
        let request = common::gateway::post(EVENTS, &[("stripe-signature", &header)], &body);
        try_exchange(gateway.addr, &request).await.unwrap().0
    };
    assert_eq!(status_with(old).await, 200);
    assert_eq!(status_with(new).await, 400);

    // Rolling: both are valid while Stripe switches over, then only the new one.
    std::fs::write(&path, format!("{old}\n{new}\n")).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        status_with(new).await,
        200,
        "the added secret is not in force"
    );
    assert_eq!(status_with(old).await, 200);
    std::fs::write(&path, format!("{new}\n")).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        status_with(old).await,
        400,
        "the removed secret is still accepted"
    );
    assert_eq!(status_with(new).await, 200);

    // Emptied (mid-rewrite): refused, the secret in force stays.
    std::fs::File::create(&path).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(status_with(new).await, 200);
    let (_, page) = gateway.admin_get("/metrics").await.unwrap();
    let reloads = |outcome: &str| {
        metric(
            &page,
            "cardstream_webhook_secret_reloads_total",
            &[&format!("outcome=\"{outcome}\"")],
        )
    };
    assert_eq!((reloads("ok"), reloads("invalid")), (2.0, 1.0), "{page}");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let setup = Setup::new(1).await;
    let gateway = GatewayProcess::start(&setup, &[("CARDSTREAM_HEADER_READ_TIMEOUT", "1s")]).await;
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    // Half a request head, then nothing: a slowloris client.
    stream
        .write_all(b"POST /webhooks/stripe HTTP/1.1\r\nhost: gateway\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut answer);
    let closed = tokio::time::timeout(Duration::from_secs(10), read).await;
    let took = started.elapsed();
    eprintln!("headers unfinished: connection closed after {took:?}");
    assert!(closed.is_ok(), "the connection was still open after 10 s");
    assert!(took < Duration::from_secs(3), "closed only after {took:?}");
}

#[tokio::test]
async fn events_at_capacity_do_not_crowd_out_authorization_requests() {
    let setup = Setup::new(1).await;
    let gateway =
        GatewayProcess::start(&setup, &[("CARDSTREAM_MAX_CONCURRENT_REQUESTS", "1")]).await;
    // One event whose body never finishes holds the only event slot.
    let mut holder = TcpStream::connect(gateway.addr).await.unwrap();
    holder
        .write_all(
            format!(
                "POST {EVENTS} HTTP/1.1\r\nhost: gateway\r\nstripe-signature: t=1,v1=00\r\ncontent-length: 100\r\n\r\n{{\"id\""
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let event = authorization_request("evt_crowded_event", 500, "bakeries");
    let answer = try_exchange(gateway.addr, &signed(EVENTS, &event, now())).await;
    assert_eq!(answer.as_ref().map(|a| a.0), Some(503), "{answer:?}");
    let request = authorization_request("evt_crowded_authorization", 500, "bakeries");
    let (status, body) = try_exchange(gateway.addr, &signed(AUTHORIZATION, &request, now()))
        .await
        .unwrap();
    assert_eq!(status, 200, "an authorization was shed with events: {body}");
    assert!(approved(&body), "{body}");
    let (_, page) = gateway.admin_get("/metrics").await.unwrap();
    assert_eq!(
        metric(&page, "cardstream_shed_total", &["reason=\"requests\""]),
        1.0,
        "{page}"
    );
    drop(holder);
}

/// `cardstream gateway` on ephemeral ports, with a webhook secret, no database and a broker
/// address nothing listens on: for what it does at start, before any traffic.
fn bare_gateway() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cardstream"));
    command
        .arg("gateway")
        .env_remove("CARDSTREAM_DATABASE_URL")
        .env("CARDSTREAM_WEBHOOK_SECRETS", "whsec_bare_gateway_test")
        .env("CARDSTREAM_KAFKA_BROKERS", "127.0.0.1:1")
        .env("CARDSTREAM_LISTEN", "127.0.0.1:0")
        .env("CARDSTREAM_ADMIN_LISTEN", "127.0.0.1:0");
    command
}

/// `--max-concurrent-requests 0` would answer every request 503: a gateway that looks up and
/// refuses all of Stripe's traffic. It is refused at start, naming the setting.
#[test]
fn a_request_cap_of_zero_is_refused_at_start() {
    let mut child = bare_gateway()
        .env("CARDSTREAM_MAX_CONCURRENT_REQUESTS", "0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("a gateway with --max-concurrent-requests 0 started and kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--max-concurrent-requests"), "{stderr}");
}

/// A gateway without a database cannot follow the policy admins save in the dashboard: it
/// still starts (the policy file alone is a valid setup), and says so at start instead of
/// ignoring those edits in silence.
#[test]
fn a_gateway_without_a_database_says_it_ignores_the_saved_policy() {
    use std::io::BufRead;
    let mut child = bare_gateway()
        .env("CARDSTREAM_LOG_FORMAT", "text")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stream)
                .lines()
                .map_while(Result::ok)
            {
                let _ = lines.send(line);
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut output = Vec::new();
    let found = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match seen.recv_timeout(left) {
            Ok(line) if line.contains("policy admins save in the dashboard is not followed") => {
                break true;
            }
            Ok(line) => output.push(line),
            Err(_) => break false,
        }
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        found,
        "no warning within 10 s; the gateway said:\n{}",
        output.join("\n")
    );
}
