//! [`TrustedHost`]: only requests for known host names reach the app (Starlette's
//! `TrustedHostMiddleware`), against Host-header attacks.
//!
//! The `Host` header (without its port) must equal an allowed name, or end with the suffix
//! of a `*.example.com` pattern (which matches `api.example.com`, not `example.com`);
//! `"*"` allows every host. Otherwise:
//!
//! - with [`www_redirect`](TrustedHostLayer::www_redirect) on (the default, as in
//!   Starlette) and `www.` + the host allowed, an HTTP request is redirected there with
//!   `307`;
//! - an HTTP request gets `400 Invalid host header`;
//! - a WebSocket gets a `400` denial response, or `websocket.close` (a `403`) when the server
//!   cannot send one.
//!
//! A request without a `Host` header counts as a wrong host. The lifespan passes through.
//!
//! # Example
//!
//! ```
//! use asgi_core::AppExt;
//! use asgi_http::middleware::trusted_host::TrustedHostLayer;
//! # async fn app(_: asgi_core::Scope, _: asgi_core::Receiver, _: asgi_core::Sender)
//! #     -> Result<(), asgi_core::Error> { Ok(()) }
//!
//! let app = app.with(TrustedHostLayer::new(["example.com", "*.example.com", "localhost"]));
//! # fn assert_app(_: impl asgi_core::App) {}
//! # assert_app(app);
//! ```

use std::fmt;
use std::sync::Arc;

use asgi_core::http::{HeaderMap, HeaderValue, StatusCode, header};
use asgi_core::{App, Error, Layer, Receiver, Scope, Sender, async_trait};

/// The settings of a [`TrustedHost`] middleware, and its layer.
#[derive(Debug, Clone)]
pub struct TrustedHostLayer {
    config: Arc<Config>,
}

#[derive(Debug, Clone)]
struct Config {
    hosts: Vec<String>,
    any: bool,
    www_redirect: bool,
}

impl TrustedHostLayer {
    /// Allows these host names (case-insensitive), `*.suffix` patterns, or `"*"` for all.
    pub fn new<I, S>(hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let hosts: Vec<String> = hosts
            .into_iter()
            .map(|h| h.into().to_ascii_lowercase())
            .collect();
        TrustedHostLayer {
            config: Arc::new(Config {
                any: hosts.iter().any(|h| h == "*"),
                hosts,
                www_redirect: true,
            }),
        }
    }

    /// Redirects `example.com` to `www.example.com` when only the latter is allowed.
    /// Default `true`, as in Starlette.
    pub fn www_redirect(mut self, on: bool) -> Self {
        Arc::make_mut(&mut self.config).www_redirect = on;
        self
    }
}

impl Config {
    fn allows(&self, host: &str) -> bool {
        self.any
            || self
                .hosts
                .iter()
                .any(|pattern| match pattern.strip_prefix('*') {
                    Some(suffix) => suffix.starts_with('.') && host.ends_with(suffix),
                    None => pattern == host,
                })
    }
}

impl<A: App> Layer<A> for TrustedHostLayer {
    type App = TrustedHost<A>;

    fn layer(&self, inner: A) -> TrustedHost<A> {
        TrustedHost {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The trusted-host middleware; see the [module docs](self).
pub struct TrustedHost<A> {
    inner: A,
    config: Arc<Config>,
}

impl<A> fmt::Debug for TrustedHost<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedHost")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<A: App> TrustedHost<A> {
    /// Wraps `inner` with the settings of `layer`.
    pub fn new(inner: A, layer: &TrustedHostLayer) -> Self {
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
impl<A: App> App for TrustedHost<A> {
    async fn call(&self, scope: Scope, receive: Receiver, mut send: Sender) -> Result<(), Error> {
        let Some(headers) = scope.headers() else {
            return self.inner.call(scope, receive, send).await;
        };
        if self.config.any {
            return self.inner.call(scope, receive, send).await;
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| super::host_without_port(h).to_ascii_lowercase());
        let Some(host) = host else {
            return super::reject(
                &scope,
                &mut send,
                StatusCode::BAD_REQUEST,
                HeaderMap::new(),
                "Invalid host header",
            )
            .await;
        };
        if self.config.allows(&host) {
            return self.inner.call(scope, receive, send).await;
        }
        if let (true, Scope::Http(http)) = (self.config.www_redirect, &scope) {
            let www = format!("www.{host}");
            if self.config.allows(&www) {
                let authority = headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or(&host);
                let mut location = format!(
                    "{}://www.{}{}",
                    http.scheme,
                    authority.to_ascii_lowercase(),
                    String::from_utf8_lossy(&http.raw_path)
                );
                if !http.query_string.is_empty() {
                    location.push('?');
                    location.push_str(&String::from_utf8_lossy(&http.query_string));
                }
                if let Ok(value) = HeaderValue::from_str(&location) {
                    let mut headers = HeaderMap::new();
                    headers.insert(header::LOCATION, value);
                    return super::reject(
                        &scope,
                        &mut send,
                        StatusCode::TEMPORARY_REDIRECT,
                        headers,
                        "",
                    )
                    .await;
                }
            }
        }
        super::reject(
            &scope,
            &mut send,
            StatusCode::BAD_REQUEST,
            HeaderMap::new(),
            "Invalid host header",
        )
        .await
    }
}
