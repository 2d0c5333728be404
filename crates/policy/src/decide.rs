use cardstream_stripe::{Authorization, CardStatus, CardholderStatus, Money};

use crate::Policy;

/// What the policy looks at, taken from an `issuing_authorization.request`.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub card_id: &'a str,
    pub cardholder_id: Option<&'a str>,
    pub card_status: Option<&'a CardStatus>,
    pub cardholder_status: Option<&'a CardholderStatus>,
    pub amount: Money,
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
        }
    }

    pub const ALL: [Reason; 6] = [
        Reason::Approved,
        Reason::CardInactive,
        Reason::CardholderInactive,
        Reason::CurrencyNotAllowed,
        Reason::CategoryBlocked,
        Reason::AmountOverLimit,
    ];
}

/// The answer to Stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub approved: bool,
    pub reason: Reason,
}

impl Decision {
    fn decline(reason: Reason) -> Self {
        Decision {
            approved: false,
            reason,
        }
    }
}

/// Decides in memory, in order: card, cardholder, currency, category, amount. The first rule
/// that declines names the reason.
pub fn decide(policy: &Policy, request: &Request<'_>) -> Decision {
    let card_inactive = policy.inactive_cards.contains(request.card_id)
        || request
            .card_status
            .is_some_and(|s| *s != CardStatus::Active);
    if card_inactive {
        return Decision::decline(Reason::CardInactive);
    }
    let holder_inactive = request
        .cardholder_id
        .is_some_and(|id| policy.inactive_cardholders.contains(id))
        || request
            .cardholder_status
            .is_some_and(|s| *s != CardholderStatus::Active);
    if holder_inactive {
        return Decision::decline(Reason::CardholderInactive);
    }
    let currency = request.amount.currency;
    if !policy.allowed_currencies.is_empty() && !policy.allowed_currencies.contains(&currency) {
        return Decision::decline(Reason::CurrencyNotAllowed);
    }
    if policy.blocked_categories.contains(request.category) {
        return Decision::decline(Reason::CategoryBlocked);
    }
    if let Some(max) = policy.max_amount.get(&currency)
        && request.amount.amount > *max
    {
        return Decision::decline(Reason::AmountOverLimit);
    }
    Decision {
        approved: true,
        reason: Reason::Approved,
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
        let d = decide(&Policy::default(), &request(i64::MAX, Currency::GBP));
        assert_eq!(
            d,
            Decision {
                approved: true,
                reason: Reason::Approved
            }
        );
    }

    #[test]
    fn each_rule_declines_with_its_reason() {
        let p = policy();
        let ok = request(10000, Currency::USD);
        assert_eq!(decide(&p, &ok).reason, Reason::Approved);
        assert_eq!(
            decide(&p, &request(10001, Currency::USD)).reason,
            Reason::AmountOverLimit
        );
        // The maximum is per currency in minor units: ¥10,000 is the JPY limit, not $100.
        assert_eq!(
            decide(&p, &request(10000, Currency::JPY)).reason,
            Reason::Approved
        );
        assert_eq!(
            decide(&p, &request(1, Currency::EUR)).reason,
            Reason::CurrencyNotAllowed
        );
        let gambling = Request {
            category: "betting_casino_gambling",
            ..ok.clone()
        };
        assert_eq!(decide(&p, &gambling).reason, Reason::CategoryBlocked);
        let lost = Request {
            card_id: "ic_lost",
            ..ok.clone()
        };
        assert_eq!(decide(&p, &lost).reason, Reason::CardInactive);
        let canceled = Request {
            card_status: Some(&CardStatus::Canceled),
            ..ok.clone()
        };
        assert_eq!(decide(&p, &canceled).reason, Reason::CardInactive);
        let gone = Request {
            cardholder_id: Some("ich_gone"),
            ..ok.clone()
        };
        assert_eq!(decide(&p, &gone).reason, Reason::CardholderInactive);
        let blocked = Request {
            cardholder_status: Some(&CardholderStatus::Blocked),
            ..ok
        };
        assert_eq!(decide(&p, &blocked).reason, Reason::CardholderInactive);
    }

    #[test]
    fn reasons_have_distinct_names() {
        let names: std::collections::BTreeSet<_> = Reason::ALL.iter().map(Reason::as_str).collect();
        assert_eq!(names.len(), Reason::ALL.len());
    }
}
