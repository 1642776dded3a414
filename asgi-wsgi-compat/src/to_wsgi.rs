//! [`AsgiToWsgi`]: an ASGI [`App`] behind the synchronous [`WsgiApp`] interface.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use asgi_core::protocol::SendProtocol;
use asgi_core::{
    App, BoxError, Error, EventSink, EventSource, HttpScope, HttpVersion, ReceiveEvent, Receiver,
    Scope, SendError, SendEvent, Sender, ServerAddr, async_trait,
};
use bytes::Bytes;
use futures_util::FutureExt as _;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method};
use percent_encoding::{AsciiSet, CONTROLS};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use crate::app::WsgiApp;
use crate::body::{Body, Chunk, Chunks};
use crate::environ::{Environ, Value, Vars};
use crate::response::{HOP_BY_HOP_HEADERS, StartResponse, Status};
use crate::stream::Input;

/// How many messages wait between the async app and the WSGI thread (response events and
/// requests for body data). Small, so that an app that sends faster than the WSGI host takes
/// its response waits (backpressure) instead of piling events up.
const BRIDGE_CHANNEL_CAPACITY: usize = 8;

/// The size of the chunks in which a file sent with `http.response.pathsend` is read and
/// passed on: 64 KiB, large enough for few calls and small enough to hold a few in memory.
const PATHSEND_CHUNK_SIZE: usize = 64 * 1024;

/// Characters escaped when `raw_path` is rebuilt from the decoded `SCRIPT_NAME` and
/// `PATH_INFO`: controls, space, `%`, and what would end or split a path (`?`, `#`) or is
/// unsafe in a URL (RFC 3986 and the WHATWG path set).
const PATH_ESCAPES: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Runs an async ASGI [`App`] behind the synchronous [`WsgiApp`] interface, for code that
/// must call one from a blocking context (a WSGI host, a thread of a sync framework).
///
/// Each call builds an HTTP [`Scope`] from the environ (the reverse of
/// [`Environ::from_scope`]: `root_path` is `SCRIPT_NAME`, `path` is `SCRIPT_NAME +
/// PATH_INFO`, `raw_path` that path percent-encoded, `HTTP_*` become headers), spawns the
/// app on the given runtime, and then bridges:
///
/// - the app's `recv` reads `wsgi.input` on the WSGI thread, one chunk per `http.request`,
///   only when the app asks;
/// - `http.response.start` becomes `start_response` (before `call` returns; hop-by-hop
///   headers, which an ASGI app may set but PEP 3333 forbids, are dropped), and
///   `http.response.body` events become the returned [`Body`], yielded as they come;
///   `http.response.pathsend` streams the file; trailers are dropped (WSGI has none);
/// - once the body is complete, or the WSGI host drops the body (its client left), the app's
///   `recv` returns `http.disconnect` and its `send` fails with `Disconnected`.
///
/// Everything passes through one bounded channel of 8 messages.
///
/// # The runtime
///
/// The app runs as a task on the runtime of the [`Handle`] given to
/// [`new`](AsgiToWsgi::new), while the WSGI thread blocks waiting for its events. So the
/// WSGI side must run on a thread where blocking is allowed: a plain thread, or
/// a thread of [`WsgiToAsgi`](crate::WsgiToAsgi)'s pool, never inside an async task.
///
/// # Example
///
/// ```
/// use asgi_core::{Error, Receiver, Scope, SendEvent, Sender};
/// use asgi_wsgi_compat::{AsgiToWsgi, Environ, StartResponse, WsgiApp, Writer};
/// use http::{HeaderMap, StatusCode};
///
/// async fn hello(scope: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
///     let path = scope.path().unwrap_or_default().to_owned();
///     send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new())).await?;
///     send.send(SendEvent::response_body(format!("async says hi to {path}"), false)).await?;
///     Ok(())
/// }
///
/// let runtime = tokio::runtime::Runtime::new().unwrap();
/// let app = AsgiToWsgi::new(hello, runtime.handle().clone());
///
/// // From a blocking thread:
/// let start_response = StartResponse::from_fn(|status, _headers, _| {
///     assert_eq!(status.code(), StatusCode::OK);
///     Ok(Writer::from_fn(|_| Ok(())))
/// });
/// let body = app.call(Environ::for_request("GET", "/sync"), start_response).unwrap();
/// let bytes: Vec<u8> = body.flat_map(|chunk| chunk.unwrap()).collect();
/// assert_eq!(bytes, b"async says hi to /sync");
/// ```
///
/// # Errors
///
/// `call` fails when the environ has no valid `REQUEST_METHOD`, when the app fails or
/// returns before `http.response.start`, or when `start_response` refuses the response; the
/// body yields an error when the app fails (or returns) before its response is complete.
///
/// # Panics
///
/// `call` and the body's iteration panic when run inside an async task (they block the
/// thread).
pub struct AsgiToWsgi<A> {
    app: Arc<A>,
    handle: Handle,
}

