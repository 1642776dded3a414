//! The app's `send` ([`ResponseSink`]) and the response body hyper writes
//! ([`ResponseBody`]).
//!
//! Nothing reaches the connection until the first body event (or `pathsend`): then, when the
//! start and that event are the whole response, the head and body go to hyper as one full
//! response, with no channel (the fast path). Otherwise the head goes out with a streaming
//! body fed by a bounded channel, so that a slow client makes `send` wait.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use asgi_core::{EventSink, ProtocolError, SendError, SendEvent, async_trait};
use asgi_ws::DenialBody;
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use http::header::{CONNECTION, CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

use super::access_log::AccessLog;
use super::connection::ActivityGuard;
use super::exchange::{Closed, Exchange, Progress};

/// How many body events may wait between the app and the connection: enough to keep the
/// connection writing while the app makes its next chunk, few enough that a slow client
/// stops the app quickly (hyper buffers what it writes on top of this).
pub const RESPONSE_BODY_CHANNEL_CAPACITY: usize = 4;

/// The size of the chunks in which `http.response.pathsend` streams a file: 64 KiB, a common
/// filesystem read size, so that a large file never sits in memory.
pub const PATHSEND_CHUNK_SIZE: usize = 64 * 1024;

/// What the expected-side of a `pathsend` protocol error says when the file cannot be sent.
const PATHSEND_EXPECTED: &str =
    "`http.response.pathsend` with the absolute path of a readable file";

/// One message from the sink to a streaming body.
#[derive(Debug)]
enum Chunk {
    /// Body bytes; more follow.
    Data(Bytes),
    /// The last body bytes; the response is complete.
    Last(Bytes),
    /// The trailers; the response is complete.
    Trailers(HeaderMap),
}

/// What makes a response body fail, so that hyper aborts the response (closes the HTTP/1
/// connection, resets the HTTP/2 stream) instead of ending it as if complete.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The app stopped sending before the response was complete (it failed or returned).
    Aborted,
    /// Reading the file of an `http.response.pathsend` failed.
    File(io::Error),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Aborted => f.write_str("the app ended the response before it was complete"),
            BodyError::File(e) => write!(f, "reading the file to send failed: {e}"),
        }
    }
}

impl std::error::Error for BodyError {}

/// What a response body does when hyper is done with it: ends the request for the app,
/// writes the access log line, and counts the connection's request as finished.
#[derive(Debug)]
pub(crate) struct Finish {
    pub(crate) exchange: Option<Arc<Exchange>>,
    pub(crate) log: Option<AccessLog>,
    pub(crate) _activity: ActivityGuard,
}

/// The body of every response the server sends.
#[derive(Debug)]
pub(crate) struct ResponseBody {
    kind: Kind,
    /// True once the whole body (and trailers) was handed to hyper.
    complete: bool,
    /// Bytes handed to hyper, for the access log.
    bytes: u64,
    finish: Option<Finish>,
}

#[derive(Debug)]
enum Kind {
    /// The whole body at once (the fast path); `None` once taken.
    Full(Option<Bytes>),
    /// A file first (if any), then the channel (if any).
    Stream {
        // Boxed: a file is rare, and the open file is large next to the other variants.
        file: Option<Box<FileChunks>>,
        rx: Option<mpsc::Receiver<Chunk>>,
        trailers_allowed: bool,
        failed: bool,
    },
    /// The body of a WebSocket denial response (`websocket.http.response.body` events);
    /// `None` once it ended.
    Denial(Option<DenialBody>),
}

impl ResponseBody {
    /// A body of these bytes, sent with a `content-length`. It counts as complete from the
    /// start: the app has handed over everything (hyper may still skip it, for `HEAD`).
    pub(crate) fn full(body: Bytes) -> Self {
        ResponseBody {
            kind: Kind::Full((!body.is_empty()).then_some(body)),
            complete: true,
            bytes: 0,
            finish: None,
        }
    }

