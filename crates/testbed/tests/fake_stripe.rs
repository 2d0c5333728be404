//! The fake Stripe API answers as Stripe documents its list endpoints: pages newest first,
//! cursors both ways, created ranges, account scoping, errors in Stripe's shape, and faults on
//! schedule.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cardstream_testbed::{FakeStripe, Fault, HttpResponse, get_with};
use serde_json::{Value, json};

const KEY: &str = "rk_test_fake";
const CARDS: &str = "/v1/issuing/cards";

async fn get(fake: &FakeStripe, path_and_query: &str, account: Option<&str>) -> HttpResponse {
    let bearer = format!("Bearer {KEY}");
    let mut headers = vec![("authorization", bearer.as_str())];
    if let Some(account) = account {
        headers.push(("stripe-account", account));
    }
    get_with(&format!("{}{path_and_query}", fake.url()), &headers).await
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

/// 25 cards, three of them created in the same second (the id orders those).
async fn with_cards() -> (FakeStripe, Vec<String>) {
    let fake = FakeStripe::start(KEY).await;
    let mut expected = Vec::new();
    for i in 0..25 {
        let created = 1_700_000_000 + i.min(22);
        let id = format!("ic_{i:02}");
        fake.insert(
            None,
            CARDS,
            json!({"id": id, "object": "issuing.card", "created": created}),
        );
        expected.push((created, id));
    }
    expected.sort();
    expected.reverse();
    (fake, expected.into_iter().map(|(_, id)| id).collect())
}

#[tokio::test]
async fn pages_run_newest_first_forward_and_back_with_has_more() {
    let (fake, newest_first) = with_cards().await;
    let first = get(&fake, &format!("{CARDS}?limit=10"), None).await;
    assert_eq!(first.status, 200);
    let first = first.json();
    assert_eq!(first["object"], "list");
    assert_eq!(first["url"], CARDS);
    assert_eq!(first["has_more"], true);
    // Forward with starting_after until has_more is false: every card once, newest first.
    let mut read = ids(&first);
    let mut page = first;
    while page["has_more"] == true {
        let last = read.last().unwrap().clone();
        page = get(
            &fake,
            &format!("{CARDS}?limit=10&starting_after={last}"),
            None,
        )
        .await
        .json();
        read.extend(ids(&page));
    }
    assert_eq!(read, newest_first);
    // Back from the oldest with ending_before: the pages nearer the newest, in list order.
    let oldest = newest_first.last().unwrap();
    let back = get(
        &fake,
        &format!("{CARDS}?limit=10&ending_before={oldest}"),
        None,
    )
    .await
    .json();
    assert_eq!(ids(&back), newest_first[14..24].to_vec());
    assert_eq!(back["has_more"], true);
    let start = &newest_first[4];
    let back = get(
        &fake,
        &format!("{CARDS}?limit=10&ending_before={start}"),
        None,
    )
    .await
    .json();
    assert_eq!(ids(&back), newest_first[..4].to_vec());
    assert_eq!(back["has_more"], false);
    // The default page is 10.
    let default = get(&fake, CARDS, None).await.json();
    assert_eq!(ids(&default), newest_first[..10].to_vec());
}

#[tokio::test]
async fn created_ranges_select_exactly_their_objects() {
    let (fake, _) = with_cards().await;
    let page = get(
        &fake,
        &format!("{CARDS}?limit=100&created[gte]=1700000005&created[lt]=1700000008"),
        None,
    )
    .await
    .json();
    assert_eq!(ids(&page), ["ic_07", "ic_06", "ic_05"]);
    let page = get(
        &fake,
        &format!("{CARDS}?limit=100&created[gt]=1700000021&created[lte]=1700000022"),
        None,
    )
    .await
    .json();
    assert_eq!(ids(&page), ["ic_24", "ic_23", "ic_22"]);
}

#[tokio::test]
async fn a_connected_account_sees_only_its_own_objects() {
    let fake = FakeStripe::start(KEY).await;
    fake.insert(None, CARDS, json!({"id": "ic_platform", "created": 1}));
    fake.insert(
        Some("acct_1"),
        CARDS,
        json!({"id": "ic_acct_1", "created": 2}),
    );
    fake.insert(
        Some("acct_2"),
        CARDS,
        json!({"id": "ic_acct_2", "created": 3}),
    );
    assert_eq!(ids(&get(&fake, CARDS, None).await.json()), ["ic_platform"]);
    assert_eq!(
        ids(&get(&fake, CARDS, Some("acct_1")).await.json()),
        ["ic_acct_1"]
    );
    // An account with nothing there: an empty list, not an error.
    let empty = get(&fake, CARDS, Some("acct_3")).await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json()["data"], json!([]));
    let accounts: Vec<Option<String>> = fake.requests().into_iter().map(|r| r.account).collect();
    assert_eq!(
        accounts,
        [None, Some("acct_1".into()), Some("acct_3".into())]
    );
}

