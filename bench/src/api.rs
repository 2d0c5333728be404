//! The API benchmark. Dashboard queries: a card program of 10,000 cards and 1,000,000
//! transactions written straight into Postgres (through the same tables and rollups the
//! aggregator fills; `rollup_drift` confirms they agree), then cardholders' dashboards
//! (summary + first activity page, one request) from concurrent clients, next to the cheapest
//! signed-in request as a baseline. Freshness: see `freshness.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use cardstream_store::Store;
use cardstream_testbed::TestDatabase;
use serde_json::json;
use tokio::process::Command;

use crate::cpu::CpuMeter;
use crate::graphql::{Client, login};
use crate::load::LoadResult;
use crate::processes::{free_addr, mib, peak_rss_mib, sibling_binary, spawn_listening};
use crate::report::{Line, Row, print, ratio};

#[derive(Debug, clap::Args)]
pub(crate) struct ApiBench {
    /// Cards in the program (cardholders hold two each).
    #[arg(long, default_value_t = 10_000)]
    cards: i64,
    /// Transactions (captures), over the last 90 days; authorizations are 5 % more (declines).
    #[arg(long, default_value_t = 1_000_000)]
    transactions: i64,
    /// Concurrent dashboard clients (closed loop, no think time), each signed in as a
    /// different cardholder; one measurement per number.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    clients: Vec<usize>,
    /// How long each measurement runs.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Also measure freshness (webhook 200 → subscription) at this rate; 0 skips it.
    #[arg(long, default_value_t = 2_000.0)]
    freshness_rate: f64,
    /// How long the freshness load runs.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    freshness_duration: Duration,
    /// Leave the loaded database behind (its URL is printed), to look into its queries.
    #[arg(long)]
    keep_database: bool,
}

/// What the dashboard asks for a card when it opens: the tiles, the category and time charts,
/// the top merchants, and the first page of activity.
pub(crate) const DASHBOARD: &str = "query Dashboard($id: ID!) {
  card(id: $id) {
    id last4 currency status
    spendSummary {
      totalSpend { amount formatted } averageSpend { formatted } purchases approvalRate
      byCategory(limit: 10) { key amount { formatted } count }
      topMerchants(limit: 5) { key amount { formatted } count }
      timeSeries(bucket: DAY) { start amount { amount } count }
    }
    activity(first: 20) {
      edges { cursor node { id amount { formatted } approved outcome status declineReason
        merchant { name category city } created transactions { id kind amount { formatted } } } }
      pageInfo { hasNextPage endCursor }
    }
  }
}";

/// What the admin's program overview asks for (web/src/overview.tsx), over the last 30 days.
pub(crate) const OVERVIEW: &str = "query Program($range: DateRangeInput!) {
  programSummary(range: $range) {
    from to previousFrom approved declined approvalRate
    declines(limit: 10) { reason cardstreamReason count }
    currencies {
      currency captures refunds change
      spend { amount currency formatted exponent } previousSpend { amount currency formatted }
      timeSeries { start count amount { amount currency formatted exponent } }
      byCategory(limit: 8) { key count amount { amount currency formatted } }
      topMerchants(limit: 8) { key count amount { amount currency formatted } }
      topCards(limit: 8) { count amount { amount currency formatted } card { id last4 cardholder { name } } }
    }
    activity(first: 15) { nodes {
      id cardId approved status declineReason cardstreamReason created
      amount { amount currency formatted } merchant { name category }
    } }
  }
}";

const BASELINE: &str = "{ viewer { user { email } } }";
const PASSWORD: &str = "benchmark-password";
const ADMIN: &str = "bench-admin@example.com";

