//! The event log: stored events by id, type, object, card and time, newest first and paged,
//! each as the database holds it, with whether its object's stored row is its version; only
//! platform admins read it (see access.rs too).

#![allow(clippy::unwrap_used)]

mod common;

use common::{TestApi, code};
use serde_json::{Value, json};

const EVENTS: &str = "query($search: EventSearchInput, $after: String, $first: Int) {
  events(search: $search, after: $after, first: $first) {
    id type created cardId cursor payload object { kind id currentVersionEventId isCurrent }
  } }";

async fn ids(api: &TestApi, token: &str, search: Value, first: i64) -> Vec<String> {
    let response = api
        .gql(
            Some(token),
            EVENTS,
            json!({"search": search, "first": first}),
        )
        .await;
    assert!(response["errors"].is_null(), "{response}");
    response["data"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn expected(api: &TestApi, condition: &str, bind: &str, limit: i64) -> Vec<String> {
    sqlx::query_scalar(&format!(
        "SELECT event_id FROM stripe_events WHERE {condition}
         ORDER BY created DESC, event_id DESC LIMIT {limit}"
    ))
    .bind(bind)
    .fetch_all(api.store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn events_are_found_by_id_type_object_card_and_time_as_stored() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;
    // An authorization with several events (request, created, updated…).
    let (authorization, card): (String, String) = sqlx::query_as(
        "SELECT object_id, card_id FROM stripe_events WHERE event_type LIKE 'issuing_authorization.%'
         GROUP BY object_id, card_id HAVING count(*) >= 3 ORDER BY object_id LIMIT 1",
    )
    .fetch_one(api.store.pool())
    .await
    .unwrap();

    let by_object = ids(&api, &admin, json!({"objectId": authorization}), 100).await;
    assert!(by_object.len() >= 3);
    assert_eq!(
        by_object,
        expected(
            &api,
            "payload #>> '{data,object,id}' = $1",
            &authorization,
            100
        )
        .await
    );
    let by_card = ids(&api, &admin, json!({"cardId": card}), 100).await;
    assert_eq!(
        by_card,
        expected(
            &api,
            "(payload #>> '{data,object,card,id}' = $1 OR payload #>> '{data,object,card}' = $1
              OR (payload #>> '{data,object,object}' = 'issuing.card' AND payload #>> '{data,object,id}' = $1))",
            &card,
            100
        )
        .await
    );
    let by_type = ids(
        &api,
        &admin,
        json!({"type": "issuing_transaction.created"}),
        100,
    )
    .await;
    assert_eq!(
        by_type,
        expected(&api, "event_type = $1", "issuing_transaction.created", 100).await
    );
    let one = &by_object[1];
    assert_eq!(
        ids(&api, &admin, json!({"id": one}), 10).await,
        vec![one.clone()]
    );

    // A time window: Stripe's `created`, from included, to excluded.
    let (from, to): (i64, i64) = sqlx::query_as(
        "SELECT percentile_disc(0.4) WITHIN GROUP (ORDER BY created),
                    percentile_disc(0.6) WITHIN GROUP (ORDER BY created) + 1 FROM stripe_events",
    )
    .fetch_one(api.store.pool())
    .await
    .unwrap();
    let instant = |s: i64| {
        time::OffsetDateTime::from_unix_timestamp(s)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let window = ids(
        &api,
        &admin,
        json!({"from": instant(from), "to": instant(to)}),
        100,
    )
    .await;
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT event_id FROM stripe_events WHERE created >= $1 AND created < $2
         ORDER BY created DESC, event_id DESC LIMIT 100",
    )
    .bind(from)
    .bind(to)
    .fetch_all(api.store.pool())
    .await
    .unwrap();
    assert!(!stored.is_empty(), "{from}..{to}");
    assert_eq!(window, stored);

    // The raw JSON is the stored payload; the object's stored row is the newest event's.
    let response = api
        .gql(
            Some(&admin),
            EVENTS,
            json!({"search": {"objectId": authorization}, "first": 100}),
        )
        .await;
    let events = response["data"]["events"].as_array().unwrap();
    for e in events {
        let payload: Value =
            sqlx::query_scalar("SELECT payload FROM stripe_events WHERE event_id = $1")
                .bind(e["id"].as_str().unwrap())
                .fetch_one(api.store.pool())
                .await
                .unwrap();
        assert_eq!(e["payload"], payload);
        assert_eq!(e["object"]["kind"], "issuing.authorization");
        assert_eq!(e["object"]["id"], json!(authorization));
    }
    let version: String =
        sqlx::query_scalar("SELECT version_event_id FROM authorizations WHERE id = $1")
            .bind(&authorization)
            .fetch_one(api.store.pool())
            .await
            .unwrap();
    let current: Vec<&Value> = events
        .iter()
        .filter(|e| e["object"]["isCurrent"] == true)
        .collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], json!(version));
    assert!(
        events
            .iter()
            .all(|e| e["object"]["currentVersionEventId"] == json!(version))
    );
}

#[tokio::test]
async fn the_log_pages_without_gaps_or_repeats_and_checks_its_arguments() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM stripe_events")
        .fetch_one(api.store.pool())
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let response = api
            .gql(Some(&admin), EVENTS, json!({"first": 100, "after": after}))
            .await;
        let page = response["data"]["events"]
            .as_array()
            .unwrap_or_else(|| panic!("{response}"))
            .clone();
        seen.extend(page.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        if page.len() < 100 {
            break;
        }
        after = page.last().unwrap()["cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len() as i64, total);
    assert_eq!(
        seen,
        expected(&api, "$1 = $1", "", total).await,
        "every event once, in order"
    );

    for (variables, message) in [
        (json!({"first": 0}), "between 1 and 100"),
        (json!({"first": 101}), "between 1 and 100"),
        (json!({"after": "nonsense"}), "not an event cursor"),
    ] {
        let response = api.gql(Some(&admin), EVENTS, variables).await;
        assert_eq!(code(&response), "BAD_USER_INPUT", "{response}");
        assert!(response.to_string().contains(message), "{response}");
    }
    let types: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT event_type FROM stripe_events ORDER BY 1")
            .fetch_all(api.store.pool())
            .await
            .unwrap();
    let response = api.gql(Some(&admin), "{ eventTypes }", json!({})).await;
    assert_eq!(response["data"]["eventTypes"], json!(types));
}
