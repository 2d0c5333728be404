//! One-off database commands: migrate, replay, verify, users. Data goes to stdout (as text or,
//! with `--output json`, JSON); messages and progress go to stderr.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Context;
use cardstream_store::{DatabaseArgs, Store, Timeouts};
use cardstream_telemetry::Progress;

/// How a listing is printed on stdout.
#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
pub(crate) enum Output {
    /// For people: a listing as tab-separated columns, one row per line; a run's report as
    /// lines of text.
    #[default]
    Text,
    /// For programs: a listing as one JSON array; a run's report as one JSON object.
    Json,
}

pub(crate) fn print_json(value: &serde_json::Value) {
    #[allow(clippy::print_stdout)]
    {
        println!("{value}");
    }
}

pub(crate) fn print_row(columns: &[&str]) {
    #[allow(clippy::print_stdout)]
    {
        println!("{}", columns.join("\t"));
    }
}

/// `verify` found drift: its own exit status (4), so a cron job can tell it from a failure.
#[derive(Debug)]
pub(crate) struct Drift;

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the rollups drifted from the base tables; `cardstream replay` rebuilds them")
    }
}

impl std::error::Error for Drift {}

/// `cardstream migrate`.
#[derive(Debug, clap::Args)]
pub(crate) struct MigrateArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// What to do.
    #[arg(value_enum, default_value = "up")]
    action: MigrateAction,
    /// With `down`: how many migrations to revert (all when omitted).
    #[arg(long)]
    steps: Option<u32>,
    /// Create the database first if it does not exist.
    #[arg(long)]
    create_database: bool,
    /// Keep trying to reach the database this long (e.g. `60s`) before giving up: for a first
    /// start where Postgres comes up beside it.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    wait_for_database: Duration,
    /// How the list of migrations is printed on stdout.
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Revert migrations, newest first.
    Down,
    /// List migrations and whether each is applied.
    Status,
}

/// A connection for migrations, replays and checks: they rewrite or scan whole tables, so
/// their statements have no time limit; the lock and idle-transaction timeouts still hold.
async fn maintenance(database: &DatabaseArgs) -> anyhow::Result<Store> {
    let timeouts = Timeouts {
        statement: Duration::ZERO,
        ..database.timeouts
    };
    Ok(Store::connect_with(database.expose_url(), 1, timeouts).await?)
}

