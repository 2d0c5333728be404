//! A small GraphQL-over-HTTP client for the API benchmarks: keep-alive connections, JSON in
//! and out.

use std::net::SocketAddr;

use anyhow::Context;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub(crate) struct Client {
    http: HyperClient<HttpConnector, Full<Bytes>>,
    url: String,
}

impl Client {
    pub(crate) fn new(api: SocketAddr, connections: usize) -> Self {
        Client {
            http: crate::load::client(connections),
            url: format!("http://{api}/graphql"),
        }
    }

    /// POSTs a GraphQL request body; returns the response body as JSON.
    pub(crate) async fn post(&self, token: Option<&str>, body: &Value) -> anyhow::Result<Value> {
        let mut request = Request::post(&self.url).header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.body(Full::new(Bytes::from(body.to_string())))?;
        let response = self.http.request(request).await?;
        let bytes = response.into_body().collect().await?.to_bytes();
        serde_json::from_slice(&bytes).context("the API answered with something other than JSON")
    }
}

/// Signs in and returns the token.
pub(crate) async fn login(client: &Client, email: &str, password: &str) -> anyhow::Result<String> {
    let response = client
        .post(
            None,
            &json!({
                "query": "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { token } }",
                "variables": {"e": email, "p": password},
            }),
        )
        .await?;
    response["data"]["login"]["token"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("sign-in as {email} failed: {response}"))
}
