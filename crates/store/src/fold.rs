//! Folding events into the object tables and rollups.
//!
//! For each kind of object: keep the newest version per object among the events, lock the
//! current rows (`FOR UPDATE`), keep the incoming versions that are newer, write them with one
//! multi-row upsert, and turn each replacement into rollup deltas (the old row's contribution
//! out, the new one's in). The result does not depend on the order or repetition of events,
//! which is what makes duplicates, reordering and replay safe.

use std::collections::HashMap;
use std::sync::LazyLock;

use cardstream_stripe::Object;
use sqlx::PgConnection;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;

use crate::Error;
use crate::rollups::RollupDeltas;
use crate::rows::{
    AuthorizationContribution, AuthorizationRow, CardRow, CardholderRow, DisputeRow,
    TransactionContribution, TransactionRow, Versioned, day_of, merchant_key,
};
use crate::version::Version;

/// One event to fold: its version and its typed object.
#[derive(Debug, Clone)]
pub struct FoldEvent {
    pub version: Version,
    pub object: Object,
}

/// What folding changed.
#[derive(Debug, Default)]
pub struct FoldOutcome {
    /// Object rows inserted or replaced.
    pub rows_written: usize,
    /// Events whose version was older than the stored row (late deliveries).
    pub superseded: usize,
    pub(crate) deltas: RollupDeltas,
}

impl FoldOutcome {
    /// Cards whose activity or rollups changed.
    pub fn cards(&self) -> impl Iterator<Item = &str> {
        self.deltas.cards.iter().map(String::as_str)
    }
}

/// The newest version of each object among `items`.
fn newest<R>(
    items: impl IntoIterator<Item = (String, Versioned<R>)>,
) -> HashMap<String, Versioned<R>> {
    let mut out: HashMap<String, Versioned<R>> = HashMap::new();
    for (id, item) in items {
        match out.get(&id) {
            Some(current) if current.version >= item.version => {}
            _ => {
                out.insert(id, item);
            }
        }
    }
    out
}

/// Folds `events` into the tables, on a connection inside a transaction.
pub async fn fold(conn: &mut PgConnection, events: &[FoldEvent]) -> Result<FoldOutcome, Error> {
    let mut holders = Vec::new();
    let mut cards = Vec::new();
    let mut auths = Vec::new();
    let mut txns = Vec::new();
    let mut disputes = Vec::new();
    for event in events {
        let version = event.version.clone();
        match &event.object {
            Object::Cardholder(h) => holders.push((
                h.id.clone(),
                Versioned {
                    version,
                    row: CardholderRow::from(&**h),
                },
            )),
            Object::Card(c) => cards.push((
                c.id.clone(),
                Versioned {
                    version,
                    row: CardRow::from(&**c),
                },
            )),
            Object::Authorization(a) => auths.push((
                a.id.clone(),
                Versioned {
                    version,
                    row: AuthorizationRow::from(&**a),
                },
            )),
            Object::Transaction(t) => txns.push((
                t.id.clone(),
                Versioned {
                    version,
                    row: TransactionRow::from(&**t),
                },
            )),
            Object::Dispute(d) => disputes.push((
                d.id.clone(),
                Versioned {
                    version,
                    row: DisputeRow::from(&**d),
                },
            )),
            Object::Other(_) => {}
        }
    }
    let mut outcome = FoldOutcome::default();
    fold_plain(conn, &CARDHOLDERS, newest(holders), &mut outcome).await?;
    fold_plain(conn, &CARDS, newest(cards), &mut outcome).await?;
    fold_plain(conn, &DISPUTES, newest(disputes), &mut outcome).await?;
    fold_authorizations(conn, newest(auths), &mut outcome).await?;
    fold_transactions(conn, newest(txns), &mut outcome).await?;
    Ok(outcome)
}

/// An object table: its columns as `(name, array type, select expression)`, `id` first and the
/// three version columns last.
struct Table {
    name: &'static str,
    upsert: String,
}

