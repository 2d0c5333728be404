//! Subscriptions over websockets (graphql-transport-ws, and the older
//! subscriptions-transport-ws), with the socket following its session.
//!
//! async-graphql runs the protocol; this loop sits between it and the socket to hold the
//! socket to the rules a long-lived connection needs:
//! - `connection_init` must come within 5 s (else close 4408), and carry a token whose session
//!   is open (else close 4403);
//! - the socket closes with 4401 when its token expires and 4403 when its session ends (a
//!   logout, a new password, the user disabled, deleted, re-roled or re-linked), noticed
//!   through the session change notifications and a periodic re-check;
//! - every query and mutation sent over it is authorized as of now, not as of
//!   `connection_init` (the connection carries credentials, not a viewer);
//! - at most 20 subscriptions at once and messages of at most 64 KiB.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::Data;
use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocket, WebSocketProtocols, WsMessage};
use axum::extract::ws::{CloseFrame, Message, WebSocket as Socket};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};

use crate::auth::{Credentials, SessionChange, now_seconds};
use crate::graphql::{Authentication, loader};
use crate::http::{AppState, credentials};

/// Largest message (and frame) accepted from a client.
const MAX_MESSAGE: usize = 64 * 1024;
/// Most subscriptions one socket runs at once.
const MAX_SUBSCRIPTIONS: usize = 20;
/// How long a client has to send `connection_init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an open socket re-checks its session even without a notification.
const RECHECK: Duration = Duration::from_secs(5);
/// Messages received but not yet taken by the protocol; a client that outruns it is closed.
const IN_FLIGHT: usize = 64;

/// How long a closing socket waits for the client's close.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// graphql-transport-ws close codes.
const UNAUTHORIZED: u16 = 4401;
const FORBIDDEN: u16 = 4403;
const INIT_TIMED_OUT: u16 = 4408;
const POLICY_VIOLATION: u16 = 1008;
const MESSAGE_TOO_BIG: u16 = 1009;

pub(crate) async fn websocket(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let protocol = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|p| WebSocketProtocols::from_str(p.trim()).ok())
        });
    let Some(protocol) = protocol else {
        return (
            StatusCode::BAD_REQUEST,
            "ask for the graphql-transport-ws subprotocol (Sec-WebSocket-Protocol)",
        )
            .into_response();
    };
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| serve(state, socket, protocol))
}

/// The fields of a protocol message this loop looks at.
#[derive(Deserialize)]
struct Head {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
}

fn head(bytes: &[u8]) -> Option<Head> {
    serde_json::from_slice(bytes).ok()
}

fn token_of(payload: &serde_json::Value) -> Option<&str> {
    payload["authorization"]
        .as_str()
        .and_then(|a| a.strip_prefix("Bearer "))
        .or_else(|| payload["token"].as_str())
        .map(str::trim)
}

/// Why the loop ended: a close frame to send, or nothing (the client went away).
type Closing = Option<(u16, String)>;

