//! Graceful shutdown: stop accepting, finish what is in flight, flush the producer.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use cardstream_testbed::{Broker, Storage, read_records};
use common::{PARTITIONS, READ_TIMEOUT, TestGateway, now, sign, transaction_event};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn a_request_in_flight_when_shutdown_starts_still_completes() {
    let broker = Broker::start(Storage::Memory).await;
    // One request at a time: while the half-sent one below holds the only permit, any other
    // is shed with 503, which is how the test knows the handler is running without sleeping.
    let mut gw = TestGateway::start(&broker, &["--max-concurrent-requests", "1"]).await;
    let addr = gw.running.as_ref().unwrap().addr;
    let body = transaction_event("evt_in_flight", "ic_1");
    let header = sign(&body, now());

    // Send the headers and half the body, so the handler is running and waiting for the rest.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /webhooks/stripe HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\nstripe-signature: {header}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let probe = gw.post("/webhooks/stripe", &[], "{}").await;
        if probe.status == 503 {
            assert_eq!(probe.json()["error"]["code"], "overloaded");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the half-sent request never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    gw.shutdown.cancel();
    // No new connections once shutdown began: the test gateway's --shutdown-delay is 0 s, and
    // 3 s is well short of the 5 s default a gateway ignoring it would wait.
    let deadline = Instant::now() + Duration::from_secs(3);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "still accepting 3 s after shutdown began"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    stream.write_all(rest).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("{\"received\":true}"), "{response}");

    gw.running.take().unwrap().wait().await.unwrap();
    let records = read_records(&broker.brokers(), &gw.topic, PARTITIONS, 1, READ_TIMEOUT).await;
    assert_eq!(records.len(), 1);
}

#[tokio::test]
async fn authorization_requests_answered_before_shutdown_reach_the_topic() {
    let broker = Broker::start(Storage::Memory).await;
    let mut gw = TestGateway::start(&broker, &[]).await;
    for i in 0..25 {
        let body = common::authorization_request(&format!("evt_flush_{i}"), 700, "usd", "bakeries");
        assert_eq!(
            gw.post_signed("/webhooks/stripe/authorization", &body)
                .await
                .status,
            200
        );
    }
    // Stop at once: the background produces must be flushed, not dropped.
    gw.stop().await;
    let records = read_records(&broker.brokers(), &gw.topic, PARTITIONS, 25, READ_TIMEOUT).await;
    assert_eq!(records.len(), 25);
}
