//! What resolvers get from the request: the store, the viewer as of now, limits and loaders.

use std::sync::Arc;

use async_graphql::Context;
use async_graphql::dataloader::DataLoader;
use cardstream_store::Store;
use cardstream_store::entities::cards;
use tokio::sync::OnceCell;

use super::errors::{ApiError, ApiResult};
use super::loaders::{StoreLoader, load_error};
use crate::auth::{Credentials, Sessions, Viewer};

/// Limits that resolvers enforce.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest `first` a connection accepts.
    pub max_page_size: i32,
}

/// The complexity of a list: its page size times its children's. A `first` outside the pages
/// the resolver accepts (it refuses them with BAD_USER_INPUT) still costs as much as the
/// largest page it could be: a negative `first` must not overflow into a huge cost, nor
/// cancel out the cost of its siblings.
pub fn page_cost(first: Option<i32>, child_complexity: usize) -> usize {
    // Well above any page the API serves (--graphql-max-page-size), and small enough that nested
    // connections within the depth limit cannot overflow when async-graphql adds them up.
    const LARGEST_COUNTED: usize = 1_000;
    let page =
        usize::try_from(first.unwrap_or(20)).map_or(LARGEST_COUNTED, |f| f.min(LARGEST_COUNTED));
    page.saturating_mul(child_complexity).max(1)
}

/// The complexity of a connection: the page it serves, sized by `first`, or `last`, or else its
/// default page (the resolver pages by the same default).
pub fn connection_cost(
    first: Option<i32>,
    last: Option<i32>,
    default: i32,
    child_complexity: usize,
) -> usize {
    page_cost(Some(first.or(last).unwrap_or(default)), child_complexity)
}

/// `first` checked against the largest page served.
pub fn page_size(ctx: &Context<'_>, first: i32) -> ApiResult<u64> {
    let max = limits(ctx).max_page_size;
    if (1..=max).contains(&first) {
        Ok(u64::try_from(first).unwrap_or(1))
    } else {
        Err(ApiError::BadUserInput(format!(
            "`first` must be between 1 and {max}"
        )))
    }
}

pub fn store<'a>(ctx: &Context<'a>) -> &'a Store {
    ctx.data_unchecked::<Store>()
}

pub fn limits(ctx: &Context<'_>) -> Limits {
    *ctx.data_unchecked::<Limits>()
}

pub fn loader<'a>(ctx: &Context<'a>) -> &'a DataLoader<StoreLoader> {
    ctx.data_unchecked::<DataLoader<StoreLoader>>()
}

/// Who sent a request, found lazily: a request that is refused before any resolver runs (too
/// deep, too costly, invalid) never reaches the database for its viewer.
#[derive(Debug)]
pub struct Authentication {
    credentials: Option<Credentials>,
    /// Per HTTP request, the first answer is kept for the request's other resolvers. A
    /// websocket's operations share one `Authentication` for the connection, so they do not
    /// keep it: each asks again (from the session cache), so each is authorized as of now.
    once: Option<OnceCell<Option<Arc<Viewer>>>>,
}

impl Authentication {
    /// For one HTTP request.
    pub(crate) fn request(credentials: Option<Credentials>) -> Self {
        Authentication {
            credentials,
            once: Some(OnceCell::new()),
        }
    }

    /// For every operation of a websocket.
    pub(crate) fn connection(credentials: Credentials) -> Self {
        Authentication {
            credentials: Some(credentials),
            once: None,
        }
    }

    async fn resolve(&self, sessions: &Sessions) -> ApiResult<Option<Arc<Viewer>>> {
        let Some(credentials) = &self.credentials else {
            return Ok(None);
        };
        let ask = || async { sessions.viewer(credentials).await.map_err(ApiError::from) };
        match &self.once {
            Some(once) => once.get_or_try_init(ask).await.cloned(),
            None => ask().await,
        }
    }
}

/// The signed-in viewer as of now, or UNAUTHENTICATED (no token, an expired one, or an ended
/// session).
pub async fn viewer(ctx: &Context<'_>) -> ApiResult<Arc<Viewer>> {
    let Some(authentication) = ctx.data_opt::<Authentication>() else {
        return Err(ApiError::Unauthenticated);
    };
    authentication
        .resolve(ctx.data_unchecked::<Sessions>())
        .await?
        .ok_or(ApiError::Unauthenticated)
}

/// After an edit that ends `user_id`'s sessions: this replica forgets them at once, without
/// waiting for its own NOTIFY to come back (the other replicas learn through theirs).
pub fn forget_sessions(ctx: &Context<'_>, user_id: i64) {
    ctx.data_unchecked::<Sessions>()
        .changed(crate::auth::SessionChange::User(user_id));
}

/// The viewer, who must be an admin.
pub async fn admin(ctx: &Context<'_>) -> ApiResult<Arc<Viewer>> {
    let viewer = viewer(ctx).await?;
    if viewer.is_admin() {
        Ok(viewer)
    } else {
        Err(ApiError::Forbidden)
    }
}

/// The viewer, who must be an admin of the whole platform (not limited to Connect accounts):
/// users, invitations and the authorization policy span every account.
pub async fn platform_admin(ctx: &Context<'_>) -> ApiResult<Arc<Viewer>> {
    let viewer = admin(ctx).await?;
    if viewer.is_platform_admin() {
        Ok(viewer)
    } else {
        Err(ApiError::Forbidden)
    }
}

/// Loads a card the viewer may see, or NOT_FOUND (whether it does not exist, is someone
/// else's or another Connect account's: the answer does not reveal which).
pub async fn visible_card(ctx: &Context<'_>, id: &str) -> ApiResult<cards::Model> {
    let viewer = viewer(ctx).await?;
    let card = loader(ctx)
        .load_one(id.to_owned())
        .await
        .map_err(load_error)?
        .ok_or(ApiError::NotFound("card"))?;
    if viewer.sees_account(card.account.as_deref()) && viewer.sees_cardholder(&card.cardholder_id) {
        Ok(card)
    } else {
        Err(ApiError::NotFound("card"))
    }
}
