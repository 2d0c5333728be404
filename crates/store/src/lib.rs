//! cardstream's Postgres layer.
//!
//! The write path (folding batches of events, replay) uses sqlx, sea-orm's own driver, through
//! the pool of the sea-orm connection: it sends each table's rows as typed arrays in one
//! `unnest` statement, which keeps a batch of thousands of events to a handful of round trips
//! and clear of Postgres' 65,535-parameter limit. Reads and migrations go through sea-orm.

mod accounts;
mod audit;
mod changes;
mod connect;
mod dead_letters;
pub mod entities;
mod event_log;
mod fold;
mod ingest;
mod invitations;
mod paging;
mod pipeline;
mod pipeline_health;
mod policy_store;
mod pool_metrics;
mod program;
mod program_rollups;
mod queries;
mod replay;
mod rollups;
mod rows;
mod sessions;
mod spend;
mod spend_queries;
mod sync_cursors;
mod tables;
mod verify;
mod version;
mod windows;

use std::time::Duration;

use clap::builder::TypedValueParser;
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;
use secrecy::{ExposeSecret, SecretString};

pub use accounts::{Role, User, parse_email};
pub use audit::{AuditEntry, AuditFilter};
pub use changes::Change;
pub use connect::{Accounts, ConnectedAccount, is_account_id};
pub use dead_letters::{DeadLetter, DeadLetterFilter, NewDeadLetter, RedriveRequest};
pub use event_log::{EventFilter, StoredEvent};
pub use fold::{DisputeFunds, FoldEvent, FoldOutcome, fold};
pub use ingest::{ActivityNotice, BatchOutcome, IncomingEvent, Position, Unreadable};
pub use invitations::{Invitation, InvitationKind, InvitationState};
pub use paging::{Direction, Page};
pub use pipeline::{
    ComponentState, FRESHNESS_LABELS, Reporter, Tally, freshness_bucket, freshness_quantile,
};
pub use pipeline_health::{ComponentReport, MinuteCount, PipelineSnapshot};
pub use policy_store::PolicyRow;
pub use pool_metrics::PoolMetrics;
pub use program::{DayRange, ProgramKey, ProgramKeyed, ProgramOutcome, ProgramSpend};
pub use queries::{
    ActivityFilter, ActivityStatus, Cursor, KeyedSpend, SeriesBucket, SpendKey, SpendPoint,
    SpendTotals,
};
pub use replay::{ReplayProgress, ReplayStats};
pub use sessions::{EndReason, OpenSession, SESSIONS_CHANNEL, SessionNotice};
pub use spend::{CardSpend, LedgerBatch, LedgerConnection, SpendGrant, SpendRequest};
pub use spend_queries::CardCurrency;
pub use sync_cursors::{SyncCursor, SyncJob, SyncLock};
pub use tables::object_table_columns;
pub use verify::{CONTENT_QUERIES, RollupDrift};
pub use version::Version;

/// Where the database is. Its `Debug` does not show the URL, which may hold a password.
#[derive(clap::Args, Debug, Clone)]
pub struct DatabaseArgs {
    /// Postgres URL, e.g. `postgres://user@host:5432/cardstream`. Set through the environment:
    /// it may hold a password.
    #[arg(
        long = "database-url",
        env = "CARDSTREAM_DATABASE_URL",
        hide_env_values = true,
        value_parser = clap::builder::StringValueParser::new().map(SecretString::from)
    )]
    url: SecretString,

    #[command(flatten)]
    pub timeouts: Timeouts,
}

/// Bounds on every wait inside Postgres, set on each connection of a pool: no statement, lock
/// wait or forgotten transaction can hold a component (or the rows it locked) indefinitely.
/// A statement that hits one fails with a transient error and is retried.
#[derive(clap::Args, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Longest a single SQL statement may run (Postgres `statement_timeout`); 0 disables.
    #[arg(
        long = "database-statement-timeout",
        env = "CARDSTREAM_DATABASE_STATEMENT_TIMEOUT",
        default_value = "30s",
        value_parser = humantime::parse_duration
    )]
    pub statement: Duration,

    /// Longest a statement waits for a lock (Postgres `lock_timeout`); 0 disables.
    #[arg(
        long = "database-lock-timeout",
        env = "CARDSTREAM_DATABASE_LOCK_TIMEOUT",
        default_value = "10s",
        value_parser = humantime::parse_duration
    )]
    pub lock: Duration,

    /// Longest a transaction may sit idle between statements before Postgres ends it
    /// (`idle_in_transaction_session_timeout`); 0 disables.
    #[arg(
        long = "database-idle-in-transaction-timeout",
        env = "CARDSTREAM_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT",
        default_value = "60s",
        value_parser = humantime::parse_duration
    )]
    pub idle_in_transaction: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            statement: Duration::from_secs(30),
            lock: Duration::from_secs(10),
            idle_in_transaction: Duration::from_secs(60),
        }
    }
}

