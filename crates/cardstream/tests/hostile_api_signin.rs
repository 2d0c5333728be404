//! Sign-in under attack, and what every answer carries, against `cardstream api` as it runs:
//! parallel wrong passwords reach the password check at most the limit's number of times, the
//! limiter's memory stays bounded, password hashing cannot starve the API, X-Forwarded-For
//! counts only from trusted proxies, and every answer carries the security headers (GraphiQL
//! only when asked for, and then from the binary's own assets).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::api::{ALICE, ApiProcess, Seeded, code, get};
use futures_util::future::join_all;
use serde_json::{Value, json};

const LOGIN: &str =
    "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { token } }";

async fn wrong_login(api: &ApiProcess, email: &str, forwarded: Option<&str>) -> Value {
    let headers: Vec<(&str, &str)> = forwarded
        .map(|f| vec![("x-forwarded-for", f)])
        .unwrap_or_default();
    api.post(
        None,
        &headers,
        LOGIN,
        json!({"e": email, "p": "wrong password, again"}),
    )
    .await
    .json()
}

fn codes(responses: &[Value]) -> (usize, usize) {
    let count = |c: &str| responses.iter().filter(|r| code(r) == c).count();
    (count("UNAUTHENTICATED"), count("RATE_LIMITED"))
}

