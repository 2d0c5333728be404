//! `GET /export/activity.csv?card=…`: a card's activity as CSV, filtered as the dashboard's
//! activity is (the same checks), newest first. Streamed a page of 1,000 rows at a time, so any
//! number of rows costs the API one page of memory. Signed in with the usual bearer token; a
//! card the viewer may not see is 404, as in GraphQL.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cardstream_store::{ActivityFilter, Cursor, Direction, Page, Store, entities::authorizations};
use futures_util::stream;

use crate::graphql::{ActivityFilterInput, Date, DateTime, Long, StatusFilter, activity_filter};
use crate::http::{AppState, bearer, credentials};

/// Rows read per statement.
const PAGE: u64 = 1_000;

/// The query string: the card, and the activity filter's fields as GraphQL takes them
/// (`status` APPROVED/DECLINED/PENDING, days `from`/`to`, instants `fromTime`/`toTime` in
/// RFC 3339, amounts in minor units).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExportQuery {
    card: String,
    status: Option<String>,
    category: Option<String>,
    merchant: Option<String>,
    from: Option<String>,
    to: Option<String>,
    from_time: Option<String>,
    to_time: Option<String>,
    min_amount: Option<i64>,
    max_amount: Option<i64>,
}

impl ExportQuery {
    /// The filter, checked as GraphQL checks it; a value that does not parse is named.
    fn filter(self) -> Result<ActivityFilter, String> {
        let day = |name: &str, v: Option<String>| -> Result<Option<Date>, String> {
            v.filter(|v| !v.is_empty())
                .map(|v| {
                    Date::from_iso(&v).ok_or(format!("`{name}` is not a date like 2026-11-25"))
                })
                .transpose()
        };
        let instant = |name: &str, v: Option<String>| -> Result<Option<DateTime>, String> {
            v.filter(|v| !v.is_empty())
                .map(|v| {
                    DateTime::from_rfc3339(&v).ok_or(format!("`{name}` is not an RFC 3339 instant"))
                })
                .transpose()
        };
        let status = match self.status.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some("APPROVED") => Some(StatusFilter::Approved),
            Some("DECLINED") => Some(StatusFilter::Declined),
            Some("PENDING") => Some(StatusFilter::Pending),
            Some(other) => {
                return Err(format!(
                    "`status` {other:?} is not APPROVED, DECLINED or PENDING"
                ));
            }
        };
        let input = ActivityFilterInput {
            status,
            category: self.category.filter(|v| !v.is_empty()),
            merchant: self.merchant.filter(|v| !v.is_empty()),
            from: day("from", self.from)?,
            to: day("to", self.to)?,
            from_time: instant("fromTime", self.from_time)?,
            to_time: instant("toTime", self.to_time)?,
            min_amount: self.min_amount.map(Long),
            max_amount: self.max_amount.map(Long),
        };
        activity_filter(Some(input)).map_err(|e| e.to_string())
    }
}

pub(crate) async fn activity_csv(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<ExportQuery>,
) -> Response {
    let refused = |status: StatusCode, why: &str| (status, why.to_owned()).into_response();
    let Some(credentials) = credentials(&state, bearer(&headers)) else {
        return refused(
            StatusCode::UNAUTHORIZED,
            "sign in first: no valid bearer token",
        );
    };
    let viewer = match state.sessions.viewer(&credentials).await {
        Ok(Some(viewer)) => viewer,
        Ok(None) => {
            return refused(
                StatusCode::UNAUTHORIZED,
                "the session has ended; sign in again",
            );
        }
        Err(_) => {
            return refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is not answering; try again",
            );
        }
    };
    let card = match state
        .store
        .cards_by_ids(std::slice::from_ref(&query.card))
        .await
    {
        Ok(mut cards) => cards.pop(),
        Err(_) => {
            return refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is not answering; try again",
            );
        }
    };
    let Some(card) = card.filter(|c| {
        viewer.sees_account(c.account.as_deref()) && viewer.sees_cardholder(&c.cardholder_id)
    }) else {
        return refused(StatusCode::NOT_FOUND, "no such card, or not yours to see");
    };
    let filter = match query.filter() {
        Ok(filter) => filter,
        Err(why) => return refused(StatusCode::BAD_REQUEST, &why),
    };
    let filename = format!("activity-{}.csv", card.id);
    let rows = csv_stream(state.store.clone(), card.id, filter);
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(rows),
    )
        .into_response()
}

