//! The synchronous interface (PEP 3333) for blocking handlers: `Environ`, `StartResponse`,
//! `WsgiApp`, and the adapters that run them as ASGI [`App`](asgi_core::App)s.
//!
//! # Layout
//!
//! This crate is being built; the interface and adapters land here.
