//! The dashboard's objects: cardholders, cards, authorizations, transactions, disputes.

use async_graphql::{Context, Enum, ID, Object, ResultExt, SimpleObject};
use cardstream_store::entities::{authorizations, cardholders, cards, disputes, transactions};

use super::activity::{ActivityFilterInput, AuthorizationConnection, activity_page};
use super::context::{loader, page_cost, page_size, store, viewer};
use super::loaders::{CardholderId, CardsOf, TransactionsOf, load_error};
use super::scalars::{DateTime, Money};
use super::summary::{DateRange, SpendSummary};

#[derive(Clone)]
pub struct Cardholder(pub cardholders::Model);

#[Object]
impl Cardholder {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    /// `active`, `inactive` or `blocked`.
    async fn status(&self) -> &str {
        &self.0.status
    }
    async fn created(&self) -> DateTime {
        DateTime(self.0.created)
    }
    /// The cardholder's cards, oldest first (batched across a page of cardholders).
    #[graphql(complexity = "page_cost(Some(first), child_complexity)")]
    async fn cards(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
    ) -> async_graphql::Result<Vec<Card>> {
        let first = page_size(ctx, first).extend()?;
        let cards = loader(ctx)
            .load_one(CardsOf(self.0.id.clone()))
            .await
            .map_err(load_error)
            .extend()?
            .unwrap_or_default();
        Ok(cards
            .into_iter()
            .take(usize::try_from(first).unwrap_or(usize::MAX))
            .map(Card)
            .collect())
    }
}

#[derive(Clone)]
pub struct Card(pub cards::Model);

#[Object]
impl Card {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn last4(&self) -> Option<&str> {
        self.0.last4.as_deref()
    }
    async fn brand(&self) -> Option<&str> {
        self.0.brand.as_deref()
    }
    /// `active`, `inactive` or `canceled`.
    async fn status(&self) -> &str {
        &self.0.status
    }
    /// The card's currency; its spend is in this currency.
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    /// `virtual` or `physical`.
    async fn kind(&self) -> Option<&str> {
        self.0.kind.as_deref()
    }
    async fn exp_month(&self) -> Option<i32> {
        self.0.exp_month
    }
    async fn exp_year(&self) -> Option<i32> {
        self.0.exp_year
    }
    async fn cardholder(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Cardholder>> {
        let holder = loader(ctx)
            .load_one(CardholderId(self.0.cardholder_id.clone()))
            .await
            .map_err(load_error)
            .extend()?;
        Ok(holder.map(Cardholder))
    }
    /// Spend over a range of days (all time by default) in the card's currency (or another).
    async fn spend_summary(
        &self,
        ctx: &Context<'_>,
        range: Option<DateRange>,
        currency: Option<String>,
    ) -> async_graphql::Result<SpendSummary> {
        SpendSummary::load(ctx, &self.0, range, currency)
            .await
            .extend()
    }
    /// Authorizations, newest first, with their transactions.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn activity(
        &self,
        ctx: &Context<'_>,
        filter: Option<ActivityFilterInput>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<AuthorizationConnection> {
        activity_page(ctx, &self.0.id, filter, first, after)
            .await
            .extend()
    }
}

/// Where a purchase happened.
#[derive(SimpleObject, Clone)]
pub struct Merchant {
    pub name: Option<String>,
    /// One of Stripe's 273 merchant categories, e.g. `grocery_stores_supermarkets`.
    pub category: String,
    pub category_code: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
}

/// Where an authorization stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum Outcome {
    Approved,
    Declined,
    /// The decision is not known yet.
    Pending,
}

/// A decision taken on an authorization (its `request_history`).
#[derive(SimpleObject, Clone)]
pub struct RequestHistoryEntry {
    pub approved: bool,
    /// Stripe's reason: `webhook_approved`, `webhook_declined`, `insufficient_funds`, …
    pub reason: String,
    pub amount: Money,
    pub created: DateTime,
}

#[derive(Clone)]
pub struct Authorization(pub authorizations::Model);

