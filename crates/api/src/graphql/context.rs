//! What resolvers get from the request: the store, the viewer, limits, and the loaders that
//! batch lookups across a page (no N+1 queries).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, Loader};
use cardstream_store::Store;
use cardstream_store::entities::{cardholders, cards, transactions};

use super::errors::{ApiError, ApiResult};
use crate::auth::Viewer;

/// Limits that resolvers enforce.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest `first` a connection accepts.
    pub max_page_size: i32,
}

/// The complexity of a connection: its page size times its children's. A `first` outside
/// the pages the resolver accepts (it refuses them with BAD_USER_INPUT) still costs as much
/// as the largest page it could be: a negative `first` must not overflow into a huge cost,
/// nor cancel out the cost of its siblings.
pub fn page_cost(first: Option<i32>, child_complexity: usize) -> usize {
    // Well above any page the API serves (--graphql-max-page-size), and small enough that nested
    // connections within the depth limit cannot overflow when async-graphql adds them up.
    const LARGEST_COUNTED: usize = 1_000;
    let page =
        usize::try_from(first.unwrap_or(20)).map_or(LARGEST_COUNTED, |f| f.min(LARGEST_COUNTED));
    page.saturating_mul(child_complexity)
}

pub fn store<'a>(ctx: &Context<'a>) -> &'a Store {
    ctx.data_unchecked::<Store>()
}

pub fn limits(ctx: &Context<'_>) -> Limits {
    *ctx.data_unchecked::<Limits>()
}

/// The signed-in viewer, or UNAUTHENTICATED.
pub fn viewer<'a>(ctx: &Context<'a>) -> ApiResult<&'a Viewer> {
    ctx.data_opt::<Viewer>().ok_or(ApiError::Unauthenticated)
}

/// The viewer, who must be an admin.
pub fn admin<'a>(ctx: &Context<'a>) -> ApiResult<&'a Viewer> {
    let viewer = viewer(ctx)?;
    if viewer.is_admin() {
        Ok(viewer)
    } else {
        Err(ApiError::Forbidden)
    }
}

/// Loads rows by key in one statement per batch.
pub struct StoreLoader {
    store: Store,
}

type LoadError = Arc<ApiError>;

/// Cards by id.
impl Loader<String> for StoreLoader {
    type Value = cards::Model;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, cards::Model>, LoadError> {
        let rows = self
            .store
            .cards_by_ids(keys)
            .await
            .map_err(|e| Arc::new(ApiError::from(e)))?;
        Ok(rows.into_iter().map(|c| (c.id.clone(), c)).collect())
    }
}

/// Cardholders by id.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CardholderId(pub String);

impl Loader<CardholderId> for StoreLoader {
    type Value = cardholders::Model;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[CardholderId],
    ) -> Result<HashMap<CardholderId, cardholders::Model>, LoadError> {
        let ids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = self
            .store
            .cardholders_by_ids(&ids)
            .await
            .map_err(|e| Arc::new(ApiError::from(e)))?;
        Ok(rows
            .into_iter()
            .map(|h| (CardholderId(h.id.clone()), h))
            .collect())
    }
}

/// The transactions of an authorization.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TransactionsOf(pub String);

impl Loader<TransactionsOf> for StoreLoader {
    type Value = Vec<transactions::Model>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[TransactionsOf],
    ) -> Result<HashMap<TransactionsOf, Vec<transactions::Model>>, LoadError> {
        let ids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = self
            .store
            .transactions_of(&ids)
            .await
            .map_err(|e| Arc::new(ApiError::from(e)))?;
        let mut out: HashMap<TransactionsOf, Vec<transactions::Model>> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for row in rows {
            if let Some(auth) = &row.authorization_id {
                out.entry(TransactionsOf(auth.clone()))
                    .or_default()
                    .push(row);
            }
        }
        Ok(out)
    }
}

/// The per-request loader, added to each request's data.
pub fn loader(store: Store) -> DataLoader<StoreLoader> {
    DataLoader::new(StoreLoader { store }, tokio::spawn)
}

pub fn load_error(err: LoadError) -> ApiError {
    match Arc::try_unwrap(err) {
        Ok(err) => err,
        Err(shared) => ApiError::Internal(shared.to_string()),
    }
}

/// Loads a card the viewer may see, or NOT_FOUND (whether it does not exist or is someone
/// else's: the answer does not reveal which).
pub async fn visible_card(ctx: &Context<'_>, id: &str) -> ApiResult<cards::Model> {
    let viewer = viewer(ctx)?;
    let card = ctx
        .data_unchecked::<DataLoader<StoreLoader>>()
        .load_one(id.to_owned())
        .await
        .map_err(load_error)?
        .ok_or(ApiError::NotFound("card"))?;
    if viewer.sees_cardholder(&card.cardholder_id) {
        Ok(card)
    } else {
        Err(ApiError::NotFound("card"))
    }
}