async fn serve(state: Arc<AppState>, socket: Socket, protocol: WebSocketProtocols) {
    let (mut sink, mut source) = socket.split();
    let (to_protocol, from_client) = mpsc::channel::<Vec<u8>>(IN_FLIGHT);
    let signed_in: Arc<Mutex<Option<Credentials>>> = Arc::default();

    let init_state = state.clone();
    let slot = signed_in.clone();
    let graphql = WebSocket::new(state.schema.clone(), tokio_stream(from_client), protocol)
        .on_connection_init(move |payload| async move {
            // The legacy protocol sends this as `connection_error`'s payload (the loop below
            // adds its `extensions.code`); graphql-transport-ws has no message for it and closes
            // with 4403, the reason starting with the same code.
            let refused = || {
                async_graphql::Error::new("UNAUTHENTICATED: send a valid token in connection_init")
            };
            let credentials = credentials(&init_state, token_of(&payload)).ok_or_else(refused)?;
            match init_state.sessions.viewer(&credentials).await {
                Ok(Some(_)) => {}
                _ => return Err(refused()),
            }
            if let Ok(mut slot) = slot.lock() {
                *slot = Some(credentials.clone());
            }
            let mut data = Data::default();
            data.insert(Authentication::connection(credentials));
            data.insert(loader(init_state.store.clone(), init_state.batch_window));
            Ok(data)
        });
    futures_util::pin_mut!(graphql);

    let mut changes = state.sessions.subscribe();
    let mut recheck = tokio::time::interval(RECHECK);
    let init_deadline = tokio::time::sleep(INIT_TIMEOUT);
    futures_util::pin_mut!(init_deadline);
    let mut acknowledged = false;
    let mut active: HashSet<String> = HashSet::new();

    let closing: Closing = loop {
        let credentials = signed_in.lock().ok().and_then(|c| c.clone());
        let expiry = credentials.as_ref().map(|c| {
            let left = u64::try_from(c.expires_at - now_seconds()).unwrap_or(0);
            tokio::time::sleep(Duration::from_secs(left))
        });
        tokio::select! {
            incoming = source.next() => {
                let bytes = match incoming {
                    Some(Ok(Message::Text(text))) => text.as_bytes().to_vec(),
                    Some(Ok(Message::Binary(bytes))) => bytes.to_vec(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | None => break None,
                    // A message over the size limit (tungstenite refuses it), a broken frame,
                    // or a connection already gone (then the close just fails to send).
                    Some(Err(_)) => break Some((MESSAGE_TOO_BIG, "a message over 64 KiB, or a broken frame".into())),
                };
                if let Some(Head { kind, id: Some(id) }) = head(&bytes) {
                    match kind.as_str() {
                        "subscribe" | "start" if !active.contains(&id) => {
                            if active.len() >= MAX_SUBSCRIPTIONS {
                                let refusal = too_many(&id);
                                if sink.send(Message::Text(refusal.into())).await.is_err() {
                                    break None;
                                }
                                continue;
                            }
                            active.insert(id);
                        }
                        "complete" | "stop" => {
                            active.remove(&id);
                        }
                        _ => {}
                    }
                }
                if to_protocol.try_send(bytes).is_err() {
                    break Some((POLICY_VIOLATION, "too many messages in flight".into()));
                }
            }
            outgoing = graphql.next() => match outgoing {
                Some(WsMessage::Text(mut text)) => {
                    if let Some(Head { kind, id }) = head(text.as_bytes()) {
                        match (kind.as_str(), id) {
                            ("connection_ack", _) => acknowledged = true,
                            ("connection_error", _) => text = with_code(&text, "UNAUTHENTICATED"),
                            ("complete" | "error", Some(id)) => {
                                active.remove(&id);
                            }
                            _ => {}
                        }
                    }
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break None;
                    }
                }
                // Before the ack, a close is a refused connection_init.
                Some(WsMessage::Close(_, reason)) if !acknowledged => break Some((FORBIDDEN, reason)),
                Some(WsMessage::Close(code, reason)) => break Some((code, reason)),
                None => break None,
            },
            () = &mut init_deadline, if !acknowledged => {
                break Some((INIT_TIMED_OUT, "connection_init did not arrive within 5 s".into()));
            }
            () = async { if let Some(expiry) = expiry { expiry.await } }, if credentials.is_some() => {
                break Some((UNAUTHORIZED, "the token expired; sign in again".into()));
            }
            change = changes.recv() => {
                let relevant = match (change, &credentials) {
                    (_, None) => false,
                    (Ok(SessionChange::User(user)), Some(c)) => user == c.user_id,
                    (Ok(SessionChange::All) | Err(broadcast::error::RecvError::Lagged(_)), _) => true,
                    (Err(broadcast::error::RecvError::Closed), _) => false,
                };
                if relevant && let Some(reason) = ended(&state, credentials.as_ref()).await {
                    break Some(reason);
                }
            }
            _ = recheck.tick() => {
                if let Some(reason) = ended(&state, credentials.as_ref()).await {
                    break Some(reason);
                }
            }
        }
    };
    if let Some((code, reason)) = closing {
        let frame = CloseFrame {
            code,
            reason: truncate(&reason).into(),
        };
        if sink.send(Message::Close(Some(frame))).await.is_ok() {
            // The closing handshake: read (and drop) what the client still sends until its own
            // close. Dropping the connection with unread data would reset it, and the client
            // could lose our close frame, and with it the reason.
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                while let Some(Ok(message)) = source.next().await {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
    }
}

/// Whether the socket's session has ended (or its user lost access): the close to send.
async fn ended(state: &AppState, credentials: Option<&Credentials>) -> Closing {
    let credentials = credentials?;
    if credentials.expired() {
        return Some((UNAUTHORIZED, "the token expired; sign in again".into()));
    }
    match state.sessions.viewer(credentials).await {
        Ok(Some(_)) => None,
        Ok(None) => Some((FORBIDDEN, "the session ended; sign in again".into())),
        // Postgres did not answer: keep the socket; the next check asks again.
        Err(_) => None,
    }
}

fn too_many(id: &str) -> String {
    serde_json::json!({
        "id": id,
        "type": "error",
        "payload": [{
            "message": format!("at most {MAX_SUBSCRIPTIONS} subscriptions per connection"),
            "extensions": {"code": "TOO_MANY_SUBSCRIPTIONS"},
        }],
    })
    .to_string()
}

/// A close reason fits in 123 bytes.
fn truncate(reason: &str) -> String {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

fn tokio_stream(
    mut receiver: mpsc::Receiver<Vec<u8>>,
) -> impl futures_util::Stream<Item = Vec<u8>> + Send + Unpin + 'static {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// A `connection_error` with `extensions.code` in its payload, as every other error has:
/// async-graphql sends the message alone.
fn with_code(text: &str, code: &str) -> String {
    let Ok(mut message) = serde_json::from_str::<serde_json::Value>(text) else {
        return text.to_owned();
    };
    if let Some(payload) = message.get_mut("payload").and_then(|p| p.as_object_mut()) {
        payload.insert("extensions".into(), serde_json::json!({ "code": code }));
    }
    message.to_string()
}
