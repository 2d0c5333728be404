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
/// [max_amount]          # per authorization, in minor units of each currency
/// usd = 500000          # $5,000.00
/// jpy = 500000          # ¥500,000
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
}

impl Policy {
    /// Parses TOML and validates.
    pub fn from_toml(text: &str) -> Result<Policy, String> {
        let policy: Policy = toml::from_str(text).map_err(|e| e.to_string())?;
        policy.validate().map_err(|e| e.to_string())?;
        Ok(policy)
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
        if let Some((currency, amount)) = self.max_amount.iter().find(|(_, a)| **a < 0) {
            return Err(Error::Invalid(format!(
                "max_amount for {currency} is {amount}; it must be zero or more"
            )));
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
