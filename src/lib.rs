//! ASGI for Rust: one app shape for HTTP, WebSocket and lifespan, middleware as onion layers,
//! sync and async handlers side by side, and a production server built on hyper.
//!
//! This facade re-exports the project's crates so that an application depends on one crate:
//!
//! # Layout
//!
//! - [`core`] (`asgi-core`): the interface: [`Scope`](core::Scope), events,
//!   [`Receiver`](core::Receiver) / [`Sender`](core::Sender), [`App`](core::App),
//!   [`Layer`](core::Layer). Middleware authors depend on it alone. Its host tools (the
//!   in-process test harness [`core::host::testing`], the lifespan runner, the shutdown
//!   trigger) are on here, since the server uses them.
//! - [`server`] (`asgi-http`): the HTTP/1.1 + HTTP/2 server, and the helpers for app
//!   authors (`Request`, `Response`, `Router`, `Mount`, `TestClient`). (`asgi::http` was
//!   its old name, easy to mistake for the `http` crate, which is [`core::http`]; it is kept
//!   as a deprecated alias.)
//! - [`ws`] (`asgi-ws`): the WebSocket protocol.
//! - [`wsgi`] (`asgi-wsgi-compat`): the synchronous `environ` / `start_response` interface.
//! - [`tower`] (`asgi-tower`): tower interop both ways: an axum router or tower-http stack as
//!   an app, an app as a tower service.
//! - [`channels`] (`asgi-channels`, with its `redis` feature): channel layers, so that
//!   connections in one process or many share groups (a chat room across servers).
//! - [`prelude`]: what most applications import.

pub use asgi_channels as channels;
pub use asgi_core as core;
pub use asgi_http as server;
pub use asgi_tower as tower;
pub use asgi_ws as ws;
pub use asgi_wsgi_compat as wsgi;

/// The old name of [`server`] (`asgi-http`), kept so that existing code builds.
#[deprecated(
    since = "0.1.0",
    note = "renamed to `asgi::server`: `asgi::http` was easy to mistake for the `http` crate (`asgi::core::http`)"
)]
pub mod http {
    pub use asgi_http::*;
}

/// What most applications import: `use asgi::prelude::*;`.
///
/// The interface ([`App`](crate::core::App), [`Scope`](crate::core::Scope), the handles and
/// events, [`Error`](crate::core::Error), layers), the `http` types every handler names
/// ([`StatusCode`](crate::core::http::StatusCode), [`HeaderMap`](crate::core::http::HeaderMap),
/// [`HeaderValue`](crate::core::http::HeaderValue), [`Method`](crate::core::http::Method)),
/// and the helpers [`Request`](crate::server::request::Request),
/// [`Response`](crate::server::response::Response),
/// [`Router`](crate::server::router::Router), and the request handlers'
/// [`handler`](crate::server::handler::handler), [`HttpError`](crate::server::handler::HttpError)
/// and [`IntoResponse`](crate::server::handler::IntoResponse).
///
/// ```
/// use asgi::prelude::*;
///
/// // The raw form: the scope and both handles.
/// async fn hello(scope: Scope, receive: Receiver, mut send: Sender) -> Result<(), Error> {
///     let request = Request::from_scope(scope, receive)?;
///     let status = if request.method() == Method::HEAD { StatusCode::NO_CONTENT } else { StatusCode::OK };
///     Response::text("hello").status(status).send(&mut send).await
/// }
///
/// // The handler form: a `Request` in, a `Response` (or an `HttpError`) out.
/// async fn user(request: Request) -> Result<Response, HttpError> {
///     let id: u64 = request.param_as("id")?;
///     Ok(Response::text(format!("user {id}")))
/// }
///
/// let app = Router::new()
///     .route("/", asgi::server::router::get(hello))
///     .route("/users/{id}", asgi::server::router::get(user));
/// # fn assert_app(_: impl App) {}
/// # assert_app(app);
/// # assert_app(handler(user));
/// ```
pub mod prelude {
    pub use asgi_core::http::{HeaderMap, HeaderValue, Method, StatusCode};
    pub use asgi_core::prelude::*;
    pub use asgi_http::handler::{HttpError, IntoResponse, handler};
    pub use asgi_http::request::Request;
    pub use asgi_http::response::Response;
    pub use asgi_http::router::Router;
}
