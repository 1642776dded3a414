//! [`Receiver`] and [`Sender`]: ASGI's `receive` and `send` callables as owned handles.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;

use crate::error::SendError;
use crate::event::{ReceiveEvent, SendEvent};

/// Where a [`Receiver`] gets its events: the one method a server, a test harness or a
/// middleware implements.
///
/// # Contract
///
/// `recv` never fails: once the connection is gone it returns the protocol's disconnect event
/// (see [`ReceiveEvent::disconnect_for`]) on that call and every later one.
///
/// # Cancel safety
///
/// An implementation must be cancel safe: if the future is dropped before it completes, no
/// event is lost. Apps rely on this to `select!` on `recv` beside other work.
#[async_trait]
pub trait EventSource: Send + 'static {
    /// The next event from the peer.
    async fn recv(&mut self) -> ReceiveEvent;
}

/// Where a [`Sender`] delivers events: the one method a server, a test harness or a
/// middleware implements.
///
/// # Contract
///
/// `send` returns once the event is handed to the connection, with bounded buffering: a slow
/// client makes `send` wait (backpressure) rather than grow memory. After the peer left it
/// returns `Err(SendError::Disconnected)`; an event the protocol does not allow at this point
/// gets `Err(SendError::Protocol(..))`.
///
/// # Sending without waiting
///
/// [`send_now`](EventSink::send_now) is an optional fast path: a sink that can deliver an
/// event without waiting (a server storing a response head) does it there and returns
/// `Ok(result)`, so that [`Sender::send`] needs no boxed future for it. The default hands the
/// event back (`Err(event)`), and `send` is used. Middleware written with `async fn send`
/// alone is correct as it is; a middleware that only wraps another sink may forward
/// `send_now` to keep the fast path.
#[async_trait]
pub trait EventSink: Send + 'static {
    /// Delivers one event to the peer.
    async fn send(&mut self, event: SendEvent) -> Result<(), SendError>;

    /// Delivers `event` at once when that needs no waiting, with the same result `send`
    /// would give; otherwise hands it back untouched (`Err(event)`) for `send`.
    ///
    /// The default hands every event back.
    fn send_now(&mut self, event: SendEvent) -> Result<Result<(), SendError>, SendEvent> {
        Err(event)
    }
}

/// ASGI's `receive`: the events from the server to the app, one at a time.
///
/// # Contract
///
/// [`recv`](Receiver::recv) never fails. Once the connection is gone it returns the
/// protocol's disconnect event (`http.disconnect`, `websocket.disconnect`) on that call and on
/// every later one. A server delivers a client's disconnect to a `recv` that is pending while
/// the app works, so an app can move the receiver into a task that watches for it.
///
/// # Example
///
/// Read a whole request body, then answer:
///
/// ```
/// use asgi_core::{Error, ReceiveEvent, Receiver};
///
/// async fn read_body(receive: &mut Receiver) -> Result<Vec<u8>, Error> {
///     let mut body = Vec::new();
///     loop {
///         match receive.recv().await {
///             ReceiveEvent::HttpRequest { body: chunk, more_body } => {
///                 body.extend_from_slice(&chunk);
///                 if !more_body {
///                     return Ok(body);
///                 }
///             }
///             ReceiveEvent::HttpDisconnect => return Err(Error::disconnected()),
///             other => return Err(Error::msg(format!("unexpected {}", other.type_name()))),
///         }
///     }
/// }
/// ```
///
/// Middleware wraps a receiver by implementing [`EventSource`] over the inner one, or with
/// [`map`](Receiver::map) for a synchronous rewrite.
///
/// # Cancel safety
///
/// `recv` is cancel safe: dropping its future loses no event.
pub struct Receiver {
    source: Box<dyn EventSource>,
}

impl Receiver {
    /// A receiver over any event source.
    pub fn new(source: impl EventSource) -> Self {
        Receiver {
            source: Box::new(source),
        }
    }

    /// The next event. See the type's contract: it never fails.
    pub async fn recv(&mut self) -> ReceiveEvent {
        self.source.recv().await
    }

