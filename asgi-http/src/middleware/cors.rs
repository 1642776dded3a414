//! [`Cors`]: Cross-Origin Resource Sharing, with Starlette's `CORSMiddleware` semantics.
//!
//! - A request without `Origin` passes through untouched.
//! - A preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered here, without
//!   the app: `200 OK` when the origin, the method and every requested header are allowed,
//!   else `400` whose body names what was not (`Disallowed CORS origin, method`).
//! - Any other request with an `Origin` goes to the app, and its response gets the CORS
//!   headers: `Access-Control-Allow-Origin` (only for an allowed origin: a browser then
//!   blocks the page from reading the answer), `Access-Control-Allow-Credentials`,
//!   `Access-Control-Expose-Headers`.
//! - `Vary: Origin` is added whenever the answer depends on the origin.
//!
//! WebSocket and lifespan scopes pass through: browsers do not apply CORS to WebSockets
//! (check `Origin` in the app, or use [`TrustedHost`](super::trusted_host)).
//!
//! # Example
//!
//! ```
//! use asgi_core::AppExt;
//! use asgi_core::http::Method;
//! use asgi_http::middleware::cors::CorsLayer;
//! # async fn app(_: asgi_core::Scope, _: asgi_core::Receiver, _: asgi_core::Sender)
//! #     -> Result<(), asgi_core::Error> { Ok(()) }
//!
//! let app = app.with(
//!     CorsLayer::new()
//!         .allow_origins(["https://example.com"])
//!         .allow_methods([Method::GET, Method::POST])
//!         .allow_headers(["content-type"])
//!         .allow_credentials(true),
//! );
//! # fn assert_app(_: impl asgi_core::App) {}
//! # assert_app(app);
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use asgi_core::http::header::{self, HeaderName};
use asgi_core::http::{HeaderMap, HeaderValue, Method, StatusCode};
use asgi_core::{App, Error, Layer, Receiver, Scope, SendEvent, Sender, async_trait};
use regex::Regex;

/// How long a browser may cache a preflight answer, unless
/// [`CorsLayer::max_age`] says otherwise.
///
/// Default is 600 seconds, Starlette's: long enough to spare a preflight per request, short
/// enough that a changed policy reaches browsers within minutes. Pass `None` to
/// [`CorsLayer::max_age`] to send no `Access-Control-Max-Age`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);

/// The request headers a browser may always send (the CORS-safelisted ones); a preflight
/// asking for them is allowed whatever [`CorsLayer::allow_headers`] says, as in Starlette.
const SAFELISTED_HEADERS: [&str; 4] = [
    "accept",
    "accept-language",
    "content-language",
    "content-type",
];

#[derive(Debug, Clone)]
enum Origins {
    Any,
    Some {
        list: Vec<String>,
        regex: Option<Regex>,
    },
}

/// The settings of a [`Cors`] middleware, and its layer.
///
/// Defaults are Starlette's: no origin allowed, methods `GET` only, no extra request
/// headers, no credentials, nothing exposed, max-age [`DEFAULT_MAX_AGE`].
#[derive(Clone)]
pub struct CorsLayer {
    config: Arc<Config>,
}

#[derive(Debug, Clone)]
struct Config {
    origins: Origins,
    methods: Option<Vec<Method>>,
    headers: Option<Vec<String>>,
    credentials: bool,
    expose: Option<HeaderValue>,
    max_age: Option<Duration>,
}

impl fmt::Debug for CorsLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorsLayer")
            .field("config", &self.config)
            .finish()
    }
}

impl Default for CorsLayer {
    fn default() -> Self {
        CorsLayer::new()
    }
}

impl CorsLayer {
    /// The defaults (see the type's docs): allows nothing until told.
    pub fn new() -> Self {
        CorsLayer {
            config: Arc::new(Config {
                origins: Origins::Some {
                    list: Vec::new(),
                    regex: None,
                },
                methods: Some(vec![Method::GET]),
                headers: Some(Vec::new()),
                credentials: false,
                expose: None,
                max_age: Some(DEFAULT_MAX_AGE),
            }),
        }
    }

