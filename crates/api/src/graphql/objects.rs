//! The dashboard's objects: cardholders, cards, authorizations, transactions, disputes.

use async_graphql::{Context, Enum, ID, Interface, Object, ResultExt, SimpleObject};
use cardstream_store::entities::{
    authorizations, cardholders, cards, disputes, tokens, transactions,
};

use super::activity::{ActivityFilterInput, AuthorizationConnection, activity_page};
use super::checks::{NetworkData, Verification};
use super::connection::{
    ACTIVITY_PAGE, CARDHOLDER_CARDS_PAGE, Counted, PageArgs, Total, in_memory,
};
use super::context::{connection_cost, loader, page_cost, page_size, store, viewer};
use super::errors::{ApiError, ApiResult};
use super::loaders::{CardholderId, CardsOf, TransactionsOf, load_error};
use super::scalars::{DateTime, Money};
use super::statuses::{
    AuthorizationStatus, CardStatus, CardholderStatus, DisputeStatus, TransactionKind,
};
use super::summary::{DateRangeInput, SpendSummary};

/// An object with a Stripe id, which `node(id:)` finds again (the Relay Global Object
/// Identification convention; Stripe's ids are globally unique by their prefix).
// One value per `node(id:)` answer, moved once: its size does not matter, and the derive wants
// the objects themselves as variants.
#[allow(clippy::large_enum_variant)]
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Stripe's id of the object."))]
pub enum Node {
    Card(Card),
    Cardholder(Cardholder),
    Authorization(Authorization),
    Transaction(Transaction),
    Dispute(Dispute),
}

/// The cards of a cardholder or a viewer, by id.
pub type CardConnection = Counted<String, Card>;
/// Cardholders, by id.
pub type CardholderConnection = Counted<String, Cardholder>;

/// A page of cards held in memory (a cardholder's or a cardholder user's few), by id.
pub fn cards_page(
    ctx: &Context<'_>,
    mut cards: Vec<cards::Model>,
    args: PageArgs,
    default: i32,
) -> ApiResult<CardConnection> {
    let page = args.page::<String>(ctx, default)?;
    cards.sort_by(|a, b| a.id.cmp(&b.id));
    let total = Total::Known(cards.len());
    Ok(in_memory(&page, cards, total, |c| c.id.clone(), Card))
}

/// A Stripe Connect account of the platform, and how much of it cardstream holds.
#[derive(SimpleObject, Clone)]
#[graphql(name = "Account")]
pub struct AccountObject {
    /// Stripe's id (`acct_…`); pass it as `account` to lists to see only this account's.
    pub id: ID,
    pub cards: i64,
    pub cardholders: i64,
}

impl From<cardstream_store::ConnectedAccount> for AccountObject {
    fn from(account: cardstream_store::ConnectedAccount) -> Self {
        AccountObject {
            id: ID(account.id),
            cards: account.cards,
            cardholders: account.cardholders,
        }
    }
}

#[derive(Clone)]
pub struct Cardholder(pub cardholders::Model);

