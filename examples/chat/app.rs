//! The chat room: `GET /` serves the page, `/ws` joins the room. Every text message a client
//! sends reaches every connected client, the sender included.

use std::sync::Arc;

use asgi::core::{Error, ReceiveEvent, Receiver, Scope, SendEvent, Sender, WebSocketMessage};
use asgi::server::response::Response;
use asgi::server::router::{Router, get, websocket};
use asgi::ws::WebSocket;
use asgi::ws::close::MESSAGE_TOO_BIG;
use tokio::sync::broadcast;

/// The page, served at `/`.
pub(crate) const PAGE: &str = include_str!("index.html");

/// How many messages the room keeps for clients that read slower than others write. A client
/// that falls further behind skips the oldest and is told how many it missed: one slow reader
/// never holds up the room, and the room's memory stays bounded.
pub(crate) const ROOM_BACKLOG: usize = 256;

/// The longest message the room passes on, in bytes; a longer one closes the sender's socket
/// with 1009 (message too big). Chat lines are short; this keeps one client from flooding
/// every other with megabytes.
pub(crate) const MAX_CHAT_MESSAGE: usize = 4096;

/// The chat app: a router with the page and the room.
pub(crate) fn chat() -> Router {
    let room = Arc::new(broadcast::channel::<Arc<str>>(ROOM_BACKLOG).0);
    Router::new().route("/", get(page)).route(
        "/ws",
        websocket(move |scope, receive, send| join(room.clone(), scope, receive, send)),
    )
}

async fn page(_: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
    Response::html(PAGE).send(&mut send).await
}

/// One client in the room: forwards what it says to the room, and what the room says to it.
async fn join(
    room: Arc<broadcast::Sender<Arc<str>>>,
    scope: Scope,
    receive: Receiver,
    send: Sender,
) -> Result<(), Error> {
    let Scope::WebSocket(scope) = scope else {
        return Ok(());
    };
    let mut ws = WebSocket::new(scope, receive, send);
    ws.accept().await?;
    let mut heard = room.subscribe();
    let (_, mut receive, mut send) = ws.into_parts();
    loop {
        tokio::select! {
            event = receive.recv() => match event {
                ReceiveEvent::WebSocketReceive(WebSocketMessage::Text(text)) => {
                    if text.len() > MAX_CHAT_MESSAGE {
                        send.send(SendEvent::WebSocketClose {
                            code: MESSAGE_TOO_BIG,
                            reason: "chat messages are at most 4096 bytes".into(),
                        })
                        .await?;
                        return Ok(());
                    }
                    // Nobody listening is fine: `send` fails only when the room is empty.
                    let _ = room.send(Arc::from(text));
                }
                ReceiveEvent::WebSocketReceive(WebSocketMessage::Binary(_)) => {}
                _ => return Ok(()), // websocket.disconnect: the client left
            },
            said = heard.recv() => match said {
                Ok(text) => send.send(SendEvent::text(text.as_ref())).await?,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    send.send(SendEvent::text(format!("({missed} messages missed)"))).await?;
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
        }
    }
}
