//! The query root. Every resolver starts from the viewer: a cardholder user reaches only the
//! cards of the cardholders linked to them; anything else is NOT_FOUND (admins see all). Every
//! list that can grow is a connection with a page size with a maximum, and costs its page size
//! times its children.

use async_graphql::{Context, ID, Object, ResultExt};
use cardstream_policy::StoredPolicy;
use cardstream_store::{Accounts, Cursor};

use super::audit::{AuditEntryObject, audit_log};
use super::connection::{Counted, DEFAULT_PAGE, PageArgs, Total, Uncounted, connection};
use super::context::{admin, connection_cost, platform_admin, store, viewer, visible_card};
use super::dead_letters::{DeadLetterObject, dead_letters};
use super::errors::{ApiError, ApiResult};
use super::events::{EventEntry, EventSearch, events};
use super::health::{PipelineHealth, pipeline_health};
use super::loaders::CountOf;
use super::objects::{
    AccountObject, Authorization, Card, CardConnection, Cardholder, CardholderConnection, Dispute,
    Node, cards_page, visible_authorization, visible_node,
};
use super::policy::PolicyObject;
use super::program::ProgramSummary;
use super::summary::DateRangeInput;
use super::users::{Invitation, InvitationPreview, UserObject, users_page};

pub struct Query;

/// The signed-in user and what they may see.
pub struct Viewer;

/// Disputes, newest first.
pub type DisputeConnection = Uncounted<Cursor, Dispute>;
/// Invitations and password resets, newest first.
pub type InvitationConnection = Uncounted<i64, Invitation>;

/// The accounts a list covers: the viewer's, narrowed to `account` when one is asked for;
/// NOT_FOUND for an account the viewer may not see (as for any object not theirs).
async fn scope(ctx: &Context<'_>, account: Option<&ID>) -> ApiResult<Accounts> {
    viewer(ctx)
        .await?
        .scope_to(account.map(|a| a.as_str()))
        .ok_or(ApiError::NotFound("account"))
}

/// The viewer's cards in `accounts`: every card for an admin (a page read from the store), a
/// cardholder user's few cards paged in memory; by id either way.
async fn viewer_cards(
    ctx: &Context<'_>,
    args: PageArgs,
    account: Option<ID>,
) -> ApiResult<CardConnection> {
    let viewer = viewer(ctx).await?;
    let accounts = scope(ctx, account.as_ref()).await?;
    let store = store(ctx);
    if viewer.is_admin() {
        let page = args.page::<String>(ctx, DEFAULT_PAGE)?;
        let rows = store.all_cards(&page.clone().widened(1), &accounts).await?;
        Ok(connection(
            &page,
            rows,
            Total::All(CountOf::Cards(accounts)),
            |c| c.id.clone(),
            Card,
        ))
    } else {
        let ids: Vec<String> = viewer.cardholders.iter().cloned().collect();
        let mut cards = store.cards_of(&ids).await?;
        cards.retain(|c| accounts.covers(c.account.as_deref()));
        cards_page(ctx, cards, args, DEFAULT_PAGE)
    }
}

/// The ids of the viewer's first `how_many` cards in `accounts` (by id), for lists that span
/// them. An internal page: not bound by the largest page a client may ask for.
async fn some_viewer_cards(
    ctx: &Context<'_>,
    how_many: u64,
    accounts: &Accounts,
) -> ApiResult<Vec<String>> {
    let viewer = viewer(ctx).await?;
    let store = store(ctx);
    let mut ids: Vec<String> = if viewer.is_admin() {
        store
            .all_cards(&cardstream_store::Page::first(how_many), accounts)
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect()
    } else {
        let holders: Vec<String> = viewer.cardholders.iter().cloned().collect();
        store
            .cards_of(&holders)
            .await?
            .into_iter()
            .filter(|c| accounts.covers(c.account.as_deref()))
            .map(|c| c.id)
            .collect()
    };
    ids.sort_unstable();
    ids.truncate(usize::try_from(how_many).unwrap_or(usize::MAX));
    Ok(ids)
}

#[Object]
impl Viewer {
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<UserObject> {
        let viewer = viewer(ctx).await.extend()?;
        Ok(
            UserObject::new(&viewer.user, viewer.cardholders.iter().cloned())
                .with_accounts(viewer.accounts.iter().cloned()),
        )
    }

    /// The cardholders this user sees, by id (for admins: none listed here; see
    /// `cardholders`).
    #[graphql(complexity = "connection_cost(first, last, DEFAULT_PAGE, child_complexity)")]
    async fn cardholders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<CardholderConnection> {
        async {
            let page =
                PageArgs::new(first, after, last, before).page::<String>(ctx, DEFAULT_PAGE)?;
            let viewer = viewer(ctx).await?;
            let ids: Vec<String> = viewer.cardholders.iter().cloned().collect();
            let mut holders = store(ctx).cardholders_by_ids(&ids).await?;
            holders.retain(|h| viewer.sees_account(h.account.as_deref()));
            holders.sort_by(|a, b| a.id.cmp(&b.id));
            let total = Total::Known(holders.len());
            Ok::<_, ApiError>(super::connection::in_memory(
                &page,
                holders,
                total,
                |h| h.id.clone(),
                Cardholder,
            ))
        }
        .await
        .extend()
    }

