//! [`TestClient`]: call an [`App`] in-process, with no socket, as Starlette's `TestClient`
//! does.
//!
//! The client builds the scope a server would (see [`TestClient`] for its keys), runs the
//! app in a task of its own, and talks to it through bounded channels, checking every event
//! the app sends against the protocol. It covers:
//!
//! - requests with a method, a target (`/path?query`), headers and a body (bytes, JSON, or a
//!   stream of chunks delivered as the app reads them): [`TestClient::send`] gives a
//!   [`TestResponse`] with the status, headers, body and trailers;
//! - streamed responses read event by event, and a client that disconnects mid-response:
//!   [`TestClient::stream`] gives a [`TestStream`];
//! - WebSocket sessions, accepted or denied: [`TestClient::websocket`];
//! - lifespan startup and shutdown around a test, with the state shared into every scope:
//!   [`TestClient::with_lifespan`] and [`TestClient::shutdown`].
//!
//! A protocol mistake by the app (a body before the start, a second start, a message after
//! the end) is an error of the call that observed it, naming the event, even when the app
//! ignored the error `send` gave it. An error the app returns, or a panic, is an error of the
//! call too (unless [`raise_app_errors`](TestClient::raise_app_errors) is off).

mod exchange;
mod stream;
mod websocket;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use asgi_core::bytes::{Bytes, BytesMut};
use asgi_core::extensions::{self, Extensions};
use asgi_core::host::lifespan::{Lifespan, Startup};
use asgi_core::http::header::{self, AsHeaderName};
use asgi_core::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use asgi_core::{App, Error, HttpScope, Scope, SendEvent, ServerAddr, State};
use futures_util::stream::{Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::file::FileChunks;
use crate::handler::IntoApp;
use crate::path::{Target, split_target};
use exchange::{BodyFeed, TestExchange, within};

pub use stream::TestStream;
pub use websocket::{ConnectError, WebSocketRequest, WebSocketSession};

/// What [`WebSocketSession::receive`] gives: the same [`asgi_ws::Message`] that an app's
/// [`WebSocket::recv`](asgi_ws::WebSocket::recv) gives, seen from the client's side.
pub use asgi_ws::Message;

/// `scope["client"]` of every request: `127.0.0.1:50000`. Starlette's test client says
/// `["testclient", 50000]`; a scope's client here is a socket address, so the host is the
/// loopback address.
pub const CLIENT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 50000);

/// `scope["server"]` of every request: `127.0.0.1:80`. Starlette says `["testserver", 80]`;
/// a scope's server here is a socket address, so the host is the loopback address. The
/// `host` header still says `testserver`, as Starlette's does.
pub const SERVER_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 80);

/// The `host` header the client sends unless a request sets its own.
pub const HOST: &str = "testserver";

/// How long the client waits for the app at each step (an event, reading a request event,
/// returning, lifespan startup and shutdown) before it fails the call and stops the app.
///
/// Default is 30 seconds: far longer than any in-process app takes when it works, so that
/// a stuck app fails its test instead of hanging it. Change it with
/// [`TestClient::timeout`]; pass `None` to wait forever.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest response body [`TestClient::send`] collects, and the largest file it reads
/// for an `http.response.pathsend`.
///
/// Default is 64 MiB: more than a test needs, and a bound so that an app that streams
/// forever fails the call instead of filling memory. Change it with
/// [`TestClient::max_response_body`]; pass `None` for no limit. Read larger bodies chunk by
/// chunk with [`TestClient::stream`].
pub const DEFAULT_MAX_RESPONSE_BODY: usize = 64 * 1024 * 1024;

/// The ASGI extensions every scope of the test client declares: trailers, path send and the
/// WebSocket denial response, all of which it handles.
const SUPPORTED_EXTENSIONS: [&str; 3] = [
    extensions::HTTP_RESPONSE_TRAILERS,
    extensions::HTTP_RESPONSE_PATHSEND,
    extensions::WEBSOCKET_HTTP_RESPONSE,
];

