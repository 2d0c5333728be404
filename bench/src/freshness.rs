//! Freshness: how long after the gateway answered 200 for a webhook a subscribed dashboard
//! hears of it. The whole path runs as separate processes on a real broker and Postgres:
//! gateway → Kafka → aggregator → Postgres NOTIFY → API → graphql-transport-ws. Simulator
//! events are posted at a fixed rate (open loop); a client subscribed to a set of cards notes
//! when each of their authorizations first arrives.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use cardstream_kafka::{KafkaArgs, TopicArgs};
use cardstream_simulator::{Answer, Endpoint, generate};
use cardstream_stripe::{Event, Object, WebhookSecret, signature};
use cardstream_testbed::{Broker, Storage, TestDatabase};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use http::Request;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::gateway::SECRET;
use crate::graphql::{Client, login};
use crate::processes::{free_addr, sibling_binary, spawn_listening};
use crate::report::{Line, Row, ratio};

const CARDS: usize = 400;
/// Cards the dashboard client subscribes to (one subscription each, on one connection: the
/// most the API allows on one).
const WATCHED: usize = 20;

#[derive(Debug)]
pub(crate) struct Freshness {
    rate: f64,
    sent: usize,
    accepted: usize,
    watched: usize,
    delivered: usize,
    latency_us: Histogram<u64>,
}

impl Freshness {
    pub(crate) fn row(&self, name: &str) -> Row {
        let p = |q| Duration::from_micros(self.latency_us.value_at_quantile(q));
        Row {
            name: name.into(),
            rate: self.rate,
            p50: p(0.5),
            p99: p(0.99),
            note: format!(
                "{} of {} watched authorizations delivered; max {:.0} ms",
                self.delivered,
                self.watched,
                self.latency_us.max() as f64 / 1000.0
            ),
        }
    }

    fn p99(&self) -> Duration {
        Duration::from_micros(self.latency_us.value_at_quantile(0.99))
    }

    /// The suite's row. Its baseline, `fixed`, is the same load on an aggregator whose batches
    /// wait the whole batch wait (100 ms by default), as every batch did before batches closed
    /// when the topic went quiet (`--batch-quiet`): the ratio is what the adaptive wait gains.
    pub(crate) fn line(&self, fixed: &Freshness) -> Line {
        let (p99, fixed_p99) = (self.p99(), fixed.p99());
        Line::new(
            format!(
                "freshness p99 (webhook 200 → subscription) @ {:.0} events/s",
                self.rate
            ),
            format!(
                "{} ({} of {} delivered)",
                crate::ms(p99),
                self.delivered,
                self.watched
            ),
            format!(
                "batches that wait the whole --batch-wait: {}",
                crate::ms(fixed_p99)
            ),
            ratio(p99.as_secs_f64(), fixed_p99.as_secs_f64()),
        )
        .target("< 100 ms")
    }

    pub(crate) fn context(&self) -> String {
        format!(
            "freshness: {} webhooks sent at {:.0}/s ({} answered 200) over {CARDS} cards; one client subscribed to {WATCHED} of them; gateway, aggregator, API, broker and Postgres on this machine",
            self.sent, self.rate, self.accepted
        )
    }
}

/// Gateway, API and aggregator processes on one broker and database.
pub(crate) struct Processes {
    /// Gateway, API, aggregator, in that order.
    pub(crate) children: Vec<Child>,
    pub(crate) gateway: std::net::SocketAddr,
    pub(crate) api: std::net::SocketAddr,
    /// The aggregator's /metrics.
    pub(crate) aggregator_admin: std::net::SocketAddr,
}

/// Records every allocation of the gateway and the aggregator with heaptrack's preload library,
/// to tell a leak (live heap growing) from memory the allocator keeps (only RSS growing).
pub(crate) struct HeapProfile {
    pub(crate) preload: std::path::PathBuf,
    pub(crate) dir: std::path::PathBuf,
}

impl HeapProfile {
    /// heaptrack's raw recording of one process.
    pub(crate) fn output(&self, name: &str) -> std::path::PathBuf {
        self.dir.join(format!("{name}.heaptrack.raw"))
    }
}

