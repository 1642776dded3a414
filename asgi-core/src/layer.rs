//! Middleware: apps that wrap apps, like the layers of an onion.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use crate::app::App;
use crate::error::Error;
use crate::handle::{Receiver, Sender};
use crate::scope::Scope;

/// Wraps an app in another app: a middleware factory, as in tower.
///
/// A middleware is an [`App`] that owns its inner app (`struct Cors<A> { inner: A }`); its
/// layer builds it around whatever app it is given. Apply layers with
/// [`AppExt::with`](crate::AppExt::with). Each `with` adds a layer **outside** the ones before
/// it, so the last one added sees the request first and the response last:
///
/// ```text
/// app.with(a).with(b).with(c)
///
///            request                                   response
///               │                                         ▲
///   ┌───────────▼─────────────────────────────────────────┴───────────┐
///   │ c                                                               │
///   │   ┌───────▼─────────────────────────────────────────┴───────┐   │
///   │   │ b                                                       │   │
///   │   │   ┌───▼─────────────────────────────────────────┴───┐   │   │
///   │   │   │ a              ┌────────────┐                   │   │   │
///   │   │   │                │    app     │                   │   │   │
///   │   │   │                └────────────┘                   │   │   │
///   │   │   └─────────────────────────────────────────────────┘   │   │
///   │   └─────────────────────────────────────────────────────────┘   │
///   └─────────────────────────────────────────────────────────────────┘
///
/// request: c → b → a → app        response: app → a → b → c
/// ```
///
/// # Example
///
/// A middleware that adds a header to every HTTP response by wrapping the [`Sender`]:
///
/// ```
/// use asgi_core::{App, AppExt, Error, Layer, Receiver, Scope, SendEvent, Sender};
/// use async_trait::async_trait;
/// use http::{HeaderMap, HeaderValue, StatusCode};
///
/// struct PoweredBy<A> { inner: A }
///
/// #[async_trait]
/// impl<A: App> App for PoweredBy<A> {
///     async fn call(&self, scope: Scope, receive: Receiver, send: Sender) -> Result<(), Error> {
///         if !matches!(scope, Scope::Http(_)) {
///             return self.inner.call(scope, receive, send).await; // pass through
///         }
///         let send = send.map(|mut event| {
///             if let SendEvent::HttpResponseStart { headers, .. } = &mut event {
///                 headers.insert("x-powered-by", HeaderValue::from_static("asgi"));
///             }
///             event
///         });
///         self.inner.call(scope, receive, send).await
///     }
/// }
///
/// struct PoweredByLayer;
///
/// impl<A: App> Layer<A> for PoweredByLayer {
///     type App = PoweredBy<A>;
///     fn layer(&self, inner: A) -> PoweredBy<A> { PoweredBy { inner } }
/// }
///
/// async fn hello(_: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
///     send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new())).await?;
///     send.send(SendEvent::response_body("hi", false)).await?;
///     Ok(())
/// }
///
/// let app = hello.with(PoweredByLayer);
/// # fn assert_app(_: impl App) {}
/// # assert_app(app);
/// ```
pub trait Layer<A: App> {
    /// The wrapped app.
    type App: App;

    /// Wraps `inner`.
    fn layer(&self, inner: A) -> Self::App;
}

/// A layer from an async function: the smallest middleware.
///
/// `f(scope, receive, send, next)` runs for every connection; call
/// [`next.call(scope, receive, send)`](Next::call) to run the inner app, or answer without it.
/// Nothing is buffered and no task is spawned: what `f` does is all that happens.
///
/// # Example
///
/// ```
/// use asgi_core::{from_fn, App, AppExt, Error, Next, Receiver, Scope, Sender};
///
/// async fn app(_: Scope, _: Receiver, _: Sender) -> Result<(), Error> { Ok(()) }
///
/// let logged = app.with(from_fn(|scope: Scope, receive, send, next: Next| async move {
///     let path = scope.path().map(str::to_owned);
///     let result = next.call(scope, receive, send).await;
///     println!("{path:?} -> {}", if result.is_ok() { "ok" } else { "error" });
///     result
/// }));
/// # fn assert_app(_: impl App) {}
/// # assert_app(logged);
/// ```
pub fn from_fn<F, Fut>(f: F) -> FromFnLayer<F>
where
    F: Fn(Scope, Receiver, Sender, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
{
    FromFnLayer { f: Arc::new(f) }
}

/// The layer made by [`from_fn`].
pub struct FromFnLayer<F> {
    f: Arc<F>,
}

impl<F> Clone for FromFnLayer<F> {
    fn clone(&self) -> Self {
        FromFnLayer { f: self.f.clone() }
    }
}

impl<F> fmt::Debug for FromFnLayer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromFnLayer").finish_non_exhaustive()
    }
}

impl<A, F, Fut> Layer<A> for FromFnLayer<F>
where
    A: App,
    F: Fn(Scope, Receiver, Sender, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
{
    type App = FromFn<F>;

    fn layer(&self, inner: A) -> FromFn<F> {
        FromFn {
            f: self.f.clone(),
            inner: Arc::new(inner),
        }
    }
}

/// The middleware app made by [`from_fn`].
pub struct FromFn<F> {
    f: Arc<F>,
    inner: Arc<dyn App>,
}

impl<F> fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromFn").finish_non_exhaustive()
    }
}

#[async_trait]
impl<F, Fut> App for FromFn<F>
where
    F: Fn(Scope, Receiver, Sender, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
{
    async fn call(&self, scope: Scope, receive: Receiver, send: Sender) -> Result<(), Error> {
        let next = Next {
            inner: self.inner.clone(),
        };
        (self.f)(scope, receive, send, next).await
    }
}

/// The rest of the stack, for a [`from_fn`] middleware to call.
#[derive(Clone)]
pub struct Next {
    inner: Arc<dyn App>,
}

impl Next {
    /// Runs the inner app.
    pub async fn call(self, scope: Scope, receive: Receiver, send: Sender) -> Result<(), Error> {
        self.inner.call(scope, receive, send).await
    }
}

impl fmt::Debug for Next {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Next").finish_non_exhaustive()
    }
}