    fn config(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// Allows these origins (`scheme://host[:port]`, compared exactly), in addition to the
    /// ones allowed before. `"*"` among them allows any origin.
    pub fn allow_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for origin in origins {
            let origin = origin.into();
            let config = self.config();
            if origin == "*" {
                config.origins = Origins::Any;
            } else if let Origins::Some { list, .. } = &mut config.origins {
                list.push(origin);
            }
        }
        self
    }

    /// Allows any origin. With credentials allowed, the request's origin is echoed instead
    /// of `*` (browsers refuse `*` with credentials).
    pub fn allow_any_origin(self) -> Self {
        self.allow_origins(["*"])
    }

    /// Allows every origin that matches `pattern` as a whole (Starlette's
    /// `allow_origin_regex`, which is matched with `fullmatch`), e.g.
    /// `https://.*\.example\.com`.
    ///
    /// # Errors
    ///
    /// The regex error when `pattern` does not compile.
    pub fn allow_origin_regex(mut self, pattern: &str) -> Result<Self, regex::Error> {
        let regex = Regex::new(&format!("^(?:{pattern})$"))?;
        if let Origins::Some { regex: slot, .. } = &mut self.config().origins {
            *slot = Some(regex);
        }
        Ok(self)
    }

    /// The methods a preflight may ask for (replacing the default `GET`).
    pub fn allow_methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.config().methods = Some(methods.into_iter().collect());
        self
    }

    /// Allows any method in a preflight.
    pub fn allow_any_method(mut self) -> Self {
        self.config().methods = None;
        self
    }

    /// The request headers a preflight may ask for (case-insensitive), besides the
    /// CORS-safelisted ones.
    pub fn allow_headers<I, S>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config().headers = Some(
            headers
                .into_iter()
                .map(|h| h.into().to_ascii_lowercase())
                .collect(),
        );
        self
    }

    /// Allows any request header in a preflight (the requested ones are echoed).
    pub fn allow_any_header(mut self) -> Self {
        self.config().headers = None;
        self
    }

    /// Sends `Access-Control-Allow-Credentials: true`, so that pages may send cookies.
    /// Default is `false`.
    pub fn allow_credentials(mut self, allow: bool) -> Self {
        self.config().credentials = allow;
        self
    }

    /// Response headers that a page may read beyond the safelisted ones
    /// (`Access-Control-Expose-Headers`).
    ///
    /// # Panics
    ///
    /// When a name is not a valid header name.
    pub fn expose_headers<I, S>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let names: Vec<String> = headers
            .into_iter()
            .map(|h| {
                let name = h.as_ref();
                assert!(
                    HeaderName::from_bytes(name.as_bytes()).is_ok(),
                    "invalid header name {name:?}"
                );
                name.to_ascii_lowercase()
            })
            .collect();
        self.config().expose = if names.is_empty() {
            None
        } else {
            // Infallible: valid header names joined by ", " are a valid header value.
            Some(HeaderValue::from_str(&names.join(", ")).expect("header names are ASCII"))
        };
        self
    }

    /// How long browsers may cache a preflight answer (`Access-Control-Max-Age`). Default
    /// is [`DEFAULT_MAX_AGE`]; `None` sends no header.
    pub fn max_age(mut self, max_age: Option<Duration>) -> Self {
        self.config().max_age = max_age;
        self
    }
}

impl<A: App> Layer<A> for CorsLayer {
    type App = Cors<A>;

