//! The HTTP and WebSocket scopes of a request, from its head, as uvicorn builds them: the one
//! scope builder of the workspace. This project's server and `asgi-tower`'s `AsgiService`
//! both build their scopes here, and differ only in the [`ScopeOptions`] they pass.
//!
//! - `http_version` from the request's version; `scheme` `http` / `https` (`ws` / `wss`)
//!   from [`ScopeOptions::secure`];
//! - `path` (percent-decoded), `raw_path` and `query_string` from the request target, under
//!   the `root_path` ([`MountedTarget`]);
//! - `headers` moved from the request, not copied (the head is borrowed, and left with an
//!   empty header map); over HTTP/2 the `:authority` becomes the `host` header, as ASGI
//!   asks;
//! - `client`, `server`, `extensions`, `state` and `shutdown` from the options, moved in.
//!
//! # Example
//!
//! ```
//! use asgi_http::scope::{MountedTarget, ScopeOptions, http_scope};
//!
//! let (mut parts, ()) = http::Request::get("/users/a%20b?page=2").body(()).unwrap().into_parts();
//! let mut options = ScopeOptions::default();
//! options.target = MountedTarget::Prefixed("/api".into());
//! let scope = http_scope(&mut parts, options);
//! assert_eq!(scope.path, "/api/users/a b");
//! assert_eq!(&scope.raw_path[..], b"/api/users/a%20b");
//! assert_eq!(scope.root_path, "/api");
//! assert_eq!(&scope.query_string[..], b"page=2");
//! ```

use std::borrow::Cow;
use std::net::SocketAddr;

use asgi_core::{
    Extensions, HttpScope, HttpVersion, ServerAddr, ShutdownSignal, State, WebSocketScope,
};
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HOST, HeaderMap, HeaderValue};
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{Uri, Version};

use crate::path::{Target, split_str_target};

/// Where the request target sits under the `root_path`.
#[derive(Debug, Clone)]
pub enum MountedTarget<'a> {
    /// The target is the request URI's, and the app is mounted at this prefix (`""`: at the
    /// root), which the URI lacks: `path` and `raw_path` get it in front, as uvicorn's
    /// `--root-path` does behind a proxy that strips the prefix. A server's setting.
    Prefixed(Cow<'a, str>),
    /// The target was split already, whole (it starts with the prefix), by a host that
    /// rebuilt it: a router that stripped the prefix from the URI the app's host sees, and
    /// kept the original. The URI of the request head is then not read.
    Whole {
        /// The whole target.
        target: Target,
        /// The prefix `target.path` starts with, percent-decoded.
        root_path: String,
    },
}

/// What a scope holds besides the request head: where the app is mounted, and what the
/// host knows of the connection. Every field is moved into the scope.
///
/// [`Default`]: at the root, not encrypted, no `client` nor `server`, no extensions declared,
/// an empty state and a shutdown signal that never fires.
#[derive(Debug, Clone)]
pub struct ScopeOptions<'a> {
    /// The target and the `root_path`. Default: [`MountedTarget::Prefixed`] with `""`.
    pub target: MountedTarget<'a>,
    /// The connection is encrypted: `scheme` is `https` (`wss`), else `http` (`ws`).
    pub secure: bool,
    /// The `client`: the peer's address, when the host knows it.
    pub client: Option<SocketAddr>,
    /// The `server`: where the host listens, when it knows it.
    pub server: Option<ServerAddr>,
    /// The ASGI extensions the host declares (for a WebSocket scope, `asgi-ws` adds
    /// `websocket.http.response` itself), and the typed map.
    pub extensions: Extensions,
    /// The lifespan state.
    pub state: State,
    /// The drain signal.
    pub shutdown: ShutdownSignal,
}

impl Default for ScopeOptions<'_> {
    fn default() -> Self {
        ScopeOptions {
            target: MountedTarget::Prefixed(Cow::Borrowed("")),
            secure: false,
            client: None,
            server: None,
            extensions: Extensions::default(),
            state: State::default(),
            shutdown: ShutdownSignal::default(),
        }
    }
}

/// Moves the keys HTTP and WebSocket scopes share (same names, two types) into `$scope`:
/// from the request head (`$common`) and the options.
macro_rules! fill {
    ($scope:ident, $common:ident, $options:ident) => {
        $scope.http_version = $common.http_version;
        $scope.path = $common.path;
        $scope.raw_path = $common.raw_path;
        $scope.query_string = $common.query_string;
        $scope.root_path = $common.root_path;
        crate::response::put_headers(&mut $scope.headers, $common.headers);
        $scope.client = $options.client;
        $scope.server = $options.server;
        $scope.extensions = $options.extensions;
        $scope.state = $options.state;
        $scope.shutdown = $options.shutdown;
    };
}

