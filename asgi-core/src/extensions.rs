//! `scope["extensions"]`: what the server supports, and typed data that middleware adds.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

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

/// The ASGI TLS extension (`scope["extensions"]["tls"]`): what the server knows of the TLS
/// connection a request came on. Read it with [`Extensions::tls`].
///
/// The fields are the spec's, in its forms: certificates PEM-encoded, the subject name as an
/// RFC 4514 string, the protocol version and cipher suite as their 16-bit IANA numbers
/// (`0x0304` is TLS 1.3, `0x1301` is `TLS_AES_128_GCM_SHA256`).
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use asgi_core::extensions::{self, Extensions, TlsInfo};
///
/// let mut info = TlsInfo::default();
/// info.tls_version = Some(0x0304);
/// info.client_cert_name = Some("CN=alice,O=Example".to_owned());
///
/// let mut ext = Extensions::new();
/// ext.set_tls(Arc::new(info));
/// assert!(ext.supports(extensions::TLS));
/// assert_eq!(ext.tls().unwrap().tls_version, Some(0x0304));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct TlsInfo {
    /// `server_cert`: the certificate the server sent, PEM-encoded; `None` if unknown.
    pub server_cert: Option<String>,
    /// `client_cert_chain`: the client's certificate chain, PEM-encoded, the client's own
    /// certificate first; empty when the client sent none.
    pub client_cert_chain: Vec<String>,
    /// `client_cert_name`: the subject of the client's certificate (RFC 4514), if it sent
    /// one.
    pub client_cert_name: Option<String>,
    /// `client_cert_error`: why the client's certificate was not verified; `None` when it
    /// was (or none was sent).
    ///
    /// Most servers refuse such a certificate in the handshake, and then this is always
    /// `None`; a server configured to let it through sets this, and `client_cert_chain` and
    /// `client_cert_name` then show a certificate nobody vouches for. An app that
    /// authenticates by certificate checks this is `None` before it trusts the name.
    pub client_cert_error: Option<String>,
    /// `tls_version`: the protocol version, `0x0303` for TLS 1.2, `0x0304` for TLS 1.3.
    pub tls_version: Option<u16>,
    /// `cipher_suite`: the negotiated cipher suite's IANA number.
    pub cipher_suite: Option<u16>,
}

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
    // Shared by every scope of a connection: one allocation per connection, not per request.
    tls: Option<Arc<TlsInfo>>,
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
            tls: None,
        }
    }

    /// Declares the ASGI extensions of a static list as supported, without allocating: what a
    /// server does for every scope.
    pub fn from_static(names: &'static [&'static str]) -> Self {
        Extensions {
            supported: Cow::Borrowed(names),
            data: http::Extensions::new(),
            tls: None,
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

    /// Stops declaring the named ASGI extension as supported, so that the apps inside see it
    /// missing.
    ///
    /// A middleware does this for an extension it cannot pass on: one that rewrites response
    /// bodies takes `http.response.pathsend` away, and the helpers inside then send the file
    /// as body events it can read (see the "Writing middleware" guide).
    pub fn remove_supported(&mut self, name: &str) {
        if self.supports(name) {
            self.supported.to_mut().retain(|n| *n != name);
        }
    }

    /// The ASGI TLS extension's data: `Some` on a TLS connection.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.tls.as_deref()
    }

    /// Sets the TLS extension's data and declares [`TLS`] supported (what a server does for a
    /// TLS connection).
    pub fn set_tls(&mut self, info: Arc<TlsInfo>) {
        self.add_supported(TLS);
        self.tls = Some(info);
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
            .field("tls", &self.tls)
            .finish()
    }
}

impl Serialize for Extensions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.supported.len()))?;
        for name in self.supported.iter() {
            match (&self.tls, *name) {
                (Some(tls), TLS) => map.serialize_entry(name, &**tls)?,
                _ => map.serialize_entry(name, &BTreeMap::<String, ()>::new())?,
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Extensions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// An extension's dict: the TLS one is read, the others are only names.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Value {
            Tls(TlsInfo),
            Other(IgnoredAny),
        }
        let names = Option::<BTreeMap<String, Value>>::deserialize(d)?.unwrap_or_default();
        let mut ext = Extensions::new();
        for (name, value) in &names {
            if name == TLS {
                if let Value::Tls(info) = value {
                    ext.set_tls(Arc::new(info.clone()));
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_extension_serializes_as_the_spec_dict_and_back() {
        let info = TlsInfo {
            tls_version: Some(0x0304),
            cipher_suite: Some(0x1301),
            client_cert_chain: vec!["-----BEGIN CERTIFICATE-----\n".to_owned()],
            ..TlsInfo::default()
        };
        let mut ext = Extensions::from_static(&[HTTP_RESPONSE_TRAILERS]);
        ext.set_tls(Arc::new(info.clone()));
        let json = serde_json::to_value(&ext).unwrap();
        assert_eq!(json["tls"]["tls_version"], 0x0304);
        assert_eq!(json["tls"]["cipher_suite"], 0x1301);
        assert_eq!(json["tls"]["server_cert"], serde_json::Value::Null);
        assert_eq!(json["http.response.trailers"], serde_json::json!({}));
        let back: Extensions = serde_json::from_value(json).unwrap();
        assert_eq!(back.tls(), Some(&info));
        assert!(back.supports(HTTP_RESPONSE_TRAILERS));
    }

    #[test]
    fn removed_extension_is_no_longer_supported_and_the_rest_keep_their_order() {
        let mut ext =
            Extensions::from_static(&[HTTP_RESPONSE_TRAILERS, HTTP_RESPONSE_PATHSEND, TLS]);
        ext.insert(7_u32);
        ext.remove_supported(HTTP_RESPONSE_PATHSEND);
        assert!(!ext.supports(HTTP_RESPONSE_PATHSEND));
        assert_eq!(ext.supported(), &[HTTP_RESPONSE_TRAILERS, TLS]);
        assert_eq!(ext.get::<u32>(), Some(&7));
        ext.remove_supported(HTTP_RESPONSE_PATHSEND);
        assert_eq!(ext.supported(), &[HTTP_RESPONSE_TRAILERS, TLS]);
    }
}
