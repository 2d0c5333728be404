//! Admin objects: roles and the authorization policy.

use async_graphql::{Enum, InputObject, SimpleObject};
use cardstream_policy::{FailMode, Policy};
use cardstream_store::Role;

use super::errors::{ApiError, ApiResult};
use super::scalars::{Long, Money};

/// What a user may do: an admin sees and edits everything, a cardholder user sees the cards
/// of the cardholders linked to them.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "Role")]
pub enum RoleKind {
    Admin,
    Cardholder,
}

impl From<Role> for RoleKind {
    fn from(role: Role) -> Self {
        match role {
            Role::Admin => RoleKind::Admin,
            Role::Cardholder => RoleKind::Cardholder,
        }
    }
}

impl From<RoleKind> for Role {
    fn from(role: RoleKind) -> Self {
        match role {
            RoleKind::Admin => Role::Admin,
            RoleKind::Cardholder => Role::Cardholder,
        }
    }
}

/// What the gateway answers when it cannot tell a card's spend in time.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "FailMode")]
pub enum FailModeKind {
    Approve,
    Decline,
}

/// An amount per currency.
/// An amount in one currency: in minor units (`amount`), or as people write it (`decimal`,
/// e.g. "1500.00", at most as many decimals as the currency has). Exactly one of the two.
#[derive(InputObject, Clone)]
pub struct CurrencyAmountInput {
    pub currency: String,
    /// Minor units.
    pub amount: Option<Long>,
    /// In the currency's major unit, `.` before the decimals, no thousands separators.
    pub decimal: Option<String>,
}

