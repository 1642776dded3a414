//! The production server: any [`App`] over HTTP/1.1 and HTTP/2, on TCP or a
//! Unix domain socket, built on hyper.
//!
//! [`serve`] is the one-line way in; [`Server::builder`] sets the listener,
//! limits and timeouts. The server behaves like uvicorn:
//!
//! - One listener speaks HTTP/1.1 and HTTP/2 (h2c with prior knowledge), with upgrades.
//! - Each request gets an HTTP scope with every key of the ASGI HTTP 2.5 spec (`path`
//!   percent-decoded, `raw_path` and `query_string` raw, headers lowercase in order, the
//!   lifespan `state`, the `shutdown` signal, the `http.response.trailers` and
//!   `http.response.pathsend` extensions).
//! - The app runs in a task of its own; hyper only waits for the response head. The request
//!   body is read as the app calls `recv` (so `Expect: 100-continue` is answered when the app
//!   first reads); a client that leaves reaches a pending `recv` as `http.disconnect` at
//!   once, and later `send`s return [`SendError::Disconnected`](asgi_core::SendError).
//! - A response of one start and one final body event goes out whole; anything else streams
//!   through a bounded channel, so a slow client slows the app down. Trailers go out over
//!   HTTP/2, and over HTTP/1.1 when the request had `TE: trailers` (hyper then sends the
//!   fields named in the response's `trailer` header). `pathsend` streams the file.
//! - An app that fails, panics or returns before its response started gives a 500 (no
//!   details); after it started, the response is aborted (the HTTP/1 connection closes, the
//!   HTTP/2 stream is reset), so a truncated body never looks complete. Either way the server
//!   goes on serving, and the failure is logged; a client that left is never logged as an
//!   error.
//! - A WebSocket handshake (`Upgrade: websocket`) gets a WebSocket scope (scheme `ws`, the
//!   offered `subprotocols`, the `websocket.http.response` extension) and the app's answer:
//!   `101` and the WebSocket run by [`asgi_ws`] for `websocket.accept`, `403` for
//!   `websocket.close`, the app's own response for a denial, `500` for a failure; an invalid
//!   handshake gets `400` or `426` without calling the app. Open WebSockets count as
//!   connections (under `max_connections`, and the drain waits for them); at the drain
//!   deadline they are closed with 1001. Settings: [`Builder::websocket`].
//! - Lifespan startup runs before the socket is bound; on shutdown the server drains and then
//!   runs lifespan shutdown.
//! - An access log line per response goes to `tracing` ([`ACCESS_LOG_TARGET`]).
//!
//! # Layout
//!
//! - `config`: [`Builder`] and the defaults of every limit and timeout.
//! - `run`: [`Server`], [`ServerHandle`]: lifespan, accepting, draining, signals.
//! - `listener`: TCP and Unix domain sockets.
//! - `connection`: one connection's task: keep-alive idle timer, graceful and forced close.
//! - `service`: hyper's service: scope, app task, the future of the response head.
//! - `scope`: the HTTP and WebSocket scopes of a request.
//! - `websocket`: WebSocket handshakes and upgraded connections.
//! - `request`: the app's `receive` over the request body.
//! - `response`: the app's `send`, and the response body hyper writes.
//! - `exchange`: the state a request shares between hyper's side and the app's.
//! - `access_log`: the access log line.
//! - `error`: [`ServerError`].

mod access_log;
mod config;
mod connection;
mod error;
mod exchange;
mod listener;
mod request;
mod response;
mod run;
mod scope;
mod service;
mod websocket;

pub use access_log::ACCESS_LOG_TARGET;
/// The settings of WebSocket connections, for [`Builder::websocket`].
pub use asgi_ws::WebSocketConfig;
pub use config::{
    Builder, DEFAULT_BIND, DEFAULT_DRAIN_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT,
    DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS, DEFAULT_HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS,
    DEFAULT_HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS, DEFAULT_KEEP_ALIVE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HEADERS, DEFAULT_MAX_REQUEST_BODY,
    DEFAULT_UNIX_SOCKET_MODE,
};
pub use error::ServerError;
pub use response::{PATHSEND_CHUNK_SIZE, RESPONSE_BODY_CHANNEL_CAPACITY};
pub use run::{Server, ServerHandle};
#[doc(hidden)]
pub use scope::http_scope_from_head;

use asgi_core::App;

/// Serves `app` on `addr` with the default settings until SIGINT or SIGTERM, as
/// `uvicorn app:app` does: lifespan startup, then HTTP/1.1 and HTTP/2 on `addr`, then a
/// graceful shutdown and lifespan shutdown.
///
/// # Example
///
/// ```no_run
/// use asgi_core::{Error, Receiver, Scope, SendEvent, Sender};
/// use http::{HeaderMap, StatusCode};
///
/// async fn app(scope: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
///     if let Scope::Http(_) = scope {
///         send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new())).await?;
///         send.send(SendEvent::response_body("Hello, world!", false)).await?;
///     }
///     Ok(())
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), asgi_http::server::ServerError> {
///     asgi_http::serve(app, "127.0.0.1:8000").await
/// }
/// ```
///
/// # Errors
///
/// When `addr` does not resolve, and as [`Server::serve`].
pub async fn serve(app: impl App, addr: impl tokio::net::ToSocketAddrs) -> Result<(), ServerError> {
    let addr = tokio::net::lookup_host(addr)
        .await
        .map_err(ServerError::bind)?
        .next()
        .ok_or_else(|| {
            ServerError::bind(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the address resolves to nothing",
            ))
        })?;
    Server::builder().bind(addr).serve(app).await
}
