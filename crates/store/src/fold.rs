//! Folding events into the object tables and rollups.
//!
//! For each kind of object: keep the newest version per object among the events, lock the
//! current rows (`FOR UPDATE`), keep the incoming versions that are newer, write them with one
//! multi-row upsert, and turn each replacement into rollup deltas (the old row's contribution
//! out, the new one's in). The result does not depend on the order or repetition of events,
//! which is what makes duplicates, reordering and replay safe.

use std::collections::HashMap;

use cardstream_stripe::Object;
use sqlx::PgConnection;

use crate::Error;
use crate::rollups::RollupDeltas;
use crate::rows::{
    AuthorizationContribution, AuthorizationRow, CardRow, CardholderRow, DisputeRow,
    TransactionContribution, TransactionRow, Versioned, day_of, merchant_key,
};
use crate::tables::{AUTHORIZATIONS, CARDHOLDERS, CARDS, DISPUTES, TRANSACTIONS, Table};
use crate::version::Version;

/// One event to fold: its version and its typed object.
#[derive(Debug, Clone)]
pub struct FoldEvent {
    pub version: Version,
    /// The event's Connect account (`None`: the platform's own), written on every row it
    /// touches.
    pub account: Option<String>,
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
        let account = event.account.clone();
        match &event.object {
            Object::Cardholder(h) => holders.push((
                h.id.clone(),
                Versioned {
                    version,
                    account,
                    row: CardholderRow::from(&**h),
                },
            )),
            Object::Card(c) => cards.push((
                c.id.clone(),
                Versioned {
                    version,
                    account,
                    row: CardRow::from(&**c),
                },
            )),
            Object::Authorization(a) => auths.push((
                a.id.clone(),
                Versioned {
                    version,
                    account,
                    row: AuthorizationRow::from(&**a),
                },
            )),
            Object::Transaction(t) => txns.push((
                t.id.clone(),
                Versioned {
                    version,
                    account,
                    row: TransactionRow::from(&**t),
                },
            )),
            Object::Dispute(d) => disputes.push((
                d.id.clone(),
                Versioned {
                    version,
                    account,
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

/// Writes `rows` with the table's upsert and checks every row was written: the locks taken
/// above make the SQL guard agree with the decision made here, so a mismatch means a bug, and
/// the batch is refused.
async fn upsert<R: 'static>(
    conn: &mut PgConnection,
    table: &Table<R>,
    rows: &[&Versioned<R>],
) -> Result<usize, Error> {
    let arguments = table.arguments(rows)?;
    let written = sqlx::query_with(&table.upsert, arguments)
        .fetch_all(&mut *conn)
        .await?
        .len();
    if written != rows.len() {
        return Err(Error::Inconsistent(format!(
            "{}: expected to write {} rows, wrote {written}",
            table.name,
            rows.len()
        )));
    }
    Ok(written)
}

/// Objects that feed no rollup: only the version decides.
async fn fold_plain<R: 'static>(
    conn: &mut PgConnection,
    table: &Table<R>,
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
    outcome.rows_written += upsert(conn, table, &rows).await?;
    Ok(())
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
        outcome
            .deltas
            .account(&row.row.card_id, row.account.as_deref());
    }
    outcome.rows_written += upsert(conn, &AUTHORIZATIONS, &rows).await?;
    settle_reservations(conn, &ids).await?;
    Ok(())
}

/// Releases the gateways' spend reservations (migration 0010) that the authorizations just
/// stored now cover: from here on their holds count instead, in this same transaction, so
/// that the limits never see both or neither. A request event (rank 0) covers nothing: its
/// authorization is not decided yet.
async fn settle_reservations(conn: &mut PgConnection, ids: &[String]) -> Result<(), Error> {
    sqlx::query(
        "DELETE FROM spend_reservations r USING authorizations a
         WHERE a.id = ANY($1) AND r.authorization_id = a.id
           AND a.version_rank >= 1 AND a.version_created >= r.requested_at",
    )
    .bind(ids)
    .execute(&mut *conn)
    .await?;
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
        outcome
            .deltas
            .account(&row.row.card_id, row.account.as_deref());
    }
    outcome.rows_written += upsert(conn, &TRANSACTIONS, &rows).await?;
    Ok(())
}
