//! A small client for Stripe's list endpoints: one `GET` at a time through the rate limiter,
//! with Stripe's rules for what to retry.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use clap::builder::TypedValueParser;
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::time::Instant;

use crate::limiter::RateLimiter;
use crate::{Error, unix_now};

/// How to reach Stripe's API.
#[derive(clap::Args, Clone)]
pub struct StripeApiArgs {
    /// Stripe's API base URL (a test double's in tests).
    #[arg(
        long = "stripe-api-url",
        value_name = "URL",
        env = "CARDSTREAM_STRIPE_API_URL",
        default_value = "https://api.stripe.com"
    )]
    pub stripe_url: String,

    /// The API key. A restricted key with read access to Issuing (and Events, and Connect's
    /// accounts for --all-accounts) is enough. Set through the environment only.
    #[arg(
        long = "stripe-api-key",
        value_name = "KEY",
        env = "CARDSTREAM_STRIPE_API_KEY",
        hide_env_values = true,
        value_parser = clap::builder::StringValueParser::new().map(SecretString::from)
    )]
    pub stripe_key: Option<SecretString>,

    /// Requests per second at most; 0 for no limit. Stripe allows 100 reads per second in live
    /// mode (25 in test mode) to the whole account, webhooks' authorization answers included.
    #[arg(
        long = "stripe-rate",
        env = "CARDSTREAM_STRIPE_RATE",
        default_value_t = 20.0
    )]
    pub stripe_rate: f64,

    /// Attempts of one request answered 429, 5xx or not at all, before the run stops.
    #[arg(
        long = "stripe-attempts",
        env = "CARDSTREAM_STRIPE_ATTEMPTS",
        default_value_t = 8
    )]
    pub stripe_attempts: u32,

    /// How long one request may take.
    #[arg(
        long = "stripe-timeout",
        env = "CARDSTREAM_STRIPE_TIMEOUT",
        default_value = "30s",
        value_parser = humantime::parse_duration
    )]
    pub stripe_timeout: Duration,
}

impl std::fmt::Debug for StripeApiArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeApiArgs")
            .field("stripe_url", &self.stripe_url)
            .field(
                "stripe_key",
                &self.stripe_key.as_ref().map(|_| "<redacted>"),
            )
            .field("stripe_rate", &self.stripe_rate)
            .field("stripe_attempts", &self.stripe_attempts)
            .field("stripe_timeout", &self.stripe_timeout)
            .finish()
    }
}

impl StripeApiArgs {
    /// Settings for `url` with `key` and the defaults above.
    pub fn new(url: impl Into<String>, key: impl Into<String>) -> Self {
        StripeApiArgs {
            stripe_url: url.into(),
            stripe_key: Some(SecretString::from(key.into())),
            stripe_rate: 20.0,
            stripe_attempts: 8,
            stripe_timeout: Duration::from_secs(30),
        }
    }
}

/// What a run's requests met, for its report.
#[derive(Debug, Default)]
pub struct ApiStats {
    requests: AtomicU64,
    throttled: AtomicU64,
    server_errors: AtomicU64,
    network_errors: AtomicU64,
}

impl ApiStats {
    /// Requests sent, retries included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    /// Answers of 429 (each waited out, per `Retry-After`).
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }
    /// Answers of 5xx (each retried).
    pub fn server_errors(&self) -> u64 {
        self.server_errors.load(Ordering::Relaxed)
    }
    /// Requests that got no answer in time or lost their connection (each retried).
    pub fn network_errors(&self) -> u64 {
        self.network_errors.load(Ordering::Relaxed)
    }
}

/// One page of a list, its objects kept as the exact bytes Stripe sent.
#[derive(Debug)]
pub struct Page {
    pub data: Vec<Box<RawValue>>,
    pub has_more: bool,
    /// The second the successful request was sent: the page shows every change made before it.
    pub read_at: i64,
}

