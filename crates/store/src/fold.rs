//! Folding events into the object tables and rollups.
//!
//! For each kind of object: keep the newest version per object among the events, lock the
//! current rows (`FOR UPDATE`), keep the incoming versions that are newer, write them with one
//! multi-row upsert, and turn each replacement into rollup deltas (the old row's contribution
//! out, the new one's in). The result does not depend on the order or repetition of events,
//! which is what makes duplicates, reordering and replay safe.

use std::collections::HashMap;

use cardstream_stripe::{Object, types};
use sqlx::PgConnection;

use crate::Error;
use crate::rollups::RollupDeltas;
use crate::rows::{
    AuthorizationContribution, AuthorizationRow, CardRow, CardholderRow, DisputeRow, TokenRow,
    TransactionContribution, TransactionRow, Versioned, day_of, merchant_key,
};
use crate::tables::{AUTHORIZATIONS, CARDHOLDERS, CARDS, DISPUTES, TOKENS, TRANSACTIONS, Table};
use crate::version::Version;

/// Funds a dispute moved, said by an event of its own type rather than in the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputeFunds {
    Reinstated,
    Rescinded,
}

impl DisputeFunds {
    /// The movement an event of `event_type` reports, if any.
    pub fn of(event_type: &str) -> Option<DisputeFunds> {
        match event_type {
            types::DISPUTE_FUNDS_REINSTATED => Some(DisputeFunds::Reinstated),
            types::DISPUTE_FUNDS_RESCINDED => Some(DisputeFunds::Rescinded),
            _ => None,
        }
    }
}

/// One event to fold: its version and its typed object.
#[derive(Debug, Clone)]
pub struct FoldEvent {
    pub version: Version,
    /// For `issuing_dispute.funds_*` events: the movement, kept whatever the object's version.
    pub funds: Option<DisputeFunds>,
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
    /// `(card, authorization)` of every authorization written, or whose transaction was: the
    /// change feed's entries (migration 0019).
    pub(crate) changed: std::collections::BTreeSet<(String, String)>,
    /// The transactions of the disputes in the batch: their authorizations changed too.
    pub(crate) disputed: Vec<String>,
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
    let mut tokens = Vec::new();
    let mut funds = FundsMoved::default();
    for event in events {
        if let (Object::Dispute(d), Some(moved)) = (&event.object, event.funds) {
            funds.note(&d.id, moved, event.version.created);
        }
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
            Object::Token(t) => tokens.push((
                t.id.clone(),
                Versioned {
                    version,
                    account,
                    row: TokenRow::from(&**t),
                },
            )),
            Object::Other(_) => {}
        }
    }
    let mut outcome = FoldOutcome {
        disputed: disputes
            .iter()
            .map(|(_, d)| d.row.transaction_id.clone())
            .collect(),
        ..FoldOutcome::default()
    };
    fold_plain(conn, &CARDHOLDERS, newest(holders), &mut outcome).await?;
    fold_plain(conn, &CARDS, newest(cards), &mut outcome).await?;
    fold_plain(conn, &DISPUTES, newest(disputes), &mut outcome).await?;
    funds.apply(conn).await?;
    fold_plain(conn, &TOKENS, newest(tokens), &mut outcome).await?;
    fold_authorizations(conn, newest(auths), &mut outcome).await?;
    fold_transactions(conn, newest(txns), &mut outcome).await?;
    Ok(outcome)
}

/// The first time each dispute's funds were reinstated or rescinded, by the events of a batch.
#[derive(Debug, Default)]
struct FundsMoved(HashMap<String, (Option<i64>, Option<i64>)>);

impl FundsMoved {
    fn note(&mut self, dispute: &str, moved: DisputeFunds, at: i64) {
        let (reinstated, rescinded) = self.0.entry(dispute.to_owned()).or_default();
        let first = match moved {
            DisputeFunds::Reinstated => reinstated,
            DisputeFunds::Rescinded => rescinded,
        };
        *first = Some(first.map_or(at, |t| t.min(at)));
    }

