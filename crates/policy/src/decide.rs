use cardstream_stripe::{Authorization, CardStatus, CardholderStatus, Currency, Money};

use crate::Policy;
use crate::policy::FailMode;

/// A card's spend so far in the current UTC day and month, in one currency: captures minus
/// refunds plus approved holds not yet captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    Known {
        day: i64,
        month: i64,
    },
    /// Not known well enough to apply a limit: never loaded, or stale.
    Unknown,
}

/// Where decisions read spend from. Implementations answer from memory: a decision must not
/// wait on a database.
pub trait SpendView: Send + Sync {
    fn spend(&self, card_id: &str, currency: Currency) -> Spend;
}

/// For a gateway without a database: spend is never known, so limits follow
/// `on_spend_unknown`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSpendData;

impl SpendView for NoSpendData {
    fn spend(&self, _: &str, _: Currency) -> Spend {
        Spend::Unknown
    }
}

/// What the policy looks at, taken from an `issuing_authorization.request`.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub card_id: &'a str,
    pub cardholder_id: Option<&'a str>,
    pub card_status: Option<&'a CardStatus>,
    pub cardholder_status: Option<&'a CardholderStatus>,
    pub amount: Money,
    /// Stripe lets the approved amount differ from the asked one
    /// (`pending_request.is_amount_controllable`).
    pub amount_controllable: bool,
    pub category: &'a str,
}

impl<'a> From<&'a Authorization> for Request<'a> {
    fn from(auth: &'a Authorization) -> Self {
        let card = auth.card.object();
        Request {
            card_id: auth.card_id(),
            cardholder_id: auth.cardholder_id(),
            card_status: card.map(|c| &c.status),
            cardholder_status: card
                .and_then(|c| c.cardholder.object())
                .map(|holder| &holder.status),
            amount: auth.requested(),
            amount_controllable: auth
                .pending_request
                .as_ref()
                .is_some_and(|p| p.is_amount_controllable),
            category: &auth.merchant_data.category,
        }
    }
}

/// Why a decision went the way it did. The string form is what Stripe sees in
/// `metadata.cardstream_reason` and what the decision metrics are labelled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Approved,
    CardInactive,
    CardholderInactive,
    CurrencyNotAllowed,
    CategoryBlocked,
    AmountOverLimit,
    DailyLimitExceeded,
    MonthlyLimitExceeded,
    /// Declined: a limit applies and the card's spend is unknown (fail closed).
    SpendUnknown,
    /// Approved although a limit applies and the card's spend is unknown (fail open).
    ApprovedSpendUnknown,
    /// Approved for less than asked: what the daily/monthly limit had left of a request whose
    /// amount was controllable (`partial_approval`).
    PartiallyApproved,
}

impl Reason {
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::Approved => "approved",
            Reason::CardInactive => "card_inactive",
            Reason::CardholderInactive => "cardholder_inactive",
            Reason::CurrencyNotAllowed => "currency_not_allowed",
            Reason::CategoryBlocked => "category_blocked",
            Reason::AmountOverLimit => "amount_over_limit",
            Reason::DailyLimitExceeded => "daily_limit_exceeded",
            Reason::MonthlyLimitExceeded => "monthly_limit_exceeded",
            Reason::SpendUnknown => "spend_unknown",
            Reason::ApprovedSpendUnknown => "approved_spend_unknown",
            Reason::PartiallyApproved => "partially_approved",
        }
    }

    pub fn approves(&self) -> bool {
        matches!(
            self,
            Reason::Approved | Reason::ApprovedSpendUnknown | Reason::PartiallyApproved
        )
    }

    pub const ALL: [Reason; 11] = [
        Reason::Approved,
        Reason::CardInactive,
        Reason::CardholderInactive,
        Reason::CurrencyNotAllowed,
        Reason::CategoryBlocked,
        Reason::AmountOverLimit,
        Reason::DailyLimitExceeded,
        Reason::MonthlyLimitExceeded,
        Reason::SpendUnknown,
        Reason::ApprovedSpendUnknown,
        Reason::PartiallyApproved,
    ];
}

