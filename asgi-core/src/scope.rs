//! The connection scope: what the server knows about a connection before any event flows.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::Bytes;
use http::{HeaderMap, Method};
use serde::de::{self, Deserializer};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};

use crate::extensions::Extensions;
use crate::shutdown::ShutdownSignal;
use crate::state::{LifespanState, State};
use crate::wire;

/// The ASGI version this crate implements (`scope["asgi"]["version"]`).
pub const ASGI_VERSION: &str = "3.0";
/// The version of the ASGI HTTP and WebSocket spec this crate implements.
pub const HTTP_SPEC_VERSION: &str = "2.5";
/// The version of the ASGI lifespan spec this crate implements.
pub const LIFESPAN_SPEC_VERSION: &str = "2.0";

/// What one connection is, for the app: ASGI's `scope`, one variant per protocol.
///
/// The server builds it; middleware may change it before passing it on (a router adds path
/// parameters to [`extensions`](Scope::extensions_mut), a mount extends `root_path`).
///
/// With serde it has exactly the ASGI dict form, `{"type": "http", "http_version": "1.1", ...}`,
/// byte strings rendered as latin-1 strings (see the crate docs); `state` and the typed data
/// in `extensions` are not part of that form.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum Scope {
    /// An HTTP request (`"type": "http"`).
    ///
    /// Boxed, as the WebSocket scope is: a scope of hundreds of bytes is handed from the
    /// server through every middleware to the app, and each hand-over would copy it whole.
    /// Boxed, it moves as a pointer; its fields read as they would unboxed (`scope.path`).
    /// Make one with `Scope::from(HttpScope::new(..))` or `Scope::Http(Box::new(..))`.
    #[serde(rename = "http")]
    Http(Box<HttpScope>),
    /// A WebSocket connection (`"type": "websocket"`), boxed as [`Scope::Http`] is.
    #[serde(rename = "websocket")]
    WebSocket(Box<WebSocketScope>),
    /// The application's lifespan (`"type": "lifespan"`).
    #[serde(rename = "lifespan")]
    Lifespan(LifespanScope),
}

impl From<HttpScope> for Scope {
    fn from(scope: HttpScope) -> Self {
        Scope::Http(Box::new(scope))
    }
}

impl From<WebSocketScope> for Scope {
    fn from(scope: WebSocketScope) -> Self {
        Scope::WebSocket(Box::new(scope))
    }
}

impl From<Box<HttpScope>> for Scope {
    fn from(scope: Box<HttpScope>) -> Self {
        Scope::Http(scope)
    }
}

impl From<Box<WebSocketScope>> for Scope {
    fn from(scope: Box<WebSocketScope>) -> Self {
        Scope::WebSocket(scope)
    }
}

impl From<LifespanScope> for Scope {
    fn from(scope: LifespanScope) -> Self {
        Scope::Lifespan(scope)
    }
}

