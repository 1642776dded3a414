//! The events that flow through `receive` and `send`, one variant per ASGI message type.

use std::path::PathBuf;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

use crate::scope::Scope;
use crate::wire;

/// The close code a server reports when a WebSocket closed without a close frame (RFC 6455
/// 7.1.5: "abnormal closure").
pub const CLOSE_ABNORMAL: u16 = 1006;
/// The close code a server reports when the close frame carried no code (RFC 6455 7.1.5); the
/// spec default of `websocket.disconnect`'s `code`.
pub const CLOSE_NO_STATUS: u16 = 1005;
/// The normal close code; the spec default of `websocket.close`'s `code`.
pub const CLOSE_NORMAL: u16 = 1000;

/// A WebSocket data message: ASGI's `{"bytes": ..., "text": ...}` with exactly one set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "MessageRepr", try_from = "MessageRepr")]
pub enum WebSocketMessage {
    /// A text message (`"text"`).
    Text(String),
    /// A binary message (`"bytes"`).
    Binary(Bytes),
}

impl WebSocketMessage {
    /// The payload's length in bytes.
    pub fn len(&self) -> usize {
        match self {
            WebSocketMessage::Text(t) => t.len(),
            WebSocketMessage::Binary(b) => b.len(),
        }
    }

    /// True for an empty payload.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<String> for WebSocketMessage {
    fn from(text: String) -> Self {
        WebSocketMessage::Text(text)
    }
}

impl From<&str> for WebSocketMessage {
    fn from(text: &str) -> Self {
        WebSocketMessage::Text(text.to_owned())
    }
}

impl From<Bytes> for WebSocketMessage {
    fn from(bytes: Bytes) -> Self {
        WebSocketMessage::Binary(bytes)
    }
}

impl From<Vec<u8>> for WebSocketMessage {
    fn from(bytes: Vec<u8>) -> Self {
        WebSocketMessage::Binary(bytes.into())
    }
}

#[derive(Serialize, Deserialize)]
struct MessageRepr {
    #[serde(with = "wire::opt_bytes_latin1", default)]
    bytes: Option<Bytes>,
    #[serde(default)]
    text: Option<String>,
}

impl From<WebSocketMessage> for MessageRepr {
    fn from(m: WebSocketMessage) -> Self {
        match m {
            WebSocketMessage::Text(t) => MessageRepr {
                bytes: None,
                text: Some(t),
            },
            WebSocketMessage::Binary(b) => MessageRepr {
                bytes: Some(b),
                text: None,
            },
        }
    }
}

impl TryFrom<MessageRepr> for WebSocketMessage {
    type Error = &'static str;

    fn try_from(r: MessageRepr) -> Result<Self, Self::Error> {
        match (r.bytes, r.text) {
            (Some(b), None) => Ok(WebSocketMessage::Binary(b)),
            (None, Some(t)) => Ok(WebSocketMessage::Text(t)),
            _ => Err("exactly one of `bytes` or `text` must be non-null"),
        }
    }
}

fn nullable_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

fn default_close_code() -> u16 {
    CLOSE_NORMAL
}

fn default_disconnect_code() -> u16 {
    CLOSE_NO_STATUS
}

fn default_status() -> StatusCode {
    StatusCode::OK
}

/// An event from the server to the app, returned by [`Receiver::recv`](crate::Receiver::recv).
///
/// With serde, each variant is the ASGI dict: `{"type": "http.request", "body": "...",
/// "more_body": false}`; missing optional keys take the spec's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum ReceiveEvent {
    /// `http.request`: a chunk of the request body.
    #[serde(rename = "http.request")]
    HttpRequest {
        /// `body`, default empty.
        #[serde(with = "wire::bytes_latin1", default)]
        body: Bytes,
        /// `more_body`: more chunks follow; default `false`.
        #[serde(default)]
        more_body: bool,
    },
    /// `http.disconnect`: the client is gone, or the response completed.
    #[serde(rename = "http.disconnect")]
    HttpDisconnect,
    /// `websocket.connect`: the client asks to open the WebSocket; answer with
    /// `websocket.accept`, `websocket.close` or a denial response.
    #[serde(rename = "websocket.connect")]
    WebSocketConnect,
    /// `websocket.receive`: a text or binary message from the client.
    #[serde(rename = "websocket.receive")]
    WebSocketReceive(WebSocketMessage),
    /// `websocket.disconnect`: the WebSocket closed, with the close code and reason.
    #[serde(rename = "websocket.disconnect")]
    WebSocketDisconnect {
        /// `code`, default 1005 (no status received).
        #[serde(default = "default_disconnect_code")]
        code: u16,
        /// `reason`, default empty.
        #[serde(default, deserialize_with = "nullable_string")]
        reason: String,
    },
    /// `lifespan.startup`: the server is starting; set up and fill the state.
    #[serde(rename = "lifespan.startup")]
    LifespanStartup,
    /// `lifespan.shutdown`: the server has stopped serving; clean up.
    #[serde(rename = "lifespan.shutdown")]
    LifespanShutdown,
}

