//! The HTTP protocol for ASGI apps: a hyper-based server for any [`App`](asgi_core::App), and
//! helpers for app authors (requests, responses, routing, mounting, a test client).
//!
//! # Layout
//!
//! - [`path`]: request targets split into the scope's `path`, `raw_path` and `query_string`.
//! - [`handler`]: request handlers, `async fn(Request) -> Result<Response, HttpError>`, as
//!   apps and routes; [`IntoResponse`](handler::IntoResponse) turns their errors into answers.
//! - [`scope`]: the HTTP and WebSocket scopes of a request, from its head: the one scope
//!   builder of the server and of other hosts (`asgi-tower`'s `AsgiService`).
//! - [`request`]: [`Request`](request::Request), a view over an HTTP scope and its receiver:
//!   query, headers, path parameters, state, and the body with a size limit or in chunks.
//! - [`response`]: [`Response`](response::Response) builders (text, HTML, JSON, redirects,
//!   streams, files) that send themselves through a `Sender`.
//! - [`router`]: [`Router`](router::Router), routing by path ([`matchit`]) and method, with
//!   path parameters, `404`, `405` with `Allow`, and WebSocket routes.
//! - [`mount`]: [`Mount`](mount::Mount), apps under path prefixes with `root_path` extended
//!   and `path` kept whole.
//! - [`file`](mod@file): [`FileChunks`](file::FileChunks), the one file reader of `pathsend` and file
//!   responses.
//! - [`test_client`]: [`TestClient`](test_client::TestClient), calling an app in-process for
//!   requests, streamed responses, WebSockets and lifespan.
//! - [`middleware`]: middleware for HTTP and WebSocket apps ([`ProxyHeaders`](middleware::proxy_headers::ProxyHeaders)).
//! - [`server`]: the HTTP/1.1 + HTTP/2 server ([`serve`], [`Server`]).
//! - `logging` (feature `logging`, on by default): `logging::init()`, the one-call log setup
//!   of the examples, with the access log written off the request path.

pub mod file;
pub mod handler;
mod lifespan;
#[cfg(feature = "logging")]
pub mod logging;
pub mod middleware;
pub mod mount;
pub mod path;
pub mod request;
pub mod response;
pub mod router;
pub mod scope;
pub mod server;
pub mod test_client;

pub use server::{Server, ServerError, ServerHandle, serve};
