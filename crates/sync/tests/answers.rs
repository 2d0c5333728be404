//! Answers that are not a list, from a real HTTP server (the fake Stripe): the client stops at
//! once with an error naming the endpoint, never retries them, and never holds an endless
//! answer in memory.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use cardstream_sync::{StripeApi, StripeApiArgs};
use cardstream_testbed::{FakeStripe, Fault};

const KEY: &str = "rk_test_answers";

async fn list_with(body: Bytes) -> (String, usize) {
    let fake = FakeStripe::start(KEY).await;
    fake.fault_every(1, Fault::Body(body));
    let mut args = StripeApiArgs::new(fake.url(), KEY);
    args.stripe_rate = 0.0;
    let api = StripeApi::new(&args).unwrap();
    let Err(err) = api
        .list("/v1/issuing/cards", &[("limit", "100".into())], None)
        .await
    else {
        panic!("not a list, yet read as one");
    };
    (err.to_string(), fake.requests().len())
}

#[tokio::test]
async fn a_page_that_is_not_a_list_stops_naming_the_endpoint() {
    for body in [
        &b"<html>502 Bad Gateway</html>"[..],
        br#"{"object": "list", "data": [{"id": "ic_1"#,
        br#"{"object": "list", "data": 7, "has_more": false}"#,
    ] {
        let (message, requests) = list_with(Bytes::from_static(body)).await;
        assert!(message.contains("/v1/issuing/cards?limit=100"), "{message}");
        assert_eq!(requests, 1, "retried: {message}");
    }
}

#[tokio::test]
async fn an_answer_larger_than_16_mib_is_refused_not_held() {
    let mut body = br#"{"object": "list", "data": ["#.to_vec();
    body.resize(17 * 1024 * 1024, b' ');
    let (message, requests) = list_with(Bytes::from(body)).await;
    assert!(message.contains("larger than 16777216 bytes"), "{message}");
    assert!(message.contains("/v1/issuing/cards"), "{message}");
    assert_eq!(requests, 1, "retried: {message}");
}
