//! WSGI bodies through the real server: `wsgi.input` ends where the request body ends, the
//! echo streams both ways, uploads and downloads stream, `write()` data goes first, and the
//! headers go out with the first non-empty chunk.

mod common;
mod wsgi_common;

use std::time::Duration;

use asgi::wsgi::{Body, BoxError, Environ, StartResponse, WsgiToAsgi};
use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use http_body_util::channel::Channel;
use serde_json::json;
use wsgi_common::Gate;

/// How long a test watches for a response head that must not have come yet. Short: the
/// check can only miss a head that comes late, never fail a correct server.
const NOT_YET: Duration = Duration::from_millis(200);

#[tokio::test]
async fn hello_is_served_under_the_mount() {
    let server = start_testbed().await;
    let answer = fetch(server.addr, "/wsgi/hello").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(answer.text(), "Hello, world!");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn input_ends_at_content_length_on_an_open_connection() {
    let server = start_testbed().await;
    // The body, then at once a second request on the same connection: the app's reads end
    // at Content-Length, and the next bytes are the next request.
    let response = raw(
        server.addr,
        b"POST /wsgi/environ/cl HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello\
          GET /wsgi/hello HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(
        response.matches("HTTP/1.1 200 OK\r\n").count(),
        2,
        "{response}"
    );
    assert!(response.contains(r#""body":"hello""#), "{response}");
    assert!(response.contains(r#""CONTENT_LENGTH":"5""#), "{response}");
    assert!(response.ends_with("Hello, world!"), "{response}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn input_ends_at_the_end_of_a_chunked_body() {
    let server = start_testbed().await;
    let response = raw(
        server.addr,
        b"POST /wsgi/environ/chunked HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n\
          GET /wsgi/hello HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(
        response.matches("HTTP/1.1 200 OK\r\n").count(),
        2,
        "{response}"
    );
    assert!(response.contains(r#""body":"hello world""#), "{response}");
    assert!(!response.contains("CONTENT_LENGTH"), "{response}");
    assert!(response.ends_with("Hello, world!"), "{response}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn echo_sends_each_chunk_back_before_the_upload_ends() {
    let server = start_testbed().await;
    let (mut tx, body) = Channel::<Bytes>::new(1);
    let request = Request::post("/wsgi/echo")
        .header("host", "test")
        .body(body.boxed())
        .unwrap();
    let (mut sender, _conn) = h1(server.addr).await;
    let response = tokio::spawn(async move { sender.send_request(request).await });

    tx.send_data(Bytes::from_static(b"one")).await.unwrap();
    let response = tokio::time::timeout(PATIENCE, response)
        .await
        .expect("the head comes with the first echoed chunk")
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    for chunk in ["one", "two", "three"] {
        if chunk != "one" {
            tx.send_data(Bytes::from(chunk)).await.unwrap();
        }
        // The upload is still open: each chunk comes back before the next one is sent.
        let frame = tokio::time::timeout(PATIENCE, body.frame())
            .await
            .expect("the chunk comes back while the upload is open")
            .unwrap()
            .unwrap();
        assert_eq!(frame.into_data().unwrap(), chunk);
    }
    drop(tx);
    let rest = body.collect().await.unwrap().to_bytes();
    assert!(rest.is_empty());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn echo_streams_both_ways_over_http2() {
    let server = start_testbed().await;
    let mut sender = h2(server.addr).await;
    let (mut tx, body) = Channel::<Bytes>::new(1);
    let request = Request::post(format!("http://{}/wsgi/echo", server.addr))
        .body(body.boxed())
        .unwrap();
    tx.send_data(Bytes::from_static(b"ping")).await.unwrap();
    let response = sender.send_request(request).await.unwrap();
    let mut body = response.into_body();
    let frame = body.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "ping");
    tx.send_data(Bytes::from_static(b"pong")).await.unwrap();
    let frame = body.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "pong");
    drop(tx);
    assert!(body.collect().await.unwrap().to_bytes().is_empty());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn upload_counts_a_body_with_a_length() {
    let server = start_testbed().await;
    let request = Request::post("/wsgi/upload")
        .header("host", "test")
        .body(full(vec![b'u'; 3 * 1024 * 1024]))
        .unwrap();
    let answer = send(server.addr, request).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-type"], "application/json");
    assert_eq!(answer.json(), json!({ "bytes": 3 * 1024 * 1024 }));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn upload_counts_a_chunked_body_sent_piece_by_piece() {
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: usize = 48;
    let server = start_testbed().await;
    let (mut tx, body) = Channel::<Bytes>::new(1);
    let request = Request::post("/wsgi/upload")
        .header("host", "test")
        .body(body.boxed())
        .unwrap();
    let (mut sender, _conn) = h1(server.addr).await;
    let response = tokio::spawn(async move { sender.send_request(request).await });
    let chunk = Bytes::from(vec![b'u'; CHUNK]);
    for _ in 0..CHUNKS {
        // More than the server and the adapter buffer: the app must read as it goes.
        tokio::time::timeout(PATIENCE, tx.send_data(chunk.clone()))
            .await
            .expect("the app keeps reading")
            .unwrap();
    }
    drop(tx);
    let response = tokio::time::timeout(PATIENCE, response)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let answer = read(response).await.unwrap();
    assert_eq!(answer.json(), json!({ "bytes": CHUNK * CHUNKS }));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn bytes_streams_n_bytes_with_their_length() {
    let server = start_testbed().await;
    let answer = fetch(server.addr, "/wsgi/bytes/200000").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-length"], "200000");
    assert_eq!(answer.body.len(), 200_000);
    assert!(answer.body.iter().all(|&b| b == b'x'));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn write_data_goes_out_before_the_iterators() {
    let app = WsgiToAsgi::new(
        |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            let write = start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
            write.write("written, ")?;
            write.write("written again, ")?;
            Ok(Body::from_chunks(["iterated, ", "iterated again"]))
        },
    );
    let server = start(app, |b| b).await;
    let answer = fetch(server.addr, "/").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.text(),
        "written, written again, iterated, iterated again"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn empty_chunk_does_not_send_the_headers() {
    let app = WsgiToAsgi::new(
        |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            start_response.call("200 OK", [("Content-Type", "text/html")], None)?;
            let mut step = 0;
            Ok(Body::try_from_chunks(std::iter::from_fn(move || {
                step += 1;
                match step {
                    1 => Some(Ok(Bytes::new())),
                    2 => {
                        // Still possible only because the empty chunk sent nothing.
                        let failure: BoxError = "rendering failed".into();
                        Some(
                            start_response
                                .call(
                                    "500 Internal Server Error",
                                    [("Content-Type", "text/plain")],
                                    Some(failure),
                                )
                                .map(|_| Bytes::from_static(b"replaced")),
                        )
                    }
                    _ => None,
                }
            })))
        },
    );
    let server = start(app, |b| b).await;
    let answer = fetch(server.addr, "/").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.headers["content-type"], "text/plain");
    assert_eq!(answer.text(), "replaced");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn headers_go_out_with_the_first_non_empty_chunk() {
    let (reached_gate, app_at_gate) = Report::new();
    let first = Gate::default();
    let second = Gate::default();
    let app = {
        let (first, second) = (first.clone(), second.clone());
        WsgiToAsgi::new(
            move |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
                start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
                let (first, second) = (first.clone(), second.clone());
                let reached_gate = reached_gate.clone();
                let mut step = 0;
                Ok(Body::from_chunks(std::iter::from_fn(move || {
                    step += 1;
                    match step {
                        1 => Some(Bytes::new()),
                        2 => {
                            reached_gate.send(());
                            first.wait();
                            Some(Bytes::from_static(b"first"))
                        }
                        3 => {
                            second.wait();
                            Some(Bytes::from_static(b" second"))
                        }
                        _ => None,
                    }
                })))
            },
        )
    };
    let server = start(app, |b| b).await;
    let (mut sender, _conn) = h1(server.addr).await;
    let mut response = tokio::spawn(sender.send_request(get("/")));

    // The app yielded an empty chunk and waits: no head yet.
    tokio::time::timeout(PATIENCE, app_at_gate)
        .await
        .unwrap()
        .unwrap();
    let early = tokio::time::timeout(NOT_YET, &mut response).await;
    assert!(early.is_err(), "the head went out before any body data");

    // The first data: head and chunk arrive while the app still waits for the rest.
    first.open();
    let response = tokio::time::timeout(PATIENCE, response)
        .await
        .expect("the head comes with the first chunk")
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let frame = tokio::time::timeout(PATIENCE, body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(frame.into_data().unwrap(), "first");

    second.open();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, " second");
    server.stop().await.unwrap();
}
