//! The chat rooms: `GET /` serves the page, `/ws/{room}` joins a room (`/ws` is the room
//! `lobby`). Every text message a client sends reaches every client in the room, the sender
//! included, in every process that shares the channel layer.

use std::sync::Arc;

use asgi::channels::{ChannelLayer, GroupMember, validate_group_name};
use asgi::core::ShutdownSignal;
use asgi::core::{Error, Receiver, Scope, Sender};
use asgi::server::response::Response;
use asgi::server::router::{PathParams, Router, get, websocket};
use asgi::ws::close::{GOING_AWAY, INTERNAL_ERROR, MESSAGE_TOO_BIG, POLICY_VIOLATION};
use asgi::ws::{Message, WebSocket};
use serde_json::json;

/// The page, served at `/`.
pub(crate) const PAGE: &str = include_str!("index.html");

/// The longest message the room passes on, in bytes; a longer one closes the sender's socket
/// with 1009 (message too big). Chat lines are short; this keeps one client from flooding
/// every other with megabytes.
pub(crate) const MAX_CHAT_MESSAGE: usize = 4096;

/// The room a client joins at `/ws`.
pub(crate) const DEFAULT_ROOM: &str = "lobby";

/// The chat app over `layer`: an in-memory layer serves one process; a Redis layer shares the
/// rooms between every process that uses the same Redis.
pub(crate) fn chat(layer: Arc<dyn ChannelLayer>) -> Router {
    let default_room = layer.clone();
    Router::new()
        .route("/", get(page))
        .route(
            "/ws",
            websocket(move |scope, receive, send| {
                join(
                    default_room.clone(),
                    DEFAULT_ROOM.to_owned(),
                    scope,
                    receive,
                    send,
                )
            }),
        )
        .route(
            "/ws/{room}",
            websocket(move |scope: Scope, receive, send| {
                let layer = layer.clone();
                async move {
                    let room = scope
                        .extensions()
                        .and_then(|ext| ext.get::<PathParams>())
                        .and_then(|params| params.get("room"))
                        .unwrap_or_default()
                        .to_owned();
                    join(layer, room, scope, receive, send).await
                }
            }),
        )
}

async fn page(_: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
    Response::html(PAGE).send(&mut send).await
}

/// One client in a room: forwards what it says to the room, and what the room says to it.
async fn join(
    layer: Arc<dyn ChannelLayer>,
    room: String,
    scope: Scope,
    receive: Receiver,
    send: Sender,
) -> Result<(), Error> {
    let Scope::WebSocket(scope) = scope else {
        return Ok(());
    };
    let shutdown = scope.shutdown.clone();
    let mut ws = WebSocket::new(scope, receive, send);
    let group = format!("room.{room}");
    if validate_group_name(&group).is_err() {
        // Not a room name: refuse the handshake (403).
        return ws
            .close(
                POLICY_VIOLATION,
                "room names are letters, digits, '-', '_' and '.'",
            )
            .await;
    }
    // Join the room's group before accepting: the client may speak as soon as it sees the
    // handshake succeed, and a message sent in a window between `accept` and joining would
    // never reach this client.
    let member = match GroupMember::join(layer.clone(), [group.as_str()]).await {
        Ok(member) => member,
        Err(error) => {
            tracing::warn!(%error, "the channel layer is unavailable; refusing the socket");
            return ws.close(INTERNAL_ERROR, "the room is unavailable").await;
        }
    };
    ws.accept().await?;
    let result = converse(&layer, &group, &member, &shutdown, &mut ws).await;
    member.leave().await;
    result
}

async fn converse(
    layer: &Arc<dyn ChannelLayer>,
    group: &str,
    member: &GroupMember<dyn ChannelLayer>,
    shutdown: &ShutdownSignal,
    ws: &mut WebSocket,
) -> Result<(), Error> {
    loop {
        tokio::select! {
            // The server is draining: say goodbye rather than hold the drain up.
            () = shutdown.wait() => return ws.close(GOING_AWAY, "server shutting down").await,
            message = ws.recv() => match message? {
                Message::Text(text) => {
                    if text.len() > MAX_CHAT_MESSAGE {
                        return ws
                            .close(MESSAGE_TOO_BIG, "chat messages are at most 4096 bytes")
                            .await;
                    }
                    let said = json!({"type": "chat.message", "text": text.as_str()});
                    if let Err(error) = layer.group_send(group, said).await {
                        // The layer is down (Redis restarting): say so, keep the socket.
                        tracing::warn!(%error, "chat message not delivered");
                        ws.send_text("(not delivered: the room is unavailable, try again)").await?;
                    }
                }
                Message::Binary(_) => {}
                _ => return Ok(()), // closed: the client left
            },
            heard = member.receive() => {
                let heard = heard.map_err(Error::new)?;
                if let Some(text) = heard["text"].as_str() {
                    ws.send_text(text).await?;
                }
            }
        }
    }
}
