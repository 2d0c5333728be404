//! Inputs the `graphql_request` fuzz target (fuzz/fuzz_targets/graphql_request.rs) showed to
//! crash the API, kept as tests. Like the fuzz target, these need no Postgres: the database URL
//! points at a listener that closes every connection, and each request here is refused or
//! answered before any resolver reaches the store.

#![allow(clippy::unwrap_used)]

use cardstream_api::ApiArgs;
use cardstream_telemetry::{CancellationToken, Registry};
use clap::Parser;
use serde_json::{Value, json};

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    args: ApiArgs,
}

/// An API with its default limits; returns its `/graphql` URL.
async fn api(shutdown: &CancellationToken) -> String {
    let database = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let database_url = format!(
        "postgres://fuzz@{}/fuzz?sslmode=disable",
        database.local_addr().unwrap()
    );
    tokio::spawn(async move {
        while let Ok((stream, _)) = database.accept().await {
            drop(stream);
        }
    });
    let args = Wrapper::try_parse_from([
        "api",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--database-url",
        &database_url,
        "--token-secret",
        "test-token-secret-of-at-least-32-bytes",
        "--shutdown-delay",
        "0s",
    ])
    .unwrap()
    .args;
    let running =
        cardstream_api::start(args, Registry::new(), shutdown.clone(), axum::Router::new())
            .await
            .unwrap();
    format!("http://{}/graphql", running.addr)
}

async fn gql(url: &str, query: &str, variables: Value) -> Value {
    let body = json!({ "query": query, "variables": variables }).to_string();
    let response =
        cardstream_testbed::post(url, &[("content-type", "application/json")], body).await;
    assert!(
        !response.status.is_server_error(),
        "{}: {}",
        response.status,
        String::from_utf8_lossy(&response.body)
    );
    response.json()
}

fn code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {response}"))
}

/// `activity(first: -1)`: the field's complexity, `first × child complexity`, is computed with
/// `first as usize`, so a negative `first` became ~2^64 and the multiplication overflowed. With
/// overflow checks (debug builds, the fuzzer) that panics inside query validation and the
/// connection is dropped without an answer; without them (release) the cost wraps around.
#[tokio::test]
async fn a_negative_page_size_is_an_answer_not_a_panic() {
    let shutdown = CancellationToken::new();
    let url = api(&shutdown).await;
    for query in [
        r#"{ card(id: "x") { activity(first: -1) { edges { node { id } } } } }"#,
        r#"{ card(id: "x") { activity(first: -2147483648) { edges { node { id amount { formatted } } } } } }"#,
        // `last` pages backward and costs the same way, as does every other connection.
        r#"{ card(id: "x") { activity(last: -2147483648) { nodes { id } } } }"#,
        r#"{ cards(last: -1) { nodes { id cardholder { cards(first: -7) { nodes { id } } } } } }"#,
    ] {
        let response = gql(&url, query, json!({})).await;
        assert!(response["errors"].is_array(), "{query}: {response}");
    }
    // The same through a variable.
    let response = gql(
        &url,
        "query($first: Int) { card(id: \"x\") { activity(first: $first) { edges { node { id } } } } }",
        json!({"first": -5}),
    )
    .await;
    assert!(response["errors"].is_array(), "{response}");
    shutdown.cancel();
}

/// Where the arithmetic wraps (release builds), a negative `first` could cancel out the cost of
/// the rest of the query and let a query far over the complexity budget through. A costly query
/// stays refused whatever negative page sizes ride along with it.
#[tokio::test]
async fn negative_page_sizes_do_not_pay_for_a_costly_query() {
    let shutdown = CancellationToken::new();
    let url = api(&shutdown).await;
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
    let response = gql(&url, &query, json!({"id": "ic_1"})).await;
    assert_eq!(code(&response), "QUERY_TOO_COMPLEX", "{response}");
    shutdown.cancel();
}
