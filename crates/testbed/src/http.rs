use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A response read to the end.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpResponse {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// GETs `url`, over a fresh connection.
pub async fn get(url: &str) -> HttpResponse {
    let request = Request::get(url)
        .body(Full::new(Bytes::new()))
        .expect("a valid request");
    send(url, request).await
}

/// GETs `url` with `headers`, over a fresh connection.
pub async fn get_with(url: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let mut request = Request::get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::new()))
        .expect("a valid request");
    send(url, request).await
}

/// POSTs `body` to `url` with `headers`, over a fresh connection.
pub async fn post(url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> HttpResponse {
    let mut request = Request::post(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(body.into()))
        .expect("a valid request");
    send(url, request).await
}

async fn send(url: &str, request: Request<Full<Bytes>>) -> HttpResponse {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let method = request.method().clone();
    let response = client
        .request(request)
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("response body")
        .to_bytes();
    HttpResponse {
        status,
        headers,
        body,
    }
}