    fn layer(&self, inner: A) -> Cors<A> {
        Cors {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The CORS middleware; see the [module docs](self).
pub struct Cors<A> {
    inner: A,
    config: Arc<Config>,
}

impl<A> fmt::Debug for Cors<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cors")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<A: App> Cors<A> {
    /// Wraps `inner` with the settings of `layer`.
    pub fn new(inner: A, layer: &CorsLayer) -> Self {
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

impl Config {
    fn origin_allowed(&self, origin: &str) -> bool {
        match &self.origins {
            Origins::Any => true,
            Origins::Some { list, regex } => {
                list.iter().any(|o| o == origin)
                    || regex.as_ref().is_some_and(|r| r.is_match(origin))
            }
        }
    }

    /// True when the allowed origin is echoed (so the answer depends on it) rather than `*`.
    fn echoes_origin(&self) -> bool {
        !matches!(self.origins, Origins::Any) || self.credentials
    }

    fn preflight(
        &self,
        request: &HeaderMap,
        origin: &HeaderValue,
    ) -> (StatusCode, HeaderMap, String) {
        let mut headers = HeaderMap::new();
        let mut failures = Vec::new();
        let origin_ok = origin.to_str().is_ok_and(|o| self.origin_allowed(o));
        if origin_ok {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                if self.echoes_origin() {
                    origin.clone()
                } else {
                    HeaderValue::from_static("*")
                },
            );
        } else {
            failures.push("origin");
        }
        if self.echoes_origin() {
            headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        let method = request
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok());
        match (&self.methods, method) {
            (None, Some(m)) => {
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_str(m.as_str()).unwrap_or(HeaderValue::from_static("GET")),
                );
            }
            (Some(allowed), Some(m)) if allowed.contains(&m) => {
                let joined = allowed
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                if let Ok(value) = HeaderValue::from_str(&joined) {
                    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, value);
                }
            }
            _ => failures.push("method"),
        }
        let requested = request
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .map(|h| h.to_str().unwrap_or("\u{0}"));
        match (&self.headers, requested) {
            (None, Some(requested)) => {
                if let Ok(value) = HeaderValue::from_str(requested) {
                    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, value);
                } else {
                    failures.push("headers");
                }
            }
            (Some(allowed), requested) => {
                let ok = requested.is_none_or(|requested| {
                    requested
                        .split(',')
                        .map(|h| h.trim().to_ascii_lowercase())
                        .filter(|h| !h.is_empty())
                        .all(|h| SAFELISTED_HEADERS.contains(&h.as_str()) || allowed.contains(&h))
                });
                if !ok {
                    failures.push("headers");
                } else {
                    let mut all: Vec<&str> = SAFELISTED_HEADERS.to_vec();
                    all.extend(allowed.iter().map(String::as_str));
                    all.sort_unstable();
                    all.dedup();
                    if let Ok(value) = HeaderValue::from_str(&all.join(", ")) {
                        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, value);
                    }
                }
            }
            (None, None) => {}
        }
        if self.credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(max_age) = self.max_age {
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from(max_age.as_secs()),
            );
        }
        if failures.is_empty() {
            (StatusCode::OK, headers, "OK".to_owned())
        } else {
            (
                StatusCode::BAD_REQUEST,
                headers,
                format!("Disallowed CORS {}", failures.join(", ")),
            )
        }
    }

    fn simple_headers(&self, response: &mut HeaderMap, origin: &HeaderValue) {
        if self.echoes_origin() {
            super::add_vary(response, "Origin");
        }
        if !origin.to_str().is_ok_and(|o| self.origin_allowed(o)) {
            return;
        }
        response.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            if self.echoes_origin() {
                origin.clone()
            } else {
                HeaderValue::from_static("*")
            },
        );
        if self.credentials {
            response.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(expose) = &self.expose {
            response.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
        }
    }
}

#[async_trait]
impl<A: App> App for Cors<A> {
    async fn call(&self, scope: Scope, receive: Receiver, mut send: Sender) -> Result<(), Error> {
        let Scope::Http(http) = &scope else {
            return self.inner.call(scope, receive, send).await;
        };
        let Some(origin) = http.headers.get(header::ORIGIN).cloned() else {
            return self.inner.call(scope, receive, send).await;
        };
        if http.method == Method::OPTIONS
            && http
                .headers
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            let (status, mut headers, body) = self.config.preflight(&http.headers, &origin);
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            headers.insert(
                header::CONTENT_LENGTH,
                crate::response::content_length(body.len() as u64),
            );
            send.send(SendEvent::response_start(status, headers))
                .await?;
            send.send(SendEvent::response_body(body, false)).await?;
            return Ok(());
        }
        let config = self.config.clone();
        let send = send.map(move |mut event| {
            if let SendEvent::HttpResponseStart { headers, .. } = &mut event {
                config.simple_headers(headers, &origin);
            }
            event
        });
        self.inner.call(scope, receive, send).await
    }
}
