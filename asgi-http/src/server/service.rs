//! The hyper service of one connection: each request becomes an HTTP scope; the app is polled
//! once inline and, if it has to wait, runs on in a task of its own; hyper's future only waits
//! for the response head.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use asgi_core::protocol::SendProtocol;
use asgi_core::{Error, Receiver, Scope, Sender};
use asgi_ws::handshake::is_websocket_upgrade;
use futures_util::FutureExt;
use http::header::TE;
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body::Body;
use hyper::body::Incoming;
use hyper::ext::Protocol;
use hyper::service::Service;
use tokio::sync::OwnedSemaphorePermit;

use super::access_log::AccessLog;
use super::connection::{Activity, ActivityGuard, WebSocketStreamGuard};
use super::exchange::{Closed, Exchange, Progress};
use super::listener::ConnInfo;
use super::request::RequestBody;
use super::response::{Finish, ResponseBody, ResponseSink, server_response};
use super::run::Shared;
use super::scope::http_scope;
use super::websocket::{self, HandshakeFuture, Holds};

/// The service hyper calls for each request of one connection.
pub(crate) struct ConnService {
    shared: Arc<Shared>,
    conn: ConnInfo,
    activity: Arc<Activity>,
    /// The connection's place under `max_connections`, for the WebSockets it upgrades to.
    permit: Option<Arc<OwnedSemaphorePermit>>,
}

impl std::fmt::Debug for ConnService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnService")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl ConnService {
    pub(crate) fn new(
        shared: Arc<Shared>,
        conn: ConnInfo,
        activity: Arc<Activity>,
        permit: Option<Arc<OwnedSemaphorePermit>>,
    ) -> Self {
        ConnService {
            shared,
            conn,
            activity,
            permit,
        }
    }

    /// A response the server gives without calling the app.
    fn reject(
        &self,
        status: StatusCode,
        close: bool,
        activity: ActivityGuard,
        log: Option<AccessLog>,
    ) -> ResponseFuture {
        ResponseFuture {
            state: FutureState::Ready(Some(server_response(status, close))),
            activity: Some(activity),
            log,
        }
    }
}

impl Service<Request<Incoming>> for ConnService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: Request<Incoming>) -> ResponseFuture {
        let activity = ActivityGuard::new(&self.activity);
        let log = if self.shared.config.access_log {
            AccessLog::start(
                &request,
                self.conn.client,
                self.shared.config.proxy_headers.as_ref(),
            )
        } else {
            None
        };
        let http1 = request.version() != Version::HTTP_2;

        // hyper enforces the header count for HTTP/1 (431 before the request gets here); an
        // HTTP/2 header block is only bounded in bytes, so its count is checked here.
        if request.headers().len() > self.shared.config.max_headers {
            return self.reject(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                false,
                activity,
                log,
            );
        }
        let limit = self.shared.config.max_request_body;
        if let Some(limit) = limit {
            // The size hint's lower bound is the `Content-Length`, when there is one.
            if request.body().size_hint().lower() > limit {
                tracing::info!(limit, "request body over the limit: answering 413");
                return self.reject(StatusCode::PAYLOAD_TOO_LARGE, http1, activity, log);
            }
        }

        // Every request is dispatched here, by protocol: a WebSocket handshake
        // (`Upgrade: websocket`) goes to the WebSocket protocol, everything else is HTTP.
        if is_websocket_upgrade(request.headers()) || is_extended_connect(&request) {
            return self.websocket(request, activity, log);
        }
        self.http(request, activity, log, http1, limit)
    }
}

impl ConnService {
    /// Answers a WebSocket handshake: see the `websocket` module.
    fn websocket(
        &self,
        request: Request<Incoming>,
        activity: ActivityGuard,
        log: Option<AccessLog>,
    ) -> ResponseFuture {
        let holds = Holds {
            permit: self.permit.clone(),
            // An HTTP/2 connection goes on with its other streams: while the WebSocket's
            // stream is open the connection is not idle.
            stream: (request.version() == Version::HTTP_2)
                .then(|| WebSocketStreamGuard::new(&self.activity)),
        };
        let future = websocket::handshake(request, &self.conn, &self.shared, holds);
        ResponseFuture {
            state: FutureState::Handshake(future),
            activity: Some(activity),
            log,
        }
    }

