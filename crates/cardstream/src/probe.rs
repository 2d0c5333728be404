//! `cardstream probe`: HTTP GETs for health checks where the image has no HTTP client (the
//! runtime image has no curl): the chart's `helm test` hook, a Compose healthcheck.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// `cardstream probe` settings.
#[derive(clap::Args, Debug)]
pub(crate) struct ProbeArgs {
    /// The URLs to GET (plain http: in-cluster and local checks); each must answer 2xx.
    #[arg(required = true)]
    urls: Vec<http::Uri>,

    /// How long each URL may take to answer.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// Exit code when every URL answered 2xx.
const OK: i32 = 0;
/// Exit code when one answered, but not 2xx.
const FAILED: i32 = 1;
/// Exit code when one could not be reached (refused, unresolvable, timed out).
const UNREACHABLE: i32 = 3;

/// GETs each URL in turn and says how each answered (stderr); the exit code of the worst.
pub(crate) async fn run(args: ProbeArgs) -> i32 {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut worst = OK;
    for url in args.urls {
        let code = match tokio::time::timeout(args.timeout, client.get(url.clone())).await {
            Err(_) => {
                eprintln!("{url}: no answer within {:?}", args.timeout);
                UNREACHABLE
            }
            Ok(Err(error)) => {
                eprintln!("{url}: cannot connect: {error}");
                UNREACHABLE
            }
            Ok(Ok(response)) => {
                let status = response.status();
                // The start of the body says why (a /readyz names what is not ready).
                let body = tokio::time::timeout(args.timeout, response.into_body().collect())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
                eprintln!("{url}: {status} {}", text.trim());
                if status.is_success() { OK } else { FAILED }
            }
        };
        worst = worst.max(code);
    }
    worst
}
