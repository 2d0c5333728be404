//! `cardstream dev` end to end: the one command brings up a broker, a fresh database, the
//! gateway, aggregator and API with demo users; a signed webhook posted to its gateway reaches
//! a cardholder's live subscription; Ctrl-C (SIGTERM) stops it cleanly.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use cardstream_simulator::{Answer, Endpoint, generate};
use cardstream_stripe::{Event, Object, WebhookSecret, signature};
use cardstream_testbed::TestDatabase;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SEED: u64 = 7;
const CARDS: usize = 12;
/// The signing secret of the user's own endpoint, given to `dev` through the environment.
const YOUR_SECRET: &str = "whsec_yours_from_stripe_listen";

/// A failing test ends `dev` with SIGTERM, not SIGKILL, so that it stops its broker child too
/// (which runs in a process group of its own and would outlive a killed parent).
struct StopOnPanic(Option<u32>);

impl Drop for StopOnPanic {
    fn drop(&mut self) {
        if let (true, Some(pid)) = (std::thread::panicking(), self.0) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
}

/// What the banner says, read from the process's standard error.
struct Banner {
    api: String,
    webhooks: String,
    lines: Vec<String>,
}

fn address_after(line: &str, label: &str) -> Option<String> {
    let rest = line.trim_start().strip_prefix(label)?.trim_start();
    let url = rest.split_whitespace().next()?;
    Some(
        url.trim_start_matches("http://")
            .split('/')
            .next()?
            .to_owned(),
    )
}

async fn gql(api: &str, token: Option<&str>, query: &str, variables: Value) -> Value {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("authorization", auth.as_str()));
    }
    let body = json!({"query": query, "variables": variables}).to_string();
    cardstream_testbed::post(&format!("http://{api}/graphql"), &headers, body)
        .await
        .json()
}

