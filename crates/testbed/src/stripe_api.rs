//! A stand-in for Stripe's REST API, for tests of what reads it (backfill, missed-webhook
//! catch-up). Stripe's own mock server cannot be installed on these machines, so this serves
//! list endpoints over real HTTP with Stripe's semantics: newest first, `limit` (1–100, default
//! 10), `starting_after` / `ending_before` cursors, `created[gt|gte|lt|lte]` ranges, `has_more`,
//! the `Stripe-Account` header scoping a request to a connected account, a bearer API key, and
//! Stripe's error shape. Faults (429 with `Retry-After`, 500, slow answers) are injected on a
//! schedule, and every request is logged for the test to read.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// What a request can be made to suffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After` in whole seconds, as Stripe's rate limiter answers.
    TooManyRequests { retry_after_secs: u64 },
    /// 500 with Stripe's `api_error`.
    ServerError,
    /// The normal answer, after this long.
    Slow(Duration),
}

/// One request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub path: String,
    /// Query parameters in the order sent (`types[]` may repeat).
    pub query: Vec<(String, String)>,
    /// The `Stripe-Account` header, when sent.
    pub account: Option<String>,
    pub status: u16,
}

#[derive(Debug, Default)]
struct Fake {
    api_key: String,
    /// Objects by (account, list path), in insertion order; lists sort them on each request.
    objects: BTreeMap<(Option<String>, String), Vec<Value>>,
    /// Every `n`th request (counting from 1) suffers the fault.
    faults: Vec<(u64, Fault)>,
    requests: Vec<LoggedRequest>,
}

/// A running fake Stripe API on a free local port; stops when dropped.
#[derive(Debug)]
pub struct FakeStripe {
    addr: SocketAddr,
    state: Arc<Mutex<Fake>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeStripe {
    /// Serves requests that carry `Authorization: Bearer <api_key>`.
    pub async fn start(api_key: &str) -> FakeStripe {
        let state = Arc::new(Mutex::new(Fake {
            api_key: api_key.to_owned(),
            ..Fake::default()
        }));
        let app = Router::new().fallback(answer).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port for the fake Stripe API");
        let addr = listener.local_addr().expect("the fake's address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("serve the fake Stripe API");
        });
        FakeStripe {
            addr,
            state,
            server,
        }
    }

    /// The base URL, as `https://api.stripe.com` is for the real one.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds `object` to the list served at `path` (`/v1/issuing/cards`, `/v1/events`…), for
    /// `account` (`None`: the platform's own, answered without `Stripe-Account`).
    pub fn insert(&self, account: Option<&str>, path: &str, object: Value) {
        self.lock()
            .objects
            .entry((account.map(str::to_owned), path.to_owned()))
            .or_default()
            .push(object);
    }

    /// From now on, every `every`th request (the count includes those already made) suffers
    /// `fault`; a request matching several schedules suffers the first added.
    pub fn fault_every(&self, every: u64, fault: Fault) {
        assert!(every > 0, "a fault needs a period of at least 1");
        self.lock().faults.push((every, fault));
    }

    /// Every request so far, in the order answered.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Fake> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn error(status: StatusCode, kind: &str, message: &str, param: Option<&str>) -> Response {
    let mut error = json!({"type": kind, "message": message});
    if let Some(param) = param {
        error["param"] = json!(param);
    }
    (status, axum::Json(json!({ "error": error }))).into_response()
}

async fn answer(
    State(state): State<Arc<Mutex<Fake>>>,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let path = uri.path().to_owned();
    let account = headers
        .get("stripe-account")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (response, delay) = {
        let mut fake = state.lock().unwrap_or_else(|p| p.into_inner());
        let n = fake.requests.len() as u64 + 1;
        let fault = fake
            .faults
            .iter()
            .find(|(every, _)| n.is_multiple_of(*every))
            .map(|f| f.1);
        let authorized = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|key| key == fake.api_key);
        let (response, delay) = match fault {
            _ if !authorized => (
                error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_request_error",
                    "Invalid API Key provided",
                    None,
                ),
                None,
            ),
            Some(Fault::TooManyRequests { retry_after_secs }) => {
                let mut response = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "invalid_request_error",
                    "Too many requests hit the API too quickly.",
                    None,
                );
                response.headers_mut().insert(
                    "retry-after",
                    retry_after_secs.to_string().parse().expect("digits"),
                );
                (response, None)
            }
            Some(Fault::ServerError) => (
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "api_error",
                    "An unknown error occurred",
                    None,
                ),
                None,
            ),
            Some(Fault::Slow(delay)) => (list(&fake, &account, &path, &query), Some(delay)),
            None => (list(&fake, &account, &path, &query), None),
        };
        fake.requests.push(LoggedRequest {
            path,
            query,
            account,
            status: response.status().as_u16(),
        });
        (response, delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    response
}