#[derive(Deserialize)]
struct ListBody {
    data: Vec<Box<RawValue>>,
    has_more: bool,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: StripeError,
}

#[derive(Deserialize)]
struct StripeError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    param: Option<String>,
}

/// Stripe's API, reached through one rate limiter.
#[derive(Clone)]
pub struct StripeApi {
    http: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
    base: String,
    authorization: Arc<SecretString>,
    limiter: Arc<RateLimiter>,
    stats: Arc<ApiStats>,
    attempts: u32,
    timeout: Duration,
}

impl std::fmt::Debug for StripeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeApi")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// The first wait after a 5xx or a lost request; doubled for each next attempt, up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The largest answer read. A page of 100 Issuing objects is well under a megabyte (an
/// authorization with a long request history is a few kilobytes); a server that streams more is
/// not Stripe, and its answer is not held in memory.
const MAX_BODY: usize = 16 * 1024 * 1024;

impl StripeApi {
    pub fn new(args: &StripeApiArgs) -> Result<Self, Error> {
        let key = args.stripe_key.as_ref().ok_or(Error::NoApiKey)?;
        if key.expose_secret().trim().is_empty() {
            return Err(Error::NoApiKey);
        }
        let base = args.stripe_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(Error::Url(base));
        }
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| Error::Tls(e.to_string()))?
            .https_or_http()
            .enable_http1()
            .build();
        let http = Client::builder(TokioExecutor::new()).build(https);
        Ok(StripeApi {
            http,
            base,
            authorization: Arc::new(SecretString::from(format!(
                "Bearer {}",
                key.expose_secret().trim()
            ))),
            limiter: Arc::new(RateLimiter::new(args.stripe_rate)),
            stats: Arc::new(ApiStats::default()),
            attempts: args.stripe_attempts.max(1),
            timeout: args.stripe_timeout,
        })
    }

    pub fn stats(&self) -> &ApiStats {
        &self.stats
    }

    /// One page of the list at `path` with `query`, for `account` (`Stripe-Account`) or the
    /// platform. Retries 429 (after `Retry-After`), 5xx and lost requests; any other answer
    /// stops with an error naming the endpoint.
    pub async fn list(
        &self,
        path: &str,
        query: &[(&str, String)],
        account: Option<&str>,
    ) -> Result<Page, Error> {
        let endpoint = endpoint(path, query);
        let url = format!("{}{endpoint}", self.base);
        let mut backoff = FIRST_BACKOFF;
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            self.limiter.wait().await;
            let read_at = unix_now();
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let mut request = http::Request::get(&url)
                .header("authorization", self.authorization.expose_secret())
                .header(
                    "user-agent",
                    concat!("cardstream/", env!("CARGO_PKG_VERSION")),
                );
            if let Some(account) = account {
                request = request.header("stripe-account", account);
            }
            let request = request
                .body(Empty::new())
                .map_err(|_| Error::Url(url.clone()))?;
            let answer = tokio::time::timeout(self.timeout, async {
                let response = self.http.request(request).await?;
                let (parts, body) = response.into_parts();
                let body = Limited::new(body, MAX_BODY).collect().await?.to_bytes();
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>((parts, body))
            })
            .await;
            let (parts, body) = match answer {
                Ok(Ok(answer)) => answer,
                Ok(Err(err)) if err.is::<LengthLimitError>() => {
                    // Not a passing fault: asking again gets the same answer.
                    return Err(Error::NotAList {
                        endpoint,
                        message: format!("the answer is larger than {MAX_BODY} bytes"),
                    });
                }
                Ok(Err(err)) => {
                    self.stats.network_errors.fetch_add(1, Ordering::Relaxed);
                    last = format!("no answer: {err}");
                    tracing::warn!(%endpoint, attempt, error = %err, "Stripe request failed; retrying");
                    backoff = self.back_off(backoff).await;
                    continue;
                }
                Err(_) => {
                    self.stats.network_errors.fetch_add(1, Ordering::Relaxed);
                    last = format!("no answer within {:?}", self.timeout);
                    tracing::warn!(%endpoint, attempt, "Stripe request timed out; retrying");
                    backoff = self.back_off(backoff).await;
                    continue;
                }
            };
            let status = parts.status;
            if status.is_success() {
                let list: ListBody =
                    serde_json::from_slice(&body).map_err(|e| Error::NotAList {
                        endpoint: endpoint.clone(),
                        message: e.to_string(),
                    })?;
                return Ok(Page {
                    data: list.data,
                    has_more: list.has_more,
                    read_at,
                });
            }
            let message = stripe_message(&body);
            if status == http::StatusCode::TOO_MANY_REQUESTS {
                self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                // Stripe's rate limiter says when to come back; without it, back off as for 5xx.
                let wait = retry_after(&parts.headers).unwrap_or(backoff);
                tracing::info!(%endpoint, attempt, ?wait, "Stripe asked us to slow down (429)");
                self.limiter.hold_until(Instant::now() + wait);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                last = format!("429: {message}");
                continue;
            }
            if status.is_server_error() {
                self.stats.server_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%endpoint, attempt, %status, %message, "Stripe answered 5xx; retrying");
                last = format!("{}: {message}", status.as_u16());
                backoff = self.back_off(backoff).await;
                continue;
            }
            return Err(Error::Refused {
                endpoint,
                status: status.as_u16(),
                message,
            });
        }
        Err(Error::GaveUp {
            endpoint,
            attempts: self.attempts,
            last,
        })
    }

    /// Holds every request for `wait`, and returns the next wait.
    async fn back_off(&self, wait: Duration) -> Duration {
        self.limiter.hold_until(Instant::now() + wait);
        (wait * 2).min(MAX_BACKOFF)
    }
}