    /// Sets each time once, to the earliest seen: independent of the order events arrive in
    /// and of the object's version (a newer `closed` does not clear it; a late funds event
    /// older than the row still sets it). The rows exist: this batch's fold just wrote them
    /// or they were there.
    async fn apply(self, conn: &mut PgConnection) -> Result<(), Error> {
        if self.0.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::with_capacity(self.0.len());
        let (mut reinstated, mut rescinded) = (Vec::new(), Vec::new());
        for (id, (r, s)) in self.0 {
            ids.push(id);
            reinstated.push(r);
            rescinded.push(s);
        }
        sqlx::query(
            "UPDATE disputes d
                SET funds_reinstated_at = LEAST(d.funds_reinstated_at, u.reinstated),
                    funds_rescinded_at = LEAST(d.funds_rescinded_at, u.rescinded)
               FROM unnest($1::text[], $2::int8[], $3::int8[]) AS u (id, reinstated, rescinded)
              WHERE d.id = u.id",
        )
        .bind(&ids)
        .bind(&reinstated)
        .bind(&rescinded)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
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

/// An authorization's stored version and what it contributes to the rollups.
#[derive(sqlx::FromRow)]
struct CurrentAuthorization {
    id: String,
    version_created: i64,
    version_rank: i16,
    version_event_id: String,
    card_id: String,
    created: i64,
    currency: String,
    approved: bool,
    status: String,
    account: String,
    reason: String,
    cardstream_reason: String,
}

/// A transaction's stored version and what it contributes to the rollups.
#[derive(sqlx::FromRow)]
struct CurrentTransaction {
    id: String,
    version_created: i64,
    version_rank: i16,
    version_event_id: String,
    card_id: String,
    created: i64,
    currency: String,
    merchant_category: String,
    merchant_name: Option<String>,
    merchant_network_id: Option<String>,
    kind: String,
    amount: i64,
    account: String,
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
    let current: Vec<CurrentAuthorization> = sqlx::query_as(
        "SELECT id, version_created, version_rank, version_event_id, card_id, created, currency,
                approved, status, coalesce(account, '') AS account,
                coalesce(decline_reason, '') AS reason,
                coalesce(cardstream_reason, '') AS cardstream_reason
         FROM authorizations WHERE id = ANY($1) FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut versions = HashMap::new();
    let mut old = HashMap::new();
    for a in current {
        versions.insert(
            a.id.clone(),
            Version {
                created: a.version_created,
                rank: a.version_rank,
                event_id: a.version_event_id,
            },
        );
        old.insert(
            a.id,
            AuthorizationContribution {
                card_id: a.card_id,
                day: day_of(a.created),
                currency: a.currency,
                approved: a.approved,
                status: a.status,
                account: a.account,
                reason: a.reason,
                cardstream_reason: a.cardstream_reason,
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
        outcome
            .deltas
            .authorization(&row.row.contribution(row.account.as_deref()), 1);
        outcome
            .changed
            .insert((row.row.card_id.clone(), row.row.id.clone()));
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
    let current: Vec<CurrentTransaction> = sqlx::query_as(
        "SELECT id, version_created, version_rank, version_event_id, card_id, created, currency,
                merchant_category, merchant_name, merchant_network_id, kind, amount,
                coalesce(account, '') AS account
         FROM transactions WHERE id = ANY($1) FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut versions = HashMap::new();
    let mut old = HashMap::new();
    for t in current {
        versions.insert(
            t.id.clone(),
            Version {
                created: t.version_created,
                rank: t.version_rank,
                event_id: t.version_event_id,
            },
        );
        old.insert(
            t.id,
            TransactionContribution {
                card_id: t.card_id,
                day: day_of(t.created),
                currency: t.currency,
                category: t.merchant_category,
                merchant: merchant_key(
                    t.merchant_name.as_deref(),
                    t.merchant_network_id.as_deref(),
                ),
                kind: t.kind,
                amount: t.amount,
                account: t.account,
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
        outcome
            .deltas
            .transaction(&row.row.contribution(row.account.as_deref()), 1);
        if let Some(authorization) = &row.row.authorization_id {
            outcome
                .changed
                .insert((row.row.card_id.clone(), authorization.clone()));
        }
        outcome
            .deltas
            .account(&row.row.card_id, row.account.as_deref());
    }
    outcome.rows_written += upsert(conn, &TRANSACTIONS, &rows).await?;
    Ok(())
}
