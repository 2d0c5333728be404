//! The change feed behind the live dashboard: 200 authorizations changed in one batch, and a
//! refund on one 100 places back, reach a card's subscriber each exactly once; a subscriber
//! that reconnects with the last number it saw gets exactly what it missed; and the API reads
//! the feed once per notification however many subscribe.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use cardstream_store::{IncomingEvent, Position};
use common::{PASSWORD, Socket, TestApi, next_message, subscribe_to};
use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../stripe/tests/fixtures");

/// A signed-in socket subscribed to `card`'s activity (after `after_seq`, when given) as "1".
async fn follow(api: &TestApi, token: &str, card: &str, after_seq: Option<i64>) -> Socket {
    let query = "subscription($id: ID!, $after: Long) {
        activity(cardId: $id, afterSeq: $after) { seq authorization { id status } } }";
    subscribe_to(api, token, query, json!({"id": card, "after": after_seq})).await
}

/// Every activity message until none comes for `quiet`: `(seq, authorization id)`.
async fn drain(ws: &mut Socket, quiet: Duration) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    while let Some(m) = next_message(ws, quiet).await {
        assert_eq!(m["type"], "next", "{m}");
        let a = &m["payload"]["data"]["activity"];
        out.push((
            a["seq"].as_i64().unwrap(),
            a["authorization"]["id"].as_str().unwrap().to_owned(),
        ));
    }
    out
}

fn event(kind: &str, object: Value, n: usize, created: i64) -> IncomingEvent {
    let body = json!({
        "id": format!("evt_feed_{kind}_{n}"), "object": "event", "api_version": "2024-06-20",
        "created": created, "livemode": false, "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null}, "type": kind,
        "data": {"object": object},
    });
    IncomingEvent::parse(body.to_string().as_bytes(), 0, 0).unwrap()
}

async fn apply(api: &TestApi, events: &[IncomingEvent]) {
    let position = [Position {
        partition: 0,
        next_offset: 1,
    }];
    api.store
        .apply_batch("test", "test", events, &position)
        .await
        .unwrap();
}

fn fixture(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()).unwrap()
}

/// The API's own count of the statements it sent (its `/metrics` counter).
async fn statements(api: &TestApi) -> u64 {
    api.registry
        .gather()
        .iter()
        .find(|f| f.name() == "cardstream_database_statements_total")
        .map(|f| f.get_metric()[0].get_counter().get_value() as u64)
        .unwrap()
}