/// Connects (creating the database first when asked), retrying while Postgres cannot be
/// reached until `wait` has passed. A wrong password or URL fails at once.
async fn maintenance_waiting(
    database: &DatabaseArgs,
    create: bool,
    wait: Duration,
) -> anyhow::Result<Store> {
    let deadline = Instant::now() + wait;
    loop {
        let attempt = async {
            if create && cardstream_store::create_database_if_missing(database.expose_url()).await?
            {
                eprintln!("created the database");
            }
            maintenance(database).await
        };
        match attempt.await {
            Ok(store) => return Ok(store),
            Err(error)
                if Instant::now() < deadline
                    && error.chain().any(cardstream_store::is_unreachable) =>
            {
                eprintln!("the database does not answer yet ({error:#}); retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

pub(crate) async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let store =
        maintenance_waiting(&args.database, args.create_database, args.wait_for_database).await?;
    match args.action {
        MigrateAction::Up => {
            // One at a time, so that a long one shows where it is.
            let pending = store
                .migration_status()
                .await?
                .into_iter()
                .filter(|(_, applied)| !applied)
                .count();
            let mut progress = Progress::new("migrate", "migrations", Some(pending as u64));
            for done in 1..=pending {
                store.migrate_up_one().await?;
                progress.set(done as u64, "");
            }
            progress.finish(&format!("{pending} applied"));
        }
        MigrateAction::Down => store.migrate_down(args.steps).await?,
        MigrateAction::Status => {}
    }
    let status = store.migration_status().await?;
    match args.output {
        Output::Text => {
            for (name, applied) in &status {
                print_row(&[if *applied { "applied" } else { "pending" }, name]);
            }
        }
        Output::Json => print_json(&serde_json::Value::Array(
            status
                .iter()
                .map(|(name, applied)| serde_json::json!({"name": name, "applied": applied}))
                .collect(),
        )),
    }
    Ok(())
}

/// `cardstream replay`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReplayArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Events folded per step (and per progress line).
    #[arg(long, default_value_t = 5000)]
    chunk: usize,
}

pub(crate) async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let store = maintenance(&args.database).await?;
    eprintln!("replaying the stored events into empty projections (live batches wait meanwhile)…");
    let mut progress: Option<Progress> = None;
    let stats = store
        .replay(args.chunk, |p| {
            progress
                .get_or_insert_with(|| Progress::new("replay", "events", Some(p.total)))
                .set(p.done, "");
        })
        .await
        .context("replay failed; the previous projections are untouched")?;
    if let Some(progress) = &mut progress {
        progress.finish("");
    }
    eprintln!(
        "replayed {} events into {} rows in {:.1} s",
        stats.events,
        stats.rows_written,
        stats.elapsed.as_secs_f64()
    );
    Ok(())
}

/// `cardstream verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    database: DatabaseArgs,
}

pub(crate) async fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let store = maintenance(&args.database).await?;
    let drift = store.rollup_drift().await?;
    eprintln!(
        "rows differing from a recomputation: daily {}, category {}, merchant {}, program {}",
        drift.daily, drift.category, drift.merchant, drift.program
    );
    if drift.is_clean() {
        Ok(())
    } else {
        Err(Drift.into())
    }
}

/// `cardstream users`.
#[derive(Debug, clap::Args)]
pub(crate) struct UsersArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(subcommand)]
    action: UsersAction,
}

#[derive(Debug, clap::Subcommand)]
enum UsersAction {
    /// Adds a dashboard user. The password is read from CARDSTREAM_USER_PASSWORD, or from the
    /// first line of standard input, never from a flag.
    Add {
        #[arg(long, value_parser = email_arg)]
        email: String,
        #[arg(long, value_enum, default_value = "cardholder")]
        role: RoleArg,
        /// A cardholder (`ich_…`) the user may see; repeat for several.
        #[arg(long = "cardholder")]
        cardholders: Vec<String>,
        /// A Stripe Connect account (`acct_…`) the user is limited to; repeat for several.
        /// Without any, the user sees every account (an admin then is a platform admin).
        #[arg(long = "account", value_parser = account_arg)]
        accounts: Vec<String>,
    },
    /// Lists users with their role and cardholders (id, email, role, cardholders).
    List {
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Creates the first admin if there is none, with a generated password printed once on
    /// stdout (or CARDSTREAM_USER_PASSWORD's); does nothing when an admin exists. For a first
    /// start (Compose runs it after `migrate`).
    InitAdmin {
        #[arg(long, env = "CARDSTREAM_ADMIN_EMAIL", value_parser = email_arg)]
        email: String,
    },
}

/// `--email`, checked as the API checks it: a bad address is a usage error (exit 2), before
/// anything is read or written.
fn email_arg(email: &str) -> Result<String, String> {
    cardstream_store::parse_email(email)
        .map(str::to_owned)
        .ok_or_else(|| "not an email address (one @ with text on each side, no spaces)".into())
}

/// `--account`, checked as the API checks it.
fn account_arg(account: &str) -> Result<String, String> {
    if cardstream_store::is_account_id(account) {
        Ok(account.to_owned())
    } else {
        Err("not a Stripe account id (acct_ and letters and digits)".into())
    }
}

/// The new user's password: CARDSTREAM_USER_PASSWORD, else typed at a terminal without echo,
/// else the first line of standard input.
fn read_password(email: &str) -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("CARDSTREAM_USER_PASSWORD") {
        return Ok(password);
    }
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(format!("password for {email}: "))
            .context("cannot read the password from the terminal");
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// 24 characters from 62, about 143 bits.
fn generated_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..24)
        .map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]))
        .collect()
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RoleArg {
    Admin,
    Cardholder,
}

