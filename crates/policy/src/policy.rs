use std::collections::{BTreeMap, BTreeSet};

use cardstream_stripe::{Currency, is_merchant_category};
use serde::{Deserialize, Serialize};

use crate::Error;

/// What cardstream approves. An empty policy approves everything for active cards.
///
/// In TOML:
/// ```toml
/// allowed_currencies = ["usd", "eur", "jpy"]
/// blocked_categories = ["betting_casino_gambling"]
/// inactive_cards = ["ic_123"]
/// inactive_cardholders = []
/// on_spend_unknown = "decline"
/// partial_approval = true   # approve what the limits leave of a controllable request
/// [max_amount]          # per authorization, in minor units of each currency
/// usd = 500000          # $5,000.00
/// jpy = 500000          # ¥500,000
/// [daily_limit]         # per card, per UTC day, spend plus held amounts
/// usd = 1000000
/// [monthly_limit]       # per card, per UTC calendar month
/// usd = 5000000
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Currencies that may be authorized. Empty means any currency.
    #[serde(default)]
    pub allowed_currencies: BTreeSet<Currency>,
    /// Largest single authorization per currency, in minor units. A currency not listed has
    /// no per-authorization maximum.
    #[serde(default)]
    pub max_amount: BTreeMap<Currency, i64>,
    /// Stripe merchant categories (`merchant_data.category`) that are always declined.
    #[serde(default)]
    pub blocked_categories: BTreeSet<String>,
    /// Cards (`ic_…`) known to be inactive here, whatever Stripe's card status says.
    #[serde(default)]
    pub inactive_cards: BTreeSet<String>,
    /// Cardholders (`ich_…`) known to be inactive here.
    #[serde(default)]
    pub inactive_cardholders: BTreeSet<String>,
    /// Most a card may spend per UTC day, per currency, in minor units: captures minus
    /// refunds so far today, plus approved holds not yet captured, plus this request.
    #[serde(default)]
    pub daily_limit: BTreeMap<Currency, i64>,
    /// The same, per UTC calendar month.
    #[serde(default)]
    pub monthly_limit: BTreeMap<Currency, i64>,
    /// What to decide when a limit applies but the card's spend is not known or is stale.
    #[serde(default)]
    pub on_spend_unknown: FailMode,
    /// When a request is over what the daily or monthly limit has left and Stripe lets the
    /// amount be chosen (`pending_request.is_amount_controllable`, e.g. at a fuel pump),
    /// approve what is left instead of declining. Off: such a request is declined.
    #[serde(default)]
    pub partial_approval: bool,
}

/// The decision when the data a rule needs is missing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Approve (fail open): no purchase is lost to an outage, limits may be exceeded.
    Approve,
    /// Decline (fail closed): limits hold, purchases fail while spend is unknown.
    #[default]
    Decline,
}

impl Policy {
    /// Parses TOML and validates.
    pub fn from_toml(text: &str) -> Result<Policy, String> {
        let policy: Policy = toml::from_str(text).map_err(|e| e.to_string())?;
        policy.validate().map_err(|e| e.to_string())?;
        Ok(policy)
    }

    /// Whether any rule needs the card's spend.
    pub fn needs_spend(&self) -> bool {
        !self.daily_limit.is_empty() || !self.monthly_limit.is_empty()
    }

    /// Catches the mistakes that would silently change decisions: a misspelt category blocks
    /// nothing, a negative maximum declines everything.
    pub fn validate(&self) -> Result<(), Error> {
        let unknown: Vec<&str> = self
            .blocked_categories
            .iter()
            .map(String::as_str)
            .filter(|c| !is_merchant_category(c))
            .collect();
        if !unknown.is_empty() {
            return Err(Error::Invalid(format!(
                "blocked_categories has names that are not Stripe merchant categories: {}",
                unknown.join(", ")
            )));
        }
        for (name, map) in [
            ("max_amount", &self.max_amount),
            ("daily_limit", &self.daily_limit),
            ("monthly_limit", &self.monthly_limit),
        ] {
            if let Some((currency, amount)) = map.iter().find(|(_, a)| **a < 0) {
                return Err(Error::Invalid(format!(
                    "{name} for {currency} is {amount}; it must be zero or more"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let policy = Policy::from_toml(
            r#"
            allowed_currencies = ["usd", "EUR", "jpy"]
            blocked_categories = ["betting_casino_gambling"]
            inactive_cards = ["ic_123"]
            [max_amount]
            usd = 500000
            jpy = 500000
            "#,
        )
        .unwrap();
        assert!(policy.allowed_currencies.contains(&Currency::EUR));
        assert_eq!(policy.max_amount[&Currency::JPY], 500000);
        assert!(policy.inactive_cards.contains("ic_123"));
    }

    #[test]
    fn rejects_typos_and_nonsense() {
        let err = Policy::from_toml(r#"blocked_categories = ["gambling"]"#).unwrap_err();
        assert!(err.contains("gambling"), "{err}");
        let err = Policy::from_toml("[max_amount]\nusd = -1").unwrap_err();
        assert!(err.contains("usd"), "{err}");
        let err = Policy::from_toml(r#"allowed_currency = ["usd"]"#).unwrap_err();
        assert!(err.contains("allowed_currency"), "{err}");
        let err = Policy::from_toml(r#"allowed_currencies = ["dollars"]"#).unwrap_err();
        assert!(err.contains("dollars"), "{err}");
    }
}