pub(crate) async fn start(
    broker: &Broker,
    topic: &str,
    url: &str,
    heap_profile: Option<&HeapProfile>,
    gateway_linger: Option<Duration>,
    aggregator_args: &[&str],
) -> anyhow::Result<Processes> {
    let binary = sibling_binary("cardstream")?;
    let command = |args: &[&str]| {
        let mut c = Command::new(&binary);
        c.args(args)
            .env("CARDSTREAM_KAFKA_BROKERS", broker.brokers())
            .env("CARDSTREAM_KAFKA_TOPIC", topic)
            .env("CARDSTREAM_DATABASE_URL", url)
            .env("CARDSTREAM_WEBHOOK_SECRETS", SECRET)
            .env(
                "CARDSTREAM_TOKEN_SECRET",
                "benchmark-token-secret-of-32-bytes-at-least",
            )
            .env("RUST_LOG", "warn");
        c
    };
    let (gateway, api) = (free_addr()?, free_addr()?);
    let mut g = command(&["gateway"]);
    g.env("CARDSTREAM_LISTEN", gateway.to_string())
        .env("CARDSTREAM_ADMIN_LISTEN", free_addr()?.to_string());
    if let Some(linger) = gateway_linger {
        g.env(
            "CARDSTREAM_KAFKA_LINGER",
            humantime::format_duration(linger).to_string(),
        );
    }
    let mut a = command(&["api"]);
    a.env("CARDSTREAM_LISTEN", api.to_string())
        .env("CARDSTREAM_ADMIN_LISTEN", free_addr()?.to_string());
    let aggregator_admin = free_addr()?;
    let mut agg = command(&[&["aggregator"], aggregator_args].concat());
    if let Some(heap) = heap_profile {
        for (c, name) in [(&mut g, "gateway"), (&mut agg, "aggregator")] {
            c.env("LD_PRELOAD", &heap.preload)
                .env("DUMP_HEAPTRACK_OUTPUT", heap.output(name));
        }
    }
    agg.env("CARDSTREAM_ADMIN_LISTEN", aggregator_admin.to_string());
    Ok(Processes {
        children: vec![
            spawn_listening(g, gateway).await?,
            spawn_listening(a, api).await?,
            spawn_listening(agg, aggregator_admin).await?,
        ],
        gateway,
        api,
        aggregator_admin,
    })
}

/// A body ready to post: where, signed, and the authorization it is about on a watched card.
struct Item {
    path: &'static str,
    body: Bytes,
    signature: String,
    watched_authorization: Option<String>,
}

/// A broker (memory storage) with `topic` on 4 partitions and its DLQ, and a migrated database
/// of its own: what the whole pipeline runs on.
pub(crate) async fn broker_and_database(
    topic: &str,
    storage: Storage,
) -> anyhow::Result<(Broker, TestDatabase, cardstream_store::Store)> {
    let broker = Broker::start(storage).await;
    cardstream_kafka::ensure_topics(&TopicArgs {
        kafka: KafkaArgs::new(broker.brokers(), topic),
        partitions: 4,
        replication: 1,
    })
    .await?;
    let db = TestDatabase::create().await;
    let store = cardstream_store::Store::connect(&db.url, 1).await?;
    store.migrate_up().await?;
    Ok((broker, db, store))
}

