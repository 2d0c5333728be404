//! The audit log: each admin action through the API leaves one entry with who, what it was
//! done to and what changed, in the order done; the log is filtered and paged, refuses edits,
//! and only platform admins read it (see access.rs too).

#![allow(clippy::unwrap_used)]

mod common;

use common::{TestApi, code};
use serde_json::{Value, json};

const LOG: &str = "query($action: String, $before: ID, $first: Int) {
    auditLog(action: $action, before: $before, first: $first) { id at actor action subject details } }";

async fn ok(api: &TestApi, token: &str, query: &str, variables: Value) -> Value {
    let response = api.gql(Some(token), query, variables).await;
    assert!(response["errors"].is_null(), "{query}: {response}");
    response["data"].clone()
}

async fn user_id(api: &TestApi, admin: &str, email: &str) -> String {
    let data = ok(
        api,
        admin,
        "{ users(first: 100) { nodes { id email } } }",
        json!({}),
    )
    .await;
    data["users"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == email)
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .unwrap()
}

#[tokio::test]
async fn every_admin_action_is_logged_with_who_what_and_the_change() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;
    let bob = user_id(&api, &admin, "bob@example.com").await;
    let bob_holder = api.bob_holder.clone();
    let alice_holder = api.alice_holder.clone();
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(api.store.pool())
        .await
        .unwrap();

    let steps = [
        (
            "mutation($u: ID!) { setUserRole(input: {userId: $u, role: ADMIN}) { user { id } } }",
            json!({"u": bob}),
        ),
        (
            "mutation($u: ID!) { setUserRole(input: {userId: $u, role: CARDHOLDER}) { user { id } } }",
            json!({"u": bob}),
        ),
        (
            "mutation($u: ID!, $h: [ID!]!) { setUserCardholders(input: {userId: $u, cardholderIds: $h}) { user { id } } }",
            json!({"u": bob, "h": [bob_holder, alice_holder]}),
        ),
        (
            "mutation($u: ID!) { disableUser(input: {userId: $u}) { user { id } } }",
            json!({"u": bob}),
        ),
        (
            "mutation($u: ID!) { enableUser(input: {userId: $u}) { user { id } } }",
            json!({"u": bob}),
        ),
        (
            "mutation { inviteUser(input: {email: \"carol@example.com\", role: ADMIN}) { token } }",
            json!({}),
        ),
        (
            "mutation($u: ID!) { resetPassword(input: {userId: $u}) { token } }",
            json!({"u": bob}),
        ),
        (
            "mutation { updatePolicy(input: {policy: {blockedCategories: [\"book_stores\"]}}) { policy { version } } }",
            json!({}),
        ),
        (
            "mutation($u: ID!) { deleteUser(input: {userId: $u}) { deletedUserId } }",
            json!({"u": bob}),
        ),
    ];
    for (query, variables) in steps {
        ok(&api, &admin, query, variables).await;
    }
    // The invitation to revoke: the open one for carol.
    let invitations = ok(
        &api,
        &admin,
        "{ invitations(first: 10) { nodes { id email state } } }",
        json!({}),
    )
    .await;
    let carol = invitations["invitations"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["email"] == "carol@example.com")
        .unwrap()["id"]
        .clone();
    ok(
        &api,
        &admin,
        "mutation($i: ID!) { revokeInvitation(input: {invitationId: $i}) { invitation { id } } }",
        json!({"i": carol}),
    )
    .await;
    // A cardholder's own actions: a password change, then a sign-out.
    let alice = api.login("alice@example.com").await;
    let response = api
        .gql(
            Some(&alice),
            "mutation($c: String!, $n: String!) { changePassword(input: {currentPassword: $c, newPassword: $n}) { token } }",
            json!({"c": common::PASSWORD, "n": "another long enough password"}),
        )
        .await;
    let alice = response["data"]["changePassword"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(
        &api,
        &alice,
        "mutation { logout(input: {}) { ended } }",
        json!({}),
    )
    .await;

    let log = ok(&api, &admin, LOG, json!({"first": 20})).await;
    let entries: Vec<&Value> = log["auditLog"].as_array().unwrap().iter().rev().collect();
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(api.store.pool())
        .await
        .unwrap();
    assert_eq!(after - before, 12, "one entry per action");
    let recent: Vec<(String, String, String)> = entries[entries.len() - 12..]
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
                e["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let admin_did = |action: &str, subject: &str| {
        (
            "admin@example.com".to_owned(),
            action.to_owned(),
            subject.to_owned(),
        )
    };
    let alice_did = |action: &str| {
        (
            "alice@example.com".to_owned(),
            action.to_owned(),
            "alice@example.com".to_owned(),
        )
    };
    assert_eq!(
        recent,
        vec![
            admin_did("user.role_changed", "bob@example.com"),
            admin_did("user.role_changed", "bob@example.com"),
            admin_did("user.cardholders_changed", "bob@example.com"),
            admin_did("user.disabled", "bob@example.com"),
            admin_did("user.enabled", "bob@example.com"),
            admin_did("user.invited", "carol@example.com"),
            admin_did("user.password_reset", "bob@example.com"),
            admin_did("policy.updated", "version 1"),
            admin_did("user.deleted", "bob@example.com"),
            admin_did("invitation.revoked", "carol@example.com"),
            alice_did("user.password_changed"),
            alice_did("session.ended"),
        ],
        "actor, action, subject of each"
    );
    // What changed, as each entry says it.
    let details = |i: usize| &entries[entries.len() - 12 + i]["details"];
    assert_eq!(details(0)["from"], "cardholder");
    assert_eq!(details(0)["to"], "admin");
    assert_eq!(details(1)["from"], "admin");
    let mut holders = vec![api.bob_holder.clone(), api.alice_holder.clone()];
    holders.sort();
    assert_eq!(details(2)["from"], json!([api.bob_holder]));
    assert_eq!(details(2)["to"], json!(holders));
    assert_eq!(details(5)["role"], "admin");
    assert_eq!(
        details(7)["from"],
        Value::Null,
        "no policy was saved before"
    );
    assert_eq!(
        details(7)["to"]["blocked_categories"],
        json!(["book_stores"])
    );
    assert_eq!(details(8)["role"], "cardholder");
    assert_eq!(details(11)["reason"], "logout");
    // No secret in any entry: neither the password nor a hash.
    let text = log.to_string();
    assert!(
        !text.contains("another long enough password") && !text.contains("$argon2"),
        "{text}"
    );
}

