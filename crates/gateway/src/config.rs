use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cardstream_kafka::{KafkaArgs, RecordKeyArgs};
use cardstream_policy::PolicyArgs;
use cardstream_store::Timeouts;
use cardstream_stripe::WebhookSecret;
use cardstream_telemetry::{AdminArgs, ServeArgs};
use clap::builder::TypedValueParser;
use secrecy::SecretString;

use crate::Error;
use crate::ledger::SpendLedgerArgs;
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
    pub status: cardstream_telemetry::StatusArgs,

    #[command(flatten)]
    pub spend: SpendCacheArgs,

    #[command(flatten)]
    pub ledger: SpendLedgerArgs,

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
/// the command line where `ps` would show them; the binary rejects `--webhook-secrets` and
/// `--connect-webhook-secrets`.
///
/// A Stripe Connect platform has two webhook endpoints, each with its own secrets: the account
/// endpoint (events of the platform's own account, without `account`) and the Connect
/// endpoint (events of connected accounts, each with `account`). At least one secret of
/// either kind is required.
#[derive(clap::Args, Debug, Clone)]
pub struct SecretArgs {
    /// Webhook signing secrets (`whsec_…`) of the account endpoint, comma-separated; several
    /// are active while a secret is being rolled. Set through the environment only.
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

    /// Signing secrets (`whsec_…`) of a Stripe Connect webhook endpoint, comma-separated.
    /// Events they sign must carry the connected account (`account`); events of the
    /// platform's own account come through the other endpoint. Set through the environment
    /// only.
    #[arg(
        long = "connect-webhook-secrets",
        env = "CARDSTREAM_CONNECT_WEBHOOK_SECRETS",
        hide_env_values = true,
        value_delimiter = ',',
        value_parser = clap::builder::StringValueParser::new().map(WebhookSecret::new)
    )]
    pub connect_webhook_secrets: Vec<WebhookSecret>,

    /// A file with the Connect endpoint's signing secrets, one per line. Added to
    /// CARDSTREAM_CONNECT_WEBHOOK_SECRETS, and re-read when it changes, like
    /// --webhook-secrets-file.
    #[arg(long, env = "CARDSTREAM_CONNECT_WEBHOOK_SECRETS_FILE")]
    pub connect_webhook_secrets_file: Option<PathBuf>,

    /// How often the webhook secrets files are checked for changes.
    #[arg(
        long = "webhook-secrets-reload-interval",
        env = "CARDSTREAM_WEBHOOK_SECRETS_RELOAD_INTERVAL",
        default_value = "5s",
        value_parser = humantime::parse_duration
    )]
    pub secrets_reload_interval: Duration,
}

/// The secrets of each webhook endpoint, as [`SecretArgs::load`] found them.
#[derive(Debug, Clone)]
pub struct EndpointSecrets {
    /// The account endpoint's: events of the platform's own account.
    pub account: Vec<WebhookSecret>,
    /// The Connect endpoint's: events of connected accounts.
    pub connect: Vec<WebhookSecret>,
}

impl SecretArgs {
    /// Every configured secret, from the environment and the files, by endpoint. At least one
    /// is required; a file that is set must hold one (an empty file is one being rewritten, or
    /// a mistake), and no secret may be both endpoints' (which signed an event would then be
    /// unknown).
    pub fn load(&self) -> Result<EndpointSecrets, Error> {
        let account = gather(&self.webhook_secrets, self.webhook_secrets_file.as_deref())?;
        let connect = gather(
            &self.connect_webhook_secrets,
            self.connect_webhook_secrets_file.as_deref(),
        )?;
        if account.is_empty() && connect.is_empty() {
            return Err(Error::NoSecrets);
        }
        if account
            .iter()
            .any(|a| connect.iter().any(|c| a.expose() == c.expose()))
        {
            return Err(Error::SecretOfBothEndpoints);
        }
        Ok(EndpointSecrets { account, connect })
    }
}