/// `text` ("1500.00") in minor units of `currency`, refused with a reason a person can act on.
fn minor_units(text: &str, currency: cardstream_stripe::Currency) -> ApiResult<i64> {
    let exponent = currency.exponent();
    let code = currency.to_string().to_uppercase();
    let bad =
        || ApiError::BadUserInput(format!("{text:?} is not an amount of {code} like 1500.00"));
    let (whole, part) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    if whole.is_empty()
        || !whole
            .bytes()
            .chain(part.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    if part.len() > exponent as usize {
        return Err(ApiError::BadUserInput(format!(
            "{text:?} has more decimals than {code} has ({exponent})"
        )));
    }
    let padded = format!("{whole}{part:0<width$}", width = exponent as usize);
    padded.parse::<i64>().map_err(|_| {
        ApiError::BadUserInput(format!("{text:?} is more than an amount of {code} can be"))
    })
}

/// The authorization policy: what the gateway approves when Stripe asks.
#[derive(SimpleObject, Clone)]
#[graphql(name = "Policy")]
pub struct PolicyObject {
    /// 0 when no admin has saved one (the gateway then uses its own configuration).
    pub version: Long,
    pub allowed_currencies: Vec<String>,
    pub max_amount: Vec<CurrencyAmountView>,
    pub blocked_categories: Vec<String>,
    pub inactive_cards: Vec<String>,
    pub inactive_cardholders: Vec<String>,
    pub daily_limit: Vec<CurrencyAmountView>,
    pub monthly_limit: Vec<CurrencyAmountView>,
    pub on_spend_unknown: FailModeKind,
    /// A controllable request over what the limits leave is approved for what is left.
    pub partial_approval: bool,
    pub updated_by: Option<String>,
    /// Why the gateway refuses this saved policy and keeps the one before it in force (a row
    /// written past the API, or saved under other rules); null when it applies. Saving a new
    /// policy replaces it.
    pub refused: Option<String>,
}

/// An amount per currency, formatted too.
#[derive(SimpleObject, Clone)]
#[graphql(name = "CurrencyAmount")]
pub struct CurrencyAmountView {
    pub currency: String,
    pub amount: Money,
}

fn amounts(
    map: &std::collections::BTreeMap<cardstream_stripe::Currency, i64>,
) -> Vec<CurrencyAmountView> {
    map.iter()
        .map(|(c, a)| CurrencyAmountView {
            currency: c.to_string(),
            amount: Money::new(*a, c.as_str()),
        })
        .collect()
}

impl PolicyObject {
    pub fn new(version: i64, policy: &Policy, updated_by: Option<String>) -> Self {
        PolicyObject {
            version: Long(version),
            allowed_currencies: policy
                .allowed_currencies
                .iter()
                .map(ToString::to_string)
                .collect(),
            max_amount: amounts(&policy.max_amount),
            blocked_categories: policy.blocked_categories.iter().cloned().collect(),
            inactive_cards: policy.inactive_cards.iter().cloned().collect(),
            inactive_cardholders: policy.inactive_cardholders.iter().cloned().collect(),
            daily_limit: amounts(&policy.daily_limit),
            monthly_limit: amounts(&policy.monthly_limit),
            on_spend_unknown: match policy.on_spend_unknown {
                FailMode::Approve => FailModeKind::Approve,
                FailMode::Decline => FailModeKind::Decline,
            },
            partial_approval: policy.partial_approval,
            updated_by,
            refused: None,
        }
    }

    /// The same, for a saved row the gateway refuses, and why.
    pub fn with_refusal(mut self, reason: Option<String>) -> Self {
        self.refused = reason;
        self
    }
}

/// A whole new policy (every field replaces the stored one).
#[derive(InputObject, Clone)]
pub struct PolicyInput {
    #[graphql(default)]
    pub allowed_currencies: Vec<String>,
    #[graphql(default)]
    pub max_amount: Vec<CurrencyAmountInput>,
    #[graphql(default)]
    pub blocked_categories: Vec<String>,
    #[graphql(default)]
    pub inactive_cards: Vec<String>,
    #[graphql(default)]
    pub inactive_cardholders: Vec<String>,
    #[graphql(default)]
    pub daily_limit: Vec<CurrencyAmountInput>,
    #[graphql(default)]
    pub monthly_limit: Vec<CurrencyAmountInput>,
    #[graphql(default_with = "FailModeKind::Decline")]
    pub on_spend_unknown: FailModeKind,
    /// Approve what the daily/monthly limit leaves of a request whose amount Stripe lets be
    /// chosen, instead of declining it. Off by default.
    #[graphql(default)]
    pub partial_approval: bool,
}

fn currency(code: &str) -> ApiResult<cardstream_stripe::Currency> {
    code.parse()
        .map_err(|e: cardstream_stripe::Error| ApiError::BadUserInput(e.to_string()))
}

fn amount_map(
    items: &[CurrencyAmountInput],
) -> ApiResult<std::collections::BTreeMap<cardstream_stripe::Currency, i64>> {
    items
        .iter()
        .map(|i| {
            let c = currency(&i.currency)?;
            let amount = match (i.amount, &i.decimal) {
                (Some(minor), None) => minor.0,
                (None, Some(text)) => minor_units(text, c)?,
                _ => {
                    return Err(ApiError::BadUserInput(format!(
                        "give {}'s amount as `amount` (minor units) or `decimal`, one of them",
                        c.to_string().to_uppercase()
                    )));
                }
            };
            Ok((c, amount))
        })
        .collect()
}

impl PolicyInput {
    /// The policy, validated as the gateway would validate it.
    pub fn to_policy(&self) -> ApiResult<Policy> {
        let policy = Policy {
            allowed_currencies: self
                .allowed_currencies
                .iter()
                .map(|c| currency(c))
                .collect::<ApiResult<_>>()?,
            max_amount: amount_map(&self.max_amount)?,
            blocked_categories: self
                .blocked_categories
                .iter()
                .map(|c| c.trim().to_owned())
                .collect(),
            inactive_cards: self
                .inactive_cards
                .iter()
                .map(|c| c.trim().to_owned())
                .collect(),
            inactive_cardholders: self
                .inactive_cardholders
                .iter()
                .map(|c| c.trim().to_owned())
                .collect(),
            daily_limit: amount_map(&self.daily_limit)?,
            monthly_limit: amount_map(&self.monthly_limit)?,
            on_spend_unknown: match self.on_spend_unknown {
                FailModeKind::Approve => FailMode::Approve,
                FailModeKind::Decline => FailMode::Decline,
            },
            partial_approval: self.partial_approval,
        };
        policy
            .validate()
            .map_err(|e| ApiError::BadUserInput(e.to_string()))?;
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::minor_units;

    #[test]
    fn amounts_written_as_people_write_them_become_minor_units() {
        let usd = "usd".parse().unwrap();
        let jpy = "jpy".parse().unwrap();
        let kwd = "kwd".parse().unwrap();
        assert_eq!(minor_units("1500.00", usd).ok(), Some(150_000));
        assert_eq!(minor_units("1500", usd).ok(), Some(150_000));
        assert_eq!(minor_units("0.5", usd).ok(), Some(50));
        assert_eq!(minor_units("200000", jpy).ok(), Some(200_000));
        assert_eq!(minor_units("1.250", kwd).ok(), Some(1_250));
        for bad in [
            "1.005",
            "1,500.00",
            "",
            ".5",
            "1e3",
            "-5",
            "99999999999999999999",
        ] {
            assert!(minor_units(bad, usd).is_err(), "{bad}");
        }
        assert!(minor_units("1.5", jpy).is_err());
    }
}
