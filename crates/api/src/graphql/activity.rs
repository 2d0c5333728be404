//! A card's activity as a Relay-style connection with stable cursors.

use async_graphql::{Context, Enum, InputObject, SimpleObject};
use cardstream_store::{ActivityFilter, ActivityStatus, Cursor};

use super::context::{limits, loader, visible_card};
use super::errors::{ApiError, ApiResult};
use super::loaders::{ActivityOf, load_error};
use super::objects::Authorization;
use super::scalars::{Date, Long};

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
    /// Smallest amount asked for, in minor units of the card's currency.
    pub min_amount: Option<Long>,
    pub max_amount: Option<Long>,
}

#[derive(SimpleObject)]
pub struct PageInfo {
    pub has_next_page: bool,
    /// Pass as `after` for the next page.
    pub end_cursor: Option<String>,
}

#[derive(SimpleObject)]
pub struct AuthorizationEdge {
    pub cursor: String,
    pub node: Authorization,
}

#[derive(SimpleObject)]
pub struct AuthorizationConnection {
    pub edges: Vec<AuthorizationEdge>,
    pub page_info: PageInfo,
}

fn encode_cursor(created: i64, id: &str) -> String {
    let raw = format!("{created}:{id}");
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(cursor: &str) -> ApiResult<Cursor> {
    let invalid = || ApiError::BadUserInput("`after` is not a cursor this API gave out".into());
    if !cursor.len().is_multiple_of(2) || cursor.len() > 512 {
        return Err(invalid());
    }
    let bytes: Vec<u8> = (0..cursor.len())
        .step_by(2)
        .map(|i| {
            cursor
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<_>>()
        .ok_or_else(invalid)?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (created, id) = text.split_once(':').ok_or_else(invalid)?;
    Ok(Cursor {
        created: created.parse().map_err(|_| invalid())?,
        id: id.to_owned(),
    })
}

fn filter(input: Option<ActivityFilterInput>) -> ApiResult<ActivityFilter> {
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
        from: input.from.map(|d| d.start_seconds()),
        to: input.to.map(|d| d.start_seconds() + 86_400),
        min_amount: input.min_amount.map(|a| a.0),
        max_amount: input.max_amount.map(|a| a.0),
    })
}

/// One page of a card's activity, after checking the viewer may see the card.
pub async fn activity_page(
    ctx: &Context<'_>,
    card_id: &str,
    input: Option<ActivityFilterInput>,
    first: Option<i32>,
    after: Option<String>,
) -> ApiResult<AuthorizationConnection> {
    let max = limits(ctx).max_page_size;
    let first = first.unwrap_or(20);
    if !(1..=max).contains(&first) {
        return Err(ApiError::BadUserInput(format!(
            "`first` must be between 1 and {max}"
        )));
    }
    visible_card(ctx, card_id).await?;
    let filter = filter(input)?;
    let after = after.as_deref().map(decode_cursor).transpose()?;
    let limit = u64::try_from(first).unwrap_or(20);
    // One row more than asked, to know whether there is a next page. Batched: the same page of
    // every card in a list is one statement.
    let mut rows = loader(ctx)
        .load_one(ActivityOf {
            card: card_id.to_owned(),
            filter,
            after,
            limit: limit + 1,
        })
        .await
        .map_err(load_error)?
        .unwrap_or_default();
    let has_next_page = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(20));
    let edges: Vec<AuthorizationEdge> = rows
        .into_iter()
        .map(|row| AuthorizationEdge {
            cursor: encode_cursor(row.created, &row.id),
            node: Authorization(row),
        })
        .collect();
    let end_cursor = edges.last().map(|e| e.cursor.clone());
    Ok(AuthorizationConnection {
        edges,
        page_info: PageInfo {
            has_next_page,
            end_cursor,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = encode_cursor(1_764_000_000, "iauth_1Pgc77B7WZ01zgkWn0SmtHBY");
        assert_eq!(
            decode_cursor(&c).unwrap(),
            Cursor {
                created: 1_764_000_000,
                id: "iauth_1Pgc77B7WZ01zgkWn0SmtHBY".into()
            }
        );
        for bad in ["", "zz", "abc", "6162", &"61".repeat(300)] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