/// One page of the list at `path`, as Stripe answers it.
fn list(fake: &Fake, account: &Option<String>, path: &str, query: &[(String, String)]) -> Response {
    let Some(objects) = fake.objects.get(&(account.clone(), path.to_owned())) else {
        let known = fake.objects.keys().any(|(_, p)| p == path);
        return if known {
            // The path exists, this account has nothing there.
            page(path, Vec::new(), false)
        } else {
            error(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                &format!("Unrecognized request URL (GET: {path})."),
                None,
            )
        };
    };
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let limit = match param("limit").map(str::parse::<usize>) {
        None => 10,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "This value must be between 1 and 100.",
                Some("limit"),
            );
        }
    };
    let mut bounds = Vec::new();
    for (op, name) in [
        ("gt", "created[gt]"),
        ("gte", "created[gte]"),
        ("lt", "created[lt]"),
        ("lte", "created[lte]"),
    ] {
        if let Some(value) = param(name) {
            let Ok(value) = value.parse::<i64>() else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "Invalid integer",
                    Some(name),
                );
            };
            bounds.push((op, value));
        }
    }
    let types: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == "type" || k == "types[]")
        .map(|(_, v)| v.as_str())
        .collect();
    let card = param("card");
    let mut matching: Vec<&Value> = objects
        .iter()
        .filter(|o| {
            let created = o["created"].as_i64().unwrap_or(0);
            bounds.iter().all(|(op, v)| match *op {
                "gt" => created > *v,
                "gte" => created >= *v,
                "lt" => created < *v,
                _ => created <= *v,
            })
        })
        .filter(|o| types.is_empty() || types.iter().any(|t| type_matches(t, o)))
        .filter(|o| card.is_none_or(|c| o["card"] == c || o["card"]["id"] == c))
        .collect();
    // Newest first; the id breaks ties, as Stripe's order is stable.
    matching.sort_by(|a, b| {
        (b["created"].as_i64(), b["id"].as_str()).cmp(&(a["created"].as_i64(), a["id"].as_str()))
    });
    let position = |id: &str| matching.iter().position(|o| o["id"] == id);
    let (from, to) = match (param("starting_after"), param("ending_before")) {
        (Some(_), Some(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "You may only specify one of these parameters: ending_before, starting_after.",
                None,
            );
        }
        (Some(after), None) => match position(after) {
            Some(i) => (i + 1, (i + 1 + limit).min(matching.len())),
            None => return no_such_object(after, "starting_after"),
        },
        (None, Some(before)) => match position(before) {
            Some(i) => (i.saturating_sub(limit), i),
            None => return no_such_object(before, "ending_before"),
        },
        (None, None) => (0, limit.min(matching.len())),
    };
    // With ending_before, "more" lies further toward the newest; otherwise toward the oldest.
    let has_more = if param("ending_before").is_some() {
        from > 0
    } else {
        to < matching.len()
    };
    page(
        path,
        matching[from..to].iter().map(|o| (*o).clone()).collect(),
        has_more,
    )
}

fn page(path: &str, data: Vec<Value>, has_more: bool) -> Response {
    axum::Json(json!({"object": "list", "url": path, "has_more": has_more, "data": data}))
        .into_response()
}

fn no_such_object(id: &str, param: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        &format!("No such object: '{id}'"),
        Some(param),
    )
}

/// `type` filters of `/v1/events`: an exact type, or a prefix ending in `.*`.
fn type_matches(filter: &str, object: &Value) -> bool {
    let kind = object["type"].as_str().unwrap_or_default();
    match filter.strip_suffix('*') {
        Some(prefix) => kind.starts_with(prefix),
        None => kind == filter,
    }
}
