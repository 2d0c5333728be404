//! `cardstream dev`: the whole system in one process on a laptop. A Kafka-protocol broker
//! (tansu, in memory) as a child process, the topics, a fresh database on the local Postgres,
//! the gateway, the aggregator and the API, two demo users, and the simulator sending gentle
//! traffic so the dashboard fills. Ctrl-C stops everything.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use cardstream_broker::{LocalBroker, Storage};
use cardstream_store::{Role, Store};
use cardstream_telemetry::CancellationToken;

use crate::registry;
use clap::builder::TypedValueParser;
use clap::{Args, FromArgMatches};
use secrecy::{ExposeSecret, SecretString};

/// The demo users `cardstream dev` creates. Their passwords are printed: this is a laptop.
const DEMO_ADMIN: (&str, &str) = ("admin@cardstream.dev", "cardstream-admin");
const DEMO_CARDHOLDER: (&str, &str) = ("demo@cardstream.dev", "cardstream-demo");
const DEV_SECRET: &str = "whsec_cardstream_dev";
/// The Connect endpoint's signing secret: connected accounts' events (with `account`) are
/// signed with it, as Stripe signs a Connect endpoint's. The gateway refuses a secret that is
/// both endpoints', so it differs from [`DEV_SECRET`].
const DEV_CONNECT_SECRET: &str = "whsec_cardstream_dev_connect";

/// The demo card program's spending policy, as the gateway's settings and as the policy the
/// admin sees (and edits) in the dashboard.
const BLOCKED_CATEGORIES: &str = "betting_casino_gambling";
const MAX_AMOUNT: &str = "usd=150000,eur=150000,gbp=120000,jpy=200000";
const DAILY_LIMIT: &str = "usd=300000,eur=300000,gbp=250000,jpy=400000";

/// `cardstream dev` settings.
#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    /// Address of the dashboard and GraphQL.
    #[arg(long, env = "CARDSTREAM_DEV_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// Address Stripe (here: the simulator) posts webhooks to.
    #[arg(
        long,
        env = "CARDSTREAM_DEV_WEBHOOK_LISTEN",
        default_value = "127.0.0.1:8081"
    )]
    webhook_listen: SocketAddr,

    /// Admin endpoints (/metrics, /healthz, /readyz): the API on this port, the gateway on the
    /// next, the aggregator on the one after.
    #[arg(
        long,
        env = "CARDSTREAM_DEV_ADMIN_LISTEN",
        default_value = "127.0.0.1:9090"
    )]
    admin_listen: SocketAddr,

    /// The database to use; it is dropped and created afresh at start (the in-memory broker
    /// starts empty too), unless --keep-data. A variable of its own, not
    /// CARDSTREAM_DATABASE_URL: a shell set up for a real deployment must not get its
    /// database dropped by `dev`. Set through the environment.
    #[arg(
        long = "database-url",
        env = "CARDSTREAM_DEV_DATABASE_URL",
        hide_env_values = true,
        default_value = "postgres://postgres@127.0.0.1:5432/cardstream_dev",
        value_parser = clap::builder::StringValueParser::new().map(SecretString::from)
    )]
    database_url: SecretString,

    /// Keep the database of the previous run instead of starting fresh.
    #[arg(long)]
    keep_data: bool,

    /// Use this Kafka broker instead of starting a local one.
    #[arg(long, env = "CARDSTREAM_KAFKA_BROKERS")]
    kafka_brokers: Option<String>,

    /// Partitions of the events topic.
    #[arg(long, default_value_t = 4)]
    partitions: i32,

    /// Simulated deliveries per second (0: no simulated traffic).
    #[arg(long, env = "CARDSTREAM_DEV_RATE", default_value_t = 10.0)]
    rate: f64,

    /// Simulated cards.
    #[arg(long, default_value_t = 40)]
    cards: usize,

    /// Before the live traffic, a history of purchases over this long up to now (weekly and
    /// daily rhythms), sent through the gateway as fast as it answers, so that every chart has
    /// a shape from the first page; `0s` for none. Not with --keep-data (the kept database
    /// has its history), nor with --rate 0.
    #[arg(long, default_value = "90d", value_parser = humantime::parse_duration)]
    history: Duration,

    /// Purchases in the history.
    #[arg(long, default_value_t = 3_000)]
    history_purchases: u64,

    /// Seed of the simulated card program (default: from the clock, so each fresh run has
    /// new event ids).
    #[arg(long)]
    seed: Option<u64>,

    /// Stripe Connect: spread the simulated cardholders (with their cards and purchases) over
    /// the platform's own account and this many connected accounts, `acct_dev1` and on. Each
    /// connected account gets a demo admin limited to it; the platform admin can pick one.
    #[arg(
        long,
        env = "CARDSTREAM_DEV_CONNECT_ACCOUNTS",
        default_value_t = 0,
        value_parser = clap::value_parser!(u16).range(0..=100)
    )]
    connect_accounts: u16,

    /// Your own webhook signing secrets (`whsec_…`, comma-separated), accepted beside dev's:
    /// the one `stripe listen` prints, or a test-mode Dashboard endpoint's, to fold a real
    /// Stripe sandbox's events (README: Connecting a Stripe sandbox). Set through the
    /// environment only.
    #[arg(
        long = "webhook-secrets",
        env = "CARDSTREAM_WEBHOOK_SECRETS",
        hide_env_values = true,
        value_delimiter = ',',
        value_parser = clap::builder::StringValueParser::new().map(SecretString::from)
    )]
    webhook_secrets: Vec<SecretString>,
}

