//! Running an [`App`] for one WebSocket connection, in two phases: [`start`] answers the
//! HTTP handshake with the app's first event, then [`Accepted::run`] pumps frames and events
//! over the upgraded IO.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use asgi_core::async_trait;
use asgi_core::extensions::WEBSOCKET_HTTP_RESPONSE;
use asgi_core::protocol::SendProtocol;
use asgi_core::{
    App, Error, EventSink, EventSource, ProtocolError, ReceiveEvent, Receiver, Scope, SendError,
    SendEvent, Sender, WebSocketScope,
};
use bytes::Bytes;
use futures_util::FutureExt;
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::sync::oneshot;

use crate::close;
use crate::config::WebSocketConfig;
use crate::deflate::DeflateParams;
use crate::frame::MAX_CLOSE_REASON;
use crate::handshake::UpgradeRequest;
use crate::pump::Pump;

/// What the pump hands to the app's side when the connection is over: the message that
/// could not be queued yet, and the connection's one `websocket.disconnect`; and what the
/// app's side tells the pump back: that the app has seen the disconnect.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    pub(crate) pending: Option<ReceiveEvent>,
    pub(crate) disconnect: Option<ReceiveEvent>,
    /// The app's `recv` returned the disconnect, or the app dropped its `receive`: it is
    /// done with every message read before it. A failing pump waits for this.
    pub(crate) disconnect_seen: bool,
    /// The app's `recv` returned the disconnect: what it sends after that is refused with
    /// `Disconnected`. (An app that merely dropped its `receive` may still send: an app may
    /// answer `websocket.connect` with a close without reading anything.)
    pub(crate) disconnect_read: bool,
    /// The pump to wake when `disconnect_seen` is set.
    pub(crate) waker: Option<Waker>,
}

impl Tail {
    fn mark_disconnect_seen(&mut self) {
        self.disconnect_seen = true;
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

pub(crate) fn lock(tail: &Mutex<Tail>) -> MutexGuard<'_, Tail> {
    // The lock is held for a field move only, never across a panic point.
    tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the app's `send` hands to the server.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// An event the protocol allows.
    Event(SendEvent),
    /// The app accepted with a subprotocol the client did not offer: the handshake fails.
    Violation(ProtocolError),
}

/// The app's run, as the pump sees it: what it returned once it did. The run itself is an
/// [`AppRun`] that the caller of [`start`] spawns.
#[derive(Debug)]
pub(crate) struct AppTask {
    /// Resolves with what the app returned; closed unanswered when the run was dropped.
    returned: oneshot::Receiver<Result<(), Error>>,
    exit: Option<Result<(), Error>>,
}

impl AppTask {
    /// Resolves once the app returned, with what it returned.
    pub(crate) fn poll_exit(&mut self, cx: &mut Context<'_>) -> Poll<&Result<(), Error>> {
        if self.exit.is_none() {
            let returned = std::task::ready!(Pin::new(&mut self.returned).poll(cx));
            // The run catches panics itself; no answer means it was dropped unfinished.
            self.exit = Some(returned.unwrap_or_else(|_| {
                Err(Error::msg(
                    "the WebSocket app was dropped before it returned",
                ))
            }));
        }
        match &self.exit {
            Some(exit) => Poll::Ready(exit),
            None => Poll::Pending,
        }
    }

    async fn exited(&mut self) {
        std::future::poll_fn(|cx| self.poll_exit(cx).map(|_| ())).await;
    }

    /// The error the app returned, once it returned; leaves `Ok` in its place.
    fn take_error(&mut self) -> Option<Error> {
        match self.exit.take() {
            Some(Err(e)) => {
                self.exit = Some(Ok(()));
                Some(e)
            }
            other => {
                self.exit = other;
                None
            }
        }
    }
}

/// The server's ends of the app's `receive` and `send`, and the app's task.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) to_app: mpsc::Sender<ReceiveEvent>,
    pub(crate) from_app: mpsc::Receiver<Outgoing>,
    pub(crate) tail: Arc<Mutex<Tail>>,
    pub(crate) app: AppTask,
}

