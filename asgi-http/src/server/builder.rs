//! [`Builder`]: where the server listens, and every limit and timeout.

use std::net::SocketAddr;
#[cfg(unix)]
use std::path::PathBuf;
use std::time::Duration;

use asgi_ws::WebSocketConfig;

use super::accept::Listen;
use super::config::{Config, DEFAULT_BIND};
use super::listener::Listener;
use super::tls::TlsConfig;
use crate::middleware::proxy_headers::TrustedProxies;

/// Configures a [`Server`](super::Server): where it listens, its limits and timeouts.
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
    /// A builder with every setting at its default, listening on [`DEFAULT_BIND`](super::DEFAULT_BIND).
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

    /// Accepts connections on `listener`, any [`Listener`]: one the caller already bound
    /// (tests bind `tokio::net::TcpListener` on `127.0.0.1:0` and read the port first), a
    /// socket inherited from a supervisor, or a listener of their own making. Accepting starts
    /// after lifespan startup; the scopes' `server` is the listener's
    /// [`local_addr`](Listener::local_addr).
    ///
    /// # Example
    ///
    /// ```
    /// use asgi_core::{Error, Receiver, Scope, Sender};
    /// use asgi_http::server::Server;
    ///
    /// async fn app(_: Scope, _: Receiver, _: Sender) -> Result<(), Error> {
    ///     Ok(())
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// let server = Server::builder().listener(listener).handle_signals(false).build(app);
    /// # let handle = server.handle();
    /// # let serving = tokio::spawn(server.serve());
    /// # handle.listening().await.unwrap();
    /// # handle.shutdown();
    /// # serving.await.unwrap().unwrap();
    /// # });
    /// ```
    pub fn listener(mut self, listener: impl Listener) -> Self {
        self.listen = Listen::listener(listener);
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
    /// Default is `0o666` ([`DEFAULT_UNIX_SOCKET_MODE`](super::DEFAULT_UNIX_SOCKET_MODE)). Pass `None` to keep what the
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

    /// How long a client may take to send a request head; the connection is closed after
    /// that (slowloris protection). The connection's idle timer enforces it: a connection
    /// with no request in flight is closed once it has been so for this long (counted from
    /// the end of its last request), whether it sits idle or trickles a head in, so it caps
    /// [`keep_alive_timeout`](Builder::keep_alive_timeout) too.
    ///
    /// Default is 30 seconds ([`DEFAULT_HEADER_READ_TIMEOUT`](super::DEFAULT_HEADER_READ_TIMEOUT)). Pass `None` to disable.
    pub fn header_read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.header_read_timeout = timeout;
        self
    }

    /// The most request headers accepted; more gets `431 Request Header Fields Too Large`
    /// (HTTP/1 from hyper's parser, HTTP/2 from the server's own count). It cannot be turned
    /// off (the HTTP/1 parser needs a bound), only raised.
    ///
    /// Default is 100 ([`DEFAULT_MAX_HEADERS`](super::DEFAULT_MAX_HEADERS)).
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
    /// Default is 100 MiB ([`DEFAULT_MAX_REQUEST_BODY`](super::DEFAULT_MAX_REQUEST_BODY)). Pass `None` to disable.
    pub fn max_request_body(mut self, max: Option<u64>) -> Self {
        self.config.max_request_body = max;
        self
    }

    /// How long a connection may sit with no request in flight before the server closes it
    /// (HTTP/1 keep-alive; HTTP/2 gets a GOAWAY), counted from the end of its last request.
    /// A connection that does not close by itself then (an HTTP/2 client that does not
    /// answer the GOAWAY's PING) is dropped a second later.
    ///
    /// Default is 5 seconds ([`DEFAULT_KEEP_ALIVE_TIMEOUT`](super::DEFAULT_KEEP_ALIVE_TIMEOUT)). Pass `None` to disable (the
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
    /// Default is 10,000 ([`DEFAULT_MAX_CONNECTIONS`](super::DEFAULT_MAX_CONNECTIONS)). Pass `None` to disable.
    pub fn max_connections(mut self, max: Option<usize>) -> Self {
        self.config.max_connections = max;
        self
    }

    /// The most concurrent streams (requests) a client may open on one HTTP/2 connection,
    /// and the most app calls one HTTP/2 connection has running, HTTP requests and WebSockets
    /// (RFC 8441) alike: an app call whose stream the client reset counts until the app
    /// returns, and a request over the limit waits for one to return before its app is called
    /// (see
    /// [`http2_max_client_resets`](Builder::http2_max_client_resets)).
    ///
    /// Default is 128 ([`DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS`](super::DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS)). Pass `None` for no limit.
    pub fn http2_max_concurrent_streams(mut self, max: Option<u32>) -> Self {
        self.config.http2_max_concurrent_streams = max;
        self
    }

    /// The most HTTP/2 streams a client may reset before the server accepted them; more
    /// closes the connection ("rapid reset" protection).
    ///
    /// Default is 20 ([`DEFAULT_HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS`](super::DEFAULT_HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS)). Pass `None` for
    /// the `h2` crate's default (also 20).
    pub fn http2_max_pending_accept_reset_streams(mut self, max: Option<usize>) -> Self {
        self.config.http2_max_pending_accept_reset_streams = max;
        self
    }

    /// The most HTTP/2 streams the server may reset because of a client's errors before it
    /// closes the connection (reset flood protection).
    ///
    /// Default is 1024 ([`DEFAULT_HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS`](super::DEFAULT_HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS)). Pass `None` to
    /// disable.
    pub fn http2_max_local_error_reset_streams(mut self, max: Option<usize>) -> Self {
        self.config.http2_max_local_error_reset_streams = max;
        self
    }

    /// The most HTTP/2 streams a client may reset (`RST_STREAM`) before their responses are
    /// complete, in a burst; the allowance then refills at this many per 30 seconds
    /// ([`HTTP2_CLIENT_RESETS_REFILL`](super::HTTP2_CLIENT_RESETS_REFILL)). A client over it
    /// is not read from for a second each time it resets another stream (no request of it
    /// reaches the app meanwhile), and one that keeps sending resets gets `GOAWAY` with
    /// `ENHANCE_YOUR_CALM` and is disconnected as soon as more than
    /// [`http2_max_pending_accept_reset_streams`](Builder::http2_max_pending_accept_reset_streams)
    /// of them wait in one read ("rapid reset" protection, CVE-2023-44487).
    ///
    /// A stream the client reset before its app was called never calls it. Until a
    /// connection has completed a response, and for good once its client has reset a stream,
    /// that includes a stream reset in the same read as its request: the request waits one
    /// turn of the scheduler before its app is called, and the reset is seen first. Over a
    /// connection that has answered and seen no reset, requests go to their apps at once,
    /// and a first burst of such resets can call their apps (counted against this allowance
    /// all the same, and bounded as below). The app calls a
    /// connection has running, including those whose stream the client reset, are bounded by
    /// [`http2_max_concurrent_streams`](Builder::http2_max_concurrent_streams): a request over
    /// it waits for one of them to return before its app is called.
    ///
    /// Default is 1000 ([`DEFAULT_HTTP2_MAX_CLIENT_RESETS`](super::DEFAULT_HTTP2_MAX_CLIENT_RESETS)).
    /// Pass `None` to disable.
    pub fn http2_max_client_resets(mut self, max: Option<u32>) -> Self {
        self.config.http2_max_client_resets = max;
        self
    }

    /// How long an HTTP/2 connection may send nothing before the server sends it a PING; a
    /// client that does not answer within
    /// [`http2_keep_alive_timeout`](Builder::http2_keep_alive_timeout) is disconnected. This
    /// closes connections to clients that vanished or went silent, whether or not streams
    /// are open.
    ///
    /// Default is 20 seconds ([`DEFAULT_HTTP2_KEEP_ALIVE_INTERVAL`](super::DEFAULT_HTTP2_KEEP_ALIVE_INTERVAL)).
    /// Pass `None` to disable the PINGs (the
    /// [`keep_alive_timeout`](Builder::keep_alive_timeout) still closes connections with no
    /// stream open).
    pub fn http2_keep_alive_interval(mut self, interval: Option<Duration>) -> Self {
        self.config.http2_keep_alive_interval = interval;
        self
    }

    /// How long an HTTP/2 client has to answer the keep-alive PING before the connection is
    /// closed. Does nothing when
    /// [`http2_keep_alive_interval`](Builder::http2_keep_alive_interval) is `None`.
    ///
    /// Default is 20 seconds ([`DEFAULT_HTTP2_KEEP_ALIVE_TIMEOUT`](super::DEFAULT_HTTP2_KEEP_ALIVE_TIMEOUT)).
    pub fn http2_keep_alive_timeout(mut self, timeout: Duration) -> Self {
        self.config.http2_keep_alive_timeout = timeout;
        self
    }

    /// How long the server waits for a client to take more of a response: a connection
    /// whose writes make no progress for that long (the client reads nothing and the
    /// socket's buffers are full) is closed, and the apps of its requests see
    /// `http.disconnect`. Over HTTP/2, flow control stops the server before the socket fills;
    /// a client there that reads nothing also answers no PING, and
    /// [`http2_keep_alive_interval`](Builder::http2_keep_alive_interval) closes it.
    ///
    /// Default is 60 seconds ([`DEFAULT_WRITE_TIMEOUT`](super::DEFAULT_WRITE_TIMEOUT)). Pass
    /// `None` to disable.
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.write_timeout = timeout;
        self
    }

    /// How long a graceful shutdown waits for in-flight requests and open WebSockets before
    /// it closes the remaining connections. WebSockets still open then get a close frame
    /// with 1001 (going away) and up to
    /// [`WebSocketConfig::close_timeout`](asgi_ws::WebSocketConfig::close_timeout) for the
    /// client's answer; apps that want to end them sooner watch the scope's `shutdown`
    /// signal, which fires when the drain starts. Connections with no request in flight
    /// (idle, silent, or with a request head not yet complete) are closed when the drain
    /// starts, within a second; responses in flight over HTTP/1.1 carry
    /// `Connection: close`, HTTP/2 connections get a GOAWAY.
    ///
    /// Default is 30 seconds ([`DEFAULT_DRAIN_TIMEOUT`](super::DEFAULT_DRAIN_TIMEOUT)). Pass `None` to wait as long as it
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
    /// ([`forwarded_allow_ips`](Builder::forwarded_allow_ips)): the server applies them as
    /// the [`ProxyHeaders`](crate::middleware::proxy_headers::ProxyHeaders) middleware
    /// would, outside the app, so scopes get the forwarded `client`, `scheme` and `host`,
    /// and the access log names the forwarded client.
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

    /// Serves HTTPS (and WSS) with these certificate files and settings, on whatever the
    /// server listens on: ALPN offers `h2` and `http/1.1`, scopes get scheme `https`/`wss`
    /// and the ASGI `tls` extension, and the WSGI environ `wsgi.url_scheme` `https` and
    /// `HTTPS=on`.
    ///
    /// The files are read before lifespan startup: a missing or bad certificate or key makes
    /// [`Server::serve`](super::Server::serve) return an error
    /// ([`ServerError::is_tls`](super::ServerError::is_tls)) before anything is bound.
    /// SIGHUP (with [`handle_signals`](Builder::handle_signals) on) and
    /// [`ServerHandle::reload_tls`](super::ServerHandle::reload_tls) read them again.
    ///
    /// Default is no TLS.
    pub fn tls(mut self, config: TlsConfig) -> Self {
        self.config.tls = Some(config);
        self
    }
}
