//! The HTTP side: `POST /graphql`, `GET /graphql` (GraphiQL), `GET /graphql/ws`
//! (graphql-transport-ws).

use std::net::SocketAddr;
use std::sync::Arc;

use async_graphql::Data;
use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource};
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::Router;
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use cardstream_store::Store;
use tower_http::limit::RequestBodyLimitLayer;

use crate::auth::{Tokens, TrustedProxies, Viewer};
use crate::config::Introspection;
use crate::graphql::{ApiSchema, ClientAddress, loader};

/// What the HTTP handlers share.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) schema: ApiSchema,
    pub(crate) store: Store,
    pub(crate) tokens: Tokens,
    pub(crate) introspection: Introspection,
    pub(crate) proxies: TrustedProxies,
}

/// GraphQL requests are small; anything bigger is refused before parsing.
const GRAPHQL_BODY_LIMIT: usize = 64 * 1024;

pub(crate) fn routes(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .route("/graphql/ws", get(websocket))
        // The GraphQL extractor reads the body itself and ignores axum's DefaultBodyLimit, so
        // the limit is enforced around it: 413 before a byte is parsed.
        .layer(RequestBodyLimitLayer::new(GRAPHQL_BODY_LIMIT))
        .with_state(state)
}

/// The viewer behind a bearer token, from the database (so role and links are current).
pub(crate) async fn viewer_for(state: &AppState, token: Option<&str>) -> Option<Viewer> {
    let user_id = state.tokens.verify(token?)?;
    let user = state.store.user(user_id).await.ok()??;
    let cardholders = state
        .store
        .cardholders_of(&[user.id])
        .await
        .ok()?
        .into_iter()
        .map(|(_, h)| h)
        .collect();
    Some(Viewer { user, cardholders })
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
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
        .data(loader(state.store.clone()))
        .data(ClientAddress(Some(
            state.proxies.client_address(peer.ip(), &headers),
        )));
    let viewer = viewer_for(&state, bearer(&headers)).await;
    let introspect = match state.introspection {
        Introspection::Always => true,
        Introspection::Authenticated => viewer.is_some(),
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
    if let Some(viewer) = viewer {
        request = request.data(viewer);
    }
    state.schema.execute(request).await.into()
}

async fn graphiql() -> impl IntoResponse {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .finish(),
    )
}

/// Subscriptions over graphql-transport-ws. The token comes in `connection_init`'s payload as
/// `{"authorization": "Bearer <token>"}` (or `{"token": "<token>"}`); without a valid one the
/// connection is refused.
async fn websocket(
    State(state): State<Arc<AppState>>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            let schema = state.schema.clone();
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let token = payload["authorization"]
                        .as_str()
                        .and_then(|a| a.strip_prefix("Bearer "))
                        .or_else(|| payload["token"].as_str())
                        .map(str::trim);
                    let viewer = viewer_for(&state, token).await.ok_or_else(|| {
                        async_graphql::Error::new(
                            "UNAUTHENTICATED: send a valid token in connection_init",
                        )
                    })?;
                    let mut data = Data::default();
                    data.insert(viewer);
                    data.insert(loader(state.store.clone()));
                    Ok(data)
                })
                .serve()
        })
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