impl Timeouts {
    /// Sets the non-zero timeouts as startup parameters (0 is Postgres' own default: none;
    /// leaving it out keeps poolers that refuse startup options working when all are 0).
    fn apply(self, options: sqlx::postgres::PgConnectOptions) -> sqlx::postgres::PgConnectOptions {
        let settings: Vec<(&str, String)> = [
            ("statement_timeout", self.statement),
            ("lock_timeout", self.lock),
            (
                "idle_in_transaction_session_timeout",
                self.idle_in_transaction,
            ),
        ]
        .into_iter()
        .filter(|(_, d)| !d.is_zero())
        // At least 1 ms: a shorter one would round to 0, which means none.
        .map(|(name, d)| (name, d.as_millis().max(1).to_string()))
        .collect();
        if settings.is_empty() {
            return options;
        }
        options.options(settings)
    }
}

impl DatabaseArgs {
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseArgs {
            url: SecretString::from(url.into()),
            timeouts: Timeouts::default(),
        }
    }

    /// The URL, password included: to connect with, never to log.
    pub fn expose_url(&self) -> &str {
        self.url.expose_secret()
    }
}

/// The channel the aggregator NOTIFYs with an [`ActivityNotice`] after each committed batch.
pub const ACTIVITY_CHANNEL: &str = "cardstream_activity";

/// Advisory lock taken shared by every batch and exclusively by a replay, so a rebuild never
/// interleaves with live writes.
pub(crate) const REBUILD_LOCK: i64 = 0x6361_7264_7374_726d;

/// The advisory lock key `cardstream migrate` holds ("cs_migrt" as bytes): arbitrary, fixed,
/// and unlikely to be another application's in a shared database.
const MIGRATION_LOCK: i64 = 0x6373_5f6d_6967_7274;

/// Held while migrating; see [`Store::migrate_up`].
struct MigrationLock(sqlx::PgConnection);

impl MigrationLock {
    async fn release(mut self) {
        // Closing ends the session, which releases the lock even if the unlock fails.
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut self.0)
            .await;
        let _ = sqlx::Connection::close(self.0).await;
    }
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to Postgres: {0}")]
    Connect(#[source] sea_orm::DbErr),
    /// The database URL is unusable; the message never holds the URL (it may hold a password).
    #[error("the database URL is not usable: {0}")]
    BadUrl(String),
    #[error("Postgres failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[source] sea_orm::DbErr),
    #[error("stored event {event_id} cannot be read back: {message}")]
    StoredEvent { event_id: String, message: String },
    #[error("the projections disagree with what was just decided: {0}")]
    Inconsistent(String),
    #[error("Postgres failed: {0}")]
    Orm(#[source] sea_orm::DbErr),
    #[error("{0}")]
    Conflict(String),
    #[error("no such {0}")]
    NotFound(&'static str),
    /// An argument the store refuses before any query (the message says which and why).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// Postgres could not be reached: refused, timed out, TLS failed, or a connection
    /// exception (SQLSTATE class 08). Not a wrong password or a bad URL, which waiting does not
    /// fix.
    pub fn is_unreachable(&self) -> bool {
        let cause = match self {
            Error::Connect(db) | Error::Orm(db) | Error::Migration(db) => sqlx_cause(db),
            Error::Database(e) => Some(e),
            _ => None,
        };
        match cause {
            Some(sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_)) => true,
            Some(sqlx::Error::Database(db)) => db.code().is_some_and(|c| c.starts_with("08")),
            _ => false,
        }
    }

    /// Which of the [`Timeouts`] ended the statement, if one did.
    pub fn timeout(&self) -> Option<&'static str> {
        let Error::Database(sqlx::Error::Database(db)) = self else {
            return None;
        };
        match db.code().as_deref() {
            Some("57014") => Some("statement_timeout"),
            Some("55P03") => Some("lock_timeout"),
            Some("25P03") => Some("idle_in_transaction_timeout"),
            _ => None,
        }
    }

    /// Whether retrying later may succeed (Postgres down or restarting, a connection lost),
    /// as opposed to a problem that will recur.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect(_) => true,
            Error::Orm(sea_orm::DbErr::ConnectionAcquire(_) | sea_orm::DbErr::Conn(_)) => true,
            Error::Database(err) => match err {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_) => true,
                sqlx::Error::Database(db) => {
                    // Class 08 (connection), 53 (resources), 57 (operator intervention, e.g. a
                    // shutdown, a terminated connection, a statement timeout), 40
                    // (serialization, deadlock), 55P03 (a lock timeout) and 25P03 (a transaction
                    // ended for idling).
                    db.code().is_some_and(|c| {
                        ["55P03", "25P03"].contains(&c.as_ref())
                            || ["08", "53", "57", "40"].iter().any(|p| c.starts_with(p))
                    })
                }
                _ => false,
            },
            _ => false,
        }
    }
}

