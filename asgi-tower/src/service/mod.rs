//! [`AsgiService`]: an ASGI [`App`] as a tower [`Service`], for axum routers and tower-http
//! layers.
//!
//! # Layout
//!
//! - this module: [`AsgiService`], its settings, and the [`ResponseFuture`];
//! - `scope`: the HTTP and WebSocket scopes of a request (mount point, client);
//! - `exchange`: the app's `receive` and `send` for one request, and what they share;
//! - `body`: the app polled by the tower side, and [`AppBody`];
//! - `websocket`: WebSocket handshakes, run by `asgi-ws`.

mod body;
mod exchange;
mod scope;
mod websocket;

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use asgi_core::protocol::SendProtocol;
use asgi_core::{
    App, BoxError, Receiver, Scope, SendEvent, Sender, ServerAddr, ShutdownSignal, State,
};
use asgi_ws::WebSocketConfig;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Body;
use tower_service::Service;

pub use body::AppBody;

use body::InlineApp;
use exchange::{AppSink, BodySource, RequestState};

/// An ASGI [`App`] as a tower [`Service`] over `http::Request<B>` for any
/// [`http_body::Body`] `B`: nest it in an axum router (`nest_service`, `route_service`,
/// `fallback_service`), wrap it in tower-http layers, or serve it with hyper.
///
/// It is `Clone` (an `Arc` clone) and never fails (`Error = Infallible`): every outcome is a
/// response.
///
/// # The scope
///
/// - `path`, `raw_path`, `query_string` from the request target; when axum nested the
///   service (the URI it sees lacks the prefix), `path` and `raw_path` are rebuilt whole
///   and `root_path` is the prefix, from axum's `OriginalUri` and `NestedPath` (feature
///   `axum`), as an ASGI app under a mount expects.
/// - `client` from axum's `ConnectInfo<SocketAddr>` (serve the router with
///   `into_make_service_with_connect_info::<SocketAddr>()`) or a `SocketAddr` extension.
/// - `server`, `state` and `shutdown` from the settings ([`server`](AsgiService::server),
///   [`state`](AsgiService::state), [`shutdown`](AsgiService::shutdown)).
/// - The `http.response.trailers` and `http.response.pathsend` extensions are declared, as
///   the server declares them.
///
/// # Streaming, and when things go wrong
///
/// The request body reaches the app as `http.request` events, read as the app calls `recv`.
/// The response future resolves when the app sends `http.response.start` (or, when the app
/// is opening the file of an `http.response.pathsend` right after it, once the file is open,
/// so that the head carries its `content-length`); the body then
/// yields the app's body events as it sends them ([`AppBody`]), with backpressure both ways.
/// Dropping the response body before its end (the client left) delivers `http.disconnect`
/// to the app; it goes on in a task of its own until it returns.
///
/// An app that fails, panics or returns before `http.response.start`, or with nothing sent
/// after it while the head is built (as when the file of an `http.response.pathsend` cannot
/// be opened: its `send` returns the I/O error), gives a `500`, as on the server; once the
/// head is out, the body fails, and hyper aborts the response. The app is polled by the response
/// future and then by the body: no task is spawned per request.
///
/// # WebSockets
///
/// A WebSocket handshake (`Upgrade: websocket`, or an HTTP/2 extended CONNECT) is validated
/// and answered by `asgi-ws` as this project's server does: `101` and the WebSocket for
/// `websocket.accept`, `403` for `websocket.close`, the app's own response for a denial,
/// `500` for a failure, `400`/`426` for an invalid handshake. It needs hyper's upgrade
/// handle in the request: `axum::serve` and hyper's `serve_connection_with_upgrades`
/// provide it; without it, the answer is `501`. The open WebSocket runs in a task of its own
/// and is closed with 1001 when the [`shutdown`](AsgiService::shutdown) signal fires.
///
/// # Example
///
/// ```
/// use asgi_core::{Error, Receiver, Scope, SendEvent, Sender};
/// use asgi_tower::AsgiService;
/// use http::{HeaderMap, StatusCode};
/// use tower::ServiceExt;
///
/// async fn hello(scope: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
///     let Scope::Http(http) = scope else { return Ok(()) };
///     send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new())).await?;
///     let body = format!("root_path={} path={}", http.root_path, http.path);
///     send.send(SendEvent::response_body(body, false)).await?;
///     Ok(())
/// }
///
/// let router = axum::Router::new().nest_service("/asgi", AsgiService::new(hello));
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let request = http::Request::get("/asgi/hello").body(axum::body::Body::empty()).unwrap();
/// let response = router.oneshot(request).await.unwrap();
/// let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
/// assert_eq!(body, "root_path=/asgi path=/asgi/hello");
/// # });
/// ```
pub struct AsgiService<A> {
    app: Arc<A>,
    config: Arc<ServiceConfig>,
}

