//! `cardstream api` as a process of its own on a real Postgres database, seeded with simulated
//! Stripe traffic and four users, for the hostile-client tests: everything they do goes over
//! HTTP and websockets to the binary as it runs.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use cardstream_store::{IncomingEvent, Position, Role, Store};
use cardstream_testbed::TestDatabase;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SECRET: &str = "hostile-api-token-secret-of-32-bytes-at-least";
pub const PASSWORD: &str = "correct horse battery staple";
pub const ADMIN: &str = "admin@example.com";
/// A second admin, the one the tests demote, disable or delete.
pub const ROOT: &str = "root@example.com";
pub const ALICE: &str = "alice@example.com";
pub const BOB: &str = "bob@example.com";

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A seeded database and the cardholders the users see.
pub struct Seeded {
    pub db: TestDatabase,
    pub store: Store,
    pub alice_holder: String,
    pub bob_holder: String,
}

impl Seeded {
    /// 1,200 simulated purchases over 30 cards, folded through the store as the aggregator
    /// folds them, and the users.
    pub async fn new() -> Seeded {
        let db = TestDatabase::create().await;
        let store = Store::connect(&db.url, 4).await.unwrap();
        store.migrate_up().await.unwrap();
        let events = cardstream_simulator::generate_declining_every(4, 31, 30, 1_764_000_000, 1200);
        let incoming: Vec<_> = events
            .iter()
            .map(|e| IncomingEvent::parse(&e.body, 0, 0).unwrap())
            .collect();
        for chunk in incoming.chunks(500) {
            let position = [Position {
                partition: 0,
                next_offset: 1,
            }];
            store
                .apply_batch("seed", "seed", chunk, &position)
                .await
                .unwrap();
        }
        let holders: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT cardholder_id FROM cards ORDER BY 1 LIMIT 2")
                .fetch_all(store.pool())
                .await
                .unwrap();
        let hash = cardstream_api::hash_password(PASSWORD).unwrap();
        for (email, role, links) in [
            (ADMIN, Role::Admin, vec![]),
            (ROOT, Role::Admin, vec![]),
            (ALICE, Role::Cardholder, vec![holders[0].clone()]),
            (BOB, Role::Cardholder, vec![holders[1].clone()]),
        ] {
            store
                .create_user(email, &hash, role, &links, "test")
                .await
                .unwrap();
        }
        Seeded {
            alice_holder: holders[0].clone(),
            bob_holder: holders[1].clone(),
            db,
            store,
        }
    }
}

/// A running `cardstream api` process.
pub struct ApiProcess {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub child: Child,
    log: tempfile::NamedTempFile,
}

impl ApiProcess {
    /// Starts `cardstream api` on `seeded`'s database with `extra` flags, and waits until it
    /// answers.
    pub async fn start(seeded: &Seeded, extra: &[&str]) -> ApiProcess {
        Self::start_on(&seeded.db.url, extra).await
    }

