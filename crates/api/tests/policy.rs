//! The policy admins edit: saved, read back as saved, and a stored row the gateway would
//! refuse is shown with the reason, not as if it were in force, and can be saved over.

#![allow(clippy::unwrap_used)]

mod common;

use common::TestApi;
use serde_json::json;

const READ: &str = "{ policy { version blockedCategories dailyLimit { currency amount { amount } } onSpendUnknown partialApproval updatedBy refused } }";

#[tokio::test]
async fn a_saved_policy_reads_back_and_a_row_the_gateway_refuses_is_shown_with_why() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;

    let none = api.gql(Some(&admin), READ, json!({})).await;
    assert_eq!(none["data"]["policy"]["version"], 0, "{none}");

    let saved = api
        .gql(
            Some(&admin),
            "mutation { updatePolicy(input: {expectedVersion: 0, policy: {
                blockedCategories: [\"bakeries\"], dailyLimit: [{currency: \"usd\", amount: 100000}],
                onSpendUnknown: APPROVE, partialApproval: true}}) { policy { version } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        saved["data"]["updatePolicy"]["policy"]["version"], 1,
        "{saved}"
    );
    let read = api.gql(Some(&admin), READ, json!({})).await;
    assert_eq!(
        read["data"]["policy"],
        json!({
            "version": 1,
            "blockedCategories": ["bakeries"],
            "dailyLimit": [{"currency": "usd", "amount": {"amount": 100000}}],
            "onSpendUnknown": "APPROVE",
            "partialApproval": true,
            "updatedBy": "admin@example.com",
            "refused": null,
        }),
        "{read}"
    );

    // Written past the API (by hand, or by a build with other rules): not a Stripe category,
    // which the gateway refuses and keeps version 1 in force. Showing it would show a policy
    // that does not apply.
    api.store
        .save_policy(Some(1), json!({"blocked_categories": ["gambling"]}), "psql")
        .await
        .unwrap();
    let broken = api.gql(Some(&admin), READ, json!({})).await;
    assert!(broken["errors"].is_null(), "{broken}");
    assert_eq!(broken["data"]["policy"]["version"], 2, "{broken}");
    assert_eq!(
        broken["data"]["policy"]["blockedCategories"],
        json!(["gambling"])
    );
    assert_eq!(
        broken["data"]["policy"]["refused"],
        "blocked_categories has names that are not Stripe merchant categories: gambling"
    );
    // The admin saves over it, from the version shown.
    let fixed = api
        .gql(
            Some(&admin),
            "mutation { updatePolicy(input: {expectedVersion: 2, policy: {blockedCategories: [\"bakeries\"]}}) { policy { version refused } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        fixed["data"]["updatePolicy"]["policy"],
        json!({"version": 3, "refused": null}),
        "{fixed}"
    );
}

/// Limits as people write them (`decimal`) become minor units by the currency's exponent; an
/// amount given both ways, neither way, or with more decimals than the currency has is refused
/// with the reason, and nothing is saved.
#[tokio::test]
async fn decimal_amounts_are_saved_as_minor_units_and_ambiguous_ones_refused() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;
    let save = "mutation($limits: [CurrencyAmountInput!]!, $v: Int) {
        updatePolicy(input: {expectedVersion: $v, policy: {dailyLimit: $limits}}) { policy { version } } }";
    let saved = api
        .gql(
            Some(&admin),
            save,
            json!({"v": 0, "limits": [
                {"currency": "usd", "decimal": "1500.00"},
                {"currency": "jpy", "decimal": "20000"},
                {"currency": "kwd", "decimal": "12.345"},
            ]}),
        )
        .await;
    assert_eq!(
        saved["data"]["updatePolicy"]["policy"]["version"], 1,
        "{saved}"
    );
    let read = api.gql(Some(&admin), READ, json!({})).await;
    let mut limits: Vec<(String, i64)> = read["data"]["policy"]["dailyLimit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["currency"].as_str().unwrap().to_owned(),
                l["amount"]["amount"].as_i64().unwrap(),
            )
        })
        .collect();
    limits.sort();
    assert_eq!(
        limits,
        [
            ("jpy".to_owned(), 20_000),
            ("kwd".to_owned(), 12_345),
            ("usd".to_owned(), 150_000)
        ]
    );

    for (limit, why) in [
        (
            json!({"currency": "usd", "amount": 100, "decimal": "1.00"}),
            "one of them",
        ),
        (json!({"currency": "usd"}), "one of them"),
        (
            json!({"currency": "usd", "decimal": "1.001"}),
            "more decimals",
        ),
        (
            json!({"currency": "jpy", "decimal": "1.5"}),
            "more decimals",
        ),
        (
            json!({"currency": "usd", "decimal": "1,500.00"}),
            "not an amount",
        ),
    ] {
        let refused = api
            .gql(
                Some(&admin),
                save,
                json!({"v": 1, "limits": [limit.clone()]}),
            )
            .await;
        assert_eq!(
            common::code(&refused),
            "BAD_USER_INPUT",
            "{limit}: {refused}"
        );
        let message = refused["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(why), "{limit}: {message}");
    }
    let unchanged = api.gql(Some(&admin), READ, json!({})).await;
    assert_eq!(unchanged["data"]["policy"]["version"], 1, "{unchanged}");
}
