//! One-off database commands: migrate, replay, verify.

use std::time::Duration;

use anyhow::Context;
use cardstream_store::{DatabaseArgs, Store, Timeouts};

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

pub(crate) async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    if args.create_database
        && cardstream_store::create_database_if_missing(args.database.expose_url()).await?
    {
        eprintln!("created the database");
    }
    let store = maintenance(&args.database).await?;
    match args.action {
        MigrateAction::Up => store.migrate_up().await?,
        MigrateAction::Down => store.migrate_down(args.steps).await?,
        MigrateAction::Status => {}
    }
    for (name, applied) in store.migration_status().await? {
        eprintln!("{} {name}", if applied { "applied" } else { "pending" });
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
    let mut last = Duration::ZERO;
    let stats = store
        .replay(args.chunk, |p| {
            if p.elapsed - last >= Duration::from_secs(1) || p.done == p.total {
                last = p.elapsed;
                let rate = p.done as f64 / p.elapsed.as_secs_f64().max(1e-9);
                let percent = if p.total == 0 {
                    100.0
                } else {
                    p.done as f64 * 100.0 / p.total as f64
                };
                eprintln!(
                    "  {}/{} events ({percent:.0}%), {rate:.0} events/s",
                    p.done, p.total
                );
            }
        })
        .await
        .context("replay failed; the previous projections are untouched")?;
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
        "rows differing from a recomputation: daily {}, category {}, merchant {}",
        drift.daily, drift.category, drift.merchant
    );
    anyhow::ensure!(
        drift.is_clean(),
        "the rollups drifted from the base tables; `cardstream replay` rebuilds them"
    );
    Ok(())
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
        #[arg(long)]
        email: String,
        #[arg(long, value_enum, default_value = "cardholder")]
        role: RoleArg,
        /// A cardholder (`ich_…`) the user may see; repeat for several.
        #[arg(long = "cardholder")]
        cardholders: Vec<String>,
    },
    /// Lists users with their role and cardholders.
    List,
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
        } => {
            let password = match std::env::var("CARDSTREAM_USER_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    eprint!("password for {email}: ");
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            anyhow::ensure!(
                password.chars().count() >= 12,
                "the password needs at least 12 characters"
            );
            let hash = cardstream_api::hash_password(&password)
                .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
            let role = match role {
                RoleArg::Admin => cardstream_store::Role::Admin,
                RoleArg::Cardholder => cardstream_store::Role::Cardholder,
            };
            let user = store.create_user(&email, &hash, role, &cardholders).await?;
            eprintln!(
                "added user {} ({}) with id {}",
                user.email,
                user.role.as_str(),
                user.id
            );
        }
        UsersAction::List => {
            let users = store.users().await?;
            let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
            let links = store.cardholders_of(&ids).await?;
            for user in users {
                let holders: Vec<&str> = links
                    .iter()
                    .filter(|(id, _)| *id == user.id)
                    .map(|(_, h)| h.as_str())
                    .collect();
                eprintln!(
                    "{}\t{}\t{}\t{}",
                    user.id,
                    user.email,
                    user.role.as_str(),
                    holders.join(",")
                );
            }
        }
    }
    Ok(())
}
