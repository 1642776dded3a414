//! [`BodyLimit`]: `413 Payload Too Large` for request bodies over a limit, answered by the
//! app, so that it passes through the middleware outside it (CORS headers included).
//!
//! The server has a limit of its own, [`max_request_body`](crate::server::Builder::max_request_body):
//! the first line of defence, which refuses a body before any app code runs. But the
//! server's `413` is the server's answer: it never passes through the middleware stack, so
//! it carries no CORS headers, and a browser reports a CORS error instead of the `413`.
//! This middleware gives the same refusal as the app's answer. Set it below the server's
//! limit (or turn that one off) and put it inside [`Cors`](super::cors::Cors):
//!
//! - a `content-length` over the limit gets the `413` at once: the inner app is not called
//!   and nothing of the body is read;
//! - a body without one (chunked, or HTTP/2) is counted as the inner app reads it. The event
//!   that passes the limit is not delivered: the `413` goes out at that moment, and the inner
//!   app receives `http.disconnect`, as if the client had left, and its sends after that
//!   fail with `Disconnected`. Nothing is buffered: the app reads the body as it streams.
//! - when the inner app had already started its response, a `413` is too late: the response
//!   is aborted (the middleware returns an error, and the server closes the stream), so the
//!   client can tell it is incomplete.
//!
//! The lifespan and WebSocket scopes pass through.
//!
//! For a limit on one route, wrap that route's app, or read its body with the limit it needs
//! ([`Request::body`](crate::request::Request::body) and
//! [`Request::json`](crate::request::Request::json) take one, and their
//! [`BodyError::TooLarge`](crate::request::BodyError::TooLarge) becomes the app's `413` in a
//! [handler](crate::handler)).
//!
//! # Example
//!
//! ```
//! use asgi_core::AppExt;
//! use asgi_http::middleware::body_limit::BodyLimitLayer;
//! use asgi_http::middleware::cors::CorsLayer;
//! # async fn app(_: asgi_core::Scope, _: asgi_core::Receiver, _: asgi_core::Sender)
//! #     -> Result<(), asgi_core::Error> { Ok(()) }
//!
//! let app = app
//!     .with(BodyLimitLayer::new(64 * 1024))
//!     .with(CorsLayer::new().allow_any_origin());
//! # fn assert_app(_: impl asgi_core::App) {}
//! # assert_app(app);
//! ```

use std::fmt;
use std::sync::Arc;

use asgi_core::http::{StatusCode, header};
use asgi_core::{
    App, Error, EventSink, EventSource, Layer, ReceiveEvent, Receiver, Scope, SendError, SendEvent,
    Sender, async_trait,
};
use tokio::sync::Mutex;

use crate::response::Response;

/// The settings of a [`BodyLimit`] middleware, and its layer.
#[derive(Debug, Clone)]
pub struct BodyLimitLayer {
    limit: usize,
}

impl BodyLimitLayer {
    /// Request bodies of at most `limit` bytes. There is no default: the right number
    /// depends on the app (a JSON API needs kilobytes, an upload route megabytes). To turn
    /// it off, do not add the layer.
    pub fn new(limit: usize) -> Self {
        BodyLimitLayer { limit }
    }
}

impl<A: App> Layer<A> for BodyLimitLayer {
    type App = BodyLimit<A>;

    fn layer(&self, inner: A) -> BodyLimit<A> {
        BodyLimit {
            inner,
            limit: self.limit,
        }
    }
}

/// The body-limit middleware; see the [module docs](self).
pub struct BodyLimit<A> {
    inner: A,
    limit: usize,
}

impl<A> fmt::Debug for BodyLimit<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyLimit")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<A: App> BodyLimit<A> {
    /// Wraps `inner`, with request bodies of at most `limit` bytes.
    pub fn new(inner: A, limit: usize) -> Self {
        BodyLimit { inner, limit }
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The inner app.
    pub fn get_ref(&self) -> &A {
        &self.inner
    }

    /// Unwraps the inner app.
    pub fn into_inner(self) -> A {
        self.inner
    }
}

#[async_trait]
impl<A: App> App for BodyLimit<A> {
    async fn call(&self, scope: Scope, receive: Receiver, mut send: Sender) -> Result<(), Error> {
        let Scope::Http(http) = &scope else {
            return self.inner.call(scope, receive, send).await;
        };
        let declared = http
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.limit as u64) {
            return refuse(&mut send).await;
        }
        let shared = Arc::new(Mutex::new(Outlet {
            send,
            started: false,
            cut: Cut::No,
        }));
        let receive = Receiver::new(LimitedSource {
            inner: receive,
            shared: shared.clone(),
            limit: self.limit,
            seen: 0,
            cut: false,
        });
        let send = Sender::new(LimitedSink {
            shared: shared.clone(),
        });
        let result = self.inner.call(scope, receive, send).await;
        match shared.lock().await.cut {
            Cut::No => result,
            // The inner app was told the client left; whatever it made of that, the answer
            // was the 413.
            Cut::Refused => Ok(()),
            Cut::AfterStart => Err(Error::msg(format!(
                "the request body passed the limit of {} bytes after the response started",
                self.limit
            ))),
        }
    }
}

/// The `413` answer, in plain text as the other middleware's refusals.
async fn refuse(send: &mut Sender) -> Result<(), Error> {
    Response::text("Payload Too Large")
        .status(StatusCode::PAYLOAD_TOO_LARGE)
        .send(send)
        .await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    No,
    Refused,
    AfterStart,
}

/// The outer sender, shared by the receiver (which answers `413` when the limit is passed)
/// and the inner app's sender.
struct Outlet {
    send: Sender,
    // Whether the inner app sent `http.response.start`: after that, a 413 is too late.
    started: bool,
    cut: Cut,
}

struct LimitedSource {
    inner: Receiver,
    shared: Arc<Mutex<Outlet>>,
    limit: usize,
    seen: usize,
    // Set once the limit was passed: every later `recv` is a disconnect.
    cut: bool,
}

#[async_trait]
impl EventSource for LimitedSource {
    async fn recv(&mut self) -> ReceiveEvent {
        if self.cut {
            return ReceiveEvent::HttpDisconnect;
        }
        let event = self.inner.recv().await;
        if let ReceiveEvent::HttpRequest { body, .. } = &event {
            self.seen = self.seen.saturating_add(body.len());
            if self.seen > self.limit {
                self.cut = true;
                let mut outlet = self.shared.lock().await;
                if outlet.started {
                    outlet.cut = Cut::AfterStart;
                } else {
                    outlet.cut = Cut::Refused;
                    // A client that left before the 413 needs no answer.
                    let _ = refuse(&mut outlet.send).await;
                }
                return ReceiveEvent::HttpDisconnect;
            }
        }
        event
    }
}

struct LimitedSink {
    shared: Arc<Mutex<Outlet>>,
}

#[async_trait]
impl EventSink for LimitedSink {
    async fn send(&mut self, event: SendEvent) -> Result<(), SendError> {
        let mut outlet = self.shared.lock().await;
        if outlet.cut != Cut::No {
            return Err(SendError::Disconnected);
        }
        if matches!(event, SendEvent::HttpResponseStart { .. }) {
            outlet.started = true;
        }
        outlet.send.send(event).await
    }
}
