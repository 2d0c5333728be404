//! Where the aggregator's bytes go: write-ahead log per event (from `pg_stat_wal`, which is
//! the whole cluster's: the benchmark's Postgres does nothing else meanwhile) and each
//! table's heap and index bytes per event, grouped as the raw event store, the projections,
//! the rollups and the rest.

use cardstream_store::Store;

/// The cluster's write-ahead log written so far, in bytes.
pub(crate) async fn wal_bytes(store: &Store) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT wal_bytes::int8 FROM pg_stat_wal")
            .fetch_one(store.pool())
            .await?,
    )
}

/// Heap (with TOAST) and index bytes of one table.
pub(crate) struct TableBytes {
    pub(crate) table: String,
    pub(crate) heap: i64,
    pub(crate) index: i64,
}

/// Every table of the database, largest first.
pub(crate) async fn tables(store: &Store) -> anyhow::Result<Vec<TableBytes>> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT c.relname::text, pg_table_size(c.oid), pg_indexes_size(c.oid)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind = 'r'
         ORDER BY pg_table_size(c.oid) + pg_indexes_size(c.oid) DESC, 1",
    )
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(table, heap, index)| TableBytes { table, heap, index })
        .collect())
}

/// What a table is for.
fn group(table: &str) -> &'static str {
    match table {
        "stripe_events" => "raw events",
        "cardholders" | "cards" | "authorizations" | "transactions" | "disputes" | "tokens" => {
            "projections"
        }
        t if t.starts_with("card_") || t.starts_with("program_") => "rollups",
        _ => "other (change feed, positions, status)",
    }
}

/// Prints the bytes per event by group, then by table.
pub(crate) fn print(events: usize, payload: usize, wal: i64, tables: &[TableBytes]) {
    let per = |b: i64| b as f64 / events.max(1) as f64;
    println!(
        "  bytes per event: payload {:.0}, write-ahead log {:.0} ({:.1}x the payload)",
        payload as f64 / events.max(1) as f64,
        per(wal),
        wal as f64 / payload.max(1) as f64
    );
    let mut groups: Vec<(&str, i64, i64)> = Vec::new();
    for t in tables {
        let g = group(&t.table);
        match groups.iter_mut().find(|(name, ..)| *name == g) {
            Some(entry) => {
                entry.1 += t.heap;
                entry.2 += t.index;
            }
            None => groups.push((g, t.heap, t.index)),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.1 + g.2));
    let (heap, index): (i64, i64) = groups.iter().fold((0, 0), |a, g| (a.0 + g.1, a.1 + g.2));
    println!(
        "  stored per event: {:.0} bytes ({:.0} in tables, {:.0} in indexes)",
        per(heap + index),
        per(heap),
        per(index)
    );
    for (name, heap, index) in &groups {
        println!(
            "    {name:<40} {:>8.0} table {:>8.0} index",
            per(*heap),
            per(*index)
        );
    }
    // Tables of less than a byte per event (empty ones among them) are left out.
    for t in tables.iter().filter(|t| per(t.heap + t.index) >= 1.0) {
        println!(
            "      {:<38} {:>8.0} table {:>8.0} index",
            t.table,
            per(t.heap),
            per(t.index)
        );
    }
}
