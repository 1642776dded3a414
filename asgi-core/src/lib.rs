//! The ASGI interface for Rust: `scope`, `receive`, `send` and the [`App`] trait.
//!
//! This is the crate that apps and middleware depend on. It holds the interface only: no
//! server, no sockets, no hyper. A connection is described by a [`Scope`]; events flow from
//! the server to the app through a [`Receiver`] and back through a [`Sender`]; an [`App`] is
//! `async fn call(scope, receive, send)`; middleware is an app that wraps an app ([`Layer`],
//! [`from_fn`]).
//!
//! ```
//! use asgi_core::{Error, Receiver, Scope, SendEvent, Sender};
//! use http::{HeaderMap, StatusCode};
//!
//! // The smallest app, as in Python: `async def app(scope, receive, send)`.
//! async fn app(scope: Scope, _receive: Receiver, mut send: Sender) -> Result<(), Error> {
//!     if let Scope::Http(_) = scope {
//!         send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new())).await?;
//!         send.send(SendEvent::response_body("Hello, world!", false)).await?;
//!     }
//!     Ok(())
//! }
//! ```
//!
//! # Layout
//!
//! - [`scope`]: [`Scope`] and its protocol scopes [`HttpScope`], [`WebSocketScope`],
//!   [`LifespanScope`], with the ASGI HTTP 2.5 / WebSocket 2.5 / lifespan 2.0 keys.
//! - [`event`]: [`ReceiveEvent`] and [`SendEvent`], one variant per ASGI message type.
//! - [`handle`]: [`Receiver`] and [`Sender`], and the one-method traits [`EventSource`] and
//!   [`EventSink`] that servers and middleware implement.
//! - [`app`]: the [`App`] trait and its impls for closures, `Arc` and [`DynApp`].
//! - [`layer`]: [`Layer`], [`from_fn`] and [`Next`]: middleware as onion layers.
//! - [`protocol`]: [`SendProtocol`](protocol::SendProtocol), the order of events an app may
//!   send, shared by every server.
//! - [`error`]: [`Error`], [`SendError`], [`ProtocolError`].
//! - [`state`]: [`LifespanState`] (filled at startup) and [`State`] (frozen, shared).
//! - [`extensions`]: supported ASGI extensions and middleware's typed data.
//! - [`shutdown`]: the scope's [`ShutdownSignal`], to await.
//! - `host` (feature `host`, off by default): the tools of whatever runs an app, not of the
//!   app: event channels (`host::channel`), the lifespan runner (`host::lifespan`), the
//!   trigger of the shutdown signal (`host::Shutdown`) and the in-process test harness
//!   (`host::testing`). They need a tokio runtime; the interface above needs none.
//! - [`guide`]: "Writing middleware", a guide with a response- and a request-rewriting
//!   middleware.
//!
//! # Features
//!
//! - `host`: the `host` module above. Servers, test clients and tests turn it on;
//!   apps and middleware do not need it.
//!
//! # The serde form
//!
//! [`Scope`], [`ReceiveEvent`] and [`SendEvent`] serialize to, and deserialize from, exactly
//! the ASGI dict form, e.g. `{"type": "http.response.body", "body": "...", "more_body":
//! false}`. Byte strings (bodies, `raw_path`, `query_string`, header names and values) are
//! strings with one char per byte (latin-1): lossless, and readable for ASCII. Deserializing
//! also accepts lists of integers. Headers are lists of `[name, value]` pairs in order. The
//! serde form is for logs, debugging and tests; nothing on the hot path serializes.

pub mod app;
pub mod error;
pub mod event;
pub mod extensions;
pub mod handle;
#[cfg(feature = "host")]
pub mod host;
pub mod layer;
pub mod protocol;
pub mod scope;
pub mod shutdown;
pub mod state;
mod wire;

pub mod guide {
    #![doc = include_str!("../docs/middleware.md")]
}

pub use app::{App, AppExt, DynApp, OwnedApp};
pub use error::{BoxError, Error, ProtocolError, SendError};
pub use event::{ReceiveEvent, SendEvent, WebSocketMessage};
pub use extensions::Extensions;
pub use handle::{EventSink, EventSource, Receiver, SendFuture, Sender};
pub use layer::{FromFn, FromFnLayer, Layer, Next, from_fn};
pub use scope::{
    AsgiVersion, HttpScope, HttpVersion, LifespanScope, Scope, ServerAddr, WebSocketScope,
};
pub use shutdown::ShutdownSignal;
pub use state::{LifespanState, State};

/// What most apps and middleware import: `use asgi_core::prelude::*;`.
pub mod prelude {
    pub use crate::{
        App, AppExt, Error, Layer, Next, ReceiveEvent, Receiver, Scope, SendError, SendEvent,
        Sender, WebSocketMessage, from_fn,
    };
}

/// Re-exported so that middleware authors implement [`App`] with the same macro.
pub use async_trait::async_trait;
/// Re-exported so that apps name the same `bytes` type the interface uses.
pub use bytes;
/// Re-exported so that apps name the same `http` types the interface uses.
pub use http;