/// Calls an [`App`] in-process, like Starlette's `TestClient`: requests, streamed
/// responses, WebSockets and lifespan, with no socket.
///
/// # The scope
///
/// Each call builds the scope a server would: `http_version` `1.1`; `scheme` `http` (`ws`
/// for WebSockets); `path`, `raw_path` and `query_string` from the target, as the server
/// splits them ([`split_target`]); `root_path` empty; `client` [`CLIENT_ADDR`]; `server`
/// [`SERVER_ADDR`]; `extensions` declaring `http.response.trailers`,
/// `http.response.pathsend` and `websocket.http.response`; `state` from the lifespan; the
/// request's headers, plus `host: testserver`, `user-agent: testclient` and
/// `content-length` (or `transfer-encoding: chunked` for a streamed body) unless the
/// request sets them.
///
/// # Responses
///
/// A `HEAD` response's body is dropped, as an HTTP client never receives one. An
/// `http.response.pathsend` is answered by reading the file (which must be absolute).
///
/// # Backpressure
///
/// At most 16 events wait in each direction between the client and the app: an app that
/// streams faster than the test reads waits in `send`, as it would behind a slow client.
///
/// # Panics
///
/// Each call runs the app in a task of its own and bounds its waits with Tokio timers, so
/// calls panic outside a Tokio runtime, or in one built without the time driver
/// (`#[tokio::test]` has both; a hand-built runtime needs `enable_all()`).
///
/// # Example
///
/// ```
/// use asgi_core::{Error, Receiver, Scope, Sender};
/// use asgi_http::response::Response;
/// use asgi_http::test_client::{TestClient, TestRequest};
///
/// async fn app(scope: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
///     let Scope::Http(http) = scope else { return Ok(()) };
///     Response::json(&serde_json::json!({ "method": http.method.as_str() }))?
///         .send(&mut send)
///         .await
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let client = TestClient::new(app);
/// let response = client.send(TestRequest::put("/things/1")).await?;
/// assert_eq!(response.status(), 200);
/// assert_eq!(response.header("content-type"), Some("application/json"));
/// assert_eq!(response.json::<serde_json::Value>()?["method"], "PUT");
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// ```
pub struct TestClient {
    app: Arc<dyn App>,
    state: State,
    lifespan: Option<Lifespan>,
    timeout: Option<Duration>,
    max_response_body: Option<usize>,
    raise_app_errors: bool,
}

impl fmt::Debug for TestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestClient")
            .field("state", &self.state)
            .field("lifespan", &self.lifespan.is_some())
            .field("timeout", &self.timeout)
            .field("max_response_body", &self.max_response_body)
            .field("raise_app_errors", &self.raise_app_errors)
            .finish_non_exhaustive()
    }
}

impl TestClient {
    /// A client for `app`, with no lifespan: scopes get an empty state. `app` is an [`App`]
    /// or a request handler (`async fn(Request) -> impl IntoResponse`, see
    /// [`IntoApp`]).
    pub fn new<M>(app: impl IntoApp<M>) -> Self {
        TestClient {
            app: Arc::new(app.into_app()),
            state: State::empty(),
            lifespan: None,
            timeout: Some(DEFAULT_TIMEOUT),
            max_response_body: Some(DEFAULT_MAX_RESPONSE_BODY),
            raise_app_errors: true,
        }
    }

    /// A client for `app` after running its lifespan startup (with
    /// [`Lifespan`], as a server does): the state the app
    /// filled is shared into every scope. Call [`shutdown`](TestClient::shutdown) at the end
    /// of the test to run the lifespan shutdown; dropping the client skips the wait for it.
    ///
    /// An app without lifespan support (it returns, or fails, on the lifespan scope) gets a
    /// client with an empty state, as a server goes on without lifespan.
    ///
    /// # Errors
    ///
    /// When the app answers `lifespan.startup.failed` (the error has its message), or does
    /// not answer within [`DEFAULT_TIMEOUT`].
    pub async fn with_lifespan<M>(app: impl IntoApp<M>) -> Result<Self, Error> {
        let mut client = TestClient::new(app);
        let startup = within(
            client.timeout,
            "to answer lifespan.startup",
            Lifespan::startup(client.app.clone()),
        )
        .await?;
        match startup {
            Startup::Complete(lifespan) => {
                client.state = lifespan.state();
                client.lifespan = Some(lifespan);
                Ok(client)
            }
            Startup::Failed { message } => {
                Err(Error::msg(format!("lifespan startup failed: {message}")))
            }
            // No lifespan support: go on without it, as a server does.
            _ => Ok(client),
        }
    }

