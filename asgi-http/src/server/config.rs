//! The server's settings: [`Builder`], with every limit and timeout and its default.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
#[cfg(unix)]
use std::path::PathBuf;
use std::time::Duration;

use asgi_core::App;
use asgi_ws::WebSocketConfig;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;

use super::error::ServerError;
use super::run::Server;
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

/// Where the server listens.
pub(crate) enum Listen {
    /// Bind this address after lifespan startup.
    Addr(SocketAddr),
    /// Accept on a listener the caller bound.
    Listener(tokio::net::TcpListener),
    /// Bind a Unix domain socket at this path after lifespan startup.
    #[cfg(unix)]
    Unix(PathBuf),
}

impl fmt::Debug for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Addr(addr) => write!(f, "Addr({addr})"),
            Listen::Listener(l) => write!(f, "Listener({:?})", l.local_addr().ok()),
            #[cfg(unix)]
            Listen::Unix(path) => write!(f, "Unix({})", path.display()),
        }
    }
}

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
        }
    }
}

impl Config {
    /// hyper's connection builder with these settings: HTTP/1.1 and HTTP/2 (h2c prior
    /// knowledge) on one listener, hyper's tokio timer installed for its timeouts, and
    /// WebSockets over both.
    pub(crate) fn http(&self) -> auto::Builder<TokioExecutor> {
        let mut http = auto::Builder::new(TokioExecutor::new());
        http.http1()
            .timer(TokioTimer::new())
            .keep_alive(true)
            .header_read_timeout(self.header_read_timeout);
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

/// Configures a [`Server`]: where it listens, its limits and timeouts.
///
/// Every setting has a safe default (the `DEFAULT_*` constants of this module say which and
/// why); those that can be turned off take an `Option`, and `None` turns them off.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use asgi_core::{Error, Receiver, Scope, SendEvent, Sender};
/// use asgi_http::server::Server;
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
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let server = Server::builder()
///     .bind("127.0.0.1:0".parse().unwrap())
///     .root_path("/api")
///     .max_request_body(Some(10 * 1024 * 1024))
///     .keep_alive_timeout(Some(Duration::from_secs(15)))
///     .drain_timeout(Some(Duration::from_secs(10)))
///     .handle_signals(false)
///     .build(app);
/// let handle = server.handle();
/// let serving = tokio::spawn(server.serve());
/// assert!(handle.listening().await.is_some());
/// handle.shutdown();
/// serving.await.unwrap().unwrap();
/// # });
/// ```
#[derive(Debug)]
pub struct Builder {
    pub(crate) config: Config,
    pub(crate) listen: Listen,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            config: Config::default(),
            listen: Listen::Addr(DEFAULT_BIND),
        }
    }
}

impl Builder {
    /// A builder with every setting at its default, listening on [`DEFAULT_BIND`].
    pub fn new() -> Self {
        Builder::default()
    }