impl Scope {
    /// The ASGI type string: `"http"`, `"websocket"` or `"lifespan"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Scope::Http(_) => "http",
            Scope::WebSocket(_) => "websocket",
            Scope::Lifespan(_) => "lifespan",
        }
    }

    /// The HTTP scope, if this is one.
    pub fn as_http(&self) -> Option<&HttpScope> {
        match self {
            Scope::Http(s) => Some(s),
            _ => None,
        }
    }

    /// The WebSocket scope, if this is one.
    pub fn as_websocket(&self) -> Option<&WebSocketScope> {
        match self {
            Scope::WebSocket(s) => Some(s),
            _ => None,
        }
    }

    /// The lifespan scope, if this is one.
    pub fn as_lifespan(&self) -> Option<&LifespanScope> {
        match self {
            Scope::Lifespan(s) => Some(s),
            _ => None,
        }
    }

    /// The request path (percent-decoded, including `root_path`), for HTTP and WebSocket.
    pub fn path(&self) -> Option<&str> {
        match self {
            Scope::Http(s) => Some(&s.path),
            Scope::WebSocket(s) => Some(&s.path),
            Scope::Lifespan(_) => None,
        }
    }

    /// The request headers, for HTTP and WebSocket.
    pub fn headers(&self) -> Option<&HeaderMap> {
        match self {
            Scope::Http(s) => Some(&s.headers),
            Scope::WebSocket(s) => Some(&s.headers),
            Scope::Lifespan(_) => None,
        }
    }

    /// The frozen lifespan state shared by every connection (empty for the lifespan scope
    /// itself, whose state is still being built: see [`LifespanScope::state`]).
    pub fn state(&self) -> &State {
        static EMPTY: std::sync::OnceLock<State> = std::sync::OnceLock::new();
        match self {
            Scope::Http(s) => &s.state,
            Scope::WebSocket(s) => &s.state,
            Scope::Lifespan(_) => EMPTY.get_or_init(State::empty),
        }
    }

    /// The extensions of an HTTP or WebSocket scope.
    pub fn extensions(&self) -> Option<&Extensions> {
        match self {
            Scope::Http(s) => Some(&s.extensions),
            Scope::WebSocket(s) => Some(&s.extensions),
            Scope::Lifespan(_) => None,
        }
    }

    /// The extensions of an HTTP or WebSocket scope, for middleware to add typed data.
    pub fn extensions_mut(&mut self) -> Option<&mut Extensions> {
        match self {
            Scope::Http(s) => Some(&mut s.extensions),
            Scope::WebSocket(s) => Some(&mut s.extensions),
            Scope::Lifespan(_) => None,
        }
    }

    /// The server's drain signal. For the lifespan scope it never fires: the server sends
    /// `lifespan.shutdown` instead.
    pub fn shutdown(&self) -> ShutdownSignal {
        match self {
            Scope::Http(s) => s.shutdown.clone(),
            Scope::WebSocket(s) => s.shutdown.clone(),
            Scope::Lifespan(_) => ShutdownSignal::never(),
        }
    }
}

/// `scope["asgi"]`: the interface version and the protocol spec version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsgiVersion {
    /// Always `"3.0"`.
    pub version: Cow<'static, str>,
    /// The version of the protocol spec, e.g. `"2.5"` for HTTP.
    #[serde(default = "default_spec_version")]
    pub spec_version: Cow<'static, str>,
}

fn default_spec_version() -> Cow<'static, str> {
    Cow::Borrowed("2.0")
}

impl AsgiVersion {
    /// The versions for HTTP and WebSocket scopes.
    pub const HTTP: AsgiVersion = AsgiVersion {
        version: Cow::Borrowed(ASGI_VERSION),
        spec_version: Cow::Borrowed(HTTP_SPEC_VERSION),
    };
    /// The versions for the lifespan scope.
    pub const LIFESPAN: AsgiVersion = AsgiVersion {
        version: Cow::Borrowed(ASGI_VERSION),
        spec_version: Cow::Borrowed(LIFESPAN_SPEC_VERSION),
    };
}

fn asgi_http() -> AsgiVersion {
    AsgiVersion::HTTP
}

fn asgi_lifespan() -> AsgiVersion {
    AsgiVersion::LIFESPAN
}

/// `http_version`: `"1.0"`, `"1.1"` or `"2"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum HttpVersion {
    /// HTTP/1.0.
    #[serde(rename = "1.0")]
    Http10,
    /// HTTP/1.1.
    #[default]
    #[serde(rename = "1.1")]
    Http11,
    /// HTTP/2.
    #[serde(rename = "2")]
    Http2,
}

impl HttpVersion {
    /// The ASGI string form.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Http10 => "1.0",
            HttpVersion::Http11 => "1.1",
            HttpVersion::Http2 => "2",
        }
    }
}

impl fmt::Display for HttpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `scope["server"]`: where the server listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerAddr {
    /// A TCP listener; serializes as `[host, port]`.
    Tcp(SocketAddr),
    /// A Unix domain socket; serializes as `[path, null]`, as the ASGI spec says.
    Unix(PathBuf),
}

impl Serialize for ServerAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(2)?;
        match self {
            ServerAddr::Tcp(addr) => {
                t.serialize_element(&addr.ip().to_string())?;
                t.serialize_element(&Some(addr.port()))?;
            }
            ServerAddr::Unix(path) => {
                t.serialize_element(&path.to_string_lossy())?;
                t.serialize_element(&Option::<u16>::None)?;
            }
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for ServerAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (host, port) = <(String, Option<u16>)>::deserialize(d)?;
        match port {
            Some(port) => host
                .parse::<std::net::IpAddr>()
                .map(|ip| ServerAddr::Tcp(SocketAddr::new(ip, port)))
                .map_err(|_| de::Error::custom(format!("invalid IP address {host:?}"))),
            None => Ok(ServerAddr::Unix(PathBuf::from(host))),
        }
    }
}

