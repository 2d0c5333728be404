//! Scalars: 64-bit integers, calendar dates and instants, and money.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, SimpleObject, Value};
use cardstream_stripe::{Currency, Money as StripeMoney};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

/// A 64-bit integer (GraphQL's `Int` has 32 bits; amounts in minor units can exceed it).
/// JSON numbers; exact in JavaScript up to 2^53.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Long(pub i64);

#[Scalar]
impl ScalarType for Long {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(n) => n
                .as_i64()
                .map(Long)
                .ok_or_else(|| InputValueError::custom("not a 64-bit integer")),
            Value::String(s) => s
                .parse()
                .map(Long)
                .map_err(|_| InputValueError::custom("not a 64-bit integer")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::Number(self.0.into())
    }
}

/// A calendar day in UTC, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date(pub time::Date);

const DATE: &[time::format_description::FormatItem<'static>] =
    format_description!("[year]-[month]-[day]");

impl Date {
    /// Days since 1970-01-01.
    pub fn day_number(&self) -> i32 {
        self.0.to_julian_day()
            - time::Date::from_calendar_date(1970, time::Month::January, 1)
                .map_or(2_440_588, |d| d.to_julian_day())
    }

    pub fn from_day_number(day: i32) -> Option<Date> {
        let epoch = time::Date::from_calendar_date(1970, time::Month::January, 1).ok()?;
        time::Date::from_julian_day(epoch.to_julian_day() + day)
            .ok()
            .map(Date)
    }

    /// A date written `YYYY-MM-DD`, as Postgres writes one.
    pub fn from_iso(text: &str) -> Option<Date> {
        time::Date::parse(text, DATE).ok().map(Date)
    }

    /// Unix seconds at the start of the day.
    pub fn start_seconds(&self) -> i64 {
        i64::from(self.day_number()) * 86_400
    }
}

#[Scalar]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => time::Date::parse(s, DATE).map(Date).map_err(|_| {
                InputValueError::custom(format!("{s:?} is not a date like 2026-11-25"))
            }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format(DATE).unwrap_or_default())
    }
}

/// An instant, RFC 3339 in UTC (`2026-11-25T14:03:00Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime(pub i64);

impl DateTime {
    /// An RFC 3339 instant, as the scalar takes it.
    pub fn from_rfc3339(text: &str) -> Option<DateTime> {
        time::OffsetDateTime::parse(text, &Rfc3339)
            .ok()
            .map(|t| DateTime(t.unix_timestamp()))
    }
}

#[Scalar]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => DateTime::from_rfc3339(s).ok_or_else(|| {
                InputValueError::custom(format!("{s:?} is not an RFC 3339 instant"))
            }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        let text = time::OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default();
        Value::String(text)
    }
}

/// An amount of money: integer minor units of its currency (cents; yen for JPY), the
/// currency, and the amount formatted for people, respecting zero-decimal currencies.
#[derive(Debug, Clone, SimpleObject)]
pub struct Money {
    /// In the currency's minor unit, signed.
    pub amount: Long,
    /// Lowercase ISO 4217 code.
    pub currency: String,
    /// E.g. `$1,234.50`, `¥1,200`, `-€3.00`.
    pub formatted: String,
    /// Decimal places of one major unit (0 for JPY, 2 for USD, 3 for KWD): `amount` divided by
    /// 10^exponent is the amount in major units. 2 for a code Stripe does not use.
    pub exponent: i32,
}

impl Money {
    pub fn new(amount: i64, currency: &str) -> Money {
        let parsed = currency.parse::<Currency>();
        let formatted = parsed.as_ref().map_or_else(
            |_| format!("{amount} {currency}"),
            |c| StripeMoney::new(amount, *c).format(),
        );
        let exponent = parsed.map_or(2, |c| c.exponent());
        Money {
            amount: Long(amount),
            currency: currency.to_owned(),
            formatted,
            exponent: i32::try_from(exponent).unwrap_or(2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_round_trip() {
        let d = Date(time::Date::from_calendar_date(2026, time::Month::November, 25).unwrap());
        assert_eq!(d.day_number(), 20_782);
        assert_eq!(Date::from_day_number(20_782), Some(d));
        assert_eq!(d.start_seconds(), 20_782 * 86_400);
        assert_eq!(
            Date::from_day_number(0).unwrap().to_value(),
            Value::String("1970-01-01".into())
        );
    }

    #[test]
    fn money_formats_by_currency() {
        assert_eq!(Money::new(123_450, "usd").formatted, "$1,234.50");
        assert_eq!(Money::new(1_200, "jpy").formatted, "¥1,200");
        let exponents = ["usd", "jpy", "kwd", "bhd"].map(|c| Money::new(1, c).exponent);
        assert_eq!(exponents, [2, 0, 3, 3]);
    }
}
