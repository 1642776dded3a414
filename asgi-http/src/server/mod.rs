//! The production server: any [`App`] over HTTP/1.1 and HTTP/2, on TCP, a Unix domain
//! socket or any [`Listener`], built on hyper.
//!
//! [`serve`] is the one-line way in; [`Server::builder`] sets the listener,
//! limits and timeouts. The server behaves like uvicorn:
//!
//! - One listener speaks HTTP/1.1 and HTTP/2 (h2c with prior knowledge), with upgrades.
//! - Each request gets an HTTP scope with every key of the ASGI HTTP 2.5 spec (`path`
//!   percent-decoded, `raw_path` and `query_string` raw, headers lowercase in order, the
//!   lifespan `state`, the `shutdown` signal, the `http.response.trailers` and
//!   `http.response.pathsend` extensions).
//! - The app runs in the connection's task (over HTTP/2, the stream's), polled while hyper
//!   waits for its response head and then its body: an app that answers without waiting (most
//!   do) is done in the first poll, and one that waits is woken where its response goes out.
//!   An app still running when hyper is done with its request (the response was sent, or the
//!   client left) goes on in a task of its own, which the server owns (the drain waits for
//!   it). WebSocket apps run in tasks of the server's too. The request
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
//! - An app that is only an adapter over an HTTP service (`asgi-tower`'s `TowerApp` over an
//!   axum router) may hand the server that service ([`App::host_service`] gives a
//!   [`DirectService`]): served as the whole app, it gets each HTTP request as hyper has it,
//!   with no scope in between, and the server's limits, logs and drain hold as above (see
//!   [`DirectService`]).
//! - Lifespan startup runs before the socket is bound; on shutdown the server drains and then
//!   runs lifespan shutdown.
//! - An access log line per response goes to `tracing` ([`ACCESS_LOG_TARGET`]).
//!
//! # Which answers come from the server, and which from the app
//!
//! Some requests are answered by the server itself, before the app is called or instead of
//! the app's answer. These answers are plain (no body beyond the reason, no app headers) and
//! **do not pass through the middleware stack**: no CORS headers, no request id, no
//! compression, nothing your layers add.
//!
//! | status | when | setting |
//! | --- | --- | --- |
//! | `400 Bad Request` | an HTTP/1 head hyper cannot parse (method, header, target, version); no `Host` or two `Host` headers on HTTP/1.1; raw non-ASCII bytes in the target; a body hyper cannot decode (broken chunked encoding); an invalid WebSocket handshake | — |
//! | `413 Payload Too Large` | a `content-length` over the limit (before the app is called), or a streamed body passing it (the app gets `http.disconnect`) | [`Builder::max_request_body`] |
//! | `414 URI Too Long` | an HTTP/1 request target larger than hyper's read buffer | — |
//! | `426 Upgrade Required` | a WebSocket handshake with a version other than 13 | — |
//! | `431 Request Header Fields Too Large` | more headers than the limit, or a head larger than the read buffer | [`Builder::max_headers`] |
//! | `500 Internal Server Error` | the app failed, panicked or returned before `http.response.start` (a WebSocket app: before accepting) | — |
//! | `403 Forbidden` | a WebSocket app sent `websocket.close` before accepting | — |
//!
//! Some limits answer nothing at all: a client too slow to send its head
//! ([`Builder::header_read_timeout`]) or to read the response is disconnected (hyper sends
//! no `408`), and an HTTP/2 protocol error resets the stream or closes the connection.
//! Overload does not make the server answer `503` either: connections beyond
//! `max_connections` wait in the listen backlog, and HTTP/2 streams beyond the stream limit
//! wait for a free one. A `503` on overload is the app's answer, from the
//! [`ConcurrencyLimit`](crate::middleware::concurrency_limit) middleware.
//!
//! Everything else is the app's answer, which passes through every layer around the app:
//! `404` and `405` from a [`Router`](crate::router::Router) (set them with
//! [`Router::not_found`](crate::router::Router::not_found) and
//! [`Router::method_not_allowed`](crate::router::Router::method_not_allowed)), the `400`,
//! `413` and `422` of the request helpers in a [handler](crate::handler), and the refusals of
//! the middleware (`403` and `400` from CORS and TrustedHost, `413` from
//! [`BodyLimit`](crate::middleware::body_limit), `503` from ConcurrencyLimit, `504` from
//! Timeout).
//!
//! When a refusal must carry what the middleware adds (a browser needs CORS headers to read
//! a `413`, or it reports a CORS error instead), let the app give it: put
//! [`BodyLimit`](crate::middleware::body_limit) inside `Cors`, under a server limit that
//! is higher (or turned off), which stays the first line of defence.
//!
//! # Layout
//!
//! Read the modules in the order a request travels; each one imports only those below it,
//! and the shared state sits in a leaf.
//!
//! - `run`: [`Server`], [`ServerHandle`]: lifespan startup, binding, draining, lifespan
//!   shutdown, signals.
//! - `builder`: [`Builder`], where the server listens and every setting.
//! - `listener`: the [`Listener`] trait and [`Peer`]; TCP and Unix domain sockets.
//! - `tls`: [`TlsListener`], TLS over any listener, and its settings ([`TlsConfig`]) and
//!   certificate reload.
//! - `inherited`: [`InheritedListener`], a socket passed down by systemd or `systemfd`.
//! - `accept`: the accept loop, generic over the listener, under `max_connections`.
//! - `connection`: one connection's task: hyper serves it; keep-alive idle timer, graceful
//!   and forced close, the pause of a client that resets too many streams.
//! - `write_timeout`: the connection's socket, whose writes give up on a client that takes
//!   nothing.
//! - `service`: hyper's service: each request is checked, dispatched (HTTP or WebSocket),
//!   and its app called; hyper's future polls the app until the response head is ready.
//! - `scope`: the HTTP and WebSocket scopes of a request, from its head and [`Peer`].
//! - `receive`: the app's `receive` over the request body.
//! - `send`: the app's `send`: the response's state machine.
//! - `body`: the response body hyper writes: whole, streamed from `send`, or a file; it
//!   polls an app that still runs.
//! - `call`: one request's app call: polled in the connection's task, detached into a task
//!   of its own when hyper lets go of the request, and the log line of how it ended.
//! - `direct`: the direct path, for an app that is only an adapter over an HTTP service
//!   ([`DirectService`]): the request in hyper's types, its body under the server's limit.
//! - `finish`: the end of a request, as a guard: the request ends for the app, the access
//!   log line, the connection's count of requests in flight.
//! - `exchange`: the state a request shares between hyper's side and the app's.
//! - `websocket`: the WebSocket hand-off: the handshake, the app's answer, and the upgraded
//!   connection, whose app task the server owns.
//! - `access_log`: the access log line.
//! - `shared`: what every module shares: the running server's state, a connection's ends and
//!   its requests in flight.
//! - `config`: the settings as the running server reads them, and their defaults.
//! - `error`: [`ServerError`].

