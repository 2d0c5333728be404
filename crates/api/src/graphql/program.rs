//! The program overview, for admins: the whole program's spend over a range of days with the
//! change against the range before, per currency (by day, category, merchant and card), its
//! approval rate and declines by reason, and its newest authorizations. Read from the program
//! rollups (migration 0016), so its cost follows the days asked for, not the transactions; and
//! those reads shared by the viewers of a process for a second (`shared`), so the cost of the
//! refetch on each tick does not grow with the admins watching.

use std::time::Duration;

use async_graphql::{Context, Object, ResultExt, SimpleObject};
use cardstream_store::{
    Accounts, DayRange, ProgramKey, ProgramKeyed, ProgramOutcome, ProgramSpend,
};

use super::activity::{ActivityFilterInput, AuthorizationConnection, program_activity_page};
use super::connection::{ACTIVITY_PAGE, PageArgs};
use super::context::{connection_cost, loader, store};
use super::errors::{ApiError, ApiResult};
use super::loaders::load_error;
use super::objects::Card;
use super::scalars::{Date, Long, Money};
use super::shared::Shared;
use super::summary::{DateRangeInput, KeyedSpend, SpendPoint};

/// The longest range the overview answers: a year and a day, so that any calendar year fits.
const MAX_DAYS: i32 = 367;
/// Most items a list of the overview returns.
const MAX_ITEMS: i32 = 100;

/// The overview's rollup reads, shared by the viewers of this process (see `shared`): its
/// totals by range, and its sums by key. The live feed is read for each viewer.
pub struct ProgramReads {
    totals: Shared<(Accounts, DayRange), Totals>,
    keyed: Shared<(Accounts, String, DayRange, ProgramKey, i64), Vec<ProgramKeyed>>,
}

impl ProgramReads {
    /// Each read served as it is for `fresh`, then while it is read again (see `shared`);
    /// zero reads for every request.
    pub fn new(fresh: Duration) -> ProgramReads {
        ProgramReads {
            totals: Shared::sharing_for(fresh),
            keyed: Shared::sharing_for(fresh),
        }
    }
}

/// Spend per currency in a range and the range before, and its outcomes.
type Totals = (Vec<ProgramSpend>, Vec<ProgramSpend>, Vec<ProgramOutcome>);

/// The program over a range of days (UTC).
pub struct ProgramSummary {
    accounts: Accounts,
    range: DayRange,
    spend: Vec<ProgramSpend>,
    previous: Vec<ProgramSpend>,
    outcomes: Vec<ProgramOutcome>,
}

impl ProgramSummary {
    /// For an admin (the caller checks) over `accounts`; `range` must have both ends, `from`
    /// not after `to`, at most [`MAX_DAYS`].
    pub async fn load(
        ctx: &Context<'_>,
        accounts: Accounts,
        range: DateRangeInput,
    ) -> ApiResult<ProgramSummary> {
        let (Some(from), Some(to)) = (range.from, range.to) else {
            return Err(ApiError::BadUserInput(
                "the overview's range needs both `from` and `to`".into(),
            ));
        };
        let range = DayRange {
            from: from.day_number(),
            to: to.day_number() + 1,
        };
        if range.from >= range.to {
            return Err(ApiError::BadUserInput(
                "the range's `from` is after its `to`".into(),
            ));
        }
        if range.to - range.from > MAX_DAYS {
            return Err(ApiError::BadUserInput(format!(
                "the overview covers at most {MAX_DAYS} days at once"
            )));
        }
        let (store, scope) = (store(ctx).clone(), accounts.clone());
        let (spend, previous, outcomes) = ctx
            .data_unchecked::<ProgramReads>()
            .totals
            .get((accounts.clone(), range), move || async move {
                tokio::try_join!(
                    store.program_spend(&scope, range),
                    store.program_spend(&scope, range.previous()),
                    store.program_outcomes(&scope, range),
                )
            })
            .await?;
        Ok(ProgramSummary {
            accounts,
            range,
            spend,
            previous,
            outcomes,
        })
    }