impl Table {
    fn new(name: &'static str, columns: &[(&str, &str, &str)]) -> Self {
        let names: Vec<&str> = columns.iter().map(|c| c.0).collect();
        let selects: Vec<String> = columns
            .iter()
            .map(|(n, _, cast)| {
                if cast.is_empty() {
                    (*n).to_owned()
                } else {
                    format!("{n}{cast}")
                }
            })
            .collect();
        let arrays: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, (_, ty, _))| format!("${}::{ty}[]", i + 1))
            .collect();
        let sets: Vec<String> = names
            .iter()
            .skip(1)
            .map(|n| format!("{n} = excluded.{n}"))
            .collect();
        let upsert = format!(
            "INSERT INTO {name} AS t ({cols}) SELECT {selects} FROM unnest({arrays}) AS u({cols})
             ON CONFLICT (id) DO UPDATE SET {sets}
             WHERE (t.version_created, t.version_rank, t.version_event_id)
                 < (excluded.version_created, excluded.version_rank, excluded.version_event_id)
             RETURNING id",
            cols = names.join(", "),
            selects = selects.join(", "),
            arrays = arrays.join(", "),
            sets = sets.join(", "),
        );
        Table { name, upsert }
    }
}

const VERSION_COLUMNS: [(&str, &str, &str); 3] = [
    ("version_created", "int8", ""),
    ("version_rank", "int2", ""),
    ("version_event_id", "text", ""),
];

fn with_versions(
    columns: &[(&'static str, &'static str, &'static str)],
) -> Vec<(&'static str, &'static str, &'static str)> {
    columns.iter().copied().chain(VERSION_COLUMNS).collect()
}

static CARDHOLDERS: LazyLock<Table> = LazyLock::new(|| {
    Table::new(
        "cardholders",
        &with_versions(&[
            ("id", "text", ""),
            ("name", "text", ""),
            ("email", "text", ""),
            ("phone_number", "text", ""),
            ("status", "text", ""),
            ("kind", "text", ""),
            ("created", "int8", ""),
        ]),
    )
});

static CARDS: LazyLock<Table> = LazyLock::new(|| {
    Table::new(
        "cards",
        &with_versions(&[
            ("id", "text", ""),
            ("cardholder_id", "text", ""),
            ("status", "text", ""),
            ("currency", "text", ""),
            ("kind", "text", ""),
            ("brand", "text", ""),
            ("last4", "text", ""),
            ("exp_month", "int4", ""),
            ("exp_year", "int4", ""),
            ("created", "int8", ""),
        ]),
    )
});

static DISPUTES: LazyLock<Table> = LazyLock::new(|| {
    Table::new(
        "disputes",
        &with_versions(&[
            ("id", "text", ""),
            ("transaction_id", "text", ""),
            ("amount", "int8", ""),
            ("currency", "text", ""),
            ("status", "text", ""),
            ("reason", "text", ""),
            ("created", "int8", ""),
        ]),
    )
});

const MERCHANT_COLUMNS: [(&str, &str, &str); 6] = [
    ("merchant_name", "text", ""),
    ("merchant_category", "text", ""),
    ("merchant_category_code", "text", ""),
    ("merchant_city", "text", ""),
    ("merchant_country", "text", ""),
    ("merchant_network_id", "text", ""),
];

static AUTHORIZATIONS: LazyLock<Table> = LazyLock::new(|| {
    let mut columns = vec![
        ("id", "text", ""),
        ("card_id", "text", ""),
        ("cardholder_id", "text", ""),
        ("amount", "int8", ""),
        ("requested_amount", "int8", ""),
        ("currency", "text", ""),
        ("merchant_amount", "int8", ""),
        ("merchant_currency", "text", ""),
        ("approved", "bool", ""),
        ("status", "text", ""),
        ("decline_reason", "text", ""),
        ("cardstream_reason", "text", ""),
    ];
    columns.extend(MERCHANT_COLUMNS);
    columns.extend([
        ("authorization_method", "text", ""),
        ("wallet", "text", ""),
        ("request_history", "text", "::jsonb"),
        ("created", "int8", ""),
    ]);
    Table::new("authorizations", &with_versions(&columns))
});

static TRANSACTIONS: LazyLock<Table> = LazyLock::new(|| {
    let mut columns = vec![
        ("id", "text", ""),
        ("card_id", "text", ""),
        ("cardholder_id", "text", ""),
        ("authorization_id", "text", ""),
        ("kind", "text", ""),
        ("amount", "int8", ""),
        ("currency", "text", ""),
        ("merchant_amount", "int8", ""),
        ("merchant_currency", "text", ""),
    ];
    columns.extend(MERCHANT_COLUMNS);
    columns.extend([
        ("dispute_id", "text", ""),
        ("wallet", "text", ""),
        ("created", "int8", ""),
    ]);
    Table::new("transactions", &with_versions(&columns))
});

/// Binds a column: one array parameter holding `f` of every row.
fn col<'q, R, T>(
    query: Query<'q, sqlx::Postgres, PgArguments>,
    rows: &[&Versioned<R>],
    f: impl Fn(&Versioned<R>) -> T,
) -> Query<'q, sqlx::Postgres, PgArguments>
where
    Vec<T>: sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + 'q,
{
    query.bind(rows.iter().map(|r| f(r)).collect::<Vec<T>>())
}

fn bind_versions<'q, R>(
    query: Query<'q, sqlx::Postgres, PgArguments>,
    rows: &[&Versioned<R>],
) -> Query<'q, sqlx::Postgres, PgArguments> {
    let query = col(query, rows, |r| r.version.created);
    let query = col(query, rows, |r| r.version.rank);
    col(query, rows, |r| r.version.event_id.clone())
}

