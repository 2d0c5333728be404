//! What the dashboard reads: cards, a card's activity page by page, its spend from the
//! rollups. Everything goes through sea-orm (and so through its statement counter).

use sea_orm::sea_query::{Expr, Func, LikeExpr};
use sea_orm::{
    ColumnTrait, Condition, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Statement, Value,
};

use crate::entities::{authorizations, cardholders, cards, disputes, transactions};
use crate::{Error, Store};

fn db(err: sea_orm::DbErr) -> Error {
    Error::Orm(err)
}

/// Which authorizations to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActivityStatus {
    Approved,
    /// Declined, by Stripe or by the gateway.
    Declined,
    /// Still waiting for a decision.
    Pending,
}

/// Filters on a card's activity. Amounts are in minor units of the card's currency; times
/// are unix seconds, `to` exclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ActivityFilter {
    pub status: Option<ActivityStatus>,
    pub category: Option<String>,
    /// Case-insensitive substring of the merchant's name.
    pub merchant: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub min_amount: Option<i64>,
    pub max_amount: Option<i64>,
}

/// A position in a card's activity: the last row seen, in (created, id) descending order.
/// Rows arriving later sort before it, so paging on never repeats or skips a row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor {
    pub created: i64,
    pub id: String,
}

/// Spend totals of a card over a range of days, in one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, FromQueryResult)]
pub struct SpendTotals {
    pub spend: i64,
    pub captured: i64,
    pub refunded: i64,
    pub captures: i64,
    pub refunds: i64,
    pub approved: i64,
    pub declined: i64,
}

/// Spend under one key (a category, a merchant).
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct KeyedSpend {
    pub key: String,
    pub spend: i64,
    pub captures: i64,
}

/// The width of a time-series bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeriesBucket {
    Day,
    Week,
    Month,
}

impl SeriesBucket {
    pub(crate) fn unit(&self) -> &'static str {
        match self {
            SeriesBucket::Day => "day",
            SeriesBucket::Week => "week",
            SeriesBucket::Month => "month",
        }
    }
}

/// One bucket of a spend time series; `day` is the bucket's first day (days since 1970-01-01).
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct SpendPoint {
    pub day: i32,
    pub spend: i64,
    pub captures: i64,
}

/// Escapes `%`, `_` and `\` so user text matches literally in LIKE.
fn like_literal(text: &str) -> String {
    text.chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

/// The conditions of an activity page, whatever card it is for.
fn activity_condition(filter: &ActivityFilter, after: Option<&Cursor>) -> Condition {
    use authorizations::Column as C;
    let mut condition = Condition::all();
    condition = match filter.status {
        Some(ActivityStatus::Approved) => condition.add(C::Approved.eq(true)),
        Some(ActivityStatus::Declined) => condition
            .add(C::Approved.eq(false))
            .add(C::Status.ne("pending")),
        Some(ActivityStatus::Pending) => condition
            .add(C::Approved.eq(false))
            .add(C::Status.eq("pending")),
        None => condition,
    };
    if let Some(category) = &filter.category {
        condition = condition.add(C::MerchantCategory.eq(category.as_str()));
    }
    if let Some(text) = filter
        .merchant
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let pattern = format!("%{}%", like_literal(&text.to_lowercase()));
        condition = condition.add(
            Expr::expr(Func::lower(Expr::col(C::MerchantName)))
                .like(LikeExpr::new(pattern).escape('\\')),
        );
    }
    if let Some(from) = filter.from {
        condition = condition.add(C::Created.gte(from));
    }
    if let Some(to) = filter.to {
        condition = condition.add(C::Created.lt(to));
    }
    if let Some(min) = filter.min_amount {
        condition = condition.add(C::RequestedAmount.gte(min));
    }
    if let Some(max) = filter.max_amount {
        condition = condition.add(C::RequestedAmount.lte(max));
    }
    if let Some(cursor) = after {
        condition = condition.add(
            Condition::any().add(C::Created.lt(cursor.created)).add(
                Condition::all()
                    .add(C::Created.eq(cursor.created))
                    .add(C::Id.lt(cursor.id.as_str())),
            ),
        );
    }
    condition
}

impl Store {
    pub async fn cards_by_ids(&self, ids: &[String]) -> Result<Vec<cards::Model>, Error> {
        cards::Entity::find()
            .filter(cards::Column::Id.is_in(ids.iter().cloned()))
            .all(self.orm())
            .await
            .map_err(db)
    }

    /// Cards of the given cardholders, oldest first.
    pub async fn cards_of(&self, cardholder_ids: &[String]) -> Result<Vec<cards::Model>, Error> {
        cards::Entity::find()
            .filter(cards::Column::CardholderId.is_in(cardholder_ids.iter().cloned()))
            .order_by_asc(cards::Column::Created)
            .order_by_asc(cards::Column::Id)
            .all(self.orm())
            .await
            .map_err(db)
    }

