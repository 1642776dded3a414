//! The hyper service of one connection: each request becomes an HTTP scope and an app call,
//! which hyper's future polls until the response head is ready (see the `call` module).

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use asgi_core::protocol::SendProtocol;
use asgi_core::{App, BoxError, Error, Receiver, Scope, Sender};
use asgi_ws::handshake::is_websocket_upgrade;
use bytes::Bytes;
use http::header::{HOST, TE, UPGRADE};
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body;
use hyper::body::Incoming;
use hyper::ext::Protocol;
use hyper::service::Service;
use tokio::sync::{AcquireError, OwnedSemaphorePermit};

use super::access_log::AccessLog;
use super::body::{ResponseBody, ServerExchange, server_response};
use super::call::AppCall;
use super::direct::{
    BodyFault, DirectBody, DirectContext, DirectFuture, DirectResponseBody, DirectService,
};
use super::finish::FinishGuard;
use super::receive::RequestBody;
use super::scope::http_scope;
use super::send::ResponseSink;
use super::shared::{Activity, ActivityGuard, ConnInfo, Shared, WebSocketStreamGuard};
use super::websocket::{self, HandshakeFuture, Holds};
use crate::middleware::proxy_headers::{Forwarding, is_proxy_header};

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
    fn reject(&self, status: StatusCode, close: bool, finish: Finish) -> HeadFuture {
        HeadFuture {
            state: FutureState::Ready(Some(Box::new(server_response(status, close)))),
            finish: Some(finish),
            http2: None,
            yielded: false,
        }
    }
}

impl Service<Request<Incoming>> for ConnService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = HeadFuture;

    fn call(&self, request: Request<Incoming>) -> HeadFuture {
        // Taken apart at once: the head is read where it lies, and its header map moves into
        // the scope, with no move of the whole head on the way.
        let (mut head, body) = request.into_parts();
        let scan = HeadScan::new(&head.headers);
        // Resolved once, for the scope and the access log alike; only when a proxy header
        // came (without one, there is nothing to resolve).
        let forwarding = match &self.shared.config.proxy_headers {
            Some(trusted) if scan.forwarded => {
                Some(trusted.resolve(self.conn.peer.client, &head.headers))
            }
            _ => None,
        };
        let log = if self.shared.config.access_log {
            let client = forwarding
                .as_ref()
                .and_then(|forwarding| forwarding.client)
                .unwrap_or(self.conn.peer.client);
            AccessLog::start(&head, client)
        } else {
            None
        };
        let finish = FinishGuard::new(ActivityGuard::new(&self.activity), log);
        let http1 = head.version != Version::HTTP_2;

        // hyper enforces the header count for HTTP/1 (431 before the request gets here); an
        // HTTP/2 header block is only bounded in bytes, so its count is checked here.
        if head.headers.len() > self.shared.config.max_headers {
            return self.reject(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, false, finish);
        }
        if let Some(why) = malformed_head(&head, &scan) {
            tracing::info!("{why}: answering 400");
            return self.reject(StatusCode::BAD_REQUEST, http1, finish);
        }
        let limit = self.shared.config.max_request_body;
        if let Some(limit) = limit {
            // The size hint's lower bound is the `Content-Length`, when there is one.
            if body.size_hint().lower() > limit {
                tracing::info!(limit, "request body over the limit: answering 413");
                return self.reject(StatusCode::PAYLOAD_TOO_LARGE, http1, finish);
            }
        }

        // Every request is dispatched here, by protocol: a WebSocket handshake
        // (`Upgrade: websocket`) goes to the WebSocket protocol, everything else is HTTP.
        if (scan.upgrade && is_websocket_upgrade(&head.headers)) || is_extended_connect(&head) {
            return self.websocket(Request::from_parts(head, body), finish, forwarding);
        }
        let trailers_allowed = !http1 || (scan.te && te_trailers(&head.headers));
        if let Some(service) = &self.shared.direct {
            if let Some(permit) = self.direct_place(&head, http1) {
                let body = DirectBody::new(body, limit);
                return self.direct(
                    service,
                    head,
                    body,
                    finish,
                    forwarding,
                    trailers_allowed,
                    permit,
                );
            }
        }
        self.http(
            &mut head,
            body,
            finish,
            forwarding,
            trailers_allowed,
            http1,
            limit,
        )
    }
}