#[tokio::test]
async fn the_fixture_objects_come_back_as_stored_and_events_filter_by_type() {
    let fake = FakeStripe::start(KEY).await;
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../stripe/tests/fixtures/");
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(format!("{fixtures}{name}")).unwrap())
            .unwrap()
    };
    let authorization = read("issuing.authorization.json");
    fake.insert(None, "/v1/issuing/authorizations", authorization.clone());
    let page = get(&fake, "/v1/issuing/authorizations", None).await.json();
    assert_eq!(page["data"], json!([authorization]));

    let event = read("event.json");
    for (i, kind) in [
        "issuing_authorization.created",
        "issuing_card.updated",
        "issuing_authorization.updated",
        "customer.created",
    ]
    .iter()
    .enumerate()
    {
        let mut e = event.clone();
        e["id"] = json!(format!("evt_{i}"));
        e["type"] = json!(kind);
        e["created"] = json!(100 + i);
        fake.insert(None, "/v1/events", e);
    }
    let kinds = |page: Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    };
    let page = get(&fake, "/v1/events?type=issuing_authorization.*", None).await;
    assert_eq!(
        kinds(page.json()),
        [
            "issuing_authorization.updated",
            "issuing_authorization.created"
        ]
    );
    let page = get(
        &fake,
        "/v1/events?types[]=issuing_card.updated&types[]=customer.created",
        None,
    )
    .await;
    assert_eq!(
        kinds(page.json()),
        ["customer.created", "issuing_card.updated"]
    );
}

#[tokio::test]
async fn bad_requests_get_stripes_errors() {
    let (fake, _) = with_cards().await;
    let wrong_key = get_with(
        &format!("{}{CARDS}", fake.url()),
        &[("authorization", "Bearer rk_test_other")],
    )
    .await;
    assert_eq!(wrong_key.status, 401);
    assert_eq!(wrong_key.json()["error"]["type"], "invalid_request_error");
    for (query, param) in [
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=ten", "limit"),
        ("?created[gte]=soon", "created[gte]"),
        ("?starting_after=ic_nope", "starting_after"),
    ] {
        let bad = get(&fake, &format!("{CARDS}{query}"), None).await;
        assert_eq!(bad.status, 400, "{query}");
        assert_eq!(bad.json()["error"]["param"], param, "{query}");
    }
    let both = get(
        &fake,
        &format!("{CARDS}?starting_after=ic_01&ending_before=ic_02"),
        None,
    )
    .await;
    assert_eq!(both.status, 400);
    let unknown = get(&fake, "/v1/issuing/nothing", None).await;
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v1/issuing/nothing")
    );
}

#[tokio::test]
async fn faults_come_on_schedule_and_are_logged() {
    let (fake, _) = with_cards().await;
    fake.fault_every(
        3,
        Fault::TooManyRequests {
            retry_after_secs: 2,
        },
    );
    fake.fault_every(5, Fault::ServerError);
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let response = get(&fake, CARDS, None).await;
        if response.status == 429 {
            assert_eq!(response.headers["retry-after"], "2");
        }
        statuses.push(response.status.as_u16());
    }
    // 3, 6, 9: 429; 5 and 10: 500 (15 would be a 429: the first schedule added wins).
    assert_eq!(statuses, [200, 200, 429, 200, 500, 429, 200, 200, 429, 500]);
    let logged: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(logged, statuses);

    let slow = FakeStripe::start(KEY).await;
    slow.fault_every(1, Fault::Slow(Duration::from_millis(300)));
    slow.insert(None, CARDS, json!({"id": "ic_1", "created": 1}));
    let started = Instant::now();
    let answer = get(&slow, CARDS, None).await;
    assert_eq!(answer.status, 200);
    // A delay is a lower bound, which no busy machine can shorten.
    assert!(started.elapsed() >= Duration::from_millis(300));
    let seen: BTreeSet<String> = ids(&answer.json()).into_iter().collect();
    assert_eq!(seen, BTreeSet::from(["ic_1".to_owned()]));
}

#[tokio::test]
async fn tokens_are_listed_per_card() {
    let fake = FakeStripe::start(KEY).await;
    let tokens = "/v1/issuing/tokens";
    fake.insert(
        None,
        tokens,
        json!({"id": "intok_1", "card": "ic_a", "created": 1}),
    );
    fake.insert(
        None,
        tokens,
        json!({"id": "intok_2", "card": "ic_b", "created": 2}),
    );
    fake.insert(
        None,
        tokens,
        json!({"id": "intok_3", "card": {"id": "ic_a"}, "created": 3}),
    );
    let page = get(&fake, &format!("{tokens}?card=ic_a"), None)
        .await
        .json();
    assert_eq!(ids(&page), ["intok_3", "intok_1"]);
}
