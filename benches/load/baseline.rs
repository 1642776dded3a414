//! The baselines: a bare hyper server, an axum server and a bare tokio-tungstenite echo
//! server, each doing the least a server can do for the same routes as the testbed.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::BoxResult;

/// The chunk size of streamed responses, the same as the testbed's `/bytes`.
const CHUNK: usize = 64 * 1024;

pub(crate) fn serve(kind: &str, addr: SocketAddr) -> BoxResult<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(addr).await?;
        // SIGTERM ends the process normally, as it does the project's server, so that a
        // server run under callgrind writes its counts.
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let serve = async move {
            match kind {
                "hyper" => serve_hyper(listener).await,
                "axum" => serve_axum(listener).await,
                "tungstenite" => serve_tungstenite(listener).await,
                "asgi-raw" => serve_asgi_raw(listener).await,
                other => Err(format!("unknown baseline {other:?}").into()),
            }
        };
        tokio::select! {
            result = serve => result,
            _ = terminate.recv() => Ok(()),
        }
    })
}

/// The project's server with a hello written as a raw `(scope, receive, send)` app: the
/// server's own cost, without a request handler's `Request` and `Response`. Logging as the
/// examples set it up (`logging::init`, `RUST_LOG` from the harness).
async fn serve_asgi_raw(listener: TcpListener) -> BoxResult<()> {
    let _logging = asgi::server::logging::init();
    asgi::server::Server::builder()
        .listener(listener)
        .handle_signals(false)
        .serve(raw_hello)
        .await?;
    Ok(())
}

async fn raw_hello(
    scope: asgi::core::Scope,
    _receive: asgi::core::Receiver,
    mut send: asgi::core::Sender,
) -> Result<(), asgi::core::Error> {
    use asgi::core::http::header::{CONTENT_TYPE, HeaderValue};
    use asgi::core::http::{HeaderMap, StatusCode};
    use asgi::core::{Scope, SendEvent};
    // The lifespan scope: returning means no lifespan support.
    let Scope::Http(scope) = scope else {
        return Ok(());
    };
    let (status, body) = if scope.path == "/" {
        (StatusCode::OK, "Hello, world!")
    } else {
        (StatusCode::NOT_FOUND, "Not Found")
    };
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    send.send(SendEvent::response_start(status, headers))
        .await?;
    send.send(SendEvent::response_body(body, false)).await?;
    Ok(())
}

type Body = BoxBody<Bytes, Infallible>;

async fn hyper_route(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    if path == "/" {
        return Ok(Response::builder()
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from_static(b"Hello, world!")).boxed())
            .unwrap_or_default());
    }
    if let Some(n) = path
        .strip_prefix("/bytes/")
        .and_then(|n| n.parse::<u64>().ok())
    {
        let chunk = Bytes::from(vec![b'x'; CHUNK]);
        let stream = futures_util::stream::unfold(n, move |left| {
            let chunk = chunk.clone();
            async move {
                if left == 0 {
                    return None;
                }
                let take = left.min(CHUNK as u64);
                Some((
                    Ok::<_, Infallible>(Frame::data(chunk.slice(..take as usize))),
                    left - take,
                ))
            }
        });
        return Ok(Response::new(BodyExt::boxed(StreamBody::new(stream))));
    }
    if path == "/upload" {
        let mut body = req.into_body();
        let mut total = 0u64;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => total += frame.data_ref().map_or(0, |d| d.len() as u64),
                Err(_) => break,
            }
        }
        return Ok(Response::new(
            Full::new(Bytes::from(format!("{{\"bytes\": {total}}}"))).boxed(),
        ));
    }
    Ok(Response::builder()
        .status(404)
        .body(Full::new(Bytes::new()).boxed())
        .unwrap_or_default())
}

async fn serve_hyper(listener: TcpListener) -> BoxResult<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let _ = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service_fn(hyper_route))
                .await;
        });
    }
}

async fn serve_axum(listener: TcpListener) -> BoxResult<()> {
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(|| async { ([("content-type", "text/plain")], "Hello, world!") }),
    );
    axum::serve(listener, app).await?;
    Ok(())
}

async fn serve_tungstenite(listener: TcpListener) -> BoxResult<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            let (mut tx, mut rx) = ws.split();
            while let Some(Ok(message)) = rx.next().await {
                if message.is_text() || message.is_binary() {
                    if tx.send(message).await.is_err() {
                        break;
                    }
                } else if message.is_close() {
                    break;
                }
            }
        });
    }
}
