//! WebSocket sessions of the test client: connect, exchange messages, close; or a denial.

use std::fmt;

use asgi_core::bytes::{Bytes, BytesMut};
use asgi_core::event::CLOSE_ABNORMAL;
use asgi_core::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use asgi_core::{
    Error, Extensions, ReceiveEvent, Scope, SendEvent, ServerAddr, WebSocketMessage, WebSocketScope,
};

use asgi_ws::Message;

use super::exchange::TestExchange;
use super::{
    CLIENT_ADDR, SERVER_ADDR, SUPPORTED_EXTENSIONS, TestClient, TestResponse, add_default_headers,
    split_test_target, unexpected,
};

/// The `sec-websocket-key` of every handshake: the sample nonce of RFC 6455 section 1.3.
/// No server checks it in-process; apps that read it get a well-formed value.
const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A WebSocket handshake to make, from [`TestClient::websocket`]; finish it with
/// [`connect`](WebSocketRequest::connect).
///
/// # Example
///
/// ```
/// use asgi_core::{Error, ReceiveEvent, Receiver, Scope, SendEvent, Sender};
/// use asgi_http::test_client::TestClient;
/// use asgi_ws::Message;
///
/// async fn echo(scope: Scope, mut receive: Receiver, mut send: Sender) -> Result<(), Error> {
///     let Scope::WebSocket(ws) = scope else { return Ok(()) };
///     receive.recv().await; // websocket.connect
///     let subprotocol = ws.subprotocols.first().cloned();
///     send.send(SendEvent::WebSocketAccept { subprotocol, headers: Default::default() }).await?;
///     while let ReceiveEvent::WebSocketReceive(message) = receive.recv().await {
///         send.send(SendEvent::WebSocketSend(message)).await?;
///     }
///     Ok(())
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let client = TestClient::new(echo);
/// let mut ws = client.websocket("/ws").subprotocols(["chat"]).connect().await?;
/// assert_eq!(ws.subprotocol(), Some("chat"));
/// ws.send_text("hi").await?;
/// assert_eq!(ws.receive().await?, Message::Text("hi".into()));
/// ws.close(1000).await?;
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// ```
pub struct WebSocketRequest<'c> {
    client: &'c TestClient,
    target: String,
    headers: HeaderMap,
    subprotocols: Vec<String>,
    error: Option<Error>,
}

impl fmt::Debug for WebSocketRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketRequest")
            .field("target", &self.target)
            .field("headers", &self.headers)
            .field("subprotocols", &self.subprotocols)
            .finish_non_exhaustive()
    }
}

impl<'c> WebSocketRequest<'c> {
    pub(super) fn new(client: &'c TestClient, target: &str) -> Self {
        WebSocketRequest {
            client,
            target: target.to_owned(),
            headers: HeaderMap::new(),
            subprotocols: Vec::new(),
            error: None,
        }
    }

