//! Run any [`App`] in-process, with no server: feed it receive events, collect what it sends.
//!
//! Two shapes, as in Starlette's test tools:
//!
//! - [`call`]: a scripted run. The app receives the given events and then the scope's
//!   disconnect event forever; everything it sends is collected.
//! - [`TestSession`]: an interactive run. The app runs in a task of its own; the test sends
//!   events, reads what the app sent as it sends it, and can disconnect like a client.
//!
//! Both check the app's events against the protocol (a body before the start is rejected with
//! the same [`ProtocolError`](crate::ProtocolError) a server gives).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::error::{Error, SendError};
use crate::event::{ReceiveEvent, SendEvent};
use crate::handle::{EventSink, EventSource, Receiver, Sender};
use crate::host::app_result;
use crate::host::channel::{ChannelSink, ChannelSource};
use crate::protocol::SendProtocol;
use crate::scope::Scope;

/// How many events may wait in each direction of a [`TestSession`]: 16. Small on purpose, as in a
/// server: an app that sends faster than the test reads waits (backpressure) instead of
/// piling events up.
const SESSION_CHANNEL_CAPACITY: usize = 16;

/// How many events a scripted [`call`] collects before `send` starts returning
/// `Disconnected`: 65,536, enough for any test; a bound so that a runaway app fails instead of
/// eating memory.
const MAX_RECORDED_EVENTS: usize = 65_536;

/// What a scripted [`call`] observed.
#[derive(Debug)]
pub struct Outcome {
    /// Every event the app sent that the protocol accepted, in order.
    pub sent: Vec<SendEvent>,
    /// Protocol errors that `send` returned to the app, in order.
    pub protocol_errors: Vec<crate::ProtocolError>,
    /// What the app returned.
    pub result: Result<(), Error>,
}

impl Outcome {
    /// The concatenated bodies of the `http.response.body` events.
    pub fn body(&self) -> Vec<u8> {
        self.sent
            .iter()
            .filter_map(|e| match e {
                SendEvent::HttpResponseBody { body, .. } => Some(&body[..]),
                _ => None,
            })
            .flatten()
            .copied()
            .collect()
    }

    /// The status of the `http.response.start` event, if one was sent.
    pub fn status(&self) -> Option<http::StatusCode> {
        self.sent.iter().find_map(|e| match e {
            SendEvent::HttpResponseStart { status, .. } => Some(*status),
            _ => None,
        })
    }
}

/// Runs `app` once on the current task with `scope`, receiving `events` (then the scope's
/// disconnect event forever), and returns what it sent.
///
/// At most 65,536 events are collected; after that the app's `send` returns
/// `Disconnected`, so that a runaway app fails instead of eating memory.
///
/// # Example
///
/// ```
/// use asgi_core::host::testing;
/// use asgi_core::{Error, HttpScope, ReceiveEvent, Receiver, Scope, SendEvent, Sender};
/// use http::{HeaderMap, Method, StatusCode};
///
/// async fn echo(_: Scope, mut receive: Receiver, mut send: Sender) -> Result<(), Error> {
///     let ReceiveEvent::HttpRequest { body, .. } = receive.recv().await else {
///         return Ok(());
///     };
///     send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new())).await?;
///     send.send(SendEvent::response_body(body, false)).await?;
///     Ok(())
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let scope = Scope::from(HttpScope::new(Method::POST, "/"));
/// let outcome = testing::call(&echo, scope, [ReceiveEvent::request("ping", false)]).await;
/// assert_eq!(outcome.status(), Some(StatusCode::OK));
/// assert_eq!(outcome.body(), b"ping");
/// assert!(outcome.result.is_ok());
/// # });
/// ```
pub async fn call<A: App + ?Sized>(
    app: &A,
    scope: Scope,
    events: impl IntoIterator<Item = ReceiveEvent>,
) -> Outcome {
    let record = Arc::new(Mutex::new(Record::default()));
    let source = ScriptedSource {
        events: events.into_iter().collect(),
        disconnect: ReceiveEvent::disconnect_for(&scope),
    };
    let sink = CallRecorder {
        record: record.clone(),
        protocol: SendProtocol::for_scope(&scope),
    };
    let result = app
        .call(scope, Receiver::new(source), Sender::new(sink))
        .await;
    let record = std::mem::take(&mut *lock(&record));
    Outcome {
        sent: record.sent,
        protocol_errors: record.protocol_errors,
        result,
    }
}

#[derive(Default)]
struct Record {
    sent: Vec<SendEvent>,
    protocol_errors: Vec<crate::ProtocolError>,
}

fn lock(record: &Mutex<Record>) -> std::sync::MutexGuard<'_, Record> {
    // Only this module touches the record, and never panics while holding it.
    record.lock().unwrap_or_else(|p| p.into_inner())
}

struct ScriptedSource {
    events: VecDeque<ReceiveEvent>,
    disconnect: ReceiveEvent,
}

