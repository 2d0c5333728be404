//! An API on a real Postgres database of its own, seeded with simulator events, with an
//! admin and two cardholder users.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::BTreeMap;

use cardstream_api::{ApiArgs, RunningApi};
use cardstream_simulator::{Script, SimEvent, generate_declining_every};
use cardstream_store::{IncomingEvent, Position, Role, Store};
use cardstream_telemetry::{CancellationToken, Registry};
use cardstream_testbed::TestDatabase;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub const SEED: u64 = 77;
pub const CARDS: usize = 12;
pub const START: i64 = 1_764_000_000;
pub const SECRET: &str = "test-token-secret-of-at-least-32-bytes";
pub const PASSWORD: &str = "correct horse battery staple";

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    args: ApiArgs,
}

pub struct TestApi {
    pub db: TestDatabase,
    pub store: Store,
    pub running: RunningApi,
    pub shutdown: CancellationToken,
    pub registry: Registry,
    pub events: Vec<SimEvent>,
    /// cardholder id → its card ids.
    pub holders: BTreeMap<String, Vec<String>>,
    /// The two cardholders the test users are linked to.
    pub alice_holder: String,
    pub bob_holder: String,
}

/// Every fourth gateway decision is a decline.
pub fn events(purchases: usize) -> Vec<SimEvent> {
    generate_declining_every(4, SEED, CARDS, START, purchases)
}

pub async fn ingest(store: &Store, events: &[SimEvent]) {
    let incoming: Vec<_> = events
        .iter()
        .map(|e| IncomingEvent::parse(&e.body, 0, 0).unwrap())
        .collect();
    for chunk in incoming.chunks(500) {
        store
            .apply_batch(
                "test",
                "test",
                chunk,
                &[Position {
                    partition: 0,
                    next_offset: 1,
                }],
            )
            .await
            .unwrap();
    }
}

impl TestApi {
    pub async fn start(extra: &[&str]) -> TestApi {
        Self::start_with_accounts(extra, &[]).await
    }

    /// As [`TestApi::start`], with the world spread over Stripe Connect `accounts` by
    /// cardholder (`None`: the platform's own).
    pub async fn start_with_accounts(extra: &[&str], accounts: &[Option<String>]) -> TestApi {
        let db = TestDatabase::create().await;
        let store = Store::connect(&db.url, 4).await.unwrap();
        store.migrate_up().await.unwrap();
        let mut events = events(400);
        cardstream_simulator::spread_over_accounts(&mut events, accounts);
        ingest(&store, &events).await;

        let script = Script::new(SEED, CARDS, Some(START), 1000);
        let mut holders: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for card in &script.world().cards {
            holders
                .entry(script.world().cardholders[card.cardholder].id.clone())
                .or_default()
                .push(card.id.clone());
        }
        // Two cardholders that have cards.
        let mut with_cards = holders.keys().cloned();
        let alice_holder = with_cards.next().unwrap();
        let bob_holder = with_cards.next().unwrap();
        let hash = cardstream_api::hash_password(PASSWORD).unwrap();
        store
            .create_user("admin@example.com", &hash, Role::Admin, &[], "test")
            .await
            .unwrap();
        store
            .create_user(
                "alice@example.com",
                &hash,
                Role::Cardholder,
                std::slice::from_ref(&alice_holder),
                "test",
            )
            .await
            .unwrap();
        store
            .create_user(
                "bob@example.com",
                &hash,
                Role::Cardholder,
                std::slice::from_ref(&bob_holder),
                "test",
            )
            .await
            .unwrap();

        let mut argv = vec![
            "api",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--database-url",
            &db.url,
            "--token-secret",
            SECRET,
            "--shutdown-delay",
            "0s",
        ];
        argv.extend_from_slice(extra);
        let args = Wrapper::try_parse_from(argv).unwrap().args;
        let shutdown = CancellationToken::new();
        let registry = Registry::new();
        let running = cardstream_api::start(
            args,
            registry.clone(),
            shutdown.clone(),
            axum::Router::new(),
        )
        .await
        .unwrap();
        TestApi {
            db,
            store,
            running,
            shutdown,
            registry,
            events,
            holders,
            alice_holder,
            bob_holder,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/graphql", self.running.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql/ws", self.running.addr)
    }

    /// Posts a GraphQL request; returns the whole response body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = json!({"query": query, "variables": variables}).to_string();
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("authorization", auth.as_str()));
        }
        cardstream_testbed::post(&self.url(), &headers, body)
            .await
            .json()
    }

    pub async fn login(&self, email: &str) -> String {
        let response = self
            .gql(
                None,
                "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { token } }",
                json!({"e": email, "p": PASSWORD}),
            )
            .await;
        response["data"]["login"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("login failed: {response}"))
            .to_owned()
    }

    pub fn cards_of(&self, holder: &str) -> &[String] {
        &self.holders[holder]
    }
}

/// The `code` extension of the first error.
pub fn code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {response}"))
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A socket signed in with `token`, acknowledged, subscribed to `card`'s activity as id "1".
pub async fn subscribe(api: &TestApi, token: &str, card: &str) -> Socket {
    let query = "subscription($id: ID!) { activity(cardId: $id) { cardId authorization { id } } }";
    subscribe_to(api, token, query, json!({"id": card})).await
}

/// A socket signed in with `token`, acknowledged, subscribed to `query` with `variables` as
/// id "1".
pub async fn subscribe_to(api: &TestApi, token: &str, query: &str, variables: Value) -> Socket {
    let mut request = api.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}})
            .to_string(),
    ))
    .await
    .unwrap();
    let ack = next_message(&mut ws, std::time::Duration::from_secs(5)).await;
    assert_eq!(
        ack.as_ref().map(|m| &m["type"]),
        Some(&json!("connection_ack")),
        "{ack:?}"
    );
    let subscribe = json!({"id": "1", "type": "subscribe",
        "payload": {"query": query, "variables": variables}});
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    ws
}

/// The next JSON message within `wait`, if any.
pub async fn next_message(ws: &mut Socket, wait: std::time::Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Some(serde_json::from_str(&text).unwrap()),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}