#[Object]
impl Cardholder {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// The Stripe Connect account it belongs to; null for the platform's own.
    async fn account(&self) -> Option<ID> {
        self.0.account.clone().map(ID)
    }
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    async fn status(&self) -> CardholderStatus {
        CardholderStatus::from_stripe(&self.0.status)
    }
    /// The status as Stripe sent it.
    async fn raw_status(&self) -> &str {
        &self.0.status
    }
    async fn created(&self) -> DateTime {
        DateTime(self.0.created)
    }
    /// The cardholder's cards, by id, 10 to a page unless asked (batched across a page of
    /// cardholders).
    #[graphql(complexity = "connection_cost(first, last, CARDHOLDER_CARDS_PAGE, child_complexity)")]
    async fn cards(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<CardConnection> {
        async {
            let cards = loader(ctx)
                .load_one(CardsOf(self.0.id.clone()))
                .await
                .map_err(load_error)?
                .unwrap_or_default();
            cards_page(
                ctx,
                cards,
                PageArgs::new(first, after, last, before),
                CARDHOLDER_CARDS_PAGE,
            )
        }
        .await
        .extend()
    }
}

#[derive(Clone)]
pub struct Card(pub cards::Model);

#[Object]
impl Card {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// The Stripe Connect account it belongs to; null for the platform's own.
    async fn account(&self) -> Option<ID> {
        self.0.account.clone().map(ID)
    }
    async fn last4(&self) -> Option<&str> {
        self.0.last4.as_deref()
    }
    async fn brand(&self) -> Option<&str> {
        self.0.brand.as_deref()
    }
    async fn status(&self) -> CardStatus {
        CardStatus::from_stripe(&self.0.status)
    }
    /// The status as Stripe sent it.
    async fn raw_status(&self) -> &str {
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
    /// The card in digital wallets (Apple Pay, Google Pay, Samsung Pay): one token per device,
    /// newest first.
    #[graphql(complexity = 10)]
    async fn tokens(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<WalletToken>> {
        let tokens = store(ctx)
            .tokens_of(&self.0.id)
            .await
            .map_err(ApiError::from)
            .extend()?;
        Ok(tokens.into_iter().map(WalletToken).collect())
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
        range: Option<DateRangeInput>,
        currency: Option<String>,
    ) -> async_graphql::Result<SpendSummary> {
        SpendSummary::load(ctx, &self.0, range, currency)
            .await
            .extend()
    }
    /// Authorizations, newest first, with their transactions.
    #[graphql(complexity = "connection_cost(first, last, ACTIVITY_PAGE, child_complexity)")]
    async fn activity(
        &self,
        ctx: &Context<'_>,
        filter: Option<ActivityFilterInput>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<AuthorizationConnection> {
        let args = PageArgs::new(first, after, last, before);
        activity_page(ctx, &self.0.id, filter, args).await.extend()
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
    /// What the merchant asked for in its own currency, when Stripe said; for a purchase
    /// abroad it differs from `amount` (e.g. €12.00 asked, $13.05 on the card).
    async fn merchant_amount(&self) -> Option<Money> {
        let amount = self.0.merchant_amount?;
        Some(Money::new(amount, self.0.merchant_currency.as_deref()?))
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
    async fn status(&self) -> AuthorizationStatus {
        AuthorizationStatus::from_stripe(&self.0.status)
    }
    /// The status as Stripe sent it.
    async fn raw_status(&self) -> &str {
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
    /// The wallet token the purchase was made with (one of the card's `tokens`).
    async fn token_id(&self) -> Option<ID> {
        self.0.token_id.clone().map(ID)
    }
    async fn created(&self) -> DateTime {
        DateTime(self.0.created)
    }
    /// The checks Stripe made of the card's details; null when Stripe sent none.
    async fn verification(&self) -> Option<Verification> {
        Verification::from_raw(self.0.verification_data.as_ref())
    }
    /// The card network's references; null when Stripe sent none.
    async fn network_data(&self) -> Option<NetworkData> {
        NetworkData::from_raw(self.0.network_data.as_ref())
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
    /// The dispute opened on this transaction, if any (Stripe allows one).
    #[graphql(complexity = 10)]
    async fn dispute(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Dispute>> {
        let found = store(ctx)
            .dispute_of_transaction(&self.0.id)
            .await
            .map_err(ApiError::from)
            .extend()?;
        Ok(found.map(|(dispute, card)| Dispute(dispute, card)))
    }
    async fn kind(&self) -> TransactionKind {
        TransactionKind::from_stripe(&self.0.kind)
    }
    /// The kind (Stripe's `type`) as Stripe sent it.
    async fn raw_kind(&self) -> &str {
        &self.0.kind
    }
    async fn card_id(&self) -> ID {
        ID(self.0.card_id.clone())
    }
    /// As Stripe reports it: negative for a capture, positive for a refund.
    async fn amount(&self) -> Money {
        Money::new(self.0.amount, &self.0.currency)
    }
    /// `amount` in the merchant's currency, when Stripe said (signed like `amount`).
    async fn merchant_amount(&self) -> Option<Money> {
        let amount = self.0.merchant_amount?;
        Some(Money::new(amount, self.0.merchant_currency.as_deref()?))
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
    async fn status(&self) -> DisputeStatus {
        DisputeStatus::from_stripe(&self.0.status)
    }
    /// The status as Stripe sent it.
    async fn raw_status(&self) -> &str {
        &self.0.status
    }
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    /// Why a lost dispute was lost, as Stripe says it (`evidence_not_sufficient`, …).
    async fn loss_reason(&self) -> Option<&str> {
        self.0.loss_reason.as_deref()
    }
    async fn created(&self) -> DateTime {
        DateTime(self.0.created)
    }
    /// When Stripe returned the disputed amount to the program's Issuing balance (a won
    /// dispute). The card's spend does not change: see the README's "Disputes".
    async fn funds_reinstated_at(&self) -> Option<DateTime> {
        self.0.funds_reinstated_at.map(DateTime)
    }
    /// When Stripe took funds back over this dispute.
    async fn funds_rescinded_at(&self) -> Option<DateTime> {
        self.0.funds_rescinded_at.map(DateTime)
    }
}

/// A card added to a digital wallet (`issuing.token`).
#[derive(Clone)]
pub struct WalletToken(pub tokens::Model);

#[Object]
impl WalletToken {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// `apple_pay`, `google_pay`, `samsung_pay`, as Stripe says it.
    async fn wallet_provider(&self) -> Option<&str> {
        self.0.wallet_provider.as_deref()
    }
    /// `requested`, `active`, `suspended`, `deleted`, as Stripe says it.
    async fn raw_status(&self) -> &str {
        &self.0.status
    }
    /// `phone`, `watch`, `other`: the network's `device.type`.
    async fn device_type(&self) -> Option<&str> {
        self.0.device_type.as_deref()
    }
    /// `visa` or `mastercard`.
    async fn network(&self) -> Option<&str> {
        self.0.network.as_deref()
    }
    /// The last four digits of the token (not of the card).
    async fn last4(&self) -> Option<&str> {
        self.0.last4.as_deref()
    }
    async fn created(&self) -> DateTime {
        DateTime(self.0.created)
    }
    /// When the network last changed it.
    async fn network_updated_at(&self) -> Option<DateTime> {
        self.0.network_updated_at.map(DateTime)
    }
}

/// Checks the viewer may see an authorization, through its card.
pub async fn visible_authorization(ctx: &Context<'_>, id: &str) -> ApiResult<Authorization> {
    let viewer = viewer(ctx).await?;
    let auth = store(ctx)
        .authorization(id)
        .await?
        .ok_or(ApiError::NotFound("authorization"))?;
    let mine = viewer.sees_account(auth.account.as_deref())
        && (viewer.is_admin()
            || auth
                .cardholder_id
                .as_deref()
                .is_some_and(|h| viewer.sees_cardholder(h))
            || super::context::visible_card(ctx, &auth.card_id)
                .await
                .is_ok());
    if mine {
        Ok(Authorization(auth))
    } else {
        Err(ApiError::NotFound("authorization"))
    }
}

/// Finds any Stripe-identified object the viewer may see by its id, or NOT_FOUND.
pub async fn visible_node(ctx: &Context<'_>, id: &str) -> ApiResult<Node> {
    use super::context::visible_card;
    // Signed in first: an anonymous request is UNAUTHENTICATED whatever the id.
    let viewer = viewer(ctx).await?;
    let prefix = id.split_once('_').map_or("", |(p, _)| p);
    match prefix {
        "ic" => Ok(Node::Card(Card(visible_card(ctx, id).await?))),
        "ich" => {
            if !viewer.sees_cardholder(id) {
                return Err(ApiError::NotFound("cardholder"));
            }
            let holder = loader(ctx)
                .load_one(CardholderId(id.to_owned()))
                .await
                .map_err(load_error)?
                .ok_or(ApiError::NotFound("cardholder"))?;
            if !viewer.sees_account(holder.account.as_deref()) {
                return Err(ApiError::NotFound("cardholder"));
            }
            Ok(Node::Cardholder(Cardholder(holder)))
        }
        "iauth" => Ok(Node::Authorization(visible_authorization(ctx, id).await?)),
        "ipi" => {
            let transaction = store(ctx)
                .transaction(id)
                .await?
                .ok_or(ApiError::NotFound("transaction"))?;
            visible_card(ctx, &transaction.card_id).await?;
            Ok(Node::Transaction(Transaction(transaction)))
        }
        "idp" => {
            let (dispute, card) = store(ctx)
                .dispute(id)
                .await?
                .ok_or(ApiError::NotFound("dispute"))?;
            visible_card(ctx, &card).await?;
            Ok(Node::Dispute(Dispute(dispute, card)))
        }
        _ => Err(ApiError::NotFound("object")),
    }
}
