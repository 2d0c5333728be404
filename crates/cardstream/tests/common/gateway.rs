//! A gateway process and raw HTTP/1.1 to it: signed webhooks and authorization requests.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use cardstream_stripe::{WebhookSecret, signature};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Child;

use super::Setup;

pub const SECRET: &str = "whsec_gateway_process";

pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

pub fn now() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since_epoch.as_secs()).unwrap()
}

/// A gateway process and its two addresses.
pub struct GatewayProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
}

impl GatewayProcess {
    /// Starts `cardstream gateway` on `setup`'s broker with `env` added, and waits until it
    /// accepts connections.
    pub async fn start(setup: &Setup, env: &[(&str, &str)]) -> GatewayProcess {
        let (addr, admin) = (free_addr(), free_addr());
        let mut command = setup.command(&["gateway"]);
        command
            .env("CARDSTREAM_LISTEN", addr.to_string())
            .env("CARDSTREAM_ADMIN_LISTEN", admin.to_string())
            .env("CARDSTREAM_WEBHOOK_SECRETS", SECRET)
            .env_remove("CARDSTREAM_DATABASE_URL");
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().unwrap();
        wait_listening(addr).await;
        GatewayProcess { child, addr, admin }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    /// `(status, body)` of `GET path` on the admin port, or `None` if it does not answer.
    pub async fn admin_get(&self, path: &str) -> Option<(u16, String)> {
        get(self.admin, path).await
    }
}

pub async fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `(status, body)` of a plain GET, or `None` if nothing answers.
pub async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
    try_exchange(addr, request.as_bytes()).await
}

/// An HTTP/1.1 POST with `body`, its length declared.
pub fn post(path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
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

/// `body` posted to `path`, signed at `t` with [`SECRET`].
pub fn signed(path: &str, body: &[u8], t: i64) -> Vec<u8> {
    let header = signature::header(&[WebhookSecret::new(SECRET)], t, body);
    post(path, &[("stripe-signature", &header)], body)
}

/// Posts each of `events` to the endpoint Stripe sends it to, signed now; each must be
/// answered 200.
pub async fn post_all<'a>(
    addr: SocketAddr,
    events: impl IntoIterator<Item = &'a cardstream_simulator::SimEvent>,
) {
    for event in events {
        let path = match event.endpoint {
            cardstream_simulator::Endpoint::Authorization => "/webhooks/stripe/authorization",
            _ => "/webhooks/stripe",
        };
        let (status, body) = try_exchange(addr, &signed(path, &event.body, now()))
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
    }
}

/// Sends `request` on a new connection; `(status, body)` of the answer, or `None` when the
/// connection was refused or closed without one.
pub async fn try_exchange(addr: SocketAddr, request: &[u8]) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    Some((status, body))
}

/// Stripe's published authorization fixture as an `issuing_authorization.request` event with
/// id `event_id`, asking for `amount` US cents at a merchant of `category`.
pub fn authorization_request(event_id: &str, amount: i64, category: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../stripe/tests/fixtures/issuing.authorization.json");
    let mut auth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    auth["pending_request"]["amount"] = serde_json::json!(amount);
    auth["pending_request"]["currency"] = serde_json::json!("usd");
    auth["merchant_data"]["category"] = serde_json::json!(category);
    serde_json::json!({
        "id": event_id, "object": "event", "api_version": "2024-06-20", "created": now(),
        "livemode": false, "pending_webhooks": 1, "type": "issuing_authorization.request",
        "request": {"id": null, "idempotency_key": null}, "data": {"object": auth}
    })
    .to_string()
    .into_bytes()
}

/// Whether a gateway answer approved the authorization.
pub fn approved(body: &str) -> bool {
    let json: serde_json::Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("an authorization answer that is not JSON ({e}): {body:?}"));
    json["approved"]
        .as_bool()
        .unwrap_or_else(|| panic!("no decision in {body}"))
}

/// Peak resident memory of a process, from /proc, in MiB.
pub fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024.0
}

/// The sum of a metric's samples whose line contains every one of `labels`, from a
/// Prometheus text page.
pub fn metric(page: &str, name: &str, labels: &[&str]) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
