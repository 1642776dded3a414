//! Middleware for HTTP and WebSocket apps: each one an [`App`](asgi_core::App) that wraps an
//! app, with its layer, in a module of its own.
//!
//! - [`proxy_headers`]: [`ProxyHeaders`](proxy_headers::ProxyHeaders), the client address and
//!   scheme forwarded by a trusted reverse proxy.

pub mod proxy_headers;
