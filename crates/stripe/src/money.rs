//! Money as Stripe sends it: an integer amount in the currency's minor unit, with its currency.
//!
//! Amounts are never floats. A sum is only meaningful within one currency, so [`Money`] has no
//! `Add` across currencies; callers group by [`Currency`] first.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// An ISO 4217 currency code, stored lowercase as Stripe sends it (`usd`, `jpy`).
///
/// Three ASCII letters inline, so it is `Copy` and cheap to use as a map key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

/// Currencies whose amounts Stripe expresses without a fractional part (1 = one yen).
/// From Stripe's "zero-decimal currencies" list.
const ZERO_DECIMAL: &[&str] = &[
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];

/// Currencies whose minor unit is a thousandth (Stripe's "three-decimal currencies").
const THREE_DECIMAL: &[&str] = &["bhd", "jod", "kwd", "omr", "tnd"];

impl Currency {
    pub const USD: Currency = Currency(*b"usd");
    pub const EUR: Currency = Currency(*b"eur");
    pub const GBP: Currency = Currency(*b"gbp");
    pub const JPY: Currency = Currency(*b"jpy");

    /// The lowercase code, e.g. `"usd"`.
    pub fn as_str(&self) -> &str {
        // The constructor only admits ASCII letters, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// How many decimal places one major unit has: 0 for JPY, 2 for USD, 3 for KWD.
    pub fn exponent(&self) -> u32 {
        let code = self.as_str();
        if ZERO_DECIMAL.contains(&code) {
            0
        } else if THREE_DECIMAL.contains(&code) {
            3
        } else {
            2
        }
    }

    pub fn is_zero_decimal(&self) -> bool {
        self.exponent() == 0
    }

    fn symbol(&self) -> Option<&'static str> {
        match &self.0 {
            b"usd" => Some("$"),
            b"eur" => Some("€"),
            b"gbp" => Some("£"),
            b"jpy" => Some("¥"),
            _ => None,
        }
    }
}

impl FromStr for Currency {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(Error::InvalidCurrency(s.chars().take(16).collect()));
        }
        let mut code = [0u8; 3];
        for (dst, src) in code.iter_mut().zip(bytes) {
            *dst = src.to_ascii_lowercase();
        }
        Ok(Currency(code))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An amount in minor units of `currency`. Signed: Stripe captures are negative.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Money {
    pub amount: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: i64, currency: Currency) -> Self {
        Money { amount, currency }
    }

    /// Human formatting that respects the currency's exponent: `$1,234.50`, `¥1,200`,
    /// `-€3.00`, `12.345 KWD`.
    pub fn format(&self) -> String {
        let number = self.major_units(group_thousands);
        let sign = if self.amount < 0 { "-" } else { "" };
        match self.currency.symbol() {
            Some(symbol) => format!("{sign}{symbol}{number}"),
            None => format!(
                "{sign}{number} {}",
                self.currency.as_str().to_ascii_uppercase()
            ),
        }
    }
}

impl Money {
    /// The amount in the currency's major unit, as a plain decimal for files and other
    /// programs: `1234.50`, `-0.05`, `1200` (yen), `12.345` (KWD).
    pub fn decimal(&self) -> String {
        let sign = if self.amount < 0 { "-" } else { "" };
        format!("{sign}{}", self.major_units(|n| n.to_string()))
    }

    /// The magnitude in major units, the whole part written by `whole`.
    fn major_units(&self, whole: impl Fn(u64) -> String) -> String {
        let exponent = self.currency.exponent();
        let magnitude = self.amount.unsigned_abs();
        let scale = 10u64.pow(exponent);
        let major = whole(magnitude / scale);
        if exponent == 0 {
            major
        } else {
            format!(
                "{major}.{:0width$}",
                magnitude % scale,
                width = exponent as usize
            )
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format())
    }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(amount: i64, code: &str) -> Money {
        Money::new(amount, code.parse().unwrap())
    }

    #[test]
    fn formats_respect_the_currency_exponent() {
        assert_eq!(money(123450, "usd").format(), "$1,234.50");
        assert_eq!(money(-300, "EUR").format(), "-€3.00");
        assert_eq!(money(1200, "jpy").format(), "¥1,200");
        assert_eq!(money(5, "krw").format(), "5 KRW");
        assert_eq!(money(12345, "kwd").format(), "12.345 KWD");
        assert_eq!(money(7, "gbp").format(), "£0.07");
        assert_eq!(money(0, "chf").format(), "0.00 CHF");
        assert_eq!(
            money(i64::MIN, "usd").format(),
            "-$92,233,720,368,547,758.08"
        );
    }

    #[test]
    fn zero_decimal_currencies_are_known() {
        for code in ["jpy", "krw", "vnd", "clp", "xof"] {
            assert!(
                code.parse::<Currency>().unwrap().is_zero_decimal(),
                "{code}"
            );
        }
        for code in ["usd", "eur", "gbp", "kwd"] {
            assert!(
                !code.parse::<Currency>().unwrap().is_zero_decimal(),
                "{code}"
            );
        }
    }

    #[test]
    fn currency_codes_are_validated_and_lowercased() {
        assert_eq!("USD".parse::<Currency>().unwrap(), Currency::USD);
        assert!("us".parse::<Currency>().is_err());
        assert!("usdd".parse::<Currency>().is_err());
        assert!("u$d".parse::<Currency>().is_err());
        assert!("ü".parse::<Currency>().is_err());
        let json: Currency = serde_json::from_str("\"jpy\"").unwrap();
        assert_eq!(json, Currency::JPY);
        assert_eq!(serde_json::to_string(&json).unwrap(), "\"jpy\"");
    }
}
