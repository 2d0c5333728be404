//! Query limits, batching of lookups (no N+1), error codes and per-operation metrics.

#![allow(clippy::unwrap_used)]

mod common;

use common::{TestApi, code};
use serde_json::json;

const PAGE: &str = "query($id: ID!, $first: Int) { card(id: $id) { activity(first: $first) {
    edges { node { id amount { formatted } merchant { name } transactions { id amount { amount } } } } } } }";

async fn busiest(api: &TestApi, token: &str) -> String {
    let cards = api
        .gql(
            Some(token),
            "{ cards(first: 100) { nodes { id spendSummary { approved declined } } } }",
            json!({}),
        )
        .await;
    cards["data"]["cards"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|c| {
            c["spendSummary"]["approved"].as_i64().unwrap()
                + c["spendSummary"]["declined"].as_i64().unwrap()
        })
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_page_of_activity_costs_the_same_few_statements_whatever_its_size() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;
    let card = busiest(&api, &admin).await;
    let mut counts = Vec::new();
    for first in [5, 20, 50] {
        let before = api.running.store.statements();
        let response = api
            .gql(Some(&admin), PAGE, json!({"id": card, "first": first}))
            .await;
        let after = api.running.store.statements();
        let edges = response["data"]["card"]["activity"]["edges"]
            .as_array()
            .unwrap();
        assert_eq!(
            edges.len(),
            first as usize,
            "the card has at least 50 authorizations"
        );
        counts.push(after - before);
    }
    // Sign-in check (user, links), the card check, the page, the page's transactions: five.
    // A list of more than 30 items is polled in more than one pass, and when a pass outlasts
    // the DataLoader's 1 ms window its batch is split: one more statement on a busy machine,
    // 8 seen once with two test runs sharing 2 cores. N+1 would cost at least one per row,
    // 50 for the largest page: the bound is well below that and independent of the size.
    assert!(counts[0] <= 5, "{counts:?} statements for one page");
    assert!(
        counts.iter().all(|c| *c <= counts[0] + 6),
        "statements per page size 5, 20, 50: {counts:?}"
    );
}

#[tokio::test]
async fn deep_costly_and_oversized_requests_are_refused_with_codes() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;
    let card = busiest(&api, &admin).await;

    // cards → nodes → cardholder → cards → … thirteen levels deep (the limit is twelve).
    let nested = format!(
        "{{ viewer {{ {}id{} }} }}",
        "cards { nodes { cardholder { ".repeat(4),
        " } } }".repeat(4)
    );
    assert_eq!(
        code(&api.gql(Some(&admin), &nested, json!({})).await),
        "QUERY_TOO_DEEP"
    );

    // 100 authorizations × transactions × fields, under 10 aliases: far over the budget.
    let alias = |i: usize| {
        format!(
            "a{i}: card(id: $id) {{ activity(first: 100) {{ edges {{ node {{ id merchant {{ name category city }} transactions {{ id kind amount {{ amount currency formatted }} }} }} }} }} }}"
        )
    };
    let bomb = format!(
        "query($id: ID!) {{ {} }}",
        (0..10).map(alias).collect::<Vec<_>>().join(" ")
    );
    assert_eq!(
        code(&api.gql(Some(&admin), &bomb, json!({"id": card})).await),
        "QUERY_TOO_COMPLEX"
    );

    assert_eq!(
        code(&api.gql(Some(&admin), "{ cards { id ", json!({})).await),
        "GRAPHQL_PARSE_FAILED"
    );
    assert_eq!(
        code(&api.gql(Some(&admin), "{ nosuchfield }", json!({})).await),
        "GRAPHQL_VALIDATION_FAILED"
    );

    // Batches are not accepted: one operation per request.
    let batch = json!([{"query": "{ viewer { user { email } } }"}, {"query": "{ viewer { user { email } } }"}]).to_string();
    let auth = format!("Bearer {admin}");
    let response = cardstream_testbed::post(
        &api.url(),
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
        ],
        batch,
    )
    .await;
    assert!(
        response.status.is_client_error(),
        "a batch got {}",
        response.status
    );

    // A body far larger than any real query.
    let huge =
        json!({"query": format!("{{ viewer {{ user {{ email }} }} }} # {}", "x".repeat(200_000))})
            .to_string();
    let response =
        cardstream_testbed::post(&api.url(), &[("content-type", "application/json")], huge).await;
    assert_eq!(response.status, 413);
}

#[tokio::test]
async fn introspection_needs_a_sign_in_by_default() {
    let api = TestApi::start(&[]).await;
    let query = "{ __schema { queryType { name } } }";
    let anonymous = api.gql(None, query, json!({})).await;
    assert_eq!(code(&anonymous), "INTROSPECTION_DISABLED");
    assert!(anonymous["data"].is_null(), "{anonymous}");
    let admin = api.login("admin@example.com").await;
    assert_eq!(
        api.gql(Some(&admin), query, json!({})).await["data"]["__schema"]["queryType"]["name"],
        "Query"
    );
}