/// Current versions of `ids` in `table`, locked until the transaction ends.
async fn current_versions(
    conn: &mut PgConnection,
    table: &str,
    ids: &[String],
) -> Result<HashMap<String, Version>, Error> {
    let sql = format!(
        "SELECT id, version_created, version_rank, version_event_id FROM {table}
         WHERE id = ANY($1) FOR UPDATE"
    );
    let rows: Vec<(String, i64, i16, String)> =
        sqlx::query_as(&sql).bind(ids).fetch_all(&mut *conn).await?;
    Ok(rows
        .into_iter()
        .map(|(id, created, rank, event_id)| {
            (
                id,
                Version {
                    created,
                    rank,
                    event_id,
                },
            )
        })
        .collect())
}

/// Keeps the incoming rows that are newer than what is stored.
fn winners<'a, R>(
    incoming: &'a HashMap<String, Versioned<R>>,
    current: &HashMap<String, Version>,
    outcome: &mut FoldOutcome,
) -> Vec<&'a Versioned<R>> {
    let mut out = Vec::new();
    for (id, item) in incoming {
        match current.get(id) {
            Some(stored) if *stored >= item.version => outcome.superseded += 1,
            _ => out.push(item),
        }
    }
    out
}

/// Runs an upsert and checks every row was written: the locks taken above make the SQL guard
/// agree with the decision made here, so a mismatch means a bug, and the batch is refused.
async fn execute_upsert(
    conn: &mut PgConnection,
    table: &Table,
    query: Query<'_, sqlx::Postgres, PgArguments>,
    expected: usize,
) -> Result<usize, Error> {
    let written = query.fetch_all(&mut *conn).await?.len();
    if written != expected {
        return Err(Error::Inconsistent(format!(
            "{}: expected to write {expected} rows, wrote {written}",
            table.name
        )));
    }
    Ok(written)
}

trait PlainRow {
    fn bind<'q>(
        query: Query<'q, sqlx::Postgres, PgArguments>,
        rows: &[&Versioned<Self>],
    ) -> Query<'q, sqlx::Postgres, PgArguments>
    where
        Self: Sized;
}

impl PlainRow for CardholderRow {
    fn bind<'q>(
        q: Query<'q, sqlx::Postgres, PgArguments>,
        rows: &[&Versioned<Self>],
    ) -> Query<'q, sqlx::Postgres, PgArguments> {
        let q = col(q, rows, |r| r.row.id.clone());
        let q = col(q, rows, |r| r.row.name.clone());
        let q = col(q, rows, |r| r.row.email.clone());
        let q = col(q, rows, |r| r.row.phone_number.clone());
        let q = col(q, rows, |r| r.row.status.clone());
        let q = col(q, rows, |r| r.row.kind.clone());
        let q = col(q, rows, |r| r.row.created);
        bind_versions(q, rows)
    }
}

