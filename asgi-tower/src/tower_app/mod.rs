//! [`TowerApp`]: a tower [`Service`] over `http` types (an axum `Router`, a tower-http stack,
//! a hyper service) as an ASGI [`App`].

mod body;
mod direct;

use std::any::Any;
use std::fmt;
use std::future::{Future, poll_fn};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use asgi_core::app::{AppFuture, OwnedApp};
use asgi_core::extensions::HTTP_RESPONSE_TRAILERS;
use asgi_core::{
    App, BoxError, Error, HttpScope, HttpVersion, ReceiveEvent, Receiver, Scope, SendEvent, Sender,
    ShutdownSignal, State,
};
use asgi_http::server::DirectService;
use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderValue, TE, TRAILER};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use tower_service::Service;

pub use body::ReceiverBody;

/// What a path may hold in a URI without escaping: everything but controls, space and the
/// characters RFC 3986 reserves for other parts of a URI (`"`, `#`, `<`, `>`, `?`, `` ` ``,
/// `{`, `}`, `%`). Used only when the scope's `raw_path` cannot give the route path.
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'%');

/// A tower [`Service`] as an ASGI [`App`]: an axum `Router`, a tower-http stack or a hyper
/// service mounted beside ASGI and WSGI apps, served by any ASGI server.
///
/// # The request
///
/// An HTTP scope becomes an `http::Request<`[`ReceiverBody`]`>`:
///
/// - the method, the headers and the HTTP version;
/// - the URI: the scope's route path (its `path` with `root_path` taken off, percent-encoded
///   as it came on the wire) and `query_string`. A service under a
///   [`Mount`](asgi_http::mount::Mount) at `/api` sees `/users` for `/api/users`, as a router
///   nested with axum's `nest` does; with the `axum` feature, the full URI is in axum's
///   `OriginalUri` extension;
/// - extensions: the client address as axum's `ConnectInfo<SocketAddr>` (with the `axum`
///   feature, so that `ConnectInfo` extractors work; without it, as a `SocketAddr`); and one
///   [`ScopeInfo`]: the `root_path`, the lifespan [`State`] and the
///   server's [`ShutdownSignal`] (read them with axum's
///   `Extension<ScopeInfo>`).
///
/// The body streams from the scope's `http.request` events as the service reads it; a client
/// that leaves makes it fail with a disconnect error.
///
/// # The response
///
/// Its status and headers become `http.response.start`, its data frames `http.response.body`
/// events, sent as the service's body yields them: each `send` waits for the client
/// (backpressure), so a large download never sits in memory. Trailers become
/// `http.response.trailers` when the scope declares the trailers extension and either the
/// response names its trailers (`Trailer` header) or the request asked for them
/// (`TE: trailers`); otherwise they are dropped.
///
/// The response head is held back until the body's first frame: an error from the service,
/// or from its body before the first frame, makes `call` fail and the server answers `500`;
/// a body that fails later makes `call` fail after the start, and the server aborts the
/// response so that a truncated body never looks complete. A panic in the service unwinds
/// into the server, which treats it the same way.
///
/// # Served at the root: the direct path
///
/// Served by this project's server as its whole app (no middleware around it, no
/// `root_path` setting), a `TowerApp` hands the server its service through
/// [`App::host_service`], and the server calls the service
/// with each HTTP request as hyper has it, with no scope in between: an axum router is then
/// called as under `axum::serve`. The service sees the same request as above (`root_path` is empty
/// there, and there is no `OriginalUri`, since the URI is the original), the server answers
/// a body over its limit with `413` as on the scope's path, and every rule above holds. A
/// client that leaves before its response is complete drops the service's future there, as
/// under `axum::serve`; through a scope, the server runs the app (and the service's future
/// in it) to its end, as it runs every ASGI app.
///
/// # Other scopes
///
/// - Lifespan: acknowledged (`startup.complete`, `shutdown.complete`).
/// - WebSocket: handed to the [`websocket`](TowerApp::websocket) fallback app, else refused
///   (`websocket.close` before accept: the server answers `403`).
///
/// axum's `WebSocketUpgrade` cannot work here: it takes hyper's `OnUpgrade` from the request
/// extensions, the handle on the raw connection that hyper hands over after a `101`. An ASGI
/// server owns the connection and speaks the WebSocket protocol itself (as ASGI
/// `websocket.*` events); no raw IO reaches the app. Serve WebSockets with an ASGI app
/// (mounted beside, or as the fallback here), or serve the axum router with `axum::serve`
/// and nest the ASGI parts in it with [`AsgiService`](crate::AsgiService).
///
/// # Example
///
/// ```
/// use asgi_http::mount::Mount;
/// use asgi_http::test_client::TestClient;
/// use asgi_tower::TowerApp;
/// use axum::routing::get;
///
/// let router = axum::Router::new().route("/hello", get(|| async { "Hello from axum" }));
/// let app = Mount::new().mount("/axum", TowerApp::new(router));
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let client = TestClient::new(app);
/// assert_eq!(client.get("/axum/hello").await?.text(), "Hello from axum");
/// # Ok::<(), asgi_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct TowerApp<S> {
    service: S,
    websocket: Option<Arc<dyn App>>,
    /// The service for the server's direct path, made the first time a server asks.
    direct: OnceLock<DirectService>,
}

