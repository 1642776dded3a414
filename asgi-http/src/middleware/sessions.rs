//! [`Sessions`]: signed-cookie sessions with Starlette's `SessionMiddleware` settings.
//!
//! The session is a map of JSON values kept in one cookie, signed with HMAC-SHA256 (the
//! `cookie` crate's signed jar) so that the client can read it but not change it: **do not
//! put secrets in it**. The app reads and writes it through the [`Session`] in the scope's
//! typed extensions:
//!
//! ```
//! use asgi_core::{AppExt, Error, Receiver, Scope, Sender};
//! use asgi_http::middleware::sessions::{Session, SessionLayer};
//! use asgi_http::response::Response;
//!
//! async fn app(scope: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
//!     let session = scope.extensions().and_then(|e| e.get::<Session>()).cloned();
//!     let Some(session) = session else { return Ok(()) };
//!     let visits = session.get::<u64>("visits").unwrap_or(0) + 1;
//!     session.insert("visits", visits);
//!     Response::text(format!("visit {visits}")).send(&mut send).await
//! }
//!
//! let app = app.with(SessionLayer::new(b"a secret key of at least thirty-two bytes"));
//! # fn assert_app(_: impl asgi_core::App) {}
//! # assert_app(app);
//! ```
//!
//! # The cookie
//!
//! On `http.response.start`, a non-empty session is written (again, so its max-age restarts,
//! as in Starlette) into a `Set-Cookie` with the
//! settings (name, path, domain, max-age, `SameSite`, `Secure` when
//! [`https_only`](SessionLayer::https_only)), and `HttpOnly`. A session that was loaded but
//! is empty now (`clear()`) expires the cookie. The payload is the session as JSON with its
//! expiry time, base64url-encoded, then signed.
//!
//! A cookie that was tampered with, signed with another key, expired (its signed expiry has
//! passed, whatever the browser did), or unreadable gives an **empty session**, never an
//! error page, as in Starlette.
//!
//! WebSocket scopes get the session too (read it on connect); nothing is written back, since
//! a WebSocket has no response headers after the handshake. The lifespan passes through.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use asgi_core::http::{HeaderMap, HeaderValue, header};
use asgi_core::{App, Error, Layer, Receiver, Scope, SendEvent, Sender, async_trait};
use cookie::{Cookie, CookieJar, Key, SameSite as CookieSameSite};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The cookie's name, unless [`SessionLayer::cookie_name`] says otherwise: `session`, as in
/// Starlette.
pub const DEFAULT_COOKIE_NAME: &str = "session";

/// How long a session lives, unless [`SessionLayer::max_age`] says otherwise.
///
/// Default is 14 days, Starlette's. Pass `None` for a browser-session cookie (gone when the
/// browser closes, and with no expiry of its own).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// The shortest secret key accepted, in bytes: 32, the HMAC-SHA256 key size (the signing
/// key is derived from it with HKDF).
pub const MIN_SECRET_LEN: usize = 32;

/// The `SameSite` attribute of the cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SameSite {
    /// `SameSite=Lax` (the default, Starlette's): sent on top-level navigations from other
    /// sites, not on their subrequests.
    #[default]
    Lax,
    /// `SameSite=Strict`: only sent to the same site.
    Strict,
    /// `SameSite=None`: sent everywhere; browsers require `Secure` with it
    /// ([`https_only`](SessionLayer::https_only)).
    None,
}

/// The session of one request: a map from string keys to JSON values, shared between the
/// scope and the middleware (clones share it).
#[derive(Clone, Default)]
pub struct Session {
    inner: Arc<Mutex<SessionData>>,
}

