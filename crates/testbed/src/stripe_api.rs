//! A stand-in for Stripe's REST API, for tests of what reads it (backfill, missed-webhook
//! catch-up). Stripe's own mock server cannot be installed on these machines, so this serves
//! list endpoints over real HTTP with Stripe's semantics: newest first, `limit` (1–100, default
//! 10), `starting_after` / `ending_before` cursors, `created[gt|gte|lt|lte]` ranges, `has_more`,
//! the `Stripe-Account` header scoping a request to a connected account, a bearer API key, and
//! Stripe's error shape. Faults (429 with `Retry-After`, 500, slow answers) are injected on a
//! schedule, and every request is logged for the test to read.
//!
//! Besides fixed lists ([`FakeStripe::insert`]), it can hold an account's history as Stripe
//! does ([`FakeStripe::load_events`]): events that appear at their `created` second on the wall
//! clock, and Issuing objects served at their newest version so far, so that a test can have
//! changes land while a reader is paging, as they do against the live API.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// What a request can be made to suffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After` in whole seconds, as Stripe's rate limiter answers.
    TooManyRequests { retry_after_secs: u64 },
    /// 500 with Stripe's `api_error`.
    ServerError,
    /// The normal answer, after this long.
    Slow(Duration),
    /// 200 with this body instead of the list: what a proxy's page, a truncated answer or an
    /// endless one looks like to a client.
    Body(bytes::Bytes),
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
    /// When the request arrived, before any injected delay: a test can tell when a reader
    /// asked, not when the fake got round to answering.
    pub at: Instant,
    /// How many objects the answer's `data` held (0 for an error).
    pub returned: usize,
}

const EVENTS: &str = "/v1/events";
const ACCOUNTS: &str = "/v1/accounts";

/// The list path of each Issuing object type (its `"object"` field): where a loaded event's
/// object is served. Other objects are only in `/v1/events`.
const ISSUING_LISTS: [(&str, &str); 6] = [
    ("issuing.authorization", "/v1/issuing/authorizations"),
    ("issuing.card", "/v1/issuing/cards"),
    ("issuing.cardholder", "/v1/issuing/cardholders"),
    ("issuing.transaction", "/v1/issuing/transactions"),
    ("issuing.dispute", "/v1/issuing/disputes"),
    ("issuing.token", "/v1/issuing/tokens"),
];

/// One event of [`FakeStripe::load_events`], parsed once at load so that a request costs one
/// pass over plain fields rather than a walk through every event's JSON.
#[derive(Debug)]
struct LoadedEvent {
    created: i64,
    rank: i16,
    event_id: String,
    /// `data.object.id`, when the event carries an object with an id.
    object_id: Option<String>,
    /// Where that object is listed, when it is an Issuing object.
    path: Option<&'static str>,
    event: Value,
}

impl LoadedEvent {
    /// Which of two versions of an object is newer: the larger (created, rank, event id).
    fn version(&self) -> (i64, i16, &str) {
        (self.created, self.rank, &self.event_id)
    }
}

/// The rank of an event type among the events of one second. This mirrors
/// `crates/store/src/version.rs` (the store's rule for which version of an object wins), copied
/// rather than depended on so that the fake stays a picture of Stripe plus that one rule; if the
/// store's rule changes, change this with it.
fn rank(event_type: &str) -> i16 {
    match event_type.rsplit('.').next() {
        Some("snapshot") => -1,
        Some("request") => 0,
        Some("created") => 1,
        _ => 2,
    }
}

#[derive(Debug, Default)]
struct Fake {
    api_key: String,
    /// Objects by (account, list path), in insertion order; lists sort them on each request.
    objects: BTreeMap<(Option<String>, String), Vec<Value>>,
    /// Loaded events by account, in load order; which of them exist depends on the clock.
    loaded: BTreeMap<Option<String>, Vec<LoadedEvent>>,
    /// Every `n`th request (counting from 1) suffers the fault.
    faults: Vec<(u64, Fault)>,
    requests: Vec<LoggedRequest>,
    /// Whether `load_events` was called, for any account.
    events_loaded: bool,
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

