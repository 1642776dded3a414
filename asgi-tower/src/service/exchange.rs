//! What one request shares between the app's `receive` / `send` and the tower side: a
//! one-event hand-off slot for the app's events (and one for its `http.response.start`), and
//! the "request over" flag.

use std::future::poll_fn;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use asgi_core::protocol::SendProtocol;
use asgi_core::{
    BoxError, EventSink, EventSource, ReceiveEvent, SendError, SendEvent, async_trait,
};
use asgi_http::file::FileChunks;
use bytes::{Buf, Bytes};
use http_body::Body;

/// The state of one request, behind one lock (held for a field move only).
#[derive(Default)]
struct Slots {
    /// The app's `http.response.start`, not yet taken by the response side: a slot of its
    /// own, so that a start and a first body event are handed over without the app waiting
    /// in between (the whole of a small response, sent without a boxed `send` future).
    head: Option<SendEvent>,
    /// The app's next event after the start, not yet taken by the response side. One event:
    /// the hand-off is bounded, so a client that does not read makes the app's `send` wait.
    event: Option<SendEvent>,
    /// The file of an `http.response.pathsend` event, opened by the app's `send`, handed
    /// over with the event.
    file: Option<Box<FileChunks>>,
    /// The app's `send` is opening the file of an `http.response.pathsend`: the response
    /// head waits for it, so that it can carry the file's `content-length`.
    opening_file: bool,
    /// The response side waits for an event.
    taker: Option<Waker>,
    /// The app's `send` waits for the slot to empty.
    sender: Option<Waker>,
    /// The app's `recv` waits for the request to end.
    receiver: Option<Waker>,
    /// The app's sender is gone (the app returned or dropped it).
    sender_gone: bool,
    /// The request is over: the response completed or the client left. `recv` returns
    /// `http.disconnect`, `send` returns `Disconnected`.
    over: bool,
}

/// The shared state of one request; each side holds a clone.
#[derive(Clone, Default)]
pub(crate) struct RequestState {
    slots: Arc<Mutex<Slots>>,
}

impl RequestState {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        // Held for field moves only, never across a panic point.
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The app's next event; `None` once its sender is gone and the slot is empty.
    ///
    /// A `send` waiting for the slot is woken, unless it waits with this very task's waker:
    /// the app is then polled inline by this task, which polls it again before it needs
    /// another event (a self-wake would only make the connection's task run once more for
    /// nothing).
    pub(crate) fn poll_event(&self, cx: &mut Context<'_>) -> Poll<Option<SendEvent>> {
        let mut slots = self.lock();
        if let Some(start) = slots.head.take() {
            return Poll::Ready(Some(start));
        }
        if let Some(event) = slots.event.take() {
            if let Some(waker) = slots.sender.take() {
                if !waker.will_wake(cx.waker()) {
                    waker.wake();
                }
            }
            return Poll::Ready(Some(event));
        }
        if slots.sender_gone {
            return Poll::Ready(None);
        }
        slots.taker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// The file of the `http.response.pathsend` event just taken.
    pub(crate) fn take_file(&self) -> Option<Box<FileChunks>> {
        self.lock().file.take()
    }

    /// The app's `send` is opening the file of an `http.response.pathsend`.
    pub(crate) fn opening_file(&self) -> bool {
        self.lock().opening_file
    }

    /// Forgets the waker of the side that takes events: the caller is about to poll the app
    /// inline and will look at the slot afterwards, so the app's `send` (and the drop of its
    /// sender) need not wake it.
    pub(crate) fn clear_taker(&self) {
        self.lock().taker = None;
    }

    /// Ends the request for the app: its `recv` returns `http.disconnect` once the body is
    /// read, its `send` returns `Disconnected`. Idempotent. Wakers that would wake
    /// `polling` (the task that is about to poll the app itself) are not woken.
    pub(crate) fn end(&self, polling: Option<&Waker>) {
        let mut slots = self.lock();
        slots.over = true;
        slots.head = None;
        slots.event = None;
        slots.file = None;
        let wakers = [slots.sender.take(), slots.receiver.take()];
        drop(slots);
        for waker in wakers.into_iter().flatten() {
            if !polling.is_some_and(|p| waker.will_wake(p)) {
                waker.wake();
            }
        }
    }
}

/// The app's `send`: checks the protocol order, then waits for the slot.
pub(crate) struct AppSink {
    exchange: RequestState,
    protocol: SendProtocol,
}

impl AppSink {
    pub(crate) fn new(exchange: RequestState, protocol: SendProtocol) -> Self {
        AppSink { exchange, protocol }
    }

    /// Opens the file of an `http.response.pathsend`, as the server does: a file that cannot
    /// be opened is the app's `send` error.
    async fn open(&self, path: &Path) -> Result<Box<FileChunks>, SendError> {
        let opening = Opening::new(&self.exchange);
        let opened = FileChunks::open_absolute(path).await;
        drop(opening);
        opened.map(Box::new).map_err(|e| {
            tracing::error!(
                path = %path.display(),
                error = %e,
                "http.response.pathsend: cannot send the file"
            );
            SendError::Io(e.kind())
        })
    }
}

/// Marks the exchange as opening a file while it lives: a `send` cancelled mid-open clears
/// the mark too.
struct Opening<'a>(&'a RequestState);

impl<'a> Opening<'a> {
    fn new(exchange: &'a RequestState) -> Self {
        exchange.lock().opening_file = true;
        Opening(exchange)
    }
}

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        self.0.lock().opening_file = false;
    }
}

impl Slots {
    /// The slot `event` goes into: the start's own, or the one of every later event.
    fn slot_for(&mut self, event: &SendEvent) -> &mut Option<SendEvent> {
        if matches!(event, SendEvent::HttpResponseStart { .. }) {
            &mut self.head
        } else {
            &mut self.event
        }
    }

