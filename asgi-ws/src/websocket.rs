//! [`WebSocket`]: the connection as app authors use it, built on [`Receiver`] and [`Sender`]
//! alone, so it works under any server and in-process tests.

use asgi_core::extensions::WEBSOCKET_HTTP_RESPONSE;
use asgi_core::{
    Error, ReceiveEvent, Receiver, SendEvent, Sender, WebSocketMessage, WebSocketScope,
};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};

/// One WebSocket message, as [`WebSocket::recv`] gives it to an app, and as the HTTP test
/// client's WebSocket session gives the app's messages to a test: one type for both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Bytes),
    /// The connection closed, with the close code and reason; every later receive returns it
    /// again. For an app: the client's `websocket.disconnect` (code 1005 when the client sent
    /// none, 1006 when the network dropped). For a test client: the app's `websocket.close`,
    /// or 1006 when the app returned without one.
    Close {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `websocket.connect` not read yet.
    Connecting,
    /// `websocket.connect` read, not answered yet.
    Connected,
    /// Accepted.
    Open,
    /// Closed, denied, or disconnected.
    Closed,
}

/// One WebSocket connection, for the app: accept it, then receive and send messages.
///
/// # Example
///
/// An echo app:
///
/// ```
/// use asgi_core::{Error, Receiver, Scope, Sender};
/// use asgi_ws::{Message, WebSocket};
///
/// async fn echo(scope: Scope, receive: Receiver, send: Sender) -> Result<(), Error> {
///     let Scope::WebSocket(scope) = scope else { return Ok(()) };
///     let mut ws = WebSocket::new(scope, receive, send);
///     ws.accept().await?;
///     loop {
///         match ws.recv().await? {
///             Message::Text(text) => ws.send_text(text).await?,
///             Message::Binary(bytes) => ws.send_binary(bytes).await?,
///             Message::Close { .. } => return Ok(()),
///             _ => {}
///         }
///     }
/// }
///
/// # use asgi_core::host::testing::TestSession;
/// # use asgi_core::{ReceiveEvent, SendEvent, WebSocketScope};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let mut session = TestSession::start(echo, Scope::from(WebSocketScope::new("/echo")));
/// session.send(ReceiveEvent::WebSocketConnect).await.unwrap();
/// assert_eq!(session.recv().await.map(|e| e.type_name()), Some("websocket.accept"));
/// session.send(ReceiveEvent::WebSocketReceive("hi".into())).await.unwrap();
/// assert_eq!(session.recv().await, Some(SendEvent::text("hi")));
/// session
///     .send(ReceiveEvent::WebSocketDisconnect { code: 1000, reason: String::new() })
///     .await
///     .unwrap();
/// assert!(session.finish().await.is_ok());
/// # });
/// ```
///
/// # Errors
///
/// The sending methods return an [`Error`] for which
/// [`is_disconnected`](Error::is_disconnected) is true once the client is gone (return it
/// with `?`: servers do not log it), and a protocol error for a call out of order (sending
/// before `accept`, accepting twice).
#[derive(Debug)]
pub struct WebSocket {
    scope: Box<WebSocketScope>,
    receive: Receiver,
    send: Sender,
    phase: Phase,
    close: Option<(u16, String)>,
}

impl WebSocket {
    /// Wraps the scope (boxed, as [`Scope::WebSocket`](asgi_core::Scope::WebSocket) holds it,
    /// or not) and handles of one WebSocket connection.
    pub fn new(scope: impl Into<Box<WebSocketScope>>, receive: Receiver, send: Sender) -> Self {
        WebSocket {
            scope: scope.into(),
            receive,
            send,
            phase: Phase::Connecting,
            close: None,
        }
    }

    /// The connection's scope: path, headers, offered subprotocols, state.
    pub fn scope(&self) -> &WebSocketScope {
        &self.scope
    }

    /// Accepts the WebSocket with no subprotocol and no extra headers.
    ///
    /// # Errors
    ///
    /// Disconnected if the client left before the answer; a protocol error if the
    /// connection was already answered.
    pub async fn accept(&mut self) -> Result<(), Error> {
        self.accept_with_headers(None, HeaderMap::new()).await
    }

    /// Accepts the WebSocket with `subprotocol`, which must be one of the scope's
    /// `subprotocols` (the client's offer).
    ///
    /// # Errors
    ///
    /// As [`accept`](WebSocket::accept), and a protocol error for a subprotocol the client
    /// did not offer (the server then fails the handshake with 500).
    pub async fn accept_subprotocol(
        &mut self,
        subprotocol: impl Into<String>,
    ) -> Result<(), Error> {
        self.accept_with_headers(Some(subprotocol.into()), HeaderMap::new())
            .await
    }

