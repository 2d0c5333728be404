//! A gateway on a real broker, for the integration tests.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::Duration;

use cardstream_gateway::{GatewayArgs, RunningGateway};
use cardstream_kafka::KafkaArgs;
use cardstream_stripe::{WebhookSecret, signature};
use cardstream_telemetry::{CancellationToken, Registry};
use cardstream_testbed::{Broker, HttpResponse, unique_name};
use clap::Parser;

pub const SECRET: &str = "whsec_test_gateway_secret";
pub const PARTITIONS: i32 = 4;

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    args: GatewayArgs,
}

/// Gateway settings for tests: ephemeral ports, the test secret, the given broker and topic.
pub fn args(brokers: &str, topic: &str, extra: &[&str]) -> GatewayArgs {
    let mut argv = vec![
        "gateway",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--kafka-brokers",
        brokers,
        "--kafka-topic",
        topic,
        "--webhook-secrets",
        SECRET,
        // Tests stop gateways often; the drain is tested on its own.
        "--shutdown-delay",
        "0s",
    ];
    argv.extend_from_slice(extra);
    Wrapper::try_parse_from(argv).unwrap().args
}

pub struct TestGateway {
    pub running: Option<RunningGateway>,
    pub shutdown: CancellationToken,
    pub topic: String,
    pub registry: Registry,
}

impl TestGateway {
    /// Creates a fresh topic on `broker` and starts a gateway writing to it.
    pub async fn start(broker: &Broker, extra: &[&str]) -> TestGateway {
        let topic = unique_name("events");
        let kafka = KafkaArgs::new(broker.brokers(), &topic);
        cardstream_kafka::ensure_topic(&kafka, &topic, PARTITIONS, 1)
            .await
            .unwrap();
        Self::start_on(&broker.brokers(), &topic, extra).await
    }

    /// Starts a gateway on an existing topic (or a broker that is down).
    pub async fn start_on(brokers: &str, topic: &str, extra: &[&str]) -> TestGateway {
        let shutdown = CancellationToken::new();
        let registry = Registry::new();
        let running = cardstream_gateway::start(
            args(brokers, topic, extra),
            registry.clone(),
            shutdown.clone(),
        )
        .await
        .unwrap();
        TestGateway {
            running: Some(running),
            shutdown,
            topic: topic.to_owned(),
            registry,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.as_ref().unwrap().addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.as_ref().unwrap().admin_addr)
    }

    /// Posts `body` signed now with the test secret.
    pub async fn post_signed(&self, path: &str, body: &str) -> HttpResponse {
        let header = sign(body, now());
        self.post(path, &[("stripe-signature", &header)], body)
            .await
    }

    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        cardstream_testbed::post(&self.url(path), headers, body.to_owned()).await
    }

    /// The sum of the metric's series matching `labels` in this gateway's registry.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        cardstream_testbed::metric_value(&self.registry, name, labels)
    }

    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running.wait().await.unwrap();
        }
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn sign(body: &str, t: i64) -> String {
    sign_with(SECRET, body, t)
}

/// The `Stripe-Signature` of `body` at `t` with `secret`.
pub fn sign_with(secret: &str, body: &str, t: i64) -> String {
    signature::header(&[WebhookSecret::new(secret)], t, body.as_bytes())
}

/// `event` as a connected account's: with `"account"` at the top level, as Stripe sends it
/// to a Connect endpoint.
pub fn from_connected_account(event: &str, account: &str) -> String {
    let mut event: serde_json::Value = serde_json::from_str(event).unwrap();
    event["account"] = serde_json::json!(account);
    event.to_string()
}

/// A Stripe-shaped `issuing_transaction.created` event for card `card`.
pub fn transaction_event(id: &str, card: &str) -> String {
    serde_json::json!({
        "id": id, "object": "event", "api_version": "2024-06-20", "created": 1_721_948_550,
        "livemode": false, "pending_webhooks": 1, "type": "issuing_transaction.created",
        "request": {"id": null, "idempotency_key": null},
        "data": {"object": {
            "id": format!("ipi_{id}"), "object": "issuing.transaction", "amount": -1250,
            "currency": "usd", "type": "capture", "card": card, "cardholder": "ich_1",
            "authorization": "iauth_1", "created": 1_721_948_550,
            "merchant_data": {"category": "taxicabs_limousines", "name": "Rocket Rides"}
        }}
    })
    .to_string()
}

/// Stripe's published authorization fixture, as an `issuing_authorization.request` event,
/// asking for `amount` of `currency` at a merchant of `category`.
pub fn authorization_request(id: &str, amount: i64, currency: &str, category: &str) -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../stripe/tests/fixtures/issuing.authorization.json"
    );
    let mut auth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    auth["pending_request"]["amount"] = serde_json::json!(amount);
    auth["pending_request"]["currency"] = serde_json::json!(currency);
    auth["merchant_data"]["category"] = serde_json::json!(category);
    serde_json::json!({
        "id": id, "object": "event", "api_version": "2024-06-20", "created": 1_721_948_550,
        "livemode": false, "pending_webhooks": 1, "type": "issuing_authorization.request",
        "request": {"id": null, "idempotency_key": null}, "data": {"object": auth}
    })
    .to_string()
}

pub const READ_TIMEOUT: Duration = Duration::from_secs(15);