/// Runs the API benchmark, prints its table, and returns its rows for the suite.
pub(crate) async fn run(args: ApiBench) -> anyhow::Result<Vec<Line>> {
    let db = TestDatabase::create().await;
    let store = crate::processes::bench_store(&db.url, 2).await?;
    store.migrate_up().await?;
    eprintln!(
        "loading {} cards and {} transactions…",
        args.cards, args.transactions
    );
    let load_started = Instant::now();
    load_program(&store, args.cards, args.transactions).await?;
    let load = load_started.elapsed();
    let drift = store.rollup_drift().await?;
    anyhow::ensure!(drift.is_clean(), "synthetic rollups drifted: {drift:?}");
    let most = args.clients.iter().copied().max().unwrap_or(1).max(1);
    let holders = create_users(&store, &db.url, most).await?;

    let (child, client) = start_api(&db.url, most, "1s").await?;
    // A second API that shares no overview read between requests: what each costs alone.
    let (_unshared_child, unshared_client) = start_api(&db.url, 1, "0s").await?;
    let mut sessions = Vec::new();
    for (email, cards) in holders {
        let token = login(&client, &email, PASSWORD).await?;
        sessions.push((token, cards));
    }

    eprintln!("warming up…");
    drive(
        &client,
        &sessions[..most],
        DASHBOARD,
        Duration::from_secs(3),
    )
    .await?;
    let admin = login(&client, ADMIN, PASSWORD).await?;
    // The overview's range, as the page asks for it: the last 30 UTC days.
    let today = sqlx::query_scalar::<_, String>("SELECT current_date::text")
        .fetch_one(store.pool())
        .await?;
    let month_ago = sqlx::query_scalar::<_, String>("SELECT (current_date - 29)::text")
        .fetch_one(store.pool())
        .await?;
    let overview_variables = json!({"range": {"from": month_ago, "to": today}});
    let earlier_ranges: Vec<(String, String)> = sqlx::query_as(
        "SELECT (current_date - n % 60 - 29 - n / 60)::text, (current_date - n % 60)::text
         FROM generate_series(0, 999) n",
    )
    .fetch_all(store.pool())
    .await?;
    let mut table = Vec::new();
    let mut lines = Vec::new();
    let mut cores = Vec::new();
    for &clients in &args.clients {
        let clients = clients.clamp(1, most);
        eprintln!("{clients} clients: baseline, then dashboards…");
        let baseline = drive(&client, &sessions[..clients], BASELINE, args.duration).await?;
        // Where the cores went while dashboards were served: at enough clients the machine is
        // saturated and the p99 is queueing (Little's law: clients / throughput on average).
        let meter = CpuMeter::start(&[
            ("api", child.id()),
            ("load generator", Some(std::process::id())),
        ])
        .with_postgres();
        let dashboard = drive(&client, &sessions[..clients], DASHBOARD, args.duration).await?;
        cores.push(format!(
            "dashboards at {clients} clients: {}; mean latency by Little's law {:.1} ms",
            meter.finish(),
            clients as f64 * 1000.0 / answered_rate(&dashboard).max(1e-9)
        ));
        if clients == 1 {
            let overview = drive_one(
                &client,
                &admin,
                OVERVIEW,
                |_| overview_variables.clone(),
                args.duration,
            )
            .await?;
            // The same, each request read afresh (the first look after a quiet spell).
            let alone = drive_one(
                &unshared_client,
                &admin,
                OVERVIEW,
                |_| overview_variables.clone(),
                args.duration.min(Duration::from_secs(10)),
            )
            .await?;
            // Each request a range not asked before (about 30 days, ending up to 59 days ago,
            // a day longer each round): no preset's windows, every day's rows.
            let unshared = drive_one(
                &unshared_client,
                &admin,
                OVERVIEW,
                |n| {
                    let (from, to) = &earlier_ranges[n % earlier_ranges.len()];
                    json!({"range": {"from": from, "to": to}})
                },
                args.duration.min(Duration::from_secs(10)),
            )
            .await?;
            let shared = format!(
                "program overview p99 on {} transactions (30 days)",
                args.transactions
            );
            for (name, result, line) in [
                ("admin: program overview, 30 days", &overview, shared),
                (
                    "admin: overview, 30 days, not shared",
                    &alone,
                    "program overview p99, 30 days, each read alone".to_owned(),
                ),
                (
                    "admin: overview, a range not asked before",
                    &unshared,
                    "program overview p99, a range not asked before".to_owned(),
                ),
            ] {
                let times = ratio(
                    result.p(0.99).as_secs_f64(),
                    dashboard.p(0.99).as_secs_f64(),
                );
                table.push(Row {
                    name: name.to_owned(),
                    rate: answered_rate(result),
                    p50: result.p(0.5),
                    p99: result.p(0.99),
                    note: format!(
                        "{} requests, {} failed; p99 {times} of a card dashboard's",
                        result.ok(),
                        result.completed - result.ok(),
                    ),
                });
                lines.push(
                    Line::new(
                        line,
                        format!(
                            "{} ({:.0}/s)",
                            crate::ms(result.p(0.99)),
                            answered_rate(result)
                        ),
                        format!("a card's dashboard: {}", crate::ms(dashboard.p(0.99))),
                        times,
                    )
                    .target("< 25 ms"),
                );
            }
        }
        table.push(Row {
            name: format!("baseline: viewer email, {clients} clients"),
            rate: answered_rate(&baseline),
            p50: baseline.p(0.5),
            p99: baseline.p(0.99),
            note: format!(
                "{} requests, {} failed",
                baseline.ok(),
                baseline.completed - baseline.ok()
            ),
        });
        table.push(Row {
            name: format!("dashboard: summary + page, {clients} clients"),
            rate: answered_rate(&dashboard),
            p50: dashboard.p(0.5),
            p99: dashboard.p(0.99),
            note: format!(
                "{} requests, {} failed; p99 {} of the baseline's",
                dashboard.ok(),
                dashboard.completed - dashboard.ok(),
                ratio(
                    dashboard.p(0.99).as_secs_f64(),
                    baseline.p(0.99).as_secs_f64()
                )
            ),
        });
        lines.push(
            Line::new(
                format!(
                    "dashboard p99 on {} transactions, {clients} clients",
                    args.transactions
                ),
                format!(
                    "{} ({:.0}/s)",
                    crate::ms(dashboard.p(0.99)),
                    answered_rate(&dashboard)
                ),
                format!("signed-in viewer query: {}", crate::ms(baseline.p(0.99))),
                ratio(
                    dashboard.p(0.99).as_secs_f64(),
                    baseline.p(0.99).as_secs_f64(),
                ),
            )
            .target("< 25 ms, ≤ 2x the baseline"),
        );
    }
    let api_rss = peak_rss_mib(child.id());
    drop(child);
    lines.push(Line::new(
        "peak RSS: api",
        mib(api_rss),
        format!("{} transactions in Postgres", args.transactions),
        "",
    ));

    let mut context = vec![
        format!(
            "{} cards, {} transactions, {} authorizations over 90 days, loaded in {:.1} s; rollups equal a recomputation",
            args.cards,
            args.transactions,
            args.transactions + args.transactions / 20,
            load.as_secs_f64()
        ),
        format!(
            "closed-loop clients with no think time, each a different cardholder, {} s per measurement; the API process (8 connections to Postgres), Postgres and the clients share the machine's 2 cores",
            args.duration.as_secs()
        ),
    ];
    context.extend(cores);
    if args.freshness_rate > 0.0 {
        eprintln!("freshness at {} events/s…", args.freshness_rate);
        let fresh =
            crate::freshness::measure(args.freshness_rate, args.freshness_duration, &[]).await?;
        eprintln!("freshness again, batches waiting the whole batch wait…");
        // The default batch wait with a quiet gap as long as it: every batch waits it out.
        let fixed = crate::freshness::measure(
            args.freshness_rate,
            args.freshness_duration,
            &["--batch-wait", "100ms", "--batch-quiet", "100ms"],
        )
        .await?;
        context.push(fresh.context());
        table.push(fresh.row("freshness: webhook 200 -> subscription"));
        table.push(fixed.row("baseline: the same, batches wait 100 ms"));
        lines.push(fresh.line(&fixed));
    }
    print("cardstream API benchmark", &context, &table);
    if args.keep_database {
        eprintln!("the database is left behind: {}", db.url);
        std::mem::forget(db);
    }
    Ok(lines)
}

