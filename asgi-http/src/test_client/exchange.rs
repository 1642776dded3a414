//! One connection between the test client and an app running in its own task: bounded
//! channels both ways, the protocol checker on the app's `send`, the request body fed as the
//! app reads it, and a time limit on every wait.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use asgi_core::bytes::Bytes;
use asgi_core::channel::{ChannelSink, ChannelSource};
use asgi_core::testing::SESSION_CHANNEL_CAPACITY;
use asgi_core::{
    App, Error, EventSink, ProtocolError, ReceiveEvent, Receiver, Scope, SendError, SendEvent,
    Sender, async_trait,
};
use futures_util::stream::{BoxStream, Fuse, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The first protocol error the app's `send` returned, kept so that the test sees it even
/// when the app ignored the error.
type ProtocolSlot = Arc<Mutex<Option<ProtocolError>>>;

fn lock(slot: &ProtocolSlot) -> MutexGuard<'_, Option<ProtocolError>> {
    // Nothing panics while holding this lock; recover the value if a panic ever did.
    slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The app's `send`: the core channel sink (protocol check, bounded channel), recording the
/// first protocol error.
struct TestClientSink {
    inner: ChannelSink,
    slot: ProtocolSlot,
}

#[async_trait]
impl EventSink for TestClientSink {
    async fn send(&mut self, event: SendEvent) -> Result<(), SendError> {
        let result = self.inner.send(event).await;
        if let Err(SendError::Protocol(error)) = &result {
            lock(&self.slot).get_or_insert_with(|| error.clone());
        }
        result
    }
}

/// A request body delivered as `http.request` events, as a server delivers one: a whole
/// body as one final event; a stream as one event per chunk with `more_body` set, as soon as
/// the chunk is there, then an empty final event once the stream ends. Chunks are pulled
/// from the stream only when the app's queue has room.
pub(super) enum BodyFeed {
    Whole(Bytes),
    Chunks(Fuse<BoxStream<'static, Bytes>>),
}

enum FeedStep {
    More,
    Done,
}

impl BodyFeed {
    pub(super) fn whole(body: Bytes) -> Self {
        BodyFeed::Whole(body)
    }

    pub(super) fn chunks(stream: BoxStream<'static, Bytes>) -> Self {
        BodyFeed::Chunks(stream.fuse())
    }

    /// Delivers one `http.request` event. Cancel safe: a chunk is pulled from the stream
    /// and handed to the reserved slot of the channel with no await in between.
    async fn step(&mut self, to_app: &mpsc::Sender<ReceiveEvent>) -> FeedStep {
        let Ok(permit) = to_app.reserve().await else {
            // The app returned: nobody will read the rest.
            return FeedStep::Done;
        };
        match self {
            BodyFeed::Whole(body) => {
                permit.send(ReceiveEvent::request(std::mem::take(body), false));
                FeedStep::Done
            }
            BodyFeed::Chunks(stream) => match stream.next().await {
                Some(chunk) => {
                    permit.send(ReceiveEvent::request(chunk, true));
                    FeedStep::More
                }
                None => {
                    permit.send(ReceiveEvent::request(Bytes::new(), false));
                    FeedStep::Done
                }
            },
        }
    }
}

/// Awaits `future` for at most `limit`.
pub(super) async fn within<F: Future>(
    limit: Option<Duration>,
    what: &str,
    future: F,
) -> Result<F::Output, Error> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, future).await.map_err(|_| {
            Error::msg(format!(
                "the test client timed out after {limit:?} waiting for the app {what}"
            ))
        }),
        None => Ok(future.await),
    }
}

/// An app running on one connection, seen from the client's side.
pub(super) struct TestExchange {
    to_app: Option<mpsc::Sender<ReceiveEvent>>,
    from_app: mpsc::Receiver<SendEvent>,
    // Taken by `finish`, so the task is joined once.
    task: Option<JoinHandle<Result<(), Error>>>,
    protocol_error: ProtocolSlot,
    feed: Option<BodyFeed>,
    timeout: Option<Duration>,
}

