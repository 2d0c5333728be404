//! A card's activity: its authorizations as a connection, filtered.

use async_graphql::connection::EmptyFields;
use async_graphql::{Context, Enum, InputObject};
use cardstream_store::{Accounts, ActivityFilter, ActivityStatus, Cursor};

use super::connection::{ACTIVITY_PAGE, PageArgs, Uncounted, connection};
use super::context::{loader, store, visible_card};
use super::errors::{ApiError, ApiResult};
use super::loaders::{ActivityOf, load_error};
use super::objects::Authorization;
use super::scalars::{Date, DateTime, Long};

/// Which authorizations.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum StatusFilter {
    Approved,
    Declined,
    Pending,
}

/// Filters on a card's activity; all given filters apply.
#[derive(InputObject, Clone, Default)]
pub struct ActivityFilterInput {
    pub status: Option<StatusFilter>,
    /// A Stripe merchant category, e.g. `eating_places_restaurants`.
    pub category: Option<String>,
    /// Part of the merchant's name, any case.
    pub merchant: Option<String>,
    /// First day included (UTC).
    pub from: Option<Date>,
    /// Last day included (UTC).
    pub to: Option<Date>,
    /// From this instant, included: a day in the viewer's own time zone starts at its local
    /// midnight. Instead of `from` when both are given.
    pub from_time: Option<DateTime>,
    /// Until this instant, excluded. Instead of `to` when both are given.
    pub to_time: Option<DateTime>,
    /// Smallest amount asked for, in minor units of the card's currency.
    pub min_amount: Option<Long>,
    pub max_amount: Option<Long>,
}

/// A card's authorizations, newest first.
pub type AuthorizationConnection = Uncounted<Cursor, Authorization>;

/// The store's filter for `input`, checked: a category Stripe has, amounts in order, a
/// merchant search of sensible length.
pub fn activity_filter(input: Option<ActivityFilterInput>) -> ApiResult<ActivityFilter> {
    let input = input.unwrap_or_default();
    if let Some(category) = &input.category
        && !cardstream_stripe::is_merchant_category(category)
    {
        return Err(ApiError::BadUserInput(format!(
            "{category:?} is not a Stripe merchant category"
        )));
    }
    if let (Some(min), Some(max)) = (input.min_amount, input.max_amount)
        && min.0 > max.0
    {
        return Err(ApiError::BadUserInput(
            "minAmount is above maxAmount".into(),
        ));
    }
    if input.merchant.as_ref().is_some_and(|m| m.len() > 200) {
        return Err(ApiError::BadUserInput(
            "the merchant search is longer than 200 characters".into(),
        ));
    }
    Ok(ActivityFilter {
        status: input.status.map(|s| match s {
            StatusFilter::Approved => ActivityStatus::Approved,
            StatusFilter::Declined => ActivityStatus::Declined,
            StatusFilter::Pending => ActivityStatus::Pending,
        }),
        category: input.category,
        merchant: input.merchant,
        from: input
            .from_time
            .map(|t| t.0)
            .or(input.from.map(|d| d.start_seconds())),
        to: input
            .to_time
            .map(|t| t.0)
            .or(input.to.map(|d| d.start_seconds() + 86_400)),
        min_amount: input.min_amount.map(|a| a.0),
        max_amount: input.max_amount.map(|a| a.0),
    })
}

/// One page of the program's activity (of `accounts`), for an admin.
pub async fn program_activity_page(
    ctx: &Context<'_>,
    accounts: &Accounts,
    input: Option<ActivityFilterInput>,
    args: PageArgs,
) -> ApiResult<AuthorizationConnection> {
    let page = args.page::<Cursor>(ctx, ACTIVITY_PAGE)?;
    let filter = activity_filter(input)?;
    let rows = store(ctx)
        .program_activity(accounts, &filter, &page.clone().widened(1))
        .await?;
    Ok(authorizations(&page, rows))
}

/// Authorizations read for `page` (one more than asked, to know whether another follows) as
/// a connection.
fn authorizations(
    page: &cardstream_store::Page<Cursor>,
    rows: Vec<cardstream_store::entities::authorizations::Model>,
) -> AuthorizationConnection {
    connection(
        page,
        rows,
        EmptyFields,
        |row| Cursor {
            created: row.created,
            id: row.id.clone(),
        },
        Authorization,
    )
}

/// One page of a card's activity, after checking the viewer may see the card.
pub async fn activity_page(
    ctx: &Context<'_>,
    card_id: &str,
    input: Option<ActivityFilterInput>,
    args: PageArgs,
) -> ApiResult<AuthorizationConnection> {
    let page = args.page::<Cursor>(ctx, ACTIVITY_PAGE)?;
    visible_card(ctx, card_id).await?;
    let filter = activity_filter(input)?;
    // One row more than asked, to know whether another page follows. Batched: the same page
    // of every card in a list is one statement.
    let rows = loader(ctx)
        .load_one(ActivityOf {
            card: card_id.to_owned(),
            filter,
            page: page.clone().widened(1),
        })
        .await
        .map_err(load_error)?
        .unwrap_or_default();
    Ok(authorizations(&page, rows))
}
