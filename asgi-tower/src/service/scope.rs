//! The scope of a request that reached an [`AsgiService`](crate::AsgiService) through tower:
//! where it is mounted (axum's `NestedPath` / `OriginalUri`), and who sent it
//! (`ConnectInfo`).

use std::net::SocketAddr;

use asgi_core::extensions::HTTP_RESPONSE_TRAILERS;
use asgi_core::{Extensions, HttpScope, HttpVersion, WebSocketScope};
use asgi_http::path::{Target, split_target};
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HOST, HeaderMap, HeaderValue};
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{Uri, Version};

use super::Config;

/// The ASGI extensions an [`AsgiService`](crate::AsgiService) HTTP scope declares.
const SUPPORTED_EXTENSIONS: [&str; 1] = [HTTP_RESPONSE_TRAILERS];

pub(crate) fn http_scope(parts: Parts, config: &Config) -> HttpScope {
    let Parts {
        method,
        uri,
        version,
        headers,
        extensions,
        ..
    } = parts;
    let common = Common::new(&uri, version, headers, &extensions);
    let mut scope = HttpScope::new(method, String::new());
    scope.path = common.path;
    scope.http_version = common.http_version;
    scope.raw_path = common.raw_path;
    scope.root_path = common.root_path;
    scope.query_string = common.query_string;
    scope.headers = common.headers;
    scope.client = common.client;
    scope.server = config.server.clone();
    scope.extensions = Extensions::from_static(&SUPPORTED_EXTENSIONS);
    scope.state = config.state.clone();
    scope.shutdown = config.shutdown.clone();
    scope
}

pub(crate) fn websocket_scope(parts: Parts, config: &Config) -> WebSocketScope {
    let Parts {
        uri,
        version,
        headers,
        extensions,
        ..
    } = parts;
    let common = Common::new(&uri, version, headers, &extensions);
    let mut scope = WebSocketScope::new(String::new());
    scope.path = common.path;
    scope.http_version = common.http_version;
    scope.scheme = asgi_ws::handshake::scheme(false).into();
    scope.raw_path = common.raw_path;
    scope.root_path = common.root_path;
    scope.query_string = common.query_string;
    scope.headers = common.headers;
    scope.client = common.client;
    scope.server = config.server.clone();
    scope.state = config.state.clone();
    scope.shutdown = config.shutdown.clone();
    scope
}

struct Common {
    http_version: HttpVersion,
    path: String,
    raw_path: Bytes,
    root_path: String,
    query_string: Bytes,
    headers: HeaderMap,
    client: Option<SocketAddr>,
}

impl Common {
    fn new(
        uri: &Uri,
        version: Version,
        mut headers: HeaderMap,
        extensions: &http::Extensions,
    ) -> Self {
        let http_version = match version {
            Version::HTTP_10 => HttpVersion::Http10,
            Version::HTTP_2 => HttpVersion::Http2,
            _ => HttpVersion::Http11,
        };
        if version == Version::HTTP_2 {
            // ASGI: HTTP/2's `:authority` is the `host` header.
            if let Some(authority) = uri.authority() {
                if let Ok(value) = HeaderValue::from_str(authority.as_str()) {
                    headers.insert(HOST, value);
                }
            }
        }
        let (target, root_path) = mounted_target(uri, extensions);
        Common {
            http_version,
            path: target.path,
            raw_path: target.raw_path,
            root_path,
            query_string: target.query_string,
            headers,
            client: client(extensions),
        }
    }
}

fn client(extensions: &http::Extensions) -> Option<SocketAddr> {
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0);
    }
    extensions.get::<SocketAddr>().copied()
}

fn split(uri: &Uri) -> Target {
    split_target(
        uri.path_and_query()
            .map_or("/", PathAndQuery::as_str)
            .as_bytes(),
    )
}

/// The full target and the `root_path`. A router that nests a service strips the prefix
/// from the URI the service sees; ASGI keeps `path` whole and names the prefix in
/// `root_path`, so both are rebuilt: from `OriginalUri` (the URI before any nesting) when
/// it ends with the URI seen here, else from `NestedPath` (the prefix) and the URI.
fn mounted_target(uri: &Uri, extensions: &http::Extensions) -> (Target, String) {
    #[cfg(feature = "axum")]
    {
        let seen = split(uri);
        if let Some(original) = extensions.get::<axum::extract::OriginalUri>() {
            let full = split(&original.0);
            // A nested service sees `/` for both `/prefix` and `/prefix/`.
            let root = if seen.path == "/" {
                Some(full.path.strip_suffix('/').unwrap_or(&full.path))
            } else {
                full.path.strip_suffix(seen.path.as_str())
            };
            if let Some(root) = root {
                let root = root.to_owned();
                return (full, root);
            }
        }
        if let Some(nested) = extensions.get::<axum::extract::NestedPath>() {
            let root = nested.as_str().trim_end_matches('/');
            if !root.is_empty() {
                return (prefixed(seen, root), root.to_owned());
            }
        }
        (seen, String::new())
    }
    #[cfg(not(feature = "axum"))]
    {
        let _ = extensions;
        (split(uri), String::new())
    }
}

/// `target` under `root`: `path` and `raw_path` start with it, as ASGI's do.
#[cfg(feature = "axum")]
fn prefixed(target: Target, root: &str) -> Target {
    let route = if target.path == "/" { "" } else { &target.path };
    let raw_route: &[u8] = if &target.raw_path[..] == b"/" {
        b""
    } else {
        &target.raw_path
    };
    let mut raw = BytesMut::with_capacity(root.len() + raw_route.len());
    raw.put_slice(root.as_bytes());
    raw.put_slice(raw_route);
    Target {
        path: format!("{root}{route}"),
        raw_path: raw.freeze(),
        query_string: target.query_string,
    }
}
