//! The GraphQL request path of `cardstream api`, end to end over HTTP: the API is started in
//! process with `cardstream_api::start` and its real defaults (depth 12, complexity 5000, page
//! size 100, the 64 KiB body limit, introspection for signed-in users only), and every input
//! is POSTed to its `/graphql`. So each case goes through the body limit, async-graphql-axum's
//! JSON or multipart request parsing and batch refusal, the bearer-token check, the
//! introspection policy (our own pre-parse of the query), and async-graphql's parser,
//! validation, depth and complexity limits, our extensions (error codes, operation metrics) and
//! the resolvers.
//!
//! There is no Postgres: the database URL points at a listener in this process that accepts and
//! at once closes every connection, so anything that reaches the store fails fast with a
//! database error (as during an outage) instead of waiting for a pool timeout. Resolvers that
//! need a signed-in viewer are therefore covered up to their UNAUTHENTICATED or store-error
//! answers.
//!
//! Input: one flags byte, then the request body. Flags (ASCII `@` = all clear, so seeds read as
//! `@{"query": …}`):
//! - bit 0: send to a second API started with `--introspection always` (introspection executes);
//! - bit 1: `multipart/form-data; boundary=fuzz` instead of `application/json`;
//! - bit 2: the body starts with a bearer token ending at the first newline;
//! - bit 3: pad the body past the 64 KiB limit (must be refused with 413);
//! - bit 4: no content-type header at all.
//!
//! A panic anywhere in the server (any thread, any task) aborts the process through
//! libfuzzer-sys's panic hook, so libFuzzer records it as a crash even though tokio would catch
//! it. Beyond that, the target checks that no input gets a 5xx and that every 200 is a GraphQL
//! response (`data` or `errors`).
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use cardstream_api::{ApiArgs, RunningApi};
use cardstream_telemetry::{CancellationToken, Registry};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use libfuzzer_sys::fuzz_target;

const BODY_LIMIT: usize = 64 * 1024;
const SECRET: &str = "fuzz-token-secret-of-at-least-32-bytes";

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    args: ApiArgs,
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    client: Client<HttpConnector, Full<Bytes>>,
    /// `/graphql` of the API with default settings, and of the one with introspection always on.
    urls: [String; 2],
    _apis: Vec<RunningApi>,
    _shutdown: CancellationToken,
}

/// A "database" that accepts connections and closes them at once: the store fails fast.
async fn closed_database() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the stand-in database");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        loop {
            if let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        }
    });
    format!("postgres://fuzz@{addr}/fuzz?sslmode=disable")
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        // One thread: the server, the stand-in database and the client all run inside the
        // fuzzer's `block_on`, so each case is handled to the end before the next one starts.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let shutdown = CancellationToken::new();
        let apis = runtime.block_on(async {
            let database = closed_database().await;
            let mut apis = Vec::new();
            for extra in [&[][..], &["--introspection", "always"][..]] {
                let mut argv = vec![
                    "api",
                    "--listen",
                    "127.0.0.1:0",
                    "--admin-listen",
                    "127.0.0.1:0",
                    "--database-url",
                    &database,
                    "--database-pool",
                    "2",
                    "--token-secret",
                    SECRET,
                ];
                argv.extend_from_slice(extra);
                let args = Wrapper::try_parse_from(argv).expect("valid api args").args;
                let api = cardstream_api::start(
                    args,
                    Registry::new(),
                    shutdown.clone(),
                    axum::Router::new(),
                )
                .await
                .expect("the API starts");
                apis.push(api);
            }
            apis
        });
        let urls = [
            format!("http://{}/graphql", apis[0].addr),
            format!("http://{}/graphql", apis[1].addr),
        ];
        let client = runtime.block_on(async {
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build_http()
        });
        Harness {
            runtime,
            client,
            urls,
            _apis: apis,
            _shutdown: shutdown,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut body)) = data.split_first() else {
        return;
    };
    let harness = harness();
    let url = &harness.urls[usize::from(flags & 1)];
    let mut request = hyper::Request::post(url.as_str());
    if flags & 0x10 == 0 {
        request = request.header(
            "content-type",
            if flags & 2 != 0 {
                "multipart/form-data; boundary=fuzz"
            } else {
                "application/json"
            },
        );
    }
    if flags & 4 != 0 {
        let end = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
        let mut value = b"Bearer ".to_vec();
        value.extend_from_slice(&body[..end]);
        // Bytes no header may carry never reach the server; send the rest without the header.
        if let Ok(value) = hyper::header::HeaderValue::from_bytes(&value) {
            request = request.header("authorization", value);
        }
        body = body.get(end + 1..).unwrap_or_default();
    }
    let oversized = flags & 8 != 0;
    let mut payload = body.to_vec();
    if oversized {
        payload.resize(BODY_LIMIT + 1 + payload.len(), b' ');
    }
    let request = request
        .body(Full::new(Bytes::from(payload)))
        .expect("a valid request");

    let outcome = harness.runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), async {
            let response = harness.client.request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((status, body))
        })
        .await
    });
    let (status, body) = match outcome {
        Err(_) => panic!("the API did not answer within 20 s"),
        // The server may answer a refused body early and close the connection while the client
        // is still sending: not a fault of the API.
        Ok(Err(_)) if oversized => return,
        Ok(Err(err)) => panic!("the request failed without an HTTP answer: {err}"),
        Ok(Ok(answer)) => answer,
    };
    assert!(
        !status.is_server_error(),
        "{status} for this input: {}",
        String::from_utf8_lossy(&body)
    );
    if oversized {
        assert_eq!(status, 413, "an oversized body was not refused");
    }
    if status == 200 {
        let json: serde_json::Value = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("a 200 that is not JSON ({e}): {body:?}"));
        assert!(
            json.get("data").is_some() || json.get("errors").is_some(),
            "a 200 that is not a GraphQL response: {json}"
        );
    }
});