#[async_trait]
impl EventSource for ScriptedSource {
    async fn recv(&mut self) -> ReceiveEvent {
        self.events
            .pop_front()
            .unwrap_or_else(|| self.disconnect.clone())
    }
}

struct CallRecorder {
    record: Arc<Mutex<Record>>,
    protocol: SendProtocol,
}

#[async_trait]
impl EventSink for CallRecorder {
    async fn send(&mut self, event: SendEvent) -> Result<(), SendError> {
        let mut record = lock(&self.record);
        if let Err(e) = self.protocol.check(&event) {
            record.protocol_errors.push(e.clone());
            return Err(SendError::Protocol(e));
        }
        if record.sent.len() >= MAX_RECORDED_EVENTS {
            return Err(SendError::Disconnected);
        }
        record.sent.push(event);
        Ok(())
    }
}

/// An app running in a task of its own, driven by the test like a client would.
///
/// # Backpressure
///
/// At most 16 events wait in each direction, as in a server: an app that sends faster than
/// the test reads waits in `send`, and [`send`](TestSession::send) waits while the app does not
/// read.
///
/// # Example
///
/// ```
/// use asgi_core::host::testing::TestSession;
/// use asgi_core::{Error, ReceiveEvent, Receiver, Scope, Sender, WebSocketScope, SendEvent};
///
/// async fn ws(_: Scope, mut receive: Receiver, mut send: Sender) -> Result<(), Error> {
///     receive.recv().await; // websocket.connect
///     send.send(SendEvent::WebSocketAccept { subprotocol: None, headers: Default::default() }).await?;
///     loop {
///         match receive.recv().await {
///             ReceiveEvent::WebSocketReceive(message) => {
///                 send.send(SendEvent::WebSocketSend(message)).await?
///             }
///             _ => return Ok(()),
///         }
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let mut session = TestSession::start(ws, Scope::from(WebSocketScope::new("/ws")));
/// session.send(ReceiveEvent::WebSocketConnect).await.unwrap();
/// assert_eq!(session.recv().await.map(|e| e.type_name()), Some("websocket.accept"));
/// session.send(ReceiveEvent::WebSocketReceive("hi".into())).await.unwrap();
/// assert_eq!(session.recv().await, Some(SendEvent::text("hi")));
/// session.disconnect();
/// assert!(session.finish().await.is_ok());
/// # });
/// ```
#[derive(Debug)]
pub struct TestSession {
    to_app: Option<mpsc::Sender<ReceiveEvent>>,
    from_app: mpsc::Receiver<SendEvent>,
    task: JoinHandle<Result<(), Error>>,
}

impl TestSession {
    /// Starts `app` with `scope` in a new task on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn start(app: impl App, scope: Scope) -> TestSession {
        let (to_app, app_rx) = mpsc::channel(SESSION_CHANNEL_CAPACITY);
        let (app_tx, from_app) = mpsc::channel(SESSION_CHANNEL_CAPACITY);
        let receive = Receiver::new(ChannelSource::new(&scope, app_rx));
        let send = Sender::new(ChannelSink::new(&scope, app_tx));
        let task = tokio::spawn(async move { app.call(scope, receive, send).await });
        TestSession {
            to_app: Some(to_app),
            from_app,
            task,
        }
    }

    /// Delivers an event to the app's `recv`, waiting while its queue is full.
    ///
    /// # Errors
    ///
    /// [`SendError::Disconnected`] once the app returned, or after [`disconnect`](TestSession::disconnect).
    pub async fn send(&mut self, event: ReceiveEvent) -> Result<(), SendError> {
        match &self.to_app {
            Some(tx) => tx.send(event).await.map_err(|_| SendError::Disconnected),
            None => Err(SendError::Disconnected),
        }
    }

    /// The next event the app sent; `None` once the app is done and everything was read.
    pub async fn recv(&mut self) -> Option<SendEvent> {
        self.from_app.recv().await
    }

    /// Leaves like a client that closed the connection: the app's `recv` returns the
    /// disconnect event (at once, also when pending) and its `send` returns `Disconnected`.
    /// Events already sent can still be read with [`recv`](TestSession::recv).
    pub fn disconnect(&mut self) {
        self.to_app = None;
        self.from_app.close();
    }

    /// Waits for the app to return and gives its result; a panic becomes an [`Error`] for
    /// which [`is_panic`](Error::is_panic) is true. Events the app still sends are read and
    /// dropped. An app that waits for more input keeps waiting: call
    /// [`disconnect`](TestSession::disconnect) first to end it like a client would.
    pub async fn finish(mut self) -> Result<(), Error> {
        // Dropping our side of the app's input would look like a disconnect; keep it until the
        // app is done, but keep draining its output so it never blocks on a full queue.
        let _keep = self.to_app.take();
        let mut task = self.task;
        loop {
            tokio::select! {
                joined = &mut task => {
                    return app_result(joined);
                }
                event = self.from_app.recv(), if !self.from_app.is_closed() => {
                    if event.is_none() {
                        self.from_app.close();
                    }
                }
            }
        }
    }
}
