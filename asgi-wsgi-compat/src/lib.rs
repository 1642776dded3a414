//! The synchronous interface of PEP 3333 (WSGI) for Rust, and the adapters that run blocking
//! handlers next to async ASGI apps without stalling the runtime.
//!
//! Many handlers block: a synchronous database driver, a CPU-heavy render, legacy code. This
//! crate gives them PEP 3333's shape, `application(environ, start_response)`, as Rust types
//! ([`WsgiApp`], [`Environ`], [`StartResponse`], [`Body`]), and runs them as an ASGI
//! [`App`](asgi_core::App) with [`WsgiToAsgi`]: on a pool of threads of its own, under a
//! bounded number of threads, with the request and the response streaming through bounded channels,
//! the rules of PEP 3333 applied, and the body's cleanup run on every path.
//!
//! ```
//! use asgi_wsgi_compat::{Body, BoxError, Environ, StartResponse, WsgiToAsgi};
//!
//! fn app(environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
//!     // Blocking is fine here: this runs on a thread of its own.
//!     let greeting = format!("Hello, {}!\n", environ.path_info());
//!     start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
//!     Ok(Body::from(greeting))
//! }
//!
//! // An asgi_core::App, to serve or to mount beside async apps.
//! let app = WsgiToAsgi::new(app);
//! ```
//!
//! Compared with Python's `asgiref.wsgi.WsgiToAsgi`, which buffers the whole request body,
//! runs every app on one thread, never calls `close()` and has no `write()`: the body streams
//! both ways, calls run on up to [`WsgiToAsgi::max_threads`] threads, `close()` is `Drop`, and
//! `write()` is there.
//!
//! # Layout
//!
//! - [`app`]: the [`WsgiApp`] trait, implemented for `fn`s and closures.
//! - [`environ`]: [`Environ`], the CGI variables and `wsgi.*` entries, and its mapping from
//!   an ASGI scope.
//! - [`wsgi_str`]: [`WsgiStr`], environ values that keep every byte.
//! - [`stream`]: `wsgi.input` ([`Input`]) and `wsgi.errors` ([`Errors`]).
//! - [`response`]: [`StartResponse`], the `write` callable [`Writer`], [`Status`], and the
//!   rules of PEP 3333 for a response.
//! - [`body`]: [`Body`], the response iterator and its `close()`.
//! - [`error`]: [`WsgiError`], one variant per rule.
//! - [`to_asgi`]: [`WsgiToAsgi`], a `WsgiApp` as an ASGI app on its thread pool.
//! - `pool`: the persistent threads that run WSGI calls.
//! - [`to_wsgi`]: [`AsgiToWsgi`], an ASGI app behind the `WsgiApp` interface.
//! - [`validate`]: [`Validator`], PEP 3333 checks for both sides, like `wsgiref.validate`.
//! - [`testbed`]: PEP 3333's [`simple_app`](testbed::simple_app) and a
//!   [`testbed`](testbed::testbed) app that exercises the whole interface.
//!
//! # Cancel safety
//!
//! A server may drop [`WsgiToAsgi`]'s `call` future (a connection torn down): the app's
//! thread cannot be stopped, so it runs on, its reads and writes fail as for a disconnected
//! client, and its thread slot is freed when it returns. A call dropped while it waits in
//! the pool's queue for a thread never runs.

pub mod app;
pub mod body;
pub mod environ;
pub mod error;
mod handler;
mod pool;
pub mod response;
pub mod stream;
pub mod testbed;
pub mod to_asgi;
pub mod to_wsgi;
pub mod validate;
pub mod wsgi_str;

pub use app::WsgiApp;
pub use asgi_core::BoxError;
pub use body::{Body, Chunk};
pub use environ::{Environ, Value};
pub use error::WsgiError;
pub use response::{ExcInfo, StartResponse, Status, Writer};
pub use stream::{Errors, Input};
pub use to_asgi::WsgiToAsgi;
pub use to_wsgi::AsgiToWsgi;
pub use validate::{ValidationError, Validator};
pub use wsgi_str::WsgiStr;
