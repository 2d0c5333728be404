//! Hostile input against a running gateway process, over raw TCP so that nothing between the
//! test and the server tidies the bytes up: malformed and huge headers, a trickling body,
//! invalid UTF-8, deeply nested JSON, 10 MB bodies (declared and chunked), replayed
//! timestamps. Each gets its specific 4xx and code; afterwards the process still answers
//! `/healthz`, and twenty 10 MB bodies at once grew its memory by a bounded amount.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cardstream_stripe::WebhookSecret;
use cardstream_stripe::signature;
use common::Setup;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "whsec_hostile";

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn now() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since_epoch.as_secs()).unwrap()
}

fn sign(body: &[u8], t: i64) -> String {
    signature::header(&[WebhookSecret::new(SECRET)], t, body)
}

/// The status code and body of the answer to `request`, sent as given.
async fn exchange(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer (and close) before it has read everything, e.g. a 413 for a
    // declared length: a failed write is then expected, the answer is what counts.
    let _ = stream.write_all(request).await;
    read_answer(stream).await
}

async fn read_answer(mut stream: TcpStream) -> (u16, String) {
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

fn post(path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn signed(body: &[u8], t: i64) -> Vec<u8> {
    post(
        "/webhooks/stripe",
        &[("stripe-signature", &sign(body, t))],
        body,
    )
}

fn code_of(body: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("an error body that is not JSON ({e}): {body:?}"));
    json["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A field of /proc/<pid>/status (`VmRSS`, `VmHWM`), in MiB.
fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    kib / 1024.0
}

/// Resets the process's peak resident memory (`VmHWM`) to what it holds now, so that the next
/// peak read is the peak of what follows only (Linux ≥ 4.0: `echo 5 > clear_refs`).
fn reset_peak_rss(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .unwrap_or_else(|e| panic!("cannot reset the gateway's peak RSS: {e}"));
}

#[tokio::test]
async fn hostile_requests_get_their_own_4xx_and_the_gateway_stays_healthy_and_bounded() {
    let setup = Setup::new(1).await;
    let (listen, admin) = (free_addr(), free_addr());
    let mut gateway = setup
        .command(&["gateway"])
        .env("CARDSTREAM_LISTEN", listen.to_string())
        .env("CARDSTREAM_ADMIN_LISTEN", admin.to_string())
        .env("CARDSTREAM_WEBHOOK_SECRETS", SECRET)
        .env("CARDSTREAM_BODY_TIMEOUT", "1s")
        // Room for the twenty floods below at once: with the default 16, the ones past it are
        // shed with 503 whenever the machine is slow enough for them to overlap (seen in a
        // full test run on 2 cores), and this test is about the body limit, not shedding.
        .env("CARDSTREAM_MAX_LARGE_BODIES", "24")
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(listen).await.is_err() {
        assert!(Instant::now() < deadline, "the gateway did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = gateway.id().unwrap();
    let t = now();

    // (name, request, expected status, expected code; "" where hyper answers before the
    // gateway sees the request, with an empty body)
    let mut cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "a header line without a colon",
            b"POST /webhooks/stripe HTTP/1.1\r\nhost: g\r\nthis is not a header\r\ncontent-length: 0\r\n\r\n".to_vec(),
            400,
            "",
        ),
        (
            "a request line that is not HTTP",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS hello to a plain port\r\n\r\n".to_vec(),
            400,
            "",
        ),
        (
            "1 MB of headers",
            post("/webhooks/stripe", &[("x-padding", &"a".repeat(1 << 20))], b"{}"),
            431,
            "",
        ),
        (
            "a Stripe-Signature of 64 KB of noise",
            post("/webhooks/stripe", &[("stripe-signature", &"%%garbage;".repeat(6_500))], b"{}"),
            400,
            "signature_malformed",
        ),
        ("no signature", post("/webhooks/stripe", &[], b"{}"), 400, "signature_missing"),
        (
            "invalid UTF-8, correctly signed",
            signed(b"{\"id\": \"evt_\xff\xfe\xfd\"}", t),
            400,
            "body_not_json",
        ),
        (
            "JSON nested 100,000 deep, correctly signed",
            signed(format!("{{\"id\":\"evt_deep\",\"data\":{}{}}}", "{\"a\":".repeat(100_000), "}".repeat(100_000)).as_bytes(), t),
            400,
            "body_not_json",
        ),
        (
            "a 10 MB body, declared",
            signed(&vec![b' '; 10 << 20], t),
            413,
            "body_too_large",
        ),
        (
            "a correctly signed event replayed an hour later",
            signed(br#"{"id":"evt_replayed","object":"event","type":"issuing_card.created","data":{"object":{}}}"#, t - 3_600),
            400,
            "timestamp_outside_tolerance",
        ),
        (
            "a signature from another secret",
            post("/webhooks/stripe", &[("stripe-signature", &signature::header(&[WebhookSecret::new("whsec_other")], t, b"{}"))], b"{}"),
            400,
            "signature_mismatch",
        ),
        (
            "an authorization request sent to the events endpoint's sibling with an event of another type",
            {
                let body = br#"{"id":"evt_1","object":"event","type":"issuing_card.created","created":1,"livemode":false,"data":{"object":{"id":"ic_1","object":"issuing.card"}}}"#;
                post("/webhooks/stripe/authorization", &[("stripe-signature", &sign(body, t))], body)
            },
            400,
            "wrong_event_type",
        ),
        ("an unknown path", post("/admin", &[], b""), 404, "not_found"),
    ];
    // A chunked (undeclared) 10 MB body: refused once the limit is crossed.
    let mut chunked = format!(
        "POST /webhooks/stripe HTTP/1.1\r\nhost: g\r\nconnection: close\r\ntransfer-encoding: chunked\r\nstripe-signature: {}\r\n\r\n",
        sign(b"x", t)
    )
    .into_bytes();
    for _ in 0..160 {
        chunked.extend_from_slice(format!("{:x}\r\n", 65_536).as_bytes());
        chunked.extend_from_slice(&[b'x'; 65_536]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    cases.push((
        "a 10 MB body, chunked",
        chunked.clone(),
        413,
        "body_too_large",
    ));

    for (name, request, status, code) in &cases {
        let (got, body) = exchange(listen, request).await;
        assert_eq!(got, *status, "{name}: {body}");
        if !code.is_empty() {
            assert_eq!(code_of(&body), *code, "{name}");
        }
    }

    // A body that trickles: headers promise 1,000 bytes, 10 arrive, then nothing.
    let started = Instant::now();
    let mut slow = TcpStream::connect(listen).await.unwrap();
    let head = post(
        "/webhooks/stripe",
        &[("stripe-signature", &sign(b"x", t))],
        &[],
    );
    let head = String::from_utf8(head)
        .unwrap()
        .replace("content-length: 0", "content-length: 1000");
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(b"{\"id\": \"ev").await.unwrap();
    let (status, body) = read_answer(slow).await;
    assert_eq!(
        (status, code_of(&body).as_str()),
        (408, "body_timeout"),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "answered after {:?}",
        started.elapsed()
    );

    // Twenty 10 MB chunked bodies at once: each is dropped at the 1 MB limit, so memory
    // grows by at most twenty limits, not twenty bodies. The baseline is what the gateway
    // holds now, warmed up by every case above (one 10 MB body among them), and the peak is
    // measured from here on.
    let baseline = status_mib(pid, "VmRSS");
    reset_peak_rss(pid);
    let floods: Vec<_> = (0..20)
        .map(|_| {
            let request = chunked.clone();
            tokio::spawn(async move { exchange(listen, &request).await.0 })
        })
        .collect();
    for flood in floods {
        assert_eq!(flood.await.unwrap(), 413);
    }

    let health = exchange(
        admin,
        b"GET /healthz HTTP/1.1\r\nhost: g\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(health.0, 200, "the gateway is still healthy");
    assert!(
        gateway.try_wait().unwrap().is_none(),
        "the gateway is still running"
    );
    let peak = status_mib(pid, "VmHWM");
    let growth = peak - baseline;
    eprintln!(
        "gateway RSS: {baseline:.1} MiB before twenty 10 MB bodies, peak {peak:.1} MiB during \
         them (+{growth:.1} MiB)"
    );
    // Twenty bodies read up to the 1 MB limit are at most 20 MiB; measured, the growth is
    // about 4 MiB (a body is refused as it crosses the limit, so they do not all hold a full
    // megabyte at once). 40 MiB is twice the worst case of the limit working, for allocator
    // slack and hyper's buffers, and far below buffering the whole bodies: reading them whole
    // and refusing them afterwards measured +186 MiB (a peak of 227 MiB, which the absolute
    // 256 MiB bound this replaced let pass).
    assert!(
        growth < 40.0,
        "peak RSS grew by {growth:.1} MiB over the {baseline:.1} MiB baseline during twenty \
         10 MB bodies: memory grew with hostile input"
    );
    common::terminate(&mut gateway).await;
}