#[derive(Default)]
struct SessionData {
    values: Map<String, Value>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("keys", &self.data().values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Session {
    fn data(&self) -> std::sync::MutexGuard<'_, SessionData> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value at `key`, deserialized; `None` when absent or of another shape.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let value = self.data().values.get(key).cloned()?;
        serde_json::from_value(value).ok()
    }

    /// The raw JSON value at `key`.
    pub fn get_value(&self, key: &str) -> Option<Value> {
        self.data().values.get(key).cloned()
    }

    /// Stores `value` at `key`; `false` (and nothing stored) when it does not serialize.
    pub fn insert<T: Serialize>(&self, key: impl Into<String>, value: T) -> bool {
        let Ok(value) = serde_json::to_value(value) else {
            return false;
        };
        self.data().values.insert(key.into(), value);
        true
    }

    /// Removes `key`, returning its value.
    pub fn remove(&self, key: &str) -> Option<Value> {
        self.data().values.remove(key)
    }

    /// Empties the session (a logout): the cookie is expired on the response.
    pub fn clear(&self) {
        self.data().values.clear();
    }

    /// True when the session holds nothing.
    pub fn is_empty(&self) -> bool {
        self.data().values.is_empty()
    }

    /// The keys, in order.
    pub fn keys(&self) -> Vec<String> {
        self.data().values.keys().cloned().collect()
    }
}

/// The settings of a [`Sessions`] middleware, and its layer.
#[derive(Clone)]
pub struct SessionLayer {
    config: Arc<Config>,
}

#[derive(Clone)]
struct Config {
    key: Key,
    cookie_name: String,
    max_age: Option<Duration>,
    path: String,
    domain: Option<String>,
    same_site: SameSite,
    https_only: bool,
}

impl fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("SessionLayer")
            .field("cookie_name", &c.cookie_name)
            .field("max_age", &c.max_age)
            .field("path", &c.path)
            .field("domain", &c.domain)
            .field("same_site", &c.same_site)
            .field("https_only", &c.https_only)
            .finish_non_exhaustive()
    }
}

impl SessionLayer {
    /// Sessions signed with a key derived from `secret`, with Starlette's defaults: cookie
    /// [`DEFAULT_COOKIE_NAME`], max-age [`DEFAULT_MAX_AGE`], path `/`, no domain,
    /// `SameSite=Lax`, not HTTPS-only.
    ///
    /// Keep `secret` out of the code (an environment variable, a secrets file); anyone who
    /// has it can forge sessions. Changing it logs everyone out.
    ///
    /// # Panics
    ///
    /// When `secret` is shorter than [`MIN_SECRET_LEN`] bytes.
    pub fn new(secret: &[u8]) -> Self {
        assert!(
            secret.len() >= MIN_SECRET_LEN,
            "the session secret must be at least {MIN_SECRET_LEN} bytes"
        );
        SessionLayer {
            config: Arc::new(Config {
                key: Key::derive_from(secret),
                cookie_name: DEFAULT_COOKIE_NAME.to_owned(),
                max_age: Some(DEFAULT_MAX_AGE),
                path: "/".to_owned(),
                domain: None,
                same_site: SameSite::Lax,
                https_only: false,
            }),
        }
    }

    /// The cookie's name. Default [`DEFAULT_COOKIE_NAME`].
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.config).cookie_name = name.into();
        self
    }

    /// How long a session lives after its last write. Default [`DEFAULT_MAX_AGE`]; `None`
    /// for a browser-session cookie.
    pub fn max_age(mut self, max_age: Option<Duration>) -> Self {
        Arc::make_mut(&mut self.config).max_age = max_age;
        self
    }

    /// The cookie's `Path`. Default `/`.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.config).path = path.into();
        self
    }

    /// The cookie's `Domain`, to share it with subdomains. Default none (this host only).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.config).domain = Some(domain.into());
        self
    }

    /// The cookie's `SameSite`. Default [`SameSite::Lax`].
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        Arc::make_mut(&mut self.config).same_site = same_site;
        self
    }

    /// Marks the cookie `Secure`: browsers send it over HTTPS only. Default `false`.
    pub fn https_only(mut self, on: bool) -> Self {
        Arc::make_mut(&mut self.config).https_only = on;
        self
    }
}

impl<A: App> Layer<A> for SessionLayer {
    type App = Sessions<A>;

