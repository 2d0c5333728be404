use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use cardstream_store::DatabaseArgs;
use cardstream_telemetry::{AdminArgs, ServeArgs};
use clap::builder::TypedValueParser;
use secrecy::SecretString;

use crate::auth::TrustedProxies;

/// Whether the schema can be introspected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Introspection {
    /// By anyone.
    Always,
    /// By signed-in users only (the SDL is public in the repository anyway).
    Authenticated,
    /// By no one.
    Never,
}

/// `cardstream api` settings.
#[derive(clap::Args, Debug, Clone)]
pub struct ApiArgs {
    /// Address of GraphQL (`/graphql`, `/graphql/ws`) and the dashboard.
    #[arg(long, env = "CARDSTREAM_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub admin: AdminArgs,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub status: cardstream_telemetry::StatusArgs,

    /// Connections to Postgres.
    #[arg(long, env = "CARDSTREAM_DATABASE_POOL", default_value_t = 8)]
    pub database_pool: u32,

    /// Secret that signs sign-in tokens (at least 32 bytes). Set through the environment only;
    /// every API replica needs the same one.
    #[arg(
        long = "token-secret",
        env = "CARDSTREAM_TOKEN_SECRET",
        hide_env_values = true,
        value_parser = clap::builder::StringValueParser::new().map(SecretString::from)
    )]
    pub token_secret: SecretString,

    /// How long a sign-in token is valid.
    #[arg(long, env = "CARDSTREAM_TOKEN_TTL", default_value = "12h", value_parser = humantime::parse_duration)]
    pub token_ttl: Duration,

    /// Deepest query accepted.
    #[arg(long, env = "CARDSTREAM_GRAPHQL_MAX_DEPTH", default_value_t = 12)]
    pub max_depth: usize,

    /// Costliest query accepted (each field costs 1; a list field costs its page size times
    /// its children).
    #[arg(
        long,
        env = "CARDSTREAM_GRAPHQL_MAX_COMPLEXITY",
        default_value_t = 5000
    )]
    pub max_complexity: usize,

    /// How long one read of the program overview's sums is shared by every admin viewing it
    /// through this process (each open overview refetches on every tick of its live feed);
    /// `0s` reads them for each request.
    #[arg(
        long,
        env = "CARDSTREAM_OVERVIEW_SHARED_FOR",
        default_value = "1s",
        value_parser = humantime::parse_duration
    )]
    pub overview_shared_for: Duration,

    /// Largest page a connection returns.
    #[arg(long, env = "CARDSTREAM_GRAPHQL_MAX_PAGE_SIZE", default_value_t = 100)]
    pub max_page_size: i32,

    /// Sign-in attempts allowed per account per minute. Each attempt counts from before its
    /// password is checked, so parallel attempts cannot overshoot; a success forgets the
    /// account's failures.
    #[arg(
        long,
        env = "CARDSTREAM_LOGIN_ATTEMPTS_PER_ACCOUNT",
        default_value_t = 5
    )]
    pub login_attempts_per_account: u32,

    /// Failed sign-ins allowed per client address per minute (attempts under way count too).
    #[arg(
        long,
        env = "CARDSTREAM_LOGIN_ATTEMPTS_PER_ADDRESS",
        default_value_t = 30
    )]
    pub login_attempts_per_address: u32,

    /// How long a request gathers the lookups its list items make before sending them as one
    /// statement. Longer batches more reliably on a slow machine; every nesting level of a
    /// query waits it once.
    #[arg(long = "graphql-batch-window", env = "CARDSTREAM_GRAPHQL_BATCH_WINDOW", default_value = "1ms", value_parser = humantime::parse_duration)]
    pub batch_window: Duration,

    /// How long an invitation or password-reset link works.
    #[arg(long, env = "CARDSTREAM_INVITATION_TTL", default_value = "72h", value_parser = humantime::parse_duration)]
    pub invitation_ttl: Duration,

    /// Serve GraphiQL at `GET /graphql` (from the binary's own assets). Off by default: an
    /// explorer is for development, not for the internet.
    #[arg(long, env = "CARDSTREAM_GRAPHIQL")]
    pub graphiql: bool,

    /// Most accounts and client addresses the sign-in limiter remembers at once. When full,
    /// expired and then unlocked ones are forgotten, never a locked one; when every one is
    /// locked, sign-ins from new accounts or addresses are refused until the oldest expires.
    #[arg(
        long,
        env = "CARDSTREAM_LOGIN_LIMITER_CAPACITY",
        default_value = "100000"
    )]
    pub login_limiter_capacity: NonZeroUsize,

    /// Password hashes and checks run at once (each takes a core and 19 MiB for tens of
    /// milliseconds, on a blocking thread); more sign-ins wait their turn.
    #[arg(
        long,
        env = "CARDSTREAM_PASSWORD_HASH_CONCURRENCY",
        default_value = "2"
    )]
    pub password_hash_concurrency: NonZeroUsize,

    /// Address ranges of the reverse proxies in front of the API, comma-separated CIDRs
    /// (`10.0.0.0/8,fd00::/8`). Their `X-Forwarded-For` gives the client's address; from
    /// anyone else it is ignored. Empty (the default): the connecting address is the client's.
    #[arg(long, env = "CARDSTREAM_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: TrustedProxies,

    /// Who may introspect the schema.
    #[arg(
        long,
        env = "CARDSTREAM_GRAPHQL_INTROSPECTION",
        value_enum,
        default_value = "authenticated"
    )]
    pub introspection: Introspection,

    #[command(flatten)]
    pub serve: ServeArgs,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ApiArgs,
    }

    fn parse(extra: &[&str]) -> Result<ApiArgs, clap::Error> {
        let mut argv = vec![
            "api",
            "--database-url",
            "postgres://localhost/x",
            "--token-secret",
            "a secret of at least thirty-two bytes!!",
        ];
        argv.extend_from_slice(extra);
        Wrapper::try_parse_from(argv).map(|w| w.args)
    }

    #[test]
    fn sign_in_settings_have_defaults_and_are_checked() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.login_limiter_capacity.get(), 100_000);
        assert_eq!(args.password_hash_concurrency.get(), 2);
        assert!(args.trusted_proxies.is_empty());

        let args = parse(&["--trusted-proxies", "10.0.0.0/8, 192.168.0.1"]).unwrap();
        assert_eq!(
            args.trusted_proxies,
            "10.0.0.0/8,192.168.0.1".parse().unwrap()
        );
        assert!(parse(&["--trusted-proxies", "10.0.0.0/8,proxy.internal"]).is_err());
        assert!(parse(&["--password-hash-concurrency", "0"]).is_err());
        assert!(parse(&["--login-limiter-capacity", "0"]).is_err());
    }
}
