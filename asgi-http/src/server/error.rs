//! [`ServerError`]: why [`Server::serve`](super::Server::serve) returned an error.

use std::error::Error as StdError;
use std::fmt;
use std::io;

use super::tls::TlsError;

/// Why the server could not serve.
///
/// Opaque, as in hyper: ask what happened with the `is_*` predicates; the message is for
/// people, not API.
///
/// # Example
///
/// A program maps a failed lifespan startup to exit status 3, as uvicorn does:
///
/// ```
/// use asgi_core::{Error, ReceiveEvent, Receiver, Scope, SendEvent, Sender};
/// use asgi_http::server::Server;
///
/// async fn app(scope: Scope, mut receive: Receiver, mut send: Sender) -> Result<(), Error> {
///     if let (Scope::Lifespan(_), ReceiveEvent::LifespanStartup) = (&scope, receive.recv().await) {
///         let message = "the database is unreachable".to_owned();
///         send.send(SendEvent::LifespanStartupFailed { message }).await?;
///     }
///     Ok(())
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let result = Server::builder()
///     .bind("127.0.0.1:0".parse().unwrap())
///     .handle_signals(false)
///     .serve(app)
///     .await;
/// let err = result.unwrap_err();
/// assert!(err.is_startup_failed());
/// assert_eq!(err.startup_message(), Some("the database is unreachable"));
/// let status = if err.is_startup_failed() { 3 } else { 1 };
/// assert_eq!(status, 3);
/// # });
/// ```
pub struct ServerError {
    kind: Kind,
}

enum Kind {
    /// The app answered `lifespan.startup.failed` with this message.
    StartupFailed(String),
    /// Binding or preparing the listening socket failed.
    Bind(io::Error),
    /// A TLS certificate, key or CA file is missing or unusable.
    Tls(TlsError),
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

    pub(crate) fn tls(error: TlsError) -> Self {
        ServerError {
            kind: Kind::Tls(error),
        }
    }

    /// True when TLS could not be set up: a certificate, key or client CA file is missing
    /// or unusable. Nothing was bound and the app's lifespan did not start.
    pub fn is_tls(&self) -> bool {
        matches!(self.kind, Kind::Tls(_))
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
            Kind::Bind(_) | Kind::Tls(_) => None,
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
            Kind::Tls(error) => f.debug_tuple("ServerError::Tls").field(error).finish(),
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
            Kind::Tls(error) => write!(f, "cannot set up TLS: {error}"),
        }
    }
}

impl StdError for ServerError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.kind {
            Kind::Bind(error) => Some(error),
            Kind::Tls(error) => Some(error),
            Kind::StartupFailed(_) => None,
        }
    }
}
