//! Stripe's history through its REST API: a backfill equals the webhooks it stands in for,
//! interleaves with live webhooks in any order, stays polite under 429s, and catch-up recovers
//! webhooks that never arrived. Real broker, real Postgres, the fake Stripe over HTTP.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use cardstream_e2e::{Pipeline, as_json, distinct_objects, now, world};
use cardstream_sync::{BackfillArgs, BackfillReport, StripeApi, StripeApiArgs};
use cardstream_telemetry::CancellationToken;
use cardstream_testbed::{FakeStripe, Fault};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const KEY: &str = "rk_test_e2e_backfill";

type Digests = BTreeMap<&'static str, (i64, String)>;

/// The tables `events` make when delivered as webhooks, alone: the content digests, and the
/// raw event table's.
async fn webhooks_alone(events: &[cardstream_simulator::SimEvent]) -> (Digests, (i64, String)) {
    let pipeline = Pipeline::start().await;
    let mut gw = pipeline.gateway(&[]).await;
    let mut aggregator = pipeline.aggregator("webhooks-alone").await;
    gw.post_all(events, 32).await;
    let digests = pipeline.settled_digests(events.len() as i64).await;
    let raw = pipeline.store.table_digests().await.unwrap()["stripe_events"].clone();
    aggregator.stop().await;
    gw.stop().await;
    (digests, raw)
}

/// The fake Stripe API holding `events` as the platform's account.
async fn stripe_holding(events: &[cardstream_simulator::SimEvent]) -> FakeStripe {
    let fake = FakeStripe::start(KEY).await;
    fake.load_events(None, as_json(events));
    fake
}

async fn run_backfill(pipeline: &Pipeline, fake: &FakeStripe, rate: f64) -> BackfillReport {
    backfill_with(pipeline, fake, rate, |_| {}).await
}