#[Object]
impl Authorization {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn card_id(&self) -> ID {
        ID(self.0.card_id.clone())
    }
    /// What the merchant asked for.
    async fn amount(&self) -> Money {
        Money::new(self.0.requested_amount, &self.0.currency)
    }
    /// What is held on the card now (0 once captured, reversed or declined).
    async fn held_amount(&self) -> Money {
        Money::new(self.0.amount, &self.0.currency)
    }
    async fn approved(&self) -> bool {
        self.0.approved
    }
    async fn outcome(&self) -> Outcome {
        match (self.0.approved, self.0.status.as_str()) {
            (true, _) => Outcome::Approved,
            (false, "pending") => Outcome::Pending,
            (false, _) => Outcome::Declined,
        }
    }
    /// `pending`, `closed`, `reversed` or `expired`.
    async fn status(&self) -> &str {
        &self.0.status
    }
    /// Stripe's reason for the latest decision when it was a decline.
    async fn decline_reason(&self) -> Option<&str> {
        self.0.decline_reason.as_deref()
    }
    /// cardstream's own reason, when cardstream decided (e.g. `category_blocked`).
    async fn cardstream_reason(&self) -> Option<&str> {
        self.0.cardstream_reason.as_deref()
    }
    async fn merchant(&self) -> Merchant {
        Merchant {
            name: self.0.merchant_name.clone(),
            category: self.0.merchant_category.clone(),
            category_code: self.0.merchant_category_code.clone(),
            city: self.0.merchant_city.clone(),
            country: self.0.merchant_country.clone(),
        }
    }
    async fn wallet(&self) -> Option<&str> {
        self.0.wallet.as_deref()
    }
    async fn created(&self) -> DateTime {
        DateTime(self.0.created)
    }
    /// The decisions, oldest first, at most `first` (read from the stored object, no query).
    #[graphql(complexity = "page_cost(Some(first), child_complexity)")]
    async fn request_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
    ) -> async_graphql::Result<Vec<RequestHistoryEntry>> {
        let first = usize::try_from(page_size(ctx, first).extend()?).unwrap_or(usize::MAX);
        Ok(self
            .0
            .request_history
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .take(first)
                    .map(|e| RequestHistoryEntry {
                        approved: e["approved"].as_bool().unwrap_or(false),
                        reason: e["reason"].as_str().unwrap_or_default().to_owned(),
                        amount: Money::new(
                            e["amount"].as_i64().unwrap_or(0),
                            e["currency"].as_str().unwrap_or(&self.0.currency),
                        ),
                        created: DateTime(e["created"].as_i64().unwrap_or(self.0.created)),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
    /// Captures and refunds of this authorization, oldest first, at most `first` (batched
    /// across a page of authorizations).
    #[graphql(complexity = "page_cost(Some(first), child_complexity)")]
    async fn transactions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
    ) -> async_graphql::Result<Vec<Transaction>> {
        let first = usize::try_from(page_size(ctx, first).extend()?).unwrap_or(usize::MAX);
        let rows = loader(ctx)
            .load_one(TransactionsOf(self.0.id.clone()))
            .await
            .map_err(load_error)
            .extend()?;
        Ok(rows
            .unwrap_or_default()
            .into_iter()
            .take(first)
            .map(Transaction)
            .collect())
    }
}

#[derive(Clone)]
pub struct Transaction(pub transactions::Model);

#[Object]
impl Transaction {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// `capture` or `refund`.
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    /// As Stripe reports it: negative for a capture, positive for a refund.
    async fn amount(&self) -> Money {
        Money::new(self.0.amount, &self.0.currency)
    }
    /// What it adds to spend: the opposite of `amount`.
    async fn spend(&self) -> Money {
        Money::new(-self.0.amount, &self.0.currency)
    }
    async fn created(&self) -> DateTime {
        DateTime(self.0.created)
    }
    async fn authorization_id(&self) -> Option<ID> {
        self.0.authorization_id.clone().map(ID)
    }
    async fn merchant(&self) -> Merchant {
        Merchant {
            name: self.0.merchant_name.clone(),
            category: self.0.merchant_category.clone(),
            category_code: None,
            city: self.0.merchant_city.clone(),
            country: self.0.merchant_country.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Dispute(pub disputes::Model, pub String);

#[Object]
impl Dispute {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn transaction_id(&self) -> ID {
        ID(self.0.transaction_id.clone())
    }
    async fn card_id(&self) -> ID {
        ID(self.1.clone())
    }
    async fn amount(&self) -> Money {
        Money::new(self.0.amount, &self.0.currency)
    }
    /// `unsubmitted`, `submitted`, `won`, `lost` or `expired`.
    async fn status(&self) -> &str {
        &self.0.status
    }
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    async fn created(&self) -> DateTime {
        DateTime(self.0.created)
    }
}

/// Checks the viewer may see an authorization, through its card.
pub async fn visible_authorization(
    ctx: &Context<'_>,
    id: &str,
) -> super::errors::ApiResult<Authorization> {
    let viewer = viewer(ctx).await?;
    let auth = store(ctx)
        .authorization(id)
        .await?
        .ok_or(super::errors::ApiError::NotFound("authorization"))?;
    let mine = viewer.is_admin()
        || auth
            .cardholder_id
            .as_deref()
            .is_some_and(|h| viewer.sees_cardholder(h))
        || super::context::visible_card(ctx, &auth.card_id)
            .await
            .is_ok();
    if mine {
        Ok(Authorization(auth))
    } else {
        Err(super::errors::ApiError::NotFound("authorization"))
    }
}