    /// The body of a WebSocket denial response, streamed as the app sends it.
    pub(crate) fn denial(body: DenialBody) -> Self {
        ResponseBody {
            kind: Kind::Denial(Some(body)),
            complete: false,
            bytes: 0,
            finish: None,
        }
    }

    fn stream(
        file: Option<Box<FileChunks>>,
        rx: Option<mpsc::Receiver<Chunk>>,
        trailers_allowed: bool,
    ) -> Self {
        ResponseBody {
            kind: Kind::Stream {
                file,
                rx,
                trailers_allowed,
                failed: false,
            },
            complete: false,
            bytes: 0,
            finish: None,
        }
    }

    /// Gives the body what it does when hyper drops it.
    pub(crate) fn set_finish(&mut self, finish: Finish) {
        self.finish = Some(finish);
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        let Some(finish) = self.finish.take() else {
            return;
        };
        if let Some(exchange) = &finish.exchange {
            exchange.close(if self.complete {
                Closed::ResponseComplete
            } else {
                Closed::ClientGone
            });
        }
        if let Some(log) = finish.log {
            log.write(self.bytes, self.complete);
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let polled = match &mut this.kind {
            Kind::Full(body) => Poll::Ready(body.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream {
                file,
                rx,
                trailers_allowed,
                failed,
            } => poll_stream(cx, file, rx, *trailers_allowed, failed, &mut this.complete),
            Kind::Denial(body) => poll_denial(cx, body, &mut this.complete),
        };
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.bytes += data.len() as u64;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(body) => body.is_none(),
            Kind::Stream { file, rx, .. } => file.is_none() && rx.is_none(),
            Kind::Denial(body) => body.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(body) => SizeHint::with_exact(body.as_ref().map_or(0, |b| b.len() as u64)),
            // A file alone has a known length (hyper then sends `content-length`); with
            // trailers to follow it must be chunked, so no length is given.
            Kind::Stream {
                file: Some(file),
                rx: None,
                ..
            } => SizeHint::with_exact(file.remaining),
            Kind::Stream { .. } | Kind::Denial(_) => SizeHint::default(),
        }
    }
}

fn poll_stream(
    cx: &mut Context<'_>,
    file: &mut Option<Box<FileChunks>>,
    rx: &mut Option<mpsc::Receiver<Chunk>>,
    trailers_allowed: bool,
    failed: &mut bool,
    complete: &mut bool,
) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
    if *failed {
        return Poll::Ready(None);
    }
    if let Some(chunks) = file {
        match ready!(chunks.poll_chunk(cx)) {
            Some(Ok(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
            Some(Err(e)) => {
                tracing::error!(error = %e, "http.response.pathsend: reading the file failed; response aborted");
                *failed = true;
                *file = None;
                *rx = None;
                return Poll::Ready(Some(Err(BodyError::File(e))));
            }
            None => *file = None,
        }
    }
    let Some(receiver) = rx else {
        *complete = true;
        return Poll::Ready(None);
    };
    match ready!(receiver.poll_recv(cx)) {
        Some(Chunk::Data(data)) => Poll::Ready(Some(Ok(Frame::data(data)))),
        Some(Chunk::Last(data)) => {
            *rx = None;
            *complete = true;
            Poll::Ready((!data.is_empty()).then(|| Ok(Frame::data(data))))
        }
        Some(Chunk::Trailers(trailers)) => {
            *rx = None;
            *complete = true;
            // Over HTTP/1.1 trailers go out only when the request said `TE: trailers`;
            // otherwise they are dropped and the body simply ends.
            Poll::Ready(
                (trailers_allowed && !trailers.is_empty()).then(|| Ok(Frame::trailers(trailers))),
            )
        }
        None => {
            *rx = None;
            *failed = true;
            Poll::Ready(Some(Err(BodyError::Aborted)))
        }
    }
}

fn poll_denial(
    cx: &mut Context<'_>,
    body: &mut Option<DenialBody>,
    complete: &mut bool,
) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
    let Some(denial) = body else {
        return Poll::Ready(None);
    };
    match ready!(Pin::new(denial).poll_next(cx)) {
        Some(Ok(data)) => Poll::Ready(Some(Ok(Frame::data(data)))),
        Some(Err(e)) => {
            // The app stopped before its last chunk: abort, so the body does not look whole.
            tracing::error!(error = %e, "WebSocket denial response aborted");
            *body = None;
            Poll::Ready(Some(Err(BodyError::Aborted)))
        }
        None => {
            *body = None;
            *complete = true;
            Poll::Ready(None)
        }
    }
}

/// A file read in [`PATHSEND_CHUNK_SIZE`] chunks, up to the length it had when opened.
#[derive(Debug)]
struct FileChunks {
    file: tokio::fs::File,
    remaining: u64,
    buf: BytesMut,
}

impl FileChunks {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(self.remaining)
            .unwrap_or(PATHSEND_CHUNK_SIZE)
            .min(PATHSEND_CHUNK_SIZE);
        self.buf.resize(want, 0);
        let mut read_buf = ReadBuf::new(&mut self.buf[..]);
        ready!(Pin::new(&mut self.file).poll_read(cx, &mut read_buf))?;
        let n = read_buf.filled().len();
        if n == 0 {
            // The file shrank while it was being sent: the response cannot be completed.
            return Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file became shorter while it was being sent",
            ))));
        }
        self.remaining -= n as u64;
        self.buf.truncate(n);
        Poll::Ready(Some(Ok(self.buf.split().freeze())))
    }
}