    /// Listens on this TCP address. The socket is bound after lifespan startup succeeded, so
    /// nothing listens if it fails. Port 0 picks a free port: see
    /// [`ServerHandle::listening`](super::ServerHandle::listening) for the one bound.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.listen = Listen::Addr(addr);
        self
    }

    /// Accepts connections on a listener the caller already bound (tests bind
    /// `127.0.0.1:0` and read the port first). Accepting starts after lifespan startup.
    pub fn listener(mut self, listener: tokio::net::TcpListener) -> Self {
        self.listen = Listen::Listener(listener);
        self
    }

    /// Listens on a Unix domain socket at `path` instead of TCP. A stale socket file left by
    /// a process that is gone is replaced; a live one (another server answers) or a file that
    /// is not a socket is an error. The file gets [`unix_socket_mode`](Builder::unix_socket_mode)
    /// and is removed on shutdown. Scopes have `client: None` and `server: [path, None]`.
    #[cfg(unix)]
    pub fn unix_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.listen = Listen::Unix(path.into());
        self
    }

    /// The permission bits of the Unix socket file.
    ///
    /// Default is `0o666` ([`DEFAULT_UNIX_SOCKET_MODE`]). Pass `None` to keep what the
    /// process's umask gives.
    pub fn unix_socket_mode(mut self, mode: Option<u32>) -> Self {
        self.config.unix_socket_mode = mode;
        self
    }

    /// The scope's `root_path`: the prefix under which a proxy mounts this server (WSGI's
    /// `SCRIPT_NAME`). As in uvicorn, it is also prepended to `path` and `raw_path`.
    ///
    /// Default is empty.
    pub fn root_path(mut self, root_path: impl Into<String>) -> Self {
        self.config.root_path = root_path.into();
        self
    }

    /// How long an HTTP/1 client may take to send a request head; the connection is closed
    /// after that. hyper also applies it to an idle keep-alive connection waiting for its next
    /// request, so it caps [`keep_alive_timeout`](Builder::keep_alive_timeout) too.
    ///
    /// Default is 30 seconds ([`DEFAULT_HEADER_READ_TIMEOUT`]). Pass `None` to disable.
    pub fn header_read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.header_read_timeout = timeout;
        self
    }

    /// The most request headers accepted; more gets `431 Request Header Fields Too Large`
    /// (HTTP/1 from hyper's parser, HTTP/2 from the server's own count). It cannot be turned
    /// off (the HTTP/1 parser needs a bound), only raised.
    ///
    /// Default is 100 ([`DEFAULT_MAX_HEADERS`]).
    pub fn max_headers(mut self, max: usize) -> Self {
        self.config.max_headers = max;
        self
    }

    /// The largest request body, in bytes. A request whose `Content-Length` says more gets
    /// `413 Content Too Large` before its body is read and without calling the app. A body
    /// without a length (chunked, or HTTP/2 without `content-length`) is counted as the app
    /// reads it: past the limit the app's `recv` returns `http.disconnect` and the client gets
    /// 413 if the response had not started.
    ///
    /// Default is 100 MiB ([`DEFAULT_MAX_REQUEST_BODY`]). Pass `None` to disable.
    pub fn max_request_body(mut self, max: Option<u64>) -> Self {
        self.config.max_request_body = max;
        self
    }

    /// How long a connection may sit with no request in flight before the server closes it
    /// (HTTP/1 keep-alive; HTTP/2 gets a GOAWAY).
    ///
    /// Default is 5 seconds ([`DEFAULT_KEEP_ALIVE_TIMEOUT`]). Pass `None` to disable (the
    /// [`header_read_timeout`](Builder::header_read_timeout) still closes idle HTTP/1
    /// connections).
    pub fn keep_alive_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.keep_alive_timeout = timeout;
        self
    }

    /// The most connections served at once. At the limit the server stops accepting: new
    /// connections wait in the kernel's listen backlog (and are refused by the kernel when
    /// that is full) until a connection closes.
    ///
    /// Default is 10,000 ([`DEFAULT_MAX_CONNECTIONS`]). Pass `None` to disable.
    pub fn max_connections(mut self, max: Option<usize>) -> Self {
        self.config.max_connections = max;
        self
    }

    /// The most concurrent streams (requests) a client may open on one HTTP/2 connection.
    ///
    /// Default is 128 ([`DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS`]). Pass `None` for no limit.
    pub fn http2_max_concurrent_streams(mut self, max: Option<u32>) -> Self {
        self.config.http2_max_concurrent_streams = max;
        self
    }

    /// The most HTTP/2 streams a client may reset before the server accepted them; more
    /// closes the connection ("rapid reset" protection).
    ///
    /// Default is 20 ([`DEFAULT_HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS`]). Pass `None` for
    /// the `h2` crate's default (also 20).
    pub fn http2_max_pending_accept_reset_streams(mut self, max: Option<usize>) -> Self {
        self.config.http2_max_pending_accept_reset_streams = max;
        self
    }

    /// The most HTTP/2 streams the server may reset because of a client's errors before it
    /// closes the connection (reset flood protection).
    ///
    /// Default is 1024 ([`DEFAULT_HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS`]). Pass `None` to
    /// disable.
    pub fn http2_max_local_error_reset_streams(mut self, max: Option<usize>) -> Self {
        self.config.http2_max_local_error_reset_streams = max;
        self
    }

    /// How long a graceful shutdown waits for in-flight requests and open WebSockets before
    /// it closes the remaining connections. WebSockets still open then get a close frame
    /// with 1001 (going away) and up to
    /// [`WebSocketConfig::close_timeout`](asgi_ws::WebSocketConfig::close_timeout) for the
    /// client's answer; apps that want to end them sooner watch the scope's `shutdown`
    /// signal, which fires when the drain starts.
    ///
    /// Default is 30 seconds ([`DEFAULT_DRAIN_TIMEOUT`]). Pass `None` to wait as long as it
    /// takes (a second SIGINT/SIGTERM, or [`ServerHandle::shutdown_now`](super::ServerHandle::shutdown_now),
    /// still ends it at once).
    pub fn drain_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.drain_timeout = timeout;
        self
    }

    /// Whether to write the access log (target `asgi_http::access`, level INFO): one line per
    /// response with client, method, path, version, status, bytes and duration.
    ///
    /// Default is `true`. It can also be filtered out with the tracing subscriber.
    pub fn access_log(mut self, enabled: bool) -> Self {
        self.config.access_log = enabled;
        self
    }

    /// Whether SIGINT and SIGTERM shut the server down: the first one gracefully, a second
    /// one at once.
    ///
    /// Default is `true`. Servers embedded in a larger program, and tests, turn it off and
    /// use a [`ServerHandle`](super::ServerHandle).
    pub fn handle_signals(mut self, enabled: bool) -> Self {
        self.config.handle_signals = enabled;
        self
    }

    /// The settings of every WebSocket connection: the largest message (more closes the
    /// connection with 1009), ping interval and pong timeout (no pong closes it with 1011),
    /// the close handshake timeout, the queue sizes that bound each connection's memory, and
    /// permessage-deflate.
    ///
    /// Default is [`WebSocketConfig::default`]: 16 MiB messages, a ping every 20 seconds
    /// answered within 20 seconds, a 5 second close timeout, queues of 16 messages each way,
    /// a 64 KiB write buffer, and permessage-deflate when the client offers it (each field's
    /// doc says how to change or disable it).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use asgi_http::server::Server;
    /// use asgi_ws::WebSocketConfig;
    ///
    /// let mut websocket = WebSocketConfig::default();
    /// websocket.max_message_size = Some(1024 * 1024);
    /// websocket.ping_interval = Some(Duration::from_secs(30));
    /// websocket.deflate = None;
    /// let builder = Server::builder().websocket(websocket);
    /// ```
    pub fn websocket(mut self, config: WebSocketConfig) -> Self {
        self.config.websocket = config;
        self
    }

    /// Whether to believe the proxy headers (`Forwarded`, `X-Forwarded-For`,
    /// `X-Forwarded-Proto`) of trusted peers
    /// ([`forwarded_allow_ips`](Builder::forwarded_allow_ips)): the app is wrapped in
    /// [`ProxyHeaders`](crate::middleware::proxy_headers::ProxyHeaders), so scopes get the
    /// forwarded `client` and `scheme`, and the access log names the forwarded client.
    ///
    /// Default is `true`, as uvicorn's `--proxy-headers`: with the default trusted peers
    /// (`127.0.0.1` and Unix sockets) only a proxy on the same machine is believed. Pass
    /// `false` to leave scopes as the connection says.
    pub fn proxy_headers(mut self, enabled: bool) -> Self {
        self.config.proxy_headers =
            enabled.then(|| self.config.proxy_headers.take().unwrap_or_default());
        self
    }

    /// The peers whose proxy headers are believed: addresses, CIDR networks, `unix` for
    /// Unix socket peers, or `*` for all (parse a list with `"10.0.0.0/8, unix".parse()`).
    /// Also turns [`proxy_headers`](Builder::proxy_headers) on.
    ///
    /// Default is `127.0.0.1` and Unix socket peers
    /// ([`DEFAULT_FORWARDED_ALLOW_IPS`](crate::middleware::proxy_headers::DEFAULT_FORWARDED_ALLOW_IPS)),
    /// uvicorn's `--forwarded-allow-ips` default.
    pub fn forwarded_allow_ips(mut self, trusted: TrustedProxies) -> Self {
        self.config.proxy_headers = Some(trusted);
        self
    }

    /// The server for `app`, ready to [`serve`](Server::serve). Nothing is bound yet.
    pub fn build(self, app: impl App) -> Server {
        Server::new(app, self)
    }

    /// Builds the server and serves `app` until it is shut down.
    ///
    /// # Errors
    ///
    /// See [`Server::serve`].
    pub async fn serve(self, app: impl App) -> Result<(), ServerError> {
        self.build(app).serve().await
    }
}