impl<A: App> AsgiToWsgi<A> {
    /// Wraps `app`, to be run on the runtime of `handle`.
    pub fn new(app: A, handle: Handle) -> Self {
        AsgiToWsgi {
            app: Arc::new(app),
            handle,
        }
    }

    /// The wrapped app.
    pub fn get_ref(&self) -> &A {
        &self.app
    }
}

impl<A> Clone for AsgiToWsgi<A> {
    fn clone(&self) -> Self {
        AsgiToWsgi {
            app: self.app.clone(),
            handle: self.handle.clone(),
        }
    }
}

impl<A> fmt::Debug for AsgiToWsgi<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsgiToWsgi").finish_non_exhaustive()
    }
}

impl<A: App> WsgiApp for AsgiToWsgi<A> {
    fn call(&self, environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
        let (vars, input, state, extensions) = environ.into_parts();
        let mut scope = scope_from_environ(&vars)?;
        let content_length = scope
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        scope.state = state;
        scope.extensions = extensions;
        let scope = Scope::from(scope);

        let (tx, rx) = mpsc::channel(BRIDGE_CHANNEL_CAPACITY);
        let receive = Receiver::new(BridgeSource {
            tx: tx.clone(),
            pending: None,
            body_done: false,
        });
        let send = Sender::new(BridgeSink {
            tx: tx.clone(),
            protocol: SendProtocol::for_scope(&scope),
        });
        let app = self.app.clone();
        self.handle.spawn(async move {
            let result = AssertUnwindSafe(app.call(scope, receive, send))
                .catch_unwind()
                .await
                .unwrap_or_else(|payload| Err(Error::from_panic(payload)));
            // The WSGI side may have gone already; then nobody waits for the result.
            let _ = tx.send(BridgeMessage::Done(result)).await;
        });

        let mut bridge = Bridge {
            rx,
            input,
            remaining: content_length,
            input_done: false,
            trailers: false,
            file: None,
            body_ended: false,
            complete: false,
        };
        // `next_message` answers the app's demands for body data until it starts its
        // response: an app may read the whole body first.
        match bridge.next_message() {
            Step::Event(SendEvent::HttpResponseStart {
                status,
                mut headers,
                trailers,
            }) => {
                for name in HOP_BY_HOP_HEADERS {
                    if headers.remove(name).is_some() {
                        tracing::debug!(header = name, "dropped a hop-by-hop header");
                    }
                }
                bridge.trailers = trailers;
                start_response.start(Status::from(status), headers, None)?;
                Ok(Body::from_dyn(Box::new(bridge)))
            }
            // The sink's protocol check admits only the start first.
            Step::Event(other) => Err(unexpected(&other)),
            Step::Done(Err(error)) => Err(Box::new(error)),
            Step::Done(Ok(())) => {
                Err("the ASGI app returned without sending http.response.start".into())
            }
            Step::Gone => Err("the ASGI app's task was cancelled".into()),
        }
    }
}