/// The answer to Stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub approved: bool,
    pub reason: Reason,
    /// Approved for this amount (minor units of the request's currency) rather than the
    /// amount asked: a partial approval. `None`: all of it, or a decline.
    pub amount: Option<i64>,
}

impl Decision {
    fn approve(reason: Reason) -> Self {
        Decision {
            approved: true,
            reason,
            amount: None,
        }
    }

    fn decline(reason: Reason) -> Self {
        Decision {
            approved: false,
            reason,
            amount: None,
        }
    }

    fn partial(amount: i64) -> Self {
        Decision {
            amount: Some(amount),
            ..Decision::approve(Reason::PartiallyApproved)
        }
    }

    /// What the approval holds of `asked`: the partial amount, or all of it.
    pub fn held(&self, asked: Money) -> Money {
        Money::new(self.amount.unwrap_or(asked.amount), asked.currency)
    }
}

/// The spend limits a request is still subject to once every other rule has let it through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Minor units of the request's currency; `None`: no such limit.
    pub daily: Option<i64>,
    pub monthly: Option<i64>,
    /// Whether the request may be approved for less than it asks: the policy allows partial
    /// approvals and Stripe says the amount is controllable.
    pub partial: bool,
}

impl Limits {
    /// The request's outcome when the card has spent `day` today and `month` this month.
    pub fn apply(&self, asked: i64, day: i64, month: i64) -> Decision {
        // What each limit leaves; the daily one names a decline first.
        let left_today = self.daily.map(|limit| limit.saturating_sub(day));
        let left_month = self.monthly.map(|limit| limit.saturating_sub(month));
        let over = match (left_today, left_month) {
            (Some(left), _) if asked > left => Reason::DailyLimitExceeded,
            (_, Some(left)) if asked > left => Reason::MonthlyLimitExceeded,
            _ => return Decision::approve(Reason::Approved),
        };
        let left = left_today.into_iter().chain(left_month).min().unwrap_or(0);
        if self.partial && left > 0 {
            return Decision::partial(left);
        }
        Decision::decline(over)
    }

    /// The decision for what a shared ledger granted (`granted` of `asked`, the card having
    /// spent `day` and `month` before it): the ledger's amount, the reason from these limits.
    pub fn granted(&self, asked: i64, granted: i64, day: i64, month: i64) -> Decision {
        if granted >= asked {
            return Decision::approve(Reason::Approved);
        }
        if granted > 0 {
            return Decision::partial(granted);
        }
        match self.apply(asked, day, month) {
            declined @ Decision {
                approved: false, ..
            } => declined,
            // The ledger saw more spend than these figures show: still the limit's decline.
            _ if self.daily.is_some() => Decision::decline(Reason::DailyLimitExceeded),
            _ => Decision::decline(Reason::MonthlyLimitExceeded),
        }
    }
}

/// Where the rules before the spend limits leave a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rules {
    /// Decided: declined by the first rule that declines, or approved with no limit to apply.
    Decided(Decision),
    /// Only the card's spend against these limits decides.
    Limits(Limits),
}

/// Every rule but the spend limits, in order: card, cardholder, currency, category, amount.
pub fn check_rules(policy: &Policy, request: &Request<'_>) -> Rules {
    match limits_of(policy, request) {
        Ok(Some(limits)) => Rules::Limits(limits),
        Ok(None) => Rules::Decided(Decision::approve(Reason::Approved)),
        Err(declined) => Rules::Decided(declined),
    }
}

