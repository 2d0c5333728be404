//! `GET /export/activity.csv`: the filtered activity of a card the viewer may see, every row,
//! as CSV; refused without a session (401), for a card not theirs (404, as GraphQL answers)
//! and for a filter that does not check (400).

#![allow(clippy::unwrap_used)]

mod common;

use common::TestApi;

fn export_url(api: &TestApi, query: &str) -> String {
    format!("http://{}/export/activity.csv?{query}", api.running.addr)
}

#[tokio::test]
async fn the_export_holds_every_filtered_row_and_only_for_the_cards_owner() {
    let api = TestApi::start(&[]).await;
    let alice = api.login("alice@example.com").await;
    let auth = format!("Bearer {alice}");
    let card = api.cards_of(&api.alice_holder.clone())[0].clone();
    let response = cardstream_testbed::get_with(
        &export_url(&api, &format!("card={card}&status=APPROVED&minAmount=1000")),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(
        response.status.as_u16(),
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let text = String::from_utf8_lossy(&response.body).into_owned();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "created,authorization,merchant,category,city,country,amount,currency,outcome,status,decline_reason,cardstream_reason"
        )
    );
    let ids: Vec<String> = lines
        .map(|l| l.split(',').nth(1).unwrap().to_owned())
        .collect();
    let expected: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM authorizations WHERE card_id = $1 AND approved AND requested_amount >= 1000
         ORDER BY created DESC, id DESC",
    )
    .bind(&card)
    .fetch_all(api.store.pool())
    .await
    .unwrap();
    assert!(!expected.is_empty());
    assert_eq!(ids, expected);

    // Bob's card, by Alice: as if it did not exist.
    let bobs = api.cards_of(&api.bob_holder.clone())[0].clone();
    let response = cardstream_testbed::get_with(
        &export_url(&api, &format!("card={bobs}")),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(response.status.as_u16(), 404);
    // No token; a filter that does not check.
    assert_eq!(
        cardstream_testbed::get(&export_url(&api, &format!("card={card}")))
            .await
            .status
            .as_u16(),
        401
    );
    for (query, why) in [
        ("status=MAYBE", "is not APPROVED, DECLINED or PENDING"),
        ("from=yesterday", "is not a date"),
        (
            "category=not_a_category",
            "is not a Stripe merchant category",
        ),
        (
            "minAmount=500&maxAmount=100",
            "minAmount is above maxAmount",
        ),
    ] {
        let response = cardstream_testbed::get_with(
            &export_url(&api, &format!("card={card}&{query}")),
            &[("authorization", &auth)],
        )
        .await;
        assert_eq!(response.status.as_u16(), 400, "{query}");
        assert!(
            String::from_utf8_lossy(&response.body).contains(why),
            "{query}: {}",
            String::from_utf8_lossy(&response.body)
        );
    }
}
