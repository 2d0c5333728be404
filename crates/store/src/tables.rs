//! The object tables as the fold writes them. Each column is declared once, with the value it
//! takes from a row; the upsert's column list, the type of each array parameter and the values
//! bound are all derived from that one declaration, so they cannot drift apart.
//!
//! A batch is written with one statement per table: one array per column (every row's value
//! for it), unnested into rows, and an upsert that only replaces a row with a newer version.

use std::sync::LazyLock;

use sqlx::error::BoxDynError;
use sqlx::postgres::PgArguments;
use sqlx::{Arguments, Encode, Postgres, Type, TypeInfo};

use crate::Error;
use crate::rows::{
    AuthorizationRow, CardRow, CardholderRow, DisputeRow, Merchant, TokenRow, TransactionRow,
    Versioned,
};

/// Adds one column's array (its value in every row) to a statement's arguments.
type Bind<R> =
    Box<dyn Fn(&mut PgArguments, &[&Versioned<R>]) -> Result<(), BoxDynError> + Send + Sync>;

struct Column<R> {
    name: &'static str,
    /// The array parameter's type, taken from the Rust type of the values bound (`text[]`).
    array_type: String,
    /// What is stored when it is not the value as bound: `request_history` is bound as text
    /// and stored as jsonb.
    stored_as: Option<&'static str>,
    bind: Bind<R>,
}

/// An object table: its columns in order, and the upsert built from them.
pub(crate) struct Table<R> {
    pub(crate) name: &'static str,
    columns: Vec<Column<R>>,
    pub(crate) upsert: String,
}

impl<R: 'static> Table<R> {
    /// The arguments of [`Table::upsert`] for `rows`: one array per column, in column order.
    pub(crate) fn arguments(&self, rows: &[&Versioned<R>]) -> Result<PgArguments, Error> {
        let mut arguments = PgArguments::default();
        for column in &self.columns {
            (column.bind)(&mut arguments, rows).map_err(|err| {
                Error::Inconsistent(format!(
                    "{}.{} cannot be encoded: {err}",
                    self.name, column.name
                ))
            })?;
        }
        Ok(arguments)
    }
}

/// Declares a table's columns, in order; [`Columns::finish`] adds the version columns and
/// builds the upsert.
struct Columns<R> {
    table: &'static str,
    columns: Vec<Column<R>>,
}