/// The HTTP scope of a request, from its head and the options. The head's header map is moved
/// into the scope, not copied, and the head is left with an empty one; the rest of it is
/// read where it lies (the head is not moved, so that its few hundred bytes are not copied on
/// every request). Boxed, as [`Scope::Http`](asgi_core::Scope::Http) holds it. See the module
/// docs.
pub fn http_scope(parts: &mut Parts, options: ScopeOptions<'_>) -> Box<HttpScope> {
    let method = parts.method.clone();
    let headers = std::mem::take(&mut parts.headers);
    let common = Common::new(&parts.uri, parts.version, headers, options.target);
    // The path is set below: `new` would copy it into `raw_path`. Boxed first and filled in
    // place, so that the scope is written once, where `Scope::Http` will hold it.
    let mut scope = Box::new(HttpScope::new(method, String::new()));
    if options.secure {
        scope.scheme = "https".into();
    }
    fill!(scope, common, options);
    scope
}

/// The WebSocket scope of a handshake, from its head and the options, as [`http_scope`]
/// takes them (the header map is moved into the scope); `subprotocols` and the
/// `websocket.http.response` extension are filled in by `asgi_ws::start`. Boxed, as
/// [`Scope::WebSocket`](asgi_core::Scope::WebSocket) holds it. See the module docs.
pub fn websocket_scope(parts: &mut Parts, options: ScopeOptions<'_>) -> Box<WebSocketScope> {
    let headers = std::mem::take(&mut parts.headers);
    let common = Common::new(&parts.uri, parts.version, headers, options.target);
    let mut scope = Box::new(WebSocketScope::new(String::new()));
    scope.scheme = asgi_ws::handshake::scheme(options.secure).into();
    fill!(scope, common, options);
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
    fn new(uri: &Uri, version: Version, mut headers: HeaderMap, target: MountedTarget<'_>) -> Self {
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
        let (target, root_path) = match target {
            MountedTarget::Whole { target, root_path } => (target, root_path),
            MountedTarget::Prefixed(root_path) => {
                let target =
                    split_str_target(uri.path_and_query().map_or("/", PathAndQuery::as_str));
                let target = prefixed(target, &root_path);
                (target, root_path.into_owned())
            }
        };
        Common {
            http_version,
            path: target.path,
            raw_path: target.raw_path,
            root_path,
            query_string: target.query_string,
            headers,
        }
    }
}

/// `target` under `root_path`: as uvicorn's, `path` and `raw_path` include it.
fn prefixed(target: Target, root_path: &str) -> Target {
    if root_path.is_empty() {
        return target;
    }
    let mut raw = BytesMut::with_capacity(root_path.len() + target.raw_path.len());
    raw.put_slice(root_path.as_bytes());
    raw.put_slice(&target.raw_path);
    Target {
        path: format!("{root_path}{}", target.path),
        raw_path: raw.freeze(),
        query_string: target.query_string,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(request: http::request::Builder) -> Parts {
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_whole_target_is_taken_as_it_is_and_the_uri_not_read() {
        let parts = head(http::Request::get("/seen-by-the-host"));
        let options = ScopeOptions {
            target: MountedTarget::Whole {
                target: crate::path::split_target(b"/app/a%20b?x=1"),
                root_path: "/app".to_owned(),
            },
            ..ScopeOptions::default()
        };
        let scope = http_scope(&mut { parts }, options);
        assert_eq!(scope.path, "/app/a b");
        assert_eq!(&scope.raw_path[..], b"/app/a%20b");
        assert_eq!(&scope.query_string[..], b"x=1");
        assert_eq!(scope.root_path, "/app");
    }

    #[test]
    fn http2_authority_becomes_the_host_header() {
        let parts = head(
            http::Request::get("https://example.com:8443/x")
                .version(Version::HTTP_2)
                .header(HOST, "other"),
        );
        let scope = http_scope(&mut { parts }, ScopeOptions::default());
        assert_eq!(scope.http_version, HttpVersion::Http2);
        assert_eq!(scope.headers[HOST], "example.com:8443");
        assert_eq!(scope.headers.get_all(HOST).iter().count(), 1);
    }

    #[test]
    fn options_are_moved_into_both_scopes() {
        let client: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let options = || ScopeOptions {
            target: MountedTarget::Prefixed("/root".into()),
            secure: true,
            client: Some(client),
            server: Some(ServerAddr::Tcp("127.0.0.1:8000".parse().unwrap())),
            extensions: Extensions::from_static(&["http.response.trailers"]),
            ..ScopeOptions::default()
        };
        let http = http_scope(&mut head(http::Request::get("/")), options());
        assert_eq!(http.scheme, "https");
        assert_eq!(http.path, "/root/");
        assert_eq!(http.client, Some(client));
        assert!(http.extensions.supports("http.response.trailers"));
        let ws = websocket_scope(&mut head(http::Request::get("/chat")), options());
        assert_eq!(ws.scheme, "wss");
        assert_eq!(ws.path, "/root/chat");
        assert_eq!(ws.root_path, "/root");
        assert_eq!(ws.client, Some(client));
        assert!(ws.server.is_some());
    }
}