    /// The subprotocols to offer, in order of preference: the scope's `subprotocols` and
    /// the `sec-websocket-protocol` header.
    pub fn subprotocols<I, S>(mut self, subprotocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.subprotocols = subprotocols.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a header to the handshake request. An invalid name or value makes
    /// [`connect`](WebSocketRequest::connect) fail with an error that says so.
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: Into<asgi_core::http::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<asgi_core::http::Error>,
    {
        match (name.try_into(), value.try_into()) {
            (Ok(name), Ok(value)) => {
                self.headers.append(name, value);
            }
            (Err(e), _) => {
                self.error.get_or_insert(Error::new(e.into()));
            }
            (_, Err(e)) => {
                self.error.get_or_insert(Error::new(e.into()));
            }
        }
        self
    }

    /// Calls the app with a WebSocket scope, sends `websocket.connect` and waits for the
    /// answer.
    ///
    /// # Errors
    ///
    /// [`ConnectError::Denied`] with the response a client would get when the app
    /// refuses: `403` with an empty body for a `websocket.close` before accepting, or the
    /// status, headers and body of a `websocket.http.response` denial.
    /// [`ConnectError::App`] when the app fails, panics, makes a protocol mistake, returns
    /// without answering, or does not answer in time.
    pub async fn connect(self) -> Result<WebSocketSession, ConnectError> {
        let WebSocketRequest {
            client,
            target,
            mut headers,
            subprotocols,
            error,
        } = self;
        if let Some(error) = error {
            return Err(ConnectError::App(error));
        }
        let target = split_test_target(&target);
        let mut scope = WebSocketScope::new(target.path);
        scope.raw_path = target.raw_path;
        scope.query_string = target.query_string;
        add_handshake_headers(&mut headers, &subprotocols);
        add_default_headers(&mut headers);
        scope.headers = headers;
        scope.client = Some(CLIENT_ADDR);
        scope.server = Some(ServerAddr::Tcp(SERVER_ADDR));
        scope.subprotocols = subprotocols;
        scope.extensions = Extensions::from_static(&SUPPORTED_EXTENSIONS);
        scope.state = client.state.clone();
        let mut exchange =
            TestExchange::start(client.app.clone(), Scope::from(scope), None, client.timeout);
        // An app that returned at once makes this fail; its result is read below.
        let _ = exchange.send(ReceiveEvent::WebSocketConnect).await;
        match exchange.next().await.map_err(ConnectError::App)? {
            Some(SendEvent::WebSocketAccept {
                subprotocol,
                headers,
            }) => Ok(WebSocketSession {
                exchange,
                subprotocol,
                headers,
                closed: None,
            }),
            Some(SendEvent::WebSocketClose { .. }) => {
                let mut headers = HeaderMap::new();
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
                let denial = TestResponse {
                    status: StatusCode::FORBIDDEN,
                    headers,
                    body: Bytes::new(),
                    trailers: HeaderMap::new(),
                };
                finish_denied(client, exchange, denial).await
            }
            Some(SendEvent::WebSocketHttpResponseStart { status, headers }) => {
                let body = read_denial_body(client, &mut exchange).await?;
                let denial = TestResponse {
                    status,
                    headers,
                    body,
                    trailers: HeaderMap::new(),
                };
                finish_denied(client, exchange, denial).await
            }
            Some(other) => Err(ConnectError::App(unexpected(&other))),
            None => Err(ConnectError::App(match exchange.finish().await {
                Err(e) => e,
                Ok(()) => Error::msg("the app returned without answering `websocket.connect`"),
            })),
        }
    }
}

fn add_handshake_headers(headers: &mut HeaderMap, subprotocols: &[String]) {
    let defaults = [
        (header::CONNECTION, "upgrade"),
        (header::UPGRADE, "websocket"),
        (header::SEC_WEBSOCKET_KEY, SAMPLE_KEY),
        (header::SEC_WEBSOCKET_VERSION, "13"),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    if !subprotocols.is_empty() && !headers.contains_key(header::SEC_WEBSOCKET_PROTOCOL) {
        if let Ok(value) = HeaderValue::from_str(&subprotocols.join(", ")) {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
        }
    }
}

async fn read_denial_body(
    client: &TestClient,
    exchange: &mut TestExchange,
) -> Result<Bytes, ConnectError> {
    let mut body = BytesMut::new();
    loop {
        match exchange.next().await.map_err(ConnectError::App)? {
            Some(SendEvent::WebSocketHttpResponseBody {
                body: chunk,
                more_body,
            }) => {
                client
                    .check_body_size(body.len(), chunk.len() as u64)
                    .map_err(ConnectError::App)?;
                body.extend_from_slice(&chunk);
                if !more_body {
                    return Ok(body.freeze());
                }
            }
            Some(other) => return Err(ConnectError::App(unexpected(&other))),
            None => {
                exchange.finish().await.map_err(ConnectError::App)?;
                return Err(ConnectError::App(Error::msg(
                    "the app returned before completing its denial response",
                )));
            }
        }
    }
}

async fn finish_denied(
    client: &TestClient,
    mut exchange: TestExchange,
    denial: TestResponse,
) -> Result<WebSocketSession, ConnectError> {
    match exchange.finish().await {
        Err(e) if client.raise_app_errors || e.is_protocol() => Err(ConnectError::App(e)),
        _ => Err(ConnectError::Denied(Box::new(denial))),
    }
}

/// Why [`WebSocketRequest::connect`] gave no session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The app refused the WebSocket; this is the HTTP response the client got.
    #[error("the app denied the WebSocket with status {}", .0.status())]
    Denied(Box<TestResponse>),
    /// The app failed, broke the protocol, or did not answer.
    #[error(transparent)]
    App(Error),
}

impl ConnectError {
    /// The denial response, if the app refused the WebSocket.
    pub fn denial(&self) -> Option<&TestResponse> {
        match self {
            ConnectError::Denied(response) => Some(response),
            ConnectError::App(_) => None,
        }
    }

