//! A card's spend over a range, from the rollups.

use async_graphql::{Context, Enum, InputObject, Object, ResultExt, SimpleObject};
use cardstream_store::entities::cards;
use cardstream_store::{SeriesBucket, SpendKey, SpendTotals};

use super::context::{loader, page_cost};
use super::errors::{ApiError, ApiResult};
use super::loaders::{KeyedOf, SeriesOf, TotalsOf, load_error};
use super::scalars::{Date, Long, Money};

/// Days from `from` to `to`, both included; either end may be open.
#[derive(InputObject, Clone, Copy)]
pub struct DateRangeInput {
    pub from: Option<Date>,
    pub to: Option<Date>,
}

/// The width of a time-series bucket.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum Bucket {
    Day,
    /// Weeks start on Monday.
    Week,
    Month,
}

/// Spend under one category or merchant.
#[derive(SimpleObject, Clone)]
pub struct KeyedSpend {
    /// The category, or the merchant's name.
    pub key: String,
    pub amount: Money,
    /// Captures.
    pub count: Long,
}

/// Spend in one bucket of time.
#[derive(SimpleObject, Clone)]
pub struct SpendPoint {
    /// The bucket's first day.
    pub start: Date,
    pub amount: Money,
    pub count: Long,
}

/// `limit` checked against the most a list returns.
fn list_limit(limit: i32, max: i32) -> ApiResult<u64> {
    if (1..=max).contains(&limit) {
        Ok(u64::try_from(limit).unwrap_or(1))
    } else {
        Err(ApiError::BadUserInput(format!(
            "`limit` must be between 1 and {max}"
        )))
    }
}

/// A card's spend over a range of days, in one currency. Spend is captures minus refunds;
/// declined authorizations are never spend.
pub struct SpendSummary {
    card_id: String,
    currency: String,
    from_day: Option<i32>,
    /// Exclusive.
    to_day: Option<i32>,
    totals: SpendTotals,
}

impl SpendSummary {
    pub async fn load(
        ctx: &Context<'_>,
        card: &cards::Model,
        range: Option<DateRangeInput>,
        currency: Option<String>,
    ) -> ApiResult<SpendSummary> {
        let currency = match currency {
            Some(c) => c
                .parse::<cardstream_stripe::Currency>()
                .map_err(|e| ApiError::BadUserInput(e.to_string()))?
                .to_string(),
            None => card.currency.clone(),
        };
        let from_day = range.and_then(|r| r.from).map(|d| d.day_number());
        let to_day = range.and_then(|r| r.to).map(|d| d.day_number() + 1);
        if let (Some(from), Some(to)) = (from_day, to_day)
            && from >= to
        {
            return Err(ApiError::BadUserInput(
                "the range's `from` is after its `to`".into(),
            ));
        }
        let totals = loader(ctx)
            .load_one(TotalsOf {
                card: (card.id.clone(), currency.clone()),
                from_day,
                to_day,
            })
            .await
            .map_err(load_error)?
            .unwrap_or_default();
        Ok(SpendSummary {
            card_id: card.id.clone(),
            currency,
            from_day,
            to_day,
            totals,
        })
    }

    fn seconds(&self) -> (Option<i64>, Option<i64>) {
        (
            self.from_day.map(|d| i64::from(d) * 86_400),
            self.to_day.map(|d| i64::from(d) * 86_400),
        )
    }

    async fn keyed(
        &self,
        ctx: &Context<'_>,
        key: SpendKey,
        limit: i32,
    ) -> ApiResult<Vec<KeyedSpend>> {
        let limit = list_limit(limit, 100)?;
        let rows = loader(ctx)
            .load_one(KeyedOf {
                card: (self.card_id.clone(), self.currency.clone()),
                key,
                range: self.seconds(),
                limit,
            })
            .await
            .map_err(load_error)?
            .unwrap_or_default();
        Ok(rows
            .into_iter()
            .map(|r| KeyedSpend {
                key: r.key,
                amount: Money::new(r.spend, &self.currency),
                count: Long(r.captures),
            })
            .collect())
    }
}

#[Object]
impl SpendSummary {
    async fn currency(&self) -> &str {
        &self.currency
    }
    /// Captures minus refunds.
    async fn total_spend(&self) -> Money {
        Money::new(self.totals.spend, &self.currency)
    }
    /// Spend per purchase (total spend over captures); none without purchases.
    async fn average_spend(&self) -> Option<Money> {
        (self.totals.captures > 0)
            .then(|| Money::new(self.totals.spend / self.totals.captures, &self.currency))
    }
    /// Captures.
    async fn purchases(&self) -> Long {
        Long(self.totals.captures)
    }
    async fn refunded(&self) -> Money {
        Money::new(self.totals.refunded, &self.currency)
    }
    async fn refunds(&self) -> Long {
        Long(self.totals.refunds)
    }
    /// Authorizations approved and declined (pending ones are in neither).
    async fn approved(&self) -> Long {
        Long(self.totals.approved)
    }
    async fn declined(&self) -> Long {
        Long(self.totals.declined)
    }
    /// Approved over decided, 0 to 1; none before any decision.
    async fn approval_rate(&self) -> Option<f64> {
        let decided = self.totals.approved + self.totals.declined;
        (decided > 0).then(|| self.totals.approved as f64 / decided as f64)
    }
    /// Spend by merchant category, largest first (at most 100).
    #[graphql(complexity = "page_cost(Some(limit), child_complexity)")]
    async fn by_category(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] limit: i32,
    ) -> async_graphql::Result<Vec<KeyedSpend>> {
        self.keyed(ctx, SpendKey::Category, limit).await.extend()
    }
    /// The merchants with the most spend (at most 100).
    #[graphql(complexity = "page_cost(Some(limit), child_complexity)")]
    async fn top_merchants(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 5)] limit: i32,
    ) -> async_graphql::Result<Vec<KeyedSpend>> {
        self.keyed(ctx, SpendKey::Merchant, limit).await.extend()
    }
    /// Spend per day, week or month, oldest first; buckets without spend are left out. At
    /// most `limit` buckets (up to 1,000): the most recent ones.
    #[graphql(complexity = "page_cost(Some(limit), child_complexity)")]
    async fn time_series(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Bucket::Day")] bucket: Bucket,
        #[graphql(default = 366)] limit: i32,
    ) -> async_graphql::Result<Vec<SpendPoint>> {
        let limit = list_limit(limit, 1000).extend()?;
        let bucket = match bucket {
            Bucket::Day => SeriesBucket::Day,
            Bucket::Week => SeriesBucket::Week,
            Bucket::Month => SeriesBucket::Month,
        };
        let rows = loader(ctx)
            .load_one(SeriesOf {
                card: (self.card_id.clone(), self.currency.clone()),
                from_day: self.from_day,
                to_day: self.to_day,
                bucket,
            })
            .await
            .map_err(load_error)
            .extend()?
            .unwrap_or_default();
        let skip = rows
            .len()
            .saturating_sub(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(rows
            .into_iter()
            .skip(skip)
            .filter_map(|r| {
                Some(SpendPoint {
                    start: Date::from_day_number(r.day)?,
                    amount: Money::new(r.spend, &self.currency),
                    count: Long(r.captures),
                })
            })
            .collect())
    }
}