fn limits_of(policy: &Policy, request: &Request<'_>) -> Result<Option<Limits>, Decision> {
    let card_inactive = policy.inactive_cards.contains(request.card_id)
        || request
            .card_status
            .is_some_and(|s| *s != CardStatus::Active);
    if card_inactive {
        return Err(Decision::decline(Reason::CardInactive));
    }
    let holder_inactive = request
        .cardholder_id
        .is_some_and(|id| policy.inactive_cardholders.contains(id))
        || request
            .cardholder_status
            .is_some_and(|s| *s != CardholderStatus::Active);
    if holder_inactive {
        return Err(Decision::decline(Reason::CardholderInactive));
    }
    let currency = request.amount.currency;
    if !policy.allowed_currencies.is_empty() && !policy.allowed_currencies.contains(&currency) {
        return Err(Decision::decline(Reason::CurrencyNotAllowed));
    }
    if policy.blocked_categories.contains(request.category) {
        return Err(Decision::decline(Reason::CategoryBlocked));
    }
    if let Some(max) = policy.max_amount.get(&currency)
        && request.amount.amount > *max
    {
        return Err(Decision::decline(Reason::AmountOverLimit));
    }
    let daily = policy.daily_limit.get(&currency).copied();
    let monthly = policy.monthly_limit.get(&currency).copied();
    if daily.is_none() && monthly.is_none() {
        return Ok(None);
    }
    Ok(Some(Limits {
        daily,
        monthly,
        partial: policy.partial_approval && request.amount_controllable,
    }))
}

/// What to answer when the card's spend cannot be known: the policy's `on_spend_unknown`.
pub fn spend_unknown(policy: &Policy) -> Decision {
    match policy.on_spend_unknown {
        FailMode::Approve => Decision::approve(Reason::ApprovedSpendUnknown),
        FailMode::Decline => Decision::decline(Reason::SpendUnknown),
    }
}