    /// The denial response, if the app refused the WebSocket.
    pub fn into_denial(self) -> Option<TestResponse> {
        match self {
            ConnectError::Denied(response) => Some(*response),
            ConnectError::App(_) => None,
        }
    }
}

impl From<ConnectError> for Error {
    fn from(error: ConnectError) -> Self {
        match error {
            ConnectError::App(e) => e,
            denied => Error::msg(denied),
        }
    }
}

/// An accepted WebSocket, driven from the client's side; from
/// [`WebSocketRequest::connect`]. See [`WebSocketRequest`] for an example.
///
/// Dropping the session leaves like a client whose connection dropped: the app's `recv`
/// returns `websocket.disconnect` with code 1006.
pub struct WebSocketSession {
    exchange: TestExchange,
    subprotocol: Option<String>,
    headers: HeaderMap,
    // Set once the WebSocket closed; `receive` then keeps returning it.
    closed: Option<(u16, String)>,
}

impl fmt::Debug for WebSocketSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketSession")
            .field("subprotocol", &self.subprotocol)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl WebSocketSession {
    /// The subprotocol the app accepted, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// The headers the app added to its `websocket.accept`.
    pub fn accept_headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Sends a text message (`websocket.receive` with `text`), waiting while the app's
    /// queue is full.
    ///
    /// # Errors
    ///
    /// An error for which `is_disconnected()` is true once the app returned, or a timeout.
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), Error> {
        self.send(WebSocketMessage::Text(text.into())).await
    }

    /// Sends a binary message (`websocket.receive` with `bytes`).
    ///
    /// # Errors
    ///
    /// As [`send_text`](WebSocketSession::send_text).
    pub async fn send_binary(&mut self, bytes: impl Into<Bytes>) -> Result<(), Error> {
        self.send(WebSocketMessage::Binary(bytes.into())).await
    }

    async fn send(&mut self, message: WebSocketMessage) -> Result<(), Error> {
        self.exchange
            .send(ReceiveEvent::WebSocketReceive(message))
            .await
    }

    /// The app's next message, or [`Message::Close`] once the WebSocket closed (on this and
    /// every later call).
    ///
    /// # Errors
    ///
    /// The app's error or panic, a protocol mistake, or a timeout.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future while it waits for the app loses no message.
    pub async fn receive(&mut self) -> Result<Message, Error> {
        if let Some((code, reason)) = &self.closed {
            return Ok(Message::Close {
                code: *code,
                reason: reason.clone(),
            });
        }
        match self.exchange.next().await? {
            Some(SendEvent::WebSocketSend(WebSocketMessage::Text(text))) => Ok(Message::Text(text)),
            Some(SendEvent::WebSocketSend(WebSocketMessage::Binary(bytes))) => {
                Ok(Message::Binary(bytes))
            }
            Some(SendEvent::WebSocketClose { code, reason }) => {
                self.closed = Some((code, reason.clone()));
                Ok(Message::Close { code, reason })
            }
            Some(other) => Err(unexpected(&other)),
            None => {
                self.exchange.finish().await?;
                self.closed = Some((CLOSE_ABNORMAL, String::new()));
                Ok(Message::Close {
                    code: CLOSE_ABNORMAL,
                    reason: String::new(),
                })
            }
        }
    }

    /// The app's next message, which must be text.
    ///
    /// # Errors
    ///
    /// As [`receive`](WebSocketSession::receive), and when the message is binary or a close.
    pub async fn receive_text(&mut self) -> Result<String, Error> {
        match self.receive().await? {
            Message::Text(text) => Ok(text),
            other => Err(Error::msg(format!(
                "expected a text message, got {other:?}"
            ))),
        }
    }

    /// Closes from the client's side: the app receives `websocket.disconnect` with `code`.
    /// Waits for the app to return and gives what it returned.
    ///
    /// # Errors
    ///
    /// The app's error or panic, a protocol mistake, or a timeout.
    pub async fn close(mut self, code: u16) -> Result<(), Error> {
        // An app that already returned cannot be told; its result is what matters.
        let _ = self
            .exchange
            .send(ReceiveEvent::WebSocketDisconnect {
                code,
                reason: String::new(),
            })
            .await;
        self.exchange.finish().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_headers_offer_the_subprotocols_in_order() {
        let mut headers = HeaderMap::new();
        add_handshake_headers(&mut headers, &["chat".to_owned(), "json".to_owned()]);
        assert_eq!(headers[header::SEC_WEBSOCKET_PROTOCOL], "chat, json");
        assert_eq!(headers[header::UPGRADE], "websocket");
        assert_eq!(headers[header::SEC_WEBSOCKET_VERSION], "13");
        assert_eq!(headers[header::SEC_WEBSOCKET_KEY], SAMPLE_KEY);
    }

    #[test]
    fn handshake_headers_keep_the_request_s_own() {
        let mut headers = HeaderMap::new();
        headers.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        add_handshake_headers(&mut headers, &[]);
        assert_eq!(headers[header::SEC_WEBSOCKET_VERSION], "8");
        assert!(!headers.contains_key(header::SEC_WEBSOCKET_PROTOCOL));
    }
}
