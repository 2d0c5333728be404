//! Delivering events: signing at send time, pacing to the target rate, retrying like Stripe,
//! and measuring.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cardstream_stripe::{WebhookSecret, signature};
use hdrhistogram::Histogram;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::script::{Answer, Endpoint, SimEvent, unix_now};

/// Releases one send at a time at `rate` per second, across all tasks.
#[derive(Debug)]
pub(crate) struct Pacer {
    start: tokio::time::Instant,
    interval_ns: u64,
    next: AtomicU64,
}

impl Pacer {
    /// `rate` 0 means as fast as possible.
    pub(crate) fn new(rate: f64) -> Self {
        let interval_ns = if rate > 0.0 { (1e9 / rate) as u64 } else { 0 };
        Pacer {
            start: tokio::time::Instant::now(),
            interval_ns,
            next: AtomicU64::new(0),
        }
    }

    pub(crate) async fn wait(&self) {
        if self.interval_ns == 0 {
            return;
        }
        let slot = self.next.fetch_add(1, Ordering::Relaxed);
        let at = self.start + Duration::from_nanos(slot.saturating_mul(self.interval_ns));
        tokio::time::sleep_until(at).await;
    }
}

/// What one endpoint saw.
#[derive(Debug, Clone)]
pub struct EndpointStats {
    /// Attempts, including retries.
    pub attempts: u64,
    /// Attempts by HTTP status.
    pub by_status: BTreeMap<u16, u64>,
    /// Attempts that got no HTTP answer (connection refused, timeout).
    pub transport_errors: u64,
    /// Latency of every attempt that got an answer, in microseconds.
    pub latency_us: Histogram<u64>,
}

impl Default for EndpointStats {
    fn default() -> Self {
        EndpointStats {
            attempts: 0,
            by_status: BTreeMap::new(),
            transport_errors: 0,
            latency_us: Histogram::new_with_bounds(1, 120_000_000, 3)
                .unwrap_or_else(|_| unreachable!()),
        }
    }
}

impl EndpointStats {
    pub fn p(&self, quantile: f64) -> Duration {
        Duration::from_micros(self.latency_us.value_at_quantile(quantile))
    }

    pub fn ok(&self) -> u64 {
        self.by_status
            .iter()
            .filter(|(s, _)| (200..300).contains(*s))
            .map(|(_, n)| n)
            .sum()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) events: Mutex<EndpointStats>,
    pub(crate) authorizations: Mutex<EndpointStats>,
}

impl Stats {
    fn record(&self, endpoint: Endpoint, outcome: Result<(StatusCode, Duration), ()>) {
        let slot = match endpoint {
            Endpoint::Events => &self.events,
            Endpoint::Authorization => &self.authorizations,
        };
        if let Ok(mut stats) = slot.lock() {
            stats.attempts += 1;
            match outcome {
                Ok((status, latency)) => {
                    *stats.by_status.entry(status.as_u16()).or_default() += 1;
                    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                    let _ = stats.latency_us.record(micros.max(1));
                }
                Err(()) => stats.transport_errors += 1,
            }
        }
    }
}

/// Posts signed events to a gateway.
#[derive(Debug)]
pub(crate) struct Sender {
    client: Client<HttpConnector, Full<Bytes>>,
    events: Uri,
    authorization: Uri,
    secret: WebhookSecret,
    /// The Connect endpoint's, for events that carry a connected `account`.
    connect_secret: Option<WebhookSecret>,
    retries: u32,
    timeout: Duration,
    pub(crate) stats: Stats,
}

/// The final outcome of delivering one event.
#[derive(Debug)]
pub(crate) struct Delivered {
    pub(crate) accepted: bool,
    pub(crate) answer: Answer,
}

impl Sender {
    pub(crate) fn new(
        target: &str,
        secret: WebhookSecret,
        connect_secret: Option<WebhookSecret>,
        retries: u32,
        timeout: Duration,
        concurrency: usize,
    ) -> Result<Self, crate::Error> {
        let base = target.trim_end_matches('/');
        let parse = |path: &str| {
            format!("{base}{path}")
                .parse::<Uri>()
                .map_err(|e| crate::Error::Target(format!("{target}: {e}")))
        };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(concurrency)
            .build(connector);
        Ok(Sender {
            client,
            events: parse("/webhooks/stripe")?,
            authorization: parse("/webhooks/stripe/authorization")?,
            secret,
            connect_secret,
            retries,
            timeout,
            stats: Stats::default(),
        })
    }

