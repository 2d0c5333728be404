//! Keyset pages, in either direction: the next page after a cursor, or the previous page
//! before one. A page never repeats or skips a row when rows arrive between requests, and costs
//! one index range scan however deep into the list it is (no OFFSET).

/// Which way a page goes from its cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// The rows after the cursor in the list's order (`first`/`after`).
    #[default]
    Forward,
    /// The rows before the cursor (`last`/`before`): the end of the list without a cursor.
    Backward,
}

/// One page of a list ordered by a key `K`. Rows come back in the list's order whichever the
/// direction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Page<K> {
    /// The key the page starts from, excluded; none for the first (or, backward, the last) page.
    pub from: Option<K>,
    pub direction: Direction,
    pub limit: u64,
}

impl<K> Page<K> {
    /// The first `limit` rows.
    pub fn first(limit: u64) -> Self {
        Page {
            from: None,
            direction: Direction::Forward,
            limit,
        }
    }

    /// The same page with `extra` more rows (to learn whether another page follows).
    pub fn widened(mut self, extra: u64) -> Self {
        self.limit = self.limit.saturating_add(extra);
        self
    }

    pub fn is_backward(&self) -> bool {
        self.direction == Direction::Backward
    }

    /// Rows read in the query's order (reversed for a backward page) put back in the list's.
    pub(crate) fn in_list_order<T>(&self, mut rows: Vec<T>) -> Vec<T> {
        if self.is_backward() {
            rows.reverse();
        }
        rows
    }
}