impl<R: 'static> Columns<R> {
    fn of(table: &'static str) -> Self {
        Columns {
            table,
            columns: Vec::new(),
        }
    }

    /// A column holding `value` of each row.
    fn column<T>(self, name: &'static str, value: impl Fn(&R) -> T + Send + Sync + 'static) -> Self
    where
        T: Send + 'static,
        Vec<T>: for<'q> Encode<'q, Postgres> + Type<Postgres>,
    {
        self.versioned(name, move |r| value(&r.row))
    }

    /// A column bound as `value` and stored as `sql_type` (a cast in the upsert).
    fn column_as<T>(
        mut self,
        name: &'static str,
        sql_type: &'static str,
        value: impl Fn(&R) -> T + Send + Sync + 'static,
    ) -> Self
    where
        T: Send + 'static,
        Vec<T>: for<'q> Encode<'q, Postgres> + Type<Postgres>,
    {
        self = self.column(name, value);
        if let Some(last) = self.columns.last_mut() {
            last.stored_as = Some(sql_type);
        }
        self
    }

    /// The six merchant columns, from the row's merchant.
    fn merchant(self, merchant: fn(&R) -> &Merchant) -> Self {
        self.column("merchant_name", move |r| merchant(r).name.clone())
            .column("merchant_category", move |r| merchant(r).category.clone())
            .column("merchant_category_code", move |r| {
                merchant(r).category_code.clone()
            })
            .column("merchant_city", move |r| merchant(r).city.clone())
            .column("merchant_country", move |r| merchant(r).country.clone())
            .column("merchant_network_id", move |r| {
                merchant(r).network_id.clone()
            })
    }

    fn versioned<T>(
        mut self,
        name: &'static str,
        value: impl Fn(&Versioned<R>) -> T + Send + Sync + 'static,
    ) -> Self
    where
        T: Send + 'static,
        Vec<T>: for<'q> Encode<'q, Postgres> + Type<Postgres>,
    {
        self.columns.push(Column {
            name,
            array_type: <Vec<T> as Type<Postgres>>::type_info()
                .name()
                .to_ascii_lowercase(),
            stored_as: None,
            bind: Box::new(move |arguments, rows| {
                Arguments::add(arguments, rows.iter().map(|r| value(r)).collect::<Vec<T>>())
            }),
        });
        self
    }

    /// Adds the Connect account and the version columns (the ordering key of the newer-wins
    /// rule) and builds the
    /// upsert: a row is replaced only by a strictly newer version, and `RETURNING id` lists
    /// the rows written, so the caller can check none was refused.
    fn finish(self) -> Table<R> {
        let Columns { table, columns } = self
            .versioned("account", |r| r.account.clone())
            .versioned("version_created", |r| r.version.created)
            .versioned("version_rank", |r| r.version.rank)
            .versioned("version_event_id", |r| r.version.event_id.clone());
        let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
        let selects: Vec<String> = columns
            .iter()
            .map(|c| match c.stored_as {
                Some(sql_type) => format!("{}::{sql_type}", c.name),
                None => c.name.to_owned(),
            })
            .collect();
        let arrays: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("${}::{}", i + 1, c.array_type))
            .collect();
        let sets: Vec<String> = names
            .iter()
            .filter(|n| **n != "id")
            .map(|n| format!("{n} = excluded.{n}"))
            .collect();
        let upsert = format!(
            "INSERT INTO {table} AS t ({cols}) SELECT {selects} FROM unnest({arrays}) AS u({cols})
             ON CONFLICT (id) DO UPDATE SET {sets}
             WHERE (t.version_created, t.version_rank, t.version_event_id)
                 < (excluded.version_created, excluded.version_rank, excluded.version_event_id)
             RETURNING id",
            cols = names.join(", "),
            selects = selects.join(", "),
            arrays = arrays.join(", "),
            sets = sets.join(", "),
        );
        Table {
            name: table,
            columns,
            upsert,
        }
    }
}

pub(crate) static CARDHOLDERS: LazyLock<Table<CardholderRow>> = LazyLock::new(|| {
    Columns::<CardholderRow>::of("cardholders")
        .column("id", |r| r.id.clone())
        .column("name", |r| r.name.clone())
        .column("email", |r| r.email.clone())
        .column("phone_number", |r| r.phone_number.clone())
        .column("status", |r| r.status.clone())
        .column("kind", |r| r.kind.clone())
        .column("created", |r| r.created)
        .finish()
});

pub(crate) static CARDS: LazyLock<Table<CardRow>> = LazyLock::new(|| {
    Columns::<CardRow>::of("cards")
        .column("id", |r| r.id.clone())
        .column("cardholder_id", |r| r.cardholder_id.clone())
        .column("status", |r| r.status.clone())
        .column("currency", |r| r.currency.clone())
        .column("kind", |r| r.kind.clone())
        .column("brand", |r| r.brand.clone())
        .column("last4", |r| r.last4.clone())
        .column("exp_month", |r| r.exp_month)
        .column("exp_year", |r| r.exp_year)
        .column("created", |r| r.created)
        .finish()
});