    /// Accepts the WebSocket with an optional subprotocol and extra headers for the 101
    /// response (e.g. `set-cookie`).
    ///
    /// # Errors
    ///
    /// As [`accept_subprotocol`](WebSocket::accept_subprotocol).
    pub async fn accept_with_headers(
        &mut self,
        subprotocol: Option<String>,
        headers: HeaderMap,
    ) -> Result<(), Error> {
        self.wait_connect().await?;
        self.send
            .send(SendEvent::WebSocketAccept {
                subprotocol,
                headers,
            })
            .await?;
        self.phase = Phase::Open;
        Ok(())
    }

    /// The next message, or [`Message::Close`] once the connection closed.
    ///
    /// # Errors
    ///
    /// Called before [`accept`](WebSocket::accept); an event that is not part of an open
    /// WebSocket.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future loses no message.
    pub async fn recv(&mut self) -> Result<Message, Error> {
        if let Some((code, reason)) = &self.close {
            return Ok(Message::Close {
                code: *code,
                reason: reason.clone(),
            });
        }
        if matches!(self.phase, Phase::Connecting | Phase::Connected) {
            return Err(Error::msg("WebSocket::recv called before accept"));
        }
        match self.receive.recv().await {
            ReceiveEvent::WebSocketReceive(WebSocketMessage::Text(text)) => Ok(Message::Text(text)),
            ReceiveEvent::WebSocketReceive(WebSocketMessage::Binary(bytes)) => {
                Ok(Message::Binary(bytes))
            }
            ReceiveEvent::WebSocketDisconnect { code, reason } => {
                self.phase = Phase::Closed;
                self.close = Some((code, reason.clone()));
                Ok(Message::Close { code, reason })
            }
            other => Err(Error::msg(format!(
                "unexpected `{}` on an open WebSocket",
                other.type_name()
            ))),
        }
    }

    /// Sends a text message.
    ///
    /// # Errors
    ///
    /// Disconnected once the client left; a protocol error before accept or after close.
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), Error> {
        Ok(self.send.send(SendEvent::text(text)).await?)
    }

    /// Sends a binary message.
    ///
    /// # Errors
    ///
    /// As [`send_text`](WebSocket::send_text).
    pub async fn send_binary(&mut self, bytes: impl Into<Bytes>) -> Result<(), Error> {
        Ok(self.send.send(SendEvent::binary(bytes)).await?)
    }

    /// Closes the WebSocket with `code` and `reason`; before accept, this rejects the
    /// handshake (the client gets HTTP 403).
    ///
    /// # Errors
    ///
    /// Disconnected once the client left; a protocol error for a code that may not be sent
    /// (see [`close::is_valid_code`](crate::close::is_valid_code)), a reason over 123 bytes,
    /// or a second close.
    pub async fn close(&mut self, code: u16, reason: impl Into<String>) -> Result<(), Error> {
        if self.phase == Phase::Connecting {
            self.wait_connect().await?;
        }
        self.send
            .send(SendEvent::WebSocketClose {
                code,
                reason: reason.into(),
            })
            .await?;
        self.phase = Phase::Closed;
        Ok(())
    }

    /// Rejects the handshake with an HTTP response (the ASGI WebSocket denial response
    /// extension): `status`, `headers` and `body`, verbatim.
    ///
    /// # Errors
    ///
    /// When the server does not declare the `websocket.http.response` extension in the
    /// scope; disconnected if the client left; a protocol error after accept.
    pub async fn deny(
        &mut self,
        status: StatusCode,
        headers: HeaderMap,
        body: impl Into<Bytes>,
    ) -> Result<(), Error> {
        if !self.scope.extensions.supports(WEBSOCKET_HTTP_RESPONSE) {
            return Err(Error::msg(
                "the server does not support denial responses (`websocket.http.response`)",
            ));
        }
        self.wait_connect().await?;
        self.send
            .send(SendEvent::WebSocketHttpResponseStart { status, headers })
            .await?;
        self.send
            .send(SendEvent::WebSocketHttpResponseBody {
                body: body.into(),
                more_body: false,
            })
            .await?;
        self.phase = Phase::Closed;
        Ok(())
    }

    /// The scope, boxed as [`Scope::WebSocket`](asgi_core::Scope::WebSocket) holds it, and
    /// the raw handles, to go on with events directly.
    pub fn into_parts(self) -> (Box<WebSocketScope>, Receiver, Sender) {
        (self.scope, self.receive, self.send)
    }

    /// Reads `websocket.connect`, once.
    async fn wait_connect(&mut self) -> Result<(), Error> {
        if self.phase != Phase::Connecting {
            return Ok(());
        }
        match self.receive.recv().await {
            ReceiveEvent::WebSocketConnect => {
                self.phase = Phase::Connected;
                Ok(())
            }
            ReceiveEvent::WebSocketDisconnect { code, reason } => {
                self.phase = Phase::Closed;
                self.close = Some((code, reason));
                Err(Error::disconnected())
            }
            other => Err(Error::msg(format!(
                "expected `websocket.connect`, got `{}`",
                other.type_name()
            ))),
        }
    }
}