/// Closed-loop clients, one per session, each asking for a random card of its own.
async fn drive(
    client: &Client,
    sessions: &[(String, Vec<String>)],
    query: &'static str,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let end = Instant::now() + duration;
    let sessions = Arc::new(sessions.to_vec());
    let mut tasks = Vec::new();
    for (i, _) in sessions.iter().enumerate() {
        let (client, sessions) = (client.clone(), sessions.clone());
        tasks.push(tokio::spawn(async move {
            let (token, cards) = &sessions[i];
            let mut outcome = LoadResult::empty(Duration::ZERO);
            let mut n = i;
            while Instant::now() < end {
                n = n.wrapping_mul(31).wrapping_add(7);
                let card = &cards[n % cards.len()];
                let started = Instant::now();
                let body = json!({"query": query, "variables": {"id": card}});
                let ok = match client.post(Some(token), &body).await {
                    Ok(response) => response["errors"].is_null() && !response["data"].is_null(),
                    Err(_) => false,
                };
                outcome.record(ok.then_some(200), started.elapsed());
            }
            outcome
        }));
    }
    let mut total = LoadResult::empty(duration);
    for task in tasks {
        total.merge(&task.await?);
    }
    Ok(total)
}

/// One closed-loop client asking `query` with `variables` for `duration`.
async fn drive_one(
    client: &Client,
    token: &str,
    query: &str,
    variables: impl Fn(usize) -> serde_json::Value,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let end = Instant::now() + duration;
    let mut outcome = LoadResult::empty(duration);
    let mut asked = 0;
    while Instant::now() < end {
        let body = json!({"query": query, "variables": variables(asked)});
        asked += 1;
        let started = Instant::now();
        let ok = match client.post(Some(token), &body).await {
            Ok(response) => response["errors"].is_null() && !response["data"].is_null(),
            Err(_) => false,
        };
        outcome.record(ok.then_some(200), started.elapsed());
    }
    Ok(outcome)
}

