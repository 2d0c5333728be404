//! Accounts and access: signing in, and a cardholder reaching nothing but their own cards by
//! any path (query by id, activity, authorization, disputes, subscription, admin operations).

#![allow(clippy::unwrap_used)]

mod common;

use common::{PASSWORD, TestApi, code, next_message, subscribe};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test]
async fn sign_in_checks_the_password_and_rate_limits_failures() {
    let api = TestApi::start(&["--login-attempts-per-account", "3"]).await;
    let login = "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { token expiresAt user { email role cardholderIds } } }";
    let ok = api
        .gql(
            None,
            login,
            json!({"e": "ALICE@example.com", "p": PASSWORD}),
        )
        .await;
    assert_eq!(ok["data"]["login"]["user"]["role"], "CARDHOLDER");
    assert_eq!(
        ok["data"]["login"]["user"]["cardholderIds"],
        json!([api.alice_holder])
    );
    assert!(
        ok["data"]["login"]["expiresAt"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    for _ in 0..3 {
        let bad = api
            .gql(
                None,
                login,
                json!({"e": "alice@example.com", "p": "wrong password!"}),
            )
            .await;
        assert_eq!(code(&bad), "UNAUTHENTICATED");
    }
    // The fourth attempt is refused before the password is looked at, even the right one.
    let limited = api
        .gql(
            None,
            login,
            json!({"e": "alice@example.com", "p": PASSWORD}),
        )
        .await;
    assert_eq!(code(&limited), "RATE_LIMITED");
    assert!(
        limited["errors"][0]["extensions"]["retryAfterSeconds"]
            .as_u64()
            .unwrap()
            >= 1
    );
    // Other accounts are not affected; unknown emails get the same answer as wrong passwords.
    assert!(
        api.gql(None, login, json!({"e": "bob@example.com", "p": PASSWORD}))
            .await["data"]["login"]["token"]
            .is_string()
    );
    assert_eq!(
        code(
            &api.gql(
                None,
                login,
                json!({"e": "nobody@example.com", "p": PASSWORD})
            )
            .await
        ),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn without_a_valid_token_nothing_is_visible() {
    let api = TestApi::start(&[]).await;
    let card = &api.cards_of(&api.alice_holder)[0];
    for token in [
        None,
        Some("garbage"),
        Some("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ."),
    ] {
        let response = api
            .gql(
                token,
                "query($id: ID!) { card(id: $id) { id } }",
                json!({"id": card}),
            )
            .await;
        assert_eq!(code(&response), "UNAUTHENTICATED", "{token:?}");
        assert_eq!(
            code(
                &api.gql(token, "{ viewer { user { email } } }", json!({}))
                    .await
            ),
            "UNAUTHENTICATED"
        );
    }
}

#[tokio::test]
async fn a_cardholder_sees_only_their_own_cards_by_every_path() {
    let api = TestApi::start(&[]).await;
    let alice = api.login("alice@example.com").await;
    let own = &api.cards_of(&api.alice_holder)[0];
    let other = &api.cards_of(&api.bob_holder)[0];

    let viewer = api
        .gql(
            Some(&alice),
            "{ viewer { cards { nodes { id } totalCount } cardholders { nodes { id } } } }",
            json!({}),
        )
        .await;
    let ids: Vec<&str> = viewer["data"]["viewer"]["cards"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let mut expected: Vec<&str> = api
        .cards_of(&api.alice_holder)
        .iter()
        .map(String::as_str)
        .collect();
    expected.sort_unstable();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, expected);
    assert_eq!(
        viewer["data"]["viewer"]["cards"]["totalCount"],
        json!(expected.len())
    );
    assert_eq!(
        viewer["data"]["viewer"]["cardholders"]["nodes"],
        json!([{"id": api.alice_holder}])
    );

    // Own card: fine.
    assert_eq!(
        api.gql(
            Some(&alice),
            "query($id: ID!) { card(id: $id) { id } }",
            json!({"id": own})
        )
        .await["data"]["card"]["id"],
        json!(own)
    );
    // Someone else's card, by every route: NOT_FOUND, never the data.
    let card = api
        .gql(
            Some(&alice),
            "query($id: ID!) { card(id: $id) { id last4 } }",
            json!({"id": other}),
        )
        .await;
    assert_eq!(code(&card), "NOT_FOUND");
    assert_eq!(card["data"], Value::Null);
    let activity = api
        .gql(
            Some(&alice),
            "query($id: ID!) { card(id: $id) { activity { edges { node { id } } } } }",
            json!({"id": other}),
        )
        .await;
    assert_eq!(code(&activity), "NOT_FOUND");
    let disputes = api
        .gql(
            Some(&alice),
            "query($id: ID!) { disputes(cardId: $id) { nodes { id } } }",
            json!({"id": other}),
        )
        .await;
    assert_eq!(code(&disputes), "NOT_FOUND");
    // An authorization of Bob's card, found through Bob.
    let bob = api.login("bob@example.com").await;
    let bobs = api
        .gql(
            Some(&bob),
            "query($id: ID!) { card(id: $id) { activity(first: 1) { edges { node { id } } } } }",
            json!({"id": other}),
        )
        .await;
    let auth_id = bobs["data"]["card"]["activity"]["edges"][0]["node"]["id"]
        .as_str()
        .expect("bob's card has activity")
        .to_owned();
    assert_eq!(
        api.gql(
            Some(&bob),
            "query($id: ID!) { authorization(id: $id) { id } }",
            json!({"id": auth_id})
        )
        .await["data"]["authorization"]["id"],
        json!(auth_id)
    );
    let stolen = api
        .gql(
            Some(&alice),
            "query($id: ID!) { authorization(id: $id) { id merchant { name } } }",
            json!({"id": auth_id}),
        )
        .await;
    assert_eq!(code(&stolen), "NOT_FOUND");
    // A card that does not exist answers exactly the same.
    let missing = api
        .gql(
            Some(&alice),
            "query($id: ID!) { card(id: $id) { id } }",
            json!({"id": "ic_doesnotexist"}),
        )
        .await;
    assert_eq!(
        missing["errors"][0]["message"],
        card["errors"][0]["message"]
    );

    // Admin-only operations.
    for query in [
        "{ users { nodes { email } } }",
        "{ policy { version } }",
        "{ cardholders { nodes { id } } }",
    ] {
        assert_eq!(
            code(&api.gql(Some(&alice), query, json!({})).await),
            "FORBIDDEN",
            "{query}"
        );
    }
    // Every admin operation: FORBIDDEN to a cardholder, UNAUTHENTICATED without a token.
    for operation in [
        "{ invitations { nodes { id } } }",
        "{ deadLetters { id reason } }",
        "{ auditLog { id actor action } }",
        "{ events { id payload } }",
        "{ eventTypes }",
        "{ pipelineHealth { deadLettersWaiting } }",
        "{ programSummary(range: {from: \"2026-01-01\", to: \"2026-01-07\"}) { approved } }",
        "mutation { redriveDeadLetters(input: {deadLetterIds: [\"1\"]}) { deadLetters { id } } }",
        "mutation { inviteUser(input: {email: \"mallory@example.com\", role: ADMIN}) { token } }",
        "mutation { revokeInvitation(input: {invitationId: \"1\"}) { invitation { id } } }",
        "mutation { setUserRole(input: {userId: \"2\", role: ADMIN}) { user { id } } }",
        "mutation { setUserCardholders(input: {userId: \"2\", cardholderIds: [\"ich_x\"]}) { user { id } } }",
        "mutation { disableUser(input: {userId: \"1\"}) { user { id } } }",
        "mutation { enableUser(input: {userId: \"2\"}) { user { id } } }",
        "mutation { resetPassword(input: {userId: \"1\"}) { token } }",
        "mutation { deleteUser(input: {userId: \"1\"}) { deletedUserId } }",
        "mutation { updatePolicy(input: {policy: {}}) { policy { version } } }",
    ] {
        assert_eq!(
            code(&api.gql(Some(&alice), operation, json!({})).await),
            "FORBIDDEN",
            "{operation}"
        );
        assert_eq!(
            code(&api.gql(None, operation, json!({})).await),
            "UNAUTHENTICATED",
            "{operation}"
        );
    }
    for operation in [
        "mutation { logout(input: {}) { ended } }",
        "mutation { changePassword(input: {currentPassword: \"x\", newPassword: \"long enough password\"}) { token } }",
    ] {
        assert_eq!(
            code(&api.gql(None, operation, json!({})).await),
            "UNAUTHENTICATED",
            "{operation}"
        );
    }
    // Oversized or malformed input to the public and admin account operations.
    let long_token = "a".repeat(200);
    let accept = api
        .gql(
            None,
            "mutation($t: String!) { acceptInvitation(input: {token: $t, password: \"long enough password\"}) { token } }",
            json!({"t": long_token}),
        )
        .await;
    assert_eq!(code(&accept), "NOT_FOUND");
    let preview = api
        .gql(
            None,
            "query($t: String!) { invitation(token: $t) { email } }",
            json!({"t": long_token}),
        )
        .await;
    assert_eq!(code(&preview), "NOT_FOUND");
    let huge_password = api
        .gql(
            None,
            "mutation($p: String!) { acceptInvitation(input: {token: \"abc\", password: $p}) { token } }",
            json!({"p": "p".repeat(2000)}),
        )
        .await;
    assert_eq!(code(&huge_password), "BAD_USER_INPUT");

    // The admin sees everything.
    let admin = api.login("admin@example.com").await;
    assert_eq!(
        api.gql(
            Some(&admin),
            "query($id: ID!) { card(id: $id) { id } }",
            json!({"id": other})
        )
        .await["data"]["card"]["id"],
        json!(other)
    );
    let holders: Vec<String> = (0..1001).map(|i| format!("ich_{i}")).collect();
    let too_many = api
        .gql(
            Some(&admin),
            "mutation($h: [ID!]!) { setUserCardholders(input: {userId: \"2\", cardholderIds: $h}) { user { id } } }",
            json!({"h": holders}),
        )
        .await;
    assert_eq!(code(&too_many), "BAD_USER_INPUT");
    for email in ["not-an-email", &format!("{}@example.com", "a".repeat(250))] {
        let invite = api
            .gql(
                Some(&admin),
                "mutation($e: String!) { inviteUser(input: {email: $e, role: CARDHOLDER}) { token } }",
                json!({"e": email}),
            )
            .await;
        assert_eq!(code(&invite), "BAD_USER_INPUT", "{email}");
    }
    let unknown = api
        .gql(
            Some(&admin),
            "mutation { disableUser(input: {userId: \"999999\"}) { user { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&unknown), "NOT_FOUND");
    let users = api
        .gql(
            Some(&admin),
            "{ users { nodes { email role } totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(users["data"]["users"]["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(users["data"]["users"]["totalCount"], 3);
}

/// A new authorization on `card`, newer than everything seeded, folded as the aggregator
/// folds it (the NOTIFY that feeds subscriptions included): a copy of one of the card's own
/// `issuing_authorization.created` events under new ids, so the card and cardholder it
/// embeds are the card's own.
async fn authorize(api: &TestApi, card: &str, authorization: &str, created: i64) {
    let template = api
        .events
        .iter()
        .map(|e| serde_json::from_slice::<Value>(&e.body).unwrap())
        .find(|e| {
            e["type"] == "issuing_authorization.created"
                && e["data"]["object"]["card"]["id"] == card
        })
        .unwrap_or_else(|| panic!("no authorization of {card} among the seeded events"));
    let mut event = template;
    event["id"] = json!(format!("evt_{authorization}"));
    event["created"] = json!(created);
    event["data"]["object"]["id"] = json!(authorization);
    event["data"]["object"]["created"] = json!(created);
    let body = event.to_string();
    let incoming = cardstream_store::IncomingEvent::parse(body.as_bytes(), 0, 0).unwrap();
    api.store
        .apply_batch(
            "test",
            "test",
            &[incoming],
            &[cardstream_store::Position {
                partition: 0,
                next_offset: 1,
            }],
        )
        .await
        .unwrap();
}

/// A card of `holder` with an authorization among the seeded events.
fn card_with_activity(api: &TestApi, holder: &str) -> String {
    api.cards_of(holder)
        .iter()
        .find(|card| {
            api.events.iter().any(|e| {
                let e: Value = serde_json::from_slice(&e.body).unwrap();
                e["type"] == "issuing_authorization.created"
                    && e["data"]["object"]["card"]["id"] == card.as_str()
            })
        })
        .unwrap_or_else(|| panic!("no card of {holder} has activity"))
        .clone()
}

#[tokio::test]
async fn a_subscription_delivers_exactly_its_cards_new_authorizations_and_refuses_others() {
    let api = TestApi::start(&[]).await;
    let alice = api.login("alice@example.com").await;
    let own = card_with_activity(&api, &api.alice_holder);
    let other = card_with_activity(&api, &api.bob_holder);

    // Someone else's card: the operation ends at once with NOT_FOUND and no data.
    let mut ws = subscribe(&api, &alice, &other).await;
    let refused = next_message(&mut ws, std::time::Duration::from_secs(5)).await;
    let refused = refused.unwrap_or_else(|| panic!("no answer to a subscription to {other}"));
    assert_eq!(refused["type"], "next", "{refused}");
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{refused}"
    );
    assert_eq!(refused["payload"]["data"], Value::Null, "{refused}");
    let complete = next_message(&mut ws, std::time::Duration::from_secs(5)).await;
    assert_eq!(complete, Some(json!({"id": "1", "type": "complete"})));

    // Own card: each new authorization of it arrives, with the card's id, in order; another
    // card's never does. The subscription starts listening some time after `subscribe` was
    // sent (the protocol says nothing when), so authorizations go in one per round until the
    // first arrives; from then on every one must.
    let mut ws = subscribe(&api, &alice, &own).await;
    let created = common::START + 1_000_000;
    let mut sent: Vec<String> = Vec::new();
    let mut received: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while received.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing arrived for {sent:?}"
        );
        let n = i64::try_from(sent.len()).unwrap();
        let id = format!("iauth_live_{n}");
        authorize(&api, &other, &format!("iauth_others_{n}"), created + 2 * n).await;
        authorize(&api, &own, &id, created + 2 * n + 1).await;
        sent.push(id);
        if let Some(message) = next_message(&mut ws, std::time::Duration::from_millis(500)).await {
            received.push(activity(&message, &own));
        }
    }
    for n in 100..103 {
        let id = format!("iauth_live_{n}");
        authorize(&api, &other, &format!("iauth_others_{n}"), created + 2 * n).await;
        authorize(&api, &own, &id, created + 2 * n + 1).await;
        sent.push(id);
    }
    // Until the last one sent arrives: anything else (a repeat, the other card's) comes first.
    while received.last() != sent.last() {
        let message = next_message(&mut ws, std::time::Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("{sent:?} sent, only {received:?} arrived"));
        received.push(activity(&message, &own));
    }
    // Exactly those sent since the subscription started listening, each once, in order.
    let from = sent
        .iter()
        .position(|id| *id == received[0])
        .unwrap_or_else(|| panic!("{} was never sent: {sent:?}", received[0]));
    assert_eq!(received, sent[from..], "sent {sent:?}");
}

/// The authorization id of an activity event of `card`; panics on anything else.
fn activity(message: &Value, card: &str) -> String {
    assert_eq!(message["type"], "next", "{message}");
    assert!(message["payload"]["errors"].is_null(), "{message}");
    let event = &message["payload"]["data"]["activity"];
    assert_eq!(event["cardId"], card, "an event of another card: {message}");
    event["authorization"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no authorization id in {message}"))
        .to_owned()
}

/// The messages of a socket that sends `connection_init` with a bad token, until it closes,
/// and its close frame.
async fn refused_init(api: &TestApi, protocol: &str) -> (Vec<Value>, Option<(u16, String)>) {
    let mut request = api.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": {"authorization": "Bearer garbage"}})
            .to_string(),
    ))
    .await
    .unwrap();
    let mut messages = Vec::new();
    let mut close = None;
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await
    {
        match message {
            Message::Text(text) => messages.push(serde_json::from_str::<Value>(&text).unwrap()),
            Message::Close(frame) => {
                close = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                break;
            }
            _ => {}
        }
    }
    (messages, close)
}

#[tokio::test]
async fn a_refused_connection_init_carries_its_code() {
    let api = TestApi::start(&[]).await;
    // The older protocol has a message for it: `connection_error`, with the code.
    let (messages, _) = refused_init(&api, "graphql-ws").await;
    let error = messages
        .iter()
        .find(|m| m["type"] == "connection_error")
        .unwrap_or_else(|| panic!("no connection_error in {messages:?}"));
    assert_eq!(error["payload"]["extensions"]["code"], "UNAUTHENTICATED");
    // graphql-transport-ws has none: it closes with 4403 Forbidden, the reason led by the code.
    let (messages, close) = refused_init(&api, "graphql-transport-ws").await;
    assert!(messages.iter().all(|m| m["type"] != "connection_ack"));
    let (code, reason) = close.expect("a close frame");
    assert_eq!(code, 4403);
    assert!(reason.starts_with("UNAUTHENTICATED"), "{reason}");
}