impl PlainRow for CardRow {
    fn bind<'q>(
        q: Query<'q, sqlx::Postgres, PgArguments>,
        rows: &[&Versioned<Self>],
    ) -> Query<'q, sqlx::Postgres, PgArguments> {
        let q = col(q, rows, |r| r.row.id.clone());
        let q = col(q, rows, |r| r.row.cardholder_id.clone());
        let q = col(q, rows, |r| r.row.status.clone());
        let q = col(q, rows, |r| r.row.currency.clone());
        let q = col(q, rows, |r| r.row.kind.clone());
        let q = col(q, rows, |r| r.row.brand.clone());
        let q = col(q, rows, |r| r.row.last4.clone());
        let q = col(q, rows, |r| r.row.exp_month);
        let q = col(q, rows, |r| r.row.exp_year);
        let q = col(q, rows, |r| r.row.created);
        bind_versions(q, rows)
    }
}

impl PlainRow for DisputeRow {
    fn bind<'q>(
        q: Query<'q, sqlx::Postgres, PgArguments>,
        rows: &[&Versioned<Self>],
    ) -> Query<'q, sqlx::Postgres, PgArguments> {
        let q = col(q, rows, |r| r.row.id.clone());
        let q = col(q, rows, |r| r.row.transaction_id.clone());
        let q = col(q, rows, |r| r.row.amount);
        let q = col(q, rows, |r| r.row.currency.clone());
        let q = col(q, rows, |r| r.row.status.clone());
        let q = col(q, rows, |r| r.row.reason.clone());
        let q = col(q, rows, |r| r.row.created);
        bind_versions(q, rows)
    }
}

/// Objects that feed no rollup: only the version decides.
async fn fold_plain<R: PlainRow>(
    conn: &mut PgConnection,
    table: &Table,
    incoming: HashMap<String, Versioned<R>>,
    outcome: &mut FoldOutcome,
) -> Result<(), Error> {
    if incoming.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = incoming.keys().cloned().collect();
    let current = current_versions(conn, table.name, &ids).await?;
    let rows = winners(&incoming, &current, outcome);
    if rows.is_empty() {
        return Ok(());
    }
    let query = R::bind(sqlx::query(&table.upsert), &rows);
    outcome.rows_written += execute_upsert(conn, table, query, rows.len()).await?;
    Ok(())
}

fn bind_merchant<'q, R>(
    q: Query<'q, sqlx::Postgres, PgArguments>,
    rows: &[&Versioned<R>],
    m: impl Fn(&R) -> &crate::rows::Merchant,
) -> Query<'q, sqlx::Postgres, PgArguments> {
    let q = col(q, rows, |r| m(&r.row).name.clone());
    let q = col(q, rows, |r| m(&r.row).category.clone());
    let q = col(q, rows, |r| m(&r.row).category_code.clone());
    let q = col(q, rows, |r| m(&r.row).city.clone());
    let q = col(q, rows, |r| m(&r.row).country.clone());
    col(q, rows, |r| m(&r.row).network_id.clone())
}

