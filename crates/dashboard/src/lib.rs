//! The dashboard's static files. `web/` (TypeScript, Vite) builds to `web/dist`, which is
//! embedded here at compile time (in debug builds rust-embed reads the folder at run time), and
//! served by `cardstream api` at `/`: files by path, hashed assets cached for a year, every
//! other path answered with `index.html` so the app's own routes survive a reload, each
//! compressed (brotli or gzip, as the browser accepts). A binary built before the web app
//! still runs and says how to build it.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tower_http::compression::CompressionLayer;

#[derive(rust_embed::Embed)]
#[folder = "../../web/dist"]
#[allow_missing = true]
struct Assets;

/// What `/` shows when the binary was built without the web app.
const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>cardstream</title>\
<h1>The dashboard was not built into this binary</h1>\
<p>Build it with <code>scripts/web.sh</code> (runs <code>npm ci</code> and <code>npm run build</code> in <code>web/</code>), \
then rebuild cardstream. The GraphQL API works meanwhile: <a href=\"/graphql\">/graphql</a>.</p>";

/// Whether the web app is embedded.
pub fn is_built() -> bool {
    Assets::get("index.html").is_some()
}

/// GraphiQL's page (`graphiql.html`, built from npm packages into the same assets, so it loads
/// nothing from a CDN), for `cardstream api --graphiql` to serve at `GET /graphql`.
pub fn graphiql_page() -> Option<axum::body::Bytes> {
    Assets::get("graphiql.html").map(|file| axum::body::Bytes::from(file.data.into_owned()))
}

/// Serves the dashboard for every path the other routes do not take, compressed at the
/// encoder's default level (fast enough per request): the dashboard's main script goes out at
/// 40% of its size with brotli.
pub fn router() -> Router {
    Router::new()
        .fallback(serve)
        .layer(CompressionLayer::new().gzip(true).br(true))
}

async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if !path.is_empty()
        && let Some(file) = Assets::get(path)
    {
        let cache = if path.starts_with("assets/") {
            // Vite puts a content hash in every asset's name.
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        return file_response(file, cache);
    }
    // A missing file with an extension is a 404; anything else is one of the app's routes.
    let last = path.rsplit('/').next().unwrap_or_default();
    if last.contains('.') {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    match Assets::get("index.html") {
        Some(index) => file_response(index, "no-cache"),
        None => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            NOT_BUILT,
        )
            .into_response(),
    }
}

fn file_response(file: rust_embed::EmbeddedFile, cache: &'static str) -> Response {
    let mime = file.metadata.mimetype().to_owned();
    let mut response = Response::new(Body::from(file.data.into_owned()));
    if let Ok(value) = HeaderValue::from_str(&mime) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(path: &str) -> (StatusCode, String, String) {
        let response = router()
            .oneshot(axum::http::Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let kind = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, kind, String::from_utf8_lossy(&body).into_owned())
    }

    /// `path` asked for with `Accept-Encoding: accept`: its status, `Content-Encoding`,
    /// `Cache-Control` and the body's length as sent.
    async fn get_encoded(path: &str, accept: &str) -> (StatusCode, String, String, usize) {
        let response = router()
            .oneshot(
                axum::http::Request::get(path)
                    .header(header::ACCEPT_ENCODING, accept)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let header_of = |name| {
            response
                .headers()
                .get(name)
                .map(|v: &HeaderValue| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let (encoding, cache) = (
            header_of(header::CONTENT_ENCODING),
            header_of(header::CACHE_CONTROL),
        );
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, encoding, cache, body.len())
    }

    #[tokio::test]
    async fn files_are_sent_compressed_as_accepted_and_hashed_assets_cached_for_a_year() {
        for (accept, expected) in [("br", "br"), ("gzip", "gzip"), ("gzip, br", "br")] {
            let (status, encoding, cache, _) = get_encoded("/", accept).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(encoding, expected, "Accept-Encoding: {accept}");
            assert_eq!(cache, "no-cache");
        }
        assert_eq!(get_encoded("/", "identity").await.1, "");
        if !is_built() {
            return;
        }
        let index = Assets::get("index.html").unwrap();
        let index = String::from_utf8_lossy(&index.data).into_owned();
        let script = index
            .split("src=\"/")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned();
        let raw = Assets::get(&script).unwrap().data.len();
        let (status, encoding, cache, sent) = get_encoded(&format!("/{script}"), "br").await;
        assert_eq!((status, encoding.as_str()), (StatusCode::OK, "br"));
        assert_eq!(cache, "public, max-age=31536000, immutable");
        assert!(sent * 2 < raw, "{script}: {sent} bytes sent of {raw}");
    }

    #[tokio::test]
    async fn app_routes_fall_back_to_the_app_and_missing_files_are_404() {
        let (status, kind, body) = get("/cards/ic_123").await;
        assert_eq!(status, StatusCode::OK);
        assert!(kind.starts_with("text/html"), "{kind}");
        if is_built() {
            assert!(body.contains("<div id=\"app\">"), "{body}");
        } else {
            assert!(body.contains("scripts/web.sh"), "{body}");
        }
        assert_eq!(
            get("/assets/nothing-here.js").await.0,
            StatusCode::NOT_FOUND
        );
    }
}