#[tokio::test]
async fn every_change_reaches_a_subscriber_once_and_a_reconnect_misses_nothing() {
    let api = TestApi::start(&[]).await;
    let alice = api.login("alice@example.com").await;
    let card = api.cards_of(&api.alice_holder.clone())[0].clone();
    let holder = api.alice_holder.clone();
    let mut ws = follow(&api, &alice, &card, None).await;
    // Ten more subscribers on the same card: the API's reads per notification stay the same.
    let mut others = Vec::new();
    for _ in 0..10 {
        others.push(follow(&api, &alice, &card, None).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // 200 new authorizations of the card, in one batch.
    let base = 1_765_000_000;
    let authorization = fixture("issuing.authorization.json");
    let ids: Vec<String> = (0..200).map(|n| format!("iauth_feed{n:04}")).collect();
    let batch: Vec<IncomingEvent> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| {
            let mut a = authorization.clone();
            a["id"] = json!(id);
            a["card"]["id"] = json!(card);
            a["card"]["cardholder"]["id"] = json!(holder);
            a["cardholder"] = json!(holder);
            a["created"] = json!(base + n as i64);
            event("issuing_authorization.created", a, n, base + n as i64)
        })
        .collect();
    let before = statements(&api).await;
    apply(&api, &batch).await;
    let got = drain(&mut ws, Duration::from_secs(2)).await;
    let read_once = statements(&api).await - before;
    let pushed: Vec<&String> = got.iter().map(|(_, id)| id).collect();
    assert_eq!(pushed.len(), 200, "each of the 200 once");
    assert_eq!(pushed.iter().collect::<BTreeSet<_>>().len(), 200);
    assert_eq!(
        pushed.iter().map(|s| s.as_str()).collect::<BTreeSet<_>>(),
        ids.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "in number order");
    for other in &mut others {
        assert_eq!(drain(other, Duration::from_millis(300)).await.len(), 200);
    }
    // Two statements read the feed for all eleven subscribers: what they select is on the
    // authorization's row. (A subscriber that selects more, its transactions say, pays for
    // those loads itself, one per authorization it is sent.) At most one more may run in the
    // window, whatever the number of subscribers: the sockets re-check their (shared) session
    // every 5 s from a cache read again every 30 s. Re-reading per subscriber, as before the
    // feed, would be eleven.
    assert!(
        (2..=3).contains(&read_once),
        "{read_once} statements for one notification with 11 subscribers"
    );

    // A refund on the authorization 100 places back: pushed once, with its refund.
    let back = &ids[99];
    let mut refund = fixture("issuing.transaction.json");
    refund["id"] = json!("ipi_feed_refund");
    refund["type"] = json!("refund");
    refund["amount"] = json!(500);
    refund["authorization"] = json!(back);
    refund["card"] = json!(card);
    refund["cardholder"] = json!(holder);
    refund["created"] = json!(base + 1_000);
    let seen = got.last().unwrap().0;
    apply(
        &api,
        &[event(
            "issuing_transaction.created",
            refund,
            0,
            base + 1_000,
        )],
    )
    .await;
    let got = drain(&mut ws, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(&got[0].1, back);
    let refunded = api
        .gql(
            Some(&alice),
            "query($id: ID!) { authorization(id: $id) { transactions { kind } } }",
            json!({"id": back}),
        )
        .await;
    assert_eq!(
        refunded["data"]["authorization"]["transactions"],
        json!([{"kind": "REFUND"}]),
        "{refunded}"
    );

    // A subscriber that saw up to the 150th change, reconnecting, gets the 50 after it and
    // the refund, then follows live changes.
    let mut again = follow(&api, &alice, &card, Some(seen - 50)).await;
    let missed = drain(&mut again, Duration::from_secs(2)).await;
    let expected: Vec<&String> = ids[150..].iter().chain(std::iter::once(back)).collect();
    let missed_ids: Vec<&String> = missed.iter().map(|(_, id)| id).collect();
    assert_eq!(missed_ids.len(), 51, "{missed_ids:?}");
    assert_eq!(
        missed_ids.iter().collect::<BTreeSet<_>>(),
        expected.iter().collect::<BTreeSet<_>>()
    );
}

#[tokio::test]
async fn the_programs_ticks_come_at_most_once_a_second_and_only_to_admins() {
    let api = TestApi::start(&[]).await;
    let query = "subscription { programActivity { changedCards } }";
    let alice = api.login("alice@example.com").await;
    let mut refused = subscribe_to(&api, &alice, query, json!({})).await;
    let answer = next_message(&mut refused, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        answer["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{answer}"
    );

    let admin = api.login("admin@example.com").await;
    let mut ws = subscribe_to(&api, &admin, query, json!({})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Twenty batches as fast as they commit, each a new authorization of a card.
    let card = api.cards_of(&api.alice_holder.clone())[0].clone();
    let holder = api.alice_holder.clone();
    let started = std::time::Instant::now();
    for n in 0..20 {
        let mut a = fixture("issuing.authorization.json");
        a["id"] = json!(format!("iauth_tick{n:02}"));
        a["card"]["id"] = json!(card);
        a["card"]["cardholder"]["id"] = json!(holder);
        a["cardholder"] = json!(holder);
        apply(
            &api,
            &[event(
                "issuing_authorization.created",
                a,
                1_000 + n,
                1_765_100_000 + n as i64,
            )],
        )
        .await;
    }
    let mut ticks = Vec::new();
    while let Some(m) = next_message(&mut ws, Duration::from_millis(1_500)).await {
        ticks.push((
            std::time::Instant::now(),
            m["payload"]["data"]["programActivity"]["changedCards"]
                .as_i64()
                .unwrap(),
        ));
    }
    let seconds = started.elapsed().as_secs_f64();
    assert!(!ticks.is_empty(), "no tick for 20 batches");
    assert!(
        ticks.len() as f64 <= seconds.ceil() + 1.0,
        "{} ticks in {seconds:.1} s",
        ticks.len()
    );
    // A second apart as sent; as received, give or take the socket's own delays: a tick
    // held up on its way shortens the gap after it (the first has been seen to arrive 160 ms
    // late, and a gap of 653 ms on a loaded machine). Unthrottled ticks would come
    // milliseconds apart, one per batch; the count above bounds their rate.
    let gaps: Vec<Duration> = ticks.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_millis(500)),
        "ticks {gaps:?} apart"
    );
    // Every batch is counted in some tick: one card each.
    assert_eq!(ticks.iter().map(|t| t.1).sum::<i64>(), 20);
}

/// A reconnect whose missed changes were pruned (they are kept an hour) is refused with the
/// reason, not served a feed with a hole in it; one whose next change is still kept is served.
#[tokio::test]
async fn a_reconnect_after_its_changes_were_pruned_is_told_to_load_the_page_again() {
    let api = TestApi::start(&[]).await;
    let alice = api.login("alice@example.com").await;
    let card = api.cards_of(&api.alice_holder.clone())[0].clone();
    let holder = api.alice_holder.clone();
    for (n, id) in ["iauth_pruned_a", "iauth_pruned_b"].iter().enumerate() {
        let mut a = fixture("issuing.authorization.json");
        a["id"] = json!(id);
        a["card"]["id"] = json!(card);
        a["card"]["cardholder"]["id"] = json!(holder);
        a["cardholder"] = json!(holder);
        let created = 1_765_300_000 + n as i64;
        apply(
            &api,
            &[event(
                "issuing_authorization.created",
                a,
                2_000 + n,
                created,
            )],
        )
        .await;
    }
    let seqs: Vec<i64> = sqlx::query_scalar(
        "SELECT seq FROM activity_changes WHERE authorization_id LIKE 'iauth_pruned_%' ORDER BY seq",
    )
    .fetch_all(api.store.pool())
    .await
    .unwrap();
    let [first, second] = seqs[..] else {
        panic!("two changes: {seqs:?}")
    };
    // Pruned as an aggregator prunes what is past the hour: everything up to the first.
    sqlx::query("DELETE FROM activity_changes WHERE seq <= $1")
        .bind(first)
        .execute(api.store.pool())
        .await
        .unwrap();

    let mut refused = follow(&api, &alice, &card, Some(first - 1)).await;
    let answer = next_message(&mut refused, Duration::from_secs(5))
        .await
        .unwrap();
    let error = &answer["payload"]["errors"][0];
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{answer}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("no longer kept"),
        "{answer}"
    );

    let mut served = follow(&api, &alice, &card, Some(first)).await;
    let changes = drain(&mut served, Duration::from_secs(2)).await;
    assert_eq!(changes, [(second, "iauth_pruned_b".to_owned())]);
}

/// An admin limited to a Connect account is ticked for its account's changes only, and does
/// not learn of the others'.
#[tokio::test]
async fn an_account_admins_ticks_count_only_its_accounts_changes() {
    const ACCOUNT: &str = "acct_1TickScope";
    let api = TestApi::start(&[]).await;
    let hash = cardstream_api::hash_password(PASSWORD).unwrap();
    let user = api
        .store
        .create_user(
            "acct-admin@example.com",
            &hash,
            cardstream_store::Role::Admin,
            &[],
            "test",
        )
        .await
        .unwrap();
    api.store
        .set_user_accounts(user.id, &[ACCOUNT.to_owned()], "test")
        .await
        .unwrap();
    let query = "subscription { programActivity { changedCards } }";
    let limited = api.login("acct-admin@example.com").await;
    let mut limited = subscribe_to(&api, &limited, query, json!({})).await;
    let platform = api.login("admin@example.com").await;
    let mut platform = subscribe_to(&api, &platform, query, json!({})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let changed = |m: Option<Value>| {
        m.map(|m| m["payload"]["data"]["programActivity"]["changedCards"].clone())
    };

    // The platform's own purchase: the platform admin is ticked, the account's admin not.
    let card = api.cards_of(&api.alice_holder.clone())[0].clone();
    let holder = api.alice_holder.clone();
    let authorization = |id: &str| {
        let mut a = fixture("issuing.authorization.json");
        a["id"] = json!(id);
        a["card"]["id"] = json!(card);
        a["card"]["cardholder"]["id"] = json!(holder);
        a["cardholder"] = json!(holder);
        a
    };
    let own = event(
        "issuing_authorization.created",
        authorization("iauth_scope_platform"),
        1,
        1_765_200_000,
    );
    apply(&api, &[own]).await;
    assert_eq!(
        changed(next_message(&mut platform, Duration::from_secs(5)).await),
        Some(json!(1))
    );
    assert_eq!(
        changed(next_message(&mut limited, Duration::from_secs(2)).await),
        None
    );

    // One of the account's: both are ticked, for one card.
    let mut body = json!({
        "id": "evt_scope_account", "object": "event", "api_version": "2024-06-20",
        "created": 1_765_200_001, "livemode": false, "pending_webhooks": 1, "account": ACCOUNT,
        "request": {"id": null, "idempotency_key": null}, "type": "issuing_authorization.created",
        "data": {"object": authorization("iauth_scope_account")},
    });
    body["data"]["object"]["card"]["id"] = json!("ic_scope_account");
    let theirs = IncomingEvent::parse(body.to_string().as_bytes(), 0, 0).unwrap();
    apply(&api, &[theirs]).await;
    assert_eq!(
        changed(next_message(&mut limited, Duration::from_secs(5)).await),
        Some(json!(1))
    );
    assert_eq!(
        changed(next_message(&mut platform, Duration::from_secs(5)).await),
        Some(json!(1))
    );
}

/// Changes of one batch come in the order the purchases happened, whatever their ids.
#[tokio::test]
async fn a_batchs_changes_come_in_the_order_the_purchases_happened() {
    let api = TestApi::start(&[]).await;
    let alice = api.login("alice@example.com").await;
    let card = api.cards_of(&api.alice_holder.clone())[0].clone();
    let holder = api.alice_holder.clone();
    let mut ws = follow(&api, &alice, &card, None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Ids in the opposite order of the times.
    let ids = ["iauth_order_c", "iauth_order_b", "iauth_order_a"];
    let batch: Vec<IncomingEvent> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| {
            let mut a = fixture("issuing.authorization.json");
            a["id"] = json!(id);
            a["card"]["id"] = json!(card);
            a["card"]["cardholder"]["id"] = json!(holder);
            a["cardholder"] = json!(holder);
            a["created"] = json!(1_765_200_000 + n as i64);
            event(
                "issuing_authorization.created",
                a,
                2_000 + n,
                1_765_200_000 + n as i64,
            )
        })
        .collect();
    apply(&api, &batch).await;
    let got: Vec<String> = drain(&mut ws, Duration::from_secs(2))
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(got, ids);
}
