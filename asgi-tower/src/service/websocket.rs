//! WebSocket requests through an [`AsgiService`](crate::AsgiService): validated and run by
//! `asgi-ws` over the connection hyper hands over after the `101`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use asgi_core::App;
use asgi_ws::handshake::UpgradeRequest;
use asgi_ws::{Accepted, HandshakeOutcome};
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::body::AppBody;
use super::scope::websocket_scope;
use super::{ServiceConfig, plain};

pub(crate) type UpgradeFuture = Pin<Box<dyn Future<Output = Response<AppBody>> + Send>>;

/// True for a WebSocket handshake: an HTTP/1.1 `Upgrade: websocket`, or an HTTP/2 extended
/// `CONNECT` with `:protocol websocket` (RFC 8441).
pub(crate) fn is_handshake<B>(request: &Request<B>) -> bool {
    if request.version() == Version::HTTP_2 {
        request.method() == Method::CONNECT
            && request
                .extensions()
                .get::<hyper::ext::Protocol>()
                .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"))
    } else {
        asgi_ws::handshake::is_websocket_upgrade(request.headers())
    }
}

/// Answers a handshake with the app's answer to `websocket.connect`, and runs an accepted
/// WebSocket in a task of its own once hyper hands over the connection.
pub(crate) fn handshake<A: App, B>(
    app: Arc<A>,
    mut request: Request<B>,
    config: &Arc<ServiceConfig>,
) -> UpgradeFuture {
    let on_upgrade = request.extensions_mut().remove::<OnUpgrade>();
    let (parts, _body) = request.into_parts();
    let http2 = parts.version == Version::HTTP_2;
    let validated = if http2 {
        UpgradeRequest::extended_connect(&parts.headers)
    } else {
        UpgradeRequest::from_parts(&parts)
    };
    let upgrade = match validated {
        Ok(upgrade) => upgrade,
        Err(e) => {
            tracing::info!(path = parts.uri.path(), error = %e, "invalid WebSocket handshake");
            let mut response = plain(e.status(), format!("{e}\n"));
            let headers = response.headers_mut();
            headers.extend(e.response_headers());
            return Box::pin(std::future::ready(response));
        }
    };
    let Some(on_upgrade) = on_upgrade else {
        // A host without upgrades (hyper without `with_upgrades`, a test harness): there is
        // no connection to hand to the WebSocket.
        return Box::pin(std::future::ready(plain(
            StatusCode::NOT_IMPLEMENTED,
            "WebSocket upgrades are not available on this connection\n",
        )));
    };
    let path = parts.uri.path().to_owned();
    let scope = websocket_scope(parts, config);
    // Under a tower host there is no server to own the app's task: it runs on the runtime,
    // and ends with its socket.
    let outcome = asgi_ws::start(app, scope, &upgrade, &config.websocket, |run| {
        drop(tokio::spawn(run));
    });
    let config = config.clone();
    Box::pin(async move {
        match outcome.await {
            HandshakeOutcome::Accept(accepted) => {
                let mut response = Response::new(AppBody::full(bytes::Bytes::new()));
                *response.status_mut() = if http2 {
                    StatusCode::OK
                } else {
                    StatusCode::SWITCHING_PROTOCOLS
                };
                *response.headers_mut() = accepted.response_headers().clone();
                tokio::spawn(run(on_upgrade, accepted, config, path));
                response
            }
            HandshakeOutcome::Close { .. } => plain(StatusCode::FORBIDDEN, ""),
            HandshakeOutcome::Deny(denial) => {
                let mut response = Response::new(AppBody::denial(denial.body));
                *response.status_mut() = denial.status;
                *response.headers_mut() = denial.headers;
                response
            }
            // `Failed` (logged by `asgi_ws::start`): the app failed, panicked or did not answer.
            _ => plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n"),
        }
    })
}

async fn run(on_upgrade: OnUpgrade, accepted: Accepted, config: Arc<ServiceConfig>, path: String) {
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(e) => {
            // Dropping `accepted` gives the app its `websocket.disconnect` (1006).
            tracing::debug!(path, error = %e, "the client left during the WebSocket upgrade");
            return;
        }
    };
    let shutdown = config.shutdown.clone();
    let closed = accepted
        .run(TokioIo::new(upgraded), async move { shutdown.wait().await })
        .await;
    tracing::debug!(
        path,
        code = closed.code,
        reason = closed.reason,
        "WebSocket closed"
    );
}

/// Content type of the plain-text answers.
pub(crate) fn text_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers
}
