//! The program overview (`programSummary`): every figure equals the same figure computed from
//! the base tables (transactions and authorizations), for the whole program and for one
//! Connect account; its arguments are checked; only admins see it (see access.rs too).

#![allow(clippy::unwrap_used)]

mod common;

use common::{TestApi, code};
use serde_json::{Value, json};

const QUERY: &str = "query($range: DateRangeInput!, $account: ID) {
  programSummary(range: $range, account: $account) {
    from to previousFrom approved declined approvalRate
    declines(limit: 100) { reason cardstreamReason count }
    currencies {
      currency captures refunds change spend { amount } previousSpend { amount }
      timeSeries { start amount { amount } count }
      byCategory(limit: 100) { key amount { amount } count }
      topMerchants(limit: 100) { key amount { amount } count }
      topCards(limit: 5) { card { id } amount { amount } count }
    }
    activity(first: 7) { nodes { id } }
  } }";

/// `(key, amount, count)` rows from SQL, as the API lists them.
async fn rows(api: &TestApi, sql: &str, binds: &[&str]) -> Vec<(String, i64, i64)> {
    let mut q = sqlx::query_as(sql);
    for b in binds {
        q = q.bind(*b);
    }
    q.fetch_all(api.store.pool()).await.unwrap()
}

fn listed(list: &Value, key: &str) -> Vec<(String, i64, i64)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let k = if key == "card" {
                r["card"]["id"].as_str().unwrap().to_owned()
            } else {
                r[key].as_str().unwrap().to_owned()
            };
            (
                k,
                r["amount"]["amount"].as_i64().unwrap(),
                r["count"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The figures of `summary` against SQL over the base tables, `account` '' meaning all.
async fn check_against_base_tables(
    api: &TestApi,
    summary: &Value,
    from: &str,
    to: &str,
    account: &str,
) {
    // Rows of the range (UTC days, both ends included) and of the account asked for.
    let within = "to_timestamp(created) AT TIME ZONE 'UTC' >= $1::date
                  AND to_timestamp(created) AT TIME ZONE 'UTC' < $2::date + 1
                  AND ($3 = '' OR account = $3)";
    let spend_rows = format!("kind IN ('capture', 'refund') AND {within}");
    let currencies = summary["currencies"].as_array().unwrap();
    let expected: Vec<(String, i64, i64)> = rows(
        api,
        &format!(
            "SELECT currency, sum(-amount)::int8, count(*) FILTER (WHERE kind = 'capture')
             FROM transactions WHERE {spend_rows} GROUP BY 1 ORDER BY 2 DESC, 1"
        ),
        &[from, to, account],
    )
    .await;
    assert!(!expected.is_empty(), "the range has spend to compare");
    let got: Vec<(String, i64, i64)> = currencies
        .iter()
        .filter(|c| {
            c["captures"].as_i64().unwrap() > 0 || c["spend"]["amount"].as_i64().unwrap() != 0
        })
        .map(|c| {
            (
                c["currency"].as_str().unwrap().to_owned(),
                c["spend"]["amount"].as_i64().unwrap(),
                c["captures"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expected, "spend per currency");
    for c in currencies {
        let currency = c["currency"].as_str().unwrap();
        let by = |column: &str, order: &str, limit: i64| {
            format!(
                "SELECT {column}, sum(-amount)::int8, count(*) FILTER (WHERE kind = 'capture')
                 FROM transactions WHERE {spend_rows} AND currency = $4
                 GROUP BY 1 HAVING sum(-amount) <> 0 OR count(*) FILTER (WHERE kind = 'capture') <> 0
                 ORDER BY {order} LIMIT {limit}"
            )
        };
        let binds = [from, to, account, currency];
        let day = "(to_timestamp(created) AT TIME ZONE 'UTC')::date::text";
        let merchant = "coalesce(nullif(merchant_name, ''), nullif(merchant_network_id, ''), 'unknown merchant')";
        assert_eq!(
            listed(&c["timeSeries"], "start"),
            rows(api, &by(day, "1", 400), &binds).await,
            "{currency} by day"
        );
        assert_eq!(
            listed(&c["byCategory"], "key"),
            rows(api, &by("merchant_category", "2 DESC, 1", 100), &binds).await,
            "{currency} by category"
        );
        assert_eq!(
            listed(&c["topMerchants"], "key"),
            rows(api, &by(merchant, "2 DESC, 1", 100), &binds).await,
            "{currency} by merchant"
        );
        assert_eq!(
            listed(&c["topCards"], "card"),
            rows(api, &by("card_id", "2 DESC, 1", 5), &binds).await,
            "{currency} top cards"
        );
    }
    // Outcomes: a request still awaiting its decision is neither approved nor declined.
    let decided = format!("(approved OR status <> 'pending') AND {within}");
    let (approved, declined): (i64, i64) = sqlx::query_as(&format!(
        "SELECT count(*) FILTER (WHERE approved), count(*) FILTER (WHERE NOT approved)
         FROM authorizations WHERE {decided}"
    ))
    .bind(from)
    .bind(to)
    .bind(account)
    .fetch_one(api.store.pool())
    .await
    .unwrap();
    assert!(declined > 0, "the range has declines to compare");
    assert_eq!(summary["approved"], json!(approved));
    assert_eq!(summary["declined"], json!(declined));
    let rate = summary["approvalRate"].as_f64().unwrap();
    assert!((rate - approved as f64 / (approved + declined) as f64).abs() < 1e-9);
    let declines: Vec<(Option<String>, Option<String>, i64)> = sqlx::query_as(&format!(
        "SELECT nullif(r, ''), nullif(c, ''), n FROM (
             SELECT coalesce(decline_reason, '') AS r, coalesce(cardstream_reason, '') AS c,
                    count(*) AS n
             FROM authorizations WHERE NOT approved AND {decided} GROUP BY 1, 2) x
         ORDER BY n DESC, r, c"
    ))
    .bind(from)
    .bind(to)
    .bind(account)
    .fetch_all(api.store.pool())
    .await
    .unwrap();
    let got: Vec<(Option<String>, Option<String>, i64)> = summary["declines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["reason"].as_str().map(str::to_owned),
                d["cardstreamReason"].as_str().map(str::to_owned),
                d["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, declines, "declines by reason");
    // The live feed: the program's newest, whatever the range.
    let newest: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM authorizations WHERE $1 = '' OR account = $1 ORDER BY created DESC, id DESC LIMIT 7",
    )
    .bind(account)
    .fetch_all(api.store.pool())
    .await
    .unwrap();
    let got: Vec<String> = summary["activity"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, newest.into_iter().map(|(id,)| id).collect::<Vec<_>>());
}

/// The first and last UTC day of the stored authorizations.
async fn days(api: &TestApi) -> (String, String) {
    sqlx::query_as(
        "SELECT (to_timestamp(min(created)) AT TIME ZONE 'UTC')::date::text,
                (to_timestamp(max(created)) AT TIME ZONE 'UTC')::date::text FROM authorizations",
    )
    .fetch_one(api.store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn the_overview_equals_the_base_tables_for_the_program_and_a_day() {
    let api = TestApi::start(&[]).await;
    // A second program's traffic two days on, so that the range spans days and a period has
    // one before it with spend.
    let later = cardstream_simulator::generate_declining_every(
        4,
        common::SEED + 1,
        common::CARDS,
        common::START + 2 * 86_400,
        200,
    );
    common::ingest(&api.store, &later).await;
    let admin = api.login("admin@example.com").await;
    let (first, last) = days(&api).await;
    assert_ne!(first, last, "the traffic spans days");

    let response = api
        .gql(
            Some(&admin),
            QUERY,
            json!({"range": {"from": first, "to": last}}),
        )
        .await;
    let summary = &response["data"]["programSummary"];
    assert!(response["errors"].is_null(), "{response}");
    assert_eq!(summary["from"], json!(first));
    assert_eq!(summary["to"], json!(last));
    check_against_base_tables(&api, summary, &first, &last, "").await;

    // The last two days, against the two before them (which hold the first day's spend).
    let (from, previous_from): (String, String) =
        sqlx::query_as("SELECT ($1::date - 1)::text, ($1::date - 3)::text")
            .bind(&last)
            .fetch_one(api.store.pool())
            .await
            .unwrap();
    let response = api
        .gql(
            Some(&admin),
            QUERY,
            json!({"range": {"from": from, "to": last}}),
        )
        .await;
    let period = &response["data"]["programSummary"];
    check_against_base_tables(&api, period, &from, &last, "").await;
    assert_eq!(period["previousFrom"], json!(previous_from));
    let mut compared = 0;
    for c in period["currencies"].as_array().unwrap() {
        let previous: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(-amount), 0)::int8 FROM transactions
             WHERE kind IN ('capture', 'refund') AND currency = $1
               AND (to_timestamp(created) AT TIME ZONE 'UTC')::date BETWEEN $2::date AND $2::date + 1",
        )
        .bind(c["currency"].as_str().unwrap())
        .bind(&previous_from)
        .fetch_one(api.store.pool())
        .await
        .unwrap();
        assert_eq!(c["previousSpend"]["amount"], json!(previous));
        compared += usize::from(previous != 0);
        let spend = c["spend"]["amount"].as_i64().unwrap();
        match c["change"].as_f64() {
            Some(change) => assert!((change - (spend as f64 / previous as f64 - 1.0)).abs() < 1e-9),
            None => assert_eq!(previous, 0),
        }
    }
    assert!(
        compared > 0,
        "a currency had spend in the period before: {period}"
    );
}

#[tokio::test]
async fn an_accounts_overview_holds_only_its_rows() {
    let accounts = [None, Some("acct_1OverviewA".to_owned())];
    let api = TestApi::start_with_accounts(&[], &accounts).await;
    let admin = api.login("admin@example.com").await;
    let (first, last) = days(&api).await;
    let response = api
        .gql(
            Some(&admin),
            QUERY,
            json!({"range": {"from": first, "to": last}, "account": "acct_1OverviewA"}),
        )
        .await;
    assert!(response["errors"].is_null(), "{response}");
    check_against_base_tables(
        &api,
        &response["data"]["programSummary"],
        &first,
        &last,
        "acct_1OverviewA",
    )
    .await;
}

#[tokio::test]
async fn the_overviews_arguments_are_checked_and_only_admins_read_it() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;
    let alice = api.login("alice@example.com").await;
    let ask = |extra: &str| {
        format!(
            "query($range: DateRangeInput!) {{ programSummary(range: $range) {{ approved {extra} }} }}"
        )
    };
    let bad = [
        (json!({"from": "2026-01-01"}), "", "needs both"),
        (
            json!({"from": "2026-01-02", "to": "2026-01-01"}),
            "",
            "after its `to`",
        ),
        (
            json!({"from": "2025-01-01", "to": "2026-02-01"}),
            "",
            "at most 367 days",
        ),
        (
            json!({"from": "2025-11-24", "to": "2025-11-24"}),
            "declines(limit: 0) { count }",
            "between 1 and 100",
        ),
        (
            json!({"from": "2025-11-24", "to": "2025-11-24"}),
            "currencies { topCards(limit: 101) { count } }",
            "between 1 and 100",
        ),
        (
            json!({"from": "2025-11-24", "to": "2025-11-24"}),
            "activity(first: 0) { nodes { id } }",
            "first",
        ),
    ];
    for (range, extra, message) in bad {
        let response = api
            .gql(Some(&admin), &ask(extra), json!({"range": range}))
            .await;
        assert_eq!(code(&response), "BAD_USER_INPUT", "{response}");
        assert!(
            response.to_string().contains(message),
            "{message}: {response}"
        );
    }
    let range = json!({"range": {"from": "2026-01-01", "to": "2026-01-02"}});
    let response = api.gql(Some(&alice), &ask(""), range.clone()).await;
    assert_eq!(code(&response), "FORBIDDEN", "{response}");
    let response = api.gql(None, &ask(""), range).await;
    assert_eq!(code(&response), "UNAUTHENTICATED", "{response}");
}

/// Viewers share the overview's sums for a second (see `graphql::shared`): a purchase folded
/// after a read shows within about two seconds, and then equals the base tables.
#[tokio::test]
async fn a_change_shows_in_the_overview_within_two_seconds() {
    let api = TestApi::start(&[]).await;
    let admin = api.login("admin@example.com").await;
    let (first, last) = days(&api).await;
    let range = json!({"range": {"from": first, "to": last}});
    let ask = "query($range: DateRangeInput!) { programSummary(range: $range) { approved } }";
    let approved = |response: Value| response["data"]["programSummary"]["approved"].as_i64();
    let before = approved(api.gql(Some(&admin), ask, range.clone()).await).unwrap();

    // More purchases on the same days.
    let more = cardstream_simulator::generate_declining_every(
        4,
        common::SEED + 2,
        common::CARDS,
        common::START,
        50,
    );
    common::ingest(&api.store, &more).await;
    let expected: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM authorizations WHERE approved
           AND (to_timestamp(created) AT TIME ZONE 'UTC')::date BETWEEN $1::date AND $2::date",
    )
    .bind(&first)
    .bind(&last)
    .fetch_one(api.store.pool())
    .await
    .unwrap();
    assert!(expected > before, "the purchases add approvals");
    let started = std::time::Instant::now();
    loop {
        let now = approved(api.gql(Some(&admin), ask, range.clone()).await).unwrap();
        if now == expected {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "still {now} approvals (of {expected}) {:?} after the change",
            started.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    eprintln!("the change showed after {:?}", started.elapsed());
}

/// Traffic on days within the presets' reach, today's included, the windows kept as the
/// aggregators keep them: the 7- and 30-day overviews (read from the windows and today's
/// rows) equal the base tables, for the program and for one account.
#[tokio::test]
async fn a_presets_overview_read_from_the_windows_equals_the_base_tables() {
    let accounts = [None, Some("acct_1WindowsA".to_owned())];
    let api = TestApi::start_with_accounts(&[], &accounts).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let today = now - now % 86_400;
    // Half the days before the windows are built (the rebuild counts them), half after (the
    // fold keeps the windows), the last today.
    for (i, days_ago) in [45_i64, 25, 9, 3, 0].into_iter().enumerate() {
        let mut events = cardstream_simulator::generate_declining_every(
            4,
            common::SEED + 10 + i as u64,
            common::CARDS,
            today - days_ago * 86_400 + 60,
            60,
        );
        cardstream_simulator::spread_over_accounts(&mut events, &accounts);
        common::ingest(&api.store, &events).await;
        if i == 1 {
            assert!(api.store.refresh_windows().await.unwrap());
        }
    }
    assert!(api.store.rollup_drift().await.unwrap().is_clean());
    let admin = api.login("admin@example.com").await;
    let (last, week, month): (String, String, String) = sqlx::query_as(
        "SELECT d::text, (d - 6)::text, (d - 29)::text
         FROM (SELECT (to_timestamp($1) AT TIME ZONE 'UTC')::date AS d) t",
    )
    .bind(today as f64)
    .fetch_one(api.store.pool())
    .await
    .unwrap();
    for from in [&week, &month] {
        for account in ["", "acct_1WindowsA"] {
            let mut vars = json!({"range": {"from": from, "to": last}});
            if !account.is_empty() {
                vars["account"] = json!(account);
            }
            let response = api.gql(Some(&admin), QUERY, vars).await;
            assert!(response["errors"].is_null(), "{response}");
            let summary = &response["data"]["programSummary"];
            assert!(
                !summary["currencies"].as_array().unwrap().is_empty(),
                "no spend from {from}: {summary}"
            );
            check_against_base_tables(&api, summary, from, &last, account).await;
        }
    }
}
