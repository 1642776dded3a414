//! The access log line, read from a captured `tracing` subscriber: the client is the one the
//! proxy headers resolved, and the request id ends the line.
//!
//! These tests have a binary of their own: every test in it installs the capturing
//! subscriber, so no test without one can leave the log's call sites marked uninteresting
//! (tracing caches that per call site, process-wide).

mod common;

use asgi::core::{AppExt, Error, Receiver, Scope, Sender};
use asgi::server::middleware::request_id::RequestIdLayer;
use asgi::server::response::Response;
use common::*;
use http::Request;

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
