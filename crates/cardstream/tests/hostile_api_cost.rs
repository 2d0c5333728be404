//! A hostile client against `cardstream api` as it runs: queries built to be expensive are
//! refused before any SQL runs, and what is answered costs a number of statements bounded by
//! the query's shape, whatever the number of rows. The dashboard's own queries still pass.
//! Statements are counted by the process itself (`cardstream_database_statements_total`).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::api::{ADMIN, ALICE, ApiProcess, Seeded, code};
use serde_json::{Value, json};

/// Statements the process sent while `run` ran (the counter is refreshed every 100 ms).
async fn statements_during<F, Fut>(api: &ApiProcess, run: F) -> (Value, f64, Duration)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    tokio::time::sleep(Duration::from_millis(250)).await;
    let before = api.metric("cardstream_database_statements_total").await;
    let started = Instant::now();
    let response = run().await;
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let after = api.metric("cardstream_database_statements_total").await;
    (response, after - before, took)
}

/// The query in `const NAME = \`…\`` of a dashboard source file, as the browser sends it.
fn dashboard_query(file: &str, name: &str) -> String {
    let path = format!("{}/../../web/src/{file}", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(&path).unwrap();
    let start = source
        .find(&format!("const {name} = `"))
        .unwrap_or_else(|| panic!("{name} is not in {path}"))
        + name.len()
        + 10;
    let end = start + source[start..].find('`').unwrap();
    let query = source[start..end].to_owned();
    assert!(!query.contains("${"), "{name} interpolates; copy it here");
    query
}

/// The issue's own example: `cards { cardholder { cards { … spendSummary } } }`, with each
/// list at its default page size (each connection's `nodes` is a level of its own).
fn nested_cycle(levels: usize) -> String {
    format!(
        "{{ cards {{ nodes {{ {} spendSummary {{ totalSpend {{ amount }} }} {} }} }} }}",
        "cardholder { cards { nodes { ".repeat(levels),
        "} } } ".repeat(levels)
    )
}

fn aliased(count: usize, field: &str) -> String {
    let body: String = (0..count).map(|i| format!("a{i}: {field} ")).collect();
    format!("{{ {body} }}")
}

#[tokio::test]
async fn costly_queries_are_refused_before_any_sql_and_answers_cost_few_statements() {
    let seeded = Seeded::new().await;
    // An unoptimised build on a busy machine can take more than the default 1 ms to walk a
    // page of items, splitting a batch in two; a wider window keeps the count exact here.
    let api = ApiProcess::start(&seeded, &["--graphql-batch-window", "10ms"]).await;
    let admin = api.login(ADMIN).await;
    let alice = api.login(ALICE).await;

    // Refused: each must be QUERY_TOO_COMPLEX (or QUERY_TOO_DEEP where said), fast, and send
    // no SQL (not even the sign-in's).
    let refused = [
        // With connections, the 3-level cycle is 14 levels of fields: the depth limit
        // (12) refuses it before its cost is computed. Two levels (11 deep) still cost far
        // more than the complexity limit allows.
        ("cards → cardholder → cards cycle, 3 levels", nested_cycle(3), "QUERY_TOO_DEEP"),
        ("cards → cardholder → cards cycle, 2 levels", nested_cycle(2), "QUERY_TOO_COMPLEX"),
        (
            "cycle under the cardholder user's viewer",
            format!(
                "{{ viewer {{ cards {{ nodes {{ {} id {} }} }} }} }}",
                "cardholder { cards { nodes { ".repeat(2),
                "} } } ".repeat(2)
            ),
            "QUERY_TOO_COMPLEX",
        ),
        (
            "300 aliases of a page of cards",
            aliased(300, "cards(first: 100) { nodes { id } }"),
            "QUERY_TOO_COMPLEX",
        ),
        (
            "large pages at every level",
            "{ cards(first: 100) { nodes { activity(first: 100) { edges { node { id transactions { id } } } } } } }"
                .to_owned(),
            "QUERY_TOO_COMPLEX",
        ),
        (
            "every summary list at its largest",
            "{ cards(first: 100) { nodes { spendSummary { byCategory(limit: 100) { key } topMerchants(limit: 100) { key } timeSeries(limit: 1000) { start } } } } }"
                .to_owned(),
            "QUERY_TOO_COMPLEX",
        ),
        (
            "admin lists nested",
            "{ cardholders(first: 100) { nodes { cards(first: 100) { nodes { cardholder { cards(first: 100) { nodes { id } } } } } } } }"
                .to_owned(),
            "QUERY_TOO_COMPLEX",
        ),
        (
            "users and invitations at their largest, aliased",
            aliased(60, "users(first: 100) { nodes { id email cardholderIds } }"),
            "QUERY_TOO_COMPLEX",
        ),
    ];
    for (what, query, expected) in &refused {
        for token in [&alice, &admin] {
            // The best of three, so that a busy machine (tests run in parallel, unoptimised)
            // does not decide the figure; every attempt must be refused without SQL.
            let mut fastest = Duration::MAX;
            for _ in 0..3 {
                let (response, statements, took) =
                    statements_during(&api, || api.gql(Some(token), query, json!({}))).await;
                let text = response.to_string();
                assert!(
                    response["data"].is_null(),
                    "{what}: answered instead of refused: {}",
                    &text[..200.min(text.len())]
                );
                assert_eq!(code(&response), *expected, "{what}: {response}");
                assert_eq!(
                    statements, 0.0,
                    "{what}: refused, yet {statements} statements ran"
                );
                fastest = fastest.min(took);
            }
            eprintln!("{what}: refused in {fastest:?}");
            assert!(
                fastest < Duration::from_millis(50),
                "{what}: refused in {fastest:?}"
            );
        }
    }

    // Answered: the statements depend on the query's shape, not on how many rows it returns.
    let shape = |first: usize| {
        format!(
            "{{ cards(first: {first}) {{ nodes {{ id last4 cardholder {{ name cards(first: 3) {{ nodes {{ id }} }} }}
                spendSummary {{ totalSpend {{ amount }} purchases byCategory(limit: 3) {{ key }}
                               topMerchants(limit: 2) {{ key }} timeSeries(bucket: MONTH, limit: 4) {{ start }} }}
                activity(first: 2) {{ edges {{ node {{ id transactions {{ id }} }} }} }} }} }}
               disputes(first: 10) {{ nodes {{ id }} }} }}"
        )
    };
    let mut counts = Vec::new();
    for first in [2, 10, 30] {
        let query = shape(first);
        let (response, statements, _) =
            statements_during(&api, || api.gql(Some(&admin), &query, json!({}))).await;
        assert!(response["errors"].is_null(), "{first}: {response}");
        assert_eq!(
            response["data"]["cards"]["nodes"].as_array().unwrap().len(),
            first,
            "the admin sees at least 30 cards"
        );
        counts.push(statements);
    }
    // cards, cardholders, their cards, totals, categories, merchants, series, the cards again
    // (activity checks access), activity, transactions, disputes and the viewer's cards for
    // them, and the session when not cached: 13 at most, whatever the number of cards.
    eprintln!("statements for 2, 10, 30 cards: {counts:?}");
    assert!(
        counts.iter().all(|c| *c <= 13.0),
        "statements for 2, 10, 30 cards: {counts:?}"
    );

    // The dashboard's own queries pass, as the browser sends them.
    let card: String = sqlx::query_scalar(
        "SELECT c.id FROM cards c JOIN authorizations a ON a.card_id = c.id
         WHERE c.cardholder_id = $1 GROUP BY c.id ORDER BY count(*) DESC LIMIT 1",
    )
    .bind(&seeded.alice_holder)
    .fetch_one(seeded.store.pool())
    .await
    .unwrap();
    let authorization: String =
        sqlx::query_scalar("SELECT id FROM authorizations WHERE card_id = $1 LIMIT 1")
            .bind(&card)
            .fetch_one(seeded.store.pool())
            .await
            .unwrap();
    for (file, name, variables) in [
        ("main.tsx", "VIEWER", json!({})),
        (
            "dashboard.tsx",
            "SUMMARY",
            json!({"id": card, "range": null, "bucket": "DAY"}),
        ),
        ("activity.tsx", "ACTIVITY", json!({"id": card, "first": 50})),
        ("authorization.tsx", "QUERY", json!({"id": authorization})),
    ] {
        let query = dashboard_query(file, name);
        let response = api.gql(Some(&alice), &query, variables).await;
        assert!(
            response["errors"].is_null(),
            "the dashboard's {name} was refused: {response}"
        );
    }
}

