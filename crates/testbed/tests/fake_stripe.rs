//! The fake Stripe API answers as Stripe documents its list endpoints: pages newest first,
//! cursors both ways, created ranges, account scoping, errors in Stripe's shape, and faults on
//! schedule; loaded events exist from their second on and serve each object's newest version;
//! connected accounts page; the log says when each request came and what it got.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cardstream_testbed::{FakeStripe, Fault, HttpResponse, get_with};
use serde_json::{Value, json};

const KEY: &str = "rk_test_fake";
const CARDS: &str = "/v1/issuing/cards";
const EVENTS: &str = "/v1/events";
const ACCOUNTS: &str = "/v1/accounts";

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

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

/// Sleeps until the wall clock's second is at least `second`.
async fn sleep_until_second(second: i64) {
    let target = UNIX_EPOCH + Duration::from_secs(second.try_into().unwrap());
    if let Ok(wait) = target.duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
    assert!(unix_now() >= second);
}

/// A Stripe Event carrying `object`.
fn event(id: &str, kind: &str, created: i64, object: Value) -> Value {
    json!({"id": id, "object": "event", "type": kind, "created": created,
           "data": {"object": object}})
}

fn card(id: &str, created: i64, status: &str) -> Value {
    json!({"id": id, "object": "issuing.card", "created": created, "status": status})
}