mod accept;
mod access_log;
mod body;
mod builder;
mod call;
mod config;
mod connection;
mod direct;
mod error;
mod exchange;
mod finish;
mod inherited;
mod listener;
mod receive;
mod run;
mod scope;
mod send;
mod service;
mod shared;
mod tls;
mod websocket;
mod write_timeout;

pub use access_log::ACCESS_LOG_TARGET;
/// The settings of WebSocket connections, for [`Builder::websocket`].
pub use asgi_ws::WebSocketConfig;
pub use builder::Builder;
pub use config::{
    DEFAULT_BIND, DEFAULT_DRAIN_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT,
    DEFAULT_HTTP2_KEEP_ALIVE_INTERVAL, DEFAULT_HTTP2_KEEP_ALIVE_TIMEOUT,
    DEFAULT_HTTP2_MAX_CLIENT_RESETS, DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS,
    DEFAULT_HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS, DEFAULT_HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS,
    DEFAULT_KEEP_ALIVE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HEADERS,
    DEFAULT_MAX_REQUEST_BODY, DEFAULT_UNIX_SOCKET_MODE, DEFAULT_WRITE_TIMEOUT,
    HTTP2_CLIENT_RESETS_REFILL,
};
pub use direct::{
    DirectBody, DirectContext, DirectFuture, DirectHttp, DirectResponseBody, DirectService,
};
pub use error::ServerError;
pub use inherited::{FIRST_INHERITED_FD, InheritedListener, InheritedStream};
pub use listener::{Listener, Peer};
pub use run::{Server, ServerHandle};
#[doc(hidden)]
pub use scope::http_scope_from_head;
pub use tls::{
    ClientAuth, DEFAULT_MAX_TLS_HANDSHAKES, DEFAULT_TLS_HANDSHAKE_TIMEOUT, HandshakeFailures,
    TlsConfig, TlsError, TlsListener, TlsReloadHandle, TlsVersion,
};

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
