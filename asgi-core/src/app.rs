//! The [`App`] trait: what users implement and servers call.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Error;
use crate::handle::{Receiver, Sender};
use crate::layer::Layer;
use crate::scope::Scope;

/// An ASGI application: `await app(scope, receive, send)`.
///
/// A server calls it once per connection (an HTTP request, a WebSocket) and once for the
/// lifespan. The app reads events with [`Receiver::recv`] and answers with [`Sender::send`];
/// when `call` returns, the connection is done.
///
/// Implemented for:
/// - any `Fn(Scope, Receiver, Sender) -> impl Future<Output = Result<(), Error>>` (an `async
///   fn` with that signature is an app, like the Python one);
/// - `Arc<A>` for any app `A`, and [`DynApp`] (`Box<dyn App>`), so stacks can be type-erased.
///
/// # Example
///
/// ```
/// use asgi_core::{App, Error, ReceiveEvent, Receiver, Scope, SendEvent, Sender};
/// use http::{HeaderMap, StatusCode};
///
/// async fn hello(scope: Scope, _receive: Receiver, mut send: Sender) -> Result<(), Error> {
///     match scope {
///         Scope::Http(_) => {
///             send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new())).await?;
///             send.send(SendEvent::response_body("Hello, world!", false)).await?;
///             Ok(())
///         }
///         // Returning from the lifespan scope means "no lifespan support".
///         _ => Ok(()),
///     }
/// }
///
/// fn assert_app(_: impl App) {}
/// assert_app(hello);
/// ```
///
/// # Errors
///
/// An `Err` before `http.response.start` makes the server answer `500`; after it, the
/// server aborts the response so that the client can tell it is incomplete. A panic is
/// treated like an `Err`, and the server keeps serving. Returning
/// `Err` from [`Sender::send`]'s `Disconnected` (with `?`) is the normal way to stop when
/// the client left.
///
/// # Cancel safety
///
/// Servers do not drop a call while it works: an app learns of a client's disconnect from
/// `recv`, not by being cancelled mid-await. (This project's server polls an HTTP call in the
/// connection's task while the response goes out, and moves a call that outlives it to a
/// task of its own.)
#[async_trait]
pub trait App: Send + Sync + 'static {
    /// Handles one connection (or the lifespan).
    async fn call(&self, scope: Scope, receive: Receiver, send: Sender) -> Result<(), Error>;

    /// [`call`](App::call) on an app held by an `Arc`, with a future that owns all it uses
    /// and borrows nothing, so that a server can keep it, move it or spawn it as it is.
    ///
    /// Servers call this; apps rarely need to think about it. The default runs `call` inside
    /// a future that holds the `Arc`: two futures, two allocations. An app whose call
    /// borrows nothing of `self` (request handlers, routers, function apps) implements
    /// [`OwnedApp`] instead, and its one future serves both methods.
    fn call_owned(
        self: Arc<Self>,
        scope: Scope,
        receive: Receiver,
        send: Sender,
    ) -> AppFuture<'static> {
        Box::pin(async move { self.call(scope, receive, send).await })
    }

    /// A service a host may run in place of this app for its HTTP requests, when the app is
    /// only an adapter over one; `None` (the default) for every other app.
    ///
    /// A host that knows the returned value's type may hand it each HTTP request as the host
    /// has it (its own request and body types), with no scope, `receive` or `send` in
    /// between, provided what the client and the service observe is what calling this app
    /// would give (save for cancellation: the host may drop the service's future when the
    /// client leaves, as a tower host does, where it runs an app's call to its end); a host
    /// that does not know the type ignores it and calls the app. WebSocket and lifespan
    /// scopes always go to [`call`](App::call).
    ///
    /// This project's server knows one such type, `asgi_http::server::DirectService`: the
    /// `asgi-tower` crate's `TowerApp` returns one, so that an axum router served at the root
    /// is called as under `axum::serve`.
    ///
    /// A middleware never forwards its inner app's service: its own work would be skipped.
    /// Pointer types (`Arc<A>`, [`DynApp`]) forward it, since they are the app itself.
    fn host_service(&self) -> Option<&(dyn Any + Send + Sync)> {
        None
    }
}