/// The `status` of each object in a page, by id.
fn statuses(page: &Value) -> Vec<(String, String)> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["id"].as_str().unwrap().to_owned(),
                o["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test]
async fn loaded_events_appear_when_their_second_comes() {
    let fake = FakeStripe::start(KEY).await;
    let now = unix_now();
    fake.load_events(
        Some("acct_1"),
        [
            // Loaded out of order: the clock, not the load order, decides.
            event(
                "evt_b2",
                "issuing_card.created",
                now + 3,
                card("ic_b", now + 3, "active"),
            ),
            event(
                "evt_a2",
                "issuing_card.updated",
                now + 2,
                card("ic_a", now - 100, "canceled"),
            ),
            event(
                "evt_a1",
                "issuing_card.created",
                now - 100,
                card("ic_a", now - 100, "active"),
            ),
            event(
                "evt_c1",
                "customer.created",
                now - 50,
                json!({"id": "cus_1", "object": "customer", "created": now - 50}),
            ),
        ],
    );
    let events = |page: Value| ids(&page);
    let cards = format!("{CARDS}?limit=100");
    assert_eq!(
        events(get(&fake, EVENTS, Some("acct_1")).await.json()),
        ["evt_c1", "evt_a1"]
    );
    assert_eq!(
        statuses(&get(&fake, &cards, Some("acct_1")).await.json()),
        pairs(&[("ic_a", "active")])
    );
    // Another account, or the platform, has none of it, but the lists are there.
    for account in [None, Some("acct_2")] {
        for path in [EVENTS, CARDS, "/v1/issuing/disputes"] {
            let empty = get(&fake, path, account).await;
            assert_eq!(empty.status, 200, "{path} {account:?}");
            assert_eq!(empty.json()["data"], json!([]), "{path} {account:?}");
        }
    }

    sleep_until_second(now + 2).await;
    assert_eq!(
        events(get(&fake, EVENTS, Some("acct_1")).await.json()),
        ["evt_a2", "evt_c1", "evt_a1"]
    );
    assert_eq!(
        statuses(&get(&fake, &cards, Some("acct_1")).await.json()),
        pairs(&[("ic_a", "canceled")])
    );

    sleep_until_second(now + 3).await;
    assert_eq!(
        events(get(&fake, EVENTS, Some("acct_1")).await.json()),
        ["evt_b2", "evt_a2", "evt_c1", "evt_a1"]
    );
    // Objects sort by their own created, and created ranges select on it: ic_a changed at
    // now + 2, but was created long before.
    assert_eq!(
        statuses(&get(&fake, &cards, Some("acct_1")).await.json()),
        pairs(&[("ic_b", "active"), ("ic_a", "canceled")])
    );
    let old = get(
        &fake,
        &format!("{cards}&created[lt]={}", now - 99),
        Some("acct_1"),
    )
    .await
    .json();
    assert_eq!(ids(&old), ["ic_a"]);
    // A customer is in the events but in no Issuing list.
    for path in [
        "/v1/issuing/authorizations",
        "/v1/issuing/cardholders",
        "/v1/issuing/transactions",
        "/v1/issuing/tokens",
    ] {
        assert_eq!(
            get(&fake, path, Some("acct_1")).await.json()["data"],
            json!([])
        );
    }
}

#[tokio::test]
async fn the_newest_version_wins_by_second_then_type_then_event_id() {
    let fake = FakeStripe::start(KEY).await;
    let s = 1_700_000_000;
    fake.load_events(
        None,
        [
            // ic_x, all in one second: .updated beats .created and .snapshot, though its event id
            // is the smallest and it is not loaded last.
            event(
                "evt_9",
                "issuing_card.snapshot",
                s,
                card("ic_x", s, "snapshot"),
            ),
            event(
                "evt_1",
                "issuing_card.updated",
                s,
                card("ic_x", s, "updated"),
            ),
            event(
                "evt_5",
                "issuing_card.created",
                s,
                card("ic_x", s, "created"),
            ),
            // ic_y: .created beats a .snapshot of its second with a larger event id.
            event(
                "evt_2",
                "issuing_card.created",
                s,
                card("ic_y", s, "created"),
            ),
            event(
                "evt_8",
                "issuing_card.snapshot",
                s,
                card("ic_y", s, "snapshot"),
            ),
            // ic_z: a snapshot of a later second beats an update of an earlier one.
            event(
                "evt_7",
                "issuing_card.snapshot",
                s + 1,
                card("ic_z", s, "snapshot"),
            ),
            event(
                "evt_3",
                "issuing_card.updated",
                s,
                card("ic_z", s, "updated"),
            ),
            // ic_w: two updates in one second: the event id decides.
            event(
                "evt_4b",
                "issuing_card.updated",
                s,
                card("ic_w", s, "second"),
            ),
            event(
                "evt_4a",
                "issuing_card.updated",
                s,
                card("ic_w", s, "first"),
            ),
            // An authorization: its .created beats the .request of its second.
            event(
                "evt_6",
                "issuing_authorization.request",
                s,
                json!({"id": "iauth_1", "object": "issuing.authorization", "created": s,
                       "status": "pending"}),
            ),
            event(
                "evt_0",
                "issuing_authorization.created",
                s,
                json!({"id": "iauth_1", "object": "issuing.authorization", "created": s,
                       "status": "closed"}),
            ),
        ],
    );
    let page = get(&fake, &format!("{CARDS}?limit=100"), None).await.json();
    assert_eq!(
        statuses(&page),
        pairs(&[
            ("ic_z", "snapshot"),
            ("ic_y", "created"),
            ("ic_x", "updated"),
            ("ic_w", "second"),
        ])
    );
    let page = get(&fake, "/v1/issuing/authorizations", None).await.json();
    assert_eq!(statuses(&page), pairs(&[("iauth_1", "closed")]));
    // Every event is in /v1/events, not only the winners.
    let page = get(&fake, &format!("{EVENTS}?limit=100"), None)
        .await
        .json();
    assert_eq!(page["data"].as_array().unwrap().len(), 11);
}

#[tokio::test]
async fn connected_accounts_page_for_the_platform() {
    let fake = FakeStripe::start(KEY).await;
    // Before any is added, the list is there and empty.
    let empty = get(&fake, ACCOUNTS, None).await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json()["data"], json!([]));
    for i in 0..25 {
        fake.add_account(&format!("acct_{i:02}"), 1_600_000_000 + i);
    }
    let mut read = Vec::new();
    let mut query = format!("{ACCOUNTS}?limit=10");
    loop {
        let page = get(&fake, &query, None).await.json();
        for account in page["data"].as_array().unwrap() {
            assert_eq!(account["object"], "account");
            assert_eq!(account["type"], "custom");
        }
        read.extend(ids(&page));
        if page["has_more"] == false {
            break;
        }
        query = format!(
            "{ACCOUNTS}?limit=10&starting_after={}",
            read.last().unwrap()
        );
    }
    let newest_first: Vec<String> = (0..25).rev().map(|i| format!("acct_{i:02}")).collect();
    assert_eq!(read, newest_first);
    let pages: Vec<usize> = fake.requests()[1..].iter().map(|r| r.returned).collect();
    assert_eq!(pages, [10, 10, 5]);
    // The list is the platform's, whichever account a request names.
    let scoped = get(&fake, &format!("{ACCOUNTS}?limit=3"), Some("acct_03"))
        .await
        .json();
    assert_eq!(ids(&scoped), newest_first[..3].to_vec());
}

