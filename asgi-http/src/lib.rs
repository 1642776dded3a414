//! The HTTP protocol for ASGI apps: a hyper-based server for any [`App`](asgi_core::App), and
//! helpers for app authors (requests, responses, routing, mounting, a test client).
//!
//! # Layout
//!
//! This crate is being built; the server and helpers land here.
