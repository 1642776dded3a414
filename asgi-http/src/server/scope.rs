//! The HTTP and WebSocket scopes of a request, as uvicorn builds them.

use asgi_core::extensions::{HTTP_RESPONSE_PATHSEND, HTTP_RESPONSE_TRAILERS, TLS};
use asgi_core::{Extensions, HttpScope, HttpVersion, WebSocketScope};
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HOST, HeaderMap, HeaderValue};
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{Uri, Version};

use super::shared::{ConnInfo, Shared};
use crate::path::{Target, split_target};

/// The ASGI extensions every HTTP scope of this server declares.
const SUPPORTED_EXTENSIONS: [&str; 2] = [HTTP_RESPONSE_TRAILERS, HTTP_RESPONSE_PATHSEND];

/// The ASGI extensions every HTTP scope of a TLS connection declares: `tls` too, from a
/// static list, so that declaring it allocates nothing.
const SUPPORTED_EXTENSIONS_TLS: [&str; 3] = [HTTP_RESPONSE_TRAILERS, HTTP_RESPONSE_PATHSEND, TLS];

/// Builds the scope of a request from its head (the header map is moved, not copied).
pub(crate) fn http_scope(parts: Parts, conn: &ConnInfo, shared: &Shared) -> HttpScope {
    let mut scope = http_scope_from_head(parts, &shared.config.root_path);
    if conn.peer.secure {
        scope.scheme = "https".into();
    }
    scope.client = conn.peer.client;
    scope.server = Some(conn.server.clone());
    scope.extensions = match &conn.peer.tls {
        None => Extensions::from_static(&SUPPORTED_EXTENSIONS),
        Some(tls) => {
            let mut extensions = Extensions::from_static(&SUPPORTED_EXTENSIONS_TLS);
            extensions.set_tls(tls.clone());
            extensions
        }
    };
    scope.state = shared.state.clone();
    scope.shutdown = shared.scope_shutdown.signal();
    scope
}

/// The keys of an HTTP scope that come from the request head and the `root_path` setting:
/// what [`http_scope`] builds before it adds the connection's. Public, but hidden, for the
/// fuzz targets only: not part of the API.
#[doc(hidden)]
pub fn http_scope_from_head(parts: Parts, root_path: &str) -> HttpScope {
    let Parts {
        method,
        uri,
        version,
        headers,
        ..
    } = parts;
    let common = Common::new(&uri, version, headers, root_path);
    // The path is set below: `new` would copy it into `raw_path`.
    let mut scope = HttpScope::new(method, String::new());
    scope.path = common.path;
    scope.http_version = common.http_version;
    scope.raw_path = common.raw_path;
    scope.root_path = common.root_path;
    scope.query_string = common.query_string;
    scope.headers = common.headers;
    scope
}

/// Builds the scope of a WebSocket handshake from its head (the header map is moved, not
/// copied). `scheme` is `wss` over an encrypted connection, `ws` otherwise; `subprotocols` and the
/// `websocket.http.response` extension are filled in by `asgi_ws::start`.
pub(crate) fn websocket_scope(parts: Parts, conn: &ConnInfo, shared: &Shared) -> WebSocketScope {
    let Parts {
        uri,
        version,
        headers,
        ..
    } = parts;
    let common = Common::new(&uri, version, headers, &shared.config.root_path);
    let mut scope = WebSocketScope::new(String::new());
    scope.path = common.path;
    scope.http_version = common.http_version;
    scope.scheme = asgi_ws::handshake::scheme(conn.peer.secure).into();
    scope.raw_path = common.raw_path;
    scope.root_path = common.root_path;
    scope.query_string = common.query_string;
    scope.headers = common.headers;
    scope.client = conn.peer.client;
    scope.server = Some(conn.server.clone());
    if let Some(tls) = &conn.peer.tls {
        scope.extensions.set_tls(tls.clone());
    }
    scope.state = shared.state.clone();
    scope.shutdown = shared.scope_shutdown.signal();
    scope
}

/// The keys HTTP and WebSocket scopes build the same way.
struct Common {
    http_version: HttpVersion,
    path: String,
    raw_path: Bytes,
    root_path: String,
    query_string: Bytes,
    headers: HeaderMap,
}

impl Common {
    fn new(uri: &Uri, version: Version, mut headers: HeaderMap, root_path: &str) -> Self {
        let target = uri.path_and_query().map_or("/", PathAndQuery::as_str);
        let Target {
            path,
            raw_path,
            query_string,
        } = split_target(target.as_bytes());
        let http_version = match version {
            Version::HTTP_10 => HttpVersion::Http10,
            Version::HTTP_2 => HttpVersion::Http2,
            _ => HttpVersion::Http11,
        };
        if version == Version::HTTP_2 {
            // ASGI: HTTP/2's `:authority` becomes the `host` header (replacing one the client
            // sent; a header map keeps names in the order they first came, so it is not first).
            if let Some(authority) = uri.authority() {
                if let Ok(value) = HeaderValue::from_str(authority.as_str()) {
                    headers.insert(HOST, value);
                }
            }
        }
        if root_path.is_empty() {
            return Common {
                http_version,
                path,
                raw_path,
                root_path: String::new(),
                query_string,
                headers,
            };
        }
        // As uvicorn: `path` and `raw_path` include the root path.
        let mut raw = BytesMut::with_capacity(root_path.len() + raw_path.len());
        raw.put_slice(root_path.as_bytes());
        raw.put_slice(&raw_path);
        Common {
            http_version,
            path: format!("{root_path}{path}"),
            raw_path: raw.freeze(),
            root_path: root_path.to_owned(),
            query_string,
            headers,
        }
    }
}
