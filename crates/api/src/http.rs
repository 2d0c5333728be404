//! The HTTP side: `POST /graphql`, `GET /graphql` (GraphiQL, when enabled), `GET /graphql/ws`
//! (graphql-transport-ws, in `ws.rs`).

use std::net::SocketAddr;
use std::sync::Arc;

use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cardstream_store::Store;
use tower_http::limit::RequestBodyLimitLayer;

use crate::auth::{Credentials, Sessions, Tokens, TrustedProxies};
use crate::config::Introspection;
use crate::graphql::{ApiSchema, Authentication, ClientAddress, loader};

/// What the HTTP handlers share.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) schema: ApiSchema,
    pub(crate) store: Store,
    pub(crate) tokens: Tokens,
    pub(crate) sessions: Sessions,
    /// How long a request's loaders gather keys before sending a batch.
    pub(crate) batch_window: std::time::Duration,
    pub(crate) introspection: Introspection,
    /// GraphiQL's page, when `--graphiql` is on and the binary carries it.
    pub(crate) graphiql: Option<axum::body::Bytes>,
    pub(crate) proxies: TrustedProxies,
}

/// GraphQL requests are small; anything bigger is refused before parsing.
const GRAPHQL_BODY_LIMIT: usize = 64 * 1024;

pub(crate) fn routes(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .route("/graphql/ws", get(crate::ws::websocket))
        .route("/export/activity.csv", get(crate::export::activity_csv))
        // The GraphQL extractor reads the body itself and ignores axum's DefaultBodyLimit, so
        // the limit is enforced around it: 413 before a byte is parsed.
        .layer(RequestBodyLimitLayer::new(GRAPHQL_BODY_LIMIT))
        .with_state(state)
}

/// What a bearer token says, when it is ours and unexpired (whether its session is still open
/// is asked lazily, by the resolvers that need a viewer).
pub(crate) fn credentials(state: &AppState, token: Option<&str>) -> Option<Credentials> {
    state.tokens.verify(token?)
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

async fn graphql(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let mut request = request
        .into_inner()
        .data(loader(state.store.clone(), state.batch_window))
        .data(ClientAddress(Some(
            state.proxies.client_address(peer.ip(), &headers),
        )));
    let credentials = credentials(&state, bearer(&headers));
    let introspect = match state.introspection {
        Introspection::Always => true,
        // Only a request that asks for introspection pays for the session lookup.
        Introspection::Authenticated => {
            asks_for_introspection(&request.query)
                && match &credentials {
                    Some(c) => matches!(state.sessions.viewer(c).await, Ok(Some(_))),
                    None => false,
                }
        }
        Introspection::Never => false,
    };
    if !introspect {
        // Without this answer a disabled introspection just returns null, which reads like a
        // bug to a client.
        if asks_for_introspection(&request.query) {
            let mut refusal = async_graphql::ServerError::new(
                "introspection is disabled here: sign in first (the SDL is in crates/api/schema.graphql)",
                None,
            );
            refusal
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", "INTROSPECTION_DISABLED");
            return async_graphql::Response::from_errors(vec![refusal]).into();
        }
        request = request.disable_introspection();
    }
    request = request.data(Authentication::request(credentials));
    state.schema.execute(request).await.into()
}

/// GraphiQL, built into the dashboard's assets (nothing from a CDN), only with `--graphiql`.
async fn graphiql(State(state): State<Arc<AppState>>) -> Response {
    match &state.graphiql {
        Some(page) => (
            [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
            page.clone(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "GraphiQL is off here; `cardstream api --graphiql` turns it on. POST GraphQL to /graphql.",
        )
            .into_response(),
    }
}

/// Whether the document selects `__schema` or `__type` anywhere (`__typename` is ordinary and
/// allowed). A document that does not parse is left to the executor, which names the error.
fn asks_for_introspection(query: &str) -> bool {
    use async_graphql::parser::types::{Selection, SelectionSet};
    fn walk(set: &SelectionSet) -> bool {
        set.items.iter().any(|item| match &item.node {
            Selection::Field(field) => {
                matches!(field.node.name.node.as_str(), "__schema" | "__type")
                    || walk(&field.node.selection_set.node)
            }
            Selection::InlineFragment(fragment) => walk(&fragment.node.selection_set.node),
            Selection::FragmentSpread(_) => false,
        })
    }
    // Most requests never name either field: skip the second parse for them.
    if !query.contains("__schema") && !query.contains("__type") {
        return false;
    }
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return false;
    };
    document
        .operations
        .iter()
        .any(|(_, op)| walk(&op.node.selection_set.node))
        || document
            .fragments
            .values()
            .any(|fragment| walk(&fragment.node.selection_set.node))
}

#[cfg(test)]
mod tests {
    use super::asks_for_introspection;

    #[test]
    fn typename_is_not_introspection() {
        assert!(asks_for_introspection("{ __schema { types { name } } }"));
        assert!(asks_for_introspection(
            "query { a: __type(name: \"Card\") { name } }"
        ));
        assert!(asks_for_introspection(
            "{ viewer { ...F } } fragment F on ViewerObject { user { __type: email } __schema { x } }"
        ));
        assert!(!asks_for_introspection(
            "mutation { login(email: \"__type\", password: \"x\") { __typename token } }"
        ));
        assert!(!asks_for_introspection(
            "{ cards { id __typename } } # __schema"
        ));
        assert!(!asks_for_introspection("{ broken"));
    }
}
