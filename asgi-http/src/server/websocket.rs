//! WebSocket upgrades: a handshake request is validated, its scope built, and the app's answer
//! to `websocket.connect` becomes the HTTP response; an accepted connection then runs in a
//! task of the server's connections, and the app in a task of the server's app tasks, so
//! that a drain waits for both.
//!
//! | the app's answer | the response |
//! | --- | --- |
//! | `websocket.accept` | `101 Switching Protocols` with the accept headers (over HTTP/2, `200 OK`), then the WebSocket |
//! | `websocket.close` | `403 Forbidden` |
//! | `websocket.http.response.*` | the app's status, headers and body, verbatim |
//! | an error, a panic, no answer | `500 Internal Server Error` |
//!
//! A handshake is an HTTP/1.1 `GET` with `Upgrade: websocket`, or an HTTP/2 extended
//! `CONNECT` with `:protocol websocket` (RFC 8441; the server announces
//! `SETTINGS_ENABLE_CONNECT_PROTOCOL`). An invalid handshake (see [`asgi_ws::handshake`])
//! gets its `400` or `426` without the app being called.
//!
//! # Shutdown
//!
//! When the server starts draining, the scope's `shutdown` signal fires: an app may close its
//! WebSockets itself. Those still open at the drain deadline (or at a forced stop) get a close
//! frame with 1001 (going away), and the server waits for the client's answer for up to
//! [`WebSocketConfig::close_timeout`](asgi_ws::WebSocketConfig::close_timeout) before it
//! drops the connection (over HTTP/2, the connection carrying WebSocket streams waits as
//! long for them before it is dropped).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use asgi_ws::handshake::{HandshakeError, UpgradeRequest};
use asgi_ws::{Accepted, CloseInitiator, HandshakeOutcome};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::body::{ResponseBody, response, server_response};
use super::scope::websocket_scope;
use super::shared::{ConnInfo, Shared, WebSocketStreamGuard};
use crate::middleware::proxy_headers::Forwarding;

/// The future of a handshake's response: resolves once the app answered `websocket.connect`.
pub(crate) type HandshakeFuture = Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send>>;

/// What a WebSocket connection keeps alive while it is open, besides its socket.
pub(crate) struct Holds {
    /// The connection's place under `max_connections`: an upgraded connection still counts.
    pub(crate) permit: Option<Arc<OwnedSemaphorePermit>>,
    /// Over HTTP/2, the WebSocket's stream in its connection's count: the connection is not
    /// idle, and at the drain deadline it waits for the close handshake. `None` over
    /// HTTP/1, where the upgraded connection leaves hyper.
    pub(crate) stream: Option<WebSocketStreamGuard>,
}