/// The connected accounts of `--connect-accounts n`.
fn dev_accounts(n: u16) -> Vec<String> {
    (1..=n).map(|k| format!("acct_dev{k}")).collect()
}

/// The demo admin limited to a connected account: email and password.
fn account_admin(account: &str) -> (String, String) {
    let name = account.replace('_', "-");
    (
        format!("{name}@cardstream.dev"),
        format!("cardstream-{name}"),
    )
}

/// Parses a component's settings from `argv` (flags only; its environment variables apply
/// to whatever `argv` leaves out), so `dev` configures the components exactly as their own
/// subcommands would be.
fn component_args<T: Args + FromArgMatches>(argv: &[String]) -> anyhow::Result<T> {
    let command = T::augment_args(clap::Command::new("cardstream-dev").no_binary_name(true));
    let matches = command
        .try_get_matches_from(argv)
        .context("internal dev settings are invalid")?;
    Ok(T::from_arg_matches(&matches)?)
}

fn argv(pairs: &[(&str, &str)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(k, v)| [format!("--{k}"), (*v).to_owned()])
        .collect()
}

/// The admin port `by` after `addr`'s; port 0 (any free port) stays 0 for every component.
fn next_port(addr: SocketAddr, by: u16) -> SocketAddr {
    match addr.port() {
        0 => addr,
        port => SocketAddr::new(addr.ip(), port.saturating_add(by)),
    }
}

