//! `POST /webhooks/stripe` against a real broker.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use cardstream_kafka::headers;
use cardstream_testbed::{Broker, Storage, read_records, read_to_end};
use common::{PARTITIONS, READ_TIMEOUT, TestGateway, now, sign, transaction_event};

#[tokio::test]
async fn a_signed_event_is_stored_byte_for_byte_with_key_and_headers() {
    // SQLite storage: the memory engine reports too low an end after a multi-record batch, so
    // a duplicate batched with the event would not be read back.
    let broker = Broker::start(Storage::Sqlite).await;
    let mut gw = TestGateway::start(&broker, &[]).await;
    // Odd but valid JSON formatting must survive untouched: the topic holds Stripe's bytes.
    let body = transaction_event("evt_bytes_1", "ic_card_42").replace(",\"", ",  \"");
    let response = gw.post_signed("/webhooks/stripe", &body).await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    assert_eq!(response.json(), serde_json::json!({"received": true}));

    // Everything on the topic, not just the first record: a second copy of the event (a
    // produce retried by hand, or sent twice) would be a second record here.
    let records = read_to_end(&broker.brokers(), &gw.topic, PARTITIONS, 1, READ_TIMEOUT).await;
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(record.payload, body.as_bytes());
    assert_eq!(record.key.as_deref(), Some(b"ic_card_42".as_slice()));
    assert_eq!(record.header(headers::EVENT_ID), Some("evt_bytes_1"));
    assert_eq!(
        record.header(headers::EVENT_TYPE),
        Some("issuing_transaction.created")
    );
    assert_eq!(record.header(headers::EVENT_CREATED), Some("1721948550"));
    let received: i64 = record
        .header(headers::RECEIVED_AT_MS)
        .unwrap()
        .parse()
        .unwrap();
    assert!((received / 1000 - now()).abs() < 60);
    assert_eq!(gw.metric("cardstream_events_accepted_total", &[]), 1.0);
    gw.stop().await;
}

#[tokio::test]
async fn one_cards_events_share_a_partition() {
    let broker = Broker::start(Storage::Memory).await;
    let mut gw = TestGateway::start(&broker, &[]).await;
    for i in 0..12 {
        let card = if i % 2 == 0 { "ic_even" } else { "ic_odd" };
        let body = transaction_event(&format!("evt_part_{i}"), card);
        assert_eq!(gw.post_signed("/webhooks/stripe", &body).await.status, 200);
    }
    let records = read_records(&broker.brokers(), &gw.topic, PARTITIONS, 12, READ_TIMEOUT).await;
    assert_eq!(records.len(), 12);
    for card in [b"ic_even".as_slice(), b"ic_odd".as_slice()] {
        let partitions: std::collections::BTreeSet<i32> = records
            .iter()
            .filter(|r| r.key.as_deref() == Some(card))
            .map(|r| r.partition)
            .collect();
        assert_eq!(partitions.len(), 1, "{card:?} spread over {partitions:?}");
        // And in the order they were posted.
        let ids: Vec<_> = records
            .iter()
            .filter(|r| r.key.as_deref() == Some(card))
            .map(|r| r.header(headers::EVENT_ID).unwrap().to_owned())
            .collect();
        let mut sorted = ids.clone();
        sorted.sort_by_key(|id| id.rsplit('_').next().unwrap().parse::<u32>().unwrap());
        assert_eq!(ids, sorted);
    }
    gw.stop().await;
}

