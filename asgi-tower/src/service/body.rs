//! The app of one request, polled by the tower side, and [`AppBody`], the response body it
//! feeds.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use asgi_core::app::AppFuture;
use asgi_core::{Error, SendEvent};
use asgi_http::file::FileChunks;
use asgi_ws::DenialBody;
use bytes::Bytes;
use futures_util::{FutureExt, Stream};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use super::exchange::RequestState;

/// The app of one request, polled inline by whoever waits for its events: the response
/// future until `http.response.start`, then the response body. No task is spawned while
/// someone waits; when the waiter is dropped (the client left, or the response completed
/// while the app still works) the app moves to a task of its own, with the request over, so
/// its `recv` returns `http.disconnect` and its `send` returns `Disconnected`: app code is
/// never cancelled mid-await without notice.
pub(crate) struct InlineApp {
    app: Option<AppFuture<'static>>,
    exchange: RequestState,
    /// What the app returned when it failed or panicked, for the `500` or the aborted body.
    failure: Option<Error>,
    /// The request was ended for the app ([`end`](InlineApp::end)): no need to again on drop.
    ended: bool,
}

impl InlineApp {
    pub(crate) fn new(app: AppFuture<'static>, exchange: RequestState) -> Self {
        InlineApp {
            app: Some(app),
            exchange,
            failure: None,
            ended: false,
        }
    }

    /// The app's next event, polling the app while there is none; `None` once the app
    /// dropped its sender (it returned) and every event was taken.
    pub(crate) fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<SendEvent>> {
        if let Some(app) = &mut self.app {
            // Polled inline: what the app sends now is seen below without a wake-up.
            self.exchange.clear_taker();
            let polled = std::panic::catch_unwind(AssertUnwindSafe(|| app.as_mut().poll(cx)));
            let result = match polled {
                Ok(Poll::Pending) => None,
                Ok(Poll::Ready(result)) => Some(result),
                Err(payload) => Some(Err(Error::from_panic(payload))),
            };
            if let Some(result) = result {
                self.app = None;
                match result {
                    Err(e) if e.is_disconnected() => {
                        tracing::debug!("ASGI app ended: client disconnected");
                    }
                    Err(e) => self.failure = Some(e),
                    Ok(()) => {}
                }
            }
        }
        // Takes the event, or registers this task's waker for events the app sends from
        // elsewhere (a task it gave its sender to); `None` once the sender is gone.
        self.exchange.poll_event(cx)
    }

    /// The file of the `http.response.pathsend` event just taken.
    pub(crate) fn take_file(&self) -> Option<Box<FileChunks>> {
        self.exchange.take_file()
    }

    /// The app's `send` is opening the file of an `http.response.pathsend`.
    pub(crate) fn opening_file(&self) -> bool {
        self.exchange.opening_file()
    }

    /// The app's failure, or a description of the premature end.
    pub(crate) fn take_failure(&mut self, what: &str) -> Error {
        self.failure
            .take()
            .unwrap_or_else(|| Error::msg(format!("the app returned {what}")))
    }

    /// Ends the request for the app (see [`RequestState::end`]); `polling` is the waker of a
    /// task that polls the app next.
    pub(crate) fn end(&mut self, polling: Option<&Waker>) {
        self.exchange.end(polling);
        self.ended = true;
    }

    /// The app returned (or failed): polling it is only taking what it left in the slots.
    pub(crate) fn has_returned(&self) -> bool {
        self.app.is_none()
    }
}

impl Drop for InlineApp {
    fn drop(&mut self) {
        if !self.ended {
            self.exchange.end(None);
        }
        let Some(app) = self.app.take() else {
            return;
        };
        // Outside a runtime (a body dropped by a non-tokio host) the app cannot go on: it
        // is dropped, which is all that is left to do.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                match AssertUnwindSafe(app).catch_unwind().await {
                    Ok(Err(e)) if !e.is_disconnected() => {
                        tracing::error!(error = %e, "ASGI app failed after its client left");
                    }
                    Err(payload) => {
                        let e = Error::from_panic(payload);
                        tracing::error!(error = %e, "ASGI app failed after its client left");
                    }
                    _ => {}
                }
            });
        }
    }
}

/// The response body of an [`AsgiService`](crate::AsgiService): the app's
/// `http.response.body` events (and `http.response.trailers`) as they are sent.
///
/// - A response of one start and one final body event is a full body: nothing is polled
///   after the head.
/// - Otherwise each frame is the next body event; the app's `send` waits until this body is
///   polled for the previous one (a one-event hand-off), so a slow client slows the app
///   down and memory stays bounded.
/// - The file of an `http.response.pathsend` comes in
///   [`FILE_CHUNK_SIZE`](asgi_http::file::FILE_CHUNK_SIZE) frames, read as the client takes
///   them; without trailers, the body's length is the file's, so the response carries its
///   `content-length`.
/// - Trailers the app declared (`trailers: true`) come as a trailers frame.
/// - Dropping the body before its end (the client left) ends the request for the app: its
///   `recv` returns `http.disconnect`, its `send` returns `Disconnected`.
///
/// # Errors
///
/// A frame is an [`Error`] when the app failed, panicked or returned before its last body
/// event, or reading the file of an `http.response.pathsend` failed (the server then aborts
/// the response, so a truncated body never looks complete).
pub struct AppBody {
    kind: Kind,
}