/// What the scope tells a [`TowerApp`]'s service beyond the request, in the request's
/// extensions (axum: `Extension<ScopeInfo>`).
///
/// One value rather than one extension each: every extension of a request is an allocation
/// of its own, and a map entry, on every request.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScopeInfo {
    /// The scope's `root_path`: where the service is mounted (`""` at the root).
    pub root_path: String,
    /// The lifespan state.
    pub state: State,
    /// The server's drain signal: it fires when the server starts shutting down.
    pub shutdown: ShutdownSignal,
}

impl<S> TowerApp<S> {
    /// Wraps `service`.
    pub fn new(service: S) -> Self {
        TowerApp {
            service,
            websocket: None,
            direct: OnceLock::new(),
        }
    }

    /// The ASGI app for WebSocket scopes, instead of refusing them.
    pub fn websocket(mut self, app: impl App) -> Self {
        self.websocket = Some(Arc::new(app));
        self
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.service
    }

    /// The wrapped service, taken out.
    pub fn into_inner(self) -> S {
        self.service
    }
}

impl<S> fmt::Debug for TowerApp<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TowerApp")
            .field("service", &std::any::type_name::<S>())
            .field("websocket", &self.websocket.is_some())
            .finish()
    }
}

// An `OwnedApp` rather than an `async_trait` app: an HTTP request is turned into the
// service's future here, and only that future (with the `send` handle) is boxed, once; the
// scope and the request never sit in the box.
impl<S, ResBody> OwnedApp for TowerApp<S>
where
    S: Service<Request<ReceiverBody>, Response = Response<ResBody>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    ResBody: Body + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Into<BoxError> + Send,
{
    /// One call, in a future that borrows nothing of this app: the service's own (with the
    /// `send` handle), or the WebSocket fallback's.
    fn start(&self, scope: Scope, receive: Receiver, send: Sender) -> AppFuture<'static> {
        match scope {
            // Taken apart where it lies: the scope is not moved again on its way.
            Scope::Http(mut http) => http_call(self.service.clone(), &mut http, receive, send),
            Scope::WebSocket(_) => match &self.websocket {
                Some(app) => app.clone().call_owned(scope, receive, send),
                None => Box::pin(asgi_core::app::refuse_websocket(send)),
            },
            Scope::Lifespan(_) => Box::pin(acknowledge_lifespan(receive, send)),
            _ => Box::pin(std::future::ready(Ok(()))),
        }
    }

    /// The service, for this project's server to call directly (see the type's docs).
    fn host_service(&self) -> Option<&(dyn Any + Send + Sync)> {
        let direct = self.direct.get_or_init(|| {
            DirectService::new(direct::DirectTower {
                service: self.service.clone(),
            })
        });
        Some(direct)
    }
}