    /// Puts `event` (and its file) into its slot, and returns the waker of the response
    /// side to wake once the lock is released.
    fn deliver(&mut self, event: SendEvent, file: Option<Box<FileChunks>>) -> Option<Waker> {
        let slot = self.slot_for(&event);
        *slot = Some(event);
        if file.is_some() {
            self.file = file;
        }
        self.taker.take()
    }
}

#[async_trait]
impl EventSink for AppSink {
    async fn send(&mut self, event: SendEvent) -> Result<(), SendError> {
        if self.exchange.lock().over {
            return Err(SendError::Disconnected);
        }
        let mut next = self.protocol.clone();
        next.check(&event)?;
        let file = match &event {
            SendEvent::HttpResponsePathsend { path } => Some(self.open(path).await?),
            _ => None,
        };
        let mut delivery = Some((event, file));
        poll_fn(|cx| {
            let mut slots = self.exchange.lock();
            if slots.over {
                return Poll::Ready(Err(SendError::Disconnected));
            }
            let Some((event, file)) = delivery.take() else {
                return Poll::Ready(Ok(()));
            };
            if slots.slot_for(&event).is_some() {
                slots.sender = Some(cx.waker().clone());
                delivery = Some((event, file));
                return Poll::Pending;
            }
            let taker = slots.deliver(event, file);
            drop(slots);
            if let Some(waker) = taker {
                waker.wake();
            }
            Poll::Ready(Ok(()))
        })
        .await?;
        // Only a delivered event moves the protocol on.
        self.protocol = next;
        Ok(())
    }

    /// An event whose slot is free goes in at once, with no boxed future: the start and the
    /// first body event of every response, and every body event a reading client took in
    /// time. A `pathsend` (its file is opened first) and a full slot go to `send`.
    fn send_now(&mut self, event: SendEvent) -> Result<Result<(), SendError>, SendEvent> {
        if matches!(event, SendEvent::HttpResponsePathsend { .. }) {
            return Err(event);
        }
        let mut slots = self.exchange.lock();
        if slots.over {
            return Ok(Err(SendError::Disconnected));
        }
        if slots.slot_for(&event).is_some() {
            return Err(event);
        }
        let mut next = self.protocol.clone();
        if let Err(e) = next.check(&event) {
            return Ok(Err(e.into()));
        }
        let taker = slots.deliver(event, None);
        drop(slots);
        if let Some(waker) = taker {
            waker.wake();
        }
        self.protocol = next;
        Ok(Ok(()))
    }
}

impl Drop for AppSink {
    fn drop(&mut self) {
        let mut slots = self.exchange.lock();
        slots.sender_gone = true;
        let taker = slots.taker.take();
        drop(slots);
        if let Some(waker) = taker {
            waker.wake();
        }
    }
}

/// The app's `receive`: the request body as `http.request` events, pulled as the app asks
/// (backpressure on the client), then `http.disconnect` once the request is over.
pub(crate) struct BodySource<B> {
    body: Reading<B>,
    exchange: RequestState,
}

enum Reading<B> {
    /// An empty request (`is_end_stream` at once): one empty `http.request` is still due,
    /// with no body boxed or polled.
    Empty,
    /// The body still to read.
    Body(Pin<Box<B>>),
    /// The body ended; `recv` waits for the request to be over.
    Ended,
    /// The request is over: `http.disconnect` from now on.
    Disconnected,
}

impl<B> BodySource<B>
where
    B: Body + Send + 'static,
    B::Error: Into<BoxError>,
{
    pub(crate) fn new(body: B, exchange: RequestState) -> Self {
        let body = if body.is_end_stream() {
            Reading::Empty
        } else {
            Reading::Body(Box::pin(body))
        };
        BodySource { body, exchange }
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<ReceiveEvent> {
        match &mut self.body {
            Reading::Disconnected => return Poll::Ready(ReceiveEvent::HttpDisconnect),
            Reading::Empty => {
                self.body = Reading::Ended;
                return Poll::Ready(ReceiveEvent::request(Bytes::new(), false));
            }
            Reading::Ended => {}
            Reading::Body(body) => loop {
                match body.as_mut().poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        // Request trailers have no ASGI event: they are skipped.
                        let Ok(mut data) = frame.into_data() else {
                            continue;
                        };
                        let data = data.copy_to_bytes(data.remaining());
                        let more_body = !body.is_end_stream();
                        if !more_body {
                            self.body = Reading::Ended;
                        }
                        return Poll::Ready(ReceiveEvent::request(data, more_body));
                    }
                    Poll::Ready(None) => {
                        self.body = Reading::Ended;
                        return Poll::Ready(ReceiveEvent::request(Bytes::new(), false));
                    }
                    Poll::Ready(Some(Err(e))) => {
                        let e: BoxError = e.into();
                        tracing::debug!(error = %e, "reading the request body failed: client gone");
                        self.body = Reading::Disconnected;
                        self.exchange.end(Some(cx.waker()));
                        return Poll::Ready(ReceiveEvent::HttpDisconnect);
                    }
                    Poll::Pending => break,
                }
            },
        }
        let mut slots = self.exchange.lock();
        if slots.over {
            drop(slots);
            self.body = Reading::Disconnected;
            return Poll::Ready(ReceiveEvent::HttpDisconnect);
        }
        slots.receiver = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[async_trait]
impl<B> EventSource for BodySource<B>
where
    B: Body + Send + 'static,
    B::Error: Into<BoxError>,
{
    async fn recv(&mut self) -> ReceiveEvent {
        // Cancel safe: an event is only taken out when it is returned.
        poll_fn(|cx| self.poll_event(cx)).await
    }
}