    fn count(&self, approved: bool) -> i64 {
        self.outcomes
            .iter()
            .filter(|o| o.approved == approved)
            .map(|o| o.authorizations)
            .sum()
    }
}

#[Object]
impl ProgramSummary {
    /// The range's first day.
    async fn from(&self) -> Option<Date> {
        Date::from_day_number(self.range.from)
    }
    /// The range's last day.
    async fn to(&self) -> Option<Date> {
        Date::from_day_number(self.range.to - 1)
    }
    /// The range of the same length just before, which `previousSpend` covers.
    async fn previous_from(&self) -> Option<Date> {
        Date::from_day_number(self.range.previous().from)
    }
    /// Spend per currency (currencies are never added together), largest first; a currency
    /// spent only in the range before is listed too, with no spend in this one.
    async fn currencies(&self) -> Vec<CurrencySpend> {
        let mut out: Vec<CurrencySpend> = self
            .spend
            .iter()
            .map(|s| CurrencySpend::new(self, s.clone()))
            .collect();
        for p in &self.previous {
            if !self.spend.iter().any(|s| s.currency == p.currency) {
                out.push(CurrencySpend::new(
                    self,
                    ProgramSpend {
                        currency: p.currency.clone(),
                        spend: 0,
                        captures: 0,
                        refunds: 0,
                    },
                ));
            }
        }
        out
    }
    /// Authorizations decided in the range (a request awaiting its decision is in neither).
    async fn approved(&self) -> Long {
        Long(self.count(true))
    }
    async fn declined(&self) -> Long {
        Long(self.count(false))
    }
    /// Approved over decided, 0 to 1; none when nothing was decided.
    async fn approval_rate(&self) -> Option<f64> {
        let (approved, declined) = (self.count(true), self.count(false));
        let decided = approved + declined;
        (decided > 0).then(|| approved as f64 / decided as f64)
    }
    /// Declines by their reasons, most frequent first.
    async fn declines(
        &self,
        #[graphql(default = 10)] limit: i32,
    ) -> async_graphql::Result<Vec<DeclineCount>> {
        let limit = list_limit(limit).extend()?;
        Ok(self
            .outcomes
            .iter()
            .filter(|o| !o.approved)
            .take(usize::try_from(limit).unwrap_or(0))
            .map(|o| DeclineCount {
                reason: (!o.reason.is_empty()).then(|| o.reason.clone()),
                cardstream_reason: (!o.cardstream_reason.is_empty())
                    .then(|| o.cardstream_reason.clone()),
                count: Long(o.authorizations),
            })
            .collect())
    }
    /// The program's authorizations across every card, approved or declined, newest first,
    /// whenever they were made (the live feed: not limited to the range).
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
        program_activity_page(ctx, &self.accounts, filter, args)
            .await
            .extend()
    }
}

/// The number of items asked for, between 1 and [`MAX_ITEMS`].
fn list_limit(limit: i32) -> ApiResult<i64> {
    if (1..=MAX_ITEMS).contains(&limit) {
        Ok(i64::from(limit))
    } else {
        Err(ApiError::BadUserInput(format!(
            "`limit` must be between 1 and {MAX_ITEMS}"
        )))
    }
}

/// Declines with one pair of reasons.
#[derive(SimpleObject)]
pub struct DeclineCount {
    /// Stripe's reason (`request_history[].reason`), e.g. `webhook_declined`.
    pub reason: Option<String>,
    /// cardstream's own, when it decided, e.g. `daily_limit_exceeded`.
    pub cardstream_reason: Option<String>,
    pub count: Long,
}

/// The program's spend in one currency over the range.
pub struct CurrencySpend {
    accounts: Accounts,
    range: DayRange,
    spend: ProgramSpend,
    previous: i64,
}