/// A plain-text response the server makes itself (500, 413, 431): no details of the cause.
/// `close` asks an HTTP/1 client to close the connection (the request body was not read).
pub(crate) fn server_response(status: StatusCode, close: bool) -> Response<ResponseBody> {
    let text = status.canonical_reason().unwrap_or("Error");
    let mut response = Response::new(ResponseBody::full(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if close {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

pub(crate) fn response(
    status: StatusCode,
    headers: HeaderMap,
    body: ResponseBody,
) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

enum State {
    /// Nothing sent yet.
    Waiting,
    /// `http.response.start` came; it goes out with the first body event.
    Started {
        status: StatusCode,
        headers: HeaderMap,
        trailers: bool,
    },
    /// The head went out; the body streams through the channel.
    Streaming {
        tx: mpsc::Sender<Chunk>,
        trailers: bool,
    },
    /// The app sent its whole response.
    Done,
}

/// The app's `send` for one HTTP request.
///
/// Every event goes through [`SendProtocol`](asgi_core::protocol::SendProtocol) first; a
/// violation is logged and returned as [`SendError::Protocol`]. When the sink is dropped (the
/// app returned, failed or panicked) before the response started, the client gets a 500;
/// when it is dropped mid-body, the body ends with an error so the response is aborted.
pub(crate) struct ResponseSink {
    protocol: asgi_core::protocol::SendProtocol,
    exchange: Arc<Exchange>,
    state: State,
    trailers_allowed: bool,
    /// Trailers of `http.response.trailers` events with `more_trailers`, merged until the
    /// last one.
    pending_trailers: HeaderMap,
}

impl std::fmt::Debug for ResponseSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseSink")
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl ResponseSink {
    /// A sink for one request. `trailers_allowed` is false for an HTTP/1 request without
    /// `TE: trailers`.
    pub(crate) fn new(
        protocol: asgi_core::protocol::SendProtocol,
        exchange: Arc<Exchange>,
        trailers_allowed: bool,
    ) -> Self {
        ResponseSink {
            protocol,
            exchange,
            state: State::Waiting,
            trailers_allowed,
            pending_trailers: HeaderMap::new(),
        }
    }

    async fn body(&mut self, body: Bytes, more_body: bool) -> Result<(), SendError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Started {
                status,
                headers,
                trailers,
            } => {
                if !more_body && !trailers {
                    // The fast path: the whole response at once, no channel.
                    let response = response(status, headers, ResponseBody::full(body));
                    return sent(self.exchange.send_head(response, true));
                }
                let (tx, rx) = mpsc::channel(RESPONSE_BODY_CHANNEL_CAPACITY);
                let stream = ResponseBody::stream(None, Some(rx), self.trailers_allowed);
                sent(
                    self.exchange
                        .send_head(response(status, headers, stream), false),
                )?;
                self.state = State::Streaming { tx, trailers };
            }
            other => self.state = other,
        }
        let State::Streaming { tx, trailers } = &self.state else {
            // The protocol check admits a body event only after the start.
            return Ok(());
        };
        if !more_body && !*trailers {
            tx.send(Chunk::Last(body))
                .await
                .map_err(|_| SendError::Disconnected)?;
            self.state = State::Done;
            self.exchange.set_progress(Progress::Complete);
        } else if !body.is_empty() {
            tx.send(Chunk::Data(body))
                .await
                .map_err(|_| SendError::Disconnected)?;
        }
        Ok(())
    }

    async fn trailers(&mut self, headers: HeaderMap, more_trailers: bool) -> Result<(), SendError> {
        if self.pending_trailers.is_empty() {
            self.pending_trailers = headers;
        } else {
            merge(&mut self.pending_trailers, headers);
        }
        if more_trailers {
            return Ok(());
        }
        let State::Streaming { tx, .. } = &self.state else {
            return Ok(());
        };
        let trailers = std::mem::take(&mut self.pending_trailers);
        tx.send(Chunk::Trailers(trailers))
            .await
            .map_err(|_| SendError::Disconnected)?;
        self.state = State::Done;
        self.exchange.set_progress(Progress::Complete);
        Ok(())
    }

    async fn pathsend(&mut self, path: &Path) -> Result<(), SendError> {
        let file = match open_file(path).await {
            Ok(file) => file,
            Err(e) => {
                // The state stays as it is (started): when the app returns, the client gets
                // a 500.
                tracing::error!(
                    path = %path.display(),
                    error = %e,
                    "http.response.pathsend: cannot send the file"
                );
                return Err(SendError::Protocol(ProtocolError::new(
                    "http.response.pathsend",
                    PATHSEND_EXPECTED,
                )));
            }
        };
        let State::Started {
            status,
            headers,
            trailers,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            // The protocol check admits `pathsend` only right after the start.
            return Ok(());
        };
        if trailers {
            let (tx, rx) = mpsc::channel(RESPONSE_BODY_CHANNEL_CAPACITY);
            let body = ResponseBody::stream(Some(file), Some(rx), self.trailers_allowed);
            sent(
                self.exchange
                    .send_head(response(status, headers, body), false),
            )?;
            self.state = State::Streaming { tx, trailers };
        } else {
            let body = ResponseBody::stream(Some(file), None, self.trailers_allowed);
            sent(
                self.exchange
                    .send_head(response(status, headers, body), true),
            )?;
        }
        Ok(())
    }
}

/// `Disconnected` when the head could not be handed to the connection.
fn sent(handed: bool) -> Result<(), SendError> {
    if handed {
        Ok(())
    } else {
        Err(SendError::Disconnected)
    }
}

async fn open_file(path: &Path) -> io::Result<Box<FileChunks>> {
    if !path.is_absolute() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path is not absolute",
        ));
    }
    let file = tokio::fs::File::open(path).await?;
    let meta = file.metadata().await?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(Box::new(FileChunks {
        file,
        remaining: meta.len(),
        buf: BytesMut::new(),
    }))
}