    /// Runs the lifespan shutdown, if [`with_lifespan`](TestClient::with_lifespan) ran a
    /// startup, and waits for the app's answer.
    ///
    /// # Errors
    ///
    /// The app's `lifespan.shutdown.failed` message, its error or panic, or a timeout.
    pub async fn shutdown(self) -> Result<(), Error> {
        match self.lifespan {
            Some(lifespan) => {
                within(
                    self.timeout,
                    "to answer lifespan.shutdown",
                    lifespan.shutdown(),
                )
                .await?
            }
            None => Ok(()),
        }
    }

    /// How long to wait for the app at each step; `None` waits forever. Default is
    /// [`DEFAULT_TIMEOUT`].
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest response body [`send`](TestClient::send) collects; `None` for no limit.
    /// Default is [`DEFAULT_MAX_RESPONSE_BODY`].
    pub fn max_response_body(mut self, limit: Option<usize>) -> Self {
        self.max_response_body = limit;
        self
    }

    /// Whether an error the app returns (or a panic) is an error of the call (`true`, the
    /// default, as Starlette's `raise_server_exceptions`), or, when it comes before
    /// `http.response.start`, a `500 Internal Server Error` response, as a server answers.
    /// Protocol mistakes are errors either way.
    pub fn raise_app_errors(mut self, raise: bool) -> Self {
        self.raise_app_errors = raise;
        self
    }

    /// The lifespan state shared into every scope.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Sends a `GET` for `target` (`/path?query`).
    ///
    /// # Errors
    ///
    /// As [`send`](TestClient::send).
    pub async fn get(&self, target: &str) -> Result<TestResponse, Error> {
        self.send(TestRequest::get(target)).await
    }

    /// Sends `request` and collects the whole response. The call returns once the app
    /// returned.
    ///
    /// # Errors
    ///
    /// - a protocol mistake by the app (`is_protocol()`), even if the app ignored it;
    /// - the app's error or panic (`is_panic()`), unless
    ///   [`raise_app_errors`](TestClient::raise_app_errors) is off and it came before the
    ///   response started;
    /// - the app returned without starting or without completing the response;
    /// - the body is larger than [`max_response_body`](TestClient::max_response_body), a
    ///   path-sent file cannot be read, or the app did not answer in time;
    /// - the request has an invalid header or a JSON body that did not serialize.
    pub async fn send(&self, request: TestRequest) -> Result<TestResponse, Error> {
        let head_only = request.method == Method::HEAD;
        let mut exchange = self.start(request)?;
        let mut head: Option<(StatusCode, HeaderMap, bool)> = None;
        let mut body = BytesMut::new();
        let mut trailers = HeaderMap::new();
        let mut awaiting_trailers = false;
        loop {
            match exchange.next().await? {
                Some(SendEvent::HttpResponseStart {
                    status,
                    headers,
                    trailers,
                }) => head = Some((status, headers, trailers)),
                Some(SendEvent::HttpResponseBody {
                    body: chunk,
                    more_body,
                }) => {
                    self.check_body_size(body.len(), chunk.len() as u64)?;
                    body.extend_from_slice(&chunk);
                    if !more_body {
                        awaiting_trailers = head.as_ref().is_some_and(|h| h.2);
                        if !awaiting_trailers {
                            break;
                        }
                    }
                }
                Some(SendEvent::HttpResponsePathsend { path }) => {
                    let file = self.read_pathsend(&path, body.len()).await?;
                    body.extend_from_slice(&file);
                    awaiting_trailers = head.as_ref().is_some_and(|h| h.2);
                    if !awaiting_trailers {
                        break;
                    }
                }
                Some(SendEvent::HttpResponseTrailers {
                    headers,
                    more_trailers,
                }) => {
                    extend(&mut trailers, headers);
                    if !more_trailers {
                        break;
                    }
                }
                Some(other) => return Err(unexpected(&other)),
                None => {
                    let result = exchange.finish().await;
                    return match head {
                        None => match result {
                            Err(e) if self.raise_app_errors || e.is_protocol() => Err(e),
                            Err(_) => Ok(TestResponse::internal_server_error()),
                            Ok(()) => Err(Error::msg(
                                "the app returned without sending `http.response.start`",
                            )),
                        },
                        Some(_) => {
                            result?;
                            Err(Error::msg(if awaiting_trailers {
                                "the app returned before sending its `http.response.trailers`"
                            } else {
                                "the app returned before completing the response body"
                            }))
                        }
                    };
                }
            }
        }
        match exchange.finish().await {
            Err(e) if self.raise_app_errors || e.is_protocol() => return Err(e),
            _ => {}
        }
        let Some((status, headers, _)) = head else {
            // The protocol checker admits a body only after a start.
            return Err(Error::msg(
                "the app sent a body without `http.response.start`",
            ));
        };
        Ok(TestResponse {
            status,
            headers,
            body: if head_only {
                Bytes::new()
            } else {
                body.freeze()
            },
            trailers,
        })
    }

