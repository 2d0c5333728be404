//! `cardstream backfill` killed (SIGKILL) at random points three times, then run to the end:
//! each run resumes after the last page it wrote, no object is read again past the page in
//! flight, nothing is stored twice, and the tables are those of the world's own events. The
//! API key never reaches the output.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use cardstream_testbed::FakeStripe;
use common::{Setup, folded, terminate};
use rand::Rng;

const KEY: &str = "rk_test_resume_0123456789";
const KILLS: usize = 3;
const STORED: &str = "SELECT count(*) FROM stripe_events";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn a_backfill_killed_three_times_resumes_without_rereading_or_duplicating() {
    let events = cardstream_simulator::generate_declining_every(4, 17, 5, now() - 86_400, 2_000);
    let json: Vec<serde_json::Value> = events
        .iter()
        .map(|e| serde_json::from_slice(&e.body).unwrap())
        .collect();
    let objects: BTreeMap<String, String> = json
        .iter()
        .map(|e| {
            let o = &e["data"]["object"];
            (
                o["id"].as_str().unwrap().to_owned(),
                o["object"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let fake = FakeStripe::start(KEY).await;
    fake.load_events(None, json);
    let setup = Setup::new(4).await;
    let backfill = |name: &str| {
        let log = std::fs::File::create(setup.logs.path().join(format!("{name}.log"))).unwrap();
        setup
            .command(&["backfill", "--output", "json", "--stripe-rate", "8"])
            .env("CARDSTREAM_STRIPE_API_URL", fake.url())
            .env("CARDSTREAM_STRIPE_API_KEY", KEY)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap()
    };

    let mut rng = rand::rng();
    let mut pages_saved = Vec::new();
    for kill in 0..KILLS {
        let mut run = backfill(&format!("killed-{kill}"));
        let at = Duration::from_millis(rng.random_range(700..1_800));
        tokio::time::sleep(at).await;
        assert!(
            run.try_wait().unwrap().is_none(),
            "run {kill} finished before its kill at {at:?}: the world is too small to test resuming"
        );
        run.start_kill().unwrap();
        run.wait().await.unwrap();
        let saved: i64 = setup
            .count("SELECT coalesce(sum(objects), 0)::int8 FROM stripe_sync_cursors")
            .await;
        pages_saved.push(saved);
    }
    assert!(
        pages_saved.windows(2).all(|w| w[0] <= w[1]) && *pages_saved.last().unwrap() > 0,
        "the cursors moved on across the kills: {pages_saved:?}"
    );

    let last = backfill("last");
    let out = last.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{}", setup.log("last"));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let written_last = report["objects"].as_u64().unwrap();
    assert!(
        (written_last as usize) < objects.len(),
        "the last run resumed ({written_last} of {} objects)",
        objects.len()
    );

    // Every object once in the raw events, however many runs read its page.
    let mut aggregator = setup.aggregator("resume", "aggregator");
    setup
        .wait_for(
            STORED,
            objects.len() as i64,
            Duration::from_secs(120),
            &["aggregator"],
        )
        .await;
    let (_db, expected) = folded(&events).await;
    assert_eq!(
        setup.store.content_digests().await.unwrap(),
        expected.content_digests().await.unwrap(),
        "the tables of the world's own events"
    );
    assert!(terminate(&mut aggregator).await.success());

    // Past the page in flight at each kill, no page was read twice: per list, each page
    // (named by the cursor it starts after) was asked for once, plus at most one re-read per
    // kill across all lists.
    let mut asked: BTreeMap<(String, Option<String>), usize> = BTreeMap::new();
    for r in fake.requests() {
        if r.status != 200 || r.path == "/v1/issuing/tokens" {
            continue;
        }
        let after = r
            .query
            .iter()
            .find(|(k, _)| k == "starting_after")
            .map(|(_, v)| v.clone());
        *asked.entry((r.path.clone(), after)).or_default() += 1;
    }
    let rereads: usize = asked.values().map(|n| n - 1).sum();
    assert!(
        rereads <= KILLS,
        "{rereads} pages read again after {KILLS} kills: {asked:?}"
    );
    let returned: usize = fake
        .requests()
        .iter()
        .filter(|r| r.path != "/v1/issuing/tokens")
        .map(|r| r.returned)
        .sum();
    assert!(
        returned <= objects.len() + KILLS * 100,
        "{returned} objects served for {} objects",
        objects.len()
    );

    for name in ["killed-0", "killed-1", "killed-2", "last"] {
        assert!(!setup.log(name).contains(KEY), "{name} logged the API key");
    }
    assert!(!String::from_utf8_lossy(&out.stdout).contains(KEY));
}

#[tokio::test]
async fn a_refused_request_stops_the_backfill_naming_the_endpoint_and_not_the_key() {
    let fake = FakeStripe::start(KEY).await;
    let setup = Setup::new(1).await;
    let wrong = "rk_test_wrong_key_987654321";
    let out = setup
        .command(&["backfill"])
        .env("CARDSTREAM_STRIPE_API_URL", fake.url())
        .env("CARDSTREAM_STRIPE_API_KEY", wrong)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("GET /v1/issuing/cardholders?limit=100")
            && stderr.contains("refused with 401: Invalid API Key provided"),
        "{stderr}"
    );
    assert!(!stderr.contains(wrong) && !String::from_utf8_lossy(&out.stdout).contains(wrong));
    // Refused once, not retried.
    assert_eq!(fake.requests().len(), 1);

    let flag = setup
        .command(&["backfill", "--stripe-api-key", wrong])
        .output()
        .await
        .unwrap();
    assert_eq!(flag.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&flag.stderr).contains("set CARDSTREAM_STRIPE_API_KEY"));
}