impl CurrencySpend {
    fn new(summary: &ProgramSummary, spend: ProgramSpend) -> CurrencySpend {
        let previous = summary
            .previous
            .iter()
            .find(|p| p.currency == spend.currency)
            .map_or(0, |p| p.spend);
        CurrencySpend {
            accounts: summary.accounts.clone(),
            range: summary.range,
            spend,
            previous,
        }
    }

    /// At most `limit` keys (checked by the caller).
    async fn keyed(
        &self,
        ctx: &Context<'_>,
        key: ProgramKey,
        limit: i64,
    ) -> ApiResult<Vec<KeyedSpend>> {
        let (store, accounts) = (store(ctx).clone(), self.accounts.clone());
        let (currency, range) = (self.spend.currency.clone(), self.range);
        let shared = (accounts.clone(), currency.clone(), range, key, limit);
        let rows = ctx
            .data_unchecked::<ProgramReads>()
            .keyed
            .get(shared, move || async move {
                store
                    .program_keyed(&accounts, &currency, range, key, limit)
                    .await
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| KeyedSpend {
                key: r.key,
                amount: Money::new(r.spend, &self.spend.currency),
                count: Long(r.captures),
            })
            .collect())
    }
}

#[Object]
impl CurrencySpend {
    /// Lowercase ISO 4217 code.
    async fn currency(&self) -> &str {
        &self.spend.currency
    }
    /// Captures minus refunds.
    async fn spend(&self) -> Money {
        Money::new(self.spend.spend, &self.spend.currency)
    }
    /// Over the range of the same length just before.
    async fn previous_spend(&self) -> Money {
        Money::new(self.previous, &self.spend.currency)
    }
    /// `spend / previousSpend − 1`; none when there was no spend before.
    async fn change(&self) -> Option<f64> {
        (self.previous != 0).then(|| self.spend.spend as f64 / self.previous as f64 - 1.0)
    }
    async fn captures(&self) -> Long {
        Long(self.spend.captures)
    }
    async fn refunds(&self) -> Long {
        Long(self.spend.refunds)
    }
    /// Spend per day with any (days without are left out), oldest first.
    async fn time_series(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SpendPoint>> {
        let days = self
            .keyed(ctx, ProgramKey::Day, i64::from(MAX_DAYS))
            .await
            .extend()?;
        Ok(days
            .into_iter()
            .filter_map(|k| {
                Some(SpendPoint {
                    start: Date::from_iso(&k.key)?,
                    amount: k.amount,
                    count: k.count,
                })
            })
            .collect())
    }
    /// Spend by merchant category, largest first.
    async fn by_category(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] limit: i32,
    ) -> async_graphql::Result<Vec<KeyedSpend>> {
        let limit = list_limit(limit).extend()?;
        self.keyed(ctx, ProgramKey::Category, limit).await.extend()
    }
    /// Spend by merchant, largest first.
    async fn top_merchants(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] limit: i32,
    ) -> async_graphql::Result<Vec<KeyedSpend>> {
        let limit = list_limit(limit).extend()?;
        self.keyed(ctx, ProgramKey::Merchant, limit).await.extend()
    }
    /// The cards that spent most, largest first.
    async fn top_cards(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] limit: i32,
    ) -> async_graphql::Result<Vec<CardSpend>> {
        async {
            let rows = self
                .keyed(ctx, ProgramKey::Card, list_limit(limit)?)
                .await?;
            let ids: Vec<String> = rows.iter().map(|r| r.key.clone()).collect();
            let cards = loader(ctx).load_many(ids).await.map_err(load_error)?;
            Ok::<_, ApiError>(
                rows.into_iter()
                    .filter_map(|r| {
                        let card = cards.get(&r.key)?.clone();
                        Some(CardSpend {
                            card: Card(card),
                            amount: r.amount,
                            count: r.count,
                        })
                    })
                    .collect(),
            )
        }
        .await
        .extend()
    }
}

/// A card's spend over the range.
#[derive(SimpleObject)]
#[graphql(name = "TopCard")]
pub struct CardSpend {
    pub card: Card,
    pub amount: Money,
    /// Captures.
    pub count: Long,
}