#[tokio::test]
async fn the_log_tells_when_each_request_came_and_how_much_it_got() {
    let (fake, _) = with_cards().await;
    let before = Instant::now();
    assert_eq!(
        get(&fake, &format!("{CARDS}?limit=7"), None).await.status,
        200
    );
    assert_eq!(get(&fake, "/v1/issuing/nothing", None).await.status, 404);
    let wrong_key = get_with(
        &format!("{}{CARDS}", fake.url()),
        &[("authorization", "Bearer rk_test_other")],
    )
    .await;
    assert_eq!(wrong_key.status, 401);
    assert_eq!(
        get(&fake, &format!("{CARDS}?limit=100"), None).await.status,
        200
    );
    let after = Instant::now();
    let log = fake.requests();
    let returned: Vec<usize> = log.iter().map(|r| r.returned).collect();
    assert_eq!(returned, [7, 0, 0, 25]);
    let at: Vec<Instant> = log.iter().map(|r| r.at).collect();
    assert!(at.is_sorted());
    assert!(before <= at[0] && at[3] <= after);

    // `at` is the arrival, before an injected delay: the answer comes at least the delay later.
    let delay = Duration::from_millis(400);
    fake.fault_every(1, Fault::Slow(delay));
    let answer = get(&fake, CARDS, None).await;
    let answered = Instant::now();
    assert_eq!(answer.status, 200);
    let slow = fake.requests().pop().unwrap();
    assert_eq!(slow.returned, 10);
    assert!(answered.duration_since(slow.at) >= delay);
}

#[tokio::test]
async fn ten_thousand_loaded_events_page_out_every_object_once() {
    let fake = FakeStripe::start(KEY).await;
    let base = 1_700_000_000;
    // 2,000 cards with five versions each; the last version of each says "final".
    let events = (0..10_000).map(|i| {
        let card_n = i % 2_000;
        let version = i / 2_000;
        let status = if version == 4 { "final" } else { "earlier" };
        event(
            &format!("evt_{i:05}"),
            if version == 0 {
                "issuing_card.created"
            } else {
                "issuing_card.updated"
            },
            base + i64::from(i),
            card(&format!("ic_{card_n:04}"), base + i64::from(card_n), status),
        )
    });
    fake.load_events(None, events);
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut query = format!("{CARDS}?limit=100");
    loop {
        let page = get(&fake, &query, None).await.json();
        for (id, status) in statuses(&page) {
            assert_eq!(status, "final", "{id}");
            seen.push(id);
        }
        if page["has_more"] == false {
            break;
        }
        query = format!("{CARDS}?limit=100&starting_after={}", seen.last().unwrap());
    }
    let expected: Vec<String> = (0..2_000).rev().map(|n| format!("ic_{n:04}")).collect();
    assert_eq!(seen, expected);
    let first = get(&fake, &format!("{EVENTS}?limit=100"), None)
        .await
        .json();
    assert_eq!(first["data"][0]["id"], "evt_09999");
    eprintln!(
        "21 pages over 10,000 loaded events in {:?}",
        started.elapsed()
    );
}