    /// Stripe signs a connected account's event with the Connect endpoint's secret, and the
    /// platform's own with the account endpoint's.
    fn signing_secret(&self, body: &[u8]) -> &WebhookSecret {
        match &self.connect_secret {
            Some(connect) if carries_account(body) => connect,
            _ => &self.secret,
        }
    }

    /// One signed POST, timed. The signature is made now, as Stripe signs each attempt.
    async fn attempt(&self, event: &SimEvent) -> Result<(StatusCode, Bytes), ()> {
        let uri = match event.endpoint {
            Endpoint::Events => self.events.clone(),
            Endpoint::Authorization => self.authorization.clone(),
        };
        let secret = self.signing_secret(&event.body);
        let header = signature::header(std::slice::from_ref(secret), unix_now(), &event.body);
        let request = Request::post(uri)
            .header("content-type", "application/json; charset=utf-8")
            .header("stripe-signature", header)
            .header(
                "user-agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks) cardstream-simulator",
            )
            .body(Full::new(event.body.clone()))
            .map_err(|_| ())?;
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, async {
            let response = self.client.request(request).await.map_err(|_| ())?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|_| ())?
                .to_bytes();
            Ok::<_, ()>((status, body))
        })
        .await;
        let outcome = match result {
            Ok(Ok((status, body))) => Ok((status, body)),
            _ => Err(()),
        };
        self.stats.record(
            event.endpoint,
            outcome
                .as_ref()
                .map(|(s, _)| (*s, started.elapsed()))
                .map_err(|_| ()),
        );
        outcome
    }

    /// Delivers with Stripe-like retries on 5xx and transport errors (never on 4xx: those are
    /// final). Authorization requests are never retried: Stripe gives up after 2 s.
    pub(crate) async fn deliver(&self, event: &SimEvent, pacer: &Pacer) -> Delivered {
        let retries = match event.endpoint {
            Endpoint::Events => self.retries,
            Endpoint::Authorization => 0,
        };
        let mut backoff = Duration::from_millis(100);
        for attempt in 0..=retries {
            if attempt > 0 {
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
                pacer.wait().await;
            }
            match self.attempt(event).await {
                Ok((status, body)) if status.is_success() => {
                    return Delivered {
                        accepted: true,
                        answer: parse_answer(event.endpoint, &body),
                    };
                }
                Ok((status, _)) if status.is_client_error() => break,
                _ => {}
            }
        }
        Delivered {
            accepted: false,
            answer: Answer::NoAnswer,
        }
    }
}

/// Whether the event has a top-level `account` (a connected account's event).
fn carries_account(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct AccountField {
        #[serde(default)]
        account: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<AccountField>(body).is_ok_and(|f| f.account.is_some())
}

fn parse_answer(endpoint: Endpoint, body: &[u8]) -> Answer {
    if endpoint != Endpoint::Authorization {
        return Answer::NoAnswer;
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Answer::NoAnswer;
    };
    let reason = value["metadata"]["cardstream_reason"]
        .as_str()
        .unwrap_or("unspecified")
        .to_owned();
    match value["approved"].as_bool() {
        // A partial approval names the amount to hold.
        Some(true) => match value["amount"].as_i64() {
            Some(amount) => Answer::PartiallyApproved { reason, amount },
            None => Answer::Approved { reason },
        },
        Some(false) => Answer::Declined { reason },
        None => Answer::NoAnswer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connected_accounts_event_is_told_by_its_top_level_account() {
        assert!(carries_account(
            br#"{"id":"evt_1","account":"acct_a","data":{}}"#
        ));
        assert!(!carries_account(
            br#"{"id":"evt_1","data":{"object":{"account":"acct_a"}}}"#
        ));
        assert!(!carries_account(br#"{"id":"evt_1","account":null}"#));
        assert!(!carries_account(b"not json"));
    }

    #[test]
    fn connected_accounts_events_are_signed_with_the_connect_secret() {
        let sender = |connect: Option<&str>| {
            Sender::new(
                "http://127.0.0.1:1",
                WebhookSecret::new("whsec_account"),
                connect.map(WebhookSecret::new),
                0,
                Duration::from_secs(1),
                1,
            )
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let connected = br#"{"id":"evt_1","account":"acct_a"}"#;
        let own = br#"{"id":"evt_2"}"#;
        let with = sender(Some("whsec_connect"));
        assert_eq!(with.signing_secret(connected).expose(), "whsec_connect");
        assert_eq!(with.signing_secret(own).expose(), "whsec_account");
        // Without a Connect secret (refused by `run` when accounts are asked for) nothing changes.
        assert_eq!(
            sender(None).signing_secret(connected).expose(),
            "whsec_account"
        );
    }
}
