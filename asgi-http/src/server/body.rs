//! The response body hyper writes ([`ResponseBody`]): a whole body (the fast path), a file
//! and/or a bounded channel fed by the app's `send`, or a WebSocket denial's body. When hyper
//! drops it, its [`FinishGuard`] ends the request.

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use asgi_core::BoxError;
use asgi_ws::DenialBody;
use bytes::Bytes;
use futures_util::Stream;
use http::header::{CONNECTION, CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::call::AppCall;
use super::direct::DirectResponseBody;
use super::exchange::Exchange;
use super::finish::FinishGuard;
use crate::file::FileChunks;

/// The exchange of one request with the server's body: what the service, `receive` and
/// `send` share.
pub(crate) type ServerExchange = Exchange<ResponseBody>;

/// One message from the sink to a streaming body.
#[derive(Debug)]
pub(crate) enum ResponseChunk {
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
pub(crate) enum ResponseBodyError {
    /// The app stopped sending before the response was complete (it failed or returned).
    Aborted,
    /// Reading the file of an `http.response.pathsend` failed.
    File(std::io::Error),
    /// The body of a direct service's response failed (see the `direct` module).
    Service(BoxError),
}

impl std::fmt::Display for ResponseBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResponseBodyError::Aborted => {
                f.write_str("the app ended the response before it was complete")
            }
            ResponseBodyError::File(e) => write!(f, "reading the file to send failed: {e}"),
            ResponseBodyError::Service(e) => write!(f, "the service's response body failed: {e}"),
        }
    }
}

impl std::error::Error for ResponseBodyError {}

/// The body of every response the server sends.
#[derive(Debug)]
pub(crate) struct ResponseBody {
    kind: Kind,
    /// True once the whole body (and trailers) was handed to hyper.
    complete: bool,
    /// Bytes handed to hyper, for the access log.
    bytes: u64,
    finish: Option<FinishGuard<ResponseBody>>,
    /// The app, when it still runs once its head is ready: polled here each time hyper asks
    /// for more, and detached into a task of its own when hyper drops the body. Boxed: only
    /// an app that streams or works on after its head has one, and hyper moves the body.
    app: Option<Box<AppCall<ResponseBody>>>,
}

#[derive(Debug)]
enum Kind {
    /// The whole body at once (the fast path); `None` once taken.
    Full(Option<Bytes>),
    /// A file first (if any), then the channel (if any).
    Stream {
        // Boxed: a file is rare, and the open file is large next to the other variants.
        file: Option<Box<FileChunks>>,
        rx: Option<mpsc::Receiver<ResponseChunk>>,
        trailers_allowed: bool,
        failed: bool,
    },
    /// The body of a WebSocket denial response (`websocket.http.response.body` events);
    /// `None` once it ended.
    Denial(Option<DenialBody>),
    /// A direct service's body that did not end with its first frame. Boxed: it is a
    /// streamed response's, and the other variants are a fraction of its size.
    Direct(Box<DirectStream>),
}

/// The rest of a direct service's response body (see the `direct` module).
#[derive(Debug)]
pub(crate) struct DirectStream {
    body: DirectResponseBody,
    /// The first frame, read before the head went out; `None` once handed to hyper.
    first: Option<Frame<Bytes>>,
    /// Over HTTP/1.1, only when the request said `TE: trailers`.
    trailers_allowed: bool,
    /// True once the body ended or failed: it is not polled again.
    done: bool,
    /// The call's place among the connection's (HTTP/2), held until the body is done.
    permit: Option<OwnedSemaphorePermit>,
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
            app: None,
        }
    }

    /// The body of a WebSocket denial response, streamed as the app sends it.
    pub(crate) fn denial(body: DenialBody) -> Self {
        ResponseBody {
            kind: Kind::Denial(Some(body)),
            complete: false,
            bytes: 0,
            finish: None,
            app: None,
        }
    }

    pub(crate) fn stream(
        file: Option<Box<FileChunks>>,
        rx: Option<mpsc::Receiver<ResponseChunk>>,
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
            app: None,
        }
    }

    /// The rest of a direct service's body, after its `first` frame.
    pub(crate) fn direct(
        body: DirectResponseBody,
        first: Frame<Bytes>,
        trailers_allowed: bool,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Self {
        ResponseBody {
            kind: Kind::Direct(Box::new(DirectStream {
                body,
                first: Some(first),
                trailers_allowed,
                done: false,
                permit,
            })),
            complete: false,
            bytes: 0,
            finish: None,
            app: None,
        }
    }

    /// True for a whole body (the fast path).
    #[cfg(test)]
    pub(crate) fn is_full(&self) -> bool {
        matches!(self.kind, Kind::Full(_))
    }

    /// Gives the body the guard that ends the request when hyper drops it.
    pub(crate) fn set_finish(&mut self, finish: FinishGuard<ResponseBody>) {
        self.finish = Some(finish);
    }

    /// Gives the body the app call that still runs: see [`ResponseBody::app`].
    pub(crate) fn set_app_call(&mut self, call: AppCall<ResponseBody>) {
        self.app = Some(Box::new(call));
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if let Some(finish) = self.finish.take() {
            finish.finish(self.bytes, self.complete);
        }
        // After the request ended for it: the app learns so from its next `recv` or `send`.
        if let Some(call) = self.app.take() {
            call.detach();
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = ResponseBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ResponseBodyError>>> {
        let this = self.get_mut();
        // The app first, so that what it sends now is read below.
        AppCall::poll_in(&mut this.app, cx);
        let polled = match &mut this.kind {
            Kind::Full(body) => Poll::Ready(body.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream {
                file,
                rx,
                trailers_allowed,
                failed,
            } => poll_stream(cx, file, rx, *trailers_allowed, failed, &mut this.complete),
            Kind::Denial(body) => poll_denial(cx, body, &mut this.complete),
            Kind::Direct(direct) => poll_direct(cx, direct, &mut this.complete),
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
            Kind::Direct(direct) => direct.first.is_none() && direct.done,
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
            } => SizeHint::with_exact(file.remaining()),
            Kind::Stream { .. } | Kind::Denial(_) => SizeHint::default(),
            Kind::Direct(direct) => {
                let rest = if direct.done {
                    SizeHint::with_exact(0)
                } else {
                    direct.body.size_hint()
                };
                let first = match &direct.first {
                    Some(frame) => frame.data_ref().map_or(0, |data| data.len() as u64),
                    None => 0,
                };
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower().saturating_add(first));
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper.saturating_add(first));
                }
                hint
            }
        }
    }
}