const HEADER: &str = "created,authorization,merchant,category,city,country,amount,currency,outcome,status,decline_reason,cardstream_reason\n";

/// The header, then a page at a time until a page comes back short. A database error ends the
/// body with an error, so the download fails visibly rather than ending short as if complete.
fn csv_stream(
    store: Store,
    card: String,
    filter: ActivityFilter,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> {
    let start = (store, card, filter, None::<Cursor>, false, true);
    stream::unfold(
        start,
        |(store, card, filter, from, done, first)| async move {
            if done {
                return None;
            }
            let page = Page {
                from: from.clone(),
                direction: Direction::Forward,
                limit: PAGE,
            };
            let rows = match store.activity(&card, &filter, &page).await {
                Ok(rows) => rows,
                Err(err) => {
                    let err = std::io::Error::other(format!("reading the activity failed: {err}"));
                    return Some((Err(err), (store, card, filter, from, true, false)));
                }
            };
            let done = (rows.len() as u64) < PAGE;
            let next = rows
                .last()
                .map(|r| Cursor {
                    created: r.created,
                    id: r.id.clone(),
                })
                .or(from);
            let mut text = if first {
                HEADER.to_owned()
            } else {
                String::new()
            };
            for r in &rows {
                text.push_str(&line(r));
            }
            Some((Ok(text), (store, card, filter, next, done, false)))
        },
    )
}

/// One row. Amounts in the currency's major unit, as a person reads them ("12.50"); text
/// fields quoted when they need to be; a field starting like a formula is prefixed with a
/// quote, so a spreadsheet shows it rather than running it.
fn line(a: &authorizations::Model) -> String {
    let created = time::OffsetDateTime::from_unix_timestamp(a.created)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let outcome = if a.approved {
        "approved"
    } else if a.status == "pending" {
        "pending"
    } else {
        "declined"
    };
    let fields = [
        created,
        a.id.clone(),
        a.merchant_name.clone().unwrap_or_default(),
        a.merchant_category.clone(),
        a.merchant_city.clone().unwrap_or_default(),
        a.merchant_country.clone().unwrap_or_default(),
        decimal(a.requested_amount, &a.currency),
        a.currency.clone(),
        outcome.to_owned(),
        a.status.clone(),
        a.decline_reason.clone().unwrap_or_default(),
        a.cardstream_reason.clone().unwrap_or_default(),
    ];
    let mut out = fields
        .iter()
        .map(|f| field(f))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    out
}

fn field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// Minor units as a decimal in the currency's major unit (the minor units themselves for a
/// currency cardstream does not know).
fn decimal(minor: i64, currency: &str) -> String {
    currency.parse::<cardstream_stripe::Currency>().map_or_else(
        |_| minor.to_string(),
        |c| cardstream_stripe::Money::new(minor, c).decimal(),
    )
}

#[cfg(test)]
mod tests {
    use super::{decimal, field};

    #[test]
    fn amounts_are_decimals_of_the_major_unit() {
        assert_eq!(decimal(1250, "usd"), "12.50");
        assert_eq!(decimal(-5, "eur"), "-0.05");
        assert_eq!(decimal(1250, "jpy"), "1250");
        assert_eq!(decimal(1250, "kwd"), "1.250");
    }

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("Cafe"), "Cafe");
        assert_eq!(field("A, B"), "\"A, B\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }
}
