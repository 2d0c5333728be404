//! Stripe Connect: the account endpoint's and the Connect endpoint's secrets side by side, on
//! a real broker. Each endpoint's events are accepted with its own secret only: a connected
//! account's event (with `account`) signed with the account endpoint's secret, or a platform
//! event signed with the Connect endpoint's, is refused and never reaches the topic.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cardstream_kafka::headers;
use cardstream_testbed::{Broker, HttpResponse, Storage, read_to_end};
use common::{
    PARTITIONS, READ_TIMEOUT, SECRET, TestGateway, authorization_request, from_connected_account,
    now, sign_with, transaction_event,
};

const CONNECT_SECRET: &str = "whsec_test_connect_endpoint";
const ACCOUNT: &str = "acct_1032D82eZvKYlo2C";
const EVENTS: &str = "/webhooks/stripe";
const AUTHORIZATION: &str = "/webhooks/stripe/authorization";

async fn post_with(gw: &TestGateway, path: &str, secret: &str, body: &str) -> HttpResponse {
    let header = sign_with(secret, body, now());
    gw.post(path, &[("stripe-signature", &header)], body).await
}

#[tokio::test]
async fn each_endpoints_events_are_accepted_with_its_own_secret_only() {
    // SQLite storage: read_to_end must see every record (see webhooks.rs).
    let broker = Broker::start(Storage::Sqlite).await;
    let mut gw = TestGateway::start(&broker, &["--connect-webhook-secrets", CONNECT_SECRET]).await;

    // (a) A connected account's event, signed with the Connect endpoint's secret.
    let connected = from_connected_account(&transaction_event("evt_connect_ok", "ic_1"), ACCOUNT);
    let response = post_with(&gw, EVENTS, CONNECT_SECRET, &connected).await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    // (b) The platform's own event, signed with the account endpoint's secret.
    let platform = transaction_event("evt_platform_ok", "ic_2");
    let response = post_with(&gw, EVENTS, SECRET, &platform).await;
    assert_eq!(response.status, 200, "{:?}", response.body);

    // (c) A connected account's event signed with the account endpoint's secret.
    let stray = from_connected_account(&transaction_event("evt_connect_stray", "ic_3"), ACCOUNT);
    let response = post_with(&gw, EVENTS, SECRET, &stray).await;
    assert_eq!(response.status, 400, "{:?}", response.body);
    let error = &response.json()["error"];
    assert_eq!(error["code"], "account_event_with_account", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("signed with the account endpoint's secret but carries `account`")
            && message.contains(ACCOUNT),
        "{message}"
    );
    // (d) A platform event signed with the Connect endpoint's secret.
    let stray = transaction_event("evt_platform_stray", "ic_4");
    let response = post_with(&gw, EVENTS, CONNECT_SECRET, &stray).await;
    assert_eq!(response.status, 400, "{:?}", response.body);
    let error = &response.json()["error"];
    assert_eq!(error["code"], "connect_event_without_account", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("signed with a Connect endpoint secret but carries no `account`"),
        "{error}"
    );
    // An `account` that is no account id is refused too.
    let odd = from_connected_account(&transaction_event("evt_connect_odd", "ic_5"), "cus_1");
    let response = post_with(&gw, EVENTS, CONNECT_SECRET, &odd).await;
    assert_eq!(
        response.json()["error"]["code"],
        "connect_event_bad_account"
    );

    // Authorization requests follow the same rule: a connected account's card is decided with
    // the Connect endpoint's secret, and refused with the account endpoint's.
    let request = authorization_request("evt_auth_connect", 700, "usd", "bakeries");
    let request = from_connected_account(&request, ACCOUNT);
    let response = post_with(&gw, AUTHORIZATION, CONNECT_SECRET, &request).await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    assert_eq!(response.json()["approved"], true, "{:?}", response.body);
    let stray = from_connected_account(
        &authorization_request("evt_auth_stray", 700, "usd", "bakeries"),
        ACCOUNT,
    );
    let response = post_with(&gw, AUTHORIZATION, SECRET, &stray).await;
    assert_eq!(response.status, 400, "{:?}", response.body);
    assert_eq!(
        response.json()["error"]["code"],
        "account_event_with_account"
    );
    let stray = authorization_request("evt_auth_stray_2", 700, "usd", "bakeries");
    let response = post_with(&gw, AUTHORIZATION, CONNECT_SECRET, &stray).await;
    assert_eq!(response.status, 400, "{:?}", response.body);
    assert_eq!(
        response.json()["error"]["code"],
        "connect_event_without_account"
    );

    let rejected = |route: &str, reason: &str| {
        gw.metric(
            "cardstream_webhook_rejections_total",
            &[("route", route), ("reason", reason)],
        )
    };
    assert_eq!(rejected(EVENTS, "account_event_with_account"), 1.0);
    assert_eq!(rejected(EVENTS, "connect_event_without_account"), 1.0);
    assert_eq!(rejected(EVENTS, "connect_event_bad_account"), 1.0);
    assert_eq!(rejected(AUTHORIZATION, "account_event_with_account"), 1.0);
    assert_eq!(
        rejected(AUTHORIZATION, "connect_event_without_account"),
        1.0
    );
    // They are well signed: not signature failures.
    assert_eq!(gw.metric("cardstream_signature_failures_total", &[]), 0.0);

    // Only the accepted events are on the topic: the two webhooks and the decided request.
    let records = read_to_end(&broker.brokers(), &gw.topic, PARTITIONS, 3, READ_TIMEOUT).await;
    let ids: BTreeSet<&str> = records
        .iter()
        .map(|r| r.header(headers::EVENT_ID).unwrap())
        .collect();
    assert_eq!(
        ids,
        BTreeSet::from(["evt_connect_ok", "evt_platform_ok", "evt_auth_connect"]),
    );
    assert_eq!(records.len(), 3, "{ids:?}");
    let stored = records
        .iter()
        .find(|r| r.header(headers::EVENT_ID) == Some("evt_connect_ok"))
        .unwrap();
    assert_eq!(stored.payload, connected.as_bytes());
    gw.stop().await;
}

