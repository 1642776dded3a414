//! The [`WsgiApp`] trait: PEP 3333's `application(environ, start_response)`.

use std::sync::Arc;

use asgi_core::BoxError;

use crate::body::Body;
use crate::environ::Environ;
use crate::response::StartResponse;

/// A synchronous application: PEP 3333's `application(environ, start_response)`.
///
/// The host calls it on a thread where blocking is fine (a synchronous database driver, a
/// CPU-heavy render, legacy code). The app calls `start_response` with the status and
/// headers, may send data at once through the `write` callable that returns, and returns the
/// rest of the body as a [`Body`] iterator, which the host sends chunk by chunk and then
/// closes.
///
/// Implemented for every `Fn(Environ, StartResponse) -> Result<Body, BoxError>` (a plain
/// `fn` reads like the Python one), for `Arc<A>` and for `Box<dyn WsgiApp>`. Run it next to
/// async apps with [`WsgiToAsgi`](crate::WsgiToAsgi).
///
/// # Example
///
/// PEP 3333's `simple_app`:
///
/// ```
/// use asgi_wsgi_compat::{Body, BoxError, Environ, StartResponse, WsgiApp};
///
/// fn simple_app(_environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
///     start_response.call("200 OK", [("Content-type", "text/plain")], None)?;
///     Ok(Body::from("Hello world!\n"))
/// }
///
/// fn assert_app(_: impl WsgiApp) {}
/// assert_app(simple_app);
/// ```
///
/// A closure needs its return type written out, as Rust cannot infer the error type of `?`:
///
/// ```
/// use asgi_wsgi_compat::{Body, BoxError, Environ, StartResponse, WsgiToAsgi};
///
/// let greeting = String::from("Hi");
/// let app = WsgiToAsgi::new(move |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
///     start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
///     Ok(Body::from(greeting.clone()))
/// });
/// ```
///
/// # Errors
///
/// An `Err` (or a panic) before the headers went out makes the host answer
/// `500 Internal Server Error` and log the error; after, the host aborts the response so that
/// the client can tell it is incomplete. Errors that `start_response` and `write` return
/// ([`WsgiError`](crate::WsgiError), [`std::io::Error`]) are meant to be returned with `?`.
pub trait WsgiApp: Send + Sync + 'static {
    /// Handles one request.
    fn call(&self, environ: Environ, start_response: StartResponse) -> Result<Body, BoxError>;
}

impl<F> WsgiApp for F
where
    F: Fn(Environ, StartResponse) -> Result<Body, BoxError> + Send + Sync + 'static,
{
    fn call(&self, environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
        (self)(environ, start_response)
    }
}

impl<A: WsgiApp + ?Sized> WsgiApp for Arc<A> {
    fn call(&self, environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
        (**self).call(environ, start_response)
    }
}

impl WsgiApp for Box<dyn WsgiApp> {
    fn call(&self, environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
        (**self).call(environ, start_response)
    }
}
