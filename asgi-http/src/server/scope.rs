//! The HTTP and WebSocket scopes of a request: the connection's part of
//! [`ScopeOptions`], for the one scope builder ([`crate::scope`]).

use asgi_core::extensions::{HTTP_RESPONSE_PATHSEND, HTTP_RESPONSE_TRAILERS, TLS};
use asgi_core::{Extensions, HttpScope, WebSocketScope};
use http::request::Parts;

use super::shared::{ConnInfo, Shared};
use crate::scope::{MountedTarget, ScopeOptions};

/// The ASGI extensions every HTTP scope of this server declares.
const SUPPORTED_EXTENSIONS: [&str; 2] = [HTTP_RESPONSE_TRAILERS, HTTP_RESPONSE_PATHSEND];

/// The ASGI extensions every HTTP scope of a TLS connection declares: `tls` too, from a
/// static list, so that declaring it allocates nothing.
const SUPPORTED_EXTENSIONS_TLS: [&str; 3] = [HTTP_RESPONSE_TRAILERS, HTTP_RESPONSE_PATHSEND, TLS];

/// Builds the scope of a request from its head (the header map is moved, not copied).
pub(crate) fn http_scope(parts: &mut Parts, conn: &ConnInfo, shared: &Shared) -> Box<HttpScope> {
    let extensions = match &conn.peer.tls {
        None => Extensions::from_static(&SUPPORTED_EXTENSIONS),
        Some(tls) => {
            let mut extensions = Extensions::from_static(&SUPPORTED_EXTENSIONS_TLS);
            extensions.set_tls(tls.clone());
            extensions
        }
    };
    crate::scope::http_scope(parts, options(conn, shared, extensions))
}

/// The keys of an HTTP scope that come from the request head and the `root_path` setting:
/// what [`http_scope`] builds before it adds the connection's. Public, but hidden, for the
/// fuzz targets only: not part of the API.
#[doc(hidden)]
pub fn http_scope_from_head(mut parts: Parts, root_path: &str) -> Box<HttpScope> {
    let options = ScopeOptions {
        target: MountedTarget::Prefixed(root_path.into()),
        ..ScopeOptions::default()
    };
    crate::scope::http_scope(&mut parts, options)
}

/// Builds the scope of a WebSocket handshake from its head (the header map is moved, not
/// copied). `scheme` is `wss` over an encrypted connection, `ws` otherwise.
pub(crate) fn websocket_scope(
    mut parts: Parts,
    conn: &ConnInfo,
    shared: &Shared,
) -> Box<WebSocketScope> {
    let mut extensions = Extensions::default();
    if let Some(tls) = &conn.peer.tls {
        extensions.set_tls(tls.clone());
    }
    crate::scope::websocket_scope(&mut parts, options(conn, shared, extensions))
}

fn options<'a>(conn: &ConnInfo, shared: &'a Shared, extensions: Extensions) -> ScopeOptions<'a> {
    ScopeOptions {
        target: MountedTarget::Prefixed(shared.config.root_path.as_str().into()),
        secure: conn.peer.secure,
        client: conn.peer.client,
        server: Some(conn.server.clone()),
        extensions,
        state: shared.state.clone(),
        shutdown: shared.scope_shutdown.signal(),
    }
}