    /// A receiver that passes each event of this one through `f`, e.g. to rewrite request
    /// bodies. `f` runs on the app's task, so keep it cheap.
    pub fn map<F>(self, f: F) -> Receiver
    where
        F: FnMut(ReceiveEvent) -> ReceiveEvent + Send + 'static,
    {
        Receiver::new(MapSource { inner: self, f })
    }
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

#[async_trait]
impl EventSource for Receiver {
    async fn recv(&mut self) -> ReceiveEvent {
        self.source.recv().await
    }
}

struct MapSource<F> {
    inner: Receiver,
    f: F,
}

#[async_trait]
impl<F> EventSource for MapSource<F>
where
    F: FnMut(ReceiveEvent) -> ReceiveEvent + Send + 'static,
{
    async fn recv(&mut self) -> ReceiveEvent {
        let event = self.inner.recv().await;
        (self.f)(event)
    }
}

/// ASGI's `send`: the events from the app to the server.
///
/// # Contract
///
/// - [`send`](Sender::send) returns once the event is handed to the connection. Buffering is
///   bounded: a slow client makes `send` wait (backpressure); memory does not grow.
/// - After the client left, `send` returns `Err(SendError::Disconnected)`. That is a normal
///   outcome, not a bug: return it (`?`) and the server will not log it as an error.
/// - An event the protocol does not allow at this point (body before start, a second start, a
///   message after the response completed) returns `Err(SendError::Protocol(..))`, which names
///   the event that came and the one expected.
///
/// # Example
///
/// ```
/// use asgi_core::{Error, SendEvent, Sender};
/// use http::{header, HeaderMap, HeaderValue, StatusCode};
///
/// async fn hello(send: &mut Sender) -> Result<(), Error> {
///     let mut headers = HeaderMap::new();
///     headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
///     send.send(SendEvent::response_start(StatusCode::OK, headers)).await?;
///     send.send(SendEvent::response_body("Hello, world!", false)).await?;
///     Ok(())
/// }
/// ```
///
/// Middleware rewrites responses by wrapping the sender: implement [`EventSink`] over the
/// inner one, or use [`map`](Sender::map) for a synchronous rewrite (see the "Writing
/// middleware" guide in the crate docs).
///
/// # Cancel safety
///
/// Dropping a pending `send` future may or may not have delivered the event; do not retry it
/// blindly.
pub struct Sender {
    sink: Box<dyn EventSink>,
}

impl Sender {
    /// A sender over any event sink.
    pub fn new(sink: impl EventSink) -> Self {
        Sender {
            sink: Box::new(sink),
        }
    }

    /// Sends one event. See the type's contract.
    ///
    /// # Errors
    ///
    /// [`SendError::Disconnected`] once the client is gone; [`SendError::Protocol`] for an
    /// event out of order.
    pub fn send(&mut self, event: SendEvent) -> SendFuture<'_> {
        SendFuture {
            state: SendState::Start {
                sink: &mut *self.sink,
                event,
            },
        }
    }

    /// A sender that passes each event through `f` before this one sends it, e.g. to add a
    /// header to `http.response.start`.
    pub fn map<F>(self, f: F) -> Sender
    where
        F: FnMut(SendEvent) -> SendEvent + Send + 'static,
    {
        Sender::new(MapSink { inner: self, f })
    }
}

/// The future of [`Sender::send`].
///
/// Nothing happens until it is first polled. Then the sink takes the event at once if it can
/// ([`EventSink::send_now`]); otherwise its `send` future runs. A named type rather than an
/// `async fn`'s: it holds the event once, so it is about half the size, and every app's
/// future that awaits a send carries (and moves) that size.
#[must_use = "futures do nothing unless polled"]
pub struct SendFuture<'a> {
    state: SendState<'a>,
}

enum SendState<'a> {
    /// Not polled yet.
    Start {
        sink: &'a mut dyn EventSink,
        event: SendEvent,
    },
    /// The sink's `send` runs.
    Sending(Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>),
    /// The result was returned.
    Done,
}

impl Future for SendFuture<'_> {
    type Output = Result<(), SendError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if matches!(this.state, SendState::Start { .. }) {
            if let SendState::Start { sink, event } =
                std::mem::replace(&mut this.state, SendState::Done)
            {
                match sink.send_now(event) {
                    Ok(result) => return Poll::Ready(result),
                    Err(event) => this.state = SendState::Sending(sink.send(event)),
                }
            }
        }
        match &mut this.state {
            SendState::Sending(future) => {
                let result = std::task::ready!(future.as_mut().poll(cx));
                this.state = SendState::Done;
                Poll::Ready(result)
            }
            // Polled again after it returned its result: there is nothing more to give.
            SendState::Start { .. } | SendState::Done => Poll::Pending,
        }
    }
}

impl fmt::Debug for SendFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            SendState::Start { .. } => "start",
            SendState::Sending(_) => "sending",
            SendState::Done => "done",
        };
        f.debug_struct("SendFuture").field("state", &state).finish()
    }
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

#[async_trait]
impl EventSink for Sender {
    async fn send(&mut self, event: SendEvent) -> Result<(), SendError> {
        self.sink.send(event).await
    }

    fn send_now(&mut self, event: SendEvent) -> Result<Result<(), SendError>, SendEvent> {
        self.sink.send_now(event)
    }
}

struct MapSink<F> {
    inner: Sender,
    f: F,
}

#[async_trait]
impl<F> EventSink for MapSink<F>
where
    F: FnMut(SendEvent) -> SendEvent + Send + 'static,
{
    async fn send(&mut self, event: SendEvent) -> Result<(), SendError> {
        let event = (self.f)(event);
        self.inner.send(event).await
    }
}
