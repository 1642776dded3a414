//! Running the lifespan protocol against an app: startup, frozen state, shutdown.
//!
//! Servers (and the HTTP test client) use [`Lifespan::startup`] before serving and
//! [`Lifespan::shutdown`] after draining, so that every host of an app runs the protocol the
//! same way. The app runs in a task of its own, fed through bounded channels.

use std::fmt;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::error::Error;
use crate::event::{ReceiveEvent, SendEvent};
use crate::handle::{Receiver, Sender};
use crate::host::app_result;
use crate::host::channel::{ChannelSink, ChannelSource};
use crate::scope::{LifespanScope, Scope};
use crate::state::{LifespanState, State};

/// How many events may wait in each direction between the runner and the app. The lifespan
/// protocol has at most one event in flight each way (`lifespan.startup` then its answer,
/// `lifespan.shutdown` then its answer), so one slot is all it needs.
const LIFESPAN_CHANNEL_CAPACITY: usize = 1;

/// How the app answered `lifespan.startup`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Startup {
    /// `lifespan.startup.complete`: serve, sharing the frozen state.
    Complete(Lifespan),
    /// `lifespan.startup.failed`: do not serve; the message says why.
    Failed {
        /// The app's `message`.
        message: String,
    },
    /// The app returned (or failed) without answering: it has no lifespan support, and the
    /// server goes on without it, as the spec says. `error` is what it returned, if an error.
    Unsupported {
        /// The app's error, if it returned one (or panicked).
        error: Option<Error>,
    },
}

/// An app's lifespan after a completed startup: the shared state, and the shutdown to run when
/// the server has drained.
///
/// # Example
///
/// ```
/// use asgi_core::host::lifespan::{Lifespan, Startup};
/// use asgi_core::{Error, ReceiveEvent, Receiver, Scope, SendEvent, Sender};
///
/// #[derive(Clone)]
/// struct Pool(&'static str);
///
/// async fn app(scope: Scope, mut receive: Receiver, mut send: Sender) -> Result<(), Error> {
///     let Scope::Lifespan(lifespan) = scope else { return Ok(()) };
///     loop {
///         match receive.recv().await {
///             ReceiveEvent::LifespanStartup => {
///                 lifespan.state.insert(Pool("db"))?;
///                 send.send(SendEvent::LifespanStartupComplete).await?;
///             }
///             ReceiveEvent::LifespanShutdown => {
///                 send.send(SendEvent::LifespanShutdownComplete).await?;
///                 return Ok(());
///             }
///             _ => return Ok(()),
///         }
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let Startup::Complete(lifespan) = Lifespan::startup(app).await else { panic!() };
/// assert_eq!(lifespan.state().get::<Pool>().map(|p| p.0), Some("db"));
/// lifespan.shutdown().await.unwrap();
/// # });
/// ```
pub struct Lifespan {
    app: AppTask,
    state: State,
}