enum Kind {
    Full(Option<Bytes>),
    // Boxed: a streaming body is worth one allocation; the full one stays small.
    Streaming(Box<Streaming>),
    Denial(DenialBody),
}

struct Streaming {
    running: InlineApp,
    /// An event taken while looking for the fast path, not yet turned into a frame.
    peeked: Option<SendEvent>,
    /// The file of an `http.response.pathsend`, being sent.
    file: Option<Box<FileChunks>>,
    /// The start declared trailers: the final body event is followed by trailers events.
    trailers_declared: bool,
    /// Trailers fields gathered from `more_trailers` events.
    trailers: HeaderMap,
    done: bool,
}

impl AppBody {
    /// A body of one chunk.
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        AppBody {
            kind: Kind::Full((!bytes.is_empty()).then_some(bytes)),
        }
    }

    pub(crate) fn streaming(
        running: InlineApp,
        peeked: Option<SendEvent>,
        trailers_declared: bool,
    ) -> Self {
        Self::streaming_file(running, peeked, None, trailers_declared)
    }

    /// The file of an `http.response.pathsend` (taken from the exchange with its event),
    /// then, when declared, the trailers.
    pub(crate) fn file(running: InlineApp, file: Box<FileChunks>, trailers_declared: bool) -> Self {
        Self::streaming_file(running, None, Some(file), trailers_declared)
    }

    fn streaming_file(
        running: InlineApp,
        peeked: Option<SendEvent>,
        file: Option<Box<FileChunks>>,
        trailers_declared: bool,
    ) -> Self {
        AppBody {
            kind: Kind::Streaming(Box::new(Streaming {
                running,
                peeked,
                file,
                trailers_declared,
                trailers: HeaderMap::new(),
                done: false,
            })),
        }
    }

    pub(crate) fn denial(body: DenialBody) -> Self {
        AppBody {
            kind: Kind::Denial(body),
        }
    }
}

impl fmt::Debug for AppBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Full(_) => "full",
            Kind::Streaming(_) => "streaming",
            Kind::Denial(_) => "denial",
        };
        f.debug_struct("AppBody").field("kind", &kind).finish()
    }
}

impl Streaming {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        loop {
            if let Some(file) = &mut self.file {
                match std::task::ready!(file.poll_chunk(cx)) {
                    Some(Ok(chunk)) => return Poll::Ready(Some(Ok(Frame::data(chunk)))),
                    Some(Err(e)) => {
                        self.file = None;
                        self.done = true;
                        let e = Error::msg(format!("reading the file to send failed: {e}"));
                        tracing::error!(error = %e, "http.response.pathsend: response aborted");
                        return Poll::Ready(Some(Err(e)));
                    }
                    None => {
                        self.file = None;
                        if !self.trailers_declared {
                            self.finish();
                        }
                    }
                }
            }
            if self.done {
                return Poll::Ready(None);
            }
            let event = match self.peeked.take() {
                Some(event) => Some(event),
                None => std::task::ready!(self.running.poll_event(cx)),
            };
            match event {
                Some(SendEvent::HttpResponseBody { body, more_body }) => {
                    if !more_body && !self.trailers_declared {
                        self.finish();
                    }
                    if !body.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(body))));
                    }
                }
                Some(SendEvent::HttpResponsePathsend { .. }) => {
                    // The app's `send` hands the opened file over with the event.
                    self.file = self.running.take_file();
                    if self.file.is_none() && !self.trailers_declared {
                        self.finish();
                    }
                }
                Some(SendEvent::HttpResponseTrailers {
                    headers,
                    more_trailers,
                }) => {
                    self.trailers.extend(headers);
                    if !more_trailers {
                        self.finish();
                        let fields = std::mem::take(&mut self.trailers);
                        return Poll::Ready(Some(Ok(Frame::trailers(fields))));
                    }
                }
                Some(other) => {
                    self.done = true;
                    let e = Error::msg(format!(
                        "`{}` is not supported by AsgiService",
                        other.type_name()
                    ));
                    tracing::error!(error = %e, "ASGI response aborted");
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    self.done = true;
                    let e = self
                        .running
                        .take_failure("before its response was complete");
                    tracing::error!(error = %e, "ASGI response aborted");
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }

    fn finish(&mut self) {
        self.done = true;
        // The response is complete: the app's `recv` may return `http.disconnect` now.
        self.running.end(None);
    }
}

impl Body for AppBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match &mut self.get_mut().kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Streaming(streaming) => streaming.poll_frame(cx),
            Kind::Denial(body) => Pin::new(body)
                .poll_next(cx)
                .map(|chunk| chunk.map(|chunk| chunk.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Streaming(streaming) => streaming.done && streaming.file.is_none(),
            Kind::Denial(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            // A file with nothing after it: its length is the body's (hyper then sends
            // `content-length`).
            Kind::Streaming(streaming) => match &streaming.file {
                Some(file) if !streaming.trailers_declared && streaming.peeked.is_none() => {
                    SizeHint::with_exact(file.remaining())
                }
                _ => SizeHint::default(),
            },
            _ => SizeHint::default(),
        }
    }
}