/// What one pass over a request's headers found, so that the checks every request goes
/// through do not each look a name up in the header map (a hash of the name per lookup):
/// the lookups run only for the headers that are there.
#[derive(Debug, Default)]
struct HeadScan {
    /// How many `Host` headers came, counted up to two.
    hosts: u8,
    /// A `TE` header came.
    te: bool,
    /// An `Upgrade` header came.
    upgrade: bool,
    /// A header a proxy writes came (`Forwarded`, `X-Forwarded-For`, `X-Forwarded-Proto`).
    forwarded: bool,
}

impl HeadScan {
    fn new(headers: &HeaderMap) -> Self {
        let mut scan = HeadScan::default();
        for (name, _) in headers {
            if *name == HOST {
                scan.hosts = scan.hosts.saturating_add(1).min(2);
            } else if *name == TE {
                scan.te = true;
            } else if *name == UPGRADE {
                scan.upgrade = true;
            } else if is_proxy_header(name) {
                scan.forwarded = true;
            }
        }
        scan
    }
}

impl ConnService {
    /// Answers a WebSocket handshake: see the `websocket` module.
    fn websocket(
        &self,
        request: Request<Incoming>,
        finish: Finish,
        forwarding: Option<Forwarding>,
    ) -> HeadFuture {
        let http2 = request.version() == Version::HTTP_2;
        let holds = Holds {
            permit: self.permit.clone(),
            // An HTTP/2 connection goes on with its other streams: while the WebSocket's
            // stream is open the connection is not idle.
            stream: http2.then(|| WebSocketStreamGuard::new(&self.activity)),
        };
        // An HTTP/2 WebSocket's app call counts among the connection's app calls, as an
        // HTTP/2 request's does: a client cannot get past the bound by resetting WebSocket
        // streams whose apps run on.
        let app_calls = if http2 {
            self.activity.app_calls.clone()
        } else {
            None
        };
        let future = websocket::handshake(
            request,
            &self.conn,
            &self.shared,
            holds,
            app_calls,
            forwarding,
        );
        HeadFuture {
            state: FutureState::Handshake(future),
            finish: Some(finish),
            http2: None,
            yielded: false,
        }
    }

    /// Whether a request goes to the app's direct service (see the `direct` module), and with
    /// which place among the connection's calls: `None` sends it on the app's path, where
    /// it waits for a place, or is looked at once more on a connection resetting streams;
    /// and a target that is not a path (`OPTIONS *`) gets the app's answer to it.
    fn direct_place(&self, head: &Parts, http1: bool) -> Option<Option<OwnedSemaphorePermit>> {
        if !head.uri.path().starts_with('/') {
            return None;
        }
        if http1 {
            return Some(None);
        }
        if self.activity.wary_of_resets() {
            return None;
        }
        match &self.activity.app_calls {
            Some(calls) => calls.clone().try_acquire_owned().ok().map(Some),
            None => Some(None),
        }
    }