async fn backfill_with(
    pipeline: &Pipeline,
    fake: &FakeStripe,
    rate: f64,
    set: impl FnOnce(&mut BackfillArgs),
) -> BackfillReport {
    let mut api = StripeApiArgs::new(fake.url(), KEY);
    api.stripe_rate = rate;
    let mut args = BackfillArgs::new(api);
    set(&mut args);
    let client = StripeApi::new(&args.api).unwrap();
    cardstream_sync::backfill(
        &args,
        &client,
        &pipeline.producer(),
        &pipeline.store,
        &CancellationToken::new(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_backfilled_world_of_5000_objects_equals_the_same_world_as_webhooks() {
    // Three days ago, one purchase a second: all of it history by now.
    let events = world(7, 100, now() - 3 * 86_400, 2_750);
    let objects = distinct_objects(&events);
    assert!(objects >= 5_000, "a world of {objects} objects");
    let (expected, _) = webhooks_alone(&events).await;

    let fake = stripe_holding(&events).await;
    let pipeline = Pipeline::start().await;
    let mut aggregator = pipeline.aggregator("backfill").await;
    let report = run_backfill(&pipeline, &fake, 0.0).await;
    assert_eq!(report.objects(), objects as u64, "{report}");
    let backfilled = pipeline.settled_digests(objects as i64).await;
    assert_eq!(backfilled, expected, "table for table");
    aggregator.stop().await;
}

/// Stripe Connect: the platform's own objects and two connected accounts', backfilled with
/// `--all-accounts` (each account's lists read with its `Stripe-Account`), make the tables the
/// same events make as webhooks on the account and Connect endpoints, account columns included.
#[tokio::test]
async fn all_accounts_backfilled_equal_the_webhooks_of_the_platform_and_connect_endpoints() {
    const ACCOUNTS: [Option<&str>; 3] = [None, Some("acct_1E2eAlpha"), Some("acct_1E2eBravo")];
    let mut events = world(13, 30, now() - 2 * 86_400, 300);
    let accounts: Vec<Option<String>> = ACCOUNTS.iter().map(|a| a.map(str::to_owned)).collect();
    cardstream_simulator::spread_over_accounts(&mut events, &accounts);
    let objects = distinct_objects(&events);
    let (expected, _) = webhooks_alone(&events).await;

    let fake = FakeStripe::start(KEY).await;
    let bodies = as_json(&events);
    for account in ACCOUNTS {
        if let Some(id) = account {
            fake.add_account(id, now() - 30 * 86_400);
        }
        let own = bodies
            .iter()
            .filter(|e| e["account"].as_str() == account)
            .cloned();
        fake.load_events(account, own);
    }
    let pipeline = Pipeline::start().await;
    let mut aggregator = pipeline.aggregator("backfill-connect").await;
    let report = backfill_with(&pipeline, &fake, 0.0, |args| {
        args.accounts.all_accounts = true;
    })
    .await;
    assert_eq!(report.objects(), objects as u64, "{report}");
    let backfilled = pipeline.settled_digests(objects as i64).await;
    assert_eq!(backfilled, expected, "table for table");
    for account in ACCOUNTS.iter().flatten() {
        let cards: i64 = sqlx::query_scalar("SELECT count(*) FROM cards WHERE account = $1")
            .bind(account)
            .fetch_one(pipeline.store.pool())
            .await
            .unwrap();
        assert!(cards > 0, "no card of {account}");
        let scoped = fake
            .requests()
            .iter()
            .filter(|r| r.account.as_deref() == Some(*account))
            .count();
        assert!(
            scoped >= 5,
            "{account}: {scoped} requests with its Stripe-Account"
        );
    }
    aggregator.stop().await;
}

#[tokio::test]
async fn backfill_interleaved_with_live_webhooks_in_any_order_gives_the_webhooks_tables() {
    // Purchases a second apart from 40 s ago to 40 s ahead: the backfill reads objects whose
    // later versions arrive by webhook before and after it, and webhooks older than it arrive
    // after it.
    let events = world(11, 12, now() - 40, 80);
    let (expected, _) = webhooks_alone(&events).await;
    for order in 0..3u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(order);
        let mut shuffled = events.clone();
        shuffled.shuffle(&mut rng);
        let before = rng.random_range(0..shuffled.len());
        let fake = stripe_holding(&events).await;
        let pipeline = Pipeline::start().await;
        let mut gw = pipeline.gateway(&[]).await;
        let mut aggregator = pipeline.aggregator("interleaved").await;
        gw.post_all(&shuffled[..before], 8).await;
        // The rest of the webhooks while the backfill runs (slowly, 10 requests a second).
        let (_, report) = tokio::join!(
            gw.post_all(&shuffled[before..], 4),
            run_backfill(&pipeline, &fake, 10.0)
        );
        let snapshots = report.objects() as i64;
        let got = pipeline
            .settled_digests(events.len() as i64 + snapshots)
            .await;
        assert_eq!(
            got, expected,
            "order {order}: {before} webhooks first, then the rest beside {snapshots} snapshots"
        );
        aggregator.stop().await;
        gw.stop().await;
    }
}

#[tokio::test]
async fn under_429s_the_backfill_finishes_within_its_rate_and_reports_the_throttling() {
    let events = world(3, 40, now() - 86_400, 150);
    let objects = distinct_objects(&events);
    let fake = stripe_holding(&events).await;
    fake.fault_every(
        10,
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
    );
    let pipeline = Pipeline::start().await;
    let mut aggregator = pipeline.aggregator("throttled").await;
    let rate = 20.0;
    let report = run_backfill(&pipeline, &fake, rate).await;
    let requests = fake.requests();
    let throttled = requests.iter().filter(|r| r.status == 429).count() as u64;
    assert!(
        throttled >= 4,
        "{throttled} of {} throttled",
        requests.len()
    );
    assert_eq!(report.throttled, throttled, "{report}");
    assert_eq!(report.requests, requests.len() as u64);
    assert_eq!(report.objects(), objects as u64);
    // At most `rate` starts in any one-second window (one more allowed for arrival jitter).
    let most = requests
        .iter()
        .map(|first| {
            requests
                .iter()
                .filter(|r| r.at >= first.at && r.at < first.at + Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap();
    assert!(
        most <= rate as usize + 1,
        "{most} requests within one second"
    );
    // After each 429, nothing for the second Stripe asked.
    for pair in requests.windows(2) {
        if pair[0].status == 429 {
            let gap = pair[1].at - pair[0].at;
            assert!(gap >= Duration::from_millis(950), "{gap:?} after a 429");
        }
    }
    pipeline.settled_digests(objects as i64).await;
    aggregator.stop().await;
}

#[tokio::test]
async fn server_errors_are_retried_and_counted() {
    let events = world(4, 10, now() - 86_400, 60);
    let objects = distinct_objects(&events);
    let fake = stripe_holding(&events).await;
    fake.fault_every(3, Fault::ServerError);
    let pipeline = Pipeline::start().await;
    let mut aggregator = pipeline.aggregator("server-errors").await;
    let report = run_backfill(&pipeline, &fake, 0.0).await;
    let failed = fake.requests().iter().filter(|r| r.status == 500).count() as u64;
    assert!(failed >= 3, "{report}");
    assert_eq!(report.server_errors, failed, "{report}");
    assert_eq!(report.objects(), objects as u64);
    pipeline.settled_digests(objects as i64).await;
    aggregator.stop().await;
}

#[tokio::test]
async fn catch_up_recovers_the_webhooks_sent_while_the_gateway_was_off() {
    let events = world(5, 15, now() - 3_600, 120);
    let (expected, expected_raw) = webhooks_alone(&events).await;
    let fake = stripe_holding(&events).await;
    let pipeline = Pipeline::start().await;
    let mut aggregator = pipeline.aggregator("catch-up").await;

    // Delivered, then the gateway is off for a window, then delivered again.
    let (first, rest) = events.split_at(40);
    let (missed, last) = rest.split_at(50);
    let mut gw = pipeline.gateway(&[]).await;
    gw.post_all(first, 8).await;
    let down = gw.addr();
    gw.stop().await;
    for event in missed {
        let refused = tokio::net::TcpStream::connect(down).await;
        assert!(refused.is_err(), "{} would have been delivered", event.id);
    }
    let mut gw = pipeline.gateway(&[]).await;
    gw.post_all(last, 8).await;
    pipeline
        .wait_for(
            "SELECT count(*) FROM stripe_events",
            (first.len() + last.len()) as i64,
        )
        .await;
    gw.stop().await;

    // A gateway with catch-up on, over everything before now.
    let url = fake.url();
    let mut gw = pipeline
        .gateway(&[
            "--database-url",
            &pipeline.db.url,
            "--catch-up-interval",
            "1s",
            "--catch-up-settle",
            "0s",
            "--stripe-api-url",
            &url,
            "--stripe-api-key",
            KEY,
        ])
        .await;
    gw.wait_for_metric(
        "cardstream_catch_up_events_recovered_total",
        &[],
        missed.len() as f64,
    )
    .await;
    let got = pipeline.settled_digests(events.len() as i64).await;
    assert_eq!(got, expected);
    // Catch-up writes Stripe's own events, byte for byte: the raw event table matches too.
    assert_eq!(
        pipeline.store.table_digests().await.unwrap()["stripe_events"],
        expected_raw
    );
    assert_eq!(
        gw.metric("cardstream_catch_up_events_recovered_total", &[]),
        missed.len() as f64,
        "exactly the missed events count as recovered"
    );
    assert!(gw.metric("cardstream_catch_up_runs_total", &[("outcome", "ok")]) >= 1.0);
    aggregator.stop().await;
    gw.stop().await;
}