async fn acknowledge_lifespan(mut receive: Receiver, mut send: Sender) -> Result<(), Error> {
    loop {
        match receive.recv().await {
            ReceiveEvent::LifespanStartup => send.send(SendEvent::LifespanStartupComplete).await?,
            ReceiveEvent::LifespanShutdown => {
                send.send(SendEvent::LifespanShutdownComplete).await?;
                return Ok(());
            }
            _ => return Ok(()),
        }
    }
}

/// Whether the response may carry trailers, as far as the scope tells.
#[derive(Clone, Copy)]
struct TrailerRules {
    /// The scope declares the `http.response.trailers` extension.
    allowed: bool,
    /// The request asked for them (`TE: trailers`).
    asked: bool,
}

/// The future of an HTTP scope: the request is built and, when the service is ready at once
/// (an axum `Router` always is), handed to it before anything is boxed, so that the box
/// holds the service's future and not the scope, the request and the service besides.
fn http_call<S, ResBody>(
    mut service: S,
    scope: &mut HttpScope,
    receive: Receiver,
    send: Sender,
) -> AppFuture<'static>
where
    S: Service<Request<ReceiverBody>, Response = Response<ResBody>> + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    ResBody: Body + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Into<BoxError> + Send,
{
    let rules = TrailerRules {
        allowed: scope.extensions.supports(HTTP_RESPONSE_TRAILERS),
        asked: scope
            .headers
            .get_all(TE)
            .iter()
            .any(|v| has_token(v, b"trailers")),
    };
    let Some(request) = request_from_scope(scope, receive) else {
        return Box::pin(invalid_target(send));
    };
    // The service runs its synchronous part here, where a panic would not reach the
    // host's guard around the app's future: it is caught and becomes the future's error.
    // The service's future is boxed where it is made, so that it is not moved again on
    // its way out.
    let called = std::panic::catch_unwind(AssertUnwindSafe(move || -> AppFuture<'static> {
        let mut cx = Context::from_waker(Waker::noop());
        match service.poll_ready(&mut cx) {
            Poll::Ready(Ok(())) => Box::pin(respond(service.call(request), rules, send)),
            Poll::Ready(Err(e)) => Box::pin(std::future::ready(Err(Error::new(e.into())))),
            // Not ready: the request waits in the future, and readiness is asked again with
            // the task's waker.
            Poll::Pending => Box::pin(async move {
                poll_fn(|cx| service.poll_ready(cx))
                    .await
                    .map_err(|e| Error::new(e.into()))?;
                respond(service.call(request), rules, send).await
            }),
        }
    }));
    called.unwrap_or_else(|payload| Box::pin(std::future::ready(Err(Error::from_panic(payload)))))
}

/// The answer to a scope whose path and query make no valid URI.
async fn invalid_target(mut send: Sender) -> Result<(), Error> {
    send.send(SendEvent::response_start(
        StatusCode::BAD_REQUEST,
        HeaderMap::new(),
    ))
    .await?;
    send.send(SendEvent::response_body("invalid request target\n", false))
        .await?;
    Ok(())
}

/// Waits for the service's response and sends it.
async fn respond<F, E, ResBody>(
    future: F,
    rules: TrailerRules,
    mut send: Sender,
) -> Result<(), Error>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    E: Into<BoxError>,
    ResBody: Body,
    ResBody::Error: Into<BoxError>,
{
    let response = future.await.map_err(|e| Error::new(e.into()))?;
    let (parts, body) = response.into_parts();
    let trailers = rules.allowed && (rules.asked || parts.headers.contains_key(TRAILER));
    let start = SendEvent::HttpResponseStart {
        status: parts.status,
        headers: parts.headers,
        trailers,
    };
    send_body(body, start, trailers, &mut send).await
}