    /// Hands the request to the app's direct service, with what its scope would tell it
    /// besides: the client (after the proxy headers, which may also set `Host`), the lifespan
    /// state and the shutdown signal. The URI is given in origin form (`/path?query`), as
    /// the app's path gives it.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn direct(
        &self,
        service: &DirectService,
        mut head: Parts,
        (body, fault): (DirectBody, Option<Arc<BodyFault>>),
        finish: Finish,
        forwarding: Option<Forwarding>,
        trailers_allowed: bool,
        permit: Option<OwnedSemaphorePermit>,
    ) -> HeadFuture {
        let http1 = head.version != Version::HTTP_2;
        if head.uri.scheme().is_some() {
            head.uri = head
                .uri
                .path_and_query()
                .map_or_else(|| Uri::from_static("/"), |target| Uri::from(target.clone()));
        }
        let mut client = self.conn.peer.client;
        if let Some(forwarding) = forwarding {
            forwarding.apply_to_request(&mut client, &mut head.headers);
        }
        let context = DirectContext {
            client,
            state: self.shared.state.clone(),
            shutdown: self.shared.scope_shutdown.signal(),
        };
        let request = Request::from_parts(head, body);
        // A panic in the service's synchronous part is its outcome, a 500, as one in its
        // future is.
        let future = std::panic::catch_unwind(AssertUnwindSafe(|| service.call(request, context)))
            .unwrap_or_else(|payload| {
                let error: BoxError = Box::new(Error::from_panic(payload));
                Box::pin(std::future::ready(Err(error)))
            });
        HeadFuture {
            state: FutureState::Direct(DirectCall {
                future: Some(future),
                head: None,
                fault,
                permit,
                trailers_allowed,
                http1,
            }),
            finish: Some(finish),
            http2: (!http1).then(|| self.activity.clone()),
            yielded: false,
        }
    }

    /// Serves the request of `head` and `body` as HTTP: its scope (which takes the head's
    /// header map), its app task, and the future of its response head.
    #[allow(clippy::too_many_arguments)]
    fn http(
        &self,
        head: &mut Parts,
        body: Incoming,
        mut finish: Finish,
        forwarding: Option<Forwarding>,
        trailers_allowed: bool,
        http1: bool,
        limit: Option<u64>,
    ) -> HeadFuture {
        // The method and target are for the app's error log lines: clones of the request's
        // own bytes.
        let exchange = Arc::new(ServerExchange::new(
            head.method.clone(),
            head.uri.path_and_query().cloned(),
        ));
        finish.set_exchange(exchange.clone());
        let receive = Receiver::new(RequestBody::new(body, exchange.clone(), limit, http1));
        let app = self.shared.app.clone();
        let tasks = self.shared.app_tasks.clone();
        // An HTTP/2 request's app call takes one of the connection's permits, held until the
        // app returns; without one, it waits.
        let calls = if http1 {
            None
        } else {
            self.activity.app_calls.clone()
        };
        let permit = match calls {
            Some(calls) => match calls.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    let call = self.with_scope(
                        head,
                        forwarding,
                        &exchange,
                        trailers_allowed,
                        |scope, send| {
                            Box::new(QueuedCall {
                                app,
                                scope,
                                receive,
                                send,
                            })
                        },
                    );
                    return HeadFuture {
                        state: FutureState::Queued {
                            permit: Box::pin(calls.acquire_owned()),
                            call,
                            exchange,
                            tasks,
                        },
                        finish: Some(finish),
                        http2: Some(self.activity.clone()),
                        yielded: false,
                    };
                }
            },
            None => None,
        };
        let call = AppCall::start(exchange.clone(), permit, tasks, || {
            self.with_scope(
                head,
                forwarding,
                &exchange,
                trailers_allowed,
                |scope, send| app.call_owned(scope, receive, send),
            )
        });
        let state = FutureState::Running {
            call: Some(call),
            polled: false,
            exchange,
        };
        HeadFuture {
            state,
            finish: Some(finish),
            http2: (!http1).then(|| self.activity.clone()),
            yielded: false,
        }
    }

    /// Builds the request's scope (which takes the head's header map) and its sender, and
    /// hands both to `take`. They are made where they are handed over, so that the scope, a
    /// few hundred bytes, is not moved again on its way to the app.
    #[inline]
    fn with_scope<R>(
        &self,
        head: &mut Parts,
        forwarding: Option<Forwarding>,
        exchange: &Arc<ServerExchange>,
        trailers_allowed: bool,
        take: impl FnOnce(Scope, Sender) -> R,
    ) -> R {
        let mut scope = Scope::from(http_scope(head, &self.conn, &self.shared));
        if let Some(forwarding) = forwarding {
            forwarding.apply(&mut scope);
        }
        let send = Sender::new(ResponseSink::new(
            SendProtocol::for_scope(&scope),
            exchange.clone(),
            trailers_allowed,
        ));
        take(scope, send)
    }
}

