//! `scope["extensions"]`: what the server supports, and typed data that middleware adds.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// Extension name: the server accepts `http.response.trailers` (ASGI trailers extension).
pub const HTTP_RESPONSE_TRAILERS: &str = "http.response.trailers";
/// Extension name: the server accepts `http.response.pathsend` (ASGI path send extension).
pub const HTTP_RESPONSE_PATHSEND: &str = "http.response.pathsend";
/// Extension name: the server accepts `websocket.http.response.*` (WebSocket denial response).
pub const WEBSOCKET_HTTP_RESPONSE: &str = "websocket.http.response";
/// Extension name: the connection is TLS (ASGI TLS extension).
pub const TLS: &str = "tls";

/// The extensions of a scope.
///
/// Two things live here:
///
/// - the ASGI extensions the server supports ([`supports`](Extensions::supports)), which is
///   what the serde form shows as `"extensions": {"http.response.trailers": {}, ...}`;
/// - a typed map for what middleware adds for the apps inside it (path parameters, a request
///   id, the authenticated user): [`insert`](Extensions::insert) /
///   [`get`](Extensions::get). It is not part of the serde form.
///
/// # Example
///
/// ```
/// use asgi_core::extensions::{self, Extensions};
///
/// #[derive(Clone, Debug, PartialEq)]
/// struct RequestId(u64);
///
/// let mut ext = Extensions::with_supported([extensions::HTTP_RESPONSE_TRAILERS]);
/// assert!(ext.supports(extensions::HTTP_RESPONSE_TRAILERS));
/// ext.insert(RequestId(7));
/// assert_eq!(ext.get::<RequestId>(), Some(&RequestId(7)));
/// ```
#[derive(Clone, Default)]
pub struct Extensions {
    // Borrowed from a server's static list on the hot path: no allocation per scope.
    supported: Cow<'static, [&'static str]>,
    data: http::Extensions,
}

impl Extensions {
    /// No supported extensions and no data.
    pub fn new() -> Self {
        Extensions::default()
    }

    /// Declares the given ASGI extensions as supported.
    pub fn with_supported(names: impl IntoIterator<Item = &'static str>) -> Self {
        Extensions {
            supported: names.into_iter().collect::<Vec<_>>().into(),
            data: http::Extensions::new(),
        }
    }

    /// Declares the ASGI extensions of a static list as supported, without allocating: what a
    /// server does for every scope.
    pub fn from_static(names: &'static [&'static str]) -> Self {
        Extensions {
            supported: Cow::Borrowed(names),
            data: http::Extensions::new(),
        }
    }

    /// True when the server supports the named ASGI extension.
    pub fn supports(&self, name: &str) -> bool {
        self.supported.contains(&name)
    }

    /// The names of the supported ASGI extensions, in the order the server declared them.
    pub fn supported(&self) -> &[&'static str] {
        &self.supported
    }

    /// Declares one more ASGI extension as supported.
    pub fn add_supported(&mut self, name: &'static str) {
        if !self.supports(name) {
            self.supported.to_mut().push(name);
        }
    }

    /// The typed value of type `T` that a middleware stored.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.data.get::<T>()
    }

    /// A mutable reference to the typed value of type `T`.
    pub fn get_mut<T: Send + Sync + 'static>(&mut self) -> Option<&mut T> {
        self.data.get_mut::<T>()
    }

    /// Stores a typed value, returning the previous one of that type.
    pub fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) -> Option<T> {
        self.data.insert(value)
    }

    /// Removes and returns the typed value of type `T`.
    pub fn remove<T: Send + Sync + 'static>(&mut self) -> Option<T> {
        self.data.remove::<T>()
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extensions")
            .field("supported", &self.supported)
            .field("data_entries", &self.data.len())
            .finish()
    }
}

impl Serialize for Extensions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.supported.len()))?;
        for name in self.supported.iter() {
            map.serialize_entry(name, &BTreeMap::<String, ()>::new())?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Extensions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Option::<BTreeMap<String, IgnoredAny>>::deserialize(d)?.unwrap_or_default();
        let mut ext = Extensions::new();
        for name in names.keys() {
            // Names are `&'static str` so that the hot path never allocates them; an unknown
            // name from a dict is dropped, since no server here could honour it.
            if let Some(known) = [
                HTTP_RESPONSE_TRAILERS,
                HTTP_RESPONSE_PATHSEND,
                WEBSOCKET_HTTP_RESPONSE,
                TLS,
            ]
            .into_iter()
            .find(|k| k == name)
            {
                ext.add_supported(known);
            }
        }
        Ok(ext)
    }
}