/// Sends the response: the start with the first frame (so that an early body error is still
/// a `500`), then a body event per data frame, each waiting for the client.
///
/// Written with one step future and one send per kind of event, so that the future keeps
/// little beside the event in flight: it is part of every request's boxed future.
async fn send_body<B>(
    body: B,
    start: SendEvent,
    trailers: bool,
    send: &mut Sender,
) -> Result<(), Error>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    let mut step = next_step(body.as_mut()).await?;
    send.send(start).await?;
    let fields = loop {
        match step {
            Step::Chunk { chunk, more } => {
                if !more || !chunk.is_empty() {
                    send.send(SendEvent::response_body(chunk, more)).await?;
                }
                if !more {
                    break None;
                }
            }
            Step::End(fields) => {
                send.send(SendEvent::response_body(Bytes::new(), false))
                    .await?;
                break fields;
            }
        }
        step = next_step(body.as_mut()).await?;
    };
    if trailers {
        send.send(SendEvent::HttpResponseTrailers {
            headers: fields.unwrap_or_default(),
            more_trailers: false,
        })
        .await?;
    } else if fields.is_some() {
        tracing::debug!("response trailers dropped: the scope or the request does not allow them");
    }
    Ok(())
}

/// What the next frame of a response body says.
enum Step {
    /// Data; `more` is false when the body ended with it.
    Chunk { chunk: Bytes, more: bool },
    /// The body ended: with its trailers, or (`None`) with none.
    End(Option<HeaderMap>),
}

/// The next [`Step`] of `body`.
fn next_step<B>(mut body: Pin<&mut B>) -> impl Future<Output = Result<Step, Error>> + '_
where
    B: Body,
    B::Error: Into<BoxError>,
{
    poll_fn(move |cx| {
        let step = match std::task::ready!(body.as_mut().poll_frame(cx)) {
            None => Step::End(None),
            Some(Err(e)) => return Poll::Ready(Err(Error::new(e.into()))),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(mut data) => Step::Chunk {
                    chunk: data.copy_to_bytes(data.remaining()),
                    more: !body.is_end_stream(),
                },
                // A trailers frame ends the body (a frame is data or trailers).
                Err(frame) => Step::End(frame.into_trailers().ok()),
            },
        };
        Poll::Ready(Ok(step))
    })
}

