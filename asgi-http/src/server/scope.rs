//! The HTTP scope of a request, as uvicorn builds it.

use asgi_core::extensions::{HTTP_RESPONSE_PATHSEND, HTTP_RESPONSE_TRAILERS};
use asgi_core::{Extensions, HttpScope, HttpVersion};
use bytes::{BufMut, BytesMut};
use http::Version;
use http::header::{HOST, HeaderValue};
use http::request::Parts;
use http::uri::PathAndQuery;

use super::listener::ConnInfo;
use super::run::Shared;
use crate::path::{Target, split_target};

/// The ASGI extensions every HTTP scope of this server declares.
const SUPPORTED_EXTENSIONS: [&str; 2] = [HTTP_RESPONSE_TRAILERS, HTTP_RESPONSE_PATHSEND];

/// Builds the scope of a request from its head (the header map is moved, not copied).
pub(crate) fn http_scope(parts: Parts, conn: &ConnInfo, shared: &Shared) -> HttpScope {
    let Parts {
        method,
        uri,
        version,
        mut headers,
        ..
    } = parts;
    let target = uri.path_and_query().map_or("/", PathAndQuery::as_str);
    let Target {
        path,
        raw_path,
        query_string,
    } = split_target(target.as_bytes());

    let mut scope = HttpScope::new(method, String::new());
    scope.http_version = match version {
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
    let root_path = &shared.config.root_path;
    if root_path.is_empty() {
        scope.path = path;
        scope.raw_path = raw_path;
    } else {
        // As uvicorn: `path` and `raw_path` include the root path.
        scope.path = format!("{root_path}{path}");
        let mut raw = BytesMut::with_capacity(root_path.len() + raw_path.len());
        raw.put_slice(root_path.as_bytes());
        raw.put_slice(&raw_path);
        scope.raw_path = raw.freeze();
        scope.root_path = root_path.clone();
    }
    scope.query_string = query_string;
    scope.headers = headers;
    scope.client = conn.client;
    scope.server = Some(conn.server.clone());
    scope.extensions = Extensions::from_static(&SUPPORTED_EXTENSIONS);
    scope.state = shared.state.clone();
    scope.shutdown = shared.scope_shutdown.signal();
    scope
}
