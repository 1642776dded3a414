//! The order in which an app may send events, per protocol.
//!
//! Every server (and the test harness) runs an app's `send` through one of these checkers, so
//! that "body before start", "a second start" or "a message after the response completed" get
//! the same [`ProtocolError`], naming the event that came and what was expected, wherever the
//! app runs.

use crate::error::ProtocolError;
use crate::event::SendEvent;
use crate::scope::Scope;

/// Checks the events an app sends on one connection against the order its protocol allows.
///
/// # Example
///
/// ```
/// use asgi_core::{Scope, SendEvent, HttpScope};
/// use asgi_core::protocol::SendProtocol;
/// use http::{HeaderMap, Method, StatusCode};
///
/// let scope = Scope::from(HttpScope::new(Method::GET, "/"));
/// let mut protocol = SendProtocol::for_scope(&scope);
/// let err = protocol.check(&SendEvent::response_body("early", false)).unwrap_err();
/// assert_eq!(err.received(), "http.response.body");
/// protocol.check(&SendEvent::response_start(StatusCode::OK, HeaderMap::new())).unwrap();
/// protocol.check(&SendEvent::response_body("ok", false)).unwrap();
/// assert!(protocol.is_complete());
/// ```
#[derive(Debug, Clone)]
pub struct SendProtocol {
    state: Stage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    HttpStart,
    HttpBody { trailers: bool, body_sent: bool },
    HttpTrailers,
    HttpDone,
    WsConnecting,
    WsOpen,
    WsDenialBody,
    WsClosed,
    LifespanStartup,
    LifespanRunning,
    LifespanDone,
}

impl SendProtocol {
    /// The checker for a connection of `scope`'s type.
    pub fn for_scope(scope: &Scope) -> Self {
        let state = match scope {
            Scope::WebSocket(_) => Stage::WsConnecting,
            Scope::Lifespan(_) => Stage::LifespanStartup,
            _ => Stage::HttpStart,
        };
        SendProtocol { state }
    }

    /// Checks `event` and, if it is allowed, advances the state.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] naming `event`'s type and what was expected; the state does not
    /// change.
    pub fn check(&mut self, event: &SendEvent) -> Result<(), ProtocolError> {
        use SendEvent as E;
        use Stage as S;
        let next = match (self.state, event) {
            (S::HttpStart, E::HttpResponseStart { trailers, .. }) => S::HttpBody {
                trailers: *trailers,
                body_sent: false,
            },
            (S::HttpBody { trailers, .. }, E::HttpResponseBody { more_body, .. }) => {
                match (*more_body, trailers) {
                    (true, _) => S::HttpBody {
                        trailers,
                        body_sent: true,
                    },
                    (false, true) => S::HttpTrailers,
                    (false, false) => S::HttpDone,
                }
            }
            (
                S::HttpBody {
                    trailers,
                    body_sent: false,
                },
                E::HttpResponsePathsend { .. },
            ) => {
                if trailers {
                    S::HttpTrailers
                } else {
                    S::HttpDone
                }
            }
            (S::HttpTrailers, E::HttpResponseTrailers { more_trailers, .. }) => {
                if *more_trailers {
                    S::HttpTrailers
                } else {
                    S::HttpDone
                }
            }
            (S::WsConnecting, E::WebSocketAccept { .. }) => S::WsOpen,
            (S::WsConnecting, E::WebSocketClose { .. }) => S::WsClosed,
            (S::WsConnecting, E::WebSocketHttpResponseStart { .. }) => S::WsDenialBody,
            (S::WsDenialBody, E::WebSocketHttpResponseBody { more_body, .. }) => {
                if *more_body {
                    S::WsDenialBody
                } else {
                    S::WsClosed
                }
            }
            (S::WsOpen, E::WebSocketSend(_)) => S::WsOpen,
            (S::WsOpen, E::WebSocketClose { .. }) => S::WsClosed,
            (S::LifespanStartup, E::LifespanStartupComplete | E::LifespanStartupFailed { .. }) => {
                S::LifespanRunning
            }
            (
                S::LifespanRunning,
                E::LifespanShutdownComplete | E::LifespanShutdownFailed { .. },
            ) => S::LifespanDone,
            (state, event) => {
                return Err(ProtocolError::new(event.type_name(), expected(state)));
            }
        };
        self.state = next;
        Ok(())
    }

    /// True once the HTTP response head was sent (`http.response.start`), or the WebSocket
    /// was answered (accepted, closed or denied).
    pub fn is_started(&self) -> bool {
        !matches!(
            self.state,
            Stage::HttpStart | Stage::WsConnecting | Stage::LifespanStartup
        )
    }

    /// True once nothing more may be sent: the HTTP response (and its trailers) completed,
    /// the WebSocket was closed or denied, or lifespan shutdown was answered.
    pub fn is_complete(&self) -> bool {
        matches!(
            self.state,
            Stage::HttpDone | Stage::WsClosed | Stage::LifespanDone
        )
    }
}

fn expected(state: Stage) -> &'static str {
    match state {
        Stage::HttpStart => "`http.response.start`",
        Stage::HttpBody {
            body_sent: false, ..
        } => "`http.response.body` or `http.response.pathsend`",
        Stage::HttpBody { .. } => "`http.response.body`",
        Stage::HttpTrailers => "`http.response.trailers`",
        Stage::HttpDone => "nothing: the response is complete",
        Stage::WsConnecting => {
            "`websocket.accept`, `websocket.close` or `websocket.http.response.start`"
        }
        Stage::WsOpen => "`websocket.send` or `websocket.close`",
        Stage::WsDenialBody => "`websocket.http.response.body`",
        Stage::WsClosed => "nothing: the WebSocket is closed",
        Stage::LifespanStartup => "`lifespan.startup.complete` or `lifespan.startup.failed`",
        Stage::LifespanRunning => "`lifespan.shutdown.complete` or `lifespan.shutdown.failed`",
        Stage::LifespanDone => "nothing: lifespan shutdown was answered",
    }
}