/// What moves from the async app to the WSGI thread.
enum BridgeMessage {
    /// An event the app sent.
    Event(SendEvent),
    /// The app's `recv` wants the next request event.
    Demand(oneshot::Sender<ReceiveEvent>),
    /// The app returned (or panicked).
    Done(Result<(), Error>),
}

enum Step {
    Event(SendEvent),
    Done(Result<(), Error>),
    /// The app's task went away without a result (its runtime shut down).
    Gone,
}

/// The WSGI thread's end: answers the app's demands for body data from `wsgi.input`, and
/// yields the response body.
struct Bridge {
    rx: mpsc::Receiver<BridgeMessage>,
    input: Input,
    /// Bytes of `CONTENT_LENGTH` not yet passed on.
    remaining: Option<u64>,
    input_done: bool,
    /// The app announced trailers: they follow the body and are drained, then dropped.
    trailers: bool,
    /// A file being sent for `http.response.pathsend`.
    file: Option<File>,
    /// The last body event came (`more_body: false`, or the end of a pathsend file).
    body_ended: bool,
    complete: bool,
}

impl Bridge {
    /// The next message that is not a demand; demands are answered on the way.
    fn next_message(&mut self) -> Step {
        loop {
            match self.rx.blocking_recv() {
                Some(BridgeMessage::Event(event)) => return Step::Event(event),
                Some(BridgeMessage::Done(result)) => return Step::Done(result),
                Some(BridgeMessage::Demand(reply)) => {
                    let event = self.read_request();
                    // The app may have stopped waiting; then the event has nobody to go to.
                    let _ = reply.send(event);
                }
                None => return Step::Gone,
            }
        }
    }

    fn read_request(&mut self) -> ReceiveEvent {
        if self.input_done {
            return ReceiveEvent::HttpDisconnect;
        }
        match self.input.read_chunk() {
            Ok(chunk) => {
                if let Some(left) = &mut self.remaining {
                    *left = left.saturating_sub(chunk.len() as u64);
                }
                let more_body = !chunk.is_empty() && self.remaining != Some(0);
                self.input_done = !more_body;
                ReceiveEvent::request(chunk, more_body)
            }
            Err(error) => {
                tracing::debug!(%error, "wsgi.input failed; telling the ASGI app the client left");
                self.input_done = true;
                ReceiveEvent::HttpDisconnect
            }
        }
    }

    fn read_file(&mut self) -> Option<Chunk> {
        let file = self.file.as_mut()?;
        let mut buf = vec![0; PATHSEND_CHUNK_SIZE];
        match file.read(&mut buf) {
            Ok(0) => {
                self.file = None;
                None
            }
            Ok(n) => {
                buf.truncate(n);
                Some(Ok(Bytes::from(buf)))
            }
            Err(e) => {
                self.file = None;
                self.complete = true;
                Some(Err(Box::new(e)))
            }
        }
    }

    /// The body ended: drain trailers if any were announced, then stop.
    fn end_body(&mut self) -> Option<Chunk> {
        self.body_ended = true;
        while self.trailers {
            match self.next_message() {
                Step::Event(SendEvent::HttpResponseTrailers { more_trailers, .. }) => {
                    tracing::debug!("dropped response trailers: WSGI has none");
                    self.trailers = more_trailers;
                }
                Step::Event(other) => {
                    self.complete = true;
                    return Some(Err(unexpected(&other)));
                }
                Step::Done(Err(error)) => {
                    self.complete = true;
                    return Some(Err(Box::new(error)));
                }
                Step::Done(Ok(())) | Step::Gone => break,
            }
        }
        self.complete = true;
        None
    }
}

fn unexpected(event: &SendEvent) -> BoxError {
    format!("unexpected ASGI event `{}`", event.type_name()).into()
}