pub(crate) async fn run(args: DevArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(42, |d| d.as_secs())
    });

    // The broker first: nothing else is useful without it.
    let (_broker, brokers) = match &args.kafka_brokers {
        Some(brokers) => (None, brokers.clone()),
        None => {
            let broker = LocalBroker::start(Storage::Memory)
                .await
                .context("cannot start the local Kafka-protocol broker")?;
            let brokers = broker.brokers();
            (Some(broker), brokers)
        }
    };
    cardstream_kafka::ensure_topics(&component_args(&argv(&[
        ("kafka-brokers", &brokers),
        ("partitions", &args.partitions.to_string()),
    ]))?)
    .await
    .context("cannot create the topics")?;

    let url = args.database_url.expose_secret();
    if args.keep_data {
        cardstream_store::create_database_if_missing(url).await?;
    } else {
        cardstream_store::recreate_database(url)
            .await
            .context("cannot create the dev database on the local Postgres")?;
    }
    let store = Store::connect(url, 2).await?;
    store.migrate_up().await?;
    let demo_holders = demo_cardholders(seed, args.cards);
    create_demo_users(&store, &demo_holders).await?;
    let accounts = dev_accounts(args.connect_accounts);
    create_account_admins(&store, &accounts).await?;
    // Saved as an admin would: the dashboard's policy editor then starts from what the gateway
    // enforces, instead of from an empty policy whose first save would drop the limits.
    if store.stored_policy().await?.is_none() {
        store.save_policy(Some(0), dev_policy(), DEV_ACTOR).await?;
    }

    // The components stop on their own token, after the simulator has finished: its last
    // purchases' follow-ups still find a gateway to accept them.
    let components = CancellationToken::new();
    let token_secret = random_secret();
    // Records on the topic are signed by the gateway and checked by the aggregator, as in a
    // deployment; the key lives as long as this run.
    let record_key = random_secret();
    // dev's own secret (the simulator signs with it) first, then the user's.
    let webhook_secrets = std::iter::once(DEV_SECRET)
        .chain(
            args.webhook_secrets
                .iter()
                .map(|s| s.expose_secret().trim()),
        )
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(",");
    let gateway = cardstream_gateway::start(
        component_args(&argv(&[
            ("listen", &args.webhook_listen.to_string()),
            ("admin-listen", &next_port(args.admin_listen, 1).to_string()),
            ("kafka-brokers", &brokers),
            ("webhook-secrets", &webhook_secrets),
            ("connect-webhook-secrets", DEV_CONNECT_SECRET),
            ("record-keys", &record_key),
            ("database-url", url),
            ("policy-blocked-categories", BLOCKED_CATEGORIES),
            ("policy-max-amount", MAX_AMOUNT),
            ("policy-daily-limit", DAILY_LIMIT),
            // No load balancer to wait for on a laptop, and the whole of dev stops within
            // 10 s: the simulator's 3, then the components' 5 at once.
            ("shutdown-delay", "0s"),
            ("shutdown-timeout", "5s"),
        ]))?,
        registry()?,
        components.clone(),
    )
    .await?;
    let aggregator = cardstream_aggregator::start(
        component_args(&argv(&[
            ("admin-listen", &next_port(args.admin_listen, 2).to_string()),
            ("kafka-brokers", &brokers),
            ("database-url", url),
            ("record-keys", &record_key),
            ("shutdown-timeout", "5s"),
        ]))?,
        registry()?,
        components.clone(),
    )
    .await?;
    let mut api_args: cardstream_api::ApiArgs = component_args(&argv(&[
        ("listen", &args.listen.to_string()),
        ("admin-listen", &args.admin_listen.to_string()),
        ("database-url", url),
        ("token-secret", &token_secret),
        ("shutdown-delay", "0s"),
        ("shutdown-timeout", "5s"),
    ]))?;
    // An explorer is for a laptop, not for the internet: on here, off by default elsewhere.
    api_args.graphiql = true;
    let api = cardstream_api::start_with(
        api_args,
        registry()?,
        components.clone(),
        cardstream_dashboard::router(),
        cardstream_dashboard::graphiql_page(),
    )
    .await?;

    let simulator = (args.rate > 0.0).then(|| {
        let mut sim =
            cardstream_simulator::SimulateArgs::new(format!("http://{}", gateway.addr), DEV_SECRET)
                .with_connect(accounts.clone(), DEV_CONNECT_SECRET);
        sim.rate = args.rate;
        sim.cards = args.cards;
        sim.seed = seed;
        sim.concurrency = 8;
        if !args.keep_data && !args.history.is_zero() {
            sim.history = Some(args.history);
            sim.history_purchases = args.history_purchases;
        }
        tokio::spawn(cardstream_simulator::run(sim, shutdown.clone()))
    });

    eprintln!(
        "\ncardstream dev is running (Ctrl-C stops everything)\n\
         \n  dashboard + GraphQL  http://{api}/  (POST /graphql, ws /graphql/ws, GraphiQL at /graphql)\
         \n  webhooks             http://{gw}/webhooks/stripe  (secret {DEV_SECRET}{own})\
         \n  authorizations       http://{gw}/webhooks/stripe/authorization\
         \n  metrics              http://{api_admin}/metrics (api), http://{gw_admin}/metrics (gateway), http://{agg_admin}/metrics (aggregator)\
         \n  broker               {brokers} (topic stripe.events, {partitions} partitions)\
         \n  database             {db}\
         \n  simulator            {rate} deliveries/s over {cards} cards (seed {seed}){history}\
         \n  connect              http://{gw}/webhooks/stripe  (Connect endpoint secret {DEV_CONNECT_SECRET}){connect}\
         \n\n  sign in as the admin      {admin_email} / {admin_password} (every account){account_admins}\
         \n  or as a cardholder        {demo_email} / {demo_password} ({holders} cardholder)\n",
        api = api.addr,
        gw = gateway.addr,
        own = match args.webhook_secrets.len() {
            0 => String::new(),
            n => format!(", and {n} of yours from CARDSTREAM_WEBHOOK_SECRETS"),
        },
        api_admin = api.admin_addr,
        gw_admin = gateway.admin_addr,
        agg_admin = aggregator.admin_addr,
        partitions = args.partitions,
        db = redact(url),
        rate = args.rate,
        cards = args.cards,
        history = if args.rate > 0.0 && !args.keep_data && !args.history.is_zero() {
            format!(
                ", after a history of {} purchases over the last {} days (loading now)",
                args.history_purchases,
                args.history.as_secs().div_ceil(86_400)
            )
        } else {
            String::new()
        },
        admin_email = DEMO_ADMIN.0,
        admin_password = DEMO_ADMIN.1,
        demo_email = DEMO_CARDHOLDER.0,
        demo_password = DEMO_CARDHOLDER.1,
        holders = demo_holders.join(", "),
        connect = if accounts.is_empty() {
            String::new()
        } else {
            format!(
                "\n                       cardholders spread over the platform and {}",
                accounts.join(", ")
            )
        },
        account_admins = accounts
            .iter()
            .map(|account| {
                let (email, password) = account_admin(account);
                format!("\n  or as {account}'s admin  {email} / {password} (that account only)")
            })
            .collect::<String>(),
    );

    // Ctrl-C, or a component that failed (each cancels the shared token as it ends).
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = components.cancelled() => shutdown.cancel(),
    }
    if let Some(simulator) = simulator {
        match tokio::time::timeout(Duration::from_secs(3), simulator).await {
            Ok(Ok(Ok(summary))) => eprint!("{summary}"),
            Ok(Ok(Err(err))) => tracing::warn!(error = %err, "the simulator failed"),
            Ok(Err(err)) => tracing::warn!(error = %err, "the simulator task failed"),
            Err(_) => tracing::warn!("the simulator did not stop within 3 s"),
        }
    }
    components.cancel();
    let (gateway, aggregator, api) = tokio::join!(gateway.wait(), aggregator.wait(), api.wait());
    gateway.context("the gateway failed")?;
    aggregator.context("the aggregator failed")?;
    api.context("the API failed")?;
    eprintln!("stopped cleanly");
    Ok(())
}

