//! Stripe Connect: a user limited to an account reaches only that account's cards,
//! cardholders, authorizations and transactions, through every query, `node`, and the
//! subscription; a platform admin sees every account and can narrow any list to one.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::{TestApi, code, next_message, subscribe};
use serde_json::{Value, json};

const A: &str = "acct_1ConnectA";
const B: &str = "acct_1ConnectB";

async fn start() -> TestApi {
    let api = TestApi::start_with_accounts(&[], &[None, Some(A.into()), Some(B.into())]).await;
    let hash = cardstream_api::hash_password(common::PASSWORD).unwrap();
    for (email, account) in [("a-admin@example.com", A), ("b-admin@example.com", B)] {
        let user = api
            .store
            .create_user(email, &hash, cardstream_store::Role::Admin, &[], "test")
            .await
            .unwrap();
        api.store
            .set_user_accounts(user.id, &[account.to_owned()], "test")
            .await
            .unwrap();
    }
    api
}

async fn ids(api: &TestApi, sql: &str) -> BTreeSet<String> {
    sqlx::query_scalar::<_, String>(sql)
        .fetch_all(api.store.pool())
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// The user with `email` as the platform admin `token` lists them: id, email, accounts.
async fn user(api: &TestApi, token: &str, email: &str) -> Value {
    let users = api
        .gql(
            Some(token),
            "{ users(first: 10) { nodes { id email accounts } } }",
            json!({}),
        )
        .await;
    users["data"]["users"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{users}"))
        .iter()
        .find(|u| u["email"] == email)
        .unwrap_or_else(|| panic!("no {email}: {users}"))
        .clone()
}

fn node_ids(list: &Value) -> BTreeSet<String> {
    list["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("not a connection: {list}"))
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

const LISTS: &str = "query($account: ID) {
    cards(first: 100, account: $account) { totalCount nodes { id account } }
    viewer { cards(first: 100, account: $account) { totalCount nodes { id } } }
    cardholders(first: 100, account: $account) { totalCount nodes { id account } }
    accounts { id cards cardholders }
}";

/// What `token` reaches of another account's objects: the answers of `card`, `node` and
/// `authorization` for each, which must all be empty.
async fn reaches(api: &TestApi, token: &str, account: &str) -> Vec<String> {
    let mut reached = Vec::new();
    let cards = ids(
        api,
        &format!("SELECT id FROM cards WHERE account = '{account}'"),
    )
    .await;
    let holders = ids(
        api,
        &format!("SELECT id FROM cardholders WHERE account = '{account}'"),
    )
    .await;
    let auths = ids(
        api,
        &format!("SELECT id FROM authorizations WHERE account = '{account}' LIMIT 20"),
    )
    .await;
    let txns = ids(
        api,
        &format!("SELECT id FROM transactions WHERE account = '{account}' LIMIT 20"),
    )
    .await;
    assert!(
        !cards.is_empty() && !auths.is_empty() && !txns.is_empty(),
        "{account} has no activity"
    );
    for id in cards.iter().chain(&holders).chain(&auths).chain(&txns) {
        let r = api
            .gql(
                Some(token),
                "query($id: ID!) { node(id: $id) { id } }",
                json!({"id": id}),
            )
            .await;
        if r["data"]["node"] != Value::Null || r.get("errors").is_some() {
            reached.push(format!("node {id}: {r}"));
        }
    }
    for id in &cards {
        let r = api
            .gql(
                Some(token),
                "query($id: ID!) { card(id: $id) { id } }",
                json!({"id": id}),
            )
            .await;
        if code(&r) != "NOT_FOUND" {
            reached.push(format!("card {id}: {r}"));
        }
    }
    for id in &auths {
        let r = api
            .gql(
                Some(token),
                "query($id: ID!) { authorization(id: $id) { id } }",
                json!({"id": id}),
            )
            .await;
        if code(&r) != "NOT_FOUND" {
            reached.push(format!("authorization {id}: {r}"));
        }
    }
    let r = api
        .gql(Some(token), LISTS, json!({"account": account}))
        .await;
    if code(&r) != "NOT_FOUND" {
        reached.push(format!("lists of {account}: {r}"));
    }
    let r = api
        .gql(
            Some(token),
            "query($a: ID) { disputes(account: $a) { nodes { id } } }",
            json!({"a": account}),
        )
        .await;
    if code(&r) != "NOT_FOUND" {
        reached.push(format!("disputes of {account}: {r}"));
    }
    // The live activity of the account's busiest card.
    let card: String = sqlx::query_scalar(&format!(
        "SELECT card_id FROM authorizations WHERE account = '{account}'
         GROUP BY card_id ORDER BY count(*) DESC, card_id LIMIT 1"
    ))
    .fetch_one(api.store.pool())
    .await
    .unwrap();
    let mut ws = subscribe(api, token, &card).await;
    let answer = next_message(&mut ws, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    if answer["payload"]["errors"][0]["extensions"]["code"] != "NOT_FOUND" {
        reached.push(format!("activity of {card}: {answer}"));
    }
    reached
}

#[tokio::test]
async fn each_account_sees_only_its_own_and_the_platform_admin_sees_all() {
    let api = start().await;
    let platform = api.login("admin@example.com").await;
    let all_cards = ids(&api, "SELECT id FROM cards").await;
    let all_holders = ids(&api, "SELECT id FROM cardholders").await;

    for (email, own, other) in [("a-admin@example.com", A, B), ("b-admin@example.com", B, A)] {
        let token = api.login(email).await;
        let cards = ids(
            &api,
            &format!("SELECT id FROM cards WHERE account = '{own}'"),
        )
        .await;
        let holders = ids(
            &api,
            &format!("SELECT id FROM cardholders WHERE account = '{own}'"),
        )
        .await;
        assert!(
            !cards.is_empty() && cards.len() < all_cards.len(),
            "{own}: {cards:?}"
        );

        // Every list, with and without naming their own account.
        for account in [Value::Null, json!(own)] {
            let r = api
                .gql(Some(&token), LISTS, json!({"account": account}))
                .await;
            assert!(r.get("errors").is_none(), "{email}: {r}");
            let data = &r["data"];
            assert_eq!(node_ids(&data["cards"]), cards, "{email} cards");
            assert_eq!(data["cards"]["totalCount"], cards.len(), "{email}");
            assert_eq!(
                node_ids(&data["viewer"]["cards"]),
                cards,
                "{email} viewer.cards"
            );
            assert_eq!(
                node_ids(&data["cardholders"]),
                holders,
                "{email} cardholders"
            );
            assert_eq!(data["cardholders"]["totalCount"], holders.len(), "{email}");
            assert!(
                data["cards"]["nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|c| c["account"] == own)
            );
            assert_eq!(
                data["accounts"],
                json!([{"id": own, "cards": cards.len(), "cardholders": holders.len()}]),
                "{email}"
            );
        }
        // Their own cards' pages answer.
        for id in &cards {
            let r = api
                .gql(
                    Some(&token),
                    "query($id: ID!) { card(id: $id) { id cardholder { id } activity(first: 5) { nodes { id } } } }",
                    json!({"id": id}),
                )
                .await;
            assert!(r.get("errors").is_none(), "{email} {id}: {r}");
        }
        // Nothing of the other account, nor of the platform's own, by any path.
        let reached = reaches(&api, &token, other).await;
        assert!(
            reached.is_empty(),
            "{email} reached:\n{}",
            reached.join("\n")
        );
        let platform_card = ids(&api, "SELECT id FROM cards WHERE account IS NULL LIMIT 1").await;
        let platform_card = platform_card.first().unwrap();
        let r = api
            .gql(
                Some(&token),
                "query($id: ID!) { card(id: $id) { id } }",
                json!({"id": platform_card}),
            )
            .await;
        assert_eq!(code(&r), "NOT_FOUND", "{email}: {r}");
        // Users, invitations and the policy span every account: platform admins only.
        for query in [
            "{ users(first: 5) { totalCount } }",
            "{ invitations(first: 5) { nodes { id } } }",
            "{ policy { version } }",
        ] {
            let r = api.gql(Some(&token), query, json!({})).await;
            assert_eq!(code(&r), "FORBIDDEN", "{email} {query}: {r}");
        }
    }

    // The platform admin: everything, and each account on asking.
    let r = api
        .gql(Some(&platform), LISTS, json!({"account": null}))
        .await;
    assert_eq!(node_ids(&r["data"]["cards"]), all_cards);
    assert_eq!(node_ids(&r["data"]["cardholders"]), all_holders);
    let listed: Vec<&str> = r["data"]["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [A, B]);
    for account in [A, B] {
        let r = api
            .gql(Some(&platform), LISTS, json!({"account": account}))
            .await;
        let cards = ids(
            &api,
            &format!("SELECT id FROM cards WHERE account = '{account}'"),
        )
        .await;
        assert_eq!(node_ids(&r["data"]["cards"]), cards, "{account}");
        assert_eq!(r["data"]["cards"]["totalCount"], cards.len(), "{account}");
    }
    let r = api
        .gql(Some(&platform), LISTS, json!({"account": "acct_1Unknown"}))
        .await;
    assert_eq!(r["data"]["cards"]["totalCount"], 0, "{r}");
    let r = api
        .gql(
            Some(&platform),
            LISTS,
            json!({"account": "'; DROP TABLE cards"}),
        )
        .await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");
}

#[tokio::test]
async fn limiting_a_user_to_accounts_takes_effect_at_once_and_only_platform_admins_may() {
    let api = start().await;
    let platform = api.login("admin@example.com").await;
    let b_admin = api.login("b-admin@example.com").await;
    let b = user(&api, &platform, "b-admin@example.com").await;
    assert_eq!(b["accounts"], json!([B]));
    let set = "mutation($u: ID!, $a: [ID!]!) { setUserAccounts(input: {userId: $u, accounts: $a}) { user { accounts } } }";

    // An account admin cannot widen anyone, themselves included.
    let r = api
        .gql(Some(&b_admin), set, json!({"u": b["id"], "a": []}))
        .await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    let r = api
        .gql(
            Some(&platform),
            set,
            json!({"u": b["id"], "a": ["cus_123"]}),
        )
        .await;
    assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");

    let r = api
        .gql(Some(&platform), set, json!({"u": b["id"], "a": [A]}))
        .await;
    assert_eq!(
        r["data"]["setUserAccounts"]["user"]["accounts"],
        json!([A]),
        "{r}"
    );
    // Their session ended with the change; signed in again, they see A.
    let r = api
        .gql(
            Some(&b_admin),
            "{ cards(first: 1) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&r), "UNAUTHENTICATED", "{r}");
    let again = api.login("b-admin@example.com").await;
    let r = api.gql(Some(&again), LISTS, json!({"account": null})).await;
    let a_cards = ids(&api, &format!("SELECT id FROM cards WHERE account = '{A}'")).await;
    assert_eq!(node_ids(&r["data"]["cards"]), a_cards);
}

/// An invitation limited to an account creates a user who sees that account from their first
/// request: the limit is written with the user, not set after they could have looked around.
#[tokio::test]
async fn an_invitation_limited_to_an_account_makes_a_user_of_that_account_only() {
    let api = start().await;
    let platform = api.login("admin@example.com").await;
    let b_admin = api.login("b-admin@example.com").await;
    let invite = "mutation($a: [ID!]!) { inviteUser(input: {email: \"a-staff@example.com\", role: ADMIN, accounts: $a}) { token invitation { accounts } } }";

    // Only a platform admin invites, and only real account ids, at most 1,000 of them.
    let r = api.gql(None, invite, json!({"a": [A]})).await;
    assert_eq!(code(&r), "UNAUTHENTICATED", "{r}");
    let r = api.gql(Some(&b_admin), invite, json!({"a": [A]})).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    let many: Vec<String> = (0..1001).map(|i| format!("acct_{i}")).collect();
    let r = api.gql(Some(&platform), invite, json!({"a": many})).await;
    assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");
    for bad in ["cus_123", "acct_", "acct_1' OR '1'='1"] {
        let r = api.gql(Some(&platform), invite, json!({"a": [bad]})).await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "{bad}: {r}");
    }

    let r = api.gql(Some(&platform), invite, json!({"a": [A]})).await;
    assert_eq!(
        r["data"]["inviteUser"]["invitation"]["accounts"],
        json!([A]),
        "{r}"
    );
    let token = r["data"]["inviteUser"]["token"].as_str().unwrap();
    let r = api
        .gql(
            None,
            "mutation($t: String!) { acceptInvitation(input: {token: $t, password: \"long enough password\"}) { token } }",
            json!({"t": token}),
        )
        .await;
    let session = r["data"]["acceptInvitation"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned();

    // Their very first request sees account A only, in lists and in `accounts`.
    let r = api
        .gql(Some(&session), LISTS, json!({"account": null}))
        .await;
    let a_cards = ids(&api, &format!("SELECT id FROM cards WHERE account = '{A}'")).await;
    let a_holders = ids(
        &api,
        &format!("SELECT id FROM cardholders WHERE account = '{A}'"),
    )
    .await;
    assert!(!a_cards.is_empty());
    assert_eq!(node_ids(&r["data"]["cards"]), a_cards, "{r}");
    assert_eq!(node_ids(&r["data"]["cardholders"]), a_holders, "{r}");
    let listed: Vec<&str> = r["data"]["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [A], "{r}");
    let staff = user(&api, &platform, "a-staff@example.com").await;
    assert_eq!(staff["accounts"], json!([A]));
}

/// The admin console's fields for an admin limited to an account: the program overview is
/// its account's alone (another account's is NOT_FOUND), and the platform-wide logs (events,
/// the audit log, dead letters) are FORBIDDEN.
#[tokio::test]
async fn an_account_admins_overview_is_its_accounts_and_the_platform_logs_are_not_theirs() {
    let api = start().await;
    let a_admin = api.login("a-admin@example.com").await;
    let query = "query($r: DateRangeInput!, $account: ID) {
        programSummary(range: $r, account: $account) { approved declined } }";
    let range = json!({"from": "2025-11-01", "to": "2025-12-31"});
    let own = api.gql(Some(&a_admin), query, json!({"r": range})).await;
    let (approved, declined): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE approved),
                count(*) FILTER (WHERE NOT approved AND status <> 'pending')
         FROM authorizations WHERE account = $1",
    )
    .bind(A)
    .fetch_one(api.store.pool())
    .await
    .unwrap();
    assert!(approved > 0, "{A} has approvals");
    assert_eq!(
        own["data"]["programSummary"],
        json!({"approved": approved, "declined": declined}),
        "{own}"
    );
    let other = api
        .gql(Some(&a_admin), query, json!({"r": range, "account": B}))
        .await;
    assert_eq!(code(&other), "NOT_FOUND", "{other}");
    for operation in [
        "{ events { id } }",
        "{ eventTypes }",
        "{ auditLog { id } }",
        "{ deadLetters { id } }",
        "{ pipelineHealth { components { instance } } }",
    ] {
        let response = api.gql(Some(&a_admin), operation, json!({})).await;
        assert_eq!(code(&response), "FORBIDDEN", "{operation}: {response}");
    }
}
