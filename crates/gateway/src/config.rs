use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use cardstream_kafka::{KafkaArgs, RecordKeyArgs};
use cardstream_policy::PolicyArgs;
use cardstream_store::Timeouts;
use cardstream_stripe::WebhookSecret;
use cardstream_telemetry::{AdminArgs, ServeArgs};
use clap::builder::TypedValueParser;
use secrecy::SecretString;

use crate::Error;
use crate::spend::SpendCacheArgs;

/// `cardstream gateway` settings.
#[derive(clap::Args, Debug, Clone)]
pub struct GatewayArgs {
    /// Address Stripe posts webhooks to.
    #[arg(long, env = "CARDSTREAM_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub admin: AdminArgs,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    #[command(flatten)]
    pub record_keys: RecordKeyArgs,

    #[command(flatten)]
    pub secrets: SecretArgs,

    /// How far a signature's timestamp may be from now before it is rejected as a replay.
    #[arg(
        long,
        env = "CARDSTREAM_SIGNATURE_TOLERANCE",
        default_value = "300s",
        value_parser = humantime::parse_duration
    )]
    pub signature_tolerance: Duration,

    /// Largest webhook body accepted, in bytes; larger ones get 413.
    #[arg(long, env = "CARDSTREAM_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,

    /// How long a webhook waits for the broker's acknowledgement before answering 503 (and
    /// Stripe retries).
    #[arg(
        long,
        env = "CARDSTREAM_PRODUCE_TIMEOUT",
        default_value = "5s",
        value_parser = humantime::parse_duration
    )]
    pub produce_timeout: Duration,

    /// Longest a client may take to send a webhook's body once its headers arrived; slower
    /// bodies get 408, so a trickling client cannot hold a connection and its buffer open.
    #[arg(
        long,
        env = "CARDSTREAM_BODY_TIMEOUT",
        default_value = "10s",
        value_parser = humantime::parse_duration
    )]
    pub body_timeout: Duration,

    /// How long the producer waits to fill a batch. Higher trades latency for throughput.
    #[arg(
        long,
        env = "CARDSTREAM_KAFKA_LINGER",
        default_value = "2ms",
        value_parser = humantime::parse_duration
    )]
    pub kafka_linger: Duration,

    /// The `Stripe-Version` header sent with authorization decisions.
    #[arg(long, env = "CARDSTREAM_STRIPE_VERSION", default_value = "2024-06-20")]
    pub stripe_version: String,

    #[command(flatten)]
    pub policy: PolicyArgs,

    /// Postgres, for the policy's spend limits (the gateway only reads spend from it). Set
    /// through the environment: the URL may hold a password.
    #[arg(
        long,
        env = "CARDSTREAM_DATABASE_URL",
        hide_env_values = true,
        value_parser = clap::builder::StringValueParser::new().map(SecretString::from)
    )]
    pub database_url: Option<SecretString>,

    #[command(flatten)]
    pub database_timeouts: Timeouts,

    #[command(flatten)]
    pub spend: SpendCacheArgs,

    #[command(flatten)]
    pub catch_up: cardstream_sync::CatchUpLoopArgs,

    #[command(flatten)]
    pub serve: ServeArgs,

    /// Most requests served at once, for authorization requests and for everything else
    /// separately; past it, requests get 503 with `Retry-After` (and Stripe retries) instead
    /// of queueing. At least 1 (0 would refuse every request).
    #[arg(
        long,
        env = "CARDSTREAM_MAX_CONCURRENT_REQUESTS",
        default_value = "1024"
    )]
    pub max_concurrent_requests: std::num::NonZeroUsize,

    /// Most bodies over 64 KiB (or of undeclared length) read at once before their signature
    /// is checked. Stripe's events are a few KiB; this bounds what a client uploading large
    /// bodies slowly can hold (this many × --body-limit of memory).
    #[arg(long, env = "CARDSTREAM_MAX_LARGE_BODIES", default_value_t = 16)]
    pub max_large_bodies: usize,
}

/// Webhook signing secrets. They come from the environment or a file, never from a flag on
/// the command line where `ps` would show them; the binary rejects `--webhook-secrets`.
#[derive(clap::Args, Debug, Clone)]
pub struct SecretArgs {
    /// Webhook signing secrets (`whsec_…`), comma-separated; several are active while a secret
    /// is being rolled. Set through the environment only.
    #[arg(
        long = "webhook-secrets",
        env = "CARDSTREAM_WEBHOOK_SECRETS",
        hide_env_values = true,
        value_delimiter = ',',
        value_parser = clap::builder::StringValueParser::new().map(WebhookSecret::new)
    )]
    pub webhook_secrets: Vec<WebhookSecret>,

    /// A file with webhook signing secrets, one per line (e.g. a mounted Kubernetes Secret).
    /// Added to CARDSTREAM_WEBHOOK_SECRETS. Re-read when it changes: rotate a secret by adding
    /// the new one, then (once Stripe signs with it) removing the old one; no restart.
    #[arg(long, env = "CARDSTREAM_WEBHOOK_SECRETS_FILE")]
    pub webhook_secrets_file: Option<PathBuf>,

    /// How often the webhook secrets file is checked for changes.
    #[arg(
        long = "webhook-secrets-reload-interval",
        env = "CARDSTREAM_WEBHOOK_SECRETS_RELOAD_INTERVAL",
        default_value = "5s",
        value_parser = humantime::parse_duration
    )]
    pub secrets_reload_interval: Duration,
}

impl SecretArgs {
    /// Every configured secret, from the environment and the file. At least one is required.
    pub fn load(&self) -> Result<Vec<WebhookSecret>, Error> {
        let mut secrets: Vec<WebhookSecret> = self
            .webhook_secrets
            .iter()
            .map(|s| s.expose().trim())
            .filter(|s| !s.is_empty())
            .map(WebhookSecret::new)
            .collect();
        if let Some(path) = &self.webhook_secrets_file {
            let text = std::fs::read_to_string(path).map_err(|source| Error::SecretsFile {
                path: path.clone(),
                source,
            })?;
            secrets.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|s| !s.is_empty() && !s.starts_with('#'))
                    .map(WebhookSecret::new),
            );
        }
        if secrets.is_empty() {
            return Err(Error::NoSecrets);
        }
        Ok(secrets)
    }
}
