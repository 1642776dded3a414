//! [`ConcurrencyLimit`]: at most N requests in the app at once; beyond that, `503 Service
//! Unavailable` with `Retry-After`, at once (uvicorn's `--limit-concurrency`).
//!
//! A request counts from the moment it enters until the inner app returns, so a streamed
//! response or an open WebSocket counts for as long as it lasts. A refused WebSocket gets a
//! `503` denial response, or `websocket.close` (a `403`) when the server cannot send one.
//! The lifespan passes through and does not count.
//!
//! Refusing at once, rather than queueing, is the point: a queue in front of an overloaded
//! app only makes every client wait longer, while a `503` with `Retry-After` lets a load
//! balancer or client go elsewhere.
//!
//! # Example
//!
//! ```
//! use asgi_core::AppExt;
//! use asgi_http::middleware::concurrency_limit::ConcurrencyLimitLayer;
//! # async fn app(_: asgi_core::Scope, _: asgi_core::Receiver, _: asgi_core::Sender)
//! #     -> Result<(), asgi_core::Error> { Ok(()) }
//!
//! let app = app.with(ConcurrencyLimitLayer::new(100));
//! # fn assert_app(_: impl asgi_core::App) {}
//! # assert_app(app);
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use asgi_core::http::{HeaderMap, HeaderValue, StatusCode, header};
use asgi_core::{App, Error, Layer, Receiver, Scope, Sender, async_trait};
use tokio::sync::Semaphore;

/// The `Retry-After` of a refusal, unless [`ConcurrencyLimitLayer::retry_after`] says
/// otherwise.
///
/// Default is 1 second: overload from a burst usually passes within a second, and a client
/// that honours it does not add to the burst.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The settings of a [`ConcurrencyLimit`] middleware, and its layer.
///
/// Every app the layer wraps shares one count: apply the same layer to several apps to
/// limit them together.
#[derive(Debug, Clone)]
pub struct ConcurrencyLimitLayer {
    permits: Arc<Semaphore>,
    limit: usize,
    retry_after: Duration,
}

impl ConcurrencyLimitLayer {
    /// At most `limit` requests in flight.
    ///
    /// # Panics
    ///
    /// When `limit` is larger than Tokio's semaphore allows (`usize::MAX >> 3`).
    pub fn new(limit: usize) -> Self {
        ConcurrencyLimitLayer {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            retry_after: DEFAULT_RETRY_AFTER,
        }
    }

    /// The `Retry-After` of a refusal, in whole seconds (rounded up). Default
    /// [`DEFAULT_RETRY_AFTER`].
    pub fn retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = retry_after;
        self
    }
}

impl<A: App> Layer<A> for ConcurrencyLimitLayer {
    type App = ConcurrencyLimit<A>;

    fn layer(&self, inner: A) -> ConcurrencyLimit<A> {
        ConcurrencyLimit {
            inner,
            layer: self.clone(),
        }
    }
}

/// The concurrency-limit middleware; see the [module docs](self).
pub struct ConcurrencyLimit<A> {
    inner: A,
    layer: ConcurrencyLimitLayer,
}

impl<A> fmt::Debug for ConcurrencyLimit<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimit")
            .field("limit", &self.layer.limit)
            .field(
                "in_flight",
                &(self.layer.limit - self.layer.permits.available_permits()),
            )
            .finish_non_exhaustive()
    }
}

impl<A: App> ConcurrencyLimit<A> {
    /// Wraps `inner` with the settings (and the shared count) of `layer`.
    pub fn new(inner: A, layer: &ConcurrencyLimitLayer) -> Self {
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

#[async_trait]
impl<A: App> App for ConcurrencyLimit<A> {
    async fn call(&self, scope: Scope, receive: Receiver, mut send: Sender) -> Result<(), Error> {
        if matches!(scope, Scope::Lifespan(_)) {
            return self.inner.call(scope, receive, send).await;
        }
        let Ok(_permit) = self.layer.permits.clone().try_acquire_owned() else {
            let retry = self.layer.retry_after;
            let seconds = retry.as_secs() + u64::from(retry.subsec_nanos() > 0);
            let mut headers = HeaderMap::new();
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            return super::reject(
                &scope,
                &mut send,
                StatusCode::SERVICE_UNAVAILABLE,
                headers,
                "Service Unavailable",
            )
            .await;
        };
        self.inner.call(scope, receive, send).await
    }
}