#[tokio::test]
async fn operations_are_counted_by_root_field_and_outcome() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;
    let card = busiest(&api, &admin).await;
    api.gql(
        Some(&admin),
        "query($id: ID!) { card(id: $id) { id } }",
        json!({"id": card}),
    )
    .await;
    api.gql(
        Some(&admin),
        "query($id: ID!) { card(id: $id) { id } }",
        json!({"id": "ic_nope"}),
    )
    .await;
    api.gql(Some(&admin), "{ nosuchfield }", json!({})).await;
    let metric = |labels: &[(&str, &str)]| {
        cardstream_testbed::metric_value(&api.registry, "cardstream_graphql_requests_total", labels)
    };
    assert_eq!(
        metric(&[("type", "query"), ("field", "card"), ("outcome", "ok")]),
        1.0
    );
    assert_eq!(
        metric(&[("type", "query"), ("field", "card"), ("outcome", "error")]),
        1.0
    );
    assert_eq!(metric(&[("field", "invalid")]), 1.0);
    assert_eq!(
        metric(&[("type", "mutation"), ("field", "login"), ("outcome", "ok")]),
        1.0
    );
}

/// Amplification without depth: many aliases of one field, a fragment spread many times, a
/// fragment that spreads itself, a pile of directives. Each is refused with its code before
/// any resolver runs, and a cheap query afterwards still answers.
#[tokio::test]
async fn aliases_fragments_and_directives_cannot_amplify_a_query() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;

    // 2,000 aliases of a three-field selection: 6,000 fields, over the 5,000 budget.
    let aliases = (0..2_000)
        .map(|i| format!("v{i}: viewer {{ user {{ email }} }}"))
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(
        code(
            &api.gql(Some(&admin), &format!("{{ {aliases} }}"), json!({}))
                .await
        ),
        "QUERY_TOO_COMPLEX"
    );

    // One fragment, spread under 2,000 aliases: counted where it is spread, not once.
    let spreads = (0..2_000)
        .map(|i| format!("v{i}: viewer {{ ...U }}"))
        .collect::<Vec<_>>()
        .join(" ");
    let query = format!("{{ {spreads} }} fragment U on Viewer {{ user {{ email }} }}");
    assert_eq!(
        code(&api.gql(Some(&admin), &query, json!({})).await),
        "QUERY_TOO_COMPLEX"
    );

    // A fragment cycle would never finish expanding: a validation error.
    let cycle = "{ viewer { ...A } } fragment A on Viewer { ...B } fragment B on Viewer { ...A }";
    assert_eq!(
        code(&api.gql(Some(&admin), cycle, json!({})).await),
        "GRAPHQL_VALIDATION_FAILED"
    );

    // The same directive repeated on one field.
    let directives = format!(
        "{{ viewer {{ user {{ email {} }} }} }}",
        "@include(if: true) ".repeat(500)
    );
    assert_eq!(
        code(&api.gql(Some(&admin), &directives, json!({})).await),
        "GRAPHQL_VALIDATION_FAILED"
    );

    let fine = api
        .gql(Some(&admin), "{ viewer { user { email } } }", json!({}))
        .await;
    assert_eq!(fine["data"]["viewer"]["user"]["email"], "admin@example.com");
}

/// A connection without a page size serves its default page, so it must cost as much as that
/// page: a query that is refused with `first: 50` is refused without it (and with
/// `first: null`, or with `before` alone, which page by the same default).
#[tokio::test]
async fn a_connection_without_a_page_size_costs_its_default_page() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;
    for cards in [
        "cards(first: 50)",
        "cards",
        "cards(first: null)",
        "viewer { cards",
        "cards(before: \"6963\")",
    ] {
        let close = if cards.starts_with("viewer") { "}" } else { "" };
        let query = format!(
            "{{ {cards} {{ nodes {{ activity(first: 100) {{ nodes {{ id }} }} }} }} {close} }}"
        );
        assert_eq!(
            code(&api.gql(Some(&admin), &query, json!({})).await),
            "QUERY_TOO_COMPLEX",
            "{query}"
        );
    }
    // A cardholder's cards serve 10 by default: the dashboard's admin page, costed as such.
    let response = api
        .gql(
            Some(&admin),
            "{ cardholders(first: 50) { nodes { id cards { nodes { id last4 currency } } } } }",
            json!({}),
        )
        .await;
    assert!(response["errors"].is_null(), "{response}");
}

/// `disputes` without a card spans the viewer's first 100 cards, and a connection without a
/// size serves its default page: neither may be refused under a smaller limit on the pages
/// clients ask for, on an argument nobody sent.
#[tokio::test]
async fn disputes_across_cards_answer_under_a_small_page_limit() {
    let api = TestApi::start(&["--max-page-size", "20"]).await;
    let admin = api.login("admin@example.com").await;
    let response = api
        .gql(Some(&admin), "{ disputes { nodes { id } } }", json!({}))
        .await;
    assert!(response["errors"].is_null(), "{response}");
    assert!(response["data"]["disputes"]["nodes"].is_array());
    // A connection whose default page (50) is above the limit serves the limit's page.
    let cards = api
        .gql(Some(&admin), "{ cards { nodes { id } } }", json!({}))
        .await;
    assert!(cards["errors"].is_null(), "{cards}");
}