/// The Connect secrets file is re-read like the account one: a secret added is in force, one
/// removed is not, and an emptied file (being rewritten) is refused while the secrets in force
/// stay. The account endpoint's secret works throughout.
#[tokio::test]
async fn the_connect_secrets_file_rotates_without_a_restart() {
    let broker = Broker::start(Storage::Memory).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("connect-webhook-secrets");
    let (old, new) = ("whsec_connect_old", "whsec_connect_new");
    std::fs::write(&path, format!("{old}\n")).unwrap();
    let mut gw = TestGateway::start(
        &broker,
        &[
            "--connect-webhook-secrets-file",
            path.to_str().unwrap(),
            "--webhook-secrets-reload-interval",
            "100ms",
        ],
    )
    .await;
    let mut sent = 0;
    let mut status_with = async |secret: &str| {
        sent += 1;
        let event = transaction_event(&format!("evt_rotation_{sent}"), "ic_1");
        let event = if secret == SECRET {
            event
        } else {
            from_connected_account(&event, ACCOUNT)
        };
        post_with(&gw, EVENTS, secret, &event).await.status
    };
    assert_eq!(status_with(old).await, 200);
    assert_eq!(status_with(new).await, 400);

    std::fs::write(&path, format!("{old}\n{new}\n")).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        status_with(new).await,
        200,
        "the added secret is not in force"
    );
    assert_eq!(status_with(old).await, 200);
    std::fs::write(&path, format!("{new}\n")).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        status_with(old).await,
        400,
        "the removed secret is still accepted"
    );
    assert_eq!(status_with(new).await, 200);
    assert_eq!(status_with(SECRET).await, 200);

    // Emptied: refused, although the account endpoint still has a secret.
    std::fs::File::create(&path).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while gw.metric(
        "cardstream_webhook_secret_reloads_total",
        &[("outcome", "invalid")],
    ) < 1.0
    {
        assert!(Instant::now() < deadline, "the emptied file was not read");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status_with(new).await, 200);
    assert_eq!(status_with(SECRET).await, 200);
    assert_eq!(
        gw.metric(
            "cardstream_webhook_secret_reloads_total",
            &[("outcome", "ok")]
        ),
        2.0
    );
    gw.stop().await;
}