async fn fold_authorizations(
    conn: &mut PgConnection,
    incoming: HashMap<String, Versioned<AuthorizationRow>>,
    outcome: &mut FoldOutcome,
) -> Result<(), Error> {
    if incoming.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = incoming.keys().cloned().collect();
    type Current = (String, i64, i16, String, String, i64, String, bool, String);
    let current: Vec<Current> = sqlx::query_as(
        "SELECT id, version_created, version_rank, version_event_id, card_id, created, currency, approved, status
         FROM authorizations WHERE id = ANY($1) FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut versions = HashMap::new();
    let mut old = HashMap::new();
    for (id, created, rank, event_id, card_id, auth_created, currency, approved, status) in current
    {
        versions.insert(
            id.clone(),
            Version {
                created,
                rank,
                event_id,
            },
        );
        old.insert(
            id,
            AuthorizationContribution {
                card_id,
                day: day_of(auth_created),
                currency,
                approved,
                status,
            },
        );
    }
    let rows = winners(&incoming, &versions, outcome);
    if rows.is_empty() {
        return Ok(());
    }
    for row in &rows {
        if let Some(previous) = old.get(&row.row.id) {
            outcome.deltas.authorization(previous, -1);
        }
        outcome.deltas.authorization(&row.row.contribution(), 1);
    }
    let q = sqlx::query(&AUTHORIZATIONS.upsert);
    let q = col(q, &rows, |r| r.row.id.clone());
    let q = col(q, &rows, |r| r.row.card_id.clone());
    let q = col(q, &rows, |r| r.row.cardholder_id.clone());
    let q = col(q, &rows, |r| r.row.amount);
    let q = col(q, &rows, |r| r.row.requested_amount);
    let q = col(q, &rows, |r| r.row.currency.clone());
    let q = col(q, &rows, |r| r.row.merchant_amount);
    let q = col(q, &rows, |r| r.row.merchant_currency.clone());
    let q = col(q, &rows, |r| r.row.approved);
    let q = col(q, &rows, |r| r.row.status.clone());
    let q = col(q, &rows, |r| r.row.decline_reason.clone());
    let q = col(q, &rows, |r| r.row.cardstream_reason.clone());
    let q = bind_merchant(q, &rows, |r| &r.merchant);
    let q = col(q, &rows, |r| r.row.authorization_method.clone());
    let q = col(q, &rows, |r| r.row.wallet.clone());
    let q = col(q, &rows, |r| r.row.request_history.clone());
    let q = col(q, &rows, |r| r.row.created);
    let q = bind_versions(q, &rows);
    outcome.rows_written += execute_upsert(conn, &AUTHORIZATIONS, q, rows.len()).await?;
    Ok(())
}

async fn fold_transactions(
    conn: &mut PgConnection,
    incoming: HashMap<String, Versioned<TransactionRow>>,
    outcome: &mut FoldOutcome,
) -> Result<(), Error> {
    if incoming.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = incoming.keys().cloned().collect();
    type Current = (
        String,
        i64,
        i16,
        String,
        String,
        i64,
        String,
        String,
        Option<String>,
        Option<String>,
        String,
        i64,
    );
    let current: Vec<Current> = sqlx::query_as(
        "SELECT id, version_created, version_rank, version_event_id, card_id, created, currency,
                merchant_category, merchant_name, merchant_network_id, kind, amount
         FROM transactions WHERE id = ANY($1) FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut versions = HashMap::new();
    let mut old = HashMap::new();
    for (
        id,
        created,
        rank,
        event_id,
        card_id,
        txn_created,
        currency,
        category,
        name,
        network_id,
        kind,
        amount,
    ) in current
    {
        versions.insert(
            id.clone(),
            Version {
                created,
                rank,
                event_id,
            },
        );
        old.insert(
            id,
            TransactionContribution {
                card_id,
                day: day_of(txn_created),
                currency,
                category,
                merchant: merchant_key(name.as_deref(), network_id.as_deref()),
                kind,
                amount,
            },
        );
    }
    let rows = winners(&incoming, &versions, outcome);
    if rows.is_empty() {
        return Ok(());
    }
    for row in &rows {
        if let Some(previous) = old.get(&row.row.id) {
            outcome.deltas.transaction(previous, -1);
        }
        outcome.deltas.transaction(&row.row.contribution(), 1);
    }
    let q = sqlx::query(&TRANSACTIONS.upsert);
    let q = col(q, &rows, |r| r.row.id.clone());
    let q = col(q, &rows, |r| r.row.card_id.clone());
    let q = col(q, &rows, |r| r.row.cardholder_id.clone());
    let q = col(q, &rows, |r| r.row.authorization_id.clone());
    let q = col(q, &rows, |r| r.row.kind.clone());
    let q = col(q, &rows, |r| r.row.amount);
    let q = col(q, &rows, |r| r.row.currency.clone());
    let q = col(q, &rows, |r| r.row.merchant_amount);
    let q = col(q, &rows, |r| r.row.merchant_currency.clone());
    let q = bind_merchant(q, &rows, |r| &r.merchant);
    let q = col(q, &rows, |r| r.row.dispute_id.clone());
    let q = col(q, &rows, |r| r.row.wallet.clone());
    let q = col(q, &rows, |r| r.row.created);
    let q = bind_versions(q, &rows);
    outcome.rows_written += execute_upsert(conn, &TRANSACTIONS, q, rows.len()).await?;
    Ok(())
}
