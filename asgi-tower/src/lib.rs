//! Tower interop both ways: a tower [`Service`](tower_service::Service) (an axum `Router`, a
//! tower-http stack, a hyper service) as an ASGI [`App`](asgi_core::App), and an ASGI app as
//! a tower service that axum can nest.
//!
//! Rust web developers live in the tower ecosystem; Python's ASGI let Django, Starlette and a
//! WSGI app share one server. This crate gives Rust the same: an axum router mounted under an
//! ASGI [`Mount`](asgi_http::mount::Mount) beside ASGI and WSGI apps, served by this
//! project's server; or ASGI apps nested in an axum router served by `axum::serve`.
//!
//! ```no_run
//! use asgi_core::{Error, Receiver, Scope, SendEvent, Sender};
//! use asgi_http::mount::Mount;
//! use asgi_tower::{AsgiService, TowerApp};
//! use http::{HeaderMap, StatusCode};
//!
//! async fn hello(scope: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
//!     if let Scope::Http(_) = scope {
//!         send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new())).await?;
//!         send.send(SendEvent::response_body("Hello from ASGI", false)).await?;
//!     }
//!     Ok(())
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // An axum router as an ASGI app, under this project's server:
//! let router = axum::Router::new().route("/hello", axum::routing::get(|| async { "Hello from axum" }));
//! let app = Mount::new().mount("/axum", TowerApp::new(router)).mount("/asgi", hello);
//! asgi_http::serve(app, "127.0.0.1:8000").await?;
//!
//! // An ASGI app in an axum router, under axum::serve:
//! let router = axum::Router::new().nest_service("/asgi", AsgiService::new(hello));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`tower_app`]: [`TowerApp`], a tower service as an ASGI app, and [`ReceiverBody`], the
//!   request body it hands the service.
//! - [`service`]: [`AsgiService`], an ASGI app as a tower service, its
//!   [`ResponseFuture`](service::ResponseFuture) and [`AppBody`], and the WebSocket hand-off
//!   to `asgi-ws`.
//!
//! # Features
//!
//! - `axum` (default): axum's request extensions: `ConnectInfo<SocketAddr>` for the client
//!   address (both ways), `OriginalUri` (both ways) and `NestedPath` (read by
//!   [`AsgiService`] for the scope's `root_path`).

pub mod service;
pub mod tower_app;

pub use service::{AppBody, AsgiService};
pub use tower_app::{ReceiverBody, ScopeInfo, TowerApp};
