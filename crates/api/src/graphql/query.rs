//! The query root. Every resolver starts from the viewer: a cardholder user reaches only the
//! cards of the cardholders linked to them; anything else is NOT_FOUND (admins see all). Every
//! list has a page size with a maximum, and costs its page size times its children.

use async_graphql::{Context, ID, Object, ResultExt};

use super::activity::{ActivityFilterInput, AuthorizationConnection, activity_page};
use super::admin::PolicyObject;
use super::context::{admin, page_cost, page_size, store, viewer, visible_card};
use super::errors::{ApiError, ApiResult};
use super::objects::{Authorization, Card, Cardholder, Dispute, visible_authorization};
use super::users::{Invitation, InvitationPreview, UserObject, users_page};

pub struct Query;

/// The signed-in user and what they may see.
pub struct ViewerObject;

async fn viewer_cards(ctx: &Context<'_>, first: u64, after: Option<&str>) -> ApiResult<Vec<Card>> {
    let viewer = viewer(ctx).await?;
    let store = store(ctx);
    let cards = if viewer.is_admin() {
        store.all_cards(after, first).await?
    } else {
        // A cardholder user's cards are few; page them here, by id as for admins.
        let ids: Vec<String> = viewer.cardholders.iter().cloned().collect();
        let mut cards = store.cards_of(&ids).await?;
        cards.sort_by(|a, b| a.id.cmp(&b.id));
        cards
            .into_iter()
            .filter(|c| after.is_none_or(|after| c.id.as_str() > after))
            .take(usize::try_from(first).unwrap_or(usize::MAX))
            .collect()
    };
    Ok(cards.into_iter().map(Card).collect())
}

#[Object(name = "ViewerObject")]
impl ViewerObject {
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<UserObject> {
        let viewer = viewer(ctx).await.extend()?;
        Ok(UserObject::new(
            &viewer.user,
            viewer.cardholders.iter().cloned(),
        ))
    }

    /// The cardholders this user sees (for admins: none listed here; see `cardholders`).
    #[graphql(complexity = "page_cost(Some(first), child_complexity)")]
    async fn cardholders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
    ) -> async_graphql::Result<Vec<Cardholder>> {
        async {
            let first = page_size(ctx, first)?;
            let viewer = viewer(ctx).await?;
            let ids: Vec<String> = viewer
                .cardholders
                .iter()
                .take(usize::try_from(first).unwrap_or(usize::MAX))
                .cloned()
                .collect();
            Ok::<_, ApiError>(
                store(ctx)
                    .cardholders_by_ids(&ids)
                    .await?
                    .into_iter()
                    .map(Cardholder)
                    .collect(),
            )
        }
        .await
        .extend()
    }

    /// Their cards (for admins: the first page of all cards).
    #[graphql(complexity = "page_cost(Some(first), child_complexity)")]
    async fn cards(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
    ) -> async_graphql::Result<Vec<Card>> {
        async { viewer_cards(ctx, page_size(ctx, first)?, None).await }
            .await
            .extend()
    }
}

#[Object]
impl Query {
    /// Who is signed in.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<ViewerObject> {
        viewer(ctx).await.extend()?;
        Ok(ViewerObject)
    }

    /// The viewer's cards by id, a page at a time (`first`, then `after` the last id).
    #[graphql(complexity = "page_cost(Some(first), child_complexity)")]
    async fn cards(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        after: Option<ID>,
    ) -> async_graphql::Result<Vec<Card>> {
        async {
            let first = page_size(ctx, first)?;
            viewer_cards(ctx, first, after.as_ref().map(|a| a.as_str())).await
        }
        .await
        .extend()
    }

    /// A card the viewer may see.
    async fn card(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Card> {
        visible_card(ctx, &id).await.map(Card).extend()
    }

    /// A card's authorizations, newest first, with their transactions.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn activity(
        &self,
        ctx: &Context<'_>,
        card_id: ID,
        filter: Option<ActivityFilterInput>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<AuthorizationConnection> {
        activity_page(ctx, &card_id, filter, first, after)
            .await
            .extend()
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
    /// first 100 cards.
    #[graphql(complexity = "page_cost(Some(first), child_complexity)")]
    async fn disputes(
        &self,
        ctx: &Context<'_>,
        card_id: Option<ID>,
        #[graphql(default = 50)] first: i32,
    ) -> async_graphql::Result<Vec<Dispute>> {
        async {
            let first = page_size(ctx, first)?;
            let cards: Vec<String> = match card_id {
                Some(id) => vec![visible_card(ctx, &id).await?.id],
                None => viewer_cards(ctx, 100, None)
                    .await?
                    .into_iter()
                    .map(|c| c.0.id)
                    .collect(),
            };
            Ok::<_, ApiError>(
                store(ctx)
                    .disputes_of(&cards, first)
                    .await?
                    .into_iter()
                    .map(|(d, card)| Dispute(d, card))
                    .collect(),
            )
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

    /// Admin: cardholders, by id.
    #[graphql(complexity = "page_cost(Some(first), child_complexity)")]
    async fn cardholders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        after: Option<ID>,
    ) -> async_graphql::Result<Vec<Cardholder>> {
        async {
            admin(ctx).await?;
            let first = page_size(ctx, first)?;
            Ok::<_, ApiError>(
                store(ctx)
                    .all_cardholders(after.as_ref().map(|a| a.as_str()), first)
                    .await?
                    .into_iter()
                    .map(Cardholder)
                    .collect(),
            )
        }
        .await
        .extend()
    }

    /// Admin: users by id, a page at a time.
    #[graphql(complexity = "page_cost(Some(first), child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        after: Option<ID>,
    ) -> async_graphql::Result<Vec<UserObject>> {
        users_page(ctx, first, after).await.extend()
    }

    /// Admin: invitations and password resets, newest first (closed ones included).
    #[graphql(complexity = "page_cost(Some(first), child_complexity)")]
    async fn invitations(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
    ) -> async_graphql::Result<Vec<Invitation>> {
        async {
            admin(ctx).await?;
            let first = page_size(ctx, first)?;
            Ok::<_, ApiError>(
                store(ctx)
                    .invitations(None, i64::try_from(first).unwrap_or(50))
                    .await?
                    .into_iter()
                    .map(Invitation)
                    .collect(),
            )
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
            admin(ctx).await?;
            match store(ctx).stored_policy().await? {
                Some(stored) => {
                    let policy: cardstream_policy::Policy = serde_json::from_value(stored.policy)
                        .map_err(|e| {
                        ApiError::Internal(format!("the stored policy does not parse: {e}"))
                    })?;
                    Ok::<_, ApiError>(PolicyObject::new(
                        stored.version,
                        &policy,
                        stored.updated_by,
                    ))
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