    /// Sends `request` and returns once the response has started (`http.response.start`),
    /// with a [`TestStream`] that reads the body event by event as the app sends it. The
    /// request body keeps being delivered as the app reads it.
    ///
    /// # Errors
    ///
    /// As [`send`](TestClient::send), for what happens before the response starts.
    pub async fn stream(&self, request: TestRequest) -> Result<TestStream, Error> {
        let head_only = request.method == Method::HEAD;
        let mut exchange = self.start(request)?;
        match exchange.next().await? {
            Some(SendEvent::HttpResponseStart {
                status,
                headers,
                trailers,
            }) => Ok(TestStream::new(
                exchange,
                status,
                headers,
                trailers,
                head_only,
                self.max_response_body,
                self.raise_app_errors,
            )),
            Some(other) => Err(unexpected(&other)),
            None => Err(match exchange.finish().await {
                Err(e) => e,
                Ok(()) => Error::msg("the app returned without sending `http.response.start`"),
            }),
        }
    }

    /// Starts a WebSocket request for `target`; see [`WebSocketRequest`].
    pub fn websocket(&self, target: &str) -> WebSocketRequest<'_> {
        WebSocketRequest::new(self, target)
    }

    fn start(&self, request: TestRequest) -> Result<TestExchange, Error> {
        let TestRequest {
            method,
            target,
            mut headers,
            body,
            error,
        } = request;
        if let Some(error) = error {
            return Err(error);
        }
        let feed = match body {
            TestBody::Empty => {
                // As HTTP clients do: a method that carries a body says it is empty.
                let expects_body = [Method::POST, Method::PUT, Method::PATCH].contains(&method);
                if expects_body && !headers.contains_key(header::CONTENT_LENGTH) {
                    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
                }
                BodyFeed::whole(Bytes::new())
            }
            TestBody::Bytes(bytes) => {
                if !headers.contains_key(header::CONTENT_LENGTH) {
                    headers.insert(
                        header::CONTENT_LENGTH,
                        crate::response::content_length(bytes.len() as u64),
                    );
                }
                BodyFeed::whole(bytes)
            }
            TestBody::Stream(stream) => {
                if !headers.contains_key(header::CONTENT_LENGTH)
                    && !headers.contains_key(header::TRANSFER_ENCODING)
                {
                    headers.insert(
                        header::TRANSFER_ENCODING,
                        HeaderValue::from_static("chunked"),
                    );
                }
                BodyFeed::chunks(stream)
            }
        };
        let target = split_test_target(&target);
        let mut scope = HttpScope::new(method, target.path);
        scope.raw_path = target.raw_path;
        scope.query_string = target.query_string;
        add_default_headers(&mut headers);
        scope.headers = headers;
        scope.client = Some(CLIENT_ADDR);
        scope.server = Some(ServerAddr::Tcp(SERVER_ADDR));
        scope.extensions = Extensions::from_static(&SUPPORTED_EXTENSIONS);
        scope.state = self.state.clone();
        Ok(TestExchange::start(
            self.app.clone(),
            Scope::from(scope),
            Some(feed),
            self.timeout,
        ))
    }

    fn check_body_size(&self, have: usize, more: u64) -> Result<(), Error> {
        match self.max_response_body {
            Some(limit) if (have as u64).saturating_add(more) > limit as u64 => {
                Err(Error::msg(format!(
                    "the response body is larger than the test client's max_response_body of {limit} bytes"
                )))
            }
            _ => Ok(()),
        }
    }

    async fn read_pathsend(&self, path: &std::path::Path, have: usize) -> Result<Bytes, Error> {
        read_pathsend(path, have, self.max_response_body).await
    }
}