    /// Their cards, by id (for admins: all cards of their accounts); with `account`, only
    /// that Connect account's.
    #[graphql(complexity = "connection_cost(first, last, DEFAULT_PAGE, child_complexity)")]
    async fn cards(
        &self,
        ctx: &Context<'_>,
        account: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<CardConnection> {
        viewer_cards(ctx, PageArgs::new(first, after, last, before), account)
            .await
            .extend()
    }
}

#[Object]
impl Query {
    /// Who is signed in.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Viewer> {
        viewer(ctx).await.extend()?;
        Ok(Viewer)
    }

    /// Any card, cardholder, authorization, transaction or dispute the viewer may see, by its
    /// Stripe id; null when there is none (or it is not theirs to see).
    async fn node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Node>> {
        match visible_node(ctx, &id).await {
            Ok(node) => Ok(Some(node)),
            Err(ApiError::NotFound(_)) => Ok(None),
            Err(e) => Err(e).extend(),
        }
    }

    /// The viewer's cards, by id (for admins: all cards of their accounts); with `account`,
    /// only that Connect account's.
    #[graphql(complexity = "connection_cost(first, last, DEFAULT_PAGE, child_complexity)")]
    async fn cards(
        &self,
        ctx: &Context<'_>,
        account: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<CardConnection> {
        viewer_cards(ctx, PageArgs::new(first, after, last, before), account)
            .await
            .extend()
    }

    /// The Stripe Connect accounts the viewer may pick, by id: for a platform admin every
    /// connected account with cards or cardholders, for a user limited to accounts those.
    /// The platform's own account is not listed (its rows have no `account`).
    async fn accounts(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AccountObject>> {
        async {
            let viewer = viewer(ctx).await?;
            let accounts = store(ctx).connected_accounts(&viewer.scope()).await?;
            Ok::<_, ApiError>(accounts.into_iter().map(AccountObject::from).collect())
        }
        .await
        .extend()
    }

    /// A card the viewer may see.
    async fn card(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Card> {
        visible_card(ctx, &id).await.map(Card).extend()
    }

    /// An authorization, with its request history and transactions.
    async fn authorization(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Authorization> {
        visible_authorization(ctx, &id).await.extend()
    }

    /// Disputes on a card's transactions, newest first; without `cardId`, on the viewer's
    /// first 100 cards (of `account`, when given).
    #[graphql(complexity = "connection_cost(first, last, DEFAULT_PAGE, child_complexity)")]
    // Each argument is one of the field's GraphQL arguments: the schema is the signature.
    #[allow(clippy::too_many_arguments)]
    async fn disputes(
        &self,
        ctx: &Context<'_>,
        card_id: Option<ID>,
        account: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<DisputeConnection> {
        async {
            let page =
                PageArgs::new(first, after, last, before).page::<Cursor>(ctx, DEFAULT_PAGE)?;
            let cards: Vec<String> = match card_id {
                Some(id) => vec![visible_card(ctx, &id).await?.id],
                None => {
                    let accounts = scope(ctx, account.as_ref()).await?;
                    some_viewer_cards(ctx, 100, &accounts).await?
                }
            };
            let rows = store(ctx)
                .disputes_of(&cards, &page.clone().widened(1))
                .await?;
            Ok::<_, ApiError>(connection(
                &page,
                rows,
                async_graphql::connection::EmptyFields,
                |(d, _)| Cursor {
                    created: d.created,
                    id: d.id.clone(),
                },
                |(d, card)| Dispute(d, card),
            ))
        }
        .await
        .extend()
    }

    /// Stripe's merchant categories, for filters: a fixed list of 273 names held in memory
    /// (no query), so it costs one.
    async fn merchant_categories(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<&'static str>> {
        viewer(ctx).await.extend()?;
        Ok(cardstream_stripe::merchant_categories().collect())
    }

    /// Admin: cardholders of their accounts, by id; with `account`, only that Connect
    /// account's.
    #[graphql(complexity = "connection_cost(first, last, DEFAULT_PAGE, child_complexity)")]
    async fn cardholders(
        &self,
        ctx: &Context<'_>,
        account: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<CardholderConnection> {
        async {
            admin(ctx).await?;
            let accounts = scope(ctx, account.as_ref()).await?;
            let page =
                PageArgs::new(first, after, last, before).page::<String>(ctx, DEFAULT_PAGE)?;
            let rows = store(ctx)
                .all_cardholders(&page.clone().widened(1), &accounts)
                .await?;
            Ok::<_, ApiError>(connection(
                &page,
                rows,
                Total::All(CountOf::Cardholders(accounts)),
                |h| h.id.clone(),
                Cardholder,
            ))
        }
        .await
        .extend()
    }

    /// Admin: users, by id.
    #[graphql(complexity = "connection_cost(first, last, DEFAULT_PAGE, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Counted<i64, UserObject>> {
        users_page(ctx, PageArgs::new(first, after, last, before))
            .await
            .extend()
    }

    /// Platform admin: stored events matching `search` (every field given must match), newest
    /// by Stripe's `created` first, each with its raw JSON and the object it changed; the
    /// `first` (50, at most 100) after the cursor `after`.
    async fn events(
        &self,
        ctx: &Context<'_>,
        search: Option<EventSearch>,
        after: Option<String>,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<EventEntry>> {
        events(ctx, search.unwrap_or_default(), after, first.unwrap_or(50))
            .await
            .extend()
    }

    /// Platform admin: the event types stored, by name.
    async fn event_types(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        async {
            platform_admin(ctx).await?;
            Ok::<_, ApiError>(store(ctx).event_types().await?)
        }
        .await
        .extend()
    }

    /// Platform admin: the audit log, newest first: every admin action with who, when and what
    /// changed; of `action` and `actor` only when given, older than the entry `before`; the
    /// `first` (50, at most 200).
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        action: Option<String>,
        actor: Option<String>,
        before: Option<ID>,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<AuditEntryObject>> {
        audit_log(ctx, action, actor, before, first.unwrap_or(50))
            .await
            .extend()
    }

    /// Admin: the program over a range of days (UTC, both ends included, at most 367): spend
    /// per currency against the range before, by day, category, merchant and card; approvals
    /// and declines by reason; the newest authorizations. Of `account` only, when given.
    async fn program_summary(
        &self,
        ctx: &Context<'_>,
        range: DateRangeInput,
        account: Option<ID>,
    ) -> async_graphql::Result<ProgramSummary> {
        async {
            admin(ctx).await?;
            let accounts = scope(ctx, account.as_ref()).await?;
            ProgramSummary::load(ctx, accounts, range).await
        }
        .await
        .extend()
    }

    /// Platform admin: the pipeline as its processes last reported it (each one's version
    /// and readiness, the lag of each partition, the last webhook and commit), with what they
    /// counted over the last `minutes` (60, at most 1,440): webhooks by type and refusals by
    /// reason per minute, records by outcome, freshness p50/p99; and the dead letters waiting.
    async fn pipeline_health(
        &self,
        ctx: &Context<'_>,
        minutes: Option<i32>,
    ) -> async_graphql::Result<PipelineHealth> {
        pipeline_health(ctx, minutes.unwrap_or(60)).await.extend()
    }

    /// Admin: the records the aggregator could not fold, newest first: those not yet written
    /// back (`cardstream dlq redrive`) unless `redriven`, of `reason` only when given; the
    /// `first` (50, at most 200).
    async fn dead_letters(
        &self,
        ctx: &Context<'_>,
        reason: Option<String>,
        redriven: Option<bool>,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<DeadLetterObject>> {
        let (redriven, first) = (redriven.unwrap_or(false), first.unwrap_or(50));
        dead_letters(ctx, reason, redriven, first).await.extend()
    }

    /// Admin: invitations and password resets, newest first (closed ones included).
    #[graphql(complexity = "connection_cost(first, last, DEFAULT_PAGE, child_complexity)")]
    async fn invitations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<InvitationConnection> {
        async {
            platform_admin(ctx).await?;
            let page = PageArgs::new(first, after, last, before).page::<i64>(ctx, DEFAULT_PAGE)?;
            let rows = store(ctx).invitations(&page.clone().widened(1)).await?;
            Ok::<_, ApiError>(connection(
                &page,
                rows,
                async_graphql::connection::EmptyFields,
                |i| i.id,
                Invitation,
            ))
        }
        .await
        .extend()
    }

    /// What a pending invitation or reset link is for, so its page can greet the person; no
    /// sign-in needed (the link's secret is the credential). NOT_FOUND once used, revoked or
    /// expired.
    async fn invitation(
        &self,
        ctx: &Context<'_>,
        token: String,
    ) -> async_graphql::Result<InvitationPreview> {
        async {
            if token.len() > 128 {
                return Err(ApiError::NotFound("invitation"));
            }
            store(ctx)
                .pending_invitation(&token)
                .await?
                .map(InvitationPreview)
                .ok_or(ApiError::NotFound("invitation"))
        }
        .await
        .extend()
    }

    /// Admin: the authorization policy saved by admins.
    async fn policy(&self, ctx: &Context<'_>) -> async_graphql::Result<PolicyObject> {
        async {
            platform_admin(ctx).await?;
            match store(ctx).stored_policy().await? {
                Some(row) => {
                    // Read as the gateway reads it: a row it refuses is shown with the reason,
                    // so the admin can see it and save over it.
                    let (stored, refused) =
                        StoredPolicy::shown(row.version, &row.policy, row.updated_by);
                    Ok::<_, ApiError>(
                        PolicyObject::new(stored.version, &stored.policy, stored.updated_by)
                            .with_refusal(refused),
                    )
                }
                None => Ok(PolicyObject::new(
                    0,
                    &cardstream_policy::Policy::default(),
                    None,
                )),
            }
        }
        .await
        .extend()
    }
}
