//! The everyday middleware of Starlette and tower-http, as onion layers on the ASGI interface.
//!
//! Each one is an [`App`](asgi_core::App) that owns its inner app (`struct Cors<A> { inner:
//! A, .. }`), with a layer to apply it (`app.with(CorsLayer::new()..)`) and `new` /
//! `get_ref` / `into_inner`. Each passes the scope types it does not handle through
//! untouched, and none buffers a response or spawns a task: a streamed response stays
//! streamed, event by event, through all of them.
//!
//! | module | what it does | Starlette / tower-http counterpart |
//! | --- | --- | --- |
//! | [`cors`] | CORS answers and preflights | `CORSMiddleware` / `CorsLayer` |
//! | [`compression`] | gzip, br and zstd responses, flushed per body event; request decompression | `GZipMiddleware` / `CompressionLayer`, `RequestDecompressionLayer` |
//! | [`trusted_host`] | `Host` checked against a list, optional `www.` redirect | `TrustedHostMiddleware` |
//! | [`https_redirect`] | `http` to `https`, `ws` to `wss` | `HTTPSRedirectMiddleware` |
//! | [`request_id`] | an `x-request-id` per request, in the scope and the response | `SetRequestIdLayer` + `PropagateRequestIdLayer` |
//! | [`timeout`] | `504` when the response did not start in time | `TimeoutLayer` |
//! | [`body_limit`] | `413` for request bodies over a limit, as the app's answer (so CORS headers are on it) | `RequestBodyLimitLayer` |
//! | [`concurrency_limit`] | `503` + `Retry-After` beyond N requests in flight | uvicorn's `--limit-concurrency` |
//! | [`sessions`] | signed-cookie sessions as a typed map in the scope | `SessionMiddleware` |
//! | [`static_files`] | a directory served with ETags, ranges and precompressed files | `StaticFiles` / `ServeDir` |
//! | [`proxy_headers`] | the client address and scheme forwarded by a trusted reverse proxy | uvicorn's `--proxy-headers` / `ProxyHeadersMiddleware` |
//!
//! # Why they live in `asgi-http`
//!
//! They use only the interface of `asgi-core`, so a crate of their own would have been
//! possible. They live here because the server itself switches on the proxy-headers
//! middleware (which must sit beside them and share their conventions), and because
//! [`static_files`] answers with this crate's [`Response`](crate::response::Response) and
//! `http.response.pathsend` helpers. The codecs, the cookie signing and the content-type
//! table are the heavy parts: they sit behind the default-on cargo features `compression`,
//! `sessions` and `static-files`, so a server built with `default-features = false` carries
//! none of them.
//!
//! # Order
//!
//! [`AppExt::with`](asgi_core::AppExt::with) adds each layer outside the ones before it.
//! A stack that works, innermost first (the `api` example uses it):
//!
//! ```text
//! router
//!   .with(SessionLayer)         // innermost: the app reads and writes the session
//!   .with(BodyLimitLayer)       // 413 for bodies over the limit, inside CORS
//!   .with(TimeoutLayer)         // 504 when the app does not start in time
//!   .with(CompressionLayer)     // compresses what the app (and the session) produced
//!   .with(CorsLayer)            // CORS headers on every answer, preflights answered early
//!   .with(RequestIdLayer)       // the id is on every answer, even a rejection below
//!   .with(TrustedHostLayer)     // outermost: a wrong Host never reaches anything
//! ```
//!
//! Put [`concurrency_limit`] and [`https_redirect`] outermost too: they answer without
//! calling the app.

use asgi_core::http::{HeaderMap, HeaderValue, StatusCode, header};
use asgi_core::{Error, Scope, SendEvent, Sender};

pub mod body_limit;
pub mod concurrency_limit;
pub mod cors;
pub mod https_redirect;
pub mod proxy_headers;
pub mod request_id;
pub mod timeout;
pub mod trusted_host;

#[cfg(feature = "compression")]
pub mod compression;
#[cfg(feature = "sessions")]
pub mod sessions;
#[cfg(feature = "static-files")]
pub mod static_files;

/// Answers `scope` without the inner app: a plain-text HTTP response, or for a WebSocket a
/// denial response when the server supports `websocket.http.response`, else
/// `websocket.close` (which the server turns into `403`), as Starlette does.
pub(crate) async fn reject(
    scope: &Scope,
    send: &mut Sender,
    status: StatusCode,
    mut headers: HeaderMap,
    body: &'static str,
) -> Result<(), Error> {
    if !body.is_empty() {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    match scope {
        Scope::WebSocket(ws) => {
            if ws
                .extensions
                .supports(asgi_core::extensions::WEBSOCKET_HTTP_RESPONSE)
            {
                send.send(SendEvent::WebSocketHttpResponseStart { status, headers })
                    .await?;
                send.send(SendEvent::WebSocketHttpResponseBody {
                    body: body.into(),
                    more_body: false,
                })
                .await?;
            } else {
                send.send(SendEvent::WebSocketClose {
                    code: asgi_core::event::CLOSE_NORMAL,
                    reason: String::new(),
                })
                .await?;
            }
        }
        _ => {
            headers.insert(
                header::CONTENT_LENGTH,
                crate::response::content_length(body.len() as u64),
            );
            send.send(SendEvent::response_start(status, headers))
                .await?;
            send.send(SendEvent::response_body(body, false)).await?;
        }
    }
    Ok(())
}

/// Adds `value` to the response's `Vary` header unless it is already named there (or the
/// header says `*`).
pub(crate) fn add_vary(headers: &mut HeaderMap, value: &'static str) {
    let present = headers.get_all(header::VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .map(str::trim)
                .any(|name| name == "*" || name.eq_ignore_ascii_case(value))
        })
    });
    if !present {
        headers.append(header::VARY, HeaderValue::from_static(value));
    }
}

/// The host name of a `Host` header value, without its port (`[::1]:80` gives `[::1]`).
pub(crate) fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}
