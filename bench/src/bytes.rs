//! Where the aggregator's bytes go: write-ahead log per event (from `pg_stat_wal`, which is
//! the whole cluster's: the benchmark's Postgres does nothing else meanwhile) and each
//! table's heap and index bytes per event, grouped as the raw event store, the projections,
//! the rollups and the rest.

use cardstream_store::Store;

/// The cluster's write-ahead log so far: bytes, and full-page images (a page's first change
/// after each checkpoint logs the whole page; how often depends on the server's
/// `max_wal_size` and `checkpoint_timeout`, not on cardstream).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wal {
    pub(crate) bytes: i64,
    pub(crate) full_pages: i64,
}

impl std::ops::Sub for Wal {
    type Output = Wal;

    fn sub(self, before: Wal) -> Wal {
        Wal {
            bytes: self.bytes - before.bytes,
            full_pages: self.full_pages - before.full_pages,
        }
    }
}

pub(crate) async fn wal(store: &Store) -> anyhow::Result<Wal> {
    let (bytes, full_pages) = sqlx::query_as("SELECT wal_bytes::int8, wal_fpi FROM pg_stat_wal")
        .fetch_one(store.pool())
        .await?;
    Ok(Wal { bytes, full_pages })
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
pub(crate) fn print(events: usize, payload: usize, wal: Wal, tables: &[TableBytes]) {
    let per = |b: i64| b as f64 / events.max(1) as f64;
    println!(
        "  bytes per event: payload {:.0}, write-ahead log {:.0} ({:.1}x the payload)",
        payload as f64 / events.max(1) as f64,
        per(wal.bytes),
        wal.bytes as f64 / payload.max(1) as f64
    );
    // An image is the page less its free hole, so 8 KiB each is an upper bound.
    println!(
        "  of which full-page images after checkpoints: {} ({:.3} per event, at most {:.0} bytes per event)",
        wal.full_pages,
        per(wal.full_pages),
        per(wal.full_pages * 8192).min(per(wal.bytes))
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