pub(crate) async fn users(args: UsersArgs) -> anyhow::Result<()> {
    let store = Store::connect_with(args.database.expose_url(), 1, args.database.timeouts).await?;
    match args.action {
        UsersAction::Add {
            email,
            role,
            cardholders,
            accounts,
        } => {
            let password = read_password(&email)?;
            let role = match role {
                RoleArg::Admin => cardstream_store::Role::Admin,
                RoleArg::Cardholder => cardstream_store::Role::Cardholder,
            };
            let user = add_user(&store, &email, &password, role, &cardholders).await?;
            if !accounts.is_empty() {
                store
                    .set_user_accounts(user.id, &accounts, &cli_actor())
                    .await?;
            }
            eprintln!(
                "added user {} ({}) with id {}{}",
                user.email,
                user.role.as_str(),
                user.id,
                if accounts.is_empty() {
                    String::new()
                } else {
                    format!(", limited to {}", accounts.join(", "))
                }
            );
        }
        UsersAction::List { output } => list_users(&store, output).await?,
        UsersAction::InitAdmin { email } => {
            let admins = store.users().await?;
            if let Some(admin) = admins
                .iter()
                .find(|u| u.role == cardstream_store::Role::Admin)
            {
                eprintln!("an admin exists ({}); nothing to do", admin.email);
                return Ok(());
            }
            let (password, generated) = match std::env::var("CARDSTREAM_USER_PASSWORD") {
                Ok(password) => (password, false),
                Err(_) => (generated_password(), true),
            };
            let user = add_user(
                &store,
                &email,
                &password,
                cardstream_store::Role::Admin,
                &[],
            )
            .await?;
            eprintln!("created the admin {} (id {})", user.email, user.id);
            if generated {
                eprintln!("its password, shown this once (sign in and change it):");
                print_row(&[&password]);
            }
        }
    }
    Ok(())
}

async fn add_user(
    store: &Store,
    email: &str,
    password: &str,
    role: cardstream_store::Role,
    cardholders: &[String],
) -> anyhow::Result<cardstream_store::User> {
    anyhow::ensure!(
        password.chars().count() >= 12,
        "the password needs at least 12 characters"
    );
    let hash = cardstream_api::hash_password(password)
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
    Ok(store
        .create_user(email, &hash, role, cardholders, &cli_actor())
        .await?)
}

/// Who a command run on a shell is in the audit log: `cli:` and the operating system's user.
pub(crate) fn cli_actor() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME"));
    format!("cli:{}", user.as_deref().unwrap_or("unknown"))
}

async fn list_users(store: &Store, output: Output) -> anyhow::Result<()> {
    let users = store.users().await?;
    let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
    let links = store.cardholders_of(&ids).await?;
    let accounts = store.accounts_of(&ids).await?;
    let accounts_of = |id: i64| -> Vec<&str> {
        accounts
            .iter()
            .filter(|(user, _)| *user == id)
            .map(|(_, a)| a.as_str())
            .collect()
    };
    let holders_of = |id: i64| -> Vec<&str> {
        links
            .iter()
            .filter(|(user, _)| *user == id)
            .map(|(_, h)| h.as_str())
            .collect()
    };
    match output {
        Output::Text => {
            for user in &users {
                print_row(&[
                    &user.id.to_string(),
                    &user.email,
                    user.role.as_str(),
                    &holders_of(user.id).join(","),
                ]);
            }
        }
        Output::Json => print_json(&serde_json::Value::Array(
            users
                .iter()
                .map(|u| {
                    serde_json::json!({"id": u.id, "email": u.email, "role": u.role.as_str(),
                        "disabled": u.disabled, "cardholders": holders_of(u.id),
                        "accounts": accounts_of(u.id)})
                })
                .collect(),
        )),
    }
    Ok(())
}