/// Why the request head is malformed in a way hyper's parser lets through, if it is.
///
/// - HTTP/1.1 requires exactly one `Host` header (RFC 9112 3.2): a request without one, or
///   with two (which the app could read either way), gets 400. HTTP/1.0 may leave it out;
///   HTTP/2 carries `:authority`.
/// - The request target must be ASCII (RFC 9112 3.2, RFC 3986): raw bytes above 127 get
///   400, as uvicorn answers; percent-encoded ones are what clients send.
fn malformed_head(head: &Parts, scan: &HeadScan) -> Option<&'static str> {
    if head.version == Version::HTTP_11 {
        match scan.hosts {
            0 => return Some("HTTP/1.1 request without a Host header"),
            1 => {}
            _ => return Some("HTTP/1.1 request with more than one Host header"),
        }
    }
    let target = head.uri.path_and_query().map_or("", PathAndQuery::as_str);
    if !target.is_ascii() {
        return Some("raw non-ASCII bytes in the request target");
    }
    None
}

/// True for an HTTP/2 WebSocket request (RFC 8441): `CONNECT` with `:protocol websocket`.
fn is_extended_connect(head: &Parts) -> bool {
    head.method == Method::CONNECT
        && head
            .extensions
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

/// An HTTP/2 app call waiting for its place among the connection's: the app is called once
/// it has one, and never if the stream is reset first.
struct QueuedCall {
    app: Arc<dyn App>,
    scope: Scope,
    receive: Receiver,
    send: Sender,
}

enum FutureState {
    /// A response the server made itself (a 400, 413 or 431, never the app's); `None` once
    /// returned. Boxed: unboxed, it would make every request's future four times as large,
    /// and hyper moves that future on every request.
    Ready(Option<Box<Response<ResponseBody>>>),
    /// The app runs, polled by this future until its head is ready (see the `call` module):
    /// an app that answers without waiting (most do) completes in the first poll, with no
    /// task of its own and no wake-up across tasks. Once the head is ready, an app that still
    /// runs goes with the response body, which polls it on; dropped before that (the client
    /// left), this future detaches the app into a task of its own, so it is never dropped
    /// mid-await.
    Running {
        /// The app's call; `None` once it returned.
        call: Option<AppCall<ResponseBody>>,
        /// True once this future was polled: an HTTP/2 stream reset before that never calls
        /// its app.
        polled: bool,
        exchange: Arc<ServerExchange>,
    },
    /// The connection has as many app calls running as it may (HTTP/2): the app is called
    /// once one of them returns. Dropped meanwhile (the client reset the stream), the app is
    /// never called.
    Queued {
        permit: Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>,
        call: Box<QueuedCall>,
        exchange: Arc<ServerExchange>,
        tasks: tokio_util::task::TaskTracker,
    },
    /// The app's direct service runs (see the `direct` module), polled by this future until
    /// its head and first body frame are ready. Dropped meanwhile (the client left), the
    /// service's future is dropped, as hyper drops a tower service's.
    Direct(DirectCall),
    /// Waiting for the app's answer to a WebSocket handshake. Dropping it (the client left)
    /// ends the WebSocket for the app.
    Handshake(HandshakeFuture),
    /// The head was returned.
    Done,
}

/// A call of the app's direct service, until its response head goes out.
struct DirectCall {
    /// The service's future; `None` once it gave its response.
    future: Option<DirectFuture>,
    /// The response, while its body's first frame is not ready. Boxed: only a response
    /// whose body waits before its first frame (an event stream) is kept here.
    head: Option<Box<Response<DirectResponseBody>>>,
    /// Where the request body reports a fault the server answers for itself.
    fault: Option<Arc<BodyFault>>,
    /// The call's place among the connection's (HTTP/2), held until the response is done.
    permit: Option<OwnedSemaphorePermit>,
    trailers_allowed: bool,
    http1: bool,
}

impl DirectCall {
    /// Polls the service until the response head and the body's first frame are ready: as
    /// on the app's path, the head is held back until then, so that a body failing at once
    /// is a `500` and not an aborted response. A body that ends with its first frame goes
    /// out whole, with a `content-length`.
    fn poll_response(&mut self, cx: &mut Context<'_>) -> Poll<Response<ResponseBody>> {
        let response = match self.head.take() {
            Some(response) => *response,
            None => {
                let Some(future) = &mut self.future else {
                    return Poll::Pending;
                };
                let polled =
                    match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                        Ok(Poll::Pending) => return Poll::Pending,
                        Ok(Poll::Ready(result)) => Ok(result),
                        Err(payload) => Err(payload),
                    };
                self.future = None;
                match polled {
                    Ok(Ok(response)) => response,
                    Ok(Err(e)) => return Poll::Ready(self.failed(Error::new(e), "failed")),
                    Err(payload) => {
                        return Poll::Ready(self.failed(Error::from_panic(payload), "panicked"));
                    }
                }
            }
        };
        if let Some(status) = self.fault_status() {
            return Poll::Ready(server_response(status, self.http1));
        }
        let (parts, mut body) = response.into_parts();
        let first =
            std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut body).poll_frame(cx)));
        let first = match first {
            Ok(Poll::Pending) => {
                self.head = Some(Box::new(Response::from_parts(parts, body)));
                return Poll::Pending;
            }
            Ok(Poll::Ready(first)) => first,
            Err(payload) => {
                let e = Error::from_panic(payload);
                return Poll::Ready(self.failed(e, "panicked in its response body"));
            }
        };
        let body = match first {
            None => ResponseBody::full(Bytes::new()),
            Some(Err(e)) => {
                return Poll::Ready(self.failed(Error::new(e), "failed in its response body"));
            }
            Some(Ok(frame)) if frame.is_data() && body.is_end_stream() => {
                ResponseBody::full(frame.into_data().unwrap_or_default())
            }
            Some(Ok(frame)) => {
                ResponseBody::direct(body, frame, self.trailers_allowed, self.permit.take())
            }
        };
        Poll::Ready(Response::from_parts(parts, body))
    }

    /// The status the server answers with because of the request body (`413`, `400`), if
    /// it failed so: the service's own answer, or failure, came from that fault.
    fn fault_status(&self) -> Option<StatusCode> {
        self.fault.as_ref().and_then(|fault| fault.status())
    }

    /// The answer to a service that failed (`how`) before its head went out: a `500`, or
    /// the status of the request body's fault that made it fail. A client that left is not
    /// logged as an error (the error keeps its kind through `Error::new`, as an app's does).
    fn failed(&self, error: Error, how: &str) -> Response<ResponseBody> {
        if let Some(status) = self.fault_status() {
            return server_response(status, self.http1);
        }
        if error.is_disconnected() {
            tracing::debug!(%error, "the service stopped: the client left");
        } else {
            tracing::error!(%error, "the service {how} before its response: answered 500");
        }
        server_response(StatusCode::INTERNAL_SERVER_ERROR, false)
    }
}