/// Starts `cardstream api` on the benchmark's database, sharing the overview's reads for
/// `shared_for`, with a client of `connections`.
async fn start_api(
    database: &str,
    connections: usize,
    shared_for: &str,
) -> anyhow::Result<(tokio::process::Child, Client)> {
    let listen = free_addr()?;
    let mut api = Command::new(sibling_binary("cardstream")?);
    api.arg("api")
        .env("CARDSTREAM_LISTEN", listen.to_string())
        .env("CARDSTREAM_ADMIN_LISTEN", free_addr()?.to_string())
        .env("CARDSTREAM_DATABASE_URL", database)
        .env(
            "CARDSTREAM_TOKEN_SECRET",
            "benchmark-token-secret-of-32-bytes-at-least",
        )
        .env("CARDSTREAM_OVERVIEW_SHARED_FOR", shared_for)
        .env("RUST_LOG", "warn");
    let child = spawn_listening(api, listen).await?;
    Ok((child, Client::new(listen, connections)))
}

/// Requests that answered with data and no errors, per second of the measurement.
fn answered_rate(r: &LoadResult) -> f64 {
    r.ok() as f64 / r.elapsed.as_secs_f64().max(1e-9)
}

/// Writes the card program with set-based SQL: cardholders, cards in four currencies (JPY
/// zero-decimal), authorizations (5 % declined) and one capture per approved authorization,
/// merchants over the 273 categories with a skew; then the rollups, computed as the aggregator
/// would have kept them.
async fn load_program(store: &Store, cards: i64, transactions: i64) -> anyhow::Result<()> {
    let categories: Vec<String> = cardstream_stripe::merchant_categories()
        .map(str::to_owned)
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let authorizations = transactions + transactions / 20;
    let pool = store.pool();
    let statements = [
        "INSERT INTO cardholders (id, name, email, status, kind, created, version_created, version_rank, version_event_id)
         SELECT 'ich_bench' || lpad(h::text, 8, '0'), 'Holder ' || h, 'holder' || h || '@example.com',
                'active', 'individual', $1 - 200 * 86400, $1 - 200 * 86400, 1, 'evt_bench_h' || h
         FROM generate_series(0, $2 / 2 - 1) h",
        "INSERT INTO cards (id, cardholder_id, status, currency, kind, brand, last4, exp_month, exp_year, created, version_created, version_rank, version_event_id)
         SELECT 'ic_bench' || lpad(c::text, 8, '0'), 'ich_bench' || lpad((c / 2)::text, 8, '0'), 'active',
                (ARRAY['usd','usd','usd','usd','usd','usd','eur','eur','gbp','jpy'])[1 + c % 10],
                'virtual', 'Visa', lpad((c % 10000)::text, 4, '0'), 1 + c % 12, 2030, $1 - 200 * 86400,
                $1 - 200 * 86400, 1, 'evt_bench_c' || c
         FROM generate_series(0, $2 - 1) c",
    ];
    for sql in statements {
        sqlx::query(sql)
            .bind(now)
            .bind(cards)
            .execute(pool)
            .await
            .context("loading cardholders and cards")?;
    }
    // One row per authorization; every 21st is declined; the rest have one capture each.
    sqlx::query(
        "INSERT INTO authorizations (id, card_id, cardholder_id, amount, requested_amount, currency,
             approved, status, decline_reason, merchant_name, merchant_category, merchant_city,
             merchant_country, request_history, created, version_created, version_rank, version_event_id)
         SELECT 'iauth_bench' || lpad(a::text, 9, '0'), c.id, c.cardholder_id, 0, x.amount, c.currency,
                NOT x.declined, 'closed',
                CASE WHEN x.declined THEN 'webhook_declined' END,
                'Merchant ' || x.merchant, $4[1 + x.merchant % array_length($4, 1)], 'Springfield', 'US',
                '[]'::jsonb, x.created, x.created, 1, 'evt_bench_a' || a
         FROM generate_series(0, $2 - 1) a
         CROSS JOIN LATERAL (SELECT (a % 21 = 20) AS declined,
                                    100 + (hashint8(a) & 65535) % 20000 AS amount,
                                    floor(2000 * power(((hashint8(a + 7) & 65535) / 65536.0), 3))::int AS merchant,
                                    $1 - ((hashint8(a + 13) & 65535)::bigint * 90 * 86400 / 65536) AS created) x
         JOIN cards c ON c.id = 'ic_bench' || lpad((a % $3)::text, 8, '0')",
    )
    .bind(now)
    .bind(authorizations)
    .bind(cards)
    .bind(&categories)
    .execute(pool)
    .await
    .context("loading authorizations")?;
    sqlx::query(
        "INSERT INTO transactions (id, card_id, cardholder_id, authorization_id, kind, amount, currency,
             merchant_name, merchant_category, merchant_city, merchant_country, created,
             version_created, version_rank, version_event_id)
         SELECT 'ipi_bench' || substr(a.id, 12), a.card_id, a.cardholder_id, a.id, 'capture', -a.requested_amount,
                a.currency, a.merchant_name, a.merchant_category, a.merchant_city, a.merchant_country,
                a.created + 3600, a.created + 3600, 1, 'evt_bench_t' || substr(a.id, 12)
         FROM authorizations a WHERE a.approved",
    )
    .execute(pool)
    .await
    .context("loading transactions")?;
    let day = "DATE '1970-01-01' + floor(created::numeric / 86400)::int";
    let rollups = [
        format!(
            "INSERT INTO card_daily_spend
             SELECT card_id, day, currency, sum(spend), sum(captured), sum(refunded), sum(captures),
                    sum(refunds), sum(approved), sum(declined)
             FROM (SELECT card_id, {day} AS day, currency, -amount AS spend, -amount AS captured,
                          0 AS refunded, 1 AS captures, 0 AS refunds, 0 AS approved, 0 AS declined
                   FROM transactions
                   UNION ALL
                   SELECT card_id, {day}, currency, 0, 0, 0, 0, 0, approved::int, (NOT approved)::int
                   FROM authorizations) x
             GROUP BY card_id, day, currency"
        ),
        "INSERT INTO card_category_spend
         SELECT card_id, merchant_category, currency, sum(-amount), count(*) FROM transactions GROUP BY 1, 2, 3"
            .to_owned(),
        "INSERT INTO card_merchant_spend
         SELECT card_id, merchant_name, currency, sum(-amount), count(*) FROM transactions GROUP BY 1, 2, 3"
            .to_owned(),
        "ANALYZE".to_owned(),
    ];
    for sql in rollups {
        sqlx::query(&sql)
            .execute(pool)
            .await
            .context("computing the rollups")?;
    }
    store
        .rebuild_program_rollups()
        .await
        .context("computing the program rollups")?;
    // As autovacuum leaves a table that has settled: statistics, and the visibility map that
    // lets the overview's top cards be read from the card rollup's index alone.
    sqlx::query("VACUUM ANALYZE").execute(pool).await?;
    let loaded: i64 = sqlx::query_scalar("SELECT count(*) FROM transactions")
        .fetch_one(pool)
        .await?;
    anyhow::ensure!(
        loaded >= transactions,
        "loaded {loaded} transactions, wanted {transactions}"
    );
    Ok(())
}