    /// Loads Stripe Event objects for `account` (`None`: the platform) as a live account holds
    /// them. At each request only the events whose `created` is at or before the wall clock's
    /// second exist: they are listed at `/v1/events`, and each Issuing object in their
    /// `data.object` is listed at its path at its newest version among them (the largest
    /// (event created, rank by type, event id), as the store orders versions). Events dated in
    /// the future thus appear when their second comes.
    ///
    /// Once any account has loaded events, `/v1/events` and the six Issuing lists answer (empty
    /// where there is nothing) for every account.
    ///
    /// Panics on an event without a numeric `created` or a string `id`: a test's own mistake.
    pub fn load_events(&self, account: Option<&str>, events: impl IntoIterator<Item = Value>) {
        let parsed: Vec<LoadedEvent> = events
            .into_iter()
            .map(|event| {
                let created = event["created"]
                    .as_i64()
                    .unwrap_or_else(|| panic!("a loaded event needs a numeric created: {event}"));
                let event_id = event["id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("a loaded event needs a string id: {event}"))
                    .to_owned();
                let object = &event["data"]["object"];
                let path = object["object"].as_str().and_then(|kind| {
                    ISSUING_LISTS
                        .iter()
                        .find(|(k, _)| *k == kind)
                        .map(|(_, path)| *path)
                });
                LoadedEvent {
                    created,
                    rank: rank(event["type"].as_str().unwrap_or_default()),
                    event_id,
                    object_id: object["id"].as_str().map(str::to_owned),
                    path,
                    event,
                }
            })
            .collect();
        let mut fake = self.lock();
        fake.events_loaded = true;
        fake.loaded
            .entry(account.map(str::to_owned))
            .or_default()
            .extend(parsed);
    }

    /// Adds a connected account to the platform's `/v1/accounts` list. That list is the
    /// platform's whoever asks (a `Stripe-Account` header does not scope it), and answers, empty,
    /// before any account is added, as Stripe's does for a platform.
    pub fn add_account(&self, id: &str, created: i64) {
        self.insert(
            None,
            ACCOUNTS,
            json!({"id": id, "object": "account", "created": created, "type": "custom"}),
        );
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
    let at = Instant::now();
    // Which loaded events exist: those of the wall clock's second or before, as on Stripe.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
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
            .map(|f| f.1.clone());
        let authorized = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|key| key == fake.api_key);
        let answered = |fake: &Fake| match list(fake, &account, &path, &query, now) {
            Ok(page) => {
                let returned = page.data.len();
                (page.into_response(&path), returned)
            }
            Err(response) => (*response, 0),
        };
        let (response, returned, delay) = match fault {
            _ if !authorized => (
                error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_request_error",
                    "Invalid API Key provided",
                    None,
                ),
                0,
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
                (response, 0, None)
            }
            Some(Fault::ServerError) => (
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "api_error",
                    "An unknown error occurred",
                    None,
                ),
                0,
                None,
            ),
            Some(Fault::Body(body)) => {
                let mut response = (StatusCode::OK, body).into_response();
                response.headers_mut().insert(
                    "content-type",
                    "application/json".parse().expect("a header value"),
                );
                (response, 0, None)
            }
            Some(Fault::Slow(delay)) => {
                let (response, returned) = answered(&fake);
                (response, returned, Some(delay))
            }
            None => {
                let (response, returned) = answered(&fake);
                (response, returned, None)
            }
        };
        fake.requests.push(LoggedRequest {
            path,
            query,
            account,
            status: response.status().as_u16(),
            at,
            returned,
        });
        (response, delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    response
}

/// One page of a list, before it is sent.
struct Page {
    data: Vec<Value>,
    has_more: bool,
}

impl Page {
    fn into_response(self, path: &str) -> Response {
        axum::Json(json!({
            "object": "list",
            "url": path,
            "has_more": self.has_more,
            "data": self.data,
        }))
        .into_response()
    }
}