/// The policy above in the form the API stores it (the gateway's `Policy` as JSON).
fn dev_policy() -> serde_json::Value {
    let amounts = |pairs: &str| -> serde_json::Map<String, serde_json::Value> {
        pairs
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .filter_map(|(currency, amount)| {
                Some((currency.to_owned(), amount.parse::<i64>().ok()?.into()))
            })
            .collect()
    };
    serde_json::json!({
        "blocked_categories": BLOCKED_CATEGORIES.split(',').collect::<Vec<_>>(),
        "max_amount": amounts(MAX_AMOUNT),
        "daily_limit": amounts(DAILY_LIMIT),
    })
}

/// The simulated cardholder with the most cards, so the demo user has a card switcher.
fn demo_cardholders(seed: u64, cards: usize) -> Vec<String> {
    let script = cardstream_simulator::Script::new(seed, cards, None, 1000);
    let world = script.world();
    let mut counts = vec![0usize; world.cardholders.len()];
    for card in &world.cards {
        counts[card.cardholder] += 1;
    }
    let busiest = (0..counts.len()).max_by_key(|i| (counts[*i], std::cmp::Reverse(*i)));
    busiest
        .map(|i| vec![world.cardholders[i].id.clone()])
        .unwrap_or_default()
}

async fn create_demo_users(store: &Store, holders: &[String]) -> anyhow::Result<()> {
    for ((email, password), role, links) in [
        (DEMO_ADMIN, Role::Admin, &[][..]),
        (DEMO_CARDHOLDER, Role::Cardholder, holders),
    ] {
        if let Some(user) = store.user_by_email(email).await? {
            // --keep-data with a new seed simulates new cardholders: show the new one too.
            store.link_cardholders(user.id, links).await?;
            continue;
        }
        let hash = cardstream_api::hash_password(password)
            .map_err(|e| anyhow::anyhow!("cannot hash a demo password: {e}"))?;
        store
            .create_user(email, &hash, role, links, DEV_ACTOR)
            .await?;
    }
    Ok(())
}