/// The scope of one HTTP request (ASGI HTTP spec 2.5).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HttpScope {
    /// `asgi`: `{"version": "3.0", "spec_version": "2.5"}`.
    #[serde(default = "asgi_http")]
    pub asgi: AsgiVersion,
    /// `http_version`.
    #[serde(default)]
    pub http_version: HttpVersion,
    /// `method`, uppercase.
    #[serde(with = "wire::method")]
    pub method: Method,
    /// `scheme`: `"http"` or `"https"`.
    #[serde(default = "default_http_scheme")]
    pub scheme: Cow<'static, str>,
    /// `path`: percent-decoded UTF-8, including `root_path`.
    pub path: String,
    /// `raw_path`: the path as it came on the wire, before percent-decoding, without the query.
    #[serde(with = "wire::bytes_latin1", default)]
    pub raw_path: Bytes,
    /// `query_string`: the raw bytes after `?`, not decoded.
    #[serde(with = "wire::bytes_latin1", default)]
    pub query_string: Bytes,
    /// `root_path`: where the app is mounted (WSGI's `SCRIPT_NAME`); `""` by default.
    #[serde(default)]
    pub root_path: String,
    /// `headers`: names lowercase, values of one name in request order, `set-cookie` never
    /// joined.
    #[serde(with = "wire::headers", default)]
    pub headers: HeaderMap,
    /// `client`: the peer's `[host, port]`; `None` for Unix sockets.
    #[serde(with = "wire::opt_socket_addr", default)]
    pub client: Option<SocketAddr>,
    /// `server`: the listening address or socket path.
    #[serde(default)]
    pub server: Option<ServerAddr>,
    /// `extensions`: the server's supported ASGI extensions and middleware's typed data.
    #[serde(default)]
    pub extensions: Extensions,
    /// `state`: the frozen lifespan state. Not part of the serde form.
    #[serde(skip)]
    pub state: State,
    /// Fires when the server starts draining. Not part of the serde form.
    #[serde(skip)]
    pub shutdown: ShutdownSignal,
}

/// `raw_path` for a scope made from `path` alone: its bytes, with no allocation for an empty
/// path (a server's scope, whose paths are filled in afterwards).
fn raw_path_of(path: &str) -> Bytes {
    if path.is_empty() {
        Bytes::new()
    } else {
        Bytes::copy_from_slice(path.as_bytes())
    }
}

fn default_http_scheme() -> Cow<'static, str> {
    Cow::Borrowed("http")
}

fn default_ws_scheme() -> Cow<'static, str> {
    Cow::Borrowed("ws")
}

impl HttpScope {
    /// A scope for `method` and `path` with every other key at its spec default; for tests and
    /// for servers that then fill in the rest. `raw_path` is `path` as bytes.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        let path = path.into();
        HttpScope {
            asgi: AsgiVersion::HTTP,
            http_version: HttpVersion::Http11,
            method,
            scheme: default_http_scheme(),
            raw_path: raw_path_of(&path),
            path,
            query_string: Bytes::new(),
            root_path: String::new(),
            headers: HeaderMap::new(),
            client: None,
            server: None,
            extensions: Extensions::new(),
            state: State::empty(),
            shutdown: ShutdownSignal::never(),
        }
    }
}