impl Chunks for Bridge {
    fn next_chunk(&mut self) -> Option<Chunk> {
        if self.complete {
            return None;
        }
        if self.body_ended {
            return self.end_body();
        }
        if self.file.is_some() {
            if let Some(chunk) = self.read_file() {
                return Some(chunk);
            }
            return self.end_body();
        }
        loop {
            match self.next_message() {
                Step::Event(SendEvent::HttpResponseBody { body, more_body }) => {
                    if !more_body {
                        self.body_ended = true;
                        self.complete = !self.trailers;
                    }
                    if !body.is_empty() {
                        return Some(Ok(body));
                    }
                    if !more_body {
                        return self.end_body();
                    }
                }
                Step::Event(SendEvent::HttpResponsePathsend { path }) => {
                    match File::open(&path) {
                        Ok(file) => self.file = Some(file),
                        Err(e) => {
                            self.complete = true;
                            return Some(Err(Box::new(io::Error::new(
                                e.kind(),
                                format!("http.response.pathsend of {}: {e}", path.display()),
                            ))));
                        }
                    }
                    return self.next_chunk();
                }
                Step::Event(other) => {
                    self.complete = true;
                    return Some(Err(unexpected(&other)));
                }
                Step::Done(result) => {
                    self.complete = true;
                    let error: BoxError = match result {
                        Err(error) => Box::new(error),
                        Ok(()) => "the ASGI app returned before completing its response".into(),
                    };
                    return Some(Err(error));
                }
                Step::Gone => {
                    self.complete = true;
                    return Some(Err("the ASGI app's task was cancelled".into()));
                }
            }
        }
    }

    fn is_end(&self) -> bool {
        self.complete
    }
}

/// The app's `receive`: each `recv` asks the WSGI thread for the next chunk of the body.
struct BridgeSource {
    tx: mpsc::Sender<BridgeMessage>,
    /// A demand sent and not answered yet: a `recv` cancelled while waiting resumes it, so
    /// no chunk is lost.
    pending: Option<oneshot::Receiver<ReceiveEvent>>,
    body_done: bool,
}

#[async_trait]
impl EventSource for BridgeSource {
    async fn recv(&mut self) -> ReceiveEvent {
        if !self.body_done {
            if self.pending.is_none() {
                let (reply, answer) = oneshot::channel();
                // Cancel safe: if this waits and is dropped, the demand was not sent.
                if self.tx.send(BridgeMessage::Demand(reply)).await.is_ok() {
                    self.pending = Some(answer);
                }
            }
            if let Some(answer) = self.pending.as_mut() {
                let event = answer.await;
                self.pending = None;
                if let Ok(event) = event {
                    match &event {
                        ReceiveEvent::HttpRequest {
                            more_body: false, ..
                        }
                        | ReceiveEvent::HttpDisconnect => self.body_done = true,
                        _ => {}
                    }
                    return event;
                }
            }
            self.body_done = true;
        }
        // After the body: wait until the WSGI side is done with the response, or its client
        // left (it drops its end either way), as a server's `recv` does.
        self.tx.closed().await;
        ReceiveEvent::HttpDisconnect
    }
}

/// The app's `send`: checks the protocol order, then hands the event to the WSGI thread.
struct BridgeSink {
    tx: mpsc::Sender<BridgeMessage>,
    protocol: SendProtocol,
}

#[async_trait]
impl EventSink for BridgeSink {
    async fn send(&mut self, event: SendEvent) -> Result<(), SendError> {
        if self.tx.is_closed() {
            return Err(SendError::Disconnected);
        }
        self.protocol.check(&event)?;
        self.tx
            .send(BridgeMessage::Event(event))
            .await
            .map_err(|_| SendError::Disconnected)
    }
}