/// Decides in memory: [`check_rules`], then the daily and monthly spend limits against
/// `spend`. The first rule that declines names the reason. A request over what the limits
/// leave is approved for what is left when the policy allows partial approvals, the amount is
/// controllable and something is left.
pub fn decide(policy: &Policy, request: &Request<'_>, spend: &dyn SpendView) -> Decision {
    match check_rules(policy, request) {
        Rules::Decided(decision) => decision,
        Rules::Limits(limits) => match spend.spend(request.card_id, request.amount.currency) {
            Spend::Unknown => spend_unknown(policy),
            Spend::Known { day, month } => limits.apply(request.amount.amount, day, month),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardstream_stripe::Currency;

    fn request(amount: i64, currency: Currency) -> Request<'static> {
        Request {
            card_id: "ic_1",
            cardholder_id: Some("ich_1"),
            card_status: Some(&CardStatus::Active),
            cardholder_status: Some(&CardholderStatus::Active),
            amount: Money::new(amount, currency),
            amount_controllable: false,
            category: "grocery_stores_supermarkets",
        }
    }

    fn policy() -> Policy {
        Policy::from_toml(
            r#"
            allowed_currencies = ["usd", "jpy"]
            blocked_categories = ["betting_casino_gambling"]
            inactive_cards = ["ic_lost"]
            inactive_cardholders = ["ich_gone"]
            [max_amount]
            usd = 10000
            jpy = 10000
            "#,
        )
        .unwrap()
    }

    #[test]
    fn the_empty_policy_approves_active_cards() {
        let d = decide(
            &Policy::default(),
            &request(i64::MAX, Currency::GBP),
            &NoSpendData,
        );
        assert_eq!(d, Decision::approve(Reason::Approved));
    }

    #[test]
    fn each_rule_declines_with_its_reason() {
        let p = policy();
        let ok = request(10000, Currency::USD);
        assert_eq!(decide_(&p, &ok).reason, Reason::Approved);
        assert_eq!(
            decide_(&p, &request(10001, Currency::USD)).reason,
            Reason::AmountOverLimit
        );
        // The maximum is per currency in minor units: ¥10,000 is the JPY limit, not $100.
        assert_eq!(
            decide_(&p, &request(10000, Currency::JPY)).reason,
            Reason::Approved
        );
        assert_eq!(
            decide_(&p, &request(1, Currency::EUR)).reason,
            Reason::CurrencyNotAllowed
        );
        let gambling = Request {
            category: "betting_casino_gambling",
            ..ok.clone()
        };
        assert_eq!(decide_(&p, &gambling).reason, Reason::CategoryBlocked);
        let lost = Request {
            card_id: "ic_lost",
            ..ok.clone()
        };
        assert_eq!(decide_(&p, &lost).reason, Reason::CardInactive);
        let canceled = Request {
            card_status: Some(&CardStatus::Canceled),
            ..ok.clone()
        };
        assert_eq!(decide_(&p, &canceled).reason, Reason::CardInactive);
        let gone = Request {
            cardholder_id: Some("ich_gone"),
            ..ok.clone()
        };
        assert_eq!(decide_(&p, &gone).reason, Reason::CardholderInactive);
        let blocked = Request {
            cardholder_status: Some(&CardholderStatus::Blocked),
            ..ok
        };
        assert_eq!(decide_(&p, &blocked).reason, Reason::CardholderInactive);
    }

    fn decide_(policy: &Policy, request: &Request<'_>) -> Decision {
        decide(policy, request, &NoSpendData)
    }

    struct Fixed(Spend);

    impl SpendView for Fixed {
        fn spend(&self, card_id: &str, currency: Currency) -> Spend {
            assert_eq!((card_id, currency), ("ic_1", Currency::USD));
            self.0
        }
    }

    #[test]
    fn spend_limits_count_what_was_spent_plus_what_is_asked() {
        let p = Policy::from_toml("[daily_limit]\nusd = 10000\n[monthly_limit]\nusd = 50000\n")
            .unwrap();
        let spent = |day, month| Fixed(Spend::Known { day, month });
        let r = |amount| request(amount, Currency::USD);
        assert_eq!(
            decide(&p, &r(4000), &spent(6000, 6000)).reason,
            Reason::Approved
        );
        assert_eq!(
            decide(&p, &r(4001), &spent(6000, 6000)).reason,
            Reason::DailyLimitExceeded
        );
        assert_eq!(
            decide(&p, &r(1000), &spent(0, 49_001)).reason,
            Reason::MonthlyLimitExceeded
        );
        assert_eq!(
            decide(&p, &r(1000), &spent(0, 49_000)).reason,
            Reason::Approved
        );
        // Refunds can make spend negative; that only leaves more room.
        assert_eq!(
            decide(&p, &r(12_000), &spent(-3000, -3000)).reason,
            Reason::Approved
        );
        // Limits are per currency: a JPY purchase is not held to the USD limits.
        assert_eq!(
            decide(&p, &request(1_000_000, Currency::JPY), &NoSpendData).reason,
            Reason::Approved
        );
    }

    #[test]
    fn unknown_spend_follows_the_configured_fail_mode() {
        let closed = Policy::from_toml("[daily_limit]\nusd = 10000\n").unwrap();
        let d = decide(&closed, &request(1, Currency::USD), &Fixed(Spend::Unknown));
        assert_eq!(d, Decision::decline(Reason::SpendUnknown));
        let open =
            Policy::from_toml("on_spend_unknown = \"approve\"\n[daily_limit]\nusd = 10000\n")
                .unwrap();
        let d = decide(&open, &request(1, Currency::USD), &Fixed(Spend::Unknown));
        assert_eq!(d, Decision::approve(Reason::ApprovedSpendUnknown));
        // Without limits, spend is never consulted (Fixed would panic on a lookup for EUR).
        assert_eq!(
            decide(
                &Policy::default(),
                &request(1, Currency::EUR),
                &Fixed(Spend::Unknown)
            )
            .reason,
            Reason::Approved
        );
    }

    /// A shared ledger's grant, read back as the decision: all of it, part of it (only
    /// what it granted), or none, with the limit that refused it named.
    #[test]
    fn a_ledger_grant_is_the_decision_and_the_limits_name_the_refusal() {
        let limits = Limits {
            daily: Some(10_000),
            monthly: Some(50_000),
            partial: true,
        };
        assert_eq!(
            limits.granted(6_000, 6_000, 0, 0),
            Decision::approve(Reason::Approved)
        );
        assert_eq!(
            limits.granted(6_000, 4_000, 6_000, 6_000),
            Decision::partial(4_000)
        );
        assert_eq!(
            limits.granted(6_000, 0, 10_000, 10_000),
            Decision::decline(Reason::DailyLimitExceeded)
        );
        let whole = Limits {
            partial: false,
            ..limits
        };
        assert_eq!(
            whole.granted(6_000, 0, 0, 48_000),
            Decision::decline(Reason::MonthlyLimitExceeded)
        );
        // The ledger saw spend these figures do not show: still a decline by the limit.
        assert_eq!(
            limits.granted(6_000, 0, 0, 0),
            Decision::decline(Reason::DailyLimitExceeded)
        );
    }

    /// Each case of a partial approval: not controllable, controllable and under, over (the
    /// daily or the monthly limit leaving less), limit exhausted, and the policy's switch off.
    #[test]
    fn partial_approvals_give_what_the_limits_leave_of_a_controllable_request() {
        let on = Policy::from_toml(
            "partial_approval = true\n[daily_limit]\nusd = 10000\n[monthly_limit]\nusd = 50000\n",
        )
        .unwrap();
        let spent = |day, month| Fixed(Spend::Known { day, month });
        let controllable = |amount| Request {
            amount_controllable: true,
            ..request(amount, Currency::USD)
        };
        // Not controllable: over the limit is a decline, as without partial approvals.
        assert_eq!(
            decide(&on, &request(5000, Currency::USD), &spent(6000, 6000)),
            Decision::decline(Reason::DailyLimitExceeded)
        );
        // Controllable and within the limits: all of it, no amount in the answer.
        assert_eq!(
            decide(&on, &controllable(4000), &spent(6000, 6000)),
            Decision::approve(Reason::Approved)
        );
        // Over the daily limit: what the day has left.
        let d = decide(&on, &controllable(5000), &spent(6000, 6000));
        assert_eq!(
            d,
            Decision {
                amount: Some(4000),
                ..Decision::approve(Reason::PartiallyApproved)
            }
        );
        assert_eq!(d.held(Money::new(5000, Currency::USD)).amount, 4000);
        // The month leaves less than the day: the smaller of the two.
        assert_eq!(
            decide(&on, &controllable(5000), &spent(0, 48_500)).amount,
            Some(1500)
        );
        // Exhausted (or overspent by refunds' reversal): nothing to approve.
        assert_eq!(
            decide(&on, &controllable(100), &spent(10_000, 10_000)),
            Decision::decline(Reason::DailyLimitExceeded)
        );
        assert_eq!(
            decide(&on, &controllable(100), &spent(12_000, 12_000)),
            Decision::decline(Reason::DailyLimitExceeded)
        );
        // Off (the default): a controllable request over the limit is declined.
        let off = Policy::from_toml("[daily_limit]\nusd = 10000\n").unwrap();
        assert!(!off.partial_approval);
        assert_eq!(
            decide(&off, &controllable(5000), &spent(6000, 6000)),
            Decision::decline(Reason::DailyLimitExceeded)
        );
        // A partial approval is an approval, counted with its own reason.
        assert!(Reason::PartiallyApproved.approves());
    }

    #[test]
    fn reasons_have_distinct_names() {
        let names: std::collections::BTreeSet<_> = Reason::ALL.iter().map(Reason::as_str).collect();
        assert_eq!(names.len(), Reason::ALL.len());
    }
}