/// Everything listed at `path` for `account` at second `now`, unfiltered and unsorted; `None`
/// when Stripe would not know the path.
fn everything<'a>(
    fake: &'a Fake,
    account: &Option<String>,
    path: &str,
    now: i64,
) -> Option<Vec<&'a Value>> {
    // Connected accounts are the platform's list, whoever asks.
    let scope = if path == ACCOUNTS {
        None
    } else {
        account.clone()
    };
    let stored = fake.objects.get(&(scope, path.to_owned()));
    let issuing = ISSUING_LISTS.iter().any(|(_, p)| *p == path);
    let known = stored.is_some()
        || path == ACCOUNTS
        || fake.objects.keys().any(|(_, p)| p == path)
        || (fake.events_loaded && (path == EVENTS || issuing));
    if !known {
        return None;
    }
    let mut all: Vec<&Value> = stored.map(|s| s.iter().collect()).unwrap_or_default();
    let Some(loaded) = fake.loaded.get(account) else {
        return Some(all);
    };
    let existing = loaded.iter().filter(|e| e.created <= now);
    if path == EVENTS {
        all.extend(existing.map(|e| &e.event));
    } else if issuing {
        // One pass keeps the newest version of each object so far.
        let mut newest: HashMap<&str, &LoadedEvent> = HashMap::new();
        for event in existing.filter(|e| e.path == Some(path)) {
            let Some(id) = event.object_id.as_deref() else {
                continue;
            };
            newest
                .entry(id)
                .and_modify(|kept| {
                    if event.version() > kept.version() {
                        *kept = event;
                    }
                })
                .or_insert(event);
        }
        all.extend(newest.into_values().map(|e| &e.event["data"]["object"]));
    }
    Some(all)
}

/// One page of the list at `path`, as Stripe answers it, or Stripe's error.
fn list(
    fake: &Fake,
    account: &Option<String>,
    path: &str,
    query: &[(String, String)],
    now: i64,
) -> Result<Page, Box<Response>> {
    let Some(objects) = everything(fake, account, path, now) else {
        return Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            &format!("Unrecognized request URL (GET: {path})."),
            None,
        )));
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
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "This value must be between 1 and 100.",
                Some("limit"),
            )));
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
                return Err(Box::new(error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "Invalid integer",
                    Some(name),
                )));
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
    // The sort key is read once per object: thousands of loaded objects are sorted per request.
    let mut matching: Vec<(i64, &str, &Value)> = objects
        .into_iter()
        .filter(|o| types.is_empty() || types.iter().any(|t| type_matches(t, o)))
        .filter(|o| card.is_none_or(|c| o["card"] == c || o["card"]["id"] == c))
        .map(|o| {
            let created = o["created"].as_i64().unwrap_or(0);
            (created, o["id"].as_str().unwrap_or_default(), o)
        })
        .filter(|(created, _, _)| {
            bounds.iter().all(|(op, v)| match *op {
                "gt" => created > v,
                "gte" => created >= v,
                "lt" => created < v,
                _ => created <= v,
            })
        })
        .collect();
    // Newest first; the id breaks ties, as Stripe's order is stable.
    matching.sort_by(|a, b| (b.0, b.1).cmp(&(a.0, a.1)));
    let position = |id: &str| matching.iter().position(|o| o.1 == id);
    let (from, to) = match (param("starting_after"), param("ending_before")) {
        (Some(_), Some(_)) => {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "You may only specify one of these parameters: ending_before, starting_after.",
                None,
            )));
        }
        (Some(after), None) => match position(after) {
            Some(i) => (i + 1, (i + 1 + limit).min(matching.len())),
            None => return Err(Box::new(no_such_object(after, "starting_after"))),
        },
        (None, Some(before)) => match position(before) {
            Some(i) => (i.saturating_sub(limit), i),
            None => return Err(Box::new(no_such_object(before, "ending_before"))),
        },
        (None, None) => (0, limit.min(matching.len())),
    };
    // With ending_before, "more" lies further toward the newest; otherwise toward the oldest.
    let has_more = if param("ending_before").is_some() {
        from > 0
    } else {
        to < matching.len()
    };
    Ok(Page {
        data: matching[from..to].iter().map(|o| o.2.clone()).collect(),
        has_more,
    })
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