fn has_token(value: &HeaderValue, token: &[u8]) -> bool {
    value
        .as_bytes()
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// The request for a scope; `None` when its path and query make no valid URI.
/// The scope's fields the request takes are moved out of it.
fn request_from_scope(scope: &mut HttpScope, receive: Receiver) -> Option<Request<ReceiverBody>> {
    let uri = if scope.root_path.is_empty()
        && scope.query_string.is_empty()
        && scope.raw_path.first() == Some(&b'/')
    {
        // At the root with no query, the target is the raw path as it came: moved, not
        // copied (what `route_uri` would build).
        Uri::from_maybe_shared(std::mem::take(&mut scope.raw_path)).ok()?
    } else {
        route_uri(scope)?
    };
    let version = match scope.http_version {
        HttpVersion::Http10 => Version::HTTP_10,
        HttpVersion::Http2 => Version::HTTP_2,
        _ => Version::HTTP_11,
    };
    let mut request = Request::new(ReceiverBody::new(receive));
    *request.method_mut() = std::mem::replace(&mut scope.method, Method::GET);
    *request.version_mut() = version;
    *request.headers_mut() = std::mem::take(&mut scope.headers);
    let extensions = request.extensions_mut();
    if let Some(client) = scope.client {
        insert_client(extensions, client);
    }
    #[cfg(feature = "axum")]
    if !scope.root_path.is_empty() {
        if let Some(original) = original_uri(&scope.raw_path, &scope.path, &scope.query_string) {
            extensions.insert(axum::extract::OriginalUri(original));
        }
    }
    extensions.insert(ScopeInfo {
        root_path: std::mem::take(&mut scope.root_path),
        state: std::mem::take(&mut scope.state),
        shutdown: std::mem::take(&mut scope.shutdown),
    });
    *request.uri_mut() = uri;
    Some(request)
}

/// Puts the client address in the request's extensions. Each extension is an allocation:
/// the client goes in once, in the form its users look for.
fn insert_client(extensions: &mut http::Extensions, client: std::net::SocketAddr) {
    #[cfg(feature = "axum")]
    extensions.insert(axum::extract::ConnectInfo(client));
    #[cfg(not(feature = "axum"))]
    extensions.insert(client);
}

/// The route path (`path` after `root_path`) and query as an origin-form URI, from
/// `raw_path` when it starts with the root path (so escapes stay as the client sent them).
fn route_uri(scope: &HttpScope) -> Option<Uri> {
    let root = scope.root_path.as_bytes();
    let mut target = BytesMut::with_capacity(scope.raw_path.len() + scope.query_string.len() + 2);
    let route = asgi_http::router::route_path(&scope.path, &scope.root_path);
    match scope.raw_path.strip_prefix(root) {
        Some(rest) if !scope.raw_path.is_empty() && (rest.is_empty() || rest[0] == b'/') => {
            if rest.is_empty() {
                target.extend_from_slice(b"/");
            } else {
                target.extend_from_slice(rest);
            }
        }
        _ => {
            for piece in utf8_percent_encode(route, PATH) {
                target.extend_from_slice(piece.as_bytes());
            }
        }
    }
    if target.first() != Some(&b'/') {
        return None;
    }
    if !scope.query_string.is_empty() {
        target.extend_from_slice(b"?");
        target.extend_from_slice(&scope.query_string);
    }
    Uri::from_maybe_shared(target.freeze()).ok()
}

#[cfg(feature = "axum")]
fn original_uri(raw_path: &[u8], path: &str, query: &[u8]) -> Option<Uri> {
    let mut target = BytesMut::new();
    if raw_path.is_empty() {
        for piece in utf8_percent_encode(path, PATH) {
            target.extend_from_slice(piece.as_bytes());
        }
    } else {
        target.extend_from_slice(raw_path);
    }
    if !query.is_empty() {
        target.extend_from_slice(b"?");
        target.extend_from_slice(query);
    }
    Uri::from_maybe_shared(target.freeze()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(root: &str, path: &str, raw: &[u8], query: &[u8]) -> HttpScope {
        let mut scope = HttpScope::new(Method::GET, path);
        scope.root_path = root.to_owned();
        scope.raw_path = Bytes::copy_from_slice(raw);
        scope.query_string = Bytes::copy_from_slice(query);
        scope
    }

    #[test]
    fn uri_is_the_route_path_with_escapes_kept_and_the_query() {
        let s = scope("/api", "/api/a b", b"/api/a%20b", b"x=1");
        assert_eq!(route_uri(&s).unwrap(), "/a%20b?x=1");
        let s = scope("/api", "/api", b"/api", b"");
        assert_eq!(route_uri(&s).unwrap(), "/");
        let s = scope("", "/users", b"/users", b"");
        assert_eq!(route_uri(&s).unwrap(), "/users");
    }

    #[cfg(feature = "axum")]
    #[test]
    fn offers_the_server_its_service_once_and_keeps_it() {
        let app = TowerApp::new(axum::Router::new());
        let first = App::host_service(&app).expect("a host service");
        assert!(first.downcast_ref::<DirectService>().is_some());
        let again = App::host_service(&app).expect("a host service");
        assert!(std::ptr::eq(first, again));
    }

    #[test]
    fn uri_is_encoded_from_path_when_raw_path_does_not_start_with_root() {
        let s = scope("/caf\u{e9}", "/caf\u{e9}/x y", b"/caf%C3%A9/x%20y", b"");
        assert_eq!(route_uri(&s).unwrap(), "/x%20y");
    }
}