/// The HTTP scope for an environ: the reverse of [`Environ::from_scope`].
fn scope_from_environ(vars: &Vars) -> Result<HttpScope, BoxError> {
    let get = |name: &str| vars.get(name).and_then(Value::as_str);
    let method = get("REQUEST_METHOD")
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .ok_or("the environ has no valid REQUEST_METHOD")?;
    let script_name = get("SCRIPT_NAME").map(|s| s.as_bytes()).unwrap_or_default();
    let path_info = get("PATH_INFO").map(|s| s.as_bytes()).unwrap_or_default();
    let mut full_path = [script_name, path_info].concat();
    if full_path.is_empty() {
        full_path.push(b'/');
    }
    let mut scope = HttpScope::new(method, String::from_utf8_lossy(&full_path).into_owned());
    scope.raw_path =
        Bytes::from(percent_encoding::percent_encode(&full_path, PATH_ESCAPES).to_string());
    scope.root_path = String::from_utf8_lossy(script_name).into_owned();
    scope.query_string = get("QUERY_STRING")
        .map(|q| q.to_bytes())
        .unwrap_or_default();
    if let Some(scheme) = get("wsgi.url_scheme").and_then(|s| s.to_str()) {
        scope.scheme = scheme.to_owned().into();
    }
    scope.http_version = match get("SERVER_PROTOCOL").map(|p| p.as_bytes()) {
        Some(b"HTTP/1.0") => HttpVersion::Http10,
        Some(b"HTTP/2" | b"HTTP/2.0") => HttpVersion::Http2,
        _ => HttpVersion::Http11,
    };
    let mut headers = HeaderMap::new();
    for (key, value) in vars.sorted() {
        let name = match key {
            "CONTENT_TYPE" => "content-type".to_owned(),
            "CONTENT_LENGTH" => "content-length".to_owned(),
            _ => match key.strip_prefix("HTTP_") {
                Some(rest) => rest.to_ascii_lowercase().replace('_', "-"),
                None => continue,
            },
        };
        let Some(value) = value.as_str().filter(|v| !v.is_empty()) else {
            continue;
        };
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => tracing::debug!(key, "skipped an environ header HTTP cannot carry"),
        }
    }
    scope.headers = headers;
    let socket = |host: &str, port: &str| -> Option<SocketAddr> {
        let ip = get(host)?.to_str()?.parse::<IpAddr>().ok()?;
        let port = get(port)?.to_str()?.parse::<u16>().ok()?;
        Some(SocketAddr::new(ip, port))
    };
    scope.client = socket("REMOTE_ADDR", "REMOTE_PORT");
    scope.server = socket("SERVER_NAME", "SERVER_PORT").map(ServerAddr::Tcp);
    Ok(scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_from_environ_reverses_the_mapping() {
        let mut environ = Environ::for_request("POST", "/items/caf\u{e9}?x=1");
        environ.insert("SCRIPT_NAME", "/app");
        environ.insert("HTTP_X_TRACE_ID", "t1");
        environ.insert("CONTENT_TYPE", "text/plain");
        environ.insert("REMOTE_ADDR", "10.0.0.1");
        environ.insert("REMOTE_PORT", "5000");
        let (vars, ..) = environ.into_parts();
        let scope = scope_from_environ(&vars).unwrap();
        assert_eq!(scope.method, Method::POST);
        assert_eq!(scope.path, "/app/items/caf\u{e9}");
        assert_eq!(&scope.raw_path[..], b"/app/items/caf%C3%A9");
        assert_eq!(scope.root_path, "/app");
        assert_eq!(&scope.query_string[..], b"x=1");
        assert_eq!(scope.headers["x-trace-id"], "t1");
        assert_eq!(scope.headers["content-type"], "text/plain");
        assert_eq!(scope.headers["host"], "localhost");
        assert_eq!(scope.client, Some("10.0.0.1:5000".parse().unwrap()));
        // SERVER_NAME "localhost" is no IP address: the Host header says it.
        assert_eq!(scope.server, None);
    }

    #[test]
    fn scope_from_environ_requires_a_method() {
        let mut environ = Environ::for_request("GET", "/");
        environ.remove("REQUEST_METHOD");
        let (vars, ..) = environ.into_parts();
        assert!(scope_from_environ(&vars).is_err());
    }
}
