//! [`WsgiError`]: the rules of PEP 3333 that a response broke.

use asgi_core::BoxError;

use crate::validate::ValidationError;

/// A response that breaks a rule of PEP 3333, as `start_response`, `write` or the server
/// reports it to the app.
///
/// Each variant names one rule. `start_response` returns it to the app, which usually
/// propagates it with `?`; a server that gets it from the app before the headers went out
/// answers `500 Internal Server Error` and logs the message; after, it aborts the response.
///
/// # Example
///
/// ```
/// use asgi_wsgi_compat::{StartResponse, WsgiError, Writer};
///
/// let start_response = StartResponse::from_fn(|_, _, _| Ok(Writer::from_fn(|_| Ok(()))));
/// let err = start_response.call("200", [("Content-Type", "text/plain")], None).unwrap_err();
/// assert!(matches!(err, WsgiError::InvalidStatus { .. }));
/// assert_eq!(err.to_string(), "invalid WSGI status \"200\": expected `NNN Reason`, e.g. `200 OK`");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WsgiError {
    /// The status is not `NNN Reason`: three digits, one space, a reason phrase, nothing
    /// around it. 1xx codes are informational and cannot end a request.
    #[error("invalid WSGI status {status:?}: {reason}")]
    InvalidStatus {
        /// The status as the app gave it.
        status: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A response header name or value that HTTP does not allow (a control character, a
    /// name that is not a token, a `Content-Length` that is not one decimal number).
    #[error("invalid response header {name:?}: {reason}")]
    InvalidHeader {
        /// The header name as the app gave it.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A hop-by-hop header (`Connection`, `Keep-Alive`, `Transfer-Encoding`, `Upgrade`, `TE`,
    /// `Trailer`, `Proxy-Authenticate`, `Proxy-Authorization`): PEP 3333 leaves the
    /// connection to the server.
    #[error(
        "hop-by-hop header {name:?} is not allowed in a WSGI response: the server manages the connection"
    )]
    HopByHopHeader {
        /// The header name, lowercase.
        name: String,
    },
    /// `start_response` was called a second time without `exc_info`.
    #[error("start_response called a second time without exc_info")]
    AlreadyStarted,
    /// `start_response` was called with `exc_info` after the headers were sent: the error is
    /// "re-raised", i.e. returned, for the app to return in turn.
    #[error(transparent)]
    Reraised(BoxError),
    /// Body data (or the end of the response) came before `start_response`.
    #[error("start_response was not called before {0}")]
    NotStarted(&'static str),
    /// The app sent fewer bytes than its `Content-Length` declared; the response is aborted
    /// so that the client can tell it is incomplete.
    #[error("the response ended after {sent} of the {declared} bytes its Content-Length declared")]
    ContentLengthShort {
        /// The declared `Content-Length`.
        declared: u64,
        /// The bytes the app sent.
        sent: u64,
    },
    /// `write` was called after the response was complete.
    #[error("the response is complete: nothing more can be written")]
    ResponseComplete,
    /// A [`Validator`](crate::Validator) found a violation of PEP 3333.
    #[error(transparent)]
    Validation(#[from] ValidationError),
}