impl Link {
    /// Ends the app's side: `recv` returns `websocket.disconnect` with `code` (after what is
    /// queued), `send` returns `Disconnected`. The app's task goes on until it returns.
    fn finish(mut self, code: u16, reason: String) {
        self.from_app.close();
        lock(&self.tail).disconnect = Some(ReceiveEvent::WebSocketDisconnect { code, reason });
        // Dropping `to_app` (with `self`) wakes a pending `recv`.
    }
}

/// How the app answered `websocket.connect`: what the server answers the HTTP handshake with.
#[derive(Debug)]
#[non_exhaustive]
pub enum HandshakeOutcome {
    /// `websocket.accept`: answer `101 Switching Protocols` (`200 OK` for an HTTP/2
    /// extended CONNECT) with [`Accepted::response_headers`], then call [`Accepted::run`] with the upgraded IO.
    Accept(Accepted),
    /// `websocket.close` before accept: answer `403 Forbidden`, no handshake. The app's
    /// `recv` returns `websocket.disconnect` with this code.
    Close {
        /// The code the app sent.
        code: u16,
        /// The reason the app sent.
        reason: String,
    },
    /// A denial response (`websocket.http.response.start` and `.body`, the ASGI WebSocket
    /// denial response extension): answer with its status, headers and body, verbatim.
    Deny(Denial),
    /// The app failed, panicked or returned before answering, or answered against the
    /// protocol (accepted a subprotocol the client did not offer): answer
    /// `500 Internal Server Error`. The error was already logged through `tracing`.
    Failed(Error),
}

/// An HTTP response that denies the WebSocket, as the app sent it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Denial {
    /// The status of `websocket.http.response.start`.
    pub status: StatusCode,
    /// The headers of `websocket.http.response.start`, in order.
    pub headers: HeaderMap,
    /// The body, as the app sends it.
    pub body: DenialBody,
}

/// The body of a [`Denial`]: the chunks of the app's `websocket.http.response.body` events,
/// streamed as the app sends them (through the bounded send queue, so a slow client slows the
/// app down).
///
/// It is a [`Stream`](futures_util::Stream) of `Result<Bytes, Error>`; an `Err` means the app
/// stopped (returned, failed or panicked) before the last chunk: the server must abort the
/// response so that a truncated body does not look complete. Empty chunks are skipped.
#[derive(Debug)]
pub struct DenialBody {
    link: Option<Link>,
}

impl DenialBody {
    /// The next chunk; `None` after the last one.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future loses no chunk.
    pub async fn chunk(&mut self) -> Option<Result<Bytes, Error>> {
        std::future::poll_fn(|cx| self.poll_chunk(cx)).await
    }

    /// Reads the whole body, for tests and small bodies.
    ///
    /// # Errors
    ///
    /// The app stopped before the last chunk.
    pub async fn collect(mut self) -> Result<Bytes, Error> {
        let mut body = Vec::new();
        while let Some(chunk) = self.chunk().await {
            body.extend_from_slice(&chunk?);
        }
        Ok(body.into())
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        loop {
            let Some(link) = &mut self.link else {
                return Poll::Ready(None);
            };
            match std::task::ready!(link.from_app.poll_recv(cx)) {
                Some(Outgoing::Event(SendEvent::WebSocketHttpResponseBody { body, more_body })) => {
                    if !more_body {
                        self.end();
                    }
                    if !body.is_empty() {
                        return Poll::Ready(Some(Ok(body)));
                    }
                }
                // The protocol checker lets only body events through after the start.
                Some(_) => {}
                None => {
                    self.end();
                    return Poll::Ready(Some(Err(Error::msg(
                        "the app stopped before the last chunk of its denial response",
                    ))));
                }
            }
        }
    }

