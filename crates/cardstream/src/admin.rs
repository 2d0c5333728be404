//! One-off database commands: migrate, replay, verify.

use std::time::Duration;

use anyhow::Context;
use cardstream_store::{DatabaseArgs, Store};

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

pub(crate) async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    if args.create_database
        && cardstream_store::create_database_if_missing(&args.database.url).await?
    {
        eprintln!("created the database");
    }
    let store = Store::connect(&args.database.url, 1).await?;
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
    let store = Store::connect(&args.database.url, 1).await?;
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
    let store = Store::connect(&args.database.url, 1).await?;
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
