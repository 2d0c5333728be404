//! No default deployment trusts a secret written down in this repository. A session token is
//! taken from a real sign-in, then signed again with every string that appears in the files a
//! deployment starts from (Compose, the chart, the manifests, the README, dev's source); the
//! API refuses each forgery as UNAUTHENTICATED. The same forgery signed with the API's actual
//! secret is accepted, so the forging itself is sound. The deployments: `cardstream dev`, and
//! Compose's API as `docker-compose.yml` configures it when the user sets nothing.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use cardstream_api::Tokens;
use common::api::{ADMIN, ApiProcess, SECRET, Seeded};
use common::gateway::{free_addr, wait_listening};
use serde_json::{Value, json};

/// The files a deployment is made from, and where a default secret would hide.
const DEPLOYMENT_FILES: &[&str] = &[
    "docker-compose.yml",
    "README.md",
    "SECURITY.md",
    "charts/cardstream/values.yaml",
    "charts/cardstream/templates/NOTES.txt",
    "charts/cardstream/templates/secret.yaml",
    "k8s/operator.yaml",
    "k8s/sample-cardstream.yaml",
    "crates/cardstream/src/dev.rs",
    "scripts/dev.sh",
];

/// Every word of at least 8 characters, and every quoted string, of the deployment files.
fn repository_strings() -> BTreeSet<String> {
    let mut strings = BTreeSet::new();
    for file in DEPLOYMENT_FILES {
        let path = format!("{}/../../{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        for word in text.split(|c: char| c.is_whitespace() || "\"'`,;()[]{}<>|".contains(c)) {
            let word = word.trim_matches(|c: char| ".:=*#".contains(c));
            if word.len() >= 8 {
                strings.insert(word.to_owned());
            }
            // `KEY=value`, `key: value` and `${VAR:-default}`: the value alone too.
            for part in word
                .split(['=', ':'])
                .map(|p| p.trim_start_matches(['-', '?']))
            {
                if part.len() >= 8 {
                    strings.insert(part.to_owned());
                }
            }
        }
        for quote in ['"', '\''] {
            for (i, quoted) in text.split(quote).enumerate() {
                if i % 2 == 1 && quoted.len() >= 8 && !quoted.contains('\n') {
                    strings.insert(quoted.to_owned());
                }
            }
        }
    }
    strings
}

/// The token's user and session, as a forger who captured it would read them.
fn claims(token: &str) -> (i64, String) {
    let mut validation = jsonwebtoken::Validation::default();
    validation.insecure_disable_signature_validation();
    let data = jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(b""),
        &validation,
    )
    .unwrap();
    let user = data.claims["sub"].as_str().unwrap().parse().unwrap();
    (user, data.claims["sid"].as_str().unwrap().to_owned())
}

fn forge(secret: &str, (user, session): &(i64, String)) -> String {
    let expires = i64::try_from(
        (std::time::SystemTime::now() + Duration::from_secs(3600))
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    Tokens::new(secret.as_bytes(), Duration::from_secs(3600))
        .issue(*user, session, expires)
        .unwrap()
}

async fn me(url: &str, token: &str) -> Value {
    let auth = format!("Bearer {token}");
    let body = json!({"query": "{ viewer { user { email } } }"}).to_string();
    cardstream_testbed::post(
        url,
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
        ],
        body,
    )
    .await
    .json()
}

fn unauthenticated(response: &Value) -> bool {
    response["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
}

/// Every forgery of `stolen` signed with one of `strings`, sent to `url`: those accepted.
async fn accepted<'a>(
    url: &str,
    strings: &'a BTreeSet<String>,
    stolen: &(i64, String),
) -> Vec<&'a String> {
    let mut accepted = Vec::new();
    for secret in strings {
        if !unauthenticated(&me(url, &forge(secret, stolen)).await) {
            accepted.push(secret);
        }
    }
    accepted
}