    fn end(&mut self) {
        if let Some(link) = self.link.take() {
            link.finish(close::ABNORMAL, String::new());
        }
    }
}

impl futures_util::Stream for DenialBody {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_chunk(cx)
    }
}

/// An accepted WebSocket: the 101 response to send, and the connection to [`run`](Accepted::run)
/// once the server has the upgraded IO.
///
/// Dropping it without running it (the client went away during the upgrade) ends the app's
/// side: its `recv` returns `websocket.disconnect` with 1006.
#[derive(Debug)]
pub struct Accepted {
    response_headers: HeaderMap,
    subprotocol: Option<String>,
    deflate: Option<DeflateParams>,
    config: WebSocketConfig,
    link: Link,
}

impl Accepted {
    /// The headers of the `101 Switching Protocols` response: `Upgrade`, `Connection`,
    /// `Sec-WebSocket-Accept` (not for an HTTP/2 extended CONNECT, answered with `200`),
    /// `Sec-WebSocket-Protocol` (when the app chose one),
    /// `Sec-WebSocket-Extensions` (when permessage-deflate was negotiated), then the app's
    /// own headers. App headers that would contradict the handshake (those five names) are
    /// dropped.
    pub fn response_headers(&self) -> &HeaderMap {
        &self.response_headers
    }

    /// The subprotocol the app chose.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// The permessage-deflate parameters in use, if any.
    pub fn deflate(&self) -> Option<&DeflateParams> {
        self.deflate.as_ref()
    }

    /// Runs the connection over the upgraded `io` until it closes, and returns how it
    /// closed: frames become `websocket.receive` events, `websocket.send` events become
    /// frames, pings keep it alive, and the app gets exactly one `websocket.disconnect`.
    ///
    /// When `shutdown` resolves (pass the drain deadline, or the scope's
    /// [`ShutdownSignal`](asgi_core::ShutdownSignal)), the server closes the connection with
    /// 1001 (going away); pass `std::future::pending()` for never.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the connection without a close frame; the app's `recv`
    /// returns `websocket.disconnect` with 1006.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with the time driver enabled, when pings or the close
    /// timeout are on (they are by default).
    pub async fn run<IO, F>(self, io: IO, shutdown: F) -> Closed
    where
        IO: AsyncRead + AsyncWrite + Unpin,
        F: Future<Output = ()>,
    {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut pump = Pump::new(io, self.link, &self.config, self.deflate);
        std::future::poll_fn(|cx| pump.poll_run(cx, shutdown.as_mut())).await
    }
}

/// Who ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseInitiator {
    /// The client: its close frame, or the network dropped.
    Client,
    /// The app: `websocket.close`, or it returned.
    App,
    /// The server: a protocol error by the client, a message too big, a ping without pong,
    /// or shutdown.
    Server,
}

/// How a connection closed: what [`Accepted::run`] returns, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Closed {
    /// The close code: the one in the app's `websocket.disconnect`, or, when the app had
    /// returned, the one the server sent for it (1000, or 1011 after an error).
    pub code: u16,
    /// The close reason that goes with `code`.
    pub reason: String,
    /// Who ended the connection.
    pub initiator: CloseInitiator,
}

/// The app's run for one WebSocket connection: the app's `call`, its panics caught, its
/// failure logged. [`start`] hands it to the caller's spawner, so that the server decides
/// where it runs and can wait for it when it drains.
///
/// Dropping it unfinished ends the app where it waits; the connection then sees the app as
/// gone.
#[must_use = "the app only runs when this future is spawned or awaited"]
pub struct AppRun(Pin<Box<dyn Future<Output = ()> + Send>>);

impl std::fmt::Debug for AppRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppRun").finish_non_exhaustive()
    }
}