impl ReceiveEvent {
    /// An `http.request` event.
    pub fn request(body: impl Into<Bytes>, more_body: bool) -> Self {
        ReceiveEvent::HttpRequest {
            body: body.into(),
            more_body,
        }
    }

    /// The event a receiver keeps returning once the connection of `scope` is gone:
    /// `http.disconnect`, `websocket.disconnect` with code 1006, or `lifespan.shutdown`.
    pub fn disconnect_for(scope: &Scope) -> Self {
        match scope {
            Scope::WebSocket(_) => ReceiveEvent::WebSocketDisconnect {
                code: CLOSE_ABNORMAL,
                reason: String::new(),
            },
            Scope::Lifespan(_) => ReceiveEvent::LifespanShutdown,
            _ => ReceiveEvent::HttpDisconnect,
        }
    }

    /// The ASGI type string, e.g. `"http.request"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ReceiveEvent::HttpRequest { .. } => "http.request",
            ReceiveEvent::HttpDisconnect => "http.disconnect",
            ReceiveEvent::WebSocketConnect => "websocket.connect",
            ReceiveEvent::WebSocketReceive(_) => "websocket.receive",
            ReceiveEvent::WebSocketDisconnect { .. } => "websocket.disconnect",
            ReceiveEvent::LifespanStartup => "lifespan.startup",
            ReceiveEvent::LifespanShutdown => "lifespan.shutdown",
        }
    }

    /// True for `http.disconnect` and `websocket.disconnect`.
    pub fn is_disconnect(&self) -> bool {
        matches!(
            self,
            ReceiveEvent::HttpDisconnect | ReceiveEvent::WebSocketDisconnect { .. }
        )
    }
}