pub(crate) static TOKENS: LazyLock<Table<TokenRow>> = LazyLock::new(|| {
    Columns::<TokenRow>::of("tokens")
        .column("id", |r| r.id.clone())
        .column("card_id", |r| r.card_id.clone())
        .column("status", |r| r.status.clone())
        .column("wallet_provider", |r| r.wallet_provider.clone())
        .column("device_type", |r| r.device_type.clone())
        .column("network", |r| r.network.clone())
        .column("last4", |r| r.last4.clone())
        .column("device_fingerprint", |r| r.device_fingerprint.clone())
        .column("network_updated_at", |r| r.network_updated_at)
        .column_as("network_data", "jsonb", |r| r.network_data.clone())
        .column("created", |r| r.created)
        .finish()
});

pub(crate) static DISPUTES: LazyLock<Table<DisputeRow>> = LazyLock::new(|| {
    Columns::<DisputeRow>::of("disputes")
        .column("id", |r| r.id.clone())
        .column("transaction_id", |r| r.transaction_id.clone())
        .column("amount", |r| r.amount)
        .column("currency", |r| r.currency.clone())
        .column("status", |r| r.status.clone())
        .column("reason", |r| r.reason.clone())
        .column("loss_reason", |r| r.loss_reason.clone())
        .column("created", |r| r.created)
        .finish()
});

pub(crate) static AUTHORIZATIONS: LazyLock<Table<AuthorizationRow>> = LazyLock::new(|| {
    Columns::<AuthorizationRow>::of("authorizations")
        .column("id", |r| r.id.clone())
        .column("card_id", |r| r.card_id.clone())
        .column("cardholder_id", |r| r.cardholder_id.clone())
        .column("amount", |r| r.amount)
        .column("requested_amount", |r| r.requested_amount)
        .column("currency", |r| r.currency.clone())
        .column("merchant_amount", |r| r.merchant_amount)
        .column("merchant_currency", |r| r.merchant_currency.clone())
        .column("approved", |r| r.approved)
        .column("status", |r| r.status.clone())
        .column("decline_reason", |r| r.decline_reason.clone())
        .column("cardstream_reason", |r| r.cardstream_reason.clone())
        .merchant(|r| &r.merchant)
        .column("authorization_method", |r| r.authorization_method.clone())
        .column("wallet", |r| r.wallet.clone())
        .column("token_id", |r| r.token_id.clone())
        .column_as("request_history", "jsonb", |r| r.request_history.clone())
        .column_as("verification_data", "jsonb", |r| {
            r.verification_data.clone()
        })
        .column_as("network_data", "jsonb", |r| r.network_data.clone())
        .column("created", |r| r.created)
        .finish()
});

pub(crate) static TRANSACTIONS: LazyLock<Table<TransactionRow>> = LazyLock::new(|| {
    Columns::<TransactionRow>::of("transactions")
        .column("id", |r| r.id.clone())
        .column("card_id", |r| r.card_id.clone())
        .column("cardholder_id", |r| r.cardholder_id.clone())
        .column("authorization_id", |r| r.authorization_id.clone())
        .column("kind", |r| r.kind.clone())
        .column("amount", |r| r.amount)
        .column("currency", |r| r.currency.clone())
        .column("merchant_amount", |r| r.merchant_amount)
        .column("merchant_currency", |r| r.merchant_currency.clone())
        .merchant(|r| &r.merchant)
        .column("dispute_id", |r| r.dispute_id.clone())
        .column("wallet", |r| r.wallet.clone())
        .column("created", |r| r.created)
        .finish()
});