impl Future for AppRun {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

/// Starts `app` for one WebSocket connection: hands its run (with `scope`) to `spawn`,
/// delivers `websocket.connect`, and returns a future of the app's answer.
///
/// The scope's `subprotocols` are set from `request`, and the `websocket.http.response`
/// extension (denial responses) is declared in its `extensions`. permessage-deflate is
/// negotiated from `request` and [`WebSocketConfig::deflate`].
///
/// The returned future resolves with the [`HandshakeOutcome`]; the server answers the HTTP
/// request with it.
///
/// # Cancel safety
///
/// Dropping the future before it resolves (the client left) ends the app's side: its `recv`
/// returns `websocket.disconnect` with 1006, its `send` returns `Disconnected`.
///
/// `spawn` gets the app's [`AppRun`] at once and decides where it runs: a server spawns it
/// in a task it tracks, so that its drain waits for the app. This crate makes no runtime
/// decision of its own.
///
/// # Example
///
/// ```
/// use asgi_core::{Error, Receiver, Scope, Sender, WebSocketScope};
/// use asgi_ws::handshake::UpgradeRequest;
/// use asgi_ws::{HandshakeOutcome, WebSocket, WebSocketConfig};
///
/// async fn app(scope: Scope, receive: Receiver, send: Sender) -> Result<(), Error> {
///     let Scope::WebSocket(scope) = scope else { return Ok(()) };
///     let mut ws = WebSocket::new(scope, receive, send);
///     ws.accept_subprotocol("chat").await
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let request = http::Request::get("/ws")
///     .header("upgrade", "websocket")
///     .header("connection", "upgrade")
///     .header("sec-websocket-version", "13")
///     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
///     .header("sec-websocket-protocol", "chat")
///     .body(())
///     .unwrap();
/// let (parts, ()) = request.into_parts();
/// let upgrade = UpgradeRequest::from_parts(&parts).unwrap();
/// let scope = WebSocketScope::new("/ws");
/// let spawn = |run| {
///     tokio::spawn(run);
/// };
/// match asgi_ws::start(app, scope, &upgrade, &WebSocketConfig::default(), spawn).await {
///     HandshakeOutcome::Accept(accepted) => {
///         let headers = accepted.response_headers();
///         assert_eq!(headers["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
///         assert_eq!(headers["sec-websocket-protocol"], "chat");
///         // Answer 101 with `headers`, then: accepted.run(upgraded_io, drain_deadline).await
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// # });
/// ```
pub fn start(
    app: impl App,
    scope: impl Into<Box<WebSocketScope>>,
    request: &UpgradeRequest,
    config: &WebSocketConfig,
    spawn: impl FnOnce(AppRun),
) -> impl Future<Output = HandshakeOutcome> + Send + 'static {
    let mut scope: Box<WebSocketScope> = scope.into();
    scope.subprotocols = request.subprotocols().to_vec();
    scope.extensions.add_supported(WEBSOCKET_HTTP_RESPONSE);
    let path = scope.path.clone();
    let deflate = request.negotiate_deflate(config.deflate.as_ref());
    let accept_key = request.accept_key().cloned();
    let config = config.clone();

    let (to_app, app_rx) = mpsc::channel(config.receive_queue.max(1));
    let (app_tx, from_app) = mpsc::channel(config.send_queue.max(1));
    let tail = Arc::new(Mutex::new(Tail::default()));
    let scope = Scope::WebSocket(scope);
    let source = AppSource {
        first: Some(ReceiveEvent::WebSocketConnect),
        rx: app_rx,
        tail: tail.clone(),
        done: None,
    };
    let sink = AppSink {
        tx: app_tx,
        protocol: SendProtocol::for_scope(&scope),
        offered: request.subprotocols().to_vec(),
        tail: tail.clone(),
    };
    let task_path = path.clone();
    let (report, returned) = oneshot::channel();
    spawn(AppRun(Box::pin(async move {
        let call = app.call(scope, Receiver::new(source), Sender::new(sink));
        let result = match AssertUnwindSafe(call).catch_unwind().await {
            Ok(result) => result,
            Err(payload) => Err(Error::from_panic(payload)),
        };
        match &result {
            Err(e) if e.is_disconnected() => {
                tracing::debug!(path = %task_path, "WebSocket app ended: client disconnected");
            }
            Err(e) => tracing::error!(path = %task_path, error = %e, "WebSocket app failed"),
            Ok(()) => {}
        }
        // The connection may be gone already: then nobody needs the answer.
        let _ = report.send(result);
    })));
    let link = Link {
        to_app,
        from_app,
        tail,
        app: AppTask {
            returned,
            exit: None,
        },
    };
    handshake(link, path, accept_key, deflate, config)
}

