//! Websockets against `cardstream api` as it runs: a socket follows its session (closed with
//! 4403 when it ends, 4401 when the token expires), every operation over it is authorized as
//! of now, and a socket's demands are bounded (init within 5 s, 20 subscriptions, 64 KiB).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::api::{
    ADMIN, ALICE, ApiProcess, ROOT, Received, Seeded, acknowledged, operation, receive, send,
};
use serde_json::json;

const ADMIN_READ: &str = "{ users(first: 5) { nodes { email role } } }";

/// Waits up to `timeout` for the socket to close; its code.
async fn closed_within(socket: &mut common::api::Socket, timeout: Duration) -> Option<u16> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match receive(socket, deadline - Instant::now()).await {
            Some(Received::Closed(code, _)) => return code,
            Some(Received::Json(_)) => continue,
            None => break,
        }
    }
    panic!("the socket was still open after {timeout:?}");
}

#[tokio::test]
async fn a_demoted_admin_loses_admin_reads_over_an_open_socket_and_the_socket_closes() {
    let seeded = Seeded::new().await;
    let api = ApiProcess::start(&seeded, &[]).await;
    let admin = api.login(ADMIN).await;
    let root = api.login(ROOT).await;

    let mut socket = api.socket(Some(&root)).await;
    acknowledged(&mut socket).await;
    match operation(&mut socket, "1", ADMIN_READ).await {
        Received::Json(v) => assert!(v["payload"]["data"]["users"]["nodes"].is_array(), "{v}"),
        other => panic!("an admin read over the socket: {other:?}"),
    }

    let users = api
        .gql(
            Some(&admin),
            "{ users(first: 10) { nodes { id email } } }",
            json!({}),
        )
        .await;
    let root_id = users["data"]["users"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == ROOT)
        .unwrap()["id"]
        .clone();
    let demoted = api
        .gql(
            Some(&admin),
            "mutation($id: ID!) { setUserRole(input: {userId: $id, role: CARDHOLDER}) { user { role } } }",
            json!({"id": root_id}),
        )
        .await;
    assert_eq!(
        demoted["data"]["setUserRole"]["user"]["role"], "CARDHOLDER",
        "{demoted}"
    );
    let demoted_at = Instant::now();

    // The very next admin read over the same socket is refused (or the socket is already
    // closed): never answered with data.
    match operation(&mut socket, "2", ADMIN_READ).await {
        Received::Json(v) => {
            assert!(
                v["payload"]["data"].is_null() || v["payload"]["data"]["users"].is_null(),
                "answered after the demotion: {v}"
            );
            let code = v["payload"]["errors"][0]["extensions"]["code"]
                .as_str()
                .or_else(|| v["payload"][0]["extensions"]["code"].as_str())
                .unwrap_or_default();
            assert!(["UNAUTHENTICATED", "FORBIDDEN"].contains(&code), "{v}");
            let code = closed_within(&mut socket, Duration::from_secs(2)).await;
            assert_eq!(code, Some(4403));
        }
        Received::Closed(code, reason) => assert_eq!(code, Some(4403), "{reason}"),
    }
    eprintln!(
        "the demoted admin's socket closed {:?} after the demotion",
        demoted_at.elapsed()
    );
    assert!(demoted_at.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn sockets_close_when_their_session_ends_or_their_token_expires() {
    let seeded = Seeded::new().await;
    let api = ApiProcess::start(&seeded, &[]).await;

    // Logout over HTTP closes the subscription socket of that session with 4403.
    let alice = api.login(ALICE).await;
    let mut socket = api.socket(Some(&alice)).await;
    acknowledged(&mut socket).await;
    let card: String = sqlx::query_scalar("SELECT id FROM cards WHERE cardholder_id = $1 LIMIT 1")
        .bind(&seeded.alice_holder)
        .fetch_one(seeded.store.pool())
        .await
        .unwrap();
    send(
        &mut socket,
        json!({"id": "live", "type": "subscribe", "payload": {"query": "subscription($c: ID!) { activity(cardId: $c) { cardId } }", "variables": {"c": card}}}),
    )
    .await;
    let logout = api
        .gql(
            Some(&alice),
            "mutation { logout(input: {}) { ended } }",
            json!({}),
        )
        .await;
    assert_eq!(logout["data"]["logout"]["ended"], true, "{logout}");
    let started = Instant::now();
    assert_eq!(
        closed_within(&mut socket, Duration::from_secs(2)).await,
        Some(4403)
    );
    eprintln!("logout closed the socket in {:?}", started.elapsed());

    // A token that expires closes its socket with 4401.
    let short = ApiProcess::start(&seeded, &["--token-ttl", "3s"]).await;
    let token = short.login(ALICE).await;
    let mut socket = short.socket(Some(&token)).await;
    acknowledged(&mut socket).await;
    assert_eq!(
        closed_within(&mut socket, Duration::from_secs(6)).await,
        Some(4401)
    );

    // A refused connection_init closes with 4403; one that never comes, with 4408 after 5 s.
    let mut socket = api.socket(Some("not-a-token")).await;
    assert_eq!(
        closed_within(&mut socket, Duration::from_secs(2)).await,
        Some(4403)
    );
    let mut silent = api.socket(None).await;
    let started = Instant::now();
    assert_eq!(
        closed_within(&mut silent, Duration::from_secs(8)).await,
        Some(4408)
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(4500),
        "closed after {waited:?}"
    );
}

#[tokio::test]
async fn a_socket_holds_at_most_20_subscriptions_and_64_kib_messages() {
    let seeded = Seeded::new().await;
    let api = ApiProcess::start(&seeded, &[]).await;
    let alice = api.login(ALICE).await;
    let card: String = sqlx::query_scalar("SELECT id FROM cards WHERE cardholder_id = $1 LIMIT 1")
        .bind(&seeded.alice_holder)
        .fetch_one(seeded.store.pool())
        .await
        .unwrap();
    let mut socket = api.socket(Some(&alice)).await;
    acknowledged(&mut socket).await;
    let subscribe = |id: usize| json!({"id": id.to_string(), "type": "subscribe", "payload": {"query": "subscription($c: ID!) { activity(cardId: $c) { cardId } }", "variables": {"c": card}}});
    for id in 0..20 {
        send(&mut socket, subscribe(id)).await;
    }
    send(&mut socket, subscribe(20)).await;
    match receive(&mut socket, Duration::from_secs(5)).await {
        Some(Received::Json(v)) => {
            assert_eq!(v["id"], "20", "{v}");
            assert_eq!(v["type"], "error", "{v}");
            assert_eq!(
                v["payload"][0]["extensions"]["code"], "TOO_MANY_SUBSCRIPTIONS",
                "{v}"
            );
        }
        other => panic!("the 21st subscription: {other:?}"),
    }
    // Completing one frees a place.
    send(&mut socket, json!({"id": "3", "type": "complete"})).await;
    send(&mut socket, subscribe(21)).await;
    while let Some(message) = receive(&mut socket, Duration::from_millis(500)).await {
        match message {
            Received::Json(v) if v["id"] == "3" && v["type"] == "complete" => {}
            other => panic!("after a completion, the next subscription got {other:?}"),
        }
    }

    // A message over 64 KiB ends the connection.
    let big = json!({"id": "big", "type": "subscribe", "payload": {"query": format!("{{ viewer {{ user {{ email }} }} }} #{}", "x".repeat(70 * 1024))}});
    send(&mut socket, big).await;
    let code = closed_within(&mut socket, Duration::from_secs(2)).await;
    eprintln!("a 70 KiB message closed the socket with {code:?}");
    // The server is unharmed.
    let me = api
        .gql(Some(&alice), "{ viewer { user { email } } }", json!({}))
        .await;
    assert_eq!(me["data"]["viewer"]["user"]["email"], ALICE);
}
