//! [`HttpsRedirect`]: requests over `http` and `ws` are redirected to `https` and `wss`
//! (Starlette's `HTTPSRedirectMiddleware`).
//!
//! It reads the scope's `scheme`, so behind a TLS-terminating proxy put it inside the
//! proxy-headers middleware, which sets the scheme from `X-Forwarded-Proto` / `Forwarded`.
//! The redirect keeps the host (dropping the port when it is 80 or 443, as Starlette does),
//! the path and the query. It is `307 Temporary Redirect` by default, `308 Permanent Redirect`
//! with [`permanent`](HttpsRedirectLayer::permanent): both keep the method and the body.
//! A WebSocket gets the redirect as a denial response (or `websocket.close`, a `403`, when
//! the server cannot send one). The lifespan passes through.
//!
//! # Example
//!
//! ```
//! use asgi_core::AppExt;
//! use asgi_http::middleware::https_redirect::HttpsRedirectLayer;
//! # async fn app(_: asgi_core::Scope, _: asgi_core::Receiver, _: asgi_core::Sender)
//! #     -> Result<(), asgi_core::Error> { Ok(()) }
//!
//! let app = app.with(HttpsRedirectLayer::new().permanent(true));
//! # fn assert_app(_: impl asgi_core::App) {}
//! # assert_app(app);
//! ```

use std::fmt;

use asgi_core::http::{HeaderMap, HeaderValue, StatusCode, header};
use asgi_core::{App, Error, Layer, Receiver, Scope, Sender, async_trait};

/// The settings of an [`HttpsRedirect`] middleware, and its layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpsRedirectLayer {
    permanent: bool,
}

impl HttpsRedirectLayer {
    /// Redirects with `307`.
    pub fn new() -> Self {
        HttpsRedirectLayer { permanent: false }
    }

    /// Redirects with `308 Permanent Redirect` instead of `307`. Default `false`.
    pub fn permanent(mut self, permanent: bool) -> Self {
        self.permanent = permanent;
        self
    }
}

impl<A: App> Layer<A> for HttpsRedirectLayer {
    type App = HttpsRedirect<A>;

    fn layer(&self, inner: A) -> HttpsRedirect<A> {
        HttpsRedirect {
            inner,
            permanent: self.permanent,
        }
    }
}

/// The HTTPS-redirect middleware; see the [module docs](self).
pub struct HttpsRedirect<A> {
    inner: A,
    permanent: bool,
}

impl<A> fmt::Debug for HttpsRedirect<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpsRedirect")
            .field("permanent", &self.permanent)
            .finish_non_exhaustive()
    }
}

impl<A: App> HttpsRedirect<A> {
    /// Wraps `inner` with the settings of `layer`.
    pub fn new(inner: A, layer: &HttpsRedirectLayer) -> Self {
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

#[async_trait]
impl<A: App> App for HttpsRedirect<A> {
    async fn call(&self, scope: Scope, receive: Receiver, mut send: Sender) -> Result<(), Error> {
        let (secure, headers, raw_path, query) = match &scope {
            Scope::Http(h) if h.scheme == "http" => {
                ("https", &h.headers, &h.raw_path, &h.query_string)
            }
            Scope::WebSocket(w) if w.scheme == "ws" => {
                ("wss", &w.headers, &w.raw_path, &w.query_string)
            }
            _ => return self.inner.call(scope, receive, send).await,
        };
        let Some(authority) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return super::reject(
                &scope,
                &mut send,
                StatusCode::BAD_REQUEST,
                HeaderMap::new(),
                "Missing host header",
            )
            .await;
        };
        let host = super::host_without_port(authority);
        let netloc = match authority[host.len()..].strip_prefix(':') {
            Some(port) if port != "80" && port != "443" => authority,
            _ => host,
        };
        let mut location = format!("{secure}://{netloc}{}", String::from_utf8_lossy(raw_path));
        if !query.is_empty() {
            location.push('?');
            location.push_str(&String::from_utf8_lossy(query));
        }
        let Ok(value) = HeaderValue::from_str(&location) else {
            return super::reject(
                &scope,
                &mut send,
                StatusCode::BAD_REQUEST,
                HeaderMap::new(),
                "Invalid request target",
            )
            .await;
        };
        let mut headers = HeaderMap::new();
        headers.insert(header::LOCATION, value);
        let status = if self.permanent {
            StatusCode::PERMANENT_REDIRECT
        } else {
            StatusCode::TEMPORARY_REDIRECT
        };
        super::reject(&scope, &mut send, status, headers, "").await
    }
}
