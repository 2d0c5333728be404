//! `node(id:)` finds every Stripe-identified object the viewer may see and nothing else;
//! statuses Stripe adds later come back as OTHER with their raw value; card lists page both
//! ways with a total.

#![allow(clippy::unwrap_used)]

mod common;

use cardstream_store::IncomingEvent;
use common::{TestApi, code};
use serde_json::{Value, json};

const NODE: &str = "query($id: ID!) { node(id: $id) { __typename id
    ... on Card { rawStatus } ... on Dispute { status rawStatus cardId } } }";

/// Applies hand-written Stripe events, as the aggregator would.
async fn apply(api: &TestApi, events: &[(&str, &str, Value)]) {
    let events: Vec<IncomingEvent> = events
        .iter()
        .map(|(id, kind, object)| {
            let body = json!({"id": id, "object": "event", "type": kind, "created": 1_764_100_000,
                "data": {"object": object}})
            .to_string();
            IncomingEvent::parse(body.as_bytes(), 0, 0).unwrap()
        })
        .collect();
    api.store.apply_batch("t", "t", &events, &[]).await.unwrap();
}

/// An id of each kind on `card`, read through the API as the admin.
async fn ids_of_card(api: &TestApi, admin: &str, card: &str) -> (String, String, String) {
    let response = api
        .gql(
            Some(admin),
            "query($id: ID!) { card(id: $id) { cardholder { id } activity(first: 100) {
                nodes { id transactions { id } } } } }",
            json!({"id": card}),
        )
        .await;
    let card = &response["data"]["card"];
    let holder = card["cardholder"]["id"].as_str().unwrap().to_owned();
    let nodes = card["activity"]["nodes"].as_array().unwrap();
    let auth = nodes[0]["id"].as_str().unwrap().to_owned();
    let transaction = nodes
        .iter()
        .find_map(|n| n["transactions"][0]["id"].as_str())
        .expect("a captured authorization")
        .to_owned();
    (holder, auth, transaction)
}

#[tokio::test]
async fn node_finds_each_kind_of_object_for_whoever_may_see_it() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;
    let alice = api.login("alice@example.com").await;
    let bobs_card = api.cards_of(&api.bob_holder)[0].clone();
    let (holder, auth, transaction) = ids_of_card(&api, &admin, &bobs_card).await;
    // A dispute on Bob's capture, with a status Stripe may add one day.
    apply(
        &api,
        &[(
            "evt_dispute_1",
            "issuing_dispute.created",
            json!({"id": "idp_test1", "object": "issuing.dispute", "amount": 1200, "currency": "usd",
                "status": "under_arbitration", "transaction": transaction, "created": 1_764_100_000}),
        )],
    )
    .await;

    for (id, typename) in [
        (bobs_card.as_str(), "Card"),
        (holder.as_str(), "Cardholder"),
        (auth.as_str(), "Authorization"),
        (transaction.as_str(), "Transaction"),
        ("idp_test1", "Dispute"),
    ] {
        let response = api.gql(Some(&admin), NODE, json!({"id": id})).await;
        assert!(response["errors"].is_null(), "{response}");
        assert_eq!(response["data"]["node"]["__typename"], typename, "{id}");
        assert_eq!(response["data"]["node"]["id"], id);
        // Alice sees none of Bob's objects: null, as for an id that does not exist.
        let hidden = api.gql(Some(&alice), NODE, json!({"id": id})).await;
        assert!(hidden["errors"].is_null(), "{hidden}");
        assert_eq!(hidden["data"]["node"], Value::Null, "{id}");
        // Without a token, nothing at all.
        let anonymous = api.gql(None, NODE, json!({"id": id})).await;
        assert_eq!(
            anonymous["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "{id}: {anonymous}"
        );
    }
    let dispute = api
        .gql(Some(&admin), NODE, json!({"id": "idp_test1"}))
        .await;
    assert_eq!(dispute["data"]["node"]["status"], "OTHER");
    assert_eq!(dispute["data"]["node"]["rawStatus"], "under_arbitration");
    assert_eq!(dispute["data"]["node"]["cardId"], json!(bobs_card));
    for unknown in ["ic_doesnotexist", "xyz", "", "iauth_"] {
        let response = api.gql(Some(&admin), NODE, json!({"id": unknown})).await;
        assert!(response["errors"].is_null(), "{response}");
        assert_eq!(response["data"]["node"], Value::Null, "{unknown}");
    }
    // Alice's own card is hers to see.
    let own = &api.cards_of(&api.alice_holder)[0];
    let response = api.gql(Some(&alice), NODE, json!({"id": own})).await;
    assert_eq!(response["data"]["node"]["__typename"], "Card");
    assert_eq!(response["data"]["node"]["rawStatus"], "active");
}

const CARDS: &str = "query($first: Int, $after: String, $last: Int, $before: String) {
    cards(first: $first, after: $after, last: $last, before: $before) {
        totalCount nodes { id } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }";