/// Freshness at `rate` webhooks/s for `duration`, the aggregator run with `aggregator_args`.
pub(crate) async fn measure(
    rate: f64,
    duration: Duration,
    aggregator_args: &[&str],
) -> anyhow::Result<Freshness> {
    let topic = "bench.freshness";
    let (broker, db, store) = broker_and_database(topic, Storage::Memory).await?;
    let status = Command::new(sibling_binary("cardstream")?)
        .args([
            "users",
            "add",
            "--email",
            "watcher@example.com",
            "--role",
            "admin",
        ])
        .env("CARDSTREAM_DATABASE_URL", &db.url)
        .env("CARDSTREAM_USER_PASSWORD", "benchmark-password")
        .status()
        .await?;
    anyhow::ensure!(status.success(), "cardstream users add failed");
    let processes = start(&broker, topic, &db.url, None, None, aggregator_args).await?;

    // The program first (cardholders and cards), then purchases at the rate.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let count = (rate * duration.as_secs_f64()) as usize;
    let events = generate(5, CARDS, now, count / 3 + CARDS, |_| Answer::Approved {
        reason: "approved".into(),
    });
    let secrets = [WebhookSecret::new(SECRET)];
    let mut setup = Vec::new();
    let mut purchases = Vec::new();
    let mut watched_cards: Vec<String> = Vec::new();
    for e in &events {
        let event = Event::parse(&e.body)?;
        let mut about = None;
        match event.object()? {
            Object::Card(card) if watched_cards.len() < WATCHED => {
                watched_cards.push(card.id.clone())
            }
            Object::Authorization(a) => about = Some((a.id.clone(), a.card_id().to_owned())),
            _ => {}
        }
        let item = Item {
            path: match e.endpoint {
                Endpoint::Events => "/webhooks/stripe",
                Endpoint::Authorization => "/webhooks/stripe/authorization",
            },
            signature: signature::header(&secrets, now, &e.body),
            body: e.body.clone(),
            watched_authorization: about
                .filter(|(_, card)| watched_cards.contains(card))
                .map(|(id, _)| id),
        };
        if matches!(
            e.kind,
            "issuing_cardholder.created" | "issuing_card.created"
        ) {
            setup.push(item);
        } else {
            purchases.push(item);
        }
    }
    purchases.truncate(count);
    let http = crate::load::client(256);
    let post = |item: &Item| {
        let request = Request::post(format!("http://{}{}", processes.gateway, item.path))
            .header("content-type", "application/json")
            .header("stripe-signature", item.signature.as_str())
            .body(Full::new(item.body.clone()));
        let http = http.clone();
        async move {
            let response = http.request(request.ok()?).await.ok()?;
            let status = response.status().as_u16();
            response.into_body().collect().await.ok()?;
            Some(status)
        }
    };
    for item in &setup {
        anyhow::ensure!(post(item).await == Some(200), "setup event refused");
    }
    let client = Client::new(processes.api, 2);
    let token = login(&client, "watcher@example.com", "benchmark-password").await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let cards: i64 = sqlx::query_scalar("SELECT count(*) FROM cards")
            .fetch_one(store.pool())
            .await?;
        if cards as usize >= CARDS {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "cards not folded within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Subscribe to the watched cards.
    let mut request = format!("ws://{}/graphql/ws", processes.api).into_client_request()?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        http::HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .context("cannot open the subscription socket")?;
    let init =
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}});
    ws.send(Message::text(init.to_string())).await?;
    let query = "subscription($id: ID!) { activity(cardId: $id) { authorization { id } } }";
    for (i, card) in watched_cards.iter().enumerate() {
        let subscribe = json!({"id": i.to_string(), "type": "subscribe", "payload": {"query": query, "variables": {"id": card}}});
        ws.send(Message::text(subscribe.to_string())).await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let answered: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1,
        600_000_000,
        3,
    )?));
    let pushed: Arc<Mutex<HashSet<String>>> = Arc::default();
    let listener = {
        let (answered, latencies, pushed) = (answered.clone(), latencies.clone(), pushed.clone());
        tokio::spawn(async move {
            while let Some(Ok(message)) = ws.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(value) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                let Some(id) = value["payload"]["data"]["activity"]["authorization"]["id"].as_str()
                else {
                    continue;
                };
                // The first push of each authorization is the one timed.
                if !pushed.lock().is_ok_and(|mut p| p.insert(id.to_owned())) {
                    continue;
                }
                let at = answered.lock().ok().and_then(|a| a.get(id).copied());
                if let (Some(at), Ok(mut h)) = (at, latencies.lock()) {
                    let micros = u64::try_from(at.elapsed().as_micros()).unwrap_or(u64::MAX);
                    let _ = h.record(micros.max(1));
                }
            }
        })
    };

    // Open loop: each webhook at its due time, whatever happened to the previous ones.
    let started = Instant::now();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let purchases = Arc::new(purchases);
    for i in 0..purchases.len() {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let (purchases, answered, accepted) =
            (purchases.clone(), answered.clone(), accepted.clone());
        let sent = post(&purchases[i]);
        tasks.spawn(async move {
            if sent.await == Some(200) {
                accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let (Some(id), Ok(mut answered)) =
                    (&purchases[i].watched_authorization, answered.lock())
                {
                    answered.entry(id.clone()).or_insert_with(Instant::now);
                }
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    // Stragglers: whatever is still on its way arrives within a few seconds.
    tokio::time::sleep(Duration::from_secs(5)).await;
    listener.abort();
    let latency_us = latencies
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let watched = answered
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .len();
    // The live path misses nothing: every watched authorization the gateway took is pushed.
    let delivered = latency_us.len() as usize;
    if delivered != watched {
        let missing: Vec<String> = {
            let answered = answered.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            let pushed = pushed.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            answered
                .keys()
                .filter(|id| !pushed.contains(*id))
                .cloned()
                .collect()
        };
        let rows: Vec<(String, String, i64, String)> = sqlx::query_as(
            "SELECT a.id, a.card_id,
                    (SELECT count(*) FROM activity_changes c WHERE c.authorization_id = a.id),
                    (SELECT string_agg(event_type, ',') FROM stripe_events e
                      WHERE e.payload->'data'->'object'->>'id' = a.id)
             FROM authorizations a WHERE a.id = ANY($1)",
        )
        .bind(&missing)
        .fetch_all(store.pool())
        .await?;
        eprintln!("not pushed: {missing:?}; stored (id, card, changes, events): {rows:?}");
    }
    anyhow::ensure!(
        watched > 0 && delivered == watched,
        "{delivered} of {watched} watched authorizations were pushed to the subscriber"
    );
    Ok(Freshness {
        rate: purchases.len() as f64 / elapsed.as_secs_f64(),
        sent: purchases.len(),
        accepted: accepted.load(std::sync::atomic::Ordering::Relaxed),
        watched,
        delivered,
        latency_us,
    })
}