/// `path?query`, for the URL and for messages. Values are ids, numbers and type names: nothing
/// to escape but the brackets Stripe's own clients send as is.
fn endpoint(path: &str, query: &[(&str, String)]) -> String {
    if query.is_empty() {
        return path.to_owned();
    }
    let pairs: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b'[' => out.push_str("%5B"),
            b']' => out.push_str("%5D"),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// Stripe's error message, type and parameter, or the start of whatever the body was.
fn stripe_message(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => {
            let mut message = format!("{} ({})", error.message, error.kind);
            if let Some(param) = error.param {
                message.push_str(&format!(", parameter {param}"));
            }
            message
        }
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

/// `Retry-After` in seconds (Stripe sends whole seconds), capped so a wrong header cannot
/// park a run for hours.
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let seconds: f64 = headers
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (seconds.is_finite() && seconds >= 0.0)
        .then(|| Duration::from_secs_f64(seconds).min(Duration::from_secs(300)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_written_as_stripe_clients_write_them() {
        assert_eq!(
            endpoint(
                "/v1/events",
                &[
                    ("limit", "100".into()),
                    ("types[]", "issuing_card.created".into()),
                    ("created[gte]", "17".into())
                ]
            ),
            "/v1/events?limit=100&types%5B%5D=issuing_card.created&created%5Bgte%5D=17"
        );
        assert_eq!(endpoint("/v1/issuing/cards", &[]), "/v1/issuing/cards");
    }

    #[test]
    fn stripe_errors_read_as_their_message() {
        let body = br#"{"error":{"type":"invalid_request_error","message":"No such object","param":"starting_after"}}"#;
        assert_eq!(
            stripe_message(body),
            "No such object (invalid_request_error), parameter starting_after"
        );
        assert_eq!(stripe_message(b"<html>bad gateway"), "<html>bad gateway");
    }

    #[test]
    fn the_key_is_not_in_debug_output() {
        let args = StripeApiArgs::new("http://x", "rk_live_secret");
        assert!(!format!("{args:?}").contains("rk_live_secret"));
        let api = StripeApi::new(&args).unwrap();
        assert!(!format!("{api:?}").contains("rk_live_secret"));
    }
}
