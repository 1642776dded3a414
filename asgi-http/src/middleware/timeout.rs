//! [`Timeout`]: `504 Gateway Timeout` when the app has not started its response in time
//! (tower-http's `TimeoutLayer`, on ASGI terms).
//!
//! When the limit passes before `http.response.start`:
//!
//! 1. the client gets `504 Gateway Timeout` at once;
//! 2. the app is **not** dropped mid-await: its pending and later `recv()` return
//!    `http.disconnect`, exactly as if the client had left, and its later sends fail with
//!    `SendError::Disconnected`, so it stops where it would stop for a gone client (the
//!    normal `?` on `send` does it);
//! 3. the middleware returns when the app returns; an `Err` that is `is_disconnected()` is
//!    the normal end then and becomes `Ok`.
//!
//! A response that started in time is not limited further: streams and server-sent events
//! run as long as they run (limit idle connections with the server's keep-alive settings).
//! WebSocket and lifespan scopes pass through.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! use asgi_core::AppExt;
//! use asgi_http::middleware::timeout::TimeoutLayer;
//! # async fn app(_: asgi_core::Scope, _: asgi_core::Receiver, _: asgi_core::Sender)
//! #     -> Result<(), asgi_core::Error> { Ok(()) }
//!
//! let app = app.with(TimeoutLayer::new(Duration::from_secs(30)));
//! # fn assert_app(_: impl asgi_core::App) {}
//! # assert_app(app);
//! ```
//!
//! # Cancel safety
//!
//! The middleware polls the app's future inline (no task is spawned) until the app returns.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use asgi_core::http::{HeaderMap, StatusCode};
use asgi_core::{
    App, Error, EventSink, EventSource, Layer, ReceiveEvent, Receiver, Scope, SendError, SendEvent,
    Sender, async_trait,
};
use tokio::sync::watch;

/// The settings of a [`Timeout`] middleware, and its layer.
#[derive(Debug, Clone, Copy)]
pub struct TimeoutLayer {
    limit: Duration,
}

impl TimeoutLayer {
    /// Answers `504` when the response has not started within `limit`.
    pub fn new(limit: Duration) -> Self {
        TimeoutLayer { limit }
    }
}

impl<A: App> Layer<A> for TimeoutLayer {
    type App = Timeout<A>;

    fn layer(&self, inner: A) -> Timeout<A> {
        Timeout {
            inner,
            limit: self.limit,
        }
    }
}

/// The timeout middleware; see the [module docs](self).
pub struct Timeout<A> {
    inner: A,
    limit: Duration,
}

impl<A> fmt::Debug for Timeout<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<A: App> Timeout<A> {
    /// Wraps `inner` with the settings of `layer`.
    pub fn new(inner: A, layer: &TimeoutLayer) -> Self {
        layer.layer(inner)
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

/// Where the response stands; decided under a lock so that the app's start and the
/// timer cannot both win.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    Started,
    TimedOut,
}

struct Shared {
    phase: Mutex<Phase>,
    sender: tokio::sync::Mutex<Sender>,
}

impl Shared {
    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct TimeoutSink(Arc<Shared>);

#[async_trait]
impl EventSink for TimeoutSink {
    async fn send(&mut self, event: SendEvent) -> Result<(), SendError> {
        {
            let mut phase = self.0.phase();
            match *phase {
                Phase::TimedOut => return Err(SendError::Disconnected),
                Phase::Waiting if matches!(event, SendEvent::HttpResponseStart { .. }) => {
                    *phase = Phase::Started;
                }
                _ => {}
            }
        }
        self.0.sender.lock().await.send(event).await
    }
}

struct TimeoutSource {
    inner: Receiver,
    timed_out: watch::Receiver<bool>,
}

#[async_trait]
impl EventSource for TimeoutSource {
    async fn recv(&mut self) -> ReceiveEvent {
        if *self.timed_out.borrow() {
            return ReceiveEvent::HttpDisconnect;
        }
        tokio::select! {
            event = self.inner.recv() => event,
            _ = self.timed_out.wait_for(|t| *t) => ReceiveEvent::HttpDisconnect,
        }
    }
}

#[async_trait]
impl<A: App> App for Timeout<A> {
    async fn call(&self, scope: Scope, receive: Receiver, send: Sender) -> Result<(), Error> {
        if !matches!(scope, Scope::Http(_)) {
            return self.inner.call(scope, receive, send).await;
        }
        let shared = Arc::new(Shared {
            phase: Mutex::new(Phase::Waiting),
            sender: tokio::sync::Mutex::new(send),
        });
        let (timed_out_tx, timed_out_rx) = watch::channel(false);
        let receive = Receiver::new(TimeoutSource {
            inner: receive,
            timed_out: timed_out_rx,
        });
        let app = self
            .inner
            .call(scope, receive, Sender::new(TimeoutSink(shared.clone())));
        tokio::pin!(app);
        tokio::select! {
            result = &mut app => return result,
            () = tokio::time::sleep(self.limit) => {}
        }
        let fire = {
            let mut phase = shared.phase();
            if *phase == Phase::Waiting {
                *phase = Phase::TimedOut;
                true
            } else {
                false
            }
        };
        if !fire {
            return app.await;
        }
        let _ = timed_out_tx.send(true);
        let answered = {
            let mut sender = shared.sender.lock().await;
            super::reject(
                &Scope::from(asgi_core::HttpScope::new(asgi_core::http::Method::GET, "/")),
                &mut sender,
                StatusCode::GATEWAY_TIMEOUT,
                HeaderMap::new(),
                "Gateway Timeout",
            )
            .await
        };
        match app.await {
            Err(e) if e.is_disconnected() => answered,
            Ok(()) => answered,
            Err(e) => Err(e),
        }
    }
}
