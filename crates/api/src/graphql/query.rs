//! The query root. Every resolver starts from the viewer: a cardholder user reaches only the
//! cards of the cardholders linked to them; anything else is NOT_FOUND (admins see all).

use async_graphql::{Context, ID, Object, ResultExt, SimpleObject};

use super::activity::{ActivityFilterInput, AuthorizationConnection, activity_page};
use super::admin::{PolicyObject, UserObject};
use super::context::{admin, limits, page_cost, store, viewer, visible_card};
use super::errors::{ApiError, ApiResult};
use super::objects::{Authorization, Card, Cardholder, Dispute, visible_authorization};

pub struct Query;

/// The signed-in user and what they may see.
#[derive(SimpleObject)]
pub struct ViewerObject {
    pub user: UserObject,
    /// The cardholders this user sees (for admins: none listed here; see `cardholders`).
    pub cardholders: Vec<Cardholder>,
    /// Their cards (for admins: the first page of all cards).
    pub cards: Vec<Card>,
}

fn page_size(ctx: &Context<'_>, first: i32) -> ApiResult<u64> {
    let max = limits(ctx).max_page_size;
    if (1..=max).contains(&first) {
        Ok(u64::try_from(first).unwrap_or(1))
    } else {
        Err(ApiError::BadUserInput(format!(
            "`first` must be between 1 and {max}"
        )))
    }
}

async fn viewer_cards(ctx: &Context<'_>, first: u64, after: Option<&str>) -> ApiResult<Vec<Card>> {
    let viewer = viewer(ctx)?;
    let store = store(ctx);
    let cards = if viewer.is_admin() {
        store.all_cards(after, first).await?
    } else {
        let ids: Vec<String> = viewer.cardholders.iter().cloned().collect();
        store.cards_of(&ids).await?
    };
    Ok(cards.into_iter().map(Card).collect())
}

#[Object]
impl Query {
    /// Who is signed in.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<ViewerObject> {
        async {
            let viewer = viewer(ctx)?;
            let ids: Vec<String> = viewer.cardholders.iter().cloned().collect();
            let cardholders = store(ctx)
                .cardholders_by_ids(&ids)
                .await?
                .into_iter()
                .map(Cardholder)
                .collect();
            let cards = viewer_cards(ctx, 50, None).await?;
            Ok::<_, ApiError>(ViewerObject {
                user: UserObject::new(&viewer.user, ids),
                cardholders,
                cards,
            })
        }
        .await
        .extend()
    }

    /// The viewer's cards. Admins page through all cards by id with `first` and `after`.
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

    /// Disputes on a card's transactions; without `cardId`, on all the viewer's cards.
    async fn disputes(
        &self,
        ctx: &Context<'_>,
        card_id: Option<ID>,
    ) -> async_graphql::Result<Vec<Dispute>> {
        async {
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
                    .disputes_of(&cards)
                    .await?
                    .into_iter()
                    .map(|(d, card)| Dispute(d, card))
                    .collect(),
            )
        }
        .await
        .extend()
    }

    /// Stripe's merchant categories, for filters.
    async fn merchant_categories(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<&'static str>> {
        viewer(ctx).extend()?;
        Ok(cardstream_stripe::merchant_categories().collect())
    }

    /// Admin: cardholders, by id.
    async fn cardholders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        after: Option<ID>,
    ) -> async_graphql::Result<Vec<Cardholder>> {
        async {
            admin(ctx)?;
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

    /// Admin: every user.
    async fn users(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<UserObject>> {
        async {
            admin(ctx)?;
            let store = store(ctx);
            let users = store.users().await?;
            let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
            let links = store.cardholders_of(&ids).await?;
            Ok::<_, ApiError>(
                users
                    .iter()
                    .map(|u| {
                        UserObject::new(
                            u,
                            links
                                .iter()
                                .filter(|(id, _)| *id == u.id)
                                .map(|(_, h)| h.clone()),
                        )
                    })
                    .collect(),
            )
        }
        .await
        .extend()
    }

    /// Admin: the authorization policy saved by admins.
    async fn policy(&self, ctx: &Context<'_>) -> async_graphql::Result<PolicyObject> {
        async {
            admin(ctx)?;
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