impl TestExchange {
    /// Starts `app` on `scope` in a task of its own; `feed` is the request body, if any.
    pub(super) fn start(
        app: Arc<dyn App>,
        scope: Scope,
        feed: Option<BodyFeed>,
        timeout: Option<Duration>,
    ) -> Self {
        let (to_app, app_rx) = mpsc::channel(SESSION_CHANNEL_CAPACITY);
        let (app_tx, from_app) = mpsc::channel(SESSION_CHANNEL_CAPACITY);
        let protocol_error = ProtocolSlot::default();
        let receive = Receiver::new(ChannelSource::new(&scope, app_rx));
        let send = Sender::new(TestClientSink {
            inner: ChannelSink::new(&scope, app_tx),
            slot: protocol_error.clone(),
        });
        let task = tokio::spawn(async move { app.call(scope, receive, send).await });
        TestExchange {
            to_app: Some(to_app),
            from_app,
            task: Some(task),
            protocol_error,
            feed,
            timeout,
        }
    }

    /// Delivers `event` to the app's `recv`, waiting while its queue is full.
    ///
    /// Errors: [`Error::disconnected`] once the app returned or the client disconnected; a
    /// timeout error when the app does not read in time.
    pub(super) async fn send(&mut self, event: ReceiveEvent) -> Result<(), Error> {
        let Some(to_app) = &self.to_app else {
            return Err(Error::disconnected());
        };
        let sent = within(self.timeout, "to read an event", to_app.send(event)).await;
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Error::disconnected()),
            Err(timeout) => {
                self.abort();
                Err(timeout)
            }
        }
    }

    /// The next event the app sent, feeding the request body meanwhile; `None` once the app
    /// returned and everything it sent was read.
    pub(super) async fn next(&mut self) -> Result<Option<SendEvent>, Error> {
        let timeout = self.timeout;
        match within(timeout, "to send an event", self.next_untimed()).await {
            Ok(event) => Ok(event),
            Err(timeout) => {
                self.abort();
                Err(timeout)
            }
        }
    }

    async fn next_untimed(&mut self) -> Option<SendEvent> {
        loop {
            let (feed, to_app) = match (&mut self.feed, &self.to_app) {
                (Some(feed), Some(to_app)) => (feed, to_app),
                _ => return self.from_app.recv().await,
            };
            tokio::select! {
                // The app's answer first: it may respond before it reads the whole body.
                biased;
                event = self.from_app.recv() => return event,
                step = feed.step(to_app) => {
                    if let FeedStep::Done = step {
                        self.feed = None;
                    }
                }
            }
        }
    }

    /// Stops an app that did not answer in time.
    fn abort(&self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }

    /// Leaves like a client that closed the connection: the app's `recv` returns the
    /// disconnect event (also when pending) and its `send` returns `Disconnected`.
    pub(super) fn disconnect(&mut self) {
        self.feed = None;
        self.to_app = None;
        self.from_app.close();
    }

    /// Ends the connection from the client's side (the app's `recv` now returns the
    /// disconnect event) and waits for the app to return, reading and dropping whatever it
    /// still sends. Gives the first protocol error the app's `send` returned, else the app's
    /// result; a panic becomes an error for which `is_panic()` is true.
    pub(super) async fn finish(&mut self) -> Result<(), Error> {
        self.feed = None;
        self.to_app = None;
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        let from_app = &mut self.from_app;
        let joined = within(self.timeout, "to return", async {
            loop {
                tokio::select! {
                    joined = &mut task => return joined,
                    event = from_app.recv(), if !from_app.is_closed() => {
                        if event.is_none() {
                            from_app.close();
                        }
                    }
                }
            }
        })
        .await;
        let result = match joined {
            Ok(Ok(result)) => result,
            Ok(Err(join_error)) => match join_error.try_into_panic() {
                Ok(payload) => Err(Error::from_panic(payload)),
                Err(join_error) => Err(Error::new(join_error)),
            },
            Err(timeout) => {
                task.abort();
                Err(timeout)
            }
        };
        match lock(&self.protocol_error).take() {
            Some(protocol) => Err(protocol.into()),
            None => result,
        }
    }
}