#[tokio::test]
async fn depth_and_page_size_limits_hold() {
    let seeded = Seeded::new().await;
    let api = ApiProcess::start(&seeded, &[]).await;
    let admin = api.login(ADMIN).await;
    let deep = format!(
        "{{ viewer {{ cards(first: 1) {{ nodes {{ {}id{} }} }} }} }}",
        "cardholder { cards(first: 1) { nodes { ".repeat(6),
        " } } }".repeat(6)
    );
    assert_eq!(
        code(&api.gql(Some(&admin), &deep, json!({})).await),
        "QUERY_TOO_DEEP"
    );
    for query in [
        "{ cards(first: 101) { nodes { id } } }",
        "{ users(first: 0) { nodes { id } } }",
        "{ cardholders(first: -5) { nodes { id } } }",
        "{ invitations(first: 1000) { nodes { id } } }",
        "{ disputes(first: 101) { nodes { id } } }",
        "{ cards(first: 1) { nodes { spendSummary { byCategory(limit: 101) { key } } } } }",
        "{ cards(first: 1) { nodes { cardholder { cards(first: 101) { nodes { id } } } } } }",
        "{ cards(first: 3) { nodes { activity(first: 3) { edges { node { transactions(first: 101) { id } } } } } } }",
        "{ cards(first: 3) { nodes { activity(first: 3) { edges { node { requestHistory(first: 0) { reason } } } } } } }",
    ] {
        let response = api.gql(Some(&admin), query, json!({})).await;
        assert!(
            ["BAD_USER_INPUT", "QUERY_TOO_COMPLEX"].contains(&code(&response)),
            "{query}: {response}"
        );
    }
}