/// One cardholder user per client, each linked to a different cardholder (two cards each).
async fn create_users(
    store: &Store,
    url: &str,
    clients: usize,
) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let status = Command::new(sibling_binary("cardstream")?)
        .args(["users", "add", "--email", "bench0@example.com"])
        .args(["--role", "cardholder", "--cardholder", "ich_bench00000000"])
        .env("CARDSTREAM_DATABASE_URL", url)
        .env("CARDSTREAM_USER_PASSWORD", PASSWORD)
        .status()
        .await?;
    anyhow::ensure!(status.success(), "cardstream users add failed: {status}");
    // The others, and an admin, share the first one's password hash.
    sqlx::query(
        "INSERT INTO users (email, password_hash, role)
         SELECT $1, password_hash, 'admin' FROM users WHERE email = 'bench0@example.com'",
    )
    .bind(ADMIN)
    .execute(store.pool())
    .await?;
    for i in 1..clients {
        sqlx::query(
            "WITH u AS (INSERT INTO users (email, password_hash, role)
                        SELECT $1, password_hash, role FROM users WHERE email = 'bench0@example.com'
                        RETURNING id)
             INSERT INTO user_cardholders (user_id, cardholder_id) SELECT id, $2 FROM u",
        )
        .bind(format!("bench{i}@example.com"))
        .bind(format!("ich_bench{i:08}"))
        .execute(store.pool())
        .await?;
    }
    let mut out = Vec::new();
    for i in 0..clients {
        let cards: Vec<String> =
            sqlx::query_scalar("SELECT id FROM cards WHERE cardholder_id = $1 ORDER BY id")
                .bind(format!("ich_bench{i:08}"))
                .fetch_all(store.pool())
                .await?;
        anyhow::ensure!(!cards.is_empty(), "cardholder {i} has no cards");
        out.push((format!("bench{i}@example.com"), cards));
    }
    Ok(out)
}
