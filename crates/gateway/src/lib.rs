//! The webhook gateway: Stripe's only door into cardstream.
//!
//! `POST /webhooks/stripe` verifies the signature on the raw bytes and produces the body to
//! Kafka, answering 200 only after the broker acknowledged it. `POST
//! /webhooks/stripe/authorization` answers Stripe's real-time authorization request from an
//! in-memory policy and produces the request in the background.

mod app;
mod authorization;
mod config;
mod endpoints;
mod error;
mod events;
mod ledger;
mod metrics;
mod replays;
mod reservations;
mod rotation;
mod server;
mod shed;
mod spend;

pub use app::{AUTHORIZATION_ROUTE, EVENTS_ROUTE, Gateway, app};
pub use config::{EndpointSecrets, GatewayArgs, SecretArgs};
pub use endpoints::{Endpoint, Verifiers};
pub use error::WebhookError;
pub use ledger::{LedgerMode, RequestEvent, SpendLedger, SpendLedgerArgs};
pub use metrics::GatewayMetrics;
pub use server::{RunningGateway, start};
pub use shed::SMALL_BODY;
pub use spend::{SpendCache, SpendCacheArgs};

/// Errors that stop the gateway from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no webhook secret configured: set CARDSTREAM_WEBHOOK_SECRETS or --webhook-secrets-file \
         (the account endpoint's), or CARDSTREAM_CONNECT_WEBHOOK_SECRETS or \
         --connect-webhook-secrets-file (a Connect endpoint's)"
    )]
    NoSecrets,
    #[error("cannot read the webhook secrets file {path}: {source}")]
    SecretsFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the webhook secrets file {path} holds no secret")]
    EmptySecretsFile { path: std::path::PathBuf },
    #[error(
        "a webhook secret is configured for both the account endpoint and the Connect endpoint; \
         each Stripe endpoint has its own secret: give each endpoint's secrets only to its setting"
    )]
    SecretOfBothEndpoints,
    #[error("invalid signature settings: {0}")]
    Signature(#[from] cardstream_stripe::Error),
    #[error("invalid authorization policy: {0}")]
    Policy(#[from] cardstream_policy::Error),
    #[error(transparent)]
    Kafka(#[from] cardstream_kafka::Error),
    #[error(transparent)]
    Telemetry(#[from] cardstream_telemetry::Error),
    #[error("could not register metric: {0}")]
    Metric(#[from] prometheus::Error),
    #[error(
        "the policy has spend limits but no database to read spend from: set CARDSTREAM_DATABASE_URL"
    )]
    NoDatabaseForLimits,
    #[error(
        "--catch-up-interval needs the database (to skip stored events and keep its position): set CARDSTREAM_DATABASE_URL"
    )]
    NoDatabaseForCatchUp,
    #[error("catch-up: {0}")]
    CatchUp(#[from] cardstream_sync::Error),
    #[error(transparent)]
    Store(#[from] cardstream_store::Error),
    #[error("reading card spend took longer than {0:?}")]
    SpendReadTimedOut(std::time::Duration),
    #[error("--stripe-version {0:?} is not a valid header value")]
    StripeVersion(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("the webhook server failed: {0}")]
    Serve(std::io::Error),
}
