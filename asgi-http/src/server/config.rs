//! The server's settings as the running server reads them, and the default of every limit
//! and timeout (set through [`Builder`](super::Builder)).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use asgi_ws::WebSocketConfig;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;

use super::tls::TlsConfig;
use crate::middleware::proxy_headers::TrustedProxies;

/// Where the server listens when no address is given: `127.0.0.1:8000`, as uvicorn does.
pub const DEFAULT_BIND: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8000);

/// Default of [`Builder::header_read_timeout`]: 30 seconds, hyper's own default. A client
/// that has not sent a complete request head by then is cut off (slowloris protection); a
/// real client sends its head in one round trip.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Default of [`Builder::max_headers`]: 100 request headers, hyper's own default (its parser
/// keeps them on the stack up to that count). More gets `431 Request Header Fields Too Large`.
pub const DEFAULT_MAX_HEADERS: usize = 100;

/// Default of [`Builder::max_request_body`]: 100 MiB. The server never holds a body (it
/// streams to the app as the app reads), so this protects apps that buffer bodies in memory;
/// raise it for an upload service.
pub const DEFAULT_MAX_REQUEST_BODY: u64 = 100 * 1024 * 1024;

/// Default of [`Builder::keep_alive_timeout`]: 5 seconds, uvicorn's `timeout_keep_alive`.
/// Long enough for a browser's next request, short enough that idle connections do not pile
/// up.
pub const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Default of [`Builder::max_connections`]: 10,000 open connections. Below the file
/// descriptor limit of a tuned server, far above what one process serves well.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Default of [`Builder::http2_max_concurrent_streams`]: 128 streams per HTTP/2 connection,
/// nginx's default: each stream runs an app task, so this bounds one client's share.
pub const DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS: u32 = 128;

/// Default of [`Builder::http2_max_pending_accept_reset_streams`]: 20, the `h2` crate's
/// default. Bounds streams a client opens and resets before the server accepts them (the
/// "rapid reset" attack, CVE-2023-44487).
pub const DEFAULT_HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;

/// Default of [`Builder::http2_max_local_error_reset_streams`]: 1024, hyper's default.
/// Bounds how many streams the server may reset for a client's protocol errors before it
/// closes the connection (a reset flood).
pub const DEFAULT_HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;

/// Default of [`Builder::drain_timeout`]: 30 seconds, gunicorn's `graceful_timeout`. Enough
/// for ordinary requests to finish; long-lived ones (SSE, WebSockets) should end on the
/// scope's shutdown signal.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Default of [`Builder::unix_socket_mode`]: `0o666`, uvicorn's default, so that a reverse
/// proxy running as another user can connect.
pub const DEFAULT_UNIX_SOCKET_MODE: u32 = 0o666;

/// The settings, as the running server reads them.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) root_path: String,
    pub(crate) header_read_timeout: Option<Duration>,
    pub(crate) max_headers: usize,
    pub(crate) max_request_body: Option<u64>,
    pub(crate) keep_alive_timeout: Option<Duration>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) http2_max_concurrent_streams: Option<u32>,
    pub(crate) http2_max_pending_accept_reset_streams: Option<usize>,
    pub(crate) http2_max_local_error_reset_streams: Option<usize>,
    pub(crate) drain_timeout: Option<Duration>,
    pub(crate) unix_socket_mode: Option<u32>,
    pub(crate) access_log: bool,
    pub(crate) handle_signals: bool,
    pub(crate) websocket: WebSocketConfig,
    /// The peers whose proxy headers are believed; `None` when proxy headers are off.
    pub(crate) proxy_headers: Option<TrustedProxies>,
    /// TLS on the listener; `None` for plain TCP or Unix sockets.
    pub(crate) tls: Option<TlsConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            root_path: String::new(),
            header_read_timeout: Some(DEFAULT_HEADER_READ_TIMEOUT),
            max_headers: DEFAULT_MAX_HEADERS,
            max_request_body: Some(DEFAULT_MAX_REQUEST_BODY),
            keep_alive_timeout: Some(DEFAULT_KEEP_ALIVE_TIMEOUT),
            max_connections: Some(DEFAULT_MAX_CONNECTIONS),
            http2_max_concurrent_streams: Some(DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS),
            http2_max_pending_accept_reset_streams: Some(
                DEFAULT_HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS,
            ),
            http2_max_local_error_reset_streams: Some(DEFAULT_HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS),
            drain_timeout: Some(DEFAULT_DRAIN_TIMEOUT),
            unix_socket_mode: Some(DEFAULT_UNIX_SOCKET_MODE),
            access_log: true,
            handle_signals: true,
            websocket: WebSocketConfig::default(),
            proxy_headers: Some(TrustedProxies::default()),
            tls: None,
        }
    }
}

impl Config {
    /// How long a connection may have no request in flight before it is closed: the
    /// keep-alive timeout, capped by the header read timeout. An HTTP/1 request head is only
    /// read while no request is in flight, so a client that sends its head slowly is cut off
    /// by this timer too.
    pub(crate) fn idle_timeout(&self) -> Option<std::time::Duration> {
        match (self.keep_alive_timeout, self.header_read_timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// hyper's connection builder with these settings: HTTP/1.1 and HTTP/2 (h2c prior
    /// knowledge) on one listener, hyper's tokio timer installed for its timeouts, and
    /// WebSockets over both.
    pub(crate) fn http(&self) -> auto::Builder<TokioExecutor> {
        let mut http = auto::Builder::new(TokioExecutor::new());
        // The header read timeout is the connection's idle timer (see `idle_timeout`), not
        // hyper's: hyper arms a timer of its own for every request head it reads, an
        // allocation and two timer-wheel updates per request.
        http.http1()
            .timer(TokioTimer::new())
            .keep_alive(true)
            .header_read_timeout(None);
        // hyper keeps up to its default count of headers on the stack; setting any count moves
        // them to the heap, so only a changed limit is passed on.
        if self.max_headers != DEFAULT_MAX_HEADERS {
            http.http1().max_headers(self.max_headers);
        }
        // `enable_connect_protocol`: WebSockets over HTTP/2 (RFC 8441 extended CONNECT).
        http.http2()
            .timer(TokioTimer::new())
            .enable_connect_protocol()
            .max_concurrent_streams(self.http2_max_concurrent_streams)
            .max_pending_accept_reset_streams(self.http2_max_pending_accept_reset_streams)
            .max_local_error_reset_streams(self.http2_max_local_error_reset_streams);
        http
    }
}
