//! Inputs the `graphql_request` fuzz target (fuzz/fuzz_targets/graphql_request.rs) showed to
//! crash the API, kept as tests. They run against an API on a real, seeded Postgres database,
//! as a cardholder asking about their own card, so each request goes as far as it can: every
//! input gets the one answer it must get, not just "some error" (an API that cannot reach its
//! database answers with errors too).

#![allow(clippy::unwrap_used)]

mod common;

use common::TestApi;
use serde_json::{Value, json};

/// The one error of `response`: its code, message and path.
fn only_error(response: &Value) -> (String, String, Value) {
    let errors = response["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {response}"));
    assert_eq!(errors.len(), 1, "{response}");
    let error = &errors[0];
    (
        error["extensions"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        error["message"].as_str().unwrap_or_default().to_owned(),
        error["path"].clone(),
    )
}

/// `activity(first: -1)`: the field's complexity, `first × child complexity`, is computed with
/// `first as usize`, so a negative `first` became ~2^64 and the multiplication overflowed. With
/// overflow checks (debug builds, the fuzzer) that panics inside query validation and the
/// connection is dropped without an answer; without them (release) the cost wraps around.
/// Each gets past validation to the resolver, which refuses the page size as bad input.
#[tokio::test]
async fn a_negative_page_size_is_an_answer_not_a_panic() {
    let api = TestApi::start(&[]).await;
    let alice = api.login("alice@example.com").await;
    let card = &api.cards_of(&api.alice_holder)[0];
    let first = "`first` must be between 1 and 100";
    let last = "`last` must be between 1 and 100";
    let too_complex = || {
        (
            "QUERY_TOO_COMPLEX".to_owned(),
            "Query is too complex.".to_owned(),
            Value::Null,
        )
    };
    let bad_input =
        |message: &str, path: Value| ("BAD_USER_INPUT".to_owned(), message.to_owned(), path);
    for (query, expected) in [
        (
            "query($id: ID!) { card(id: $id) { activity(first: -1) { edges { node { id } } } } }",
            bad_input(first, json!(["card", "activity"])),
        ),
        // A page size the resolver refuses is counted as the most any is (1,000 rows), not as
        // an overflow: 1,000 of these nodes are over the budget, so the query is refused whole
        // before it runs, as the same query with `first: 1000` is.
        (
            "query($id: ID!) { card(id: $id) { activity(first: -2147483648) { edges { node { id amount { formatted } } } } } }",
            too_complex(),
        ),
        (
            "query($id: ID!) { card(id: $id) { activity(first: 1000) { edges { node { id amount { formatted } } } } } }",
            too_complex(),
        ),
        // `last` pages backward and costs the same way, as does every other connection.
        (
            "query($id: ID!) { card(id: $id) { activity(last: -2147483648) { nodes { id } } } }",
            bad_input(last, json!(["card", "activity"])),
        ),
        (
            "{ cards(last: -1) { nodes { id } } }",
            bad_input(last, json!(["cards"])),
        ),
        // Nested, each counted as 1,000 rows: a million, over the budget.
        (
            "{ cards(last: -1) { nodes { id cardholder { cards(first: -7) { nodes { id } } } } } }",
            too_complex(),
        ),
    ] {
        let response = api.gql(Some(&alice), query, json!({"id": card})).await;
        assert_eq!(only_error(&response), expected, "{query}: {response}");
    }
    // The same through a variable; and the same query with a valid size answers with the page.
    let query = "query($id: ID!, $first: Int) { card(id: $id) { id activity(first: $first) { edges { node { id } } } } }";
    let response = api
        .gql(Some(&alice), query, json!({"id": card, "first": -5}))
        .await;
    assert_eq!(
        only_error(&response),
        (
            "BAD_USER_INPUT".to_owned(),
            first.to_owned(),
            json!(["card", "activity"])
        ),
        "{response}"
    );
    let response = api
        .gql(Some(&alice), query, json!({"id": card, "first": 2}))
        .await;
    assert!(response["errors"].is_null(), "{response}");
    assert_eq!(response["data"]["card"]["id"], json!(card));
    assert_eq!(
        response["data"]["card"]["activity"]["edges"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "{response}"
    );
    api.shutdown.cancel();
}

/// Where the arithmetic wraps (release builds), a negative `first` could cancel out the cost of
/// the rest of the query and let a query far over the complexity budget through. A costly query
/// stays refused whatever negative page sizes ride along with it, before anything is read.
#[tokio::test]
async fn negative_page_sizes_do_not_pay_for_a_costly_query() {
    let api = TestApi::start(&[]).await;
    let alice = api.login("alice@example.com").await;
    let card = &api.cards_of(&api.alice_holder)[0];
    let costly = |i: usize| {
        format!(
            "a{i}: card(id: $id) {{ activity(first: 100) {{ edges {{ node {{ id merchant {{ name category city }} transactions {{ id kind amount {{ amount currency formatted }} }} }} }} }} }}"
        )
    };
    let mut fields: Vec<String> = (0..10).map(costly).collect();
    fields.push(
        "n: card(id: $id) { activity(last: -100) { edges { node { id merchant { name category city } transactions { id kind amount { amount currency formatted } } } } } }"
            .to_owned(),
    );
    let query = format!("query($id: ID!) {{ {} }}", fields.join(" "));
    let response = api.gql(Some(&alice), &query, json!({"id": card})).await;
    let (code, _, path) = only_error(&response);
    assert_eq!(
        (code.as_str(), path),
        ("QUERY_TOO_COMPLEX", Value::Null),
        "{response}"
    );
    assert!(response["data"].is_null(), "refused with data: {response}");
    api.shutdown.cancel();
}
