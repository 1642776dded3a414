//! The HTTP protocol for ASGI apps: a hyper-based server for any [`App`](asgi_core::App), and
//! helpers for app authors (requests, responses, routing, mounting, a test client).
//!
//! # Layout
//!
//! - [`path`]: request targets split into the scope's `path`, `raw_path` and `query_string`.
//! - [`server`]: the HTTP/1.1 + HTTP/2 server ([`serve`], [`Server`]).

pub mod path;
pub mod server;

pub use server::{Server, ServerError, ServerHandle, serve};