#[tokio::test]
async fn the_log_is_filtered_paged_and_append_only() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;
    for n in 0..5 {
        let query = format!(
            "mutation {{ updatePolicy(input: {{policy: {{blockedCategories: [\"book_stores\"], allowedCurrencies: [\"usd\"]}}, expectedVersion: {n}}}) {{ policy {{ version }} }} }}"
        );
        ok(&api, &admin, &query, json!({})).await;
    }
    let first = ok(
        &api,
        &admin,
        LOG,
        json!({"action": "policy.updated", "first": 3}),
    )
    .await;
    let page: Vec<&str> = first["auditLog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(page, ["version 5", "version 4", "version 3"]);
    let last = first["auditLog"][2]["id"].clone();
    let next = ok(
        &api,
        &admin,
        LOG,
        json!({"action": "policy.updated", "first": 3, "before": last}),
    )
    .await;
    let page: Vec<&str> = next["auditLog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(page, ["version 2", "version 1"]);
    // Each save's entry says what the policy was before it.
    assert_eq!(
        first["auditLog"][0]["details"]["from"]["allowed_currencies"],
        json!(["usd"])
    );

    for (variables, message) in [
        (json!({"first": 0}), "between 1 and 200"),
        (json!({"first": 201}), "between 1 and 200"),
        (json!({"before": "x"}), "not an entry's id"),
    ] {
        let response = api.gql(Some(&admin), LOG, variables).await;
        assert_eq!(code(&response), "BAD_USER_INPUT", "{response}");
        assert!(response.to_string().contains(message), "{response}");
    }
    // Not even the database's owner edits an entry without disabling the trigger first.
    for sql in [
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
    ] {
        let err = sqlx::query(sql)
            .execute(api.store.pool())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
}