impl fmt::Debug for Lifespan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lifespan")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Lifespan {
    /// Calls `app` with a lifespan scope in a task of its own, sends `lifespan.startup` and
    /// waits for the answer. On `lifespan.startup.complete` the state the app filled is frozen.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn startup(app: impl App) -> Startup {
        Lifespan::startup_with(app, LifespanScope::new(LifespanState::new())).await
    }

    /// [`startup`](Lifespan::startup) with a lifespan scope of the caller's: the app fills
    /// `scope.state`, which is frozen on `lifespan.startup.complete`. An app that runs the
    /// lifespans of the apps it contains uses this to give each one a state of its own (see
    /// [`LifespanState::merge`]).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn startup_with(app: impl App, scope: LifespanScope) -> Startup {
        let building = scope.state.clone();
        let scope = Scope::Lifespan(scope);
        let mut app = AppTask::spawn(app, scope);
        if !app.send(ReceiveEvent::LifespanStartup).await {
            return Startup::Unsupported {
                error: app.finish().await.err(),
            };
        }
        match app.recv().await {
            Some(SendEvent::LifespanStartupComplete) => Startup::Complete(Lifespan {
                app,
                state: building.freeze(),
            }),
            Some(SendEvent::LifespanStartupFailed { message }) => {
                // The app may go on after reporting failure; it is not awaited, the server
                // will not serve.
                app.disconnect();
                Startup::Failed { message }
            }
            // The sink's protocol check admits only the two answers above first, so the only
            // other outcome is the app returning without one.
            _ => Startup::Unsupported {
                error: app.finish().await.err(),
            },
        }
    }

    /// The frozen state, to share into every connection's scope.
    pub fn state(&self) -> State {
        self.state.clone()
    }

    /// Sends `lifespan.shutdown` and waits for the app's answer.
    ///
    /// # Errors
    ///
    /// The app's `lifespan.shutdown.failed` message, or the error it returned (or its panic)
    /// if it ended without answering. Callers that need a deadline wrap this in a timeout.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        if !self.app.send(ReceiveEvent::LifespanShutdown).await {
            // The app already returned; whatever it returned is the answer.
            return self.app.finish().await;
        }
        match self.app.recv().await {
            Some(SendEvent::LifespanShutdownComplete) => {
                // Done: the app's task ends by itself (its next `recv` gets `lifespan.shutdown`
                // again, its next `send` fails), and nothing it does now changes the answer.
                self.app.disconnect();
                Ok(())
            }
            Some(SendEvent::LifespanShutdownFailed { message }) => {
                self.app.disconnect();
                Err(Error::msg(format!("lifespan shutdown failed: {message}")))
            }
            _ => match self.app.finish().await {
                Ok(()) => Err(Error::msg(
                    "the app returned without answering lifespan.shutdown",
                )),
                Err(e) => Err(e),
            },
        }
    }
}

/// The app's lifespan call, running in a task of its own, and the two channels to it.
struct AppTask {
    to_app: Option<mpsc::Sender<ReceiveEvent>>,
    from_app: mpsc::Receiver<SendEvent>,
    task: JoinHandle<Result<(), Error>>,
}

impl AppTask {
    fn spawn(app: impl App, scope: Scope) -> Self {
        let (to_app, app_rx) = mpsc::channel(LIFESPAN_CHANNEL_CAPACITY);
        let (app_tx, from_app) = mpsc::channel(LIFESPAN_CHANNEL_CAPACITY);
        let receive = Receiver::new(ChannelSource::new(&scope, app_rx));
        let send = Sender::new(ChannelSink::new(&scope, app_tx));
        let task = tokio::spawn(async move { app.call(scope, receive, send).await });
        AppTask {
            to_app: Some(to_app),
            from_app,
            task,
        }
    }

    /// Delivers `event` to the app's `recv`; false once the app dropped its receiver.
    async fn send(&mut self, event: ReceiveEvent) -> bool {
        match &self.to_app {
            Some(tx) => tx.send(event).await.is_ok(),
            None => false,
        }
    }

    /// The app's next event; `None` once it dropped its sender (returned).
    async fn recv(&mut self) -> Option<SendEvent> {
        self.from_app.recv().await
    }

    /// Leaves the app to end by itself: its `recv` gets the disconnect event (for a lifespan
    /// scope, `lifespan.shutdown`), its `send` fails.
    fn disconnect(&mut self) {
        self.to_app = None;
        self.from_app.close();
    }

    /// Waits for the app to return, reading and dropping what it still sends so that it never
    /// blocks on a full channel.
    async fn finish(mut self) -> Result<(), Error> {
        // Keep the app's input open: closing it would look like a shutdown to the app.
        let _keep = self.to_app.take();
        loop {
            tokio::select! {
                joined = &mut self.task => return app_result(joined),
                event = self.from_app.recv(), if !self.from_app.is_closed() => {
                    if event.is_none() {
                        self.from_app.close();
                    }
                }
            }
        }
    }
}