/// The settings an [`AsgiService`] puts into every scope.
#[derive(Debug, Default, Clone)]
pub(crate) struct ServiceConfig {
    pub(crate) websocket: WebSocketConfig,
    pub(crate) state: State,
    pub(crate) shutdown: ShutdownSignal,
    pub(crate) server: Option<ServerAddr>,
}

impl<A: App> AsgiService<A> {
    /// Wraps `app`, with an empty state, a shutdown signal that never fires, no `server`
    /// address and the default [`WebSocketConfig`].
    pub fn new(app: A) -> Self {
        AsgiService {
            app: Arc::new(app),
            config: Arc::new(ServiceConfig::default()),
        }
    }

    fn config_mut(&mut self) -> &mut ServiceConfig {
        Arc::make_mut(&mut self.config)
    }

    /// The lifespan state every scope carries, e.g. the one
    /// [`Lifespan::startup`](asgi_core::host::lifespan::Lifespan::startup) returned for this app.
    /// Default: empty.
    pub fn state(mut self, state: State) -> Self {
        self.config_mut().state = state;
        self
    }

    /// The drain signal every scope carries, e.g. one fired from `axum::serve`'s graceful
    /// shutdown; open WebSockets are closed with 1001 when it fires. Default: never fires.
    pub fn shutdown(mut self, shutdown: ShutdownSignal) -> Self {
        self.config_mut().shutdown = shutdown;
        self
    }

    /// The scope's `server` address. Default: `None` (tower does not say where it listens).
    pub fn server(mut self, server: ServerAddr) -> Self {
        self.config_mut().server = Some(server);
        self
    }

    /// The settings of WebSocket connections. Default: [`WebSocketConfig::default`].
    pub fn websocket_config(mut self, config: WebSocketConfig) -> Self {
        self.config_mut().websocket = config;
        self
    }

    /// The wrapped app.
    pub fn get_ref(&self) -> &A {
        &self.app
    }
}

impl<A> Clone for AsgiService<A> {
    fn clone(&self) -> Self {
        AsgiService {
            app: self.app.clone(),
            config: self.config.clone(),
        }
    }
}

impl<A> fmt::Debug for AsgiService<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsgiService")
            .field("app", &std::any::type_name::<A>())
            .field("config", &self.config)
            .finish()
    }
}

impl<A, B> Service<Request<B>> for AsgiService<A>
where
    A: App,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<AppBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        if websocket::is_handshake(&request) {
            return ResponseFuture {
                state: FutureState::Handshake(websocket::handshake(
                    self.app.clone(),
                    request,
                    &self.config,
                )),
                start: None,
            };
        }
        let (mut parts, body) = request.into_parts();
        let exchange = RequestState::default();
        let source = BodySource::new(body, exchange.clone());
        let scope = Scope::from(scope::http_scope(&mut parts, &self.config));
        let sink = AppSink::new(exchange.clone(), SendProtocol::for_scope(&scope));
        // The app's own future, with none around it (`call_owned`). A panic in the call
        // itself is its outcome, as one while it runs is.
        let app = self.app.clone();
        let call = asgi_core::app::start_call(app, scope, Receiver::new(source), Sender::new(sink));
        ResponseFuture {
            state: FutureState::Http(Some(InlineApp::new(call, exchange))),
            start: None,
        }
    }
}