/// An app whose call makes a future that borrows nothing of the app: the other way to write
/// an [`App`], for apps that do their work before the future exists, or hand out another
/// app's future.
///
/// Every `OwnedApp` is an [`App`]: [`start`](OwnedApp::start) serves both
/// [`call`](App::call) and [`call_owned`](App::call_owned), so the server keeps the
/// returned future as it is, with no future of the app's around it. Request handlers, the
/// HTTP crate's `Router` and `Mount`, and function apps (any `Fn(Scope, Receiver, Sender)
/// -> impl Future`) are apps this way. A middleware that awaits its inner app inside its
/// own work is an ordinary [`App`] written with `async fn`.
///
/// # Example
///
/// A dispatcher that picks one of two apps and returns the picked app's future:
///
/// ```
/// use std::sync::Arc;
///
/// use asgi_core::app::{AppFuture, OwnedApp};
/// use asgi_core::{App, Receiver, Scope, Sender};
///
/// struct ByScheme {
///     secure: Arc<dyn App>,
///     plain: Arc<dyn App>,
/// }
///
/// impl OwnedApp for ByScheme {
///     fn start(&self, scope: Scope, receive: Receiver, send: Sender) -> AppFuture<'static> {
///         let secure = matches!(&scope, Scope::Http(http) if http.scheme == "https");
///         let app = if secure { &self.secure } else { &self.plain };
///         Arc::clone(app).call_owned(scope, receive, send)
///     }
/// }
///
/// fn assert_app(_: impl App) {}
/// assert_app(ByScheme {
///     secure: Arc::new(|_: Scope, _: Receiver, _: Sender| async { Ok(()) }),
///     plain: Arc::new(|_: Scope, _: Receiver, _: Sender| async { Ok(()) }),
/// });
/// ```
pub trait OwnedApp: Send + Sync + 'static {
    /// Handles one connection (or the lifespan), as [`App::call`] does, in a future that
    /// owns all it uses.
    fn start(&self, scope: Scope, receive: Receiver, send: Sender) -> AppFuture<'static>;

    /// [`App::host_service`] for this app; `None` by default.
    fn host_service(&self) -> Option<&(dyn Any + Send + Sync)> {
        None
    }
}

impl<T: OwnedApp> App for T {
    fn call<'life0, 'async_trait>(
        &'life0 self,
        scope: Scope,
        receive: Receiver,
        send: Sender,
    ) -> AppFuture<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.start(scope, receive, send)
    }

    fn call_owned(
        self: Arc<Self>,
        scope: Scope,
        receive: Receiver,
        send: Sender,
    ) -> AppFuture<'static> {
        self.start(scope, receive, send)
    }

    fn host_service(&self) -> Option<&(dyn Any + Send + Sync)> {
        OwnedApp::host_service(self)
    }
}

// The function's own future is boxed as it is. An `async fn` around it would hold the scope,
// receive and send a second time (it keeps its arguments for as long as it runs), and move
// them once more.
impl<F, Fut> OwnedApp for F
where
    F: Fn(Scope, Receiver, Sender) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
{
    fn start(&self, scope: Scope, receive: Receiver, send: Sender) -> AppFuture<'static> {
        Box::pin((self)(scope, receive, send))
    }
}

/// The future an [`App::call`] returns, as `async_trait` writes it.
pub type AppFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>>;

/// What a server calls to start an app call: [`App::call_owned`], with a panic in the call
/// itself (an app that works before it returns its future) made the future's outcome, an
/// [`Error::from_panic`], as a panic while the future runs is once the server catches it.
pub fn start_call<A: App + ?Sized>(
    app: Arc<A>,
    scope: Scope,
    receive: Receiver,
    send: Sender,
) -> AppFuture<'static> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        A::call_owned(app, scope, receive, send)
    }))
    .unwrap_or_else(|payload| Box::pin(std::future::ready(Err(Error::from_panic(payload)))))
}