#[tokio::test]
async fn each_bad_request_gets_its_own_400_and_nothing_is_stored() {
    let broker = Broker::start(Storage::Memory).await;
    let mut gw = TestGateway::start(&broker, &[]).await;
    let body = transaction_event("evt_bad", "ic_1");
    let t = now();
    let good = sign(&body, t);
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, String);
    let cases: Vec<Case<'_>> = vec![
        ("signature_missing", vec![], body.clone()),
        (
            "signature_malformed",
            vec![("stripe-signature", "v1=abc".into())],
            body.clone(),
        ),
        (
            "signature_malformed",
            vec![("stripe-signature", format!("t=soon,v1={}", "0".repeat(64)))],
            body.clone(),
        ),
        (
            "signature_mismatch",
            vec![("stripe-signature", format!("t={t},v1={}", "0".repeat(64)))],
            body.clone(),
        ),
        // A valid signature over other bytes: the body was tampered with.
        (
            "signature_mismatch",
            vec![("stripe-signature", good.clone())],
            body.replace("-1250", "-1"),
        ),
        (
            "timestamp_outside_tolerance",
            vec![("stripe-signature", sign(&body, t - 301))],
            body.clone(),
        ),
        (
            "timestamp_outside_tolerance",
            vec![("stripe-signature", sign(&body, t + 400))],
            body.clone(),
        ),
        (
            "body_not_json",
            vec![("stripe-signature", sign("not json", t))],
            "not json".into(),
        ),
        (
            "body_not_json",
            vec![("stripe-signature", sign(&body[..body.len() / 2], t))],
            body[..body.len() / 2].to_owned(),
        ),
        (
            "not_a_stripe_event",
            vec![("stripe-signature", sign("{\"hello\":1}", t))],
            "{\"hello\":1}".into(),
        ),
        (
            "not_a_stripe_event",
            vec![("stripe-signature", sign("[]", t))],
            "[]".into(),
        ),
    ];
    for (expected, headers, body) in &cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = gw.post("/webhooks/stripe", &headers, body).await;
        assert_eq!(response.status, 400, "{expected}");
        let error = &response.json()["error"];
        assert_eq!(error["code"], *expected, "{error}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(
        gw.metric(
            "cardstream_signature_failures_total",
            &[("reason", "signature_mismatch")]
        ),
        2.0
    );
    assert_eq!(
        gw.metric(
            "cardstream_signature_failures_total",
            &[("reason", "timestamp_outside_tolerance")]
        ),
        2.0
    );
    assert_eq!(
        gw.metric(
            "cardstream_webhook_rejections_total",
            &[
                ("route", "/webhooks/stripe"),
                ("reason", "not_a_stripe_event")
            ]
        ),
        2.0
    );
    // Prove the topic works, then that only the good event is in it.
    assert_eq!(
        gw.post("/webhooks/stripe", &[("stripe-signature", &good)], &body)
            .await
            .status,
        200
    );
    let records = read_records(
        &broker.brokers(),
        &gw.topic,
        common::PARTITIONS,
        2,
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(records.len(), 1, "a rejected request reached the topic");
    gw.stop().await;
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_declared_or_not() {
    let broker = Broker::start(Storage::Memory).await;
    let mut gw = TestGateway::start(&broker, &["--body-limit", "4096"]).await;
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(5000));
    let response = gw.post_signed("/webhooks/stripe", &big).await;
    assert_eq!(response.status, 413);
    assert_eq!(response.json()["error"]["code"], "body_too_large");

    // Chunked, without a Content-Length: the limit still applies while reading.
    let frames = futures_util::stream::iter((0..10).map(|_| {
        Ok::<_, std::io::Error>(http_body::Frame::data(bytes::Bytes::from(vec![b' '; 1000])))
    }));
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let request = http::Request::post(gw.url("/webhooks/stripe"))
        .header("stripe-signature", sign("x", now()))
        .body(http_body_util::StreamBody::new(frames))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 413);

    // Just under the limit is fine (and then judged on its signature).
    let small = format!("{{\"pad\":\"{}\"}}", "x".repeat(4000));
    assert_eq!(
        gw.post_signed("/webhooks/stripe", &small).await.json()["error"]["code"],
        "not_a_stripe_event"
    );
    gw.stop().await;
}

#[tokio::test]
async fn with_the_broker_down_webhooks_get_503_within_the_bound_and_never_2xx() {
    let mut broker = Broker::start(Storage::Memory).await;
    let mut gw = TestGateway::start(&broker, &["--produce-timeout", "1500ms"]).await;
    assert_eq!(
        gw.post_signed("/webhooks/stripe", &transaction_event("evt_up", "ic_1"))
            .await
            .status,
        200
    );
    broker.stop().await;

    let mut statuses = Vec::new();
    for i in 0..5 {
        let started = Instant::now();
        let response = gw
            .post_signed(
                "/webhooks/stripe",
                &transaction_event(&format!("evt_down_{i}"), "ic_1"),
            )
            .await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(2500),
            "answered after {took:?}"
        );
        statuses.push(response.status.as_u16());
        if response.status == 503 {
            assert_eq!(response.json()["error"]["code"], "broker_unavailable");
        }
    }
    assert_eq!(
        statuses,
        vec![503; 5],
        "every event sent while the broker was down must be refused"
    );
    assert!(gw.metric("cardstream_produce_failures_total", &[("path", "webhook")]) >= 5.0);
    gw.stop().await;
}

#[tokio::test]
async fn readyz_follows_the_broker() {
    // SQLite storage, so the topic is still there when the broker comes back.
    let mut broker = Broker::start(Storage::Sqlite).await;
    let mut gw = TestGateway::start(&broker, &[]).await;
    let ready = |gw: &TestGateway| {
        let url = gw.admin_url("/readyz");
        async move { get_status(&url).await }
    };
    assert!(wait_for(|| ready(&gw), 200).await, "never became ready");
    broker.stop().await;
    assert!(
        wait_for(|| ready(&gw), 503).await,
        "stayed ready with the broker down"
    );
    broker.start_again().await;
    assert!(wait_for(|| ready(&gw), 200).await, "did not recover");
    // And it produces again without a restart of its own.
    let body = transaction_event("evt_after_restart", "ic_1");
    assert_eq!(gw.post_signed("/webhooks/stripe", &body).await.status, 200);
    assert_eq!(get_status(&gw.admin_url("/healthz")).await, 200);
    gw.stop().await;
}

async fn get_status(url: &str) -> u16 {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    match client.get(url.parse().unwrap()).await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

async fn wait_for<F, Fut>(probe: F, want: u16) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if probe().await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}