#[tokio::test]
async fn the_admins_cards_page_forward_and_backward_to_the_same_list() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;
    let mut all: Vec<String> = api.holders.values().flatten().cloned().collect();
    all.sort();
    let page = |vars: Value| {
        let api = &api;
        let admin = &admin;
        async move {
            let response = api.gql(Some(admin), CARDS, vars).await;
            assert!(response["errors"].is_null(), "{response}");
            response["data"]["cards"].clone()
        }
    };
    let ids = |page: &Value| -> Vec<String> {
        page["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap().to_owned())
            .collect()
    };

    let mut forward = Vec::new();
    let mut after = Value::Null;
    loop {
        let got = page(json!({"first": 5, "after": after})).await;
        assert_eq!(got["totalCount"], json!(all.len()));
        assert_eq!(got["pageInfo"]["hasPreviousPage"], json!(!after.is_null()));
        forward.extend(ids(&got));
        if got["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = got["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(forward, all);

    let mut backward: Vec<Vec<String>> = Vec::new();
    let mut before = Value::Null;
    loop {
        let got = page(json!({"last": 5, "before": before})).await;
        assert_eq!(got["pageInfo"]["hasNextPage"], json!(!before.is_null()));
        backward.push(ids(&got));
        if got["pageInfo"]["hasPreviousPage"] != true {
            break;
        }
        before = got["pageInfo"]["startCursor"].clone();
    }
    let backward: Vec<String> = backward.into_iter().rev().flatten().collect();
    assert_eq!(backward, all);
    assert_eq!(
        code(
            &api.gql(
                Some(&admin),
                CARDS,
                json!({"first": 1, "after": "not a cursor"})
            )
            .await
        ),
        "BAD_USER_INPUT"
    );
}

#[tokio::test]
async fn a_card_status_stripe_adds_later_is_other_with_the_raw_value() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;
    apply(
        &api,
        &[(
            "evt_card_odd",
            "issuing_card.created",
            json!({"id": "ic_odd", "object": "issuing.card", "cardholder": "ich_odd",
                "status": "frozen_for_audit", "currency": "usd", "created": 1}),
        )],
    )
    .await;
    let response = api
        .gql(
            Some(&admin),
            "{ card(id: \"ic_odd\") { status rawStatus } }",
            json!({}),
        )
        .await;
    assert_eq!(
        response["data"]["card"],
        json!({"status": "OTHER", "rawStatus": "frozen_for_audit"})
    );
}

#[tokio::test]
async fn a_cardholder_user_finds_their_own_objects_and_pages_their_cards_both_ways() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;
    let alice = api.login("alice@example.com").await;
    let own = api.cards_of(&api.alice_holder)[0].clone();
    let (holder, auth, transaction) = ids_of_card(&api, &admin, &own).await;
    for (id, typename) in [
        (holder.as_str(), "Cardholder"),
        (auth.as_str(), "Authorization"),
        (transaction.as_str(), "Transaction"),
    ] {
        let response = api.gql(Some(&alice), NODE, json!({"id": id})).await;
        assert_eq!(
            response["data"]["node"]["__typename"], typename,
            "{id}: {response}"
        );
    }

    // Her few cards are paged in memory, with the same cursors and answers as the store's.
    let mut all: Vec<String> = api.cards_of(&api.alice_holder).to_vec();
    all.sort();
    assert!(all.len() >= 2, "alice has {} cards", all.len());
    let query =
        "query($last: Int, $before: String) { viewer { cards(last: $last, before: $before) {
        totalCount nodes { id } pageInfo { hasPreviousPage startCursor } } } }";
    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut before = Value::Null;
    loop {
        let response = api
            .gql(Some(&alice), query, json!({"last": 1, "before": before}))
            .await;
        let cards = &response["data"]["viewer"]["cards"];
        assert_eq!(cards["totalCount"], json!(all.len()), "{response}");
        pages.push(
            cards["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["id"].as_str().unwrap().to_owned())
                .collect(),
        );
        if cards["pageInfo"]["hasPreviousPage"] != true {
            break;
        }
        before = cards["pageInfo"]["startCursor"].clone();
    }
    let backward: Vec<String> = pages.into_iter().rev().flatten().collect();
    assert_eq!(backward, all);
}

#[tokio::test]
async fn the_last_page_of_several_cards_activity_in_one_query_is_each_cards_own() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;
    // Every card's newest-first activity, one card at a time.
    let one = "query($id: ID!) { card(id: $id) { activity(first: 100) { nodes { id } } } }";
    let batched = api
        .gql(
            Some(&admin),
            "{ cards(first: 6) { nodes { id activity(last: 3) { nodes { id } pageInfo { hasPreviousPage } } } } }",
            json!({}),
        )
        .await;
    let cards = batched["data"]["cards"]["nodes"].as_array().unwrap();
    assert_eq!(cards.len(), 6, "{batched}");
    let mut compared = 0;
    for card in cards {
        let alone = api.gql(Some(&admin), one, json!({"id": card["id"]})).await;
        let all: Vec<&Value> = alone["data"]["card"]["activity"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| &n["id"])
            .collect();
        let last: Vec<&Value> = card["activity"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| &n["id"])
            .collect();
        assert_eq!(last, all[all.len().saturating_sub(3)..], "{}", card["id"]);
        assert_eq!(
            card["activity"]["pageInfo"]["hasPreviousPage"],
            json!(all.len() > 3)
        );
        compared += usize::from(all.len() > 3);
    }
    assert!(
        compared >= 2,
        "only {compared} cards with more than one page"
    );
}