/// The future of an [`AsgiService`] response: resolves when the app sends
/// `http.response.start` (or answers a WebSocket handshake).
///
/// # Cancel safety
///
/// Dropping it before it resolves (the client left) delivers `http.disconnect` to the app,
/// which goes on in a task of its own until it returns.
pub struct ResponseFuture {
    state: FutureState,
    /// The app's `http.response.start`, kept while the head waits for a file to open (boxed:
    /// rare, and the future stays small for the moves its hosts make).
    start: Option<Box<Start>>,
}

/// The keys of an `http.response.start`.
struct Start {
    status: StatusCode,
    headers: http::HeaderMap,
    trailers: bool,
}

enum FutureState {
    Http(Option<InlineApp>),
    Handshake(websocket::UpgradeFuture),
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            FutureState::Http(Some(_)) => "waiting for http.response.start",
            FutureState::Http(None) => "done",
            FutureState::Handshake(_) => "waiting for the WebSocket handshake",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<AppBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let running = match &mut this.state {
            FutureState::Handshake(handshake) => return handshake.as_mut().poll(cx).map(Ok),
            FutureState::Http(running) => running,
        };
        let Some(app) = running else {
            panic!("ResponseFuture polled after it completed");
        };
        let start = match this.start.take() {
            Some(start) => *start,
            None => {
                let event = std::task::ready!(app.poll_event(cx));
                let Some(SendEvent::HttpResponseStart {
                    status,
                    headers,
                    trailers,
                }) = event
                else {
                    // The protocol checker admits `http.response.start` first, so the app
                    // returned without one (or failed, or panicked).
                    let mut app = running.take().expect("checked above");
                    let e = app.take_failure("without sending `http.response.start`");
                    tracing::error!(error = %e, "ASGI app failed before its response started");
                    return Poll::Ready(Ok(plain(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Internal Server Error\n",
                    )));
                };
                Start {
                    status,
                    headers,
                    trailers,
                }
            }
        };
        let next = app.poll_event(cx);
        if next.is_pending() && app.opening_file() {
            // An `http.response.pathsend` is on its way: the head waits for the file, whose
            // length is the body's.
            this.start = Some(Box::new(start));
            return Poll::Pending;
        }
        let mut app = running.take().expect("checked above");
        let Start {
            status,
            headers,
            trailers,
        } = start;
        if let Poll::Ready(None) = next {
            // The app ended right after its start (it failed, e.g. on a file it could not
            // open): no byte of the response is out yet, so it is a 500, as on the server.
            let e = app.take_failure("without a response body");
            tracing::error!(error = %e, "ASGI app failed before its response body");
            return Poll::Ready(Ok(plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error\n",
            )));
        }
        let body = match next {
            // The fast path: one final body, no trailers. The app is polled once more so
            // that it finishes here rather than in a task.
            Poll::Ready(Some(SendEvent::HttpResponseBody {
                body,
                more_body: false,
            })) if !trailers => {
                app.end(Some(cx.waker()));
                if !app.has_returned() {
                    let _ = app.poll_event(cx);
                }
                AppBody::full(body)
            }
            Poll::Ready(Some(SendEvent::HttpResponsePathsend { .. })) => match app.take_file() {
                Some(file) => {
                    if !trailers {
                        // The response is whole: as above, the app may finish here.
                        app.end(Some(cx.waker()));
                        if !app.has_returned() {
                            let _ = app.poll_event(cx);
                        }
                    }
                    AppBody::file(app, file, trailers)
                }
                None => AppBody::streaming(app, None, trailers),
            },
            Poll::Ready(peeked) => AppBody::streaming(app, peeked, trailers),
            Poll::Pending => AppBody::streaming(app, None, trailers),
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Poll::Ready(Ok(response))
    }
}

/// A small plain-text response of the service's own.
pub(crate) fn plain(status: StatusCode, text: impl Into<Bytes>) -> Response<AppBody> {
    let mut response = Response::new(AppBody::full(text));
    *response.status_mut() = status;
    *response.headers_mut() = websocket::text_headers();
    response
}