/// Reads the file of an `http.response.pathsend`, as a server would send it.
async fn read_pathsend(
    path: &std::path::Path,
    have: usize,
    limit: Option<usize>,
) -> Result<Bytes, Error> {
    if !path.is_absolute() {
        return Err(Error::msg(format!(
            "`http.response.pathsend` needs an absolute path, got {}",
            path.display()
        )));
    }
    let mut chunks = FileChunks::open(path).await?;
    if let Some(limit) = limit {
        if (have as u64).saturating_add(chunks.remaining()) > limit as u64 {
            return Err(Error::msg(format!(
                "the response body is larger than the test client's max_response_body of {limit} bytes"
            )));
        }
    }
    let mut file = BytesMut::new();
    while let Some(chunk) = chunks.next_chunk().await {
        file.extend_from_slice(&chunk?);
    }
    Ok(file.freeze())
}

/// Splits a test target as a server splits a request target; a missing leading `/` is
/// added.
fn split_test_target(target: &str) -> Target {
    if target.starts_with('/') {
        split_target(target.as_bytes())
    } else {
        split_target(format!("/{target}").as_bytes())
    }
}

fn add_default_headers(headers: &mut HeaderMap) {
    if !headers.contains_key(header::HOST) {
        headers.insert(header::HOST, HeaderValue::from_static(HOST));
    }
    if !headers.contains_key(header::USER_AGENT) {
        headers.insert(header::USER_AGENT, HeaderValue::from_static("testclient"));
    }
}

fn extend(into: &mut HeaderMap, from: HeaderMap) {
    let mut last: Option<HeaderName> = None;
    for (name, value) in from {
        // `HeaderMap`'s owned iterator names a header once, then gives `None` for its
        // further values.
        if let Some(name) = name {
            last = Some(name);
        }
        if let Some(name) = &last {
            into.append(name.clone(), value);
        }
    }
}

fn unexpected(event: &SendEvent) -> Error {
    Error::msg(format!(
        "unexpected ASGI event `{}` from the app",
        event.type_name()
    ))
}

enum TestBody {
    Empty,
    Bytes(Bytes),
    Stream(futures_util::stream::BoxStream<'static, Bytes>),
}

/// A request for [`TestClient::send`] and [`TestClient::stream`]: method, target
/// (`/path?query`), headers and body.
///
/// # Example
///
/// ```
/// use asgi_core::http::Method;
/// use asgi_http::test_client::TestRequest;
///
/// let request = TestRequest::post("/items?draft=1")
///     .header("x-token", "secret")
///     .json(&serde_json::json!({ "name": "lamp" }));
/// let other = TestRequest::new(Method::OPTIONS, "/items");
/// # let _ = (request, other);
/// ```
pub struct TestRequest {
    method: Method,
    target: String,
    headers: HeaderMap,
    body: TestBody,
    // The first invalid header or unserializable body, reported by the call.
    error: Option<Error>,
}

impl fmt::Debug for TestRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestRequest")
            .field("method", &self.method)
            .field("target", &self.target)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl TestRequest {
    /// A request with `method` for `target`: a path with an optional query
    /// (`/search?q=rust`), percent-encoded as on the wire. A missing leading `/` is added.
    pub fn new(method: Method, target: &str) -> Self {
        TestRequest {
            method,
            target: target.to_owned(),
            headers: HeaderMap::new(),
            body: TestBody::Empty,
            error: None,
        }
    }

    /// A `GET` request.
    pub fn get(target: &str) -> Self {
        TestRequest::new(Method::GET, target)
    }

    /// A `HEAD` request.
    pub fn head(target: &str) -> Self {
        TestRequest::new(Method::HEAD, target)
    }

    /// A `POST` request.
    pub fn post(target: &str) -> Self {
        TestRequest::new(Method::POST, target)
    }

    /// A `PUT` request.
    pub fn put(target: &str) -> Self {
        TestRequest::new(Method::PUT, target)
    }

    /// A `PATCH` request.
    pub fn patch(target: &str) -> Self {
        TestRequest::new(Method::PATCH, target)
    }

    /// A `DELETE` request.
    pub fn delete(target: &str) -> Self {
        TestRequest::new(Method::DELETE, target)
    }

    /// Adds a header (repeat the call for repeated headers). An invalid name or value makes
    /// the call fail with an error that says so.
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
            (Err(e), _) => self.fail(Error::new(e.into())),
            (_, Err(e)) => self.fail(Error::new(e.into())),
        }
        self
    }

    /// The body, delivered as one final `http.request` event, with its `content-length`.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = TestBody::Bytes(body.into());
        self
    }

    /// `value` as a JSON body, with `content-type: application/json`.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => {
                self.headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                self.body = TestBody::Bytes(body.into());
            }
            Err(e) => self.fail(Error::new(e)),
        }
        self
    }

    /// A body streamed from `chunks`, as a server delivers a chunked upload: one
    /// `http.request` event with `more_body` set per chunk, sent as soon as the stream yields
    /// it, and an empty final event when the stream ends. Chunks are pulled only when the
    /// app's queue has room, so a slow app slows the stream down. The request says
    /// `transfer-encoding: chunked` unless a `content-length` header is set.
    pub fn body_stream<S>(mut self, chunks: S) -> Self
    where
        S: Stream<Item = Bytes> + Send + 'static,
    {
        self.body = TestBody::Stream(chunks.boxed());
        self
    }

    fn fail(&mut self, error: Error) {
        self.error.get_or_insert(error);
    }
}

