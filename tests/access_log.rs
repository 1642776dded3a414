//! The access log line, read from a captured `tracing` subscriber: the client is the one the
//! proxy headers resolved, and the request id ends the line.
//!
//! These tests have a binary of their own: every test in it installs the capturing
//! subscriber, so no test without one can leave the log's call sites marked uninteresting
//! (tracing caches that per call site, process-wide).

mod common;

use std::time::Duration;

use asgi::core::{AppExt, Error, Receiver, Scope, Sender};
use asgi::server::middleware::request_id::RequestIdLayer;
use asgi::server::response::Response;
use asgi::tower::TowerApp;
use axum::body::{Body as AxumBody, Bytes};
use axum::routing::get;
use common::*;
use http::{Request, StatusCode};

const FORWARDED_TO_HTTPS: &[(&str, &str)] = &[
    ("x-forwarded-for", "6.6.6.6, 203.0.113.9"),
    ("x-forwarded-proto", "https"),
];

async fn get_with(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = Request::get(path).header("host", "test");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(server.addr, request.body(empty()).unwrap()).await
}

async fn show(_: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
    Response::text("logged").send(&mut send).await
}

#[tokio::test]
async fn access_log_names_the_forwarded_client() {
    let (logs, _guard) = LogCapture::install();
    let server = start_testbed().await;
    let answer = get_with(&server, "/", FORWARDED_TO_HTTPS).await;
    assert_eq!(answer.status, 200);
    server.stop().await.unwrap();
    let line = logs
        .text()
        .lines()
        .find(|line| line.contains("asgi_http::access"))
        .map(str::to_owned)
        .expect("an access log line");
    assert!(line.contains("203.0.113.9:0 - \"GET /"), "{line}");
}

#[tokio::test]
async fn the_access_log_line_names_the_request_id() {
    let (logs, _guard) = common::LogCapture::install();
    let server = common::start(show.with(RequestIdLayer::new()), |b| b).await;
    let request = http::Request::get("/logged")
        .header("host", "test")
        .header("x-request-id", "log-me-7")
        .body(common::empty())
        .unwrap();
    let answer = common::send(server.addr, request).await;
    assert_eq!(answer.status, 200);
    server.stop().await.unwrap();
    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("GET /logged"))
        .unwrap_or_else(|| panic!("no access log line in {text}"));
    assert!(line.contains("id=log-me-7"), "{line}");
}

/// An axum router served at the root takes the server's direct path (no scope): its
/// requests are logged as any app's.
#[tokio::test]
async fn access_log_has_a_line_for_each_request_served_at_the_root_whole_streamed_or_aborted() {
    let (logs, _guard) = LogCapture::install();
    let failing = axum::Router::new().route(
        "/failing",
        get(|| async {
            // The error comes after a pause, so that the head and the first part are out.
            let frames = futures_util::stream::unfold(0, |i| async move {
                match i {
                    0 => Some((Ok(Bytes::from("part")), 1)),
                    1 => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Some((Err(std::io::Error::other("the body broke")), 2))
                    }
                    _ => None,
                }
            });
            AxumBody::from_stream(frames)
        }),
    );
    let streamed = axum::Router::new().route(
        "/streamed",
        get(|| async {
            let frames = futures_util::stream::iter([
                Ok::<_, std::io::Error>(Bytes::from("pay")),
                Ok(Bytes::from("load")),
            ]);
            AxumBody::from_stream(frames)
        }),
    );
    let whole = axum::Router::new().route("/whole", get(|| async { "a whole body" }));
    let app = TowerApp::new(whole.merge(streamed).merge(failing));
    let server = start(app, |b| b.access_log(true)).await;
    let answer = fetch(server.addr, "/whole?logged=1").await;
    assert_eq!(answer.status, StatusCode::OK);
    let streamed = fetch(server.addr, "/streamed").await;
    assert_eq!(streamed.text(), "payload");
    let (mut h1, _conn) = common::h1(server.addr).await;
    let response = h1.send_request(common::get("/failing")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(common::read(response).await.is_err(), "an aborted body");
    server.stop().await.unwrap();
    let text = logs.text();
    let line = |target: &str| {
        text.lines()
            .find(|l| l.contains(target))
            .unwrap_or_else(|| panic!("no access log line for {target} in {text}"))
            .to_owned()
    };
    let whole = line("GET /whole?logged=1 HTTP/1.1");
    assert!(
        whole.contains(&format!("\" 200 {}B ", answer.body.len())),
        "{whole}"
    );
    let streamed = line("GET /streamed HTTP/1.1");
    assert!(streamed.contains("\" 200 7B "), "{streamed}");
    let aborted = line("GET /failing HTTP/1.1");
    assert!(aborted.contains("\" 200 aborted 4B "), "{aborted}");
}