    /// [`ApiProcess::start`] on the database at `url`.
    pub async fn start_on(url: &str, extra: &[&str]) -> ApiProcess {
        let addr = free_addr();
        let admin_addr = free_addr();
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cardstream"))
            .arg("api")
            .args(["--listen", &addr.to_string()])
            .args(["--admin-listen", &admin_addr.to_string()])
            .args(extra)
            .env("CARDSTREAM_DATABASE_URL", url)
            .env("CARDSTREAM_TOKEN_SECRET", SECRET)
            .env("CARDSTREAM_SHUTDOWN_DELAY", "0s")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.reopen().unwrap())
            .stderr(log.reopen().unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut api = ApiProcess {
            addr,
            admin_addr,
            child,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(addr).await.is_err() {
            if let Ok(Some(status)) = api.child.try_wait() {
                panic!("cardstream api exited ({status}):\n{}", api.log());
            }
            assert!(
                Instant::now() < deadline,
                "cardstream api did not listen within 30 s:\n{}",
                api.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Listening for session changes (a fresh process trusts no cache before that).
        tokio::time::sleep(Duration::from_millis(300)).await;
        api
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    /// POSTs a GraphQL request; the whole response body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.post(token, &[], query, variables).await.json()
    }

    pub async fn post(
        &self,
        token: Option<&str>,
        extra_headers: &[(&str, &str)],
        query: &str,
        variables: Value,
    ) -> cardstream_testbed::HttpResponse {
        let body = json!({"query": query, "variables": variables}).to_string();
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("authorization", auth.as_str()));
        }
        headers.extend_from_slice(extra_headers);
        cardstream_testbed::post(&self.url(), &headers, body).await
    }

    /// Signs in; the token.
    pub async fn login(&self, email: &str) -> String {
        self.login_with(email, PASSWORD)
            .await
            .unwrap_or_else(|response| panic!("login of {email} failed: {response}"))
    }

    pub async fn login_with(&self, email: &str, password: &str) -> Result<String, Value> {
        let response = self
            .gql(
                None,
                "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { token } }",
                json!({"e": email, "p": password}),
            )
            .await;
        response["data"]["login"]["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or(response)
    }

    /// A value of the process's /metrics (0 when the series is absent).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = get(&format!("http://{}/metrics", self.admin_addr)).await.1;
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(' '))
            .filter(|(series, _)| *series == name || series.starts_with(&format!("{name}{{")))
            .filter_map(|(_, value)| value.trim().parse::<f64>().ok())
            .sum()
    }

    /// Opens a graphql-transport-ws socket and sends `connection_init` with `token`.
    pub async fn socket(&self, token: Option<&str>) -> Socket {
        let mut request = format!("ws://{}/graphql/ws", self.addr)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        if let Some(token) = token {
            send(
                &mut socket,
                json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}}),
            )
            .await;
        }
        socket
    }
}

/// GETs a URL: status, body and headers.
pub async fn get(url: &str) -> (u16, String, http::HeaderMap) {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned(), headers)
}

pub async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// What came next on a socket: a protocol message, or the close code and reason.
#[derive(Debug)]
pub enum Received {
    Json(Value),
    Closed(Option<u16>, String),
}

/// The next message or close within `timeout` (`None`: nothing came).
pub async fn receive(socket: &mut Socket, timeout: Duration) -> Option<Received> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let next = tokio::time::timeout(left, socket.next()).await.ok()?;
        match next {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "ping" || value["type"] == "pong" {
                    continue;
                }
                return Some(Received::Json(value));
            }
            Some(Ok(Message::Close(frame))) => {
                return Some(Received::Closed(
                    frame.as_ref().map(|f| u16::from(f.code)),
                    frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                ));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Some(Received::Closed(None, e.to_string())),
            None => return Some(Received::Closed(None, "stream ended".into())),
        }
    }
}

/// Waits for `connection_ack`.
pub async fn acknowledged(socket: &mut Socket) {
    match receive(socket, Duration::from_secs(5)).await {
        Some(Received::Json(v)) if v["type"] == "connection_ack" => {}
        other => panic!("expected connection_ack, got {other:?}"),
    }
}

/// Sends an operation over the socket and returns its first answer (`next` or `error`), or
/// the close that came instead.
pub async fn operation(socket: &mut Socket, id: &str, query: &str) -> Received {
    send(
        socket,
        json!({"id": id, "type": "subscribe", "payload": {"query": query}}),
    )
    .await;
    loop {
        match receive(socket, Duration::from_secs(5)).await {
            // The `complete` that follows an earlier operation's answer.
            Some(Received::Json(v)) if v["type"] == "complete" => continue,
            Some(other) => return other,
            None => panic!("no answer to operation {id}"),
        }
    }
}

/// The `code` extension of the first error.
pub fn code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {response}"))
}

/// Polls `check` until it holds or `within` passes; how long it took.
pub async fn within<F, Fut>(within: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{what}: still not true after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