/// Appends every header of `more` to `into`, keeping repeated names. Past the most entries a
/// `HeaderMap` holds, the rest are dropped rather than panicking.
fn merge(into: &mut HeaderMap, more: HeaderMap) {
    let mut last_name = None;
    for (name, value) in more {
        if let Some(name) = name {
            last_name = Some(name);
        }
        if let Some(name) = &last_name {
            if into.try_append(name.clone(), value).is_err() {
                return;
            }
        }
    }
}

#[async_trait]
impl EventSink for ResponseSink {
    async fn send(&mut self, event: SendEvent) -> Result<(), SendError> {
        if !matches!(self.state, State::Done) && self.exchange.is_client_gone() {
            return Err(SendError::Disconnected);
        }
        if let Err(e) = self.protocol.check(&event) {
            tracing::error!(
                event = e.received(),
                expected = e.expected(),
                "ASGI protocol error: {e}"
            );
            return Err(SendError::Protocol(e));
        }
        match event {
            SendEvent::HttpResponseStart {
                status,
                headers,
                trailers,
            } => {
                self.state = State::Started {
                    status,
                    headers,
                    trailers,
                };
                Ok(())
            }
            SendEvent::HttpResponseBody { body, more_body } => self.body(body, more_body).await,
            SendEvent::HttpResponseTrailers {
                headers,
                more_trailers,
            } => self.trailers(headers, more_trailers).await,
            SendEvent::HttpResponsePathsend { path } => self.pathsend(&path).await,
            // The protocol check admits only HTTP response events on an HTTP scope.
            other => Err(SendError::Protocol(ProtocolError::new(
                other.type_name(),
                "an HTTP response event",
            ))),
        }
    }
}

