//! Every query and filter against data whose answers are computed here from the events.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashMap};

use cardstream_stripe::{Authorization, Event, Object, Transaction, TransactionType};
use common::TestApi;
use serde_json::{Value, json};

/// The newest version of every authorization and transaction, by the store's rule.
fn final_objects(api: &TestApi) -> (Vec<Authorization>, Vec<Transaction>) {
    let rank = |kind: &str| match kind.rsplit('.').next() {
        Some("request") => 0,
        Some("created") => 1,
        _ => 2,
    };
    let mut auths: HashMap<String, ((i64, i32, String), Authorization)> = HashMap::new();
    let mut txns: HashMap<String, ((i64, i32, String), Transaction)> = HashMap::new();
    for e in &api.events {
        let event = Event::parse(&e.body).unwrap();
        let version = (event.created, rank(&event.kind), event.id.clone());
        match event.object().unwrap() {
            Object::Authorization(a) if auths.get(&a.id).is_none_or(|(v, _)| *v < version) => {
                auths.insert(a.id.clone(), (version, *a));
            }
            Object::Transaction(t) if txns.get(&t.id).is_none_or(|(v, _)| *v < version) => {
                txns.insert(t.id.clone(), (version, *t));
            }
            _ => {}
        }
    }
    // By id, so that every run picks the same examples.
    let mut auths: Vec<Authorization> = auths.into_values().map(|(_, a)| a).collect();
    let mut txns: Vec<Transaction> = txns.into_values().map(|(_, t)| t).collect();
    auths.sort_by(|a, b| a.id.cmp(&b.id));
    txns.sort_by(|a, b| a.id.cmp(&b.id));
    (auths, txns)
}

fn requested(a: &Authorization) -> i64 {
    match (&a.pending_request, a.request_history.last()) {
        (Some(p), _) => p.amount,
        (None, Some(h)) => h.amount,
        (None, None) => a.amount,
    }
}

fn busiest_card(auths: &[Authorization]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for a in auths {
        *counts.entry(a.card_id()).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .unwrap()
        .0
        .to_owned()
}

const SUMMARY: &str = "query($id: ID!, $range: DateRangeInput) { card(id: $id) { currency spendSummary(range: $range) {
    currency totalSpend { amount currency formatted } averageSpend { amount } purchases refunded { amount } refunds approved declined approvalRate
    byCategory(limit: 100) { key amount { amount } count } topMerchants(limit: 3) { key amount { amount } count }
    timeSeries(bucket: DAY) { start amount { amount } count } weekly: timeSeries(bucket: WEEK) { start amount { amount } count } } } }";

/// The series the API must give for `transactions` (one card's), computed here from the
/// events: per bucket (the UTC day of `created`, or the Monday starting its week), the spend
/// (captures minus refunds) and the captures, oldest first, only buckets with a capture or a
/// refund in them.
fn expected_series(transactions: &[&Transaction], weekly: bool) -> Vec<(String, i64, i64)> {
    let mut buckets: BTreeMap<time::Date, (i64, i64)> = BTreeMap::new();
    for t in transactions
        .iter()
        .filter(|t| matches!(t.kind, TransactionType::Capture | TransactionType::Refund))
    {
        let day = time::OffsetDateTime::from_unix_timestamp(t.created)
            .unwrap()
            .date();
        let start = if weekly {
            day - time::Duration::days(i64::from(day.weekday().number_days_from_monday()))
        } else {
            day
        };
        let bucket = buckets.entry(start).or_default();
        bucket.0 -= t.amount;
        bucket.1 += i64::from(t.kind == TransactionType::Capture);
    }
    buckets
        .into_iter()
        .map(|(start, (spend, captures))| (start.to_string(), spend, captures))
        .collect()
}

