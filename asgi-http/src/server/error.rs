//! [`ServerError`]: why [`Server::serve`](super::Server::serve) returned an error.

use std::error::Error as StdError;
use std::fmt;
use std::io;

/// Why the server could not serve.
///
/// Opaque, as in hyper: ask what happened with the `is_*` predicates; the message is for
/// people, not API.
///
/// # Example
///
/// A program maps a failed lifespan startup to exit status 3, as uvicorn does:
///
/// ```no_run
/// # async fn app(_: asgi_core::Scope, _: asgi_core::Receiver, _: asgi_core::Sender) -> Result<(), asgi_core::Error> { Ok(()) }
/// # async fn run() {
/// if let Err(err) = asgi_http::serve(app, "127.0.0.1:8000").await {
///     eprintln!("{err}");
///     std::process::exit(if err.is_startup_failed() { 3 } else { 1 });
/// }
/// # }
/// ```
pub struct ServerError {
    kind: Kind,
}

enum Kind {
    /// The app answered `lifespan.startup.failed` with this message.
    StartupFailed(String),
    /// Binding or preparing the listening socket failed.
    Bind(io::Error),
}

impl ServerError {
    pub(crate) fn startup_failed(message: String) -> Self {
        ServerError {
            kind: Kind::StartupFailed(message),
        }
    }

    pub(crate) fn bind(error: io::Error) -> Self {
        ServerError {
            kind: Kind::Bind(error),
        }
    }

    /// True when the app's lifespan startup failed (`lifespan.startup.failed`): the server
    /// did not serve.
    pub fn is_startup_failed(&self) -> bool {
        matches!(self.kind, Kind::StartupFailed(_))
    }

    /// True when the listening socket could not be bound or prepared (address in use, no
    /// permission, a live Unix socket at the path).
    pub fn is_bind(&self) -> bool {
        matches!(self.kind, Kind::Bind(_))
    }

    /// The app's message for a failed startup.
    pub fn startup_message(&self) -> Option<&str> {
        match &self.kind {
            Kind::StartupFailed(message) => Some(message),
            Kind::Bind(_) => None,
        }
    }
}

impl fmt::Debug for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::StartupFailed(message) => f
                .debug_tuple("ServerError::StartupFailed")
                .field(message)
                .finish(),
            Kind::Bind(error) => f.debug_tuple("ServerError::Bind").field(error).finish(),
        }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::StartupFailed(message) if message.is_empty() => {
                f.write_str("application startup failed")
            }
            Kind::StartupFailed(message) => write!(f, "application startup failed: {message}"),
            Kind::Bind(error) => write!(f, "cannot listen: {error}"),
        }
    }
}

impl StdError for ServerError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.kind {
            Kind::Bind(error) => Some(error),
            Kind::StartupFailed(_) => None,
        }
    }
}