async fn handshake(
    mut link: Link,
    path: String,
    accept_key: Option<HeaderValue>,
    deflate: Option<DeflateParams>,
    config: WebSocketConfig,
) -> HandshakeOutcome {
    let first = tokio::select! {
        // An answer the app sent before it returned is in the queue by then: read it first.
        biased;
        outgoing = link.from_app.recv() => outgoing,
        () = link.app.exited() => link.from_app.try_recv().ok(),
    };
    match first {
        Some(Outgoing::Event(SendEvent::WebSocketAccept {
            subprotocol,
            headers,
        })) => {
            let response_headers =
                response_headers(accept_key, subprotocol.as_deref(), deflate, headers);
            HandshakeOutcome::Accept(Accepted {
                response_headers,
                subprotocol,
                deflate,
                config,
                link,
            })
        }
        Some(Outgoing::Event(SendEvent::WebSocketClose { code, reason })) => {
            link.finish(code, reason.clone());
            HandshakeOutcome::Close { code, reason }
        }
        Some(Outgoing::Event(SendEvent::WebSocketHttpResponseStart { status, headers })) => {
            HandshakeOutcome::Deny(Denial {
                status,
                headers,
                body: DenialBody { link: Some(link) },
            })
        }
        Some(Outgoing::Violation(violation)) => {
            tracing::error!(path = %path, error = %violation, "WebSocket handshake failed");
            link.finish(close::ABNORMAL, String::new());
            HandshakeOutcome::Failed(violation.into())
        }
        // The protocol checker lets only the three answers through before accept.
        Some(Outgoing::Event(other)) => {
            let error = Error::msg(format!(
                "unexpected `{}` before the WebSocket was answered",
                other.type_name()
            ));
            link.finish(close::ABNORMAL, String::new());
            HandshakeOutcome::Failed(error)
        }
        // Every sender is gone: the app returned (or dropped its `send`) without answering.
        None => {
            link.app.exited().await;
            let error = link.app.take_error();
            failed(link, &path, error)
        }
    }
}

fn failed(link: Link, path: &str, error: Option<Error>) -> HandshakeOutcome {
    link.finish(close::ABNORMAL, String::new());
    // Errors were logged by the app's task; returning without an answer was not.
    let error = error.unwrap_or_else(|| {
        let e = Error::msg("the app returned without answering `websocket.connect`");
        tracing::error!(path = %path, error = %e, "WebSocket handshake failed");
        e
    });
    HandshakeOutcome::Failed(error)
}

/// Handshake headers the app may not override.
const HANDSHAKE_HEADERS: [HeaderName; 5] = [
    header::UPGRADE,
    header::CONNECTION,
    header::SEC_WEBSOCKET_ACCEPT,
    header::SEC_WEBSOCKET_PROTOCOL,
    header::SEC_WEBSOCKET_EXTENSIONS,
];

