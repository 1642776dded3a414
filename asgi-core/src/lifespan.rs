//! Running the lifespan protocol against an app: startup, frozen state, shutdown.
//!
//! Servers (and the HTTP test client) use [`Lifespan::startup`] before serving and
//! [`Lifespan::shutdown`] after draining, so that every host of an app runs the protocol the
//! same way (DESIGN.md 3.7).

use std::fmt;

use crate::app::App;
use crate::error::Error;
use crate::event::{ReceiveEvent, SendEvent};
use crate::scope::{LifespanScope, Scope};
use crate::state::{LifespanState, State};
use crate::testing::Session;

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
/// use asgi_core::lifespan::{Lifespan, Startup};
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
    session: Session,
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
    pub async fn startup(app: impl App) -> Startup {
        let building = LifespanState::new();
        let scope = Scope::Lifespan(LifespanScope::new(building.clone()));
        let mut session = Session::start(app, scope);
        if session.send(ReceiveEvent::LifespanStartup).await.is_err() {
            return Startup::Unsupported {
                error: session.finish().await.err(),
            };
        }
        match session.recv().await {
            Some(SendEvent::LifespanStartupComplete) => Startup::Complete(Lifespan {
                session,
                state: building.freeze(),
            }),
            Some(SendEvent::LifespanStartupFailed { message }) => {
                session.disconnect();
                // The app may go on after reporting failure; it is not awaited, the server
                // will not serve.
                Startup::Failed { message }
            }
            // The sink's protocol check admits only the two answers above first, so the only
            // other outcome is the app returning without one.
            _ => Startup::Unsupported {
                error: session.finish().await.err(),
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
        if self
            .session
            .send(ReceiveEvent::LifespanShutdown)
            .await
            .is_err()
        {
            // The app already returned; whatever it returned is the answer.
            return self.session.finish().await;
        }
        match self.session.recv().await {
            Some(SendEvent::LifespanShutdownComplete) => {
                // Done: the app's task ends by itself (its next `recv` gets `lifespan.shutdown`
                // again, its next `send` fails), and nothing it does now changes the answer.
                self.session.disconnect();
                Ok(())
            }
            Some(SendEvent::LifespanShutdownFailed { message }) => {
                self.session.disconnect();
                Err(Error::msg(format!("lifespan shutdown failed: {message}")))
            }
            _ => match self.session.finish().await {
                Ok(()) => Err(Error::msg(
                    "the app returned without answering lifespan.shutdown",
                )),
                Err(e) => Err(e),
            },
        }
    }
}