    fn layer(&self, inner: A) -> Sessions<A> {
        Sessions {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The session middleware; see the [module docs](self).
pub struct Sessions<A> {
    inner: A,
    config: Arc<Config>,
}

impl<A> fmt::Debug for Sessions<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("cookie_name", &self.config.cookie_name)
            .finish_non_exhaustive()
    }
}

impl<A: App> Sessions<A> {
    /// Wraps `inner` with the settings of `layer`.
    pub fn new(inner: A, layer: &SessionLayer) -> Self {
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

/// What the signed cookie carries.
#[derive(Serialize, Deserialize)]
struct Payload {
    /// Unix seconds after which the session is void; `None` for browser-session cookies.
    #[serde(default)]
    exp: Option<u64>,
    data: Map<String, Value>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Config {
    /// The session from the request's cookies: empty unless a valid, unexpired one is there.
    /// The flag says whether a session cookie was presented at all.
    fn load(&self, headers: &HeaderMap) -> (Map<String, Value>, bool) {
        let mut jar = CookieJar::new();
        let mut presented = false;
        for value in headers.get_all(header::COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            for cookie in Cookie::split_parse(value.to_owned()).flatten() {
                if cookie.name() == self.cookie_name {
                    presented = true;
                    jar.add_original(cookie);
                }
            }
        }
        let data = jar
            .signed(&self.key)
            .get(&self.cookie_name)
            .and_then(|cookie| {
                data_encoding::BASE64URL_NOPAD
                    .decode(cookie.value().as_bytes())
                    .ok()
            })
            .and_then(|bytes| serde_json::from_slice::<Payload>(&bytes).ok())
            .filter(|payload| payload.exp.is_none_or(|exp| exp > now_secs()))
            .map(|payload| payload.data)
            .unwrap_or_default();
        (data, presented)
    }

    fn base_cookie(&self, value: String) -> cookie::CookieBuilder<'static> {
        let mut builder = Cookie::build((self.cookie_name.clone(), value))
            .path(self.path.clone())
            .http_only(true)
            .secure(self.https_only)
            .same_site(match self.same_site {
                SameSite::Lax => CookieSameSite::Lax,
                SameSite::Strict => CookieSameSite::Strict,
                SameSite::None => CookieSameSite::None,
            });
        if let Some(domain) = &self.domain {
            builder = builder.domain(domain.clone());
        }
        builder
    }

    /// The `Set-Cookie` value that stores `data`.
    fn store(&self, data: Map<String, Value>) -> Option<HeaderValue> {
        let payload = Payload {
            exp: self
                .max_age
                .map(|age| now_secs().saturating_add(age.as_secs())),
            data,
        };
        let json = serde_json::to_vec(&payload).ok()?;
        let encoded = data_encoding::BASE64URL_NOPAD.encode(&json);
        let mut jar = CookieJar::new();
        jar.signed_mut(&self.key)
            .add(Cookie::new(self.cookie_name.clone(), encoded));
        let signed_value = jar.get(&self.cookie_name)?.value().to_owned();
        let mut builder = self.base_cookie(signed_value);
        if let Some(age) = self.max_age {
            let seconds = i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
            builder = builder.max_age(cookie::time::Duration::seconds(seconds));
        }
        HeaderValue::from_str(&builder.build().to_string()).ok()
    }

    /// The `Set-Cookie` value that removes the cookie.
    fn expire(&self) -> Option<HeaderValue> {
        let cookie = self
            .base_cookie(String::new())
            .max_age(cookie::time::Duration::ZERO)
            .expires(cookie::time::OffsetDateTime::UNIX_EPOCH)
            .build();
        HeaderValue::from_str(&cookie.to_string()).ok()
    }
}

#[async_trait]
impl<A: App> App for Sessions<A> {
    async fn call(&self, mut scope: Scope, receive: Receiver, send: Sender) -> Result<(), Error> {
        let Some(headers) = scope.headers() else {
            return self.inner.call(scope, receive, send).await;
        };
        let (values, presented) = self.config.load(headers);
        let session = Session {
            inner: Arc::new(Mutex::new(SessionData { values })),
        };
        let is_http = matches!(scope, Scope::Http(_));
        if let Some(extensions) = scope.extensions_mut() {
            extensions.insert(session.clone());
        }
        if !is_http {
            return self.inner.call(scope, receive, send).await;
        }
        let config = self.config.clone();
        let send = send.map(move |mut event| {
            if let SendEvent::HttpResponseStart { headers, .. } = &mut event {
                let data = session.data();
                let set_cookie = if !data.values.is_empty() {
                    config.store(data.values.clone())
                } else if presented {
                    config.expire()
                } else {
                    None
                };
                if let Some(value) = set_cookie {
                    headers.append(header::SET_COOKIE, value);
                }
            }
            event
        });
        self.inner.call(scope, receive, send).await
    }
}
