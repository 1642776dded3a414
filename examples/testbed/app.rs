//! The testbed app: one route per server behaviour worth poking at, written with raw ASGI
//! events (no router, no helpers), so that what the server does is all there is.
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /` | `Hello, world!` |
//! | any method, `/wsgi/...` | the blocking WSGI testbed app, mounted at `/wsgi` (see [`served_app`]) |
//! | any method, `/scope/...` | the scope as the server gave it, as JSON |
//! | `POST /echo` | the request body, streamed back chunk by chunk as it arrives |
//! | `GET /bytes/<n>` | `n` bytes, in 64 KiB body events |
//! | `POST /upload` | `{"bytes": N}`, counting the body as it streams |
//! | `GET /sse?n=N&interval_ms=M` | `N` server-sent events, ends early on server shutdown |
//! | `GET /trailers` | a body and an `x-checksum` trailer |
//! | `GET /panic` | panics before the response |
//! | `GET /error` | fails before the response |
//! | `GET /error-after-start` | fails after the start and one body chunk |
//! | `GET /sleep/<ms>` | answers after `ms` milliseconds |
//! | `GET /wait-disconnect` | never answers; counts the `http.disconnect` it gets |
//! | `GET /stats` | `{"disconnects": N, "inflight": N}` (`inflight` leaves out `/stats`) |
//! | `GET /state` | what lifespan startup stored, proving the state reaches requests |
//! | WebSocket `/ws/echo` | accepts, then sends every text and binary message back until the client closes |
//! | WebSocket `/ws/deny` | denies with `401 Unauthorized` and the body `denied` (`websocket.http.response`) |
//! | WebSocket `/ws/close` | closes before accepting: the client gets `403 Forbidden` |
//! | WebSocket `/ws/subprotocol` | accepts with the first subprotocol the client offered |
//! | WebSocket `/ws/error` | fails before accepting: `500` |
//! | WebSocket `/ws/panic` | panics before accepting: `500` |
//! | WebSocket `/scope/...` | accepts (with the first offered subprotocol) and sends the scope as JSON in its first text message |
//! | plain HTTP `/ws/...` | `426 Upgrade Required`: these routes speak WebSocket |
//!
//! Lifespan startup stores a [`Greeting`]; with `fail_startup` it answers
//! `lifespan.startup.failed` instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use asgi::core::async_trait;
use asgi::core::bytes::Bytes;
use asgi::core::http::header::{
    CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, TRAILER, UPGRADE,
};
use asgi::core::http::{HeaderMap, Method, StatusCode};
use asgi::core::{HttpScope, LifespanScope, WebSocketScope};
use asgi::prelude::*;
use asgi::ws::{Message, WebSocket};

/// The size of the body events of `/bytes/<n>`.
const BYTES_CHUNK: usize = 64 * 1024;

/// What lifespan startup stores in the state; `/state` shows it.
#[derive(Debug, Clone)]
pub(crate) struct Greeting(pub(crate) String);

#[derive(Debug, Default)]
struct Stats {
    disconnects: AtomicU64,
    inflight: AtomicI64,
}

/// Counts a request in flight while it lives.
struct InFlight(Arc<Stats>);

impl InFlight {
    fn new(stats: &Arc<Stats>) -> Self {
        stats.inflight.fetch_add(1, Ordering::SeqCst);
        InFlight(stats.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The testbed app. See the module docs for its routes.
#[derive(Debug, Clone)]
pub(crate) struct Testbed {
    stats: Arc<Stats>,
    fail_startup: bool,
}

impl Testbed {
    /// The app; with `fail_startup`, its lifespan startup fails.
    pub(crate) fn new(fail_startup: bool) -> Self {
        Testbed {
            stats: Arc::new(Stats::default()),
            fail_startup,
        }
    }
}

/// The testbed as the example serves it: PEP 3333's side by side with ASGI's in one server.
///
/// [`asgi::wsgi::testbed::testbed`] (`/hello`, `/environ/...`, `/echo`, `/upload`,
/// `/bytes/<n>`), run on the blocking pool by [`WsgiToAsgi`](asgi::wsgi::WsgiToAsgi), is
/// mounted at `/wsgi`, so it sees `SCRIPT_NAME` `/wsgi` and `PATH_INFO` below it. Every other
/// request and WebSocket goes to [`Testbed`] with the scope exactly as the server built it
/// (`/scope/...` shows it untouched); the mount runs the lifespan of its fallback, so the
/// [`Testbed`]'s lifespan is the server's (the WSGI side has none).
pub(crate) fn served_app(fail_startup: bool) -> asgi::server::mount::Mount {
    asgi::server::mount::Mount::new()
        .mount(
            "/wsgi",
            asgi::wsgi::WsgiToAsgi::new(asgi::wsgi::testbed::testbed),
        )
        .fallback(Testbed::new(fail_startup))
}

#[async_trait]
impl App for Testbed {
    async fn call(&self, scope: Scope, receive: Receiver, send: Sender) -> Result<(), Error> {
        match scope {
            Scope::Lifespan(lifespan) => self.lifespan(lifespan, receive, send).await,
            Scope::Http(http) => self.http(http, receive, send).await,
            Scope::WebSocket(ws) => websocket(ws, receive, send).await,
            _ => Ok(()),
        }
    }
}

impl Testbed {
    async fn lifespan(
        &self,
        scope: LifespanScope,
        mut receive: Receiver,
        mut send: Sender,
    ) -> Result<(), Error> {
        loop {
            match receive.recv().await {
                ReceiveEvent::LifespanStartup if self.fail_startup => {
                    let message = "TESTBED_STARTUP_FAIL is set".to_owned();
                    send.send(SendEvent::LifespanStartupFailed { message })
                        .await?;
                    return Ok(());
                }
                ReceiveEvent::LifespanStartup => {
                    scope
                        .state
                        .insert(Greeting("hello from lifespan startup".to_owned()))?;
                    send.send(SendEvent::LifespanStartupComplete).await?;
                }
                ReceiveEvent::LifespanShutdown => {
                    send.send(SendEvent::LifespanShutdownComplete).await?;
                    return Ok(());
                }
                _ => return Ok(()),
            }
        }
    }

    async fn http(
        &self,
        scope: Box<HttpScope>,
        mut receive: Receiver,
        mut send: Sender,
    ) -> Result<(), Error> {
        // Routes are matched below the root path, where a proxy mounts the app.
        let path = scope
            .path
            .strip_prefix(scope.root_path.as_str())
            .unwrap_or(&scope.path)
            .to_owned();
        if path == "/stats" {
            let stats = serde_json::json!({
                "disconnects": self.stats.disconnects.load(Ordering::SeqCst),
                "inflight": self.stats.inflight.load(Ordering::SeqCst),
            });
            return json(&mut send, &stats).await;
        }
        let _inflight = InFlight::new(&self.stats);
        if path.starts_with("/scope/") {
            let body = serde_json::to_vec(&Scope::from(scope)).map_err(Error::new)?;
            return respond(&mut send, StatusCode::OK, "application/json", body).await;
        }
        let get = scope.method == Method::GET;
        let post = scope.method == Method::POST;
        if path.starts_with("/ws/") {
            return upgrade_required(&mut send).await;
        }
        match path.as_str() {
            "/" if get => respond(&mut send, StatusCode::OK, "text/plain", "Hello, world!").await,
            "/echo" if post => echo(&mut receive, &mut send).await,
            "/upload" if post => upload(&mut receive, &mut send).await,
            "/sse" if get => sse(&scope, &mut send).await,
            "/trailers" if get => trailers(&mut send).await,
            "/panic" if get => panic!("the testbed panics on purpose"),
            "/error" if get => Err(Error::msg("the testbed fails on purpose")),
            "/error-after-start" if get => {
                send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
                    .await?;
                send.send(SendEvent::response_body("partial", true)).await?;
                Err(Error::msg("the testbed fails on purpose after the start"))
            }
            "/wait-disconnect" if get => self.wait_disconnect(&mut receive).await,
            "/state" if get => {
                let greeting = scope.state.get::<Greeting>().map(|g| g.0.clone());
                json(&mut send, &serde_json::json!({ "greeting": greeting })).await
            }
            _ if get && path.starts_with("/bytes/") => match path["/bytes/".len()..].parse() {
                Ok(n) => bytes(&mut send, n).await,
                Err(_) => not_found(&mut send).await,
            },
            _ if get && path.starts_with("/sleep/") => match path["/sleep/".len()..].parse() {
                Ok(ms) => {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    let text = format!("slept {ms} ms");
                    respond(&mut send, StatusCode::OK, "text/plain", text).await
                }
                Err(_) => not_found(&mut send).await,
            },
            _ => not_found(&mut send).await,
        }
    }

    async fn wait_disconnect(&self, receive: &mut Receiver) -> Result<(), Error> {
        loop {
            if let ReceiveEvent::HttpDisconnect = receive.recv().await {
                self.stats.disconnects.fetch_add(1, Ordering::SeqCst);
                return Ok(());
            }
        }
    }
}

async fn respond(
    send: &mut Sender,
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Result<(), Error> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    send.send(SendEvent::response_start(status, headers))
        .await?;
    send.send(SendEvent::response_body(body, false)).await?;
    Ok(())
}

async fn json(send: &mut Sender, value: &serde_json::Value) -> Result<(), Error> {
    let body = serde_json::to_vec(value).map_err(Error::new)?;
    respond(send, StatusCode::OK, "application/json", body).await
}

async fn not_found(send: &mut Sender) -> Result<(), Error> {
    respond(send, StatusCode::NOT_FOUND, "text/plain", "Not Found").await
}

async fn echo(receive: &mut Receiver, send: &mut Sender) -> Result<(), Error> {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    send.send(SendEvent::response_start(StatusCode::OK, headers))
        .await?;
    loop {
        match receive.recv().await {
            ReceiveEvent::HttpRequest { body, more_body } => {
                send.send(SendEvent::response_body(body, more_body)).await?;
                if !more_body {
                    return Ok(());
                }
            }
            _ => return Err(Error::disconnected()),
        }
    }
}

async fn upload(receive: &mut Receiver, send: &mut Sender) -> Result<(), Error> {
    let mut total = 0usize;
    loop {
        match receive.recv().await {
            ReceiveEvent::HttpRequest { body, more_body } => {
                total += body.len();
                if !more_body {
                    break;
                }
            }
            _ => return Err(Error::disconnected()),
        }
    }
    json(send, &serde_json::json!({ "bytes": total })).await
}

async fn bytes(send: &mut Sender, n: usize) -> Result<(), Error> {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
    send.send(SendEvent::response_start(StatusCode::OK, headers))
        .await?;
    let chunk = Bytes::from(vec![b'x'; BYTES_CHUNK.min(n)]);
    let mut left = n;
    loop {
        let size = left.min(BYTES_CHUNK);
        left -= size;
        send.send(SendEvent::response_body(chunk.slice(..size), left > 0))
            .await?;
        if left == 0 {
            return Ok(());
        }
    }
}

/// The value of `key` in a query string, if it is there and parses.
fn query_param(query: &[u8], key: &str) -> Option<u64> {
    std::str::from_utf8(query)
        .ok()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
}

async fn sse(scope: &HttpScope, send: &mut Sender) -> Result<(), Error> {
    let n = query_param(&scope.query_string, "n").unwrap_or(10);
    let interval =
        Duration::from_millis(query_param(&scope.query_string, "interval_ms").unwrap_or(100));
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    send.send(SendEvent::response_start(StatusCode::OK, headers))
        .await?;
    let shutdown = scope.shutdown.clone();
    for i in 0..n {
        let event = format!("data: {i}\n\n");
        send.send(SendEvent::response_body(event, true)).await?;
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shutdown.wait() => {
                send.send(SendEvent::response_body("event: shutdown\ndata: bye\n\n", false)).await?;
                return Ok(());
            }
        }
    }
    send.send(SendEvent::response_body("", false)).await?;
    Ok(())
}

/// FNV-1a, 32 bits: a checksum small enough to write here.
fn checksum(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5, |hash, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

async fn trailers(send: &mut Sender) -> Result<(), Error> {
    let parts: [&'static [u8]; 2] = [b"hello, ", b"trailers"];
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    // HTTP/1.1 sends only the trailer fields the head announces.
    headers.insert(TRAILER, HeaderValue::from_static("x-checksum"));
    send.send(SendEvent::HttpResponseStart {
        status: StatusCode::OK,
        headers,
        trailers: true,
    })
    .await?;
    send.send(SendEvent::response_body(parts[0], true)).await?;
    send.send(SendEvent::response_body(parts[1], false)).await?;
    let sum = checksum(&[parts[0], parts[1]].concat());
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", HeaderValue::from(sum));
    send.send(SendEvent::HttpResponseTrailers {
        headers: trailers,
        more_trailers: false,
    })
    .await?;
    Ok(())
}

/// The WebSocket routes (see the module docs), written with the [`WebSocket`] helper.
async fn websocket(
    scope: Box<WebSocketScope>,
    receive: Receiver,
    send: Sender,
) -> Result<(), Error> {
    let path = scope
        .path
        .strip_prefix(scope.root_path.as_str())
        .unwrap_or(&scope.path)
        .to_owned();
    let first_offer = scope.subprotocols.first().cloned();
    if path.starts_with("/scope/") {
        let json = serde_json::to_string(&Scope::from(scope.clone())).map_err(Error::new)?;
        let mut ws = WebSocket::new(scope, receive, send);
        // Clients expect one of the subprotocols they offered (or fail the handshake).
        match first_offer {
            Some(subprotocol) => ws.accept_subprotocol(subprotocol).await?,
            None => ws.accept().await?,
        }
        ws.send_text(json).await?;
        return until_closed(&mut ws).await;
    }
    let mut ws = WebSocket::new(scope, receive, send);
    match path.as_str() {
        "/ws/echo" => {
            ws.accept().await?;
            loop {
                match ws.recv().await? {
                    Message::Text(text) => ws.send_text(text).await?,
                    Message::Binary(bytes) => ws.send_binary(bytes).await?,
                    _ => return Ok(()),
                }
            }
        }
        "/ws/deny" => {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            ws.deny(StatusCode::UNAUTHORIZED, headers, "denied").await
        }
        "/ws/subprotocol" => {
            match first_offer {
                Some(subprotocol) => ws.accept_subprotocol(subprotocol).await?,
                None => ws.accept().await?,
            }
            until_closed(&mut ws).await
        }
        "/ws/error" => Err(Error::msg("the testbed fails on purpose before accepting")),
        "/ws/panic" => panic!("the testbed panics on purpose before accepting"),
        // `/ws/close` and every other path: closing before accepting answers 403.
        _ => ws.close(1000, "").await,
    }
}

/// Waits for the client to close, ignoring its messages.
async fn until_closed(ws: &mut WebSocket) -> Result<(), Error> {
    loop {
        if let Message::Close { .. } = ws.recv().await? {
            return Ok(());
        }
    }
}

/// The answer to a plain HTTP request for a WebSocket route.
async fn upgrade_required(send: &mut Sender) -> Result<(), Error> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    send.send(SendEvent::response_start(
        StatusCode::UPGRADE_REQUIRED,
        headers,
    ))
    .await?;
    send.send(SendEvent::response_body(
        "this route speaks WebSocket: connect with a WebSocket client\n",
        false,
    ))
    .await?;
    Ok(())
}