/// A connection to the `postgres` database of the server in `url`, and the name of `url`'s own
/// database quoted as an identifier (identifiers cannot be bound as parameters).
async fn server_connection(url: &str) -> Result<(sqlx::PgConnection, String, String), Error> {
    use sqlx::Connection;
    let options: sqlx::postgres::PgConnectOptions = url.parse()?;
    let name = options.get_database().unwrap_or("postgres").to_owned();
    let conn = sqlx::PgConnection::connect_with(&options.database("postgres")).await?;
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    Ok((conn, name, quoted))
}

/// Creates the database named in `url` if it does not exist yet, connecting to the same
/// server's `postgres` database to do so. Returns whether it was created.
pub async fn create_database_if_missing(url: &str) -> Result<bool, Error> {
    let (mut conn, name, quoted) = server_connection(url).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut conn)
            .await?;
    if exists {
        return Ok(false);
    }
    sqlx::query(&format!("CREATE DATABASE {quoted}"))
        .execute(&mut conn)
        .await?;
    Ok(true)
}

/// Drops the database named in `url` (closing its sessions) and creates it empty: a fresh
/// start for `cardstream dev`, whose broker forgets everything on exit.
pub async fn recreate_database(url: &str) -> Result<(), Error> {
    let (mut conn, _, quoted) = server_connection(url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {quoted}"))
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// A connection pool to cardstream's database.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// Statements run through sea-orm (the API's reads), for the N+1 tests and metrics.
    statements: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Store {
    /// Connects with a pool of up to `max_connections`. Acquiring a connection gives up after
    /// a few seconds, so an unavailable database surfaces as an error instead of a hang.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, Error> {
        Self::open(url, max_connections, false, Timeouts::default()).await
    }

    /// [`Store::connect`] with these timeouts.
    pub async fn connect_with(
        url: &str,
        max_connections: u32,
        timeouts: Timeouts,
    ) -> Result<Store, Error> {
        Self::open(url, max_connections, false, timeouts).await
    }

    /// Like [`Store::connect`], but connects on first use: for components that must start and
    /// keep running while Postgres is away (the gateway's spend view).
    pub async fn connect_lazy(
        url: &str,
        max_connections: u32,
        timeouts: Timeouts,
    ) -> Result<Store, Error> {
        Self::open(url, max_connections, true, timeouts).await
    }

    async fn open(
        url: &str,
        max_connections: u32,
        lazy: bool,
        timeouts: Timeouts,
    ) -> Result<Store, Error> {
        let mut options = ConnectOptions::new(url.to_owned());
        options.connect_lazy(lazy);
        options.map_sqlx_postgres_opts(move |pg| timeouts.apply(pg));
        options
            .max_connections(max_connections)
            .min_connections(0)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(5))
            .sqlx_logging(false);
        let mut db = Database::connect(options)
            .await
            .map_err(|e| connect_error(e, url))?;
        let statements = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = statements.clone();
        db.set_metric_callback(move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
        Ok(Store { db, statements })
    }

    /// Counts statements sent through the sqlx pool directly (sea-orm's are counted by its
    /// metric callback), so `statements` covers every read and write of the API.
    pub(crate) fn tally(&self, statements: u64) {
        self.statements
            .fetch_add(statements, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many statements the API's paths sent since connecting.
    pub fn statements(&self) -> u64 {
        self.statements.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The sea-orm connection, for queries through entities.
    pub fn orm(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Exports this pool's connections (in use, idle, ceiling) in `registry`.
    pub fn register_pool_metrics(
        &self,
        max_connections: u32,
        registry: &prometheus::Registry,
    ) -> Result<(), prometheus::Error> {
        PoolMetrics::register(self.pool().clone(), max_connections, registry)
    }

    /// The underlying sqlx pool, for the bulk write path.
    pub fn pool(&self) -> &sqlx::PgPool {
        self.db.get_postgres_connection_pool()
    }

    /// Checks that Postgres answers.
    pub async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1").execute(self.pool()).await?;
        Ok(())
    }

    /// Applies pending migrations.
    pub async fn migrate_up(&self) -> Result<(), Error> {
        let lock = self.migration_lock().await?;
        let result = cardstream_migrations::Migrator::up(&self.db, None).await;
        lock.release().await;
        result.map_err(Error::Migration)
    }

    /// Applies the next pending migration, if any.
    pub async fn migrate_up_one(&self) -> Result<(), Error> {
        let lock = self.migration_lock().await?;
        let result = cardstream_migrations::Migrator::up(&self.db, Some(1)).await;
        lock.release().await;
        result.map_err(Error::Migration)
    }

    /// Reverts `steps` migrations (all when `None`).
    pub async fn migrate_down(&self, steps: Option<u32>) -> Result<(), Error> {
        let lock = self.migration_lock().await?;
        let result = cardstream_migrations::Migrator::down(&self.db, steps).await;
        lock.release().await;
        result.map_err(Error::Migration)
    }

    /// Waits until no other process migrates this database, then holds it until released.
    /// The migrator reads what is applied and applies what is not without a lock of its own,
    /// so two `cardstream migrate` at once (two Jobs while the operator rolls, a Job and a
    /// hand-run one) could both apply the same migration.
    async fn migration_lock(&self) -> Result<MigrationLock, Error> {
        // A connection of its own, out of the pool: an advisory lock is the session's, and a
        // connection dropped on an error path closes, which ends the session and the lock,
        // instead of going back to the pool still holding it.
        let mut connection = self.pool().acquire().await?.detach();
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut connection)
            .await?;
        Ok(MigrationLock(connection))
    }

    /// Names of applied and pending migrations.
    pub async fn migration_status(&self) -> Result<Vec<(String, bool)>, Error> {
        let applied: std::collections::HashSet<String> =
            cardstream_migrations::Migrator::get_applied_migrations(&self.db)
                .await
                .map_err(Error::Migration)?
                .iter()
                .map(|m| m.name().to_owned())
                .collect();
        Ok(cardstream_migrations::Migrator::migrations()
            .iter()
            .map(|m| (m.name().to_owned(), applied.contains(m.name())))
            .collect())
    }
}

/// Whether `cause`, one link of an error's chain, says Postgres could not be reached (see
/// [`Error::is_unreachable`]); a component's error that wraps a store error transparently
/// shows its sqlx cause in the chain instead.
pub fn is_unreachable(cause: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(error) = cause.downcast_ref::<Error>() {
        return error.is_unreachable();
    }
    match cause.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_)) => true,
        Some(sqlx::Error::Database(db)) => db.code().is_some_and(|c| c.starts_with("08")),
        _ => false,
    }
}

fn sqlx_cause(db: &sea_orm::DbErr) -> Option<&sqlx::Error> {
    use sea_orm::{DbErr, RuntimeErr};
    match db {
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => Some(e),
        _ => None,
    }
}

/// A failed connect, with the URL (and its password) kept out of the message: sea-orm quotes a
/// URL it cannot parse whole, and that message reaches logs and terminals.
fn connect_error(err: sea_orm::DbErr, url: &str) -> Error {
    let text = err.to_string();
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.rsplit_once('@'))
        .and_then(|(credentials, _)| credentials.split_once(':'))
        .map(|(_, password)| password)
        .filter(|p| !p.is_empty());
    let leaks = text.contains(url) || password.is_some_and(|p| text.contains(p));
    let configuration = matches!(sqlx_cause(&err), Some(sqlx::Error::Configuration(_)));
    if leaks
        || configuration
        || matches!(err, sea_orm::DbErr::Conn(sea_orm::RuntimeErr::Internal(_)))
    {
        let mut safe = text.replace(url, "<the database URL>");
        if let Some(password) = password {
            safe = safe.replace(password, "***");
        }
        Error::BadUrl(safe)
    } else {
        Error::Connect(err)
    }
}
