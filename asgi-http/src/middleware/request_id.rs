//! [`RequestId`]: an id for every request, in the scope and in the response (tower-http's
//! `SetRequestIdLayer` and `PropagateRequestIdLayer` in one).
//!
//! - A well-formed incoming `x-request-id` (1 to [`MAX_REQUEST_ID_LEN`] characters of
//!   `A-Z a-z 0-9 - _ . : + / = @`) is kept, so that an id set by a proxy or a calling
//!   service follows the request; anything else is replaced by a new random UUID (v4).
//! - The id is stored in the scope's typed extensions as [`RequestIdValue`] (read it with
//!   `scope.extensions()?.get::<RequestIdValue>()`), and the scope's `x-request-id` header
//!   is set to it, so the app sees one id whichever way it looks.
//! - It is added to the response headers (unless the app set its own), where the server's
//!   access log and the client find it.
//!
//! WebSocket scopes get an id in their extensions too; the lifespan passes through.
//!
//! # Example
//!
//! ```
//! use asgi_core::{AppExt, Error, Receiver, Scope, Sender};
//! use asgi_http::middleware::request_id::{RequestIdLayer, RequestIdValue};
//!
//! async fn app(scope: Scope, _: Receiver, _: Sender) -> Result<(), Error> {
//!     let id = scope.extensions().and_then(|e| e.get::<RequestIdValue>());
//!     tracing::info!(request_id = ?id.map(RequestIdValue::as_str), "working");
//!     Ok(())
//! }
//!
//! let app = app.with(RequestIdLayer::new());
//! # fn assert_app(_: impl asgi_core::App) {}
//! # assert_app(app);
//! ```

use std::fmt;

use asgi_core::http::header::HeaderName;
use asgi_core::http::{HeaderMap, HeaderValue};
use asgi_core::{App, Error, Layer, Receiver, Scope, SendEvent, Sender, async_trait};

/// The header that carries the id, unless [`RequestIdLayer::header`] names another.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest incoming id that is kept, in bytes.
///
/// 128: room for a UUID, a trace id with a span id, or a proxy's own format, and short
/// enough that a client cannot fill log lines with its header.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The request's id, in the scope's typed extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestIdValue(HeaderValue);

impl RequestIdValue {
    /// The id as text (always ASCII).
    pub fn as_str(&self) -> &str {
        // Infallible: ids are checked (or made) to be ASCII.
        self.0.to_str().unwrap_or_default()
    }

    /// The id as a header value.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

impl fmt::Display for RequestIdValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The settings of a [`RequestId`] middleware, and its layer.
#[derive(Debug, Clone)]
pub struct RequestIdLayer {
    header: HeaderName,
}

impl Default for RequestIdLayer {
    fn default() -> Self {
        RequestIdLayer::new()
    }
}

impl RequestIdLayer {
    /// Reads and writes [`X_REQUEST_ID`].
    pub fn new() -> Self {
        RequestIdLayer {
            header: X_REQUEST_ID,
        }
    }

    /// Reads and writes this header instead (e.g. `x-correlation-id`).
    pub fn header(mut self, header: HeaderName) -> Self {
        self.header = header;
        self
    }
}

impl<A: App> Layer<A> for RequestIdLayer {
    type App = RequestId<A>;

    fn layer(&self, inner: A) -> RequestId<A> {
        RequestId {
            inner,
            header: self.header.clone(),
        }
    }
}

/// The request-id middleware; see the [module docs](self).
pub struct RequestId<A> {
    inner: A,
    header: HeaderName,
}

impl<A> fmt::Debug for RequestId<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestId")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl<A: App> RequestId<A> {
    /// Wraps `inner` with the settings of `layer`.
    pub fn new(inner: A, layer: &RequestIdLayer) -> Self {
        layer.layer(inner)
    }

    /// The inner app.
    pub fn get_ref(&self) -> &A {
        &self.inner
    }

    /// Unwraps the inner app.
    pub fn into_inner(self) -> A {
        self.inner
    }
}

/// True for an id worth keeping: see the module docs.
fn well_formed(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:+/=@".contains(b))
}

fn new_id() -> HeaderValue {
    let mut buffer = uuid::Uuid::encode_buffer();
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
    // Infallible: a hyphenated UUID is ASCII.
    HeaderValue::from_str(text).expect("a UUID is a valid header value")
}

fn choose(headers: &mut HeaderMap, name: &HeaderName) -> HeaderValue {
    let incoming = headers.get(name).filter(|v| well_formed(v)).cloned();
    let id = incoming.unwrap_or_else(new_id);
    headers.insert(name.clone(), id.clone());
    id
}

#[async_trait]
impl<A: App> App for RequestId<A> {
    async fn call(&self, mut scope: Scope, receive: Receiver, send: Sender) -> Result<(), Error> {
        let id = match &mut scope {
            Scope::Http(http) => choose(&mut http.headers, &self.header),
            Scope::WebSocket(ws) => {
                let id = choose(&mut ws.headers, &self.header);
                ws.extensions.insert(RequestIdValue(id));
                return self.inner.call(scope, receive, send).await;
            }
            _ => return self.inner.call(scope, receive, send).await,
        };
        if let Some(extensions) = scope.extensions_mut() {
            extensions.insert(RequestIdValue(id.clone()));
        }
        let name = self.header.clone();
        let send = send.map(move |mut event| {
            if let SendEvent::HttpResponseStart { headers, .. } = &mut event {
                if !headers.contains_key(&name) {
                    headers.insert(name.clone(), id.clone());
                }
            }
            event
        });
        self.inner.call(scope, receive, send).await
    }
}
