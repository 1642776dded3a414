//! The errors of the interface: [`Error`] for apps, [`SendError`] for `send`, and
//! [`ProtocolError`] for an event sent out of order.

use std::error::Error as StdError;
use std::fmt;

/// The boxed error type carried as the source of an [`Error`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The error an [`App`](crate::App) returns.
///
/// It is opaque on purpose (as in hyper): test what kind it is with the `is_*` predicates and
/// walk [`source()`](StdError::source) for the cause. Its message is for people, not API.
///
/// A server treats an `Err` like this: before `http.response.start` the client gets a
/// `500 Internal Server Error`; after it, the response is aborted so that a truncated body
/// never looks complete. An error for which [`is_disconnected`](Error::is_disconnected) is true
/// is the normal end of a connection whose client went away, and is not logged as an error.
///
/// # Example
///
/// ```
/// use asgi_core::Error;
///
/// let err = Error::msg("database unavailable");
/// assert!(!err.is_disconnected());
/// assert_eq!(err.to_string(), "database unavailable");
///
/// let io = std::io::Error::other("disk on fire");
/// let err = Error::new(io);
/// assert!(std::error::Error::source(&err).is_some());
/// ```
pub struct Error {
    kind: Kind,
    source: Option<BoxError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The peer went away; see [`SendError::Disconnected`].
    Disconnected,
    /// An event out of order; see [`ProtocolError`].
    Protocol,
    /// The app's own failure, with a message.
    Message,
    /// The app's own failure, with a source error.
    App,
    /// The lifespan state was written after startup completed.
    StateFrozen,
    /// The app panicked; the source holds the panic message.
    Panic,
}

impl Error {
    /// Wraps any error as the app's own failure; it becomes [`source()`](StdError::source).
    pub fn new<E>(error: E) -> Self
    where
        E: Into<BoxError>,
    {
        let source = error.into();
        // Keep the kind of an error that already is one of ours (e.g. a SendError boxed by a
        // helper), so `is_disconnected()` still answers true for it.
        let kind = if let Some(send) = source.downcast_ref::<SendError>() {
            match send {
                SendError::Disconnected => Kind::Disconnected,
                SendError::Protocol(_) => Kind::Protocol,
                SendError::Io(_) => Kind::App,
            }
        } else {
            Kind::App
        };
        Error {
            kind,
            source: Some(source),
        }
    }

    /// An error with a message and no source, for an app's own failures.
    pub fn msg(message: impl fmt::Display) -> Self {
        Error {
            kind: Kind::Message,
            source: Some(message.to_string().into()),
        }
    }

    /// The error a handle returns when the peer has gone away.
    pub fn disconnected() -> Self {
        Error {
            kind: Kind::Disconnected,
            source: None,
        }
    }

