//! What the dashboard reads: cards, a card's activity page by page, its spend from the
//! rollups. Everything goes through sea-orm (and so through its statement counter).

use sea_orm::sea_query::{Expr, Func, LikeExpr};
use sea_orm::{
    ColumnTrait, Condition, DbBackend, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, Value,
};

use crate::entities::{authorizations, cardholders, cards, disputes, tokens, transactions};
use crate::paging::{Direction, Page};
use crate::{Accounts, Error, Store};

pub(crate) fn db(err: sea_orm::DbErr) -> Error {
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

/// A position in a list ordered newest first by (created, id): a card's activity, disputes.
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
fn activity_condition(filter: &ActivityFilter, from: Option<&Cursor>, way: Direction) -> Condition {
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
    if let Some(cursor) = from {
        condition = condition.add(beyond(C::Created, C::Id, cursor, way));
    }
    condition
}

/// Rows past `cursor` in a newest-first list: older ones going forward, newer ones backward.
fn beyond<Col: ColumnTrait>(created: Col, id: Col, cursor: &Cursor, way: Direction) -> Condition {
    let (time, tie) = match way {
        Direction::Forward => (created.lt(cursor.created), id.lt(cursor.id.as_str())),
        Direction::Backward => (created.gt(cursor.created), id.gt(cursor.id.as_str())),
    };
    Condition::any()
        .add(time)
        .add(Condition::all().add(created.eq(cursor.created)).add(tie))
}

/// Newest first going forward; oldest first going backward (the page is then reversed).
fn newest_first(way: Direction) -> sea_orm::Order {
    match way {
        Direction::Forward => sea_orm::Order::Desc,
        Direction::Backward => sea_orm::Order::Asc,
    }
}

/// Ascending going forward; descending going backward (the page is then reversed).
fn ascending(way: Direction) -> sea_orm::Order {
    match way {
        Direction::Forward => sea_orm::Order::Asc,
        Direction::Backward => sea_orm::Order::Desc,
    }
}

/// A text key past `from` in ascending order, whichever way the page goes.
fn past<Col: ColumnTrait>(
    column: Col,
    from: &str,
    way: Direction,
) -> sea_orm::sea_query::SimpleExpr {
    match way {
        Direction::Forward => column.gt(from),
        Direction::Backward => column.lt(from),
    }
}

impl Store {
    pub async fn cards_by_ids(&self, ids: &[String]) -> Result<Vec<cards::Model>, Error> {
        cards::Entity::find()
            .filter(cards::Column::Id.is_in(ids.iter().cloned()))
            .all(self.orm())
            .await
            .map_err(db)
    }

    /// A card's wallet tokens, newest first (a card has a handful: one per device).
    pub async fn tokens_of(&self, card_id: &str) -> Result<Vec<tokens::Model>, Error> {
        tokens::Entity::find()
            .filter(tokens::Column::CardId.eq(card_id))
            .order_by_desc(tokens::Column::Created)
            .order_by_asc(tokens::Column::Id)
            .limit(100)
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

    /// A page of the cards of `accounts` (for admins), by id.
    pub async fn all_cards(
        &self,
        page: &Page<String>,
        accounts: &Accounts,
    ) -> Result<Vec<cards::Model>, Error> {
        let mut query = cards::Entity::find()
            .filter(accounts.condition(cards::Column::Account))
            .order_by(cards::Column::Id, ascending(page.direction))
            .limit(page.limit);
        if let Some(from) = &page.from {
            query = query.filter(past(cards::Column::Id, from, page.direction));
        }
        Ok(page.in_list_order(query.all(self.orm()).await.map_err(db)?))
    }

    /// How many cards `accounts` have (an admin's `totalCount`).
    pub async fn count_cards(&self, accounts: &Accounts) -> Result<u64, Error> {
        cards::Entity::find()
            .filter(accounts.condition(cards::Column::Account))
            .count(self.orm())
            .await
            .map_err(db)
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

    /// A page of the cardholders of `accounts` (for admins), by id.
    pub async fn all_cardholders(
        &self,
        page: &Page<String>,
        accounts: &Accounts,
    ) -> Result<Vec<cardholders::Model>, Error> {
        let mut query = cardholders::Entity::find()
            .filter(accounts.condition(cardholders::Column::Account))
            .order_by(cardholders::Column::Id, ascending(page.direction))
            .limit(page.limit);
        if let Some(from) = &page.from {
            query = query.filter(past(cardholders::Column::Id, from, page.direction));
        }
        Ok(page.in_list_order(query.all(self.orm()).await.map_err(db)?))
    }

    /// How many cardholders `accounts` have (an admin's `totalCount`).
    pub async fn count_cardholders(&self, accounts: &Accounts) -> Result<u64, Error> {
        cardholders::Entity::find()
            .filter(accounts.condition(cardholders::Column::Account))
            .count(self.orm())
            .await
            .map_err(db)
    }

    pub async fn transaction(&self, id: &str) -> Result<Option<transactions::Model>, Error> {
        transactions::Entity::find_by_id(id.to_owned())
            .one(self.orm())
            .await
            .map_err(db)
    }

    pub async fn authorization(&self, id: &str) -> Result<Option<authorizations::Model>, Error> {
        authorizations::Entity::find_by_id(id.to_owned())
            .one(self.orm())
            .await
            .map_err(db)
    }

    /// A page of the authorizations of `card_id`, newest first.
    pub async fn activity(
        &self,
        card_id: &str,
        filter: &ActivityFilter,
        page: &Page<Cursor>,
    ) -> Result<Vec<authorizations::Model>, Error> {
        let of_card = Condition::all().add(authorizations::Column::CardId.eq(card_id));
        self.authorizations_page(of_card, filter, page).await
    }

    /// A page of the whole program's authorizations (of `accounts`), newest first: the admin
    /// overview's live feed.
    pub async fn program_activity(
        &self,
        accounts: &Accounts,
        filter: &ActivityFilter,
        page: &Page<Cursor>,
    ) -> Result<Vec<authorizations::Model>, Error> {
        let of_accounts = accounts.condition(authorizations::Column::Account);
        self.authorizations_page(of_accounts, filter, page).await
    }

    /// A page of the authorizations `scope` and `filter` select, newest first.
    async fn authorizations_page(
        &self,
        scope: Condition,
        filter: &ActivityFilter,
        page: &Page<Cursor>,
    ) -> Result<Vec<authorizations::Model>, Error> {
        let order = newest_first(page.direction);
        let rows = authorizations::Entity::find()
            .filter(activity_condition(filter, page.from.as_ref(), page.direction).add(scope))
            .order_by(authorizations::Column::Created, order.clone())
            .order_by(authorizations::Column::Id, order)
            .limit(page.limit)
            .all(self.orm())
            .await
            .map_err(db)?;
        Ok(page.in_list_order(rows))
    }

    /// The same page for each of several cards, in one statement: a lateral join runs the
    /// card's own indexed page query once per card. Rows come back grouped by card, each
    /// card's in the list's order.
    pub async fn activity_of_cards(
        &self,
        card_ids: &[String],
        filter: &ActivityFilter,
        page: &Page<Cursor>,
    ) -> Result<Vec<authorizations::Model>, Error> {
        use sea_orm::QueryTrait;
        let order = newest_first(page.direction);
        let statement = authorizations::Entity::find()
            .filter(
                activity_condition(filter, page.from.as_ref(), page.direction).add(
                    Expr::col((authorizations::Entity, authorizations::Column::CardId))
                        .equals(("wanted", "id")),
                ),
            )
            .order_by(authorizations::Column::Created, order.clone())
            .order_by(authorizations::Column::Id, order)
            .limit(page.limit)
            .build(DbBackend::Postgres);
        let mut values = statement.values.map(|v| v.0).unwrap_or_default();
        values.push(Value::from(card_ids.to_vec()));
        // Grouped by card and, within a card, in the page's read order, by an explicit ORDER BY
        // (a join's output order is not guaranteed otherwise).
        let way = match page.direction {
            Direction::Forward => "DESC",
            Direction::Backward => "ASC",
        };
        let sql = format!(
            "SELECT page.* FROM unnest(${}::text[]) WITH ORDINALITY AS wanted(id, n)
             CROSS JOIN LATERAL ({}) AS page
             ORDER BY wanted.n, page.created {way}, page.id {way}",
            values.len(),
            statement.sql
        );
        let rows = authorizations::Model::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .all(self.orm())
        .await
        .map_err(db)?;
        // Reversing the whole list reverses each card's run (and the order of the runs).
        Ok(page.in_list_order(rows))
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

    /// A page of the disputes on transactions of the given cards, newest first, each with its
    /// card.
    pub async fn disputes_of(
        &self,
        card_ids: &[String],
        page: &Page<Cursor>,
    ) -> Result<Vec<(disputes::Model, String)>, Error> {
        self.disputes_where("t.card_id = ANY($1)", Value::from(card_ids.to_vec()), page)
            .await
    }

    /// The dispute on a transaction (Stripe allows one), with its card.
    pub async fn dispute_of_transaction(
        &self,
        transaction_id: &str,
    ) -> Result<Option<(disputes::Model, String)>, Error> {
        Ok(self
            .disputes_where(
                "d.transaction_id = $1",
                Value::from(transaction_id),
                &Page::first(1),
            )
            .await?
            .pop())
    }

    /// One dispute, with its card.
    pub async fn dispute(&self, id: &str) -> Result<Option<(disputes::Model, String)>, Error> {
        let rows = self
            .disputes_where("d.id = $1", Value::from(id), &Page::first(1))
            .await?;
        Ok(rows.into_iter().next())
    }

    async fn disputes_where(
        &self,
        condition: &str,
        value: Value,
        page: &Page<Cursor>,
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
            account: Option<String>,
            loss_reason: Option<String>,
            funds_reinstated_at: Option<i64>,
            funds_rescinded_at: Option<i64>,
            card_id: String,
        }
        // The cursor's comparison and the order flip for a backward page; its values are bound.
        let (seek, order) = match page.direction {
            Direction::Forward => ("(d.created, d.id) < ($3, $4)", "DESC"),
            Direction::Backward => ("(d.created, d.id) > ($3, $4)", "ASC"),
        };
        let (created, id) = match &page.from {
            Some(c) => (Some(c.created), Some(c.id.clone())),
            None => (None, None),
        };
        let sql = format!(
            "SELECT d.id, d.transaction_id, d.amount, d.currency, d.status, d.reason, d.created, d.account,
                    d.loss_reason, d.funds_reinstated_at, d.funds_rescinded_at, t.card_id
             FROM disputes d JOIN transactions t ON t.id = d.transaction_id
             WHERE {condition} AND ($3::bigint IS NULL OR {seek})
             ORDER BY d.created {order}, d.id {order} LIMIT $2"
        );
        let rows = Row::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [
                value,
                Value::from(i64::try_from(page.limit).unwrap_or(i64::MAX)),
                Value::from(created),
                Value::from(id),
            ],
        ))
        .all(self.orm())
        .await
        .map_err(db)?;
        let rows = rows
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
                    account: r.account,
                    loss_reason: r.loss_reason,
                    funds_reinstated_at: r.funds_reinstated_at,
                    funds_rescinded_at: r.funds_rescinded_at,
                };
                (dispute, r.card_id)
            })
            .collect();
        Ok(page.in_list_order(rows))
    }
}

/// What spend is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpendKey {
    Category,
    Merchant,
}