/// The future of the answer to a handshake request: the app's answer, or, for an invalid
/// request, its error response. `app_calls` are the connection's app-call permits (HTTP/2):
/// the app is called once it holds one.
pub(crate) fn handshake(
    mut request: Request<Incoming>,
    conn: &ConnInfo,
    shared: &Arc<Shared>,
    holds: Holds,
    app_calls: Option<Arc<Semaphore>>,
    forwarding: Option<Forwarding>,
) -> HandshakeFuture {
    let on_upgrade = hyper::upgrade::on(&mut request);
    let (parts, _body) = request.into_parts();
    let http2 = parts.version == Version::HTTP_2;
    let validated = if http2 {
        // The caller checked `CONNECT` and `:protocol websocket`.
        UpgradeRequest::extended_connect(&parts.headers)
    } else {
        UpgradeRequest::from_parts(&parts)
    };
    let upgrade = match validated {
        Ok(upgrade) => upgrade,
        Err(e) => {
            tracing::info!(path = parts.uri.path(), error = %e, "invalid WebSocket handshake");
            return Box::pin(std::future::ready(invalid(&e)));
        }
    };
    let path = parts.uri.path().to_owned();
    let mut scope = websocket_scope(parts, conn, shared);
    if let Some(forwarding) = forwarding {
        forwarding.apply_websocket(&mut scope);
    }
    let shared = shared.clone();
    Box::pin(async move {
        // Over HTTP/2 the app call takes one of the connection's app-call permits, as an
        // HTTP request's does, and holds it until the app returns, even after the stream is
        // gone. Without one, the handshake waits; dropped meanwhile (the client reset the
        // stream), the app is never called.
        let permit = match app_calls {
            // The semaphore is never closed.
            Some(calls) => calls.acquire_owned().await.ok(),
            None => None,
        };
        // The app runs in a task the server tracks: the drain waits for it, and lifespan
        // shutdown starts only after it returned.
        let tasks = &shared.app_tasks;
        let outcome = asgi_ws::start(
            shared.app.clone(),
            scope,
            &upgrade,
            &shared.config.websocket,
            |run| {
                drop(tasks.spawn(async move {
                    run.await;
                    drop(permit);
                }));
            },
        );
        match outcome.await {
            HandshakeOutcome::Accept(accepted) => {
                let mut response = Response::new(ResponseBody::full(Bytes::new()));
                // RFC 8441: over HTTP/2 a `2xx` to the CONNECT opens the WebSocket.
                *response.status_mut() = if http2 {
                    StatusCode::OK
                } else {
                    StatusCode::SWITCHING_PROTOCOLS
                };
                *response.headers_mut() = accepted.response_headers().clone();
                shared
                    .connections
                    .spawn(run(on_upgrade, accepted, shared.clone(), path, holds));
                response
            }
            HandshakeOutcome::Close { code, .. } => {
                tracing::debug!(
                    path,
                    code,
                    "the app closed the WebSocket before accepting: answered 403"
                );
                server_response(StatusCode::FORBIDDEN, false)
            }
            HandshakeOutcome::Deny(denial) => response(
                denial.status,
                denial.headers,
                ResponseBody::denial(denial.body),
            ),
            // `Failed`: the app failed, panicked or did not answer (`asgi_ws::start` logged
            // why).
            _ => server_response(StatusCode::INTERNAL_SERVER_ERROR, false),
        }
    })
}

/// The answer to an invalid handshake: its status and headers, and the reason as the body.
fn invalid(error: &HandshakeError) -> Response<ResponseBody> {
    let mut headers = error.response_headers();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let body = ResponseBody::full(Bytes::from(format!("{error}\n")));
    response(error.status(), headers, body)
}

/// Runs an accepted WebSocket once hyper hands over the connection, until it closes or the
/// drain deadline closes it with 1001.
async fn run(
    on_upgrade: OnUpgrade,
    accepted: Accepted,
    shared: Arc<Shared>,
    path: String,
    holds: Holds,
) {
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(e) => {
            // Dropping `accepted` gives the app its `websocket.disconnect` (1006).
            tracing::debug!(path, error = %e, "the client left during the WebSocket upgrade");
            return;
        }
    };
    let deadline = shared.force_close.clone().cancelled_owned();
    let run = accepted.run(TokioIo::new(upgraded), deadline);
    let mut run = std::pin::pin!(run);
    // A forced stop (`shutdown_now`) drops the WebSocket without waiting for its close
    // handshake; the app's `recv` returns `websocket.disconnect` (1006). It is checked on
    // every wake-up (an atomic load, no lock): a forced stop also fires the drain deadline,
    // which wakes the connection.
    let closed = std::future::poll_fn(|cx| {
        if shared.immediate.is_cancelled() {
            return std::task::Poll::Ready(None);
        }
        run.as_mut().poll(cx).map(Some)
    })
    .await;
    let Some(closed) = closed else {
        tracing::debug!(path, "forced stop: WebSocket dropped");
        return;
    };
    let initiator = match closed.initiator {
        CloseInitiator::Client => "client",
        CloseInitiator::App => "app",
        CloseInitiator::Server => "server",
        _ => "unknown",
    };
    tracing::debug!(
        path,
        code = closed.code,
        reason = closed.reason,
        initiator,
        "WebSocket closed"
    );
    // Only now may another connection take this one's place.
    let Holds { permit, stream } = holds;
    drop((permit, stream));
}