/// Every object table's name and columns as `(name, type stored)`, in order, for the schema
/// check in the tests: the fold must write every column the migrations create.
#[doc(hidden)]
pub fn object_table_columns() -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    fn of<R>(table: &Table<R>) -> (&'static str, Vec<(&'static str, String)>) {
        let columns = table
            .columns
            .iter()
            .map(|c| {
                let stored = c.stored_as.map_or_else(
                    || c.array_type.trim_end_matches("[]").to_owned(),
                    str::to_owned,
                );
                (c.name, stored)
            })
            .collect();
        (table.name, columns)
    }
    let mut disputes = of(&DISPUTES);
    // Written by the fold's own statement for `issuing_dispute.funds_*` events, not the upsert.
    for column in ["funds_reinstated_at", "funds_rescinded_at"] {
        disputes.1.push((column, "int8".to_owned()));
    }
    vec![
        of(&CARDHOLDERS),
        of(&CARDS),
        disputes,
        of(&TOKENS),
        of(&AUTHORIZATIONS),
        of(&TRANSACTIONS),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names between the parentheses that follow `after` in `sql`.
    fn list_after<'a>(sql: &'a str, after: &str) -> Vec<&'a str> {
        let start = sql.find(after).map(|i| i + after.len()).unwrap_or(0);
        let rest = &sql[start..];
        let open = rest.find('(').map_or(0, |i| i + 1);
        let close = rest.find(')').unwrap_or(rest.len());
        rest[open..close].split(',').map(str::trim).collect()
    }

    fn check<R: 'static>(table: &Table<R>) {
        let names: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
        let sql = &table.upsert;
        let placeholders = sql.matches('$').count();
        let arguments = table.arguments(&[]).unwrap();
        assert_eq!(
            (arguments.len(), placeholders),
            (names.len(), names.len()),
            "{}: bound arrays and placeholders against declared columns",
            table.name
        );
        assert_eq!(list_after(sql, " AS t "), names, "{}", table.name);
        assert_eq!(list_after(sql, " AS u"), names, "{}", table.name);
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{}: a column twice", table.name);
        assert_eq!(names.first(), Some(&"id"), "{}", table.name);
        assert_eq!(
            names[names.len() - 3..],
            ["version_created", "version_rank", "version_event_id"],
            "{}",
            table.name
        );
    }

    #[test]
    fn every_table_binds_one_array_per_declared_column_in_order() {
        check(&CARDHOLDERS);
        check(&CARDS);
        check(&DISPUTES);
        check(&AUTHORIZATIONS);
        check(&TRANSACTIONS);
    }

    #[test]
    fn the_cardholders_upsert_reads() {
        let expected = "INSERT INTO cardholders AS t (id, name, email, phone_number, status, kind, \
            created, account, version_created, version_rank, version_event_id) \
            SELECT id, name, email, phone_number, status, kind, created, account, \
            version_created, version_rank, version_event_id \
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
            $7::int8[], $8::text[], $9::int8[], $10::int2[], $11::text[]) \
            AS u(id, name, email, phone_number, status, kind, created, account, version_created, \
            version_rank, version_event_id) \
            ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email, \
            phone_number = excluded.phone_number, status = excluded.status, kind = excluded.kind, \
            created = excluded.created, account = excluded.account, version_created = excluded.version_created, \
            version_rank = excluded.version_rank, version_event_id = excluded.version_event_id \
            WHERE (t.version_created, t.version_rank, t.version_event_id) \
            < (excluded.version_created, excluded.version_rank, excluded.version_event_id) \
            RETURNING id";
        let upsert = CARDHOLDERS
            .upsert
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(upsert, expected);
    }

    #[test]
    fn array_types_follow_the_bound_values() {
        let columns = object_table_columns();
        let authorizations = &columns
            .iter()
            .find(|(name, _)| *name == "authorizations")
            .unwrap()
            .1;
        let ty = |column: &str| {
            authorizations
                .iter()
                .find(|(name, _)| *name == column)
                .map(|(_, ty)| ty.as_str())
        };
        assert_eq!(ty("id"), Some("text"));
        assert_eq!(ty("amount"), Some("int8"));
        assert_eq!(ty("approved"), Some("bool"));
        assert_eq!(ty("request_history"), Some("jsonb"));
        assert_eq!(ty("version_rank"), Some("int2"));
        assert!(
            AUTHORIZATIONS
                .upsert
                .contains("SELECT id, card_id, cardholder_id,")
        );
        assert!(AUTHORIZATIONS.upsert.contains("request_history::jsonb"));
    }
}
