//! Live activity end to end: a batch the store commits reaches the subscription of its card,
//! through the store's NOTIFY and the API's listener (which share `ActivityNotice`).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use cardstream_store::{IncomingEvent, Position};
use common::TestApi;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A new approved authorization on `card`, newer than anything seeded.
fn authorization(n: usize, card: &str, holder: &str) -> IncomingEvent {
    let id = format!("iauth_live_{n}");
    let created = 4_000_000_000 + n as i64;
    let body = json!({
        "id": format!("evt_live_{n}"), "object": "event", "type": "issuing_authorization.created",
        "created": created, "livemode": false,
        "data": {"object": {
            "id": id, "object": "issuing.authorization", "amount": 500, "currency": "usd",
            "approved": true, "status": "pending", "created": created,
            "card": {"id": card, "object": "issuing.card", "status": "active", "currency": "usd",
                     "created": 1, "cardholder": {"id": holder, "object": "issuing.cardholder",
                                                  "status": "active", "created": 1}},
            "merchant_data": {"category": "bakeries", "name": "Live Bakery", "network_id": "net_live"},
            "request_history": [], "metadata": {}
        }}
    })
    .to_string();
    IncomingEvent::parse(body.as_bytes(), 0, 0).unwrap()
}

#[tokio::test]
async fn a_committed_authorization_reaches_the_subscription_of_its_card() {
    let api = TestApi::start(&[]).await;
    let alice = api.login("alice@example.com").await;
    let card = api.cards_of(&api.alice_holder)[0].clone();

    let mut request = api.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {alice}")}})
            .to_string(),
    ))
    .await
    .unwrap();
    let query = "subscription($id: ID!) { activity(cardId: $id) { cardId authorization { id } } }";
    ws.send(Message::text(
        json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": {"id": card}}})
            .to_string(),
    ))
    .await
    .unwrap();

    // The subscription has no acknowledgement, so a batch committed before it listens is
    // missed: commit one new authorization after another until one is delivered.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut sent = 0;
    let delivered = 'outer: loop {
        assert!(
            Instant::now() < deadline,
            "nothing delivered after {sent} batches"
        );
        let event = authorization(sent, &card, &api.alice_holder);
        sent += 1;
        api.store
            .apply_batch(
                "live",
                "live",
                &[event],
                &[Position {
                    partition: 0,
                    next_offset: 1,
                }],
            )
            .await
            .unwrap();
        while let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(500), ws.next()).await
        {
            if let Message::Text(text) = message.unwrap() {
                let message: Value = serde_json::from_str(&text).unwrap();
                if message["type"] == "next" {
                    break 'outer message;
                }
            }
        }
    };
    let activity = &delivered["payload"]["data"]["activity"];
    assert_eq!(activity["cardId"], card.as_str(), "{delivered}");
    let id = activity["authorization"]["id"].as_str().unwrap();
    assert!(id.starts_with("iauth_live_"), "{delivered}");
}