    /// Serves `request` as HTTP: its scope, its app task, and the future of its head.
    fn http(
        &self,
        request: Request<Incoming>,
        activity: ActivityGuard,
        log: Option<AccessLog>,
        http1: bool,
        limit: Option<u64>,
    ) -> ResponseFuture {
        let trailers_allowed = !http1 || te_trailers(request.headers());
        let exchange = Arc::new(Exchange::new());
        let (parts, body) = request.into_parts();
        // For the app's error log lines; clones of the request's own bytes.
        let method = parts.method.clone();
        let target = parts.uri.path_and_query().cloned();

        let scope = Scope::Http(http_scope(parts, &self.conn, &self.shared));
        let protocol = SendProtocol::for_scope(&scope);
        let receive = Receiver::new(RequestBody::new(body, exchange.clone(), limit, http1));
        let send = Sender::new(ResponseSink::new(
            protocol,
            exchange.clone(),
            trailers_allowed,
        ));
        let app = self.shared.app.clone();
        let run = Box::pin(run_app(
            app,
            scope,
            receive,
            send,
            exchange.clone(),
            method,
            target,
        ));
        ResponseFuture {
            state: FutureState::Inline {
                run: Some(run),
                exchange,
                tasks: self.shared.app_tasks.clone(),
            },
            activity: Some(activity),
            log,
        }
    }
}

/// True for an HTTP/2 WebSocket request (RFC 8441): `CONNECT` with `:protocol websocket`.
fn is_extended_connect<B>(request: &Request<B>) -> bool {
    request.method() == Method::CONNECT
        && request
            .extensions()
            .get::<Protocol>()
            .is_some_and(|protocol| protocol.as_str().eq_ignore_ascii_case("websocket"))
}

/// True when the request's `TE` header lists `trailers` (RFC 9110 10.1.4): an HTTP/1.1
/// client that accepts trailers.
fn te_trailers(headers: &HeaderMap) -> bool {
    headers.get_all(TE).iter().any(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',').any(|item| {
                item.split(';')
                    .next()
                    .is_some_and(|token| token.trim().eq_ignore_ascii_case("trailers"))
            })
        })
    })
}

/// Runs the app on one request (first inline, then in a task of its own if it waits), and logs
/// how it ended.
///
/// The response itself is finished by the app's sender when it is dropped (a 500 if nothing
/// was sent, an aborted body if the response was incomplete), which happens before `call`
/// returns or while a panic unwinds.
async fn run_app(
    app: Arc<dyn asgi_core::App>,
    scope: Scope,
    receive: Receiver,
    send: Sender,
    exchange: Arc<Exchange>,
    method: Method,
    target: Option<PathAndQuery>,
) {
    let result = AssertUnwindSafe(app.call(scope, receive, send))
        .catch_unwind()
        .await
        .unwrap_or_else(|payload| Err(Error::from_panic(payload)));
    let path = target.as_ref().map_or("/", PathAndQuery::as_str);
    let (progress, closed) = exchange.outcome();
    let client_gone = matches!(closed, Some(Closed::ClientGone | Closed::BodyTooLarge));
    match result {
        Err(e) if !e.is_disconnected() => match progress {
            Progress::NotStarted if client_gone => {
                tracing::error!(%method, path, error = %e, "app failed; the client had left");
            }
            Progress::NotStarted => {
                tracing::error!(%method, path, error = %e, "app failed before its response: answered 500");
            }
            Progress::Streaming => {
                tracing::error!(%method, path, error = %e, "app failed during its response: response aborted");
            }
            Progress::Complete => {
                tracing::error!(%method, path, error = %e, "app failed after its response was sent");
            }
        },
        // A client that leaves is a normal end, never an error.
        _ if client_gone => {
            tracing::debug!(%method, path, "request ended: the client left");
        }
        Err(_) => {
            tracing::debug!(%method, path, "the app stopped: its peer disconnected");
        }
        Ok(()) => match progress {
            Progress::Complete => {}
            Progress::NotStarted => {
                tracing::error!(%method, path, "app returned without sending a response: answered 500");
            }
            Progress::Streaming => {
                tracing::error!(%method, path, "app returned before its response was complete: response aborted");
            }
        },
    }
}

