//! Load shedding. Past its capacity the gateway answers 503 with `Retry-After` at once, rather
//! than queueing until memory or time runs out: Stripe retries webhooks for days, and an
//! authorization request answered late is as bad as one not answered.
//!
//! Two limits. Requests in flight, whatever they are doing. And bodies being read before their
//! signature could be checked, which an unauthenticated client can make as large as the body
//! limit and then stall: Stripe's events are a few KiB, so bodies up to [`SMALL_BODY`] are
//! read freely (the request limit bounds them), while larger or undeclared ones need one of a
//! few permits. A flood of stalled 1 MiB uploads then costs a bounded amount of memory, and
//! the small signed webhooks sent meanwhile are still read and answered.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::app::{AUTHORIZATION_ROUTE, EVENTS_ROUTE, Gateway};
use crate::error::WebhookError;

/// Bodies declared at most this long are read without a large-body permit.
pub const SMALL_BODY: u64 = 64 * 1024;

/// What the gateway may take on at once.
#[derive(Debug)]
pub(crate) struct Capacity {
    /// Events and everything else.
    requests: Arc<Semaphore>,
    /// Authorization requests have their own budget: events waiting on a slow broker (up to
    /// the produce timeout each) must not crowd out decisions Stripe waits 2 s for.
    authorizations: Arc<Semaphore>,
    large_bodies: Arc<Semaphore>,
}

impl Capacity {
    pub(crate) fn new(requests: usize, large_bodies: usize) -> Self {
        Capacity {
            requests: Arc::new(Semaphore::new(requests)),
            authorizations: Arc::new(Semaphore::new(requests)),
            large_bodies: Arc::new(Semaphore::new(large_bodies)),
        }
    }

    /// A permit to read a body declared `declared` bytes long (`None`: chunked), or
    /// `Overloaded` when it is large and every large-body permit is taken.
    pub(crate) fn body(
        &self,
        declared: Option<u64>,
    ) -> Result<Option<OwnedSemaphorePermit>, WebhookError> {
        if declared.is_some_and(|len| len <= SMALL_BODY) {
            return Ok(None);
        }
        self.large_bodies
            .clone()
            .try_acquire_owned()
            .map(Some)
            .map_err(|_| WebhookError::Overloaded {
                what: "large request bodies",
                reason: "large_bodies",
            })
    }
}

/// Middleware: every request holds a permit of its route's budget for as long as it is served.
pub(crate) async fn limit_requests(
    State(gateway): State<Arc<Gateway>>,
    request: Request,
    next: Next,
) -> Response {
    let (route, budget) = match request.uri().path() {
        AUTHORIZATION_ROUTE => (AUTHORIZATION_ROUTE, &gateway.capacity.authorizations),
        EVENTS_ROUTE => (EVENTS_ROUTE, &gateway.capacity.requests),
        _ => ("other", &gateway.capacity.requests),
    };
    match budget.clone().try_acquire_owned() {
        Ok(_permit) => next.run(request).await,
        Err(_) => gateway.reject(
            route,
            WebhookError::Overloaded {
                what: "requests",
                reason: "requests",
            },
        ),
    }
}