/// An event from the app to the server, passed to [`Sender::send`](crate::Sender::send).
///
/// With serde, each variant is the ASGI dict: `{"type": "http.response.start", "status": 200,
/// "headers": [["content-type", "text/plain"]], "trailers": false}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum SendEvent {
    /// `http.response.start`: status and headers. Nothing goes out until the first body event.
    #[serde(rename = "http.response.start")]
    HttpResponseStart {
        /// `status`.
        #[serde(with = "wire::status", default = "default_status")]
        status: StatusCode,
        /// `headers`, in order, lowercase names; default empty.
        #[serde(with = "wire::headers", default)]
        headers: HeaderMap,
        /// `trailers`: `http.response.trailers` events follow the body; default `false`.
        #[serde(default)]
        trailers: bool,
    },
    /// `http.response.body`: a chunk of the response body.
    #[serde(rename = "http.response.body")]
    HttpResponseBody {
        /// `body`, default empty.
        #[serde(with = "wire::bytes_latin1", default)]
        body: Bytes,
        /// `more_body`: more chunks follow; default `false`.
        #[serde(default)]
        more_body: bool,
    },
    /// `http.response.trailers` (trailers extension): trailing headers after the body.
    #[serde(rename = "http.response.trailers")]
    HttpResponseTrailers {
        /// `headers`, default empty.
        #[serde(with = "wire::headers", default)]
        headers: HeaderMap,
        /// `more_trailers`: more trailer events follow; default `false`.
        #[serde(default)]
        more_trailers: bool,
    },
    /// `http.response.pathsend` (path send extension): the body is this file.
    #[serde(rename = "http.response.pathsend")]
    HttpResponsePathsend {
        /// `path`: an absolute path to the file.
        path: PathBuf,
    },
    /// `websocket.accept`: complete the handshake.
    #[serde(rename = "websocket.accept")]
    WebSocketAccept {
        /// `subprotocol`: one of the scope's `subprotocols`, or `None`.
        #[serde(default)]
        subprotocol: Option<String>,
        /// `headers` to add to the 101 response; default empty.
        #[serde(with = "wire::headers", default)]
        headers: HeaderMap,
    },
    /// `websocket.send`: a text or binary message to the client.
    #[serde(rename = "websocket.send")]
    WebSocketSend(WebSocketMessage),
    /// `websocket.close`: close the WebSocket, or deny it with HTTP 403 before accept.
    #[serde(rename = "websocket.close")]
    WebSocketClose {
        /// `code`, default 1000.
        #[serde(default = "default_close_code")]
        code: u16,
        /// `reason`, default empty.
        #[serde(default, deserialize_with = "nullable_string")]
        reason: String,
    },
    /// `websocket.http.response.start` (denial response extension).
    #[serde(rename = "websocket.http.response.start")]
    WebSocketHttpResponseStart {
        /// `status`.
        #[serde(with = "wire::status")]
        status: StatusCode,
        /// `headers`, default empty.
        #[serde(with = "wire::headers", default)]
        headers: HeaderMap,
    },
    /// `websocket.http.response.body` (denial response extension).
    #[serde(rename = "websocket.http.response.body")]
    WebSocketHttpResponseBody {
        /// `body`, default empty.
        #[serde(with = "wire::bytes_latin1", default)]
        body: Bytes,
        /// `more_body`, default `false`.
        #[serde(default)]
        more_body: bool,
    },
    /// `lifespan.startup.complete`: startup succeeded; the server starts serving.
    #[serde(rename = "lifespan.startup.complete")]
    LifespanStartupComplete,
    /// `lifespan.startup.failed`: startup failed; the server exits without serving.
    #[serde(rename = "lifespan.startup.failed")]
    LifespanStartupFailed {
        /// `message`, default empty.
        #[serde(default, deserialize_with = "nullable_string")]
        message: String,
    },
    /// `lifespan.shutdown.complete`: cleanup succeeded.
    #[serde(rename = "lifespan.shutdown.complete")]
    LifespanShutdownComplete,
    /// `lifespan.shutdown.failed`: cleanup failed.
    #[serde(rename = "lifespan.shutdown.failed")]
    LifespanShutdownFailed {
        /// `message`, default empty.
        #[serde(default, deserialize_with = "nullable_string")]
        message: String,
    },
}

impl SendEvent {
    /// An `http.response.start` with no trailers.
    pub fn response_start(status: StatusCode, headers: HeaderMap) -> Self {
        SendEvent::HttpResponseStart {
            status,
            headers,
            trailers: false,
        }
    }

    /// An `http.response.body`.
    pub fn response_body(body: impl Into<Bytes>, more_body: bool) -> Self {
        SendEvent::HttpResponseBody {
            body: body.into(),
            more_body,
        }
    }

    /// A `websocket.send` of text.
    pub fn text(text: impl Into<String>) -> Self {
        SendEvent::WebSocketSend(WebSocketMessage::Text(text.into()))
    }

    /// A `websocket.send` of bytes.
    pub fn binary(bytes: impl Into<Bytes>) -> Self {
        SendEvent::WebSocketSend(WebSocketMessage::Binary(bytes.into()))
    }

    /// The ASGI type string, e.g. `"http.response.body"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            SendEvent::HttpResponseStart { .. } => "http.response.start",
            SendEvent::HttpResponseBody { .. } => "http.response.body",
            SendEvent::HttpResponseTrailers { .. } => "http.response.trailers",
            SendEvent::HttpResponsePathsend { .. } => "http.response.pathsend",
            SendEvent::WebSocketAccept { .. } => "websocket.accept",
            SendEvent::WebSocketSend(_) => "websocket.send",
            SendEvent::WebSocketClose { .. } => "websocket.close",
            SendEvent::WebSocketHttpResponseStart { .. } => "websocket.http.response.start",
            SendEvent::WebSocketHttpResponseBody { .. } => "websocket.http.response.body",
            SendEvent::LifespanStartupComplete => "lifespan.startup.complete",
            SendEvent::LifespanStartupFailed { .. } => "lifespan.startup.failed",
            SendEvent::LifespanShutdownComplete => "lifespan.shutdown.complete",
            SendEvent::LifespanShutdownFailed { .. } => "lifespan.shutdown.failed",
        }
    }
}
