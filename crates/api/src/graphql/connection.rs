//! Relay connections (the Cursor Connections spec): every list that can grow pages with
//! `first`/`after` forward or `last`/`before` backward, and answers with edges, nodes and
//! `pageInfo { hasNextPage hasPreviousPage startCursor endCursor }`. Pages are keyset pages
//! in the store (no OFFSET), so a cursor stays valid however the list grows.

use async_graphql::connection::{Connection, CursorType, Edge, EmptyFields};
use async_graphql::{Context, Object, OutputType};
use cardstream_store::{Cursor, Direction, Page};

use super::context::{limits, loader};
use super::errors::{ApiError, ApiResult};
use super::loaders::{CountOf, load_error};
use super::scalars::Long;

/// The page a connection serves when neither `first` nor `last` is given.
pub const DEFAULT_PAGE: i32 = 50;
/// A cardholder's cards, by default (a dashboard row shows a few).
pub const CARDHOLDER_CARDS_PAGE: i32 = 10;
/// A card's activity, by default (one screen of the dashboard).
pub const ACTIVITY_PAGE: i32 = 20;

/// The paging arguments of a connection field.
#[derive(Debug, Default)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

impl PageArgs {
    pub fn new(
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Self {
        PageArgs {
            first,
            after,
            last,
            before,
        }
    }

    /// The store's page: checked sizes and cursors, `default` rows when neither size is given.
    pub fn page<K: Key>(self, ctx: &Context<'_>, default: i32) -> ApiResult<Page<K>> {
        let max = limits(ctx).max_page_size;
        let mixed = || {
            ApiError::BadUserInput(
                "page forward with `first` and `after`, or backward with `last` and `before`"
                    .into(),
            )
        };
        if self.first.is_some() && self.last.is_some() {
            return Err(mixed());
        }
        if self.after.is_some() && self.before.is_some() {
            return Err(mixed());
        }
        let backward = self.last.is_some() || self.before.is_some();
        if backward && (self.first.is_some() || self.after.is_some()) {
            return Err(mixed());
        }
        // A default larger than the configured largest page is cut to it: the client sent no
        // size to refuse.
        let default = default.min(max);
        let (size, cursor, direction) = if backward {
            (
                self.last.unwrap_or(default),
                self.before,
                Direction::Backward,
            )
        } else {
            (
                self.first.unwrap_or(default),
                self.after,
                Direction::Forward,
            )
        };
        if !(1..=max).contains(&size) {
            let name = match direction {
                Direction::Forward => "first",
                Direction::Backward => "last",
            };
            return Err(ApiError::BadUserInput(format!(
                "`{name}` must be between 1 and {max}"
            )));
        }
        let from = cursor
            .map(|c| {
                decode(&c)
                    .and_then(|text| K::from_text(&text))
                    .ok_or_else(|| {
                        ApiError::BadUserInput("the cursor is not one this API gave out".into())
                    })
            })
            .transpose()?;
        Ok(Page {
            from,
            direction,
            limit: u64::try_from(size).unwrap_or(1),
        })
    }
}

/// A list's sort key, written into its opaque cursor.
pub trait Key: Sized + Clone + Send + Sync {
    fn to_text(&self) -> String;
    fn from_text(text: &str) -> Option<Self>;
}

impl Key for String {
    fn to_text(&self) -> String {
        self.clone()
    }
    fn from_text(text: &str) -> Option<Self> {
        (!text.is_empty()).then(|| text.to_owned())
    }
}

impl Key for i64 {
    fn to_text(&self) -> String {
        self.to_string()
    }
    fn from_text(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

impl Key for Cursor {
    fn to_text(&self) -> String {
        format!("{}:{}", self.created, self.id)
    }
    fn from_text(text: &str) -> Option<Self> {
        let (created, id) = text.split_once(':')?;
        Some(Cursor {
            created: created.parse().ok()?,
            id: id.to_owned(),
        })
    }
}

/// The cursor clients see: the key, hex-encoded, so that nobody builds one by hand.
pub struct Opaque<K>(pub K);

fn encode(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode(cursor: &str) -> Option<String> {
    if !cursor.len().is_multiple_of(2)
        || cursor.len() > 512
        || !cursor.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    let bytes: Vec<u8> = (0..cursor.len())
        .step_by(2)
        .map(|i| {
            cursor
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<_>>()?;
    String::from_utf8(bytes).ok()
}

impl<K: Key> CursorType for Opaque<K> {
    type Error = ApiError;

    fn decode_cursor(s: &str) -> Result<Self, ApiError> {
        decode(s)
            .and_then(|t| K::from_text(&t))
            .map(Opaque)
            .ok_or_else(|| ApiError::BadUserInput("the cursor is not one this API gave out".into()))
    }

    fn encode_cursor(&self) -> String {
        encode(&self.0.to_text())
    }
}

/// A connection with a `totalCount`.
pub type Counted<K, N> = Connection<Opaque<K>, N, Total>;
/// A connection without one (its count would cost a scan: filtered activity, disputes).
pub type Uncounted<K, N> = Connection<Opaque<K>, N, EmptyFields>;

/// A page's rows, read with one extra row (`Page::widened(1)`), as a connection. The extra row
/// only says that another page follows; the other way, there is one when the page started
/// from a cursor (the row it came from is there).
pub fn connection<K, R, N, C>(
    page: &Page<K>,
    mut rows: Vec<R>,
    fields: C,
    key: impl Fn(&R) -> K,
    node: impl Fn(R) -> N,
) -> Connection<Opaque<K>, N, C>
where
    K: Key,
    N: OutputType,
    C: async_graphql::ObjectType,
{
    let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    if more {
        match page.direction {
            Direction::Forward => rows.truncate(limit),
            // A backward page is in list order: its extra row is the first.
            Direction::Backward => {
                rows.drain(..rows.len() - limit);
            }
        }
    }
    let from_cursor = page.from.is_some();
    let (has_previous, has_next) = match page.direction {
        Direction::Forward => (from_cursor, more),
        Direction::Backward => (more, from_cursor),
    };
    let mut connection = Connection::with_additional_fields(has_previous, has_next, fields);
    connection.edges.extend(
        rows.into_iter()
            .map(|row| Edge::new(Opaque(key(&row)), node(row))),
    );
    connection
}

/// A page of a list held in memory (a cardholder user's few cards): the same cursors and
/// answers as a page read from the store.
pub fn in_memory<K, R, N, C>(
    page: &Page<K>,
    rows: Vec<R>,
    fields: C,
    key: impl Fn(&R) -> K,
    node: impl Fn(R) -> N,
) -> Connection<Opaque<K>, N, C>
where
    K: Key + Ord,
    N: OutputType,
    C: async_graphql::ObjectType,
{
    let limit = usize::try_from(page.limit)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let selected: Vec<R> = match page.direction {
        Direction::Forward => rows
            .into_iter()
            .filter(|r| page.from.as_ref().is_none_or(|f| key(r) > *f))
            .take(limit)
            .collect(),
        Direction::Backward => {
            let mut before: Vec<R> = rows
                .into_iter()
                .filter(|r| page.from.as_ref().is_none_or(|f| key(r) < *f))
                .collect();
            let skip = before.len().saturating_sub(limit);
            before.drain(..skip);
            before
        }
    };
    connection(page, selected, fields, key, node)
}

/// What a connection counts in all, counted only when `totalCount` is asked for.
pub enum Total {
    /// Already known (a list held in memory).
    Known(usize),
    /// A whole table, counted once per request however many connections ask.
    All(CountOf),
}

#[Object]
impl Total {
    /// How many there are in all, across every page.
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<Long> {
        use async_graphql::ResultExt;
        let count = match self {
            Total::Known(n) => u64::try_from(*n).unwrap_or(u64::MAX),
            Total::All(table) => loader(ctx)
                .load_one(table.clone())
                .await
                .map_err(load_error)
                .extend()?
                .unwrap_or(0),
        };
        Ok(Long(i64::try_from(count).unwrap_or(i64::MAX)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let key = Cursor {
            created: 1_764_000_000,
            id: "iauth_1Pgc77B7WZ01zgkWn0SmtHBY".into(),
        };
        let c = Opaque(key.clone()).encode_cursor();
        assert_eq!(Opaque::<Cursor>::decode_cursor(&c).unwrap().0, key);
        for bad in ["", "zz", "abc", "6162", &"61".repeat(300)] {
            assert!(Opaque::<Cursor>::decode_cursor(bad).is_err(), "{bad}");
        }
        assert!(Opaque::<i64>::decode_cursor(&encode("12x")).is_err());
    }
}