/// A `timeSeries` answer as (start, amount, count) rows.
fn series_of(answer: &Value) -> Vec<(String, i64, i64)> {
    answer
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["start"].as_str().unwrap().to_owned(),
                p["amount"]["amount"].as_i64().unwrap(),
                p["count"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Activity for `card` beside the simulator's, whose purchases all fall within minutes of
/// Monday 2025-11-24 16:00 UTC (one day, one week): spend on other days, on both sides of a
/// day's, a week's and a month's edge, and a day with only a decline (no spend, so no bucket).
fn spread_activity(
    card: &str,
    currency: cardstream_stripe::Currency,
) -> Vec<(&'static str, Value)> {
    let capture = |id: &str, amount: i64, created: i64| {
        json!({"id": id, "object": "issuing.transaction", "amount": -amount, "currency": currency,
               "type": "capture", "card": card, "created": created,
               "merchant_data": {"category": "bakeries", "name": "Spread Bakery"}})
    };
    let sunday_end = 1_763_942_399; // 2025-11-23 23:59:59, a Sunday
    vec![
        (
            "issuing_transaction.created",
            capture("ipi_spread_oct", 4_100, 1_761_912_000),
        ), // 2025-10-31 12:00
        (
            "issuing_transaction.created",
            capture("ipi_spread_sun", 1_300, sunday_end),
        ),
        (
            "issuing_transaction.created",
            capture("ipi_spread_mon", 700, sunday_end + 1),
        ),
        (
            "issuing_transaction.created",
            json!({"id": "ipi_spread_refund", "object": "issuing.transaction",
            "amount": 900, "currency": currency, "type": "refund", "card": card,
            "created": sunday_end + 7 * 86_400, // 2025-11-30 23:59:59, the next Sunday
            "merchant_data": {"category": "bakeries", "name": "Spread Bakery"}}),
        ),
        (
            "issuing_transaction.created",
            capture("ipi_spread_dec", 2_200, sunday_end + 7 * 86_400 + 1),
        ), // 2025-12-01 00:00
        (
            "issuing_authorization.created",
            json!({"id": "iauth_spread_declined", "object": "issuing.authorization",
            "amount": 0, "currency": currency, "approved": false, "status": "closed",
            "created": sunday_end + 4 * 86_400 - 43_200, // 2025-11-27 12:00
            "card": card, "merchant_data": {"category": "bakeries", "name": "Spread Bakery"},
            "request_history": [{"amount": 600, "currency": currency, "approved": false, "reason": "webhook_declined"}]}),
        ),
    ]
}

#[tokio::test]
async fn the_spend_summary_equals_what_the_events_say() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;
    let (mut auths, mut txns) = final_objects(&api);
    let card = busiest_card(&auths);
    let currency = txns.iter().find(|t| t.card.id() == card).unwrap().currency;
    let mut spread = Vec::new();
    for (i, (kind, object)) in spread_activity(&card, currency).into_iter().enumerate() {
        let created = object["created"].clone();
        let body = json!({"id": format!("evt_spread_{i}"), "object": "event", "type": kind,
                          "created": created, "data": {"object": object}})
        .to_string();
        let incoming = cardstream_store::IncomingEvent::parse(body.as_bytes(), 0, 0).unwrap();
        match Event::parse(body.as_bytes()).unwrap().object().unwrap() {
            Object::Authorization(a) => auths.push(*a),
            Object::Transaction(t) => txns.push(*t),
            _ => panic!("not spread activity: {body}"),
        }
        spread.push(incoming);
    }
    api.store.apply_batch("t", "t", &spread, &[]).await.unwrap();
    let mine: Vec<&Transaction> = txns.iter().filter(|t| t.card.id() == card).collect();
    let spend: i64 = mine
        .iter()
        .filter(|t| matches!(t.kind, TransactionType::Capture | TransactionType::Refund))
        .map(|t| -t.amount)
        .sum();
    let captures = mine
        .iter()
        .filter(|t| t.kind == TransactionType::Capture)
        .count() as i64;
    let refunded: i64 = mine
        .iter()
        .filter(|t| t.kind == TransactionType::Refund)
        .map(|t| t.amount)
        .sum();
    let card_auths: Vec<&Authorization> = auths.iter().filter(|a| a.card_id() == card).collect();
    let approved = card_auths.iter().filter(|a| a.approved).count() as i64;
    let declined = card_auths
        .iter()
        .filter(|a| !a.approved && a.status.as_str() != "pending")
        .count() as i64;

    let response = api.gql(Some(&admin), SUMMARY, json!({"id": card})).await;
    let summary = &response["data"]["card"]["spendSummary"];
    assert!(response["errors"].is_null(), "{response}");
    assert_eq!(summary["totalSpend"]["amount"], json!(spend));
    assert_eq!(summary["purchases"], json!(captures));
    assert_eq!(summary["averageSpend"]["amount"], json!(spend / captures));
    assert_eq!(summary["refunded"]["amount"], json!(refunded));
    assert_eq!(summary["approved"], json!(approved));
    assert_eq!(summary["declined"], json!(declined));
    let rate = summary["approvalRate"].as_f64().unwrap();
    assert!((rate - approved as f64 / (approved + declined) as f64).abs() < 1e-9);

    let mut by_category: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut by_merchant: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for t in mine
        .iter()
        .filter(|t| matches!(t.kind, TransactionType::Capture | TransactionType::Refund))
    {
        let capture = i64::from(t.kind == TransactionType::Capture);
        let c = by_category
            .entry(t.merchant_data.category.clone())
            .or_default();
        c.0 -= t.amount;
        c.1 += capture;
        let m = by_merchant
            .entry(t.merchant_data.name.clone().unwrap())
            .or_default();
        m.0 -= t.amount;
        m.1 += capture;
    }
    let got: BTreeMap<String, (i64, i64)> = summary["byCategory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["key"].as_str().unwrap().to_owned(),
                (
                    c["amount"]["amount"].as_i64().unwrap(),
                    c["count"].as_i64().unwrap(),
                ),
            )
        })
        .collect();
    by_category.retain(|_, v| *v != (0, 0));
    assert_eq!(got, by_category);
    // Top merchants: the three largest, largest first.
    let mut merchants: Vec<(String, i64)> =
        by_merchant.into_iter().map(|(k, v)| (k, v.0)).collect();
    merchants.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let top: Vec<(String, i64)> = summary["topMerchants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["key"].as_str().unwrap().to_owned(),
                m["amount"]["amount"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(top, merchants[..3].to_vec());
    // The whole series, by day and by week: every bucket's start, spend and captures.
    for (series, weekly) in [("timeSeries", false), ("weekly", true)] {
        let expected = expected_series(&mine, weekly);
        assert!(expected.len() > 1, "{series}: too few buckets to test");
        assert_eq!(series_of(&summary[series]), expected, "{series}");
    }

    // A range: the first day only.
    let first_day = summary["timeSeries"][0]["start"]
        .as_str()
        .unwrap()
        .to_owned();
    let day_spend = summary["timeSeries"][0]["amount"]["amount"]
        .as_i64()
        .unwrap();
    let ranged = api
        .gql(
            Some(&admin),
            SUMMARY,
            json!({"id": card, "range": {"from": first_day, "to": first_day}}),
        )
        .await;
    assert_eq!(
        ranged["data"]["card"]["spendSummary"]["totalSpend"]["amount"],
        json!(day_spend)
    );
    let ranged_categories: i64 = ranged["data"]["card"]["spendSummary"]["byCategory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["amount"]["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(
        ranged_categories, day_spend,
        "categories over a range come from that range only"
    );
    let bad = api
        .gql(
            Some(&admin),
            SUMMARY,
            json!({"id": card, "range": {"from": "2026-02-02", "to": "2026-02-01"}}),
        )
        .await;
    assert_eq!(common::code(&bad), "BAD_USER_INPUT");
}

#[tokio::test]
async fn zero_decimal_currencies_are_formatted_as_such() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;
    let card = json!({"id": "ic_yen", "object": "issuing.card", "cardholder": "ich_yen", "status": "active", "currency": "jpy", "created": 1});
    let capture = json!({"id": "ipi_yen", "object": "issuing.transaction", "amount": -123_456, "currency": "jpy", "type": "capture",
        "card": "ic_yen", "created": 1_764_000_000, "merchant_data": {"category": "bakeries", "name": "Pan"}});
    let events: Vec<cardstream_store::IncomingEvent> = [("evt_yen_1", "issuing_card.created", card), ("evt_yen_2", "issuing_transaction.created", capture)]
        .into_iter()
        .map(|(id, kind, object)| {
            let body = json!({"id": id, "object": "event", "type": kind, "created": 1_764_000_000, "data": {"object": object}}).to_string();
            cardstream_store::IncomingEvent::parse(body.as_bytes(), 0, 0).unwrap()
        })
        .collect();
    api.store.apply_batch("t", "t", &events, &[]).await.unwrap();
    let response = api.gql(Some(&admin), "{ card(id: \"ic_yen\") { spendSummary { totalSpend { amount currency formatted } } } }", json!({})).await;
    assert_eq!(
        response["data"]["card"]["spendSummary"]["totalSpend"],
        json!({"amount": 123_456, "currency": "jpy", "formatted": "¥123,456"})
    );
}

const PAGE: &str = "query($id: ID!, $filter: ActivityFilterInput, $first: Int, $after: String, $last: Int, $before: String) {
    card(id: $id) { activity(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
        edges { cursor node { id approved outcome status declineReason amount { amount } merchant { name category } created transactions { id amount { amount } } } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }";

/// Every node of the activity, paging through with `first`.
async fn all_pages(
    api: &TestApi,
    token: &str,
    card: &str,
    filter: Value,
    first: i64,
) -> Vec<Value> {
    let mut nodes = Vec::new();
    let mut after = Value::Null;
    loop {
        let response = api
            .gql(
                Some(token),
                PAGE,
                json!({"id": card, "filter": filter, "first": first, "after": after}),
            )
            .await;
        assert!(response["errors"].is_null(), "{response}");
        let page = &response["data"]["card"]["activity"];
        nodes.extend(
            page["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"].clone()),
        );
        if page["pageInfo"]["hasNextPage"] != true {
            return nodes;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

fn ids(nodes: &[Value]) -> Vec<String> {
    nodes
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn activity_pages_and_filters_return_exactly_the_matching_authorizations() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;
    let (auths, txns) = final_objects(&api);
    let card = busiest_card(&auths);
    let mut mine: Vec<&Authorization> = auths.iter().filter(|a| a.card_id() == card).collect();
    mine.sort_by(|a, b| (b.created, &b.id).cmp(&(a.created, &a.id)));
    let expect = |keep: &dyn Fn(&Authorization) -> bool| -> Vec<String> {
        mine.iter()
            .filter(|a| keep(a))
            .map(|a| a.id.clone())
            .collect()
    };

    let everything = all_pages(&api, &admin, &card, Value::Null, 7).await;
    assert_eq!(ids(&everything), expect(&|_| true));
    assert!(
        everything.len() > 20,
        "the busiest card has {} authorizations",
        everything.len()
    );
    // Transactions come with their authorization.
    for node in &everything {
        let expected: usize = txns
            .iter()
            .filter(|t| t.authorization.as_ref().map(|a| a.id()) == node["id"].as_str())
            .count();
        assert_eq!(node["transactions"].as_array().unwrap().len(), expected);
    }
    // The merchant's amount and currency: what was asked (pending, then the latest decision),
    // and each transaction's own.
    let money = |amount: Option<i64>, currency: Option<cardstream_stripe::Currency>| match (
        amount, currency,
    ) {
        (Some(amount), Some(currency)) => {
            json!({"amount": amount, "currency": currency.as_str()})
        }
        _ => Value::Null,
    };
    const MONEY: &str = "query($id: ID!, $after: String) { card(id: $id) { activity(first: 50, after: $after) {
        nodes { id merchantAmount { amount currency } transactions { id merchantAmount { amount currency } }
          verification { addressLine1Check addressPostalCodeCheck cvcCheck expiryCheck threeDSecure }
          networkData { acquiringInstitutionId systemTraceAuditNumber transactionId } }
        pageInfo { hasNextPage endCursor } } } }";
    let mut priced = Vec::new();
    let mut after = Value::Null;
    loop {
        let r = api
            .gql(Some(&admin), MONEY, json!({"id": card, "after": after}))
            .await;
        let page = &r["data"]["card"]["activity"];
        priced.extend(
            page["nodes"]
                .as_array()
                .unwrap_or_else(|| panic!("{r}"))
                .clone(),
        );
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(priced.len(), everything.len());
    let mut abroad = 0;
    for node in &priced {
        let a = mine.iter().find(|a| node["id"] == a.id.as_str()).unwrap();
        let expected = match (&a.pending_request, a.request_history.last()) {
            (Some(p), _) => money(p.merchant_amount, p.merchant_currency),
            (None, Some(h)) => money(h.merchant_amount, h.merchant_currency),
            (None, None) => money(a.merchant_amount, a.merchant_currency),
        };
        assert_eq!(node["merchantAmount"], expected, "{}", a.id);
        abroad += usize::from(expected["currency"] != a.currency.as_str());
        // The checks and the network's references, as the event carried them.
        let v = &a.verification_data;
        assert_eq!(
            node["verification"],
            json!({"addressLine1Check": v["address_line1_check"], "addressPostalCodeCheck": v["address_postal_code_check"],
                "cvcCheck": v["cvc_check"], "expiryCheck": v["expiry_check"], "threeDSecure": v["three_d_secure"]["result"]}),
            "{}",
            a.id
        );
        let n = &a.network_data;
        assert_eq!(
            node["networkData"],
            json!({"acquiringInstitutionId": n["acquiring_institution_id"],
                "systemTraceAuditNumber": n["system_trace_audit_number"], "transactionId": n["transaction_id"]})
        );
        for t in node["transactions"].as_array().unwrap() {
            let txn = txns.iter().find(|x| t["id"] == x.id.as_str()).unwrap();
            assert_eq!(
                t["merchantAmount"],
                money(txn.merchant_amount, txn.merchant_currency)
            );
        }
    }
    assert!(abroad > 0, "no purchase abroad on the busiest card");

    let declined = all_pages(&api, &admin, &card, json!({"status": "DECLINED"}), 50).await;
    assert_eq!(
        ids(&declined),
        expect(&|a| !a.approved && a.status.as_str() != "pending")
    );
    assert!(
        declined
            .iter()
            .all(|n| n["outcome"] == "DECLINED" && n["declineReason"].is_string())
    );
    assert_eq!(
        ids(&all_pages(&api, &admin, &card, json!({"status": "APPROVED"}), 50).await),
        expect(&|a| a.approved)
    );

    let category = mine[0].merchant_data.category.clone();
    assert_eq!(
        ids(&all_pages(&api, &admin, &card, json!({"category": category}), 50).await),
        expect(&|a| a.merchant_data.category == category)
    );

    // Part of a merchant's name, in another case.
    let name = mine[0].merchant_data.name.clone().unwrap();
    let part: String = name.split_whitespace().nth(1).unwrap().to_uppercase();
    let found = all_pages(&api, &admin, &card, json!({"merchant": part}), 50).await;
    assert_eq!(
        ids(&found),
        expect(&|a| a
            .merchant_data
            .name
            .as_deref()
            .unwrap()
            .to_uppercase()
            .contains(&part))
    );
    assert!(!found.is_empty());
    // LIKE wildcards are literal.
    assert!(
        all_pages(&api, &admin, &card, json!({"merchant": "%"}), 50)
            .await
            .is_empty()
    );

    // A date range: the day of the newest authorization.
    let day = mine[0].created.div_euclid(86_400);
    let date = time_date(day);
    let on_day = all_pages(&api, &admin, &card, json!({"from": date, "to": date}), 50).await;
    assert_eq!(
        ids(&on_day),
        expect(&|a| a.created.div_euclid(86_400) == day)
    );

    // An amount range in minor units.
    let mut amounts: Vec<i64> = mine.iter().map(|a| requested(a)).collect();
    amounts.sort_unstable();
    let (low, high) = (amounts[amounts.len() / 4], amounts[amounts.len() * 3 / 4]);
    let middle = all_pages(
        &api,
        &admin,
        &card,
        json!({"minAmount": low, "maxAmount": high}),
        50,
    )
    .await;
    assert_eq!(
        ids(&middle),
        expect(&|a| (low..=high).contains(&requested(a)))
    );

    // Bad input is refused, with its code.
    for (filter, first) in [
        (json!({"category": "not_a_category"}), 10),
        (json!({"minAmount": 5, "maxAmount": 1}), 10),
        (Value::Null, 0),
        (Value::Null, 101),
    ] {
        let response = api
            .gql(
                Some(&admin),
                PAGE,
                json!({"id": card, "filter": filter, "first": first}),
            )
            .await;
        assert_eq!(
            common::code(&response),
            "BAD_USER_INPUT",
            "{filter} {first}"
        );
    }
    let response = api
        .gql(
            Some(&admin),
            PAGE,
            json!({"id": card, "after": "not-a-cursor"}),
        )
        .await;
    assert_eq!(common::code(&response), "BAD_USER_INPUT");
}

fn time_date(day: i64) -> String {
    (time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(day))
        .date()
        .to_string()
}

#[tokio::test]
async fn pages_stay_stable_while_new_activity_arrives() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;
    let (auths, _) = final_objects(&api);
    let card = busiest_card(&auths);
    let before = all_pages(&api, &admin, &card, Value::Null, 100).await;

    let first = api
        .gql(Some(&admin), PAGE, json!({"id": card, "first": 5}))
        .await;
    let cursor = first["data"]["card"]["activity"]["pageInfo"]["endCursor"].clone();
    let mut seen = ids(&first["data"]["card"]["activity"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect::<Vec<_>>());

    // More purchases happen (the same simulation, continued: newer events for the same cards).
    let more = common::events(600);
    common::ingest(&api.store, &more).await;

    let mut after = cursor;
    loop {
        let response = api
            .gql(
                Some(&admin),
                PAGE,
                json!({"id": card, "first": 5, "after": after}),
            )
            .await;
        let page = &response["data"]["card"]["activity"];
        seen.extend(ids(&page["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"].clone())
            .collect::<Vec<_>>()));
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    // Nothing repeated, nothing skipped: exactly what was there before, in the same order.
    assert_eq!(seen, ids(&before));
    let now = all_pages(&api, &admin, &card, Value::Null, 100).await;
    assert!(now.len() > before.len(), "new activity arrived");
}

/// Every node of the activity, paging backward from its end with `last` and `before`.
async fn all_pages_backward(api: &TestApi, token: &str, card: &str, last: i64) -> Vec<Value> {
    let mut pages: Vec<Vec<Value>> = Vec::new();
    let mut before = Value::Null;
    loop {
        let response = api
            .gql(
                Some(token),
                PAGE,
                json!({"id": card, "last": last, "before": before}),
            )
            .await;
        assert!(response["errors"].is_null(), "{response}");
        let page = &response["data"]["card"]["activity"];
        let edges = page["edges"].as_array().unwrap();
        assert!(edges.len() as i64 <= last);
        // A page from a cursor knows that the rows after it exist.
        assert_eq!(page["pageInfo"]["hasNextPage"], json!(!before.is_null()));
        pages.push(edges.iter().map(|e| e["node"].clone()).collect());
        if page["pageInfo"]["hasPreviousPage"] != true {
            break;
        }
        before = page["pageInfo"]["startCursor"].clone();
    }
    pages.into_iter().rev().flatten().collect()
}

#[tokio::test]
async fn activity_pages_backward_to_the_same_list() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;
    let (auths, _) = final_objects(&api);
    let card = busiest_card(&auths);
    let forward = all_pages(&api, &admin, &card, Value::Null, 7).await;
    assert!(forward.len() > 20);
    for last in [1, 7, 100] {
        let backward = all_pages_backward(&api, &admin, &card, last).await;
        assert_eq!(ids(&backward), ids(&forward), "last: {last}");
    }
    // One page forward, then back from its end cursor: the rows before it, in order.
    let page = api
        .gql(Some(&admin), PAGE, json!({"id": card, "first": 10}))
        .await;
    let end = page["data"]["card"]["activity"]["pageInfo"]["endCursor"].clone();
    let back = api
        .gql(
            Some(&admin),
            PAGE,
            json!({"id": card, "last": 4, "before": end}),
        )
        .await;
    let back = &back["data"]["card"]["activity"];
    let got: Vec<Value> = back["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect();
    assert_eq!(ids(&got), ids(&forward[5..9]));
    assert_eq!(back["pageInfo"]["hasPreviousPage"], true);
    assert_eq!(back["pageInfo"]["hasNextPage"], true);
    // Mixing directions is refused, with the reason.
    for args in [
        json!({"id": card, "first": 2, "last": 2}),
        json!({"id": card, "first": 2, "before": end}),
        json!({"id": card, "last": 2, "after": end}),
        json!({"id": card, "last": 0}),
    ] {
        let response = api.gql(Some(&admin), PAGE, args.clone()).await;
        assert_eq!(common::code(&response), "BAD_USER_INPUT", "{args}");
    }
}

#[tokio::test]
async fn an_authorization_shows_its_history_and_transactions() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;
    let (auths, txns) = final_objects(&api);
    // Two captures: a split capture, not a capture and its refund.
    let auth = auths
        .iter()
        .find(|a| {
            let of_auth = txns
                .iter()
                .filter(|t| t.authorization.as_ref().map(|x| x.id()) == Some(a.id.as_str()));
            of_auth.clone().count() == 2
                && of_auth
                    .into_iter()
                    .all(|t| t.kind == TransactionType::Capture)
        })
        .expect("a split capture");
    let query = "query($id: ID!) { authorization(id: $id) { id cardId approved status rawStatus cardstreamReason amount { amount currency }
        requestHistory { approved reason amount { amount } created } transactions { id kind rawKind amount { amount } spend { amount } } merchant { name category } } }";
    let response = api.gql(Some(&admin), query, json!({"id": auth.id})).await;
    let got = &response["data"]["authorization"];
    assert_eq!(got["cardId"], json!(auth.card_id()));
    assert_eq!(got["rawStatus"], json!(auth.status.as_str()));
    assert_eq!(got["status"], json!(auth.status.as_str().to_uppercase()));
    assert_eq!(got["requestHistory"][0]["reason"], "webhook_approved");
    assert_eq!(got["cardstreamReason"], "approved");
    let transactions = got["transactions"].as_array().unwrap();
    assert_eq!(transactions.len(), 2);
    let total: i64 = transactions
        .iter()
        .map(|t| t["spend"]["amount"].as_i64().unwrap())
        .sum();
    assert!(total > 0 && total <= requested(auth));
    assert!(transactions.iter().all(|t| t["kind"] == "CAPTURE"
        && t["rawKind"] == "capture"
        && t["amount"]["amount"].as_i64().unwrap() < 0));
}