/// The scope of one WebSocket connection (ASGI WebSocket spec 2.5).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WebSocketScope {
    /// `asgi`: `{"version": "3.0", "spec_version": "2.5"}`.
    #[serde(default = "asgi_http")]
    pub asgi: AsgiVersion,
    /// `http_version` of the handshake.
    #[serde(default)]
    pub http_version: HttpVersion,
    /// `scheme`: `"ws"` or `"wss"`.
    #[serde(default = "default_ws_scheme")]
    pub scheme: Cow<'static, str>,
    /// `path`: percent-decoded UTF-8, including `root_path`.
    pub path: String,
    /// `raw_path`: the path as it came on the wire.
    #[serde(with = "wire::bytes_latin1", default)]
    pub raw_path: Bytes,
    /// `query_string`: the raw bytes after `?`.
    #[serde(with = "wire::bytes_latin1", default)]
    pub query_string: Bytes,
    /// `root_path`: where the app is mounted.
    #[serde(default)]
    pub root_path: String,
    /// `headers` of the handshake request.
    #[serde(with = "wire::headers", default)]
    pub headers: HeaderMap,
    /// `client`: the peer's `[host, port]`.
    #[serde(with = "wire::opt_socket_addr", default)]
    pub client: Option<SocketAddr>,
    /// `server`: the listening address or socket path.
    #[serde(default)]
    pub server: Option<ServerAddr>,
    /// `subprotocols` the client offered, in order.
    #[serde(default)]
    pub subprotocols: Vec<String>,
    /// `extensions`: supported ASGI extensions and middleware's typed data.
    #[serde(default)]
    pub extensions: Extensions,
    /// `state`: the frozen lifespan state. Not part of the serde form.
    #[serde(skip)]
    pub state: State,
    /// Fires when the server starts draining. Not part of the serde form.
    #[serde(skip)]
    pub shutdown: ShutdownSignal,
}

impl WebSocketScope {
    /// A scope for `path` with every other key at its spec default.
    pub fn new(path: impl Into<String>) -> Self {
        let path = path.into();
        WebSocketScope {
            asgi: AsgiVersion::HTTP,
            http_version: HttpVersion::Http11,
            scheme: default_ws_scheme(),
            raw_path: raw_path_of(&path),
            path,
            query_string: Bytes::new(),
            root_path: String::new(),
            headers: HeaderMap::new(),
            client: None,
            server: None,
            subprotocols: Vec::new(),
            extensions: Extensions::new(),
            state: State::empty(),
            shutdown: ShutdownSignal::never(),
        }
    }
}

/// The lifespan scope (ASGI lifespan spec 2.0).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LifespanScope {
    /// `asgi`: `{"version": "3.0", "spec_version": "2.0"}`.
    #[serde(default = "asgi_lifespan")]
    pub asgi: AsgiVersion,
    /// The state to fill during `lifespan.startup`; frozen by the server at
    /// `lifespan.startup.complete`. Not part of the serde form.
    #[serde(skip)]
    pub state: LifespanState,
}

impl Default for LifespanScope {
    fn default() -> Self {
        LifespanScope::new(LifespanState::new())
    }
}

impl LifespanScope {
    /// A lifespan scope around `state`.
    pub fn new(state: LifespanState) -> Self {
        LifespanScope {
            asgi: AsgiVersion::LIFESPAN,
            state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_moves_as_a_pointer_not_as_its_keys() {
        // The HTTP and WebSocket scopes are boxed: a `Scope` handed from layer to layer moves
        // a few words, whatever the size of the keys behind it.
        let http = std::mem::size_of::<HttpScope>();
        let scope = std::mem::size_of::<Scope>();
        assert!(http > 256, "an HTTP scope is {http} bytes");
        assert!(
            scope <= std::mem::size_of::<LifespanScope>() + 16,
            "a Scope is {scope} bytes"
        );
        assert!(
            scope * 4 < http,
            "a Scope is {scope} bytes, its HTTP scope {http}"
        );
    }

    #[test]
    fn a_boxed_scope_reads_and_converts_as_an_unboxed_one() {
        let mut http = HttpScope::new(Method::GET, "/a");
        http.root_path = "/root".to_owned();
        let scope = Scope::from(http.clone());
        assert_eq!(scope.path(), Some("/a"));
        assert_eq!(scope.as_http().map(|s| s.root_path.as_str()), Some("/root"));
        let Scope::Http(boxed) = scope else {
            panic!("not an HTTP scope");
        };
        assert_eq!(boxed.path, http.path);
        assert_eq!(Scope::from(boxed).type_name(), "http");
        let ws = Scope::from(WebSocketScope::new("/ws"));
        assert_eq!(ws.as_websocket().map(|s| s.path.as_str()), Some("/ws"));
    }
}
