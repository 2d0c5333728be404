//! Sessions against `cardstream api` as it runs, with two replicas on one database: an ended
//! session (logout, new password, a disabled, deleted, demoted or re-linked user, a password
//! reset) is refused by every replica within 2 seconds; people join only by one-time
//! invitation links, which expire and can be revoked.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::api::{ADMIN, ALICE, ApiProcess, BOB, PASSWORD, ROOT, Seeded, code, within};
use serde_json::{Value, json};

const ME: &str = "{ viewer { user { email role } } }";

/// Whether `token` is refused (UNAUTHENTICATED) by `api`.
async fn refused(api: &ApiProcess, token: &str) -> bool {
    let response = api.gql(Some(token), ME, json!({})).await;
    response["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
}

async fn user_id(api: &ApiProcess, admin: &str, email: &str) -> String {
    let users = api
        .gql(
            Some(admin),
            "{ users(first: 100) { nodes { id email } } }",
            json!({}),
        )
        .await;
    users["data"]["users"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == email)
        .unwrap_or_else(|| panic!("{email} is not in {users}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn mutate(api: &ApiProcess, token: &str, mutation: &str, variables: Value) -> Value {
    let response = api.gql(Some(token), mutation, variables).await;
    assert!(response["errors"].is_null(), "{mutation}: {response}");
    response["data"].clone()
}

#[tokio::test]
async fn every_way_a_session_ends_is_refused_by_every_replica_within_two_seconds() {
    let seeded = Seeded::new().await;
    let a = ApiProcess::start(&seeded, &[]).await;
    let b = ApiProcess::start(&seeded, &[]).await;
    let admin = a.login(ADMIN).await;
    let limit = Duration::from_secs(2);

    // Logout on replica A; replica B, which has the session cached, refuses it too.
    let token = a.login(ALICE).await;
    assert!(!refused(&b, &token).await, "a fresh session works on B");
    assert_eq!(
        a.gql(
            Some(&token),
            "mutation { logout(input: {}) { ended } }",
            json!({})
        )
        .await["data"]["logout"]["ended"],
        json!(true)
    );
    assert!(
        refused(&a, &token).await,
        "A still accepts a logged-out token"
    );
    let took = within(limit, "B refuses a logged-out token", || {
        refused(&b, &token)
    })
    .await;
    eprintln!("logout refused by the other replica after {took:?}");

    // Changing a password ends every session of the user, on both replicas; the answer
    // carries a working token.
    let first = a.login(BOB).await;
    let second = b.login(BOB).await;
    let changed = mutate(
        &a,
        &first,
        "mutation($c: String!, $n: String!) { changePassword(input: {currentPassword: $c, newPassword: $n}) { token } }",
        json!({"c": PASSWORD, "n": "a brand new passphrase"}),
    )
    .await;
    for token in [&first, &second] {
        within(limit, "old sessions end with a new password", || {
            refused(&b, token)
        })
        .await;
    }
    let fresh = changed["changePassword"]["token"].as_str().unwrap();
    assert!(!refused(&b, fresh).await, "the new token works");
    assert!(
        a.login_with(BOB, PASSWORD).await.is_err(),
        "the old password still works"
    );
    a.login_with(BOB, "a brand new passphrase").await.unwrap();

    // Each admin edit of a user ends their sessions everywhere.
    let root_id = user_id(&a, &admin, ROOT).await;
    let alice_id = user_id(&a, &admin, ALICE).await;
    let edits = [
        (
            "setUserRole",
            alice_id.clone(),
            "mutation($id: ID!) { setUserRole(input: {userId: $id, role: CARDHOLDER}) { user { id } } }",
        ),
        (
            "setUserCardholders",
            alice_id.clone(),
            "mutation($id: ID!) { setUserCardholders(input: {userId: $id, cardholderIds: []}) { user { id } } }",
        ),
        (
            "disableUser",
            alice_id.clone(),
            "mutation($id: ID!) { disableUser(input: {userId: $id}) { user { disabled } } }",
        ),
        (
            "resetPassword",
            root_id.clone(),
            "mutation($id: ID!) { resetPassword(input: {userId: $id}) { token } }",
        ),
    ];
    for (name, id, mutation) in edits {
        if name == "resetPassword" {
            let victim = a.login(ROOT).await;
            let other = b.login(ROOT).await;
            mutate(&a, &admin, mutation, json!({"id": id})).await;
            for token in [&victim, &other] {
                within(limit, name, || refused(&b, token)).await;
            }
            assert!(
                a.login_with(ROOT, PASSWORD).await.is_err(),
                "reset keeps the old password"
            );
        } else {
            let victim = b.login(ALICE).await;
            mutate(&a, &admin, mutation, json!({"id": id})).await;
            let took = within(limit, name, || refused(&b, &victim)).await;
            eprintln!("{name}: the other replica refused the session after {took:?}");
        }
    }
    // A disabled user cannot sign in; enabled again, they can.
    let refusal = a.login_with(ALICE, PASSWORD).await.unwrap_err();
    assert_eq!(code(&refusal), "UNAUTHENTICATED");
    mutate(
        &a,
        &admin,
        "mutation($id: ID!) { enableUser(input: {userId: $id}) { user { disabled } } }",
        json!({"id": alice_id}),
    )
    .await;
    let back = a.login(ALICE).await;
    // Deleting a user ends their sessions too.
    mutate(
        &a,
        &admin,
        "mutation($id: ID!) { deleteUser(input: {userId: $id}) { deletedUserId } }",
        json!({"id": alice_id}),
    )
    .await;
    within(limit, "deleteUser", || refused(&b, &back)).await;

    // The last enabled admin cannot be removed (ROOT's password was reset, but it is enabled).
    let admin_id = user_id(&a, &admin, ADMIN).await;
    mutate(
        &a,
        &admin,
        "mutation($id: ID!) { disableUser(input: {userId: $id}) { user { id } } }",
        json!({"id": root_id}),
    )
    .await;
    let last = a
        .gql(
            Some(&admin),
            "mutation($id: ID!) { setUserRole(input: {userId: $id, role: CARDHOLDER}) { user { id } } }",
            json!({"id": admin_id}),
        )
        .await;
    assert_eq!(code(&last), "CONFLICT", "{last}");
}

#[tokio::test]
async fn people_join_only_by_one_time_invitations_that_expire_and_can_be_revoked() {
    let seeded = Seeded::new().await;
    let api = ApiProcess::start(&seeded, &["--invitation-ttl", "3s"]).await;
    let admin = api.login(ADMIN).await;
    let alice = api.login(ALICE).await;
    let invite = "mutation($e: String!, $h: [ID!]!) { inviteUser(input: {email: $e, role: CARDHOLDER, cardholderIds: $h}) { token invitation { id state kind expiresAt } } }";

    // No open sign-up: the old createUser is gone, and a cardholder cannot invite.
    let signup = api
        .gql(None, "mutation { createUser(input: {email: \"x@example.com\", password: \"long enough password\", role: ADMIN}) { id } }", json!({}))
        .await;
    assert_eq!(code(&signup), "GRAPHQL_VALIDATION_FAILED", "{signup}");
    let by_alice = api
        .gql(Some(&alice), invite, json!({"e": "m@example.com", "h": []}))
        .await;
    assert_eq!(code(&by_alice), "FORBIDDEN");

    let made = mutate(
        &api,
        &admin,
        invite,
        json!({"e": "carol@example.com", "h": [seeded.bob_holder]}),
    )
    .await;
    let token = made["inviteUser"]["token"].as_str().unwrap().to_owned();
    assert_eq!(made["inviteUser"]["invitation"]["state"], "PENDING");
    assert!(token.len() >= 64, "the link carries 256 random bits");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM invitations WHERE encode(token_sha256, 'hex') = $1 OR position($1 in email) > 0")
        .bind(&token)
        .fetch_one(seeded.store.pool())
        .await
        .unwrap();
    assert_eq!(stored, 0, "the link's secret is not stored as such");

    let preview = api
        .gql(
            None,
            "query($t: String!) { invitation(token: $t) { email kind } }",
            json!({"t": token}),
        )
        .await;
    assert_eq!(preview["data"]["invitation"]["email"], "carol@example.com");
    let accept = "mutation($t: String!, $p: String!) { acceptInvitation(input: {token: $t, password: $p}) { token user { email role cardholderIds } } }";
    let short = api
        .gql(None, accept, json!({"t": token, "p": "short"}))
        .await;
    assert_eq!(code(&short), "BAD_USER_INPUT");
    let joined = api
        .gql(
            None,
            accept,
            json!({"t": token, "p": "carol's own passphrase"}),
        )
        .await;
    assert_eq!(
        joined["data"]["acceptInvitation"]["user"]["email"], "carol@example.com",
        "{joined}"
    );
    assert_eq!(
        joined["data"]["acceptInvitation"]["user"]["cardholderIds"],
        json!([seeded.bob_holder])
    );
    let carol = joined["data"]["acceptInvitation"]["token"]
        .as_str()
        .unwrap();
    assert!(!refused(&api, carol).await);
    api.login_with("carol@example.com", "carol's own passphrase")
        .await
        .unwrap();
    // One time only.
    let again = api
        .gql(
            None,
            accept,
            json!({"t": token, "p": "someone else's passphrase"}),
        )
        .await;
    assert_eq!(code(&again), "NOT_FOUND");
    // Inviting an existing user is a conflict.
    let existing = api
        .gql(
            Some(&admin),
            invite,
            json!({"e": "CAROL@example.com", "h": []}),
        )
        .await;
    assert_eq!(code(&existing), "CONFLICT");

    // Revoked.
    let made = mutate(
        &api,
        &admin,
        invite,
        json!({"e": "dave@example.com", "h": []}),
    )
    .await;
    let dave = made["inviteUser"]["token"].as_str().unwrap().to_owned();
    let id = made["inviteUser"]["invitation"]["id"].as_str().unwrap();
    let revoked = mutate(
        &api,
        &admin,
        "mutation($id: ID!) { revokeInvitation(input: {invitationId: $id}) { invitation { state } } }",
        json!({"id": id}),
    )
    .await;
    assert_eq!(
        revoked["revokeInvitation"]["invitation"]["state"],
        "REVOKED"
    );
    let late = api
        .gql(
            None,
            accept,
            json!({"t": dave, "p": "dave's own passphrase"}),
        )
        .await;
    assert_eq!(code(&late), "NOT_FOUND");

    // Expired (the ttl is 3 s here; 72 h by default).
    let made = mutate(
        &api,
        &admin,
        invite,
        json!({"e": "erin@example.com", "h": []}),
    )
    .await;
    let erin = made["inviteUser"]["token"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let expired = api
        .gql(
            None,
            accept,
            json!({"t": erin, "p": "erin's own passphrase"}),
        )
        .await;
    assert_eq!(code(&expired), "NOT_FOUND");
    let listed = mutate(
        &api,
        &admin,
        "{ invitations { nodes { email state } } }",
        json!({}),
    )
    .await;
    let states: Vec<(String, String)> = listed["invitations"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["email"].as_str().unwrap().into(),
                i["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        states.contains(&("erin@example.com".into(), "EXPIRED".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&("dave@example.com".into(), "REVOKED".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&("carol@example.com".into(), "ACCEPTED".into())),
        "{states:?}"
    );

    // A password reset link sets a new password once.
    let bob_id = user_id(&api, &admin, BOB).await;
    let reset = mutate(
        &api,
        &admin,
        "mutation($id: ID!) { resetPassword(input: {userId: $id}) { token invitation { kind } } }",
        json!({"id": bob_id}),
    )
    .await;
    assert_eq!(
        reset["resetPassword"]["invitation"]["kind"],
        "PASSWORD_RESET"
    );
    let link = reset["resetPassword"]["token"].as_str().unwrap();
    let used = api
        .gql(
            None,
            accept,
            json!({"t": link, "p": "bob's next passphrase"}),
        )
        .await;
    assert_eq!(
        used["data"]["acceptInvitation"]["user"]["email"], BOB,
        "{used}"
    );
    api.login_with(BOB, "bob's next passphrase").await.unwrap();
}