    /// A page of all cards (for admins), by id.
    pub async fn all_cards(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<cards::Model>, Error> {
        let mut query = cards::Entity::find()
            .order_by_asc(cards::Column::Id)
            .limit(limit);
        if let Some(after) = after {
            query = query.filter(cards::Column::Id.gt(after));
        }
        query.all(self.orm()).await.map_err(db)
    }

    pub async fn cardholders_by_ids(
        &self,
        ids: &[String],
    ) -> Result<Vec<cardholders::Model>, Error> {
        cardholders::Entity::find()
            .filter(cardholders::Column::Id.is_in(ids.iter().cloned()))
            .all(self.orm())
            .await
            .map_err(db)
    }

    /// A page of all cardholders (for admins), by id.
    pub async fn all_cardholders(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<cardholders::Model>, Error> {
        let mut query = cardholders::Entity::find()
            .order_by_asc(cardholders::Column::Id)
            .limit(limit);
        if let Some(after) = after {
            query = query.filter(cardholders::Column::Id.gt(after));
        }
        query.all(self.orm()).await.map_err(db)
    }

    pub async fn authorization(&self, id: &str) -> Result<Option<authorizations::Model>, Error> {
        authorizations::Entity::find_by_id(id.to_owned())
            .one(self.orm())
            .await
            .map_err(db)
    }

    /// Up to `limit` authorizations of `card_id` after `after`, newest first.
    pub async fn activity(
        &self,
        card_id: &str,
        filter: &ActivityFilter,
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<authorizations::Model>, Error> {
        authorizations::Entity::find()
            .filter(
                activity_condition(filter, after).add(authorizations::Column::CardId.eq(card_id)),
            )
            .order_by_desc(authorizations::Column::Created)
            .order_by_desc(authorizations::Column::Id)
            .limit(limit)
            .all(self.orm())
            .await
            .map_err(db)
    }

    /// The same page for each of several cards, in one statement: a lateral join runs the
    /// card's own indexed page query once per card. Rows come back grouped by card.
    pub async fn activity_of_cards(
        &self,
        card_ids: &[String],
        filter: &ActivityFilter,
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<authorizations::Model>, Error> {
        use sea_orm::QueryTrait;
        let page = authorizations::Entity::find()
            .filter(
                activity_condition(filter, after).add(
                    Expr::col((authorizations::Entity, authorizations::Column::CardId))
                        .equals(("wanted", "id")),
                ),
            )
            .order_by_desc(authorizations::Column::Created)
            .order_by_desc(authorizations::Column::Id)
            .limit(limit)
            .build(DbBackend::Postgres);
        let mut values = page.values.map(|v| v.0).unwrap_or_default();
        values.push(Value::from(card_ids.to_vec()));
        let sql = format!(
            "SELECT page.* FROM unnest(${}::text[]) AS wanted(id) CROSS JOIN LATERAL ({}) AS page",
            values.len(),
            page.sql
        );
        authorizations::Model::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .all(self.orm())
        .await
        .map_err(db)
    }

    /// The transactions of the given authorizations, oldest first: one statement for a page.
    pub async fn transactions_of(
        &self,
        authorization_ids: &[String],
    ) -> Result<Vec<transactions::Model>, Error> {
        transactions::Entity::find()
            .filter(transactions::Column::AuthorizationId.is_in(authorization_ids.iter().cloned()))
            .order_by_asc(transactions::Column::Created)
            .order_by_asc(transactions::Column::Id)
            .all(self.orm())
            .await
            .map_err(db)
    }

    /// Disputes on transactions of the given cards, newest first, at most `limit`.
    pub async fn disputes_of(
        &self,
        card_ids: &[String],
        limit: u64,
    ) -> Result<Vec<(disputes::Model, String)>, Error> {
        #[derive(FromQueryResult)]
        struct Row {
            id: String,
            transaction_id: String,
            amount: i64,
            currency: String,
            status: String,
            reason: Option<String>,
            created: i64,
            card_id: String,
        }
        let rows = Row::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT d.id, d.transaction_id, d.amount, d.currency, d.status, d.reason, d.created, t.card_id
             FROM disputes d JOIN transactions t ON t.id = d.transaction_id
             WHERE t.card_id = ANY($1) ORDER BY d.created DESC, d.id DESC LIMIT $2",
            [
                Value::from(card_ids.to_vec()),
                Value::from(i64::try_from(limit).unwrap_or(i64::MAX)),
            ],
        ))
        .all(self.orm())
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let dispute = disputes::Model {
                    id: r.id,
                    transaction_id: r.transaction_id,
                    amount: r.amount,
                    currency: r.currency,
                    status: r.status,
                    reason: r.reason,
                    created: r.created,
                };
                (dispute, r.card_id)
            })
            .collect())
    }
}

/// What spend is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpendKey {
    Category,
    Merchant,
}