impl Drop for ResponseSink {
    fn drop(&mut self) {
        if let State::Waiting | State::Started { .. } = self.state {
            self.exchange
                .send_server_head(server_response(StatusCode::INTERNAL_SERVER_ERROR, false));
        }
        // A `Streaming` state drops the channel's sender here: the body then ends with an
        // error, and hyper aborts the response.
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use asgi_core::protocol::SendProtocol;
    use asgi_core::{HttpScope, Scope};
    use http::Method;
    use http_body_util::BodyExt;

    use super::*;

    fn sink(trailers_allowed: bool) -> (ResponseSink, Arc<Exchange>) {
        let exchange = Arc::new(Exchange::new());
        let scope = Scope::Http(HttpScope::new(Method::GET, "/"));
        let sink = ResponseSink::new(
            SendProtocol::for_scope(&scope),
            exchange.clone(),
            trailers_allowed,
        );
        (sink, exchange)
    }

    async fn head(exchange: &Exchange) -> Response<ResponseBody> {
        poll_fn(|cx| exchange.poll_head(cx)).await
    }

    fn start(trailers: bool) -> SendEvent {
        SendEvent::HttpResponseStart {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            trailers,
        }
    }

    #[tokio::test]
    async fn start_and_one_final_body_make_one_full_response() {
        let (mut sink, exchange) = sink(true);
        sink.send(start(false)).await.unwrap();
        sink.send(SendEvent::response_body("hello", false))
            .await
            .unwrap();
        let response = head(&exchange).await;
        let body = response.into_body();
        assert!(matches!(body.kind, Kind::Full(_)), "not the fast path");
        assert_eq!(body.size_hint().exact(), Some(5));
        assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
    }

    #[tokio::test]
    async fn nothing_reaches_the_connection_before_the_first_body_event() {
        let (mut sink, exchange) = sink(true);
        sink.send(start(false)).await.unwrap();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(exchange.poll_head(&mut cx).is_pending());
    }

    #[tokio::test]
    async fn streamed_body_arrives_in_order_and_completes() {
        let (mut sink, exchange) = sink(true);
        let app = tokio::spawn(async move {
            sink.send(start(false)).await?;
            for part in ["a", "b", "c"] {
                sink.send(SendEvent::response_body(part, true)).await?;
            }
            sink.send(SendEvent::response_body("d", false)).await
        });
        let body = head(&exchange).await.into_body();
        assert_eq!(body.collect().await.unwrap().to_bytes(), "abcd");
        app.await.unwrap().unwrap();
        assert_eq!(exchange.outcome().0, Progress::Complete);
    }

    #[tokio::test]
    async fn a_sink_dropped_mid_body_makes_the_body_fail() {
        let (mut sink, exchange) = sink(true);
        sink.send(start(false)).await.unwrap();
        sink.send(SendEvent::response_body("partial", true))
            .await
            .unwrap();
        drop(sink);
        let mut body = head(&exchange).await.into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "partial");
        let end = body.frame().await.unwrap();
        assert!(matches!(end, Err(BodyError::Aborted)));
    }