/// The accept response's headers; `accept_key` is `None` for an HTTP/2 extended CONNECT,
/// whose `200` has no `Upgrade`, `Connection` or `Sec-WebSocket-Accept`.
fn response_headers(
    accept_key: Option<HeaderValue>,
    subprotocol: Option<&str>,
    deflate: Option<DeflateParams>,
    app_headers: HeaderMap,
) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(5 + app_headers.len());
    if let Some(accept_key) = accept_key {
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept_key);
    }
    if let Some(subprotocol) = subprotocol {
        // The sink only lets through a subprotocol the client offered, which is a token.
        if let Ok(value) = HeaderValue::from_str(subprotocol) {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
        }
    }
    if let Some(deflate) = deflate {
        headers.insert(header::SEC_WEBSOCKET_EXTENSIONS, deflate.response_header());
    }
    let mut name = None;
    for (next_name, value) in app_headers {
        // `HeaderMap`'s iterator names only the first value of each name.
        if next_name.is_some() {
            name = next_name;
        }
        if let Some(name) = &name {
            if !HANDSHAKE_HEADERS.contains(name) {
                headers.append(name.clone(), value);
            }
        }
    }
    headers
}

/// The app's `receive`: `websocket.connect`, then what the pump queues, then the tail.
struct AppSource {
    first: Option<ReceiveEvent>,
    rx: mpsc::Receiver<ReceiveEvent>,
    tail: Arc<Mutex<Tail>>,
    done: Option<ReceiveEvent>,
}

#[async_trait]
impl EventSource for AppSource {
    async fn recv(&mut self) -> ReceiveEvent {
        if let Some(first) = self.first.take() {
            return first;
        }
        if let Some(done) = &self.done {
            return done.clone();
        }
        // `mpsc::Receiver::recv` is cancel safe, and so is everything after it (no await).
        if let Some(event) = self.rx.recv().await {
            return event;
        }
        let mut tail = lock(&self.tail);
        if let Some(pending) = tail.pending.take() {
            return pending;
        }
        let disconnect = tail
            .disconnect
            .clone()
            .unwrap_or(ReceiveEvent::WebSocketDisconnect {
                code: close::ABNORMAL,
                reason: String::new(),
            });
        tail.mark_disconnect_seen();
        tail.disconnect_read = true;
        self.done = Some(disconnect.clone());
        disconnect
    }
}

impl Drop for AppSource {
    fn drop(&mut self) {
        // An app without its `receive` cannot read the disconnect: do not wait for it.
        lock(&self.tail).mark_disconnect_seen();
    }
}

/// The app's `send`: checks each event against the protocol, then queues it for the server.
struct AppSink {
    tx: mpsc::Sender<Outgoing>,
    protocol: SendProtocol,
    offered: Vec<String>,
    /// Tells whether the app has seen the disconnect: a failing pump still takes events
    /// until the server's close frame, but none sent after the app read the disconnect.
    tail: Arc<Mutex<Tail>>,
}

#[async_trait]
impl EventSink for AppSink {
    async fn send(&mut self, event: SendEvent) -> Result<(), SendError> {
        if self.tx.is_closed() || lock(&self.tail).disconnect_read {
            return Err(SendError::Disconnected);
        }
        match &event {
            SendEvent::WebSocketAccept {
                subprotocol: Some(subprotocol),
                ..
            } if !self.offered.contains(subprotocol) => {
                let violation = ProtocolError::new(
                    "websocket.accept",
                    "a `subprotocol` the client offered in the scope's `subprotocols`",
                );
                // The handshake fails whether or not this arrives; the app learns it here.
                let _ = self.tx.send(Outgoing::Violation(violation.clone())).await;
                return Err(SendError::Protocol(violation));
            }
            SendEvent::WebSocketClose { code, reason } => {
                if !close::is_valid_code(*code) {
                    return Err(SendError::Protocol(ProtocolError::new(
                        "websocket.close",
                        "a `code` that may be sent in a close frame (1000-1003, 1007-1014, 3000-4999)",
                    )));
                }
                if reason.len() > MAX_CLOSE_REASON {
                    return Err(SendError::Protocol(ProtocolError::new(
                        "websocket.close",
                        "a `reason` of at most 123 bytes (it must fit in a close frame)",
                    )));
                }
            }
            _ => {}
        }
        self.protocol.check(&event)?;
        self.tx
            .send(Outgoing::Event(event))
            .await
            .map_err(|_| SendError::Disconnected)
    }
}
