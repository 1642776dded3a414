//! ASGI for Rust: one app shape for HTTP, WebSocket and lifespan, middleware as onion layers,
//! sync and async handlers side by side, and a production server built on hyper.
//!
//! This facade re-exports the project's crates so that an application depends on one crate:
//!
//! # Layout
//!
//! - [`core`] (`asgi-core`): the interface: [`Scope`](core::Scope), events,
//!   [`Receiver`](core::Receiver) / [`Sender`](core::Sender), [`App`](core::App),
//!   [`Layer`](core::Layer). Middleware authors depend on it alone.
//! - [`http`] (`asgi-http`): the HTTP server and the helpers for app authors.
//! - [`ws`] (`asgi-ws`): the WebSocket protocol.
//! - [`wsgi`] (`asgi-wsgi-compat`): the synchronous `environ` / `start_response` interface.
//! - [`tower`] (`asgi-tower`): tower interop both ways: an axum router or tower-http stack as
//!   an app, an app as a tower service.
//! - [`prelude`]: what most applications import.

pub use asgi_core as core;
pub use asgi_http as http;
pub use asgi_tower as tower;
pub use asgi_ws as ws;
pub use asgi_wsgi_compat as wsgi;

/// What most applications import: `use asgi::prelude::*;`.
pub mod prelude {
    pub use asgi_core::prelude::*;
}