// The ready response is large, but this future lives where hyper keeps it (once per HTTP/1
// connection, in the task of an HTTP/2 stream); boxing the response would add an allocation.
#[allow(clippy::large_enum_variant)]
enum FutureState {
    /// A response the server made itself; `None` once returned.
    Ready(Option<Response<ResponseBody>>),
    /// The app has not been polled yet. The first poll of this future polls it once, inline:
    /// an app that answers without waiting (most do) completes right there, with no task of
    /// its own and no wake-up across tasks. An app that has to wait is moved, unfinished, into
    /// a task of its own before this future returns `Pending`, so hyper dropping this future
    /// never drops the app mid-await.
    Inline {
        /// The app's run; `None` once it was polled or spawned.
        run: Option<AppRun>,
        exchange: Arc<Exchange>,
        tasks: tokio_util::task::TaskTracker,
    },
    /// Waiting for the app's head.
    Waiting(Arc<Exchange>),
    /// Waiting for the app's answer to a WebSocket handshake. Dropping it (the client left)
    /// ends the WebSocket for the app.
    Handshake(HandshakeFuture),
    /// The head was returned.
    Done,
}

/// hyper's future for one request: it only waits for the response head. Dropping it (the
/// client left before the head) ends the request for the app, which learns it from `recv`;
/// the app's task is not touched.
pub(crate) struct ResponseFuture {
    state: FutureState,
    activity: Option<ActivityGuard>,
    log: Option<AccessLog>,
}

impl std::fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<ResponseBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let (mut response, exchange) = match &mut this.state {
            FutureState::Ready(response) => match response.take() {
                Some(response) => (response, None),
                None => return Poll::Pending,
            },
            FutureState::Inline {
                run,
                exchange,
                tasks,
            } => {
                if let Some(mut app) = run.take() {
                    // `run_app` catches the app's panics itself, so this poll does not unwind.
                    if app.as_mut().poll(cx).is_pending() {
                        tasks.spawn(app);
                    }
                }
                let exchange = exchange.clone();
                let polled = exchange.poll_head(cx);
                this.state = FutureState::Waiting(exchange.clone());
                match polled {
                    Poll::Ready(response) => (response, Some(exchange)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            FutureState::Waiting(exchange) => match exchange.poll_head(cx) {
                Poll::Ready(response) => (response, Some(exchange.clone())),
                Poll::Pending => return Poll::Pending,
            },
            FutureState::Handshake(future) => match future.as_mut().poll(cx) {
                Poll::Ready(response) => (response, None),
                Poll::Pending => return Poll::Pending,
            },
            FutureState::Done => return Poll::Pending,
        };
        this.state = FutureState::Done;
        let mut log = this.log.take();
        if let Some(log) = &mut log {
            log.set_status(response.status().as_u16());
        }
        if let Some(activity) = this.activity.take() {
            response.body_mut().set_finish(Finish {
                exchange,
                log,
                _activity: activity,
            });
        }
        Poll::Ready(Ok(response))
    }
}

impl Drop for ResponseFuture {
    fn drop(&mut self) {
        match &mut self.state {
            FutureState::Waiting(exchange) => exchange.abandon_head(),
            FutureState::Inline {
                run,
                exchange,
                tasks,
            } => {
                exchange.abandon_head();
                // Dropped before its first poll: the app still runs, and learns from `recv`
                // that the client left.
                if let Some(app) = run.take() {
                    tasks.spawn(app);
                }
            }
            _ => {}
        }
    }
}

/// One request's app run, boxed so that it can move into a task of its own half-way.
type AppRun = Pin<Box<dyn Future<Output = ()> + Send>>;

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn te(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(TE, HeaderValue::from_static(v));
        }
        headers
    }

    #[test]
    fn te_trailers_is_found_among_other_codings() {
        assert!(te_trailers(&te(&["trailers"])));
        assert!(te_trailers(&te(&["gzip;q=0.5, Trailers"])));
        assert!(te_trailers(&te(&["gzip", "trailers"])));
    }

    #[test]
    fn te_without_trailers_is_not_trailers() {
        assert!(!te_trailers(&te(&[])));
        assert!(!te_trailers(&te(&["gzip, deflate"])));
        assert!(!te_trailers(&te(&["trailersx"])));
    }
}