/// Starts `cardstream dev` on `db` with `args` (after its listen flags) and reads its banner.
async fn start_dev(
    db: &TestDatabase,
    args: &[&str],
) -> (
    tokio::process::Child,
    StopOnPanic,
    Banner,
    tokio::io::Lines<BufReader<tokio::process::ChildStderr>>,
) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cardstream"))
        .args(["dev", "--listen", "127.0.0.1:0", "--webhook-listen"])
        .args(["127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(args)
        .env("CARDSTREAM_DEV_DATABASE_URL", &db.url)
        // A secret of the user's own (as `stripe listen` prints one), accepted beside dev's.
        .env("CARDSTREAM_WEBHOOK_SECRETS", YOUR_SECRET)
        .env("RUST_LOG", "warn")
        .env_remove("CARDSTREAM_KAFKA_BROKERS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stop_on_panic = StopOnPanic(child.id());
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut banner = Banner {
        api: String::new(),
        webhooks: String::new(),
        lines: Vec::new(),
    };
    let read_banner = async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            if let Some(a) = address_after(&line, "dashboard + GraphQL") {
                banner.api = a;
            }
            if let Some(a) = address_after(&line, "webhooks") {
                banner.webhooks = a;
            }
            let done = line.contains("or as a cardholder");
            banner.lines.push(line);
            if done {
                return;
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(90), read_banner)
        .await
        .is_err()
    {
        panic!("no banner within 90 s:\n{}", banner.lines.join("\n"));
    }
    (child, stop_on_panic, banner, stderr)
}

#[tokio::test]
async fn one_command_runs_everything_and_a_webhook_reaches_a_live_subscription() {
    // A database of the test's own; `dev` drops and recreates it, the guard drops it at the end.
    let db = TestDatabase::create().await;
    let (seed, cards) = (SEED.to_string(), CARDS.to_string());
    let (mut child, _stop_on_panic, banner, mut stderr) =
        start_dev(&db, &["--rate", "0", "--seed", &seed, "--cards", &cards]).await;
    let all = banner.lines.join("\n");
    assert!(
        !banner.api.is_empty() && !banner.webhooks.is_empty(),
        "{all}"
    );
    assert!(
        all.contains("demo@cardstream.dev / cardstream-demo"),
        "{all}"
    );
    assert!(
        all.contains("admin@cardstream.dev / cardstream-admin"),
        "{all}"
    );
    assert!(
        all.contains("and 1 of yours from CARDSTREAM_WEBHOOK_SECRETS")
            && !all.contains(YOUR_SECRET),
        "{all}"
    );

    // The printed demo login works and sees the demo cardholder's cards (none yet: no
    // traffic has been sent).
    let login = gql(
        &banner.api,
        None,
        "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { token } }",
        json!({"e": "demo@cardstream.dev", "p": "cardstream-demo"}),
    )
    .await;
    let token = login["data"]["login"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{login}"))
        .to_owned();

    // The same seed gives `dev`'s simulated world: its cardholders and cards.
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let events = generate(SEED, CARDS, start, 40, |_| Answer::Approved {
        reason: "approved".into(),
    });
    // Cardholders and cards first, so the subscription can be opened on a known card. Every
    // event is signed with the user's own secret; the authorization requests alternate between
    // the dedicated endpoint and the ordinary one (where `stripe listen --forward-to` sends
    // everything), and both must answer with a decision.
    let secret = [WebhookSecret::new(YOUR_SECRET)];
    let post = |i: usize| {
        let e = &events[i];
        let path = match e.endpoint {
            Endpoint::Events => "/webhooks/stripe",
            Endpoint::Authorization if i.is_multiple_of(2) => "/webhooks/stripe",
            Endpoint::Authorization => "/webhooks/stripe/authorization",
        };
        let request = e.endpoint == Endpoint::Authorization;
        let url = format!("http://{}{path}", banner.webhooks);
        let header = signature::header(&secret, start, &e.body);
        let body = e.body.clone();
        async move {
            let response = cardstream_testbed::post(
                &url,
                &[
                    ("content-type", "application/json"),
                    ("stripe-signature", &header),
                ],
                body,
            )
            .await;
            assert_eq!(
                response.status,
                200,
                "{}",
                String::from_utf8_lossy(&response.body)
            );
            if request {
                let answer: Value = serde_json::from_slice(&response.body).unwrap();
                assert!(answer["approved"].is_boolean(), "{path}: {answer}");
            }
        }
    };
    for (i, e) in events.iter().enumerate() {
        if matches!(
            e.kind,
            "issuing_cardholder.created" | "issuing_card.created"
        ) {
            post(i).await;
        }
    }
    // The demo user sees their cardholder once the aggregator folded it.
    let visible = Instant::now();
    let holder = loop {
        let seen = gql(
            &banner.api,
            Some(&token),
            "{ viewer { cardholders { nodes { id } } } }",
            json!({}),
        )
        .await;
        if let Some(id) = seen["data"]["viewer"]["cardholders"]["nodes"][0]["id"].as_str() {
            break id.to_owned();
        }
        assert!(
            visible.elapsed() < Duration::from_secs(30),
            "the demo cardholder never appeared: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The demo holder's first purchase, and the card it is on.
    let (first_purchase, card) = events
        .iter()
        .enumerate()
        .find_map(|(i, e)| match Event::parse(&e.body).ok()?.object().ok()? {
            Object::Authorization(a)
                if a.cardholder.as_ref().map(|c| c.id()) == Some(holder.as_str()) =>
            {
                Some((i, a.card_id().to_owned()))
            }
            _ => None,
        })
        .expect("the demo cardholder buys something within 40 purchases");
    // Cards and cardholders sit on different partitions: wait for this card's row too.
    loop {
        let seen = gql(
            &banner.api,
            Some(&token),
            "query($id: ID!) { card(id: $id) { id } }",
            json!({"id": card}),
        )
        .await;
        if seen["data"]["card"]["id"] == card.as_str() {
            break;
        }
        assert!(
            visible.elapsed() < Duration::from_secs(30),
            "the card never appeared: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut request = format!("ws://{}/graphql/ws", banner.api)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init =
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}});
    ws.send(Message::text(init.to_string())).await.unwrap();
    let query =
        "subscription($id: ID!) { activity(cardId: $id) { cardId authorization { id approved } } }";
    let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": {"id": card}}});
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    // The subscription reads what the card already shows before it listens: wait until the
    // API counts it as listening, so that every purchase posted below reaches it.
    let metrics = api_metrics_url(&banner.lines);
    let listening = Instant::now();
    loop {
        let text =
            String::from_utf8(cardstream_testbed::get(&metrics).await.body.to_vec()).unwrap();
        if text
            .lines()
            .any(|l| l == "cardstream_activity_subscriptions 1")
        {
            break;
        }
        assert!(
            listening.elapsed() < Duration::from_secs(30),
            "the subscription never listened: {}",
            text.lines()
                .filter(|l| l.contains("subscriptions"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Every purchase event, in order; the clock starts at the 200 for the demo holder's first.
    let mut answered = None;
    for (i, e) in events.iter().enumerate() {
        if matches!(
            e.kind,
            "issuing_cardholder.created" | "issuing_card.created"
        ) {
            continue;
        }
        post(i).await;
        if i == first_purchase {
            answered = Some(Instant::now());
        }
    }
    let answered = answered.unwrap();
    // What the subscription must deliver: the card's authorizations, in the order the test
    // posted their first events (each may come again as it changes: approved, captured…).
    let mut expected: Vec<String> = Vec::new();
    for e in &events {
        if let Ok(Object::Authorization(a)) = Event::parse(&e.body).and_then(|e| e.object())
            && a.card_id() == card
            && !expected.contains(&a.id)
        {
            expected.push(a.id.clone());
        }
    }
    let mut received: Vec<String> = Vec::new();
    let mut latency = None;
    let delivered = tokio::time::timeout(Duration::from_secs(20), async {
        while received.len() < expected.len() {
            let Some(message) = ws.next().await else {
                panic!("the subscription closed after {received:?}");
            };
            let Message::Text(text) = message.unwrap() else {
                continue;
            };
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["type"] != "next" {
                continue;
            }
            latency.get_or_insert_with(|| answered.elapsed());
            assert!(value["payload"]["errors"].is_null(), "{value}");
            let activity = &value["payload"]["data"]["activity"];
            assert_eq!(
                activity["cardId"],
                card.as_str(),
                "another card's event: {value}"
            );
            let id = activity["authorization"]["id"].as_str().unwrap_or_default();
            assert!(
                expected.iter().any(|e| e == id),
                "{id} is not an authorization of {card} the test sent ({expected:?}): {value}"
            );
            if !received.iter().any(|r| r == id) {
                received.push(id.to_owned());
            }
        }
    })
    .await;
    assert!(
        delivered.is_ok(),
        "within 20 s of the webhooks' 200s the subscription delivered {received:?} of {expected:?}"
    );
    // Every authorization of the card, first seen in the order they were posted.
    assert_eq!(received, expected);
    eprintln!(
        "the subscription delivered the {} authorizations of {card}",
        expected.len()
    );
    let latency = latency.unwrap();
    eprintln!("webhook 200 → subscription: {latency:?}");

    // One webhook with a signature that does not verify: refused, and counted as such.
    let forged = cardstream_testbed::post(
        &format!("http://{}/webhooks/stripe", banner.webhooks),
        &[
            ("content-type", "application/json"),
            (
                "stripe-signature",
                &format!("t={start},v1={}", "0".repeat(64)),
            ),
        ],
        events[0].body.clone(),
    )
    .await;
    assert_eq!(forged.status, 400);
    check_metrics(&banner.lines).await;

    // Ctrl-C: every component stops and the process exits 0.
    let status = common::terminate(&mut child).await;
    let rest = async {
        let mut rest = Vec::new();
        while let Ok(Some(line)) = stderr.next_line().await {
            rest.push(line);
        }
        rest.join("\n")
    };
    let rest = tokio::time::timeout(Duration::from_secs(5), rest)
        .await
        .unwrap_or_default();
    assert!(status.success(), "dev exited with {status}:\n{rest}");
    assert!(rest.contains("stopped cleanly"), "{rest}");
}

/// The API's `/metrics`, from the banner's metrics line (`http://…/metrics (api), …`).
fn api_metrics_url(banner: &[String]) -> String {
    banner
        .iter()
        .find(|l| l.trim_start().starts_with("metrics"))
        .and_then(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words
                .windows(2)
                .find(|w| w[1].starts_with("(api)"))
                .map(|w| w[0].to_owned())
        })
        .unwrap_or_else(|| panic!("no API metrics URL in the banner:\n{}", banner.join("\n")))
}

/// The series a component's Kafka clients must report, told by what the component is: the
/// gateway produces; the aggregator consumes (and reports its lag).
fn expected_client_series(text: &str) -> Vec<String> {
    let mut series = Vec::new();
    if text.contains("cardstream_authorization_decisions_total") {
        series.push("cardstream_kafka_queue_messages{client=\"producer\"}".to_owned());
        series.push("cardstream_kafka_broker_rtt_p99_seconds{broker=".to_owned());
    }
    if text.contains("cardstream_batches_total") {
        series.push("cardstream_consumer_lag_records{".to_owned());
        series.push("cardstream_kafka_fetch_queue_messages{client=\"consumer\"}".to_owned());
        series.push("cardstream_kafka_queue_messages{client=\"dlq\"}".to_owned());
        series.push("cardstream_kafka_broker_rtt_p99_seconds{broker=".to_owned());
    }
    series
}

/// Each component's `/metrics`, scraped from the running process after traffic: clean by
/// `promtool check metrics`, with the build's version and the database pool, and holding every
/// metric the chart's dashboard and alerts read (the operator's are checked in its own tests).
async fn check_metrics(banner: &[String]) {
    let line = banner
        .iter()
        .find(|l| l.trim_start().starts_with("metrics"))
        .unwrap_or_else(|| panic!("no metrics line in the banner:\n{}", banner.join("\n")));
    let urls: Vec<&str> = line
        .split_whitespace()
        .filter(|w| w.starts_with("http://"))
        .collect();
    assert_eq!(urls.len(), 3, "{line}");
    let mut everything = String::new();
    for url in urls {
        // The aggregator reports its lag with its readiness checks, every few seconds, and
        // librdkafka its statistics every 10 s.
        let deadline = Instant::now() + Duration::from_secs(30);
        let text = loop {
            let response = cardstream_testbed::get(url).await;
            assert_eq!(response.status, 200, "{url}");
            let text = String::from_utf8(response.body.to_vec()).unwrap();
            let waiting = expected_client_series(&text)
                .iter()
                .any(|series| !text.contains(series.as_str()));
            if !waiting || Instant::now() > deadline {
                break text;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        for series in expected_client_series(&text) {
            assert!(text.contains(&series), "{url}: no {series}");
        }
        let problems = cardstream_testbed::promtool_check_metrics(&text);
        assert!(problems.is_empty(), "{url}: {problems}");
        // The revision the build script found (this checkout's commit), the crate's version.
        let build = format!(
            "cardstream_build_info{{revision=\"{}\",version=\"{}\"}} 1",
            env!("CARDSTREAM_REVISION"),
            env!("CARGO_PKG_VERSION")
        );
        assert!(
            text.lines().any(|l| l == build),
            "{url}: no {build} in\n{}",
            text.lines()
                .filter(|l| l.contains("build_info"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        for series in [
            "cardstream_database_pool_connections{state=\"idle\"}",
            "cardstream_database_pool_connections{state=\"in_use\"}",
            "cardstream_database_pool_max_connections",
            "cardstream_database_pool_acquire_seconds_count",
        ] {
            assert!(text.contains(series), "{url}: no {series}");
        }
        everything.push_str(&text);
    }
    let names = cardstream_testbed::exposed_names(&everything);
    // The operator does not run in `cardstream dev`: its own metric set names what it serves.
    let operator = cardstream_operator::OperatorMetrics::new(&prometheus::Registry::new())
        .unwrap()
        .names();
    assert!(
        operator.contains(&"cardstream_leader".to_string()),
        "{operator:?}"
    );
    // The gateway's catch-up loop does not run in `cardstream dev` either (it needs Stripe's
    // API and --catch-up-interval): its counters, registered on a registry of their own, name
    // what a gateway with catch-up on serves.
    let catch_up_registry = prometheus::Registry::new();
    cardstream_sync::CatchUpMetrics::register(&catch_up_registry).unwrap();
    let catch_up: Vec<String> = catch_up_registry
        .gather()
        .iter()
        .map(|family| family.name().to_owned())
        .collect();
    assert!(
        catch_up.contains(&"cardstream_catch_up_runs_total".to_string()),
        "{catch_up:?}"
    );
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../charts/cardstream/");
    for file in [
        "dashboards/cardstream.json",
        "templates/prometheusrule.yaml",
    ] {
        let text = std::fs::read_to_string(format!("{root}{file}")).unwrap();
        let mut read = std::collections::BTreeSet::new();
        for (i, _) in text.match_indices("cardstream_") {
            let token: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            read.insert(token);
        }
        read.retain(|t| !operator.contains(t) && !catch_up.contains(t));
        // A token that is no metric name must at least be a label the components export.
        let missing: Vec<&String> = read
            .iter()
            .filter(|t| !names.contains(*t) && !everything.contains(&format!("{t}=")))
            .collect();
        assert!(
            missing.is_empty(),
            "{file} reads series no component exports: {missing:?}"
        );
    }
}

/// `dev` first loads a history with a program's rhythm, through its gateway (signed, as any
/// event), so the overview has a shape on first open; then live traffic goes on.
#[tokio::test]
async fn dev_loads_ninety_days_of_history_with_weekly_and_daily_rhythms() {
    let db = TestDatabase::create().await;
    let (mut child, _stop_on_panic, banner, _stderr) = start_dev(
        &db,
        &[
            "--rate",
            "2",
            "--seed",
            "9",
            "--cards",
            "12",
            "--history",
            "90d",
        ],
    )
    .await;
    let all = banner.lines.join("\n");
    assert!(
        all.contains("after a history of 3000 purchases over the last 90 days"),
        "{all}"
    );
    let store = cardstream_store::Store::connect(&db.url, 2).await.unwrap();
    let started = Instant::now();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Every purchase starts with an authorization, stored once its events are folded.
    loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM authorizations WHERE created < $1")
            .bind(now - 3_600)
            .fetch_one(store.pool())
            .await
            .unwrap();
        if n >= 2_900 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "history not loaded within 240 s: {n} authorizations"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("history loaded in {:.1} s", started.elapsed().as_secs_f64());
    let (first, days): (i64, i64) =
        sqlx::query_as("SELECT min(created), count(DISTINCT created / 86400) FROM authorizations")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert!(
        (now - 90 * 86_400..now - 89 * 86_400).contains(&first),
        "{first}"
    );
    assert!(days >= 88, "{days} days with purchases");
    // Weekly: Fridays and Saturdays busier than Sundays and Mondays; daily: lunch than 3 a.m.
    let count = |sql: &str| {
        let store = store.clone();
        let sql = sql.to_owned();
        async move {
            sqlx::query_scalar::<_, i64>(&sql)
                .fetch_one(store.pool())
                .await
                .unwrap()
        }
    };
    let weekday = "extract(isodow FROM to_timestamp(created) AT TIME ZONE 'UTC')";
    let hour = "extract(hour FROM to_timestamp(created) AT TIME ZONE 'UTC')";
    let busy = count(&format!(
        "SELECT count(*) FROM authorizations WHERE {weekday} IN (5, 6)"
    ))
    .await;
    let quiet = count(&format!(
        "SELECT count(*) FROM authorizations WHERE {weekday} IN (7, 1)"
    ))
    .await;
    assert!(
        busy as f64 > 1.4 * quiet as f64,
        "Fri+Sat {busy}, Sun+Mon {quiet}"
    );
    let lunch = count(&format!(
        "SELECT count(*) FROM authorizations WHERE {hour} = 12"
    ))
    .await;
    let night = count(&format!(
        "SELECT count(*) FROM authorizations WHERE {hour} = 3"
    ))
    .await;
    assert!(lunch > 10 * night.max(1), "12:00 {lunch}, 03:00 {night}");
    // The rollups agree, and the overview's 90 days have a point on nearly every day.
    assert!(store.rollup_drift().await.unwrap().is_clean());
    let login = gql(
        &banner.api,
        None,
        "mutation { login(input: {email: \"admin@cardstream.dev\", password: \"cardstream-admin\"}) { token } }",
        json!({}),
    )
    .await;
    let token = login["data"]["login"]["token"].as_str().unwrap().to_owned();
    let (from, to): (String, String) = sqlx::query_as(
        "SELECT (to_timestamp($1 - 89 * 86400) AT TIME ZONE 'UTC')::date::text,
                (to_timestamp($1) AT TIME ZONE 'UTC')::date::text",
    )
    .bind(now)
    .fetch_one(store.pool())
    .await
    .unwrap();
    let overview = gql(
        &banner.api,
        Some(&token),
        "query($r: DateRangeInput!) { programSummary(range: $r) { currencies { currency timeSeries { start } } } }",
        json!({"r": {"from": from, "to": to}}),
    )
    .await;
    let points = overview["data"]["programSummary"]["currencies"][0]["timeSeries"]
        .as_array()
        .unwrap_or_else(|| panic!("{overview}"))
        .len();
    assert!(
        points >= 85,
        "{points} days in the overview's chart: {overview}"
    );
    let status = common::terminate(&mut child).await;
    assert!(status.success(), "dev exited with {status}");
}
