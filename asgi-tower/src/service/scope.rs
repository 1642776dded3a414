//! The scope of a request that reached an [`AsgiService`](crate::AsgiService) through tower:
//! where it is mounted (axum's `NestedPath` / `OriginalUri`), and who sent it
//! (`ConnectInfo`). The scope itself is built by `asgi_http::scope`, as the server's is.

use std::net::SocketAddr;

use asgi_core::extensions::{HTTP_RESPONSE_PATHSEND, HTTP_RESPONSE_TRAILERS};
use asgi_core::{Extensions, HttpScope, WebSocketScope};
use asgi_http::path::Target;
use asgi_http::scope::{MountedTarget, ScopeOptions};
use http::request::Parts;

use super::ServiceConfig;

/// The ASGI extensions an [`AsgiService`](crate::AsgiService) HTTP scope declares.
const SUPPORTED_EXTENSIONS: [&str; 2] = [HTTP_RESPONSE_TRAILERS, HTTP_RESPONSE_PATHSEND];

pub(crate) fn http_scope(parts: &mut Parts, config: &ServiceConfig) -> Box<HttpScope> {
    let client = client(&parts.extensions);
    let options = options(
        mount(parts),
        client,
        config,
        Extensions::from_static(&SUPPORTED_EXTENSIONS),
    );
    asgi_http::scope::http_scope(parts, options)
}

pub(crate) fn websocket_scope(mut parts: Parts, config: &ServiceConfig) -> Box<WebSocketScope> {
    let client = client(&parts.extensions);
    let options = options(mount(&parts), client, config, Extensions::default());
    asgi_http::scope::websocket_scope(&mut parts, options)
}

fn options(
    target: MountedTarget<'static>,
    client: Option<SocketAddr>,
    config: &ServiceConfig,
    extensions: Extensions,
) -> ScopeOptions<'static> {
    ScopeOptions {
        target,
        // A tower host does not say whether its connection is encrypted.
        secure: false,
        client,
        server: config.server.clone(),
        extensions,
        state: config.state.clone(),
        shutdown: config.shutdown.clone(),
    }
}

fn client(extensions: &http::Extensions) -> Option<SocketAddr> {
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0);
    }
    extensions.get::<SocketAddr>().copied()
}

/// A router that nests a service strips the prefix from the URI the service sees; ASGI
/// keeps `path` whole and names the prefix in `root_path`. Both come from `OriginalUri`
/// (the URI before any nesting) when it ends with the URI seen here, else from `NestedPath`
/// (the prefix) and the URI.
#[cfg(feature = "axum")]
fn mount(parts: &Parts) -> MountedTarget<'static> {
    use asgi_http::path::split_target;
    use http::uri::PathAndQuery;

    fn split(uri: &http::Uri) -> Target {
        split_target(
            uri.path_and_query()
                .map_or("/", PathAndQuery::as_str)
                .as_bytes(),
        )
    }

    if let Some(original) = parts.extensions.get::<axum::extract::OriginalUri>() {
        if original.0.path() == parts.uri.path() {
            // Not nested (`route_service`, `fallback_service`): the common case, split once.
            return MountedTarget::Prefixed("".into());
        }
        let seen = split(&parts.uri);
        let full = split(&original.0);
        // A nested service sees `/` for both `/prefix` and `/prefix/`.
        let root = if seen.path == "/" {
            Some(full.path.strip_suffix('/').unwrap_or(&full.path))
        } else {
            full.path.strip_suffix(seen.path.as_str())
        };
        if let Some(root) = root {
            let root = root.to_owned();
            return MountedTarget::Whole {
                target: full,
                root_path: root,
            };
        }
    }
    if let Some(nested) = parts.extensions.get::<axum::extract::NestedPath>() {
        let root = nested.as_str().trim_end_matches('/');
        if !root.is_empty() {
            return MountedTarget::Prefixed(root.to_owned().into());
        }
    }
    MountedTarget::Prefixed("".into())
}

#[cfg(not(feature = "axum"))]
fn mount(_: &Parts) -> MountedTarget<'static> {
    MountedTarget::Prefixed("".into())
}