/// hyper's future for one request: it polls the app until the response head is ready.
/// Dropping it (the client left before the head) ends the request for the app, which learns
/// it from `recv` in a task of its own.
pub(crate) struct HeadFuture {
    state: FutureState,
    /// Ends the request once hyper is done with the response; handed to the response body
    /// with the head.
    finish: Option<Finish>,
    /// The connection of an HTTP/2 request: dropped before its head, the client reset its
    /// stream, and the connection counts it.
    http2: Option<Arc<Activity>>,
    /// True once the first poll went by: an HTTP/2 request's, on a connection wary of
    /// resets, gave hyper its turn to look for a reset of the stream.
    yielded: bool,
}

/// The end-of-request guard of this server's responses.
type Finish = FinishGuard<ResponseBody>;

impl std::fmt::Debug for HeadFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadFuture").finish_non_exhaustive()
    }
}

impl Future for HeadFuture {
    type Output = Result<Response<ResponseBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if !this.yielded {
            this.yielded = true;
            // hyper looks for the client's RST_STREAM only while this future is pending, and
            // it reads a whole batch of frames before it accepts the streams in it: a stream
            // reset in the same batch as its request ("rapid reset") is dropped here, after
            // one turn of the scheduler, before its app is called. Only on a connection that
            // may be resetting streams: see `Activity::wary_of_resets`.
            if this
                .http2
                .as_ref()
                .is_some_and(|activity| activity.wary_of_resets())
            {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        if let FutureState::Queued { permit, .. } = &mut this.state {
            let Poll::Ready(permit) = permit.as_mut().poll(cx) else {
                return Poll::Pending;
            };
            if let FutureState::Queued {
                call,
                exchange,
                tasks,
                ..
            } = std::mem::replace(&mut this.state, FutureState::Done)
            {
                let QueuedCall {
                    app,
                    scope,
                    receive,
                    send,
                } = *call;
                // The semaphore is never closed.
                let call = AppCall::start(exchange.clone(), permit.ok(), tasks, || {
                    app.call_owned(scope, receive, send)
                });
                this.state = FutureState::Running {
                    call: Some(call),
                    polled: false,
                    exchange,
                };
            }
        }
        let mut response = match &mut this.state {
            FutureState::Ready(response) => match response.take() {
                Some(response) => *response,
                None => return Poll::Pending,
            },
            FutureState::Running {
                call,
                polled,
                exchange,
            } => {
                *polled = true;
                AppCall::poll_in(call, cx);
                let Poll::Ready(mut response) = exchange.poll_head(cx) else {
                    return Poll::Pending;
                };
                if let Some(call) = call.take() {
                    response.body_mut().set_app_call(call);
                }
                response
            }
            FutureState::Direct(call) => match call.poll_response(cx) {
                Poll::Ready(response) => response,
                Poll::Pending => return Poll::Pending,
            },
            FutureState::Queued { .. } => return Poll::Pending,
            FutureState::Handshake(future) => match future.as_mut().poll(cx) {
                Poll::Ready(response) => response,
                Poll::Pending => return Poll::Pending,
            },
            FutureState::Done => return Poll::Pending,
        };
        this.state = FutureState::Done;
        if let Some(mut finish) = this.finish.take() {
            finish.responded(response.status().as_u16(), response.headers());
            response.body_mut().set_finish(finish);
        }
        Poll::Ready(Ok(response))
    }
}

impl Drop for HeadFuture {
    fn drop(&mut self) {
        let abandoned = match &mut self.state {
            FutureState::Queued { exchange, .. } => {
                exchange.abandon_head();
                true
            }
            FutureState::Running {
                call,
                polled,
                exchange,
            } => {
                exchange.abandon_head();
                // An app that runs goes on in a task of its own, and learns from `recv` that
                // the client left; an HTTP/2 stream reset before this future was polled never
                // calls its app. An HTTP/1 app is called even then: its request was read.
                if let Some(call) = call.take() {
                    if *polled || self.http2.is_none() {
                        call.detach();
                    }
                }
                true
            }
            // The service's future is dropped with this one, as under hyper alone.
            FutureState::Direct(_) => true,
            _ => false,
        };
        if let (true, Some(activity)) = (abandoned, &self.http2) {
            activity.client_reset();
        }
    }
}

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