/// One endpoint's secrets: those of the environment, then those of the file.
fn gather(from_env: &[WebhookSecret], file: Option<&Path>) -> Result<Vec<WebhookSecret>, Error> {
    let mut secrets: Vec<WebhookSecret> = from_env
        .iter()
        .map(|s| s.expose().trim())
        .filter(|s| !s.is_empty())
        .map(WebhookSecret::new)
        .collect();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| Error::SecretsFile {
            path: path.to_owned(),
            source,
        })?;
        let before = secrets.len();
        secrets.extend(
            text.lines()
                .map(str::trim)
                .filter(|s| !s.is_empty() && !s.starts_with('#'))
                .map(WebhookSecret::new),
        );
        if secrets.len() == before {
            return Err(Error::EmptySecretsFile {
                path: path.to_owned(),
            });
        }
    }
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        secrets: SecretArgs,
    }

    fn load(argv: &[&str]) -> Result<EndpointSecrets, Error> {
        let argv = std::iter::once("gateway").chain(argv.iter().copied());
        Wrapper::try_parse_from(argv).unwrap().secrets.load()
    }

    fn exposed(secrets: &[WebhookSecret]) -> Vec<&str> {
        secrets.iter().map(WebhookSecret::expose).collect()
    }

    #[test]
    fn each_endpoint_takes_its_secrets_from_the_environment_and_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let (account, connect) = (dir.path().join("account"), dir.path().join("connect"));
        std::fs::write(&account, "# rolled on Monday\nwhsec_a2\n").unwrap();
        std::fs::write(&connect, "whsec_c2\n\n").unwrap();
        let secrets = load(&[
            "--webhook-secrets",
            "whsec_a1",
            "--webhook-secrets-file",
            account.to_str().unwrap(),
            "--connect-webhook-secrets",
            "whsec_c1, ",
            "--connect-webhook-secrets-file",
            connect.to_str().unwrap(),
        ])
        .unwrap();
        assert_eq!(exposed(&secrets.account), ["whsec_a1", "whsec_a2"]);
        assert_eq!(exposed(&secrets.connect), ["whsec_c1", "whsec_c2"]);
    }

    #[test]
    fn a_connect_endpoint_alone_is_enough_and_no_secret_at_all_is_not() {
        let secrets = load(&["--connect-webhook-secrets", "whsec_c1"]).unwrap();
        assert!(secrets.account.is_empty());
        assert_eq!(exposed(&secrets.connect), ["whsec_c1"]);
        assert!(matches!(load(&[]), Err(Error::NoSecrets)));
        assert!(matches!(
            load(&["--webhook-secrets", " "]),
            Err(Error::NoSecrets)
        ));
        let message = Error::NoSecrets.to_string();
        assert!(
            message.contains("CARDSTREAM_CONNECT_WEBHOOK_SECRETS"),
            "{message}"
        );
    }

    #[test]
    fn a_secret_given_to_both_endpoints_is_refused_without_showing_it() {
        let err = load(&[
            "--webhook-secrets",
            "whsec_a1,whsec_shared",
            "--connect-webhook-secrets",
            "whsec_shared",
        ])
        .unwrap_err();
        assert!(matches!(err, Error::SecretOfBothEndpoints), "{err}");
        assert!(!err.to_string().contains("whsec_shared"));
    }

    #[test]
    fn a_secrets_file_that_holds_none_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("connect");
        std::fs::write(&empty, "# nothing yet\n\n").unwrap();
        // Even with the account endpoint's secrets: an emptied file is one being rewritten.
        let err = load(&[
            "--webhook-secrets",
            "whsec_a1",
            "--connect-webhook-secrets-file",
            empty.to_str().unwrap(),
        ])
        .unwrap_err();
        assert!(matches!(err, Error::EmptySecretsFile { .. }), "{err}");
        assert!(err.to_string().contains("connect"), "{err}");
        let missing = dir.path().join("missing");
        let err = load(&["--connect-webhook-secrets-file", missing.to_str().unwrap()]).unwrap_err();
        assert!(matches!(err, Error::SecretsFile { .. }), "{err}");
    }
}