#[tokio::test]
async fn a_parallel_burst_of_wrong_passwords_reaches_the_check_at_most_the_limit() {
    let seeded = Seeded::new().await;
    let api = ApiProcess::start(&seeded, &[]).await;
    let checks_before = api.metric("cardstream_password_checks_total").await;
    let responses = join_all((0..100).map(|_| wrong_login(&api, ALICE, None))).await;
    let (checked, limited) = codes(&responses);
    eprintln!("100 parallel wrong passwords: {checked} checked, {limited} rate-limited");
    assert!(
        checked <= 5,
        "{checked} of 100 reached the password check (limit 5)"
    );
    assert_eq!(checked + limited, 100);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let checks = api.metric("cardstream_password_checks_total").await - checks_before;
    assert!(checks <= 5.0, "{checks} password checks ran");
    // The right password is refused too while the account is locked.
    assert_eq!(
        code(
            &api.login_with(ALICE, common::api::PASSWORD)
                .await
                .unwrap_err()
        ),
        "RATE_LIMITED"
    );

    // An email longer than any address is refused before any work.
    let long = format!("{}@example.com", "a".repeat(300));
    let before = api.metric("cardstream_password_checks_total").await;
    assert_eq!(
        code(&wrong_login(&api, &long, None).await),
        "BAD_USER_INPUT"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(api.metric("cardstream_password_checks_total").await, before);
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies_and_memory_stays_bounded() {
    let seeded = Seeded::new().await;

    // Untrusted peer: X-Forwarded-For is ignored, so rotating it does not escape the
    // per-address limit (30 a minute).
    let api = ApiProcess::start(&seeded, &[]).await;
    let responses = join_all((0..40).map(|i| {
        let email = format!("nobody{i}@example.com");
        let forwarded = format!("203.0.113.{i}");
        let api = &api;
        async move { wrong_login(api, &email, Some(&forwarded)).await }
    }))
    .await;
    let (checked, limited) = codes(&responses);
    assert!(
        checked <= 30 && limited >= 10,
        "spoofed X-Forwarded-For: {checked} checked, {limited} limited"
    );

    // Behind a trusted proxy, each forwarded client has its own limit; a capacity of 200
    // keys holds through 400 distinct accounts from 400 addresses, and a locked account stays
    // locked throughout.
    let api = ApiProcess::start(
        &seeded,
        &[
            "--trusted-proxies",
            "127.0.0.1/32",
            "--login-limiter-capacity",
            "200",
        ],
    )
    .await;
    let victim: Vec<Value> =
        join_all((0..6).map(|_| wrong_login(&api, ALICE, Some("198.51.100.1")))).await;
    assert_eq!(codes(&victim), (5, 1), "{victim:?}");
    let mut largest = 0.0f64;
    for round in 0..8 {
        let responses = join_all((0..50).map(|i| {
            let n = round * 50 + i;
            let email = format!("flood{n}@example.com");
            let forwarded = format!("10.1.{}.{}", n / 250, n % 250 + 1);
            let api = &api;
            async move { wrong_login(api, &email, Some(&forwarded)).await }
        }))
        .await;
        let (checked, _) = codes(&responses);
        assert!(
            checked > 0,
            "trusted forwarded clients were limited together"
        );
        largest = largest.max(api.metric("cardstream_login_limiter_keys").await);
        assert_eq!(
            code(&wrong_login(&api, ALICE, Some("198.51.100.2")).await),
            "RATE_LIMITED",
            "the locked account was forgotten after round {round}"
        );
    }
    eprintln!("limiter keys at most {largest} with capacity 200 after 400 distinct accounts");
    assert!(largest <= 200.0, "{largest} keys with a capacity of 200");
}

#[tokio::test]
async fn password_hashing_does_not_starve_other_requests() {
    let seeded = Seeded::new().await;
    let api = ApiProcess::start(&seeded, &["--trusted-proxies", "127.0.0.1/32"]).await;
    let token = api.login(common::api::BOB).await;
    // 120 sign-ins that each run argon2, from as many (forwarded) addresses, while a signed-in
    // user keeps reading.
    let flood = join_all((0..120).map(|n| {
        let email = format!("slow{n}@example.com");
        let forwarded = format!("10.2.0.{}", n + 1);
        let api = &api;
        async move { wrong_login(api, &email, Some(&forwarded)).await }
    }));
    let reads = async {
        let mut slowest = Duration::ZERO;
        tokio::time::sleep(Duration::from_millis(200)).await;
        for _ in 0..20 {
            let started = Instant::now();
            let me = api
                .gql(Some(&token), "{ viewer { user { email } } }", json!({}))
                .await;
            assert!(me["errors"].is_null(), "{me}");
            slowest = slowest.max(started.elapsed());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        slowest
    };
    let (responses, slowest) = tokio::join!(flood, reads);
    let (checked, _) = codes(&responses);
    eprintln!("{checked} sign-ins hashed meanwhile; the slowest of 20 reads took {slowest:?}");
    assert!(checked >= 60, "only {checked} sign-ins ran");
    assert!(
        slowest < Duration::from_millis(500),
        "a read waited {slowest:?} behind argon2"
    );
}

#[tokio::test]
async fn answers_carry_security_headers_and_graphiql_is_off_unless_asked_for() {
    let seeded = Seeded::new().await;
    let api = ApiProcess::start(&seeded, &[]).await;
    let posted = api.post(None, &[], "{ __typename }", json!({})).await;
    let (status, _, page) = get(&format!("http://{}/", api.addr)).await;
    assert_eq!(status, 200);
    for headers in [&posted.headers, &page] {
        let header = |name: &str| {
            headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
        };
        let csp = header("content-security-policy");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert!(
            csp.contains("connect-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert_eq!(header("x-frame-options"), "DENY");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("referrer-policy"), "no-referrer");
    }
    assert_eq!(posted.headers["cache-control"], "no-store");
    let (status, body, _) = get(&api.url()).await;
    assert_eq!(status, 404, "GraphiQL without --graphiql: {body}");

    let explorer = ApiProcess::start(&seeded, &["--graphiql"]).await;
    let (status, body, headers) = get(&explorer.url()).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert!(body.contains("<script"), "{body}");
    for script in body.split("<script").skip(1) {
        let tag = &script[..script.find('>').unwrap()];
        assert!(
            tag.contains("src=\"/"),
            "an inline or foreign script: <script{tag}>"
        );
    }
    for foreign in ["http://", "https://", "//unpkg", "//cdn"] {
        assert!(
            !body.contains(foreign),
            "GraphiQL's page names {foreign}: {body}"
        );
    }
}