/// Who `cardstream dev` is in the audit log, for the demo users it makes.
const DEV_ACTOR: &str = "cli:cardstream dev";

/// An admin limited to each connected account (kept as they are with --keep-data).
async fn create_account_admins(store: &Store, accounts: &[String]) -> anyhow::Result<()> {
    for account in accounts {
        let (email, password) = account_admin(account);
        let user = match store.user_by_email(&email).await? {
            Some(user) => user,
            None => {
                let hash = cardstream_api::hash_password(&password)
                    .map_err(|e| anyhow::anyhow!("cannot hash a demo password: {e}"))?;
                store
                    .create_user(&email, &hash, Role::Admin, &[], DEV_ACTOR)
                    .await?
            }
        };
        store
            .set_user_accounts(user.id, std::slice::from_ref(account), DEV_ACTOR)
            .await?;
    }
    Ok(())
}

/// A token secret for this run only: tokens do not outlive the process, which is right here.
fn random_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The URL without its password, for printing.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dev_accounts_are_stripe_account_ids() {
        let accounts = dev_accounts(3);
        assert_eq!(accounts, ["acct_dev1", "acct_dev2", "acct_dev3"]);
        // As the gateway, the store and the CLI check them.
        assert!(accounts.iter().all(|a| cardstream_store::is_account_id(a)));
        assert!(dev_accounts(0).is_empty());
        let (email, password) = account_admin("acct_dev2");
        assert!(cardstream_store::parse_email(&email).is_some(), "{email}");
        assert!(password.len() >= 12, "{password}");
    }

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(
            redact("postgres://app:hunter2@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1/x"),
            "postgres://postgres@127.0.0.1/x"
        );
    }

    #[test]
    fn the_saved_policy_is_the_gateways_policy() {
        // Read back as the gateway and the API read the saved row.
        let policy = cardstream_policy::StoredPolicy::parse(1, &dev_policy(), None)
            .unwrap()
            .policy;
        // Every pair in the constants made it through (a typo would drop one).
        assert_eq!(policy.blocked_categories.len(), 1);
        assert_eq!(policy.max_amount.len(), MAX_AMOUNT.split(',').count());
        assert_eq!(policy.daily_limit.len(), DAILY_LIMIT.split(',').count());
        assert_eq!(policy.daily_limit.values().copied().max(), Some(400_000));
    }

    /// The card ids of `holder` in the world `demo_cardholders(seed, cards)` chose from.
    fn cards_of(seed: u64, cards: usize, holder: &str) -> Vec<String> {
        let script = cardstream_simulator::Script::new(seed, cards, None, 1000);
        let world = script.world();
        world
            .cards
            .iter()
            .filter(|card| world.cardholders[card.cardholder].id == holder)
            .map(|card| card.id.clone())
            .collect()
    }

    #[test]
    fn the_demo_cardholder_has_cards() {
        // The default 40 cards go to 28 simulated cardholders: most have one, the demo
        // cardholder is one of the few with four, so the dashboard's card switcher shows.
        let holders = demo_cardholders(7, 40);
        assert_eq!(holders, ["ich_1WQSN668SA7Foqxngr1ZHeuL"]);
        assert_eq!(
            cards_of(7, 40, &holders[0]),
            [
                "ic_1FUI36EqcWyQKuMEhtRlTgvS",
                "ic_1Zf1ZkfJZwNZtXjn1L1eQztK",
                "ic_1Bb1jHlmI26kIh072nKMrgy9",
                "ic_15RcAw3fAoE0uLoNh9m3ruPQ"
            ]
        );
        // Seed 42 has two cardholders with four cards: the first of them, every time.
        let holders = demo_cardholders(42, 40);
        assert_eq!(holders, ["ich_1uWDAmIKUNEWJDODeOqIQSbq"]);
        assert_eq!(cards_of(42, 40, &holders[0]).len(), 4);

        // Whatever the seed (dev picks one from the clock), the demo cardholder has the most
        // cards of anyone, and at least two.
        for seed in 0..50 {
            let script = cardstream_simulator::Script::new(seed, 40, None, 1000);
            let world = script.world();
            let mut counts = vec![0usize; world.cardholders.len()];
            for card in &world.cards {
                counts[card.cardholder] += 1;
            }
            let most = counts.iter().copied().max().unwrap();
            let holders = demo_cardholders(seed, 40);
            assert_eq!(holders.len(), 1, "seed {seed}");
            let cards = cards_of(seed, 40, &holders[0]).len();
            assert!(
                cards == most && cards >= 2,
                "seed {seed}: {cards} of {most}"
            );
        }
    }

    const DEV_PASSWORD: &str = "dev-pa55word-3b8e";

    /// `{:?}` and `{:#?}` of `DevArgs` from `argv`, clap reading the environment.
    fn dev_debug(argv: &[&str]) -> [String; 2] {
        let args: DevArgs =
            component_args(&argv.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>()).unwrap();
        [format!("{args:?}"), format!("{args:#?}")]
    }

    #[test]
    fn the_database_password_does_not_show_in_debug() {
        let url = format!("postgres://dev:{DEV_PASSWORD}@127.0.0.1:5432/cardstream_dev");
        for debug in dev_debug(&["--database-url", &url, "--partitions", "7"]) {
            assert!(!debug.contains(DEV_PASSWORD), "{debug}");
            assert!(debug.contains("partitions: 7"), "{debug}");
        }
        // From the environment (CARDSTREAM_DEV_DATABASE_URL), in a child process: this one's
        // environment cannot be changed safely.
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "dev::tests::dev_settings_from_the_environment",
                "--nocapture",
            ])
            .env_clear()
            .env("CARDSTREAM_DEV_DATABASE_URL", url)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stderr.contains("checked DevArgs from the environment"),
            "{stderr}"
        );
    }

    /// The environment half of the test above; does nothing on its own.
    #[test]
    fn dev_settings_from_the_environment() {
        if std::env::var_os("CARDSTREAM_DEV_DATABASE_URL").is_none() {
            return;
        }
        for debug in dev_debug(&["--partitions", "7"]) {
            assert!(!debug.contains(DEV_PASSWORD), "{debug}");
            assert!(debug.contains("partitions: 7"), "{debug}");
        }
        eprintln!("checked DevArgs from the environment");
    }

    #[test]
    fn component_settings_parse_from_flags() {
        let args: cardstream_aggregator::AggregatorArgs = component_args(&argv(&[
            ("admin-listen", "127.0.0.1:1"),
            ("kafka-brokers", "127.0.0.1:2"),
            ("database-url", "postgres://x@y/z"),
        ]))
        .unwrap();
        assert_eq!(args.kafka.brokers, "127.0.0.1:2");
        assert_eq!(args.database.expose_url(), "postgres://x@y/z");
    }
}