/// What Compose gives the API as `CARDSTREAM_TOKEN_SECRET` when the user sets nothing: the
/// value, or Compose's refusal to start.
fn compose_token_secret() -> Result<String, String> {
    let path = format!("{}/../../docker-compose.yml", env!("CARGO_MANIFEST_DIR"));
    let compose: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let value = compose["services"]["api"]["environment"]["CARDSTREAM_TOKEN_SECRET"]
        .as_str()
        .expect("the api service sets CARDSTREAM_TOKEN_SECRET")
        .to_owned();
    let Some(inner) = value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) else {
        return Ok(value);
    };
    let name_end = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let operator = &inner[name_end..];
    if let Some(default) = operator
        .strip_prefix(":-")
        .or_else(|| operator.strip_prefix('-'))
    {
        Ok(default.to_owned())
    } else if let Some(message) = operator
        .strip_prefix(":?")
        .or_else(|| operator.strip_prefix('?'))
    {
        Err(message.to_owned())
    } else {
        Ok(String::new())
    }
}

#[tokio::test]
async fn compose_runs_with_no_token_secret_from_the_repository() {
    let secret = match compose_token_secret() {
        Err(refusal) => {
            // Compose will not start the API without the user's own secret.
            assert!(refusal.contains("set CARDSTREAM_TOKEN_SECRET"), "{refusal}");
            return;
        }
        Ok(secret) => secret,
    };
    // Compose would start the API with `secret`: so does this test, and then forges.
    let seeded = Seeded::new().await;
    let listen = free_addr();
    let _api = tokio::process::Command::new(env!("CARGO_BIN_EXE_cardstream"))
        .args([
            "api",
            "--listen",
            &listen.to_string(),
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .env("CARDSTREAM_DATABASE_URL", &seeded.db.url)
        .env("CARDSTREAM_TOKEN_SECRET", &secret)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_listening(listen).await;
    let url = format!("http://{listen}/graphql");
    let login = json!({
        "query": "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { token } }",
        "variables": {"e": ADMIN, "p": common::api::PASSWORD},
    });
    let response = cardstream_testbed::post(
        &url,
        &[("content-type", "application/json")],
        login.to_string(),
    )
    .await
    .json();
    let token = response["data"]["login"]["token"].as_str().unwrap();
    let strings = repository_strings();
    let accepted = accepted(&url, &strings, &claims(token)).await;
    assert!(
        accepted.is_empty(),
        "Compose's API, as shipped, accepts tokens signed with {accepted:?}"
    );
}

#[tokio::test]
async fn a_token_forged_with_a_string_from_the_repository_is_refused_by_dev() {
    let strings = repository_strings();
    assert!(strings.len() > 100, "only {} strings found", strings.len());

    // The forging is sound: with the API's real secret, the forgery is accepted.
    let seeded = Seeded::new().await;
    let api = ApiProcess::start(&seeded, &[]).await;
    let token = api.login(ADMIN).await;
    let stolen = claims(&token);
    let url = api.url();
    assert_eq!(
        me(&url, &forge(SECRET, &stolen)).await["data"]["viewer"]["user"]["email"],
        ADMIN
    );
    assert!(unauthenticated(
        &me(&url, &forge("not the secret at all", &stolen)).await
    ));

    // `cardstream dev`, the one deployment that starts without being given secrets.
    let db = cardstream_testbed::TestDatabase::create().await;
    let listen = free_addr();
    let _dev = tokio::process::Command::new(env!("CARGO_BIN_EXE_cardstream"))
        .args(["dev", "--listen", &listen.to_string()])
        .args([
            "--webhook-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args(["--rate", "0"])
        .env("CARDSTREAM_DEV_DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_listening(listen).await;
    let url = format!("http://{listen}/graphql");
    let login = json!({
        "query": "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { token } }",
        "variables": {"e": "admin@cardstream.dev", "p": "cardstream-admin"},
    });
    let response = cardstream_testbed::post(
        &url,
        &[("content-type", "application/json")],
        login.to_string(),
    )
    .await
    .json();
    let token = response["data"]["login"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("dev's demo admin cannot sign in: {response}"));
    let stolen = claims(token);
    assert_eq!(
        me(&url, token).await["data"]["viewer"]["user"]["email"],
        "admin@cardstream.dev"
    );

    let started = Instant::now();
    let accepted = accepted(&url, &strings, &stolen).await;
    eprintln!(
        "{} strings from {} files tried as the token secret in {:?}; {} accepted",
        strings.len(),
        DEPLOYMENT_FILES.len(),
        started.elapsed(),
        accepted.len()
    );
    assert!(
        accepted.is_empty(),
        "dev accepted tokens signed with {accepted:?}"
    );
}