/// A whole response collected by [`TestClient::send`].
#[derive(Debug, Clone)]
pub struct TestResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    trailers: HeaderMap,
}

impl TestResponse {
    fn internal_server_error() -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        TestResponse {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            headers,
            body: Bytes::from_static(b"Internal Server Error"),
            trailers: HeaderMap::new(),
        }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The first value of the header `name`, if it is there and visible ASCII.
    pub fn header(&self, name: impl AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body.
    pub fn bytes(&self) -> &Bytes {
        &self.body
    }

    /// The body as text; invalid UTF-8 becomes U+FFFD.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body deserialized from JSON.
    ///
    /// # Errors
    ///
    /// When the body is not JSON of type `T`; the source is the [`serde_json::Error`].
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(Error::new)
    }

    /// The trailers (`http.response.trailers`), empty when the app sent none.
    pub fn trailers(&self) -> &HeaderMap {
        &self.trailers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_without_leading_slash_gets_one() {
        let target = split_test_target("users/7?x=1");
        assert_eq!(target.path, "/users/7");
        assert_eq!(&target.query_string[..], b"x=1");
    }

    #[test]
    fn default_headers_do_not_override_the_request_s_own() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("example.com"));
        add_default_headers(&mut headers);
        assert_eq!(headers[header::HOST], "example.com");
        assert_eq!(headers[header::USER_AGENT], "testclient");
    }

    #[test]
    fn extend_keeps_repeated_values_in_order() {
        let mut into = HeaderMap::new();
        into.insert("x-a", HeaderValue::from_static("0"));
        let mut from = HeaderMap::new();
        from.append("x-a", HeaderValue::from_static("1"));
        from.append("x-a", HeaderValue::from_static("2"));
        from.append("x-b", HeaderValue::from_static("3"));
        extend(&mut into, from);
        let a: Vec<_> = into.get_all("x-a").iter().collect();
        assert_eq!(a, ["0", "1", "2"]);
        assert_eq!(into["x-b"], "3");
    }

    #[test]
    fn invalid_header_is_kept_as_the_request_s_error() {
        let request = TestRequest::get("/")
            .header("bad name", "x")
            .header("x-ok", "fine");
        let error = request.error.as_ref().map(ToString::to_string);
        assert_eq!(
            error.as_deref(),
            Some("app error: invalid HTTP header name")
        );
        assert!(request.headers.contains_key("x-ok"));
    }

    #[test]
    fn json_body_sets_content_type() {
        let request = TestRequest::post("/").json(&serde_json::json!({"a": 1}));
        assert_eq!(request.headers[header::CONTENT_TYPE], "application/json");
        assert!(matches!(&request.body, TestBody::Bytes(b) if &b[..] == br#"{"a":1}"#));
    }
}
