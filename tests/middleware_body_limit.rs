//! BodyLimit: a body over the limit gets a 413 that is the app's answer, so it passes
//! through the middleware outside (CORS headers on it), over the real server: refused before
//! reading when `content-length` says so, cut as it streams otherwise.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use asgi::core::{AppExt, Error, Receiver, Scope, Sender};
use asgi::prelude::{HttpError, handler};
use asgi::server::middleware::body_limit::BodyLimitLayer;
use asgi::server::middleware::cors::CorsLayer;
use asgi::server::request::Request;
use asgi::server::response::Response;
use asgi::server::router::{Router, post};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::{PATIENCE, full, raw, send, start};

const ORIGIN: &str = "https://app.example";

/// Counts the body bytes it read, chunk by chunk, and echoes how many.
fn counting_app(read: Arc<AtomicUsize>) -> impl asgi::core::App {
    move |scope: Scope, receive: Receiver, mut send: Sender| {
        let read = read.clone();
        async move {
            let mut request = Request::from_scope(scope, receive)?;
            let mut total = 0;
            while let Some(chunk) = request.chunk().await? {
                total += chunk.len();
                read.fetch_add(chunk.len(), Ordering::SeqCst);
            }
            Response::text(format!("read {total}"))
                .send(&mut send)
                .await
        }
    }
}

fn cors() -> CorsLayer {
    CorsLayer::new().allow_origins([ORIGIN])
}

/// Reads from `stream` until the end of a response head and `body_len` body bytes.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buffer);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buffer.len() >= head_end + 4 + length {
                break;
            }
        }
    }
    String::from_utf8(buffer).unwrap()
}

#[tokio::test]
async fn content_length_over_the_limit_gets_413_with_cors_headers_before_reading() {
    let read = Arc::new(AtomicUsize::new(0));
    let app = counting_app(read.clone())
        .with(BodyLimitLayer::new(16))
        .with(cors());
    let server = start(app, |b| b).await;
    let answer = send(
        server.addr,
        http::Request::post("/")
            .header("host", "test")
            .header("origin", ORIGIN)
            .body(full("x".repeat(17)))
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.headers["access-control-allow-origin"], ORIGIN);
    assert_eq!(answer.text(), "Payload Too Large");
    assert_eq!(read.load(Ordering::SeqCst), 0, "the app read nothing");

    // At the limit, the app answers.
    let answer = send(
        server.addr,
        http::Request::post("/")
            .header("host", "test")
            .header("origin", ORIGIN)
            .body(full("x".repeat(16)))
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "read 16");
    assert_eq!(answer.headers["access-control-allow-origin"], ORIGIN);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn streamed_body_is_cut_when_it_passes_the_limit_with_cors_headers() {
    let read = Arc::new(AtomicUsize::new(0));
    let app = counting_app(read.clone())
        .with(BodyLimitLayer::new(16))
        .with(cors());
    let server = start(app, |b| b).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // Ten-byte chunks, and the body never ends: the 413 must come from counting, not from
    // a body read whole.
    stream
        .write_all(
            format!(
                "POST / HTTP/1.1\r\nHost: test\r\nOrigin: {ORIGIN}\r\n\
                 Transfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(b"a\r\n0123456789\r\n").await.unwrap();
    let response = tokio::time::timeout(PATIENCE, read_response(&mut stream))
        .await
        .expect("the 413 comes while the body is still open");
    assert!(
        response.starts_with("HTTP/1.1 413 Payload Too Large"),
        "{response}"
    );
    assert!(
        response.contains(&format!("access-control-allow-origin: {ORIGIN}")),
        "{response}"
    );
    assert!(response.ends_with("Payload Too Large"), "{response}");
    // The first chunk reached the app, the one that passed the limit did not.
    assert_eq!(read.load(Ordering::SeqCst), 10);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn streamed_body_within_the_limit_reaches_the_app_whole() {
    let read = Arc::new(AtomicUsize::new(0));
    let app = counting_app(read.clone()).with(BodyLimitLayer::new(16));
    let server = start(app, |b| b).await;
    let response = raw(
        server.addr,
        b"POST / HTTP/1.1\r\nHost: test\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n\
          8\r\n01234567\r\n8\r\n01234567\r\n0\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.ends_with("read 16"), "{response}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn per_route_body_limit_answers_413_through_cors() {
    async fn upload(mut request: Request) -> Result<Response, HttpError> {
        let body = request.body(8).await?;
        Ok(Response::text(format!("got {}", body.len())))
    }
    let app = Router::new().route("/upload", post(upload)).with(cors());
    let server = start(app, |b| b).await;
    let answer = send(
        server.addr,
        http::Request::post("/upload")
            .header("host", "test")
            .header("origin", ORIGIN)
            .body(full("0123456789"))
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.headers["access-control-allow-origin"], ORIGIN);
    assert_eq!(
        answer.json()["error"],
        "the request body is larger than the limit of 8 bytes"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn server_limit_refusal_skips_the_middleware_stack() {
    // The documented contrast: the server's own 413 never reaches the app, nor CORS.
    let app = handler(|_: Request| async { Response::text("unreachable") }).with(cors());
    let server = start(app, |b| b.max_request_body(Some(4))).await;
    let answer = send(
        server.addr,
        http::Request::post("/")
            .header("host", "test")
            .header("origin", ORIGIN)
            .body(full("0123456789"))
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 413);
    assert!(answer.headers.get("access-control-allow-origin").is_none());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn body_over_the_limit_after_the_response_started_aborts_it() {
    // The app streams its answer while reading: a 413 is too late, so the response is cut.
    let app = (|scope: Scope, receive: Receiver, mut send: Sender| async move {
        let mut request = Request::from_scope(scope, receive)?;
        use asgi::core::SendEvent;
        send.send(SendEvent::response_start(
            http::StatusCode::OK,
            http::HeaderMap::new(),
        ))
        .await?;
        while let Some(chunk) = request.chunk().await? {
            send.send(SendEvent::response_body(chunk, true)).await?;
        }
        send.send(SendEvent::response_body("", false)).await?;
        Ok::<(), Error>(())
    })
    .with(BodyLimitLayer::new(8));
    let server = start(app, |b| b).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n\
              6\r\nabcdef\r\n6\r\nghijkl\r\n",
        )
        .await
        .unwrap();
    let response = tokio::time::timeout(PATIENCE, common::read_to_close(&mut stream))
        .await
        .expect("the connection is closed");
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.contains("abcdef"), "{response}");
    assert!(!response.contains("ghijkl"), "{response}");
    // The chunked body never ends with its last chunk: the client can tell.
    assert!(!response.ends_with("0\r\n\r\n"), "{response}");
    server.stop().await.unwrap();
}