/// What an app that serves no WebSockets answers a WebSocket scope with: `websocket.close`
/// before `websocket.accept`, which the server sends the client as a `403` refusal of the
/// handshake. A client that is already gone needs no answer, so that is `Ok` too.
pub async fn refuse_websocket(mut send: Sender) -> Result<(), Error> {
    let close = crate::event::SendEvent::WebSocketClose {
        code: crate::event::CLOSE_NORMAL,
        reason: String::new(),
    };
    match send.send(close).await {
        Err(e) if e.is_disconnected() => Ok(()),
        other => other.map_err(Error::from),
    }
}

// The pointer impls hand out the inner app's future as it is, instead of boxing it once more:
// one allocation and one move of the scope less per call, on every request of a type-erased
// stack.
impl<A: App + ?Sized> App for Arc<A> {
    fn call<'life0, 'async_trait>(
        &'life0 self,
        scope: Scope,
        receive: Receiver,
        send: Sender,
    ) -> AppFuture<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        (**self).call(scope, receive, send)
    }

    fn call_owned(
        self: Arc<Self>,
        scope: Scope,
        receive: Receiver,
        send: Sender,
    ) -> AppFuture<'static> {
        A::call_owned(Arc::clone(&*self), scope, receive, send)
    }

    fn host_service(&self) -> Option<&(dyn Any + Send + Sync)> {
        (**self).host_service()
    }
}

/// A type-erased app, for stacks whose types differ by configuration.
pub type DynApp = Box<dyn App>;

impl App for Box<dyn App> {
    fn call<'life0, 'async_trait>(
        &'life0 self,
        scope: Scope,
        receive: Receiver,
        send: Sender,
    ) -> AppFuture<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        (**self).call(scope, receive, send)
    }

    fn host_service(&self) -> Option<&(dyn Any + Send + Sync)> {
        (**self).host_service()
    }
}

/// Methods for every [`App`]: wrap it in a layer, erase its type.
pub trait AppExt: App + Sized {
    /// Wraps this app in `layer`: the layer's app sees every connection first and calls this
    /// one inside. `app.with(a).with(b)` makes `b` the outermost layer; see
    /// [`Layer`] for the onion diagram.
    fn with<L: Layer<Self>>(self, layer: L) -> L::App {
        layer.layer(self)
    }

    /// Boxes this app as a [`DynApp`].
    fn boxed(self) -> DynApp {
        Box::new(self)
    }
}

impl<A: App> AppExt for A {}

#[cfg(test)]
mod tests {
    use super::*;

    /// An adapter whose host service is a number, for a host that knows numbers.
    struct Adapter;

    impl OwnedApp for Adapter {
        fn start(&self, _: Scope, _: Receiver, _: Sender) -> AppFuture<'static> {
            Box::pin(std::future::ready(Ok(())))
        }

        fn host_service(&self) -> Option<&(dyn Any + Send + Sync)> {
            Some(&7_u32)
        }
    }

    /// A middleware that does not forward the host service.
    struct Layered<A>(A);

    #[async_trait]
    impl<A: App> App for Layered<A> {
        async fn call(&self, scope: Scope, receive: Receiver, send: Sender) -> Result<(), Error> {
            self.0.call(scope, receive, send).await
        }
    }

    fn number(app: &dyn App) -> Option<u32> {
        app.host_service()?.downcast_ref::<u32>().copied()
    }

    #[test]
    fn host_service_is_none_by_default_and_the_adapters_own_through_pointers() {
        let plain = |_: Scope, _: Receiver, _: Sender| async { Ok(()) };
        assert_eq!(number(&plain), None);
        assert_eq!(number(&Adapter), Some(7));
        let shared: Arc<dyn App> = Arc::new(Adapter);
        assert_eq!(number(&shared), Some(7));
        assert_eq!(number(&Adapter.boxed()), Some(7));
        // A middleware hides it: its own work must not be skipped.
        assert_eq!(number(&Layered(Adapter)), None);
    }
}