    /// The error for an app that panicked, from the payload that `catch_unwind` or a
    /// `JoinError` gives; the message is kept when the payload is a string.
    pub fn from_panic(payload: Box<dyn std::any::Any + Send>) -> Self {
        let message = payload
            .downcast_ref::<&'static str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        Error {
            kind: Kind::Panic,
            source: Some(message.into()),
        }
    }

    pub(crate) fn state_frozen() -> Self {
        Error {
            kind: Kind::StateFrozen,
            source: None,
        }
    }

    /// True when the peer went away (a client disconnect). This is a normal outcome: servers
    /// do not log it as an error.
    pub fn is_disconnected(&self) -> bool {
        self.kind == Kind::Disconnected
    }

    /// True when an event was sent out of the order the protocol allows; the
    /// [`ProtocolError`] is the source.
    pub fn is_protocol(&self) -> bool {
        self.kind == Kind::Protocol
    }

    /// True when the app panicked (see [`Error::from_panic`]).
    pub fn is_panic(&self) -> bool {
        self.kind == Kind::Panic
    }

    /// True when the lifespan state was written after `lifespan.startup.complete`.
    pub fn is_state_frozen(&self) -> bool {
        self.kind == Kind::StateFrozen
    }

    /// The [`ProtocolError`] behind this error, if it is one.
    pub fn protocol_error(&self) -> Option<&ProtocolError> {
        self.source
            .as_deref()
            .and_then(|s| s.downcast_ref::<SendError>())
            .and_then(|s| match s {
                SendError::Protocol(p) => Some(p),
                SendError::Disconnected | SendError::Io(_) => None,
            })
            .or_else(|| {
                self.source
                    .as_deref()
                    .and_then(|s| s.downcast_ref::<ProtocolError>())
            })
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("asgi_core::Error");
        d.field("kind", &self.kind);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, &self.source) {
            (Kind::Message, Some(source)) => fmt::Display::fmt(source, f),
            (Kind::Disconnected, _) => f.write_str("the peer disconnected"),
            (Kind::StateFrozen, _) => {
                f.write_str("lifespan state is read-only after lifespan.startup.complete")
            }
            (Kind::Protocol, Some(source)) => fmt::Display::fmt(source, f),
            (Kind::Panic, Some(source)) => write!(f, "app panicked: {source}"),
            (_, Some(source)) => write!(f, "app error: {source}"),
            (_, None) => f.write_str("app error"),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self.kind {
            // A message is the error itself, not a cause.
            Kind::Message => None,
            _ => self
                .source
                .as_deref()
                .map(|s| s as &(dyn StdError + 'static)),
        }
    }
}

impl From<SendError> for Error {
    fn from(error: SendError) -> Self {
        match error {
            SendError::Disconnected => Error::disconnected(),
            SendError::Protocol(p) => Error {
                kind: Kind::Protocol,
                source: Some(Box::new(p)),
            },
            io @ SendError::Io(_) => Error {
                kind: Kind::App,
                source: Some(Box::new(io)),
            },
        }
    }
}

impl From<ProtocolError> for Error {
    fn from(error: ProtocolError) -> Self {
        SendError::Protocol(error).into()
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Error::new(error)
    }
}

impl From<BoxError> for Error {
    fn from(error: BoxError) -> Self {
        Error::new(error)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error::msg(message)
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::msg(message)
    }
}

/// Why [`Sender::send`](crate::Sender::send) did not deliver an event.
///
/// `Disconnected` is the normal end of a connection whose client left; `Protocol` is a bug in
/// the app (an event the protocol does not allow at this point), and names both events; `Io`
/// is a failure of the server's I/O in carrying the event out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The client is gone; nothing more can be delivered. Not an error worth logging.
    #[error("the client disconnected")]
    Disconnected,
    /// The event is not allowed at this point of the protocol.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The server could not carry the event out because an I/O operation failed: the file of
    /// an `http.response.pathsend` cannot be opened, for one. Not a mistake in the protocol;
    /// the kind says what failed (the server logs the whole error).
    #[error("the server could not carry the event out: {0}")]
    Io(std::io::ErrorKind),
}

impl SendError {
    /// True for [`SendError::Disconnected`].
    pub fn is_disconnected(&self) -> bool {
        matches!(self, SendError::Disconnected)
    }
}

/// An app sent an event that the protocol does not allow at this point.
///
/// It names the event that came and what the protocol expected instead, e.g.
/// "unexpected ASGI event `http.response.body`: expected `http.response.start`".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    received: &'static str,
    expected: &'static str,
}

impl ProtocolError {
    /// An error for the event type `received` where `expected` was allowed. `expected` is a
    /// human description such as "`http.response.body` or `http.response.trailers`" or
    /// "nothing: the response is complete".
    pub fn new(received: &'static str, expected: &'static str) -> Self {
        ProtocolError { received, expected }
    }

    /// The ASGI type of the event that was sent, e.g. `"http.response.body"`.
    pub fn received(&self) -> &'static str {
        self.received
    }

    /// What the protocol allowed at that point.
    pub fn expected(&self) -> &'static str {
        self.expected
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unexpected ASGI event `{}`: expected {}",
            self.received, self.expected
        )
    }
}

impl StdError for ProtocolError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_error_disconnected_converts_to_disconnected_error() {
        let err: Error = SendError::Disconnected.into();
        assert!(err.is_disconnected());
        assert!(!err.is_protocol());
    }

    #[test]
    fn protocol_error_names_both_events() {
        let err: Error = SendError::Protocol(ProtocolError::new(
            "http.response.body",
            "`http.response.start`",
        ))
        .into();
        assert!(err.is_protocol());
        assert_eq!(
            err.to_string(),
            "unexpected ASGI event `http.response.body`: expected `http.response.start`"
        );
        assert_eq!(
            err.protocol_error().map(|p| p.received()),
            Some("http.response.body")
        );
    }

    #[test]
    fn boxed_send_error_keeps_its_kind() {
        let boxed: BoxError = Box::new(SendError::Disconnected);
        assert!(Error::new(boxed).is_disconnected());
    }

    #[test]
    fn message_error_displays_message_and_has_no_source() {
        let err = Error::from("boom");
        assert_eq!(err.to_string(), "boom");
        assert!(StdError::source(&err).is_none());
    }
}