    #[tokio::test]
    async fn a_sink_dropped_before_the_body_answers_500() {
        let (mut sink, exchange) = sink(true);
        sink.send(start(false)).await.unwrap();
        drop(sink);
        let response = head(&exchange).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(exchange.outcome().0, Progress::NotStarted);
    }

    #[tokio::test]
    async fn trailers_follow_the_body_when_allowed() {
        let (mut sink, exchange) = sink(true);
        let app = tokio::spawn(async move {
            sink.send(start(true)).await?;
            sink.send(SendEvent::response_body("body", false)).await?;
            let mut first = HeaderMap::new();
            first.insert("x-one", HeaderValue::from_static("1"));
            sink.send(SendEvent::HttpResponseTrailers {
                headers: first,
                more_trailers: true,
            })
            .await?;
            let mut second = HeaderMap::new();
            second.insert("x-two", HeaderValue::from_static("2"));
            sink.send(SendEvent::HttpResponseTrailers {
                headers: second,
                more_trailers: false,
            })
            .await
        });
        let collected = head(&exchange).await.into_body().collect().await.unwrap();
        let trailers = collected.trailers().cloned().expect("trailers");
        assert_eq!(trailers["x-one"], "1");
        assert_eq!(trailers["x-two"], "2");
        assert_eq!(collected.to_bytes(), "body");
        app.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn trailers_are_dropped_when_the_client_did_not_ask_for_them() {
        let (mut sink, exchange) = sink(false);
        let app = tokio::spawn(async move {
            sink.send(start(true)).await?;
            sink.send(SendEvent::response_body("body", false)).await?;
            let mut trailers = HeaderMap::new();
            trailers.insert("x-one", HeaderValue::from_static("1"));
            sink.send(SendEvent::HttpResponseTrailers {
                headers: trailers,
                more_trailers: false,
            })
            .await
        });
        let collected = head(&exchange).await.into_body().collect().await.unwrap();
        assert!(collected.trailers().is_none());
        assert_eq!(collected.to_bytes(), "body");
        app.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn send_after_the_client_left_is_disconnected() {
        let (mut sink, exchange) = sink(true);
        exchange.abandon_head();
        assert_eq!(sink.send(start(false)).await, Err(SendError::Disconnected));
    }

    #[tokio::test]
    async fn body_before_start_is_a_protocol_error() {
        let (mut sink, _exchange) = sink(true);
        let err = sink
            .send(SendEvent::response_body("early", false))
            .await
            .unwrap_err();
        let SendError::Protocol(err) = err else {
            panic!("not a protocol error");
        };
        assert_eq!(err.received(), "http.response.body");
        assert_eq!(err.expected(), "`http.response.start`");
    }

    #[tokio::test]
    async fn a_dropped_body_ends_the_request_for_the_app() {
        let (mut sink, exchange) = sink(true);
        sink.send(start(false)).await.unwrap();
        sink.send(SendEvent::response_body("partial", true))
            .await
            .unwrap();
        let mut response = head(&exchange).await;
        let activity = Arc::new(super::super::connection::Activity::default());
        response.body_mut().set_finish(Finish {
            exchange: Some(exchange.clone()),
            log: None,
            _activity: ActivityGuard::new(&activity),
        });
        // hyper drops the body when the client leaves.
        drop(response);
        assert_eq!(exchange.outcome().1, Some(Closed::ClientGone));
        assert_eq!(
            sink.send(SendEvent::response_body("more", true)).await,
            Err(SendError::Disconnected)
        );
    }
}
