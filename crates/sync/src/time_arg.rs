//! `--since` / `--until` values: a date, an RFC 3339 time, or unix seconds.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

/// Unix seconds from `2026-01-31` (midnight UTC), `2026-01-31T12:00:00Z` or `1769817600`.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(at.unix_timestamp());
    }
    if let Ok(day) = Date::parse(text, format_description!("[year]-[month]-[day]")) {
        return Ok(day.midnight().assume_utc().unix_timestamp());
    }
    Err(format!(
        "{text:?} is not a date (2026-01-31), an RFC 3339 time (2026-01-31T12:00:00Z) or unix seconds"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_times_and_seconds() {
        assert_eq!(parse_time("2026-01-31"), Ok(1_769_817_600));
        assert_eq!(parse_time("2026-01-31T00:00:10Z"), Ok(1_769_817_610));
        assert_eq!(parse_time("2026-01-31T01:00:00+01:00"), Ok(1_769_817_600));
        assert_eq!(parse_time("1769817600"), Ok(1_769_817_600));
        assert!(parse_time("yesterday").unwrap_err().contains("not a date"));
    }
}