fn poll_stream(
    cx: &mut Context<'_>,
    file: &mut Option<Box<FileChunks>>,
    rx: &mut Option<mpsc::Receiver<ResponseChunk>>,
    trailers_allowed: bool,
    failed: &mut bool,
    complete: &mut bool,
) -> Poll<Option<Result<Frame<Bytes>, ResponseBodyError>>> {
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
                return Poll::Ready(Some(Err(ResponseBodyError::File(e))));
            }
            None => *file = None,
        }
    }
    let Some(receiver) = rx else {
        *complete = true;
        return Poll::Ready(None);
    };
    match ready!(receiver.poll_recv(cx)) {
        Some(ResponseChunk::Data(data)) => Poll::Ready(Some(Ok(Frame::data(data)))),
        Some(ResponseChunk::Last(data)) => {
            *rx = None;
            *complete = true;
            Poll::Ready((!data.is_empty()).then(|| Ok(Frame::data(data))))
        }
        Some(ResponseChunk::Trailers(trailers)) => {
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
            Poll::Ready(Some(Err(ResponseBodyError::Aborted)))
        }
    }
}

fn poll_direct(
    cx: &mut Context<'_>,
    direct: &mut DirectStream,
    complete: &mut bool,
) -> Poll<Option<Result<Frame<Bytes>, ResponseBodyError>>> {
    let frame = match direct.first.take() {
        Some(frame) => Some(frame),
        None if direct.done => return Poll::Ready(None),
        None => {
            let polled = std::panic::catch_unwind(AssertUnwindSafe(|| {
                Pin::new(&mut direct.body).poll_frame(cx)
            }));
            match polled {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(Some(Ok(frame)))) => Some(frame),
                Ok(Poll::Ready(None)) => None,
                Ok(Poll::Ready(Some(Err(e)))) => {
                    tracing::error!(error = %e, "the service's response body failed: response aborted");
                    direct_done(direct);
                    return Poll::Ready(Some(Err(ResponseBodyError::Service(e))));
                }
                Err(payload) => {
                    let e = asgi_core::Error::from_panic(payload);
                    tracing::error!(error = %e, "the service's response body panicked: response aborted");
                    direct_done(direct);
                    return Poll::Ready(Some(Err(ResponseBodyError::Service(Box::new(e)))));
                }
            }
        }
    };
    // The body has ended with no frame, with its trailers, or with a last frame that says so
    // (hyper then ends the response without asking again).
    let ended = match &frame {
        None => true,
        Some(frame) => frame.is_trailers() || direct.body.is_end_stream(),
    };
    if ended {
        direct_done(direct);
        *complete = true;
    }
    match frame {
        // Over HTTP/1.1 trailers go out only when the request said `TE: trailers`.
        Some(frame) if frame.is_trailers() => {
            Poll::Ready(direct.trailers_allowed.then_some(Ok(frame)))
        }
        frame => Poll::Ready(frame.map(Ok)),
    }
}

/// The direct body ended or failed: it is not polled again, and the call's place among the
/// connection's is free.
fn direct_done(direct: &mut DirectStream) {
    direct.done = true;
    direct.permit = None;
}

fn poll_denial(
    cx: &mut Context<'_>,
    body: &mut Option<DenialBody>,
    complete: &mut bool,
) -> Poll<Option<Result<Frame<Bytes>, ResponseBodyError>>> {
    let Some(denial) = body else {
        return Poll::Ready(None);
    };
    match ready!(Pin::new(denial).poll_next(cx)) {
        Some(Ok(data)) => Poll::Ready(Some(Ok(Frame::data(data)))),
        Some(Err(e)) => {
            // The app stopped before its last chunk: abort, so the body does not look whole.
            tracing::error!(error = %e, "WebSocket denial response aborted");
            *body = None;
            Poll::Ready(Some(Err(ResponseBodyError::Aborted)))
        }
        None => {
            *body = None;
            *complete = true;
            Poll::Ready(None)
        }
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

/// A response of `status`, `headers` and `body`.
pub(crate) fn response(
    status: StatusCode,
    headers: HeaderMap,
    body: ResponseBody,
) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    crate::response::put_headers(response.headers_mut(), headers);
    response
}
