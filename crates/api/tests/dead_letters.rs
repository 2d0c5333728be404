//! The dead letters the aggregator recorded, for the platform's admins: newest first, those
//! redriven only when asked, by reason; bounded; nobody else sees them (see access.rs).

#![allow(clippy::unwrap_used)]

mod common;

use cardstream_store::NewDeadLetter;
use common::{TestApi, code};
use serde_json::json;

fn letter(offset: i64, reason: &str) -> NewDeadLetter {
    NewDeadLetter {
        source_topic: "stripe.events".into(),
        source_partition: 3,
        source_offset: offset,
        reason: reason.into(),
        error: format!("{reason} at {offset}"),
        event_id: Some(format!("evt_dead_{offset}")),
        event_type: Some("issuing_card.created".into()),
        key: Some(b"ic_1".to_vec()),
        headers: vec![(
            "stripe-event-id".into(),
            format!("evt_dead_{offset}").into_bytes(),
        )],
        payload: format!(
            "{{\"id\":\"evt_dead_{offset}\",\"payload\":\"{}\"}}",
            "x".repeat(3_000)
        )
        .into_bytes(),
    }
}

const QUERY: &str = "query($reason: String, $redriven: Boolean, $first: Int) {
    deadLetters(reason: $reason, redriven: $redriven, first: $first) {
        id reason error sourceTopic sourcePartition sourceOffset eventId eventType payloadPreview
        deadAt redrivenAt redrivenBy redrives } }";

#[tokio::test]
async fn admins_list_dead_letters_by_reason_and_redrive_state() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;
    api.store
        .record_dead_letters(&[
            letter(10, "unauthenticated"),
            letter(11, "not_json"),
            letter(12, "unauthenticated"),
        ])
        .await
        .unwrap();
    // Recorded again (a batch read twice): still three.
    api.store
        .record_dead_letters(&[letter(10, "unauthenticated")])
        .await
        .unwrap();
    let listed = api.gql(Some(&admin), QUERY, json!({})).await;
    let letters = listed["data"]["deadLetters"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"));
    let offsets: Vec<&str> = letters
        .iter()
        .map(|l| l["sourceOffset"].as_str().unwrap())
        .collect();
    assert_eq!(offsets, ["12", "11", "10"], "{listed}");
    let newest = &letters[0];
    assert_eq!(newest["reason"], "unauthenticated");
    assert_eq!(newest["eventId"], "evt_dead_12");
    assert_eq!(newest["sourcePartition"], 3);
    assert_eq!(newest["payloadPreview"].as_str().unwrap().len(), 2_000);
    assert_eq!(newest["redrivenBy"], json!(null));

    let id: i64 = newest["id"].as_str().unwrap().parse().unwrap();
    api.store
        .mark_redriven(id, "ops@example.com")
        .await
        .unwrap();
    let waiting = api
        .gql(Some(&admin), QUERY, json!({"reason": "unauthenticated"}))
        .await;
    assert_eq!(
        waiting["data"]["deadLetters"].as_array().unwrap().len(),
        1,
        "{waiting}"
    );
    let all = api
        .gql(
            Some(&admin),
            QUERY,
            json!({"reason": "unauthenticated", "redriven": true}),
        )
        .await;
    let all = all["data"]["deadLetters"].as_array().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["redrivenBy"], "ops@example.com");
    assert_eq!(all[0]["redrives"], 1);
    assert!(all[0]["redrivenAt"].is_string());

    for first in [0, 201] {
        let refused = api.gql(Some(&admin), QUERY, json!({"first": first})).await;
        assert_eq!(code(&refused), "BAD_USER_INPUT", "{refused}");
    }

    // Asked for in the console: recorded with who asked, for an aggregator to do.
    let redrive = "mutation($ids: [ID!]!) { redriveDeadLetters(input: {deadLetterIds: $ids}) {
        deadLetters { id redriveRequestedBy redriveRequestedAt } } }";
    let oldest = letters[2]["id"].as_str().unwrap().to_owned();
    let asked = api
        .gql(Some(&admin), redrive, json!({"ids": [oldest]}))
        .await;
    let asked = &asked["data"]["redriveDeadLetters"]["deadLetters"][0];
    assert_eq!(asked["redriveRequestedBy"], "admin@example.com", "{asked}");
    assert!(asked["redriveRequestedAt"].is_string());
    // One id that is not a dead letter: NOT_FOUND, and nothing asked for.
    let refused = api
        .gql(
            Some(&admin),
            redrive,
            json!({"ids": [letters[1]["id"], "999999"]}),
        )
        .await;
    assert_eq!(code(&refused), "NOT_FOUND", "{refused}");
    let requested: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM dead_letters WHERE redrive_requested_at IS NOT NULL",
    )
    .fetch_one(api.store.pool())
    .await
    .unwrap();
    assert_eq!(requested, 1);
    let empty = api.gql(Some(&admin), redrive, json!({"ids": []})).await;
    assert_eq!(code(&empty), "BAD_USER_INPUT", "{empty}");
}
