//! The WebSocket protocol for ASGI apps: the event pump between a WebSocket stream and an
//! [`App`](asgi_core::App), the handshake rules, and the `WebSocket` helper for app authors.
//!
//! # Layout
//!
//! This crate is being built; the pump and helpers land here.
