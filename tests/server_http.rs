//! The server speaks HTTP: versions, connections, Unix sockets, streaming both ways,
//! `Expect: 100-continue`, trailers, `pathsend`, and the scope it builds.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use asgi::core::{ReceiveEvent, SendError, SendEvent};
use asgi::prelude::Error;
use bytes::Bytes;
use common::*;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Notify;

#[tokio::test]
async fn hello_over_http1() {
    let server = start_testbed().await;
    let answer = fetch(server.addr, "/").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), "Hello, world!");
    assert_eq!(answer.headers["content-type"], "text/plain");
    assert_eq!(answer.headers["content-length"], "13");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn keep_alive_serves_two_requests_on_one_connection() {
    let server = start_testbed().await;
    let (mut sender, _conn) = h1(server.addr).await;
    let first = read(sender.send_request(get("/scope/1")).await.unwrap())
        .await
        .unwrap();
    let second = read(sender.send_request(get("/scope/2")).await.unwrap())
        .await
        .unwrap();
    assert_eq!(first.json()["path"], "/scope/1");
    assert_eq!(second.json()["path"], "/scope/2");
    // One connection: the same client port both times.
    assert_eq!(first.json()["client"], second.json()["client"]);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn http10_request_is_answered_and_the_connection_closed() {
    let server = start_testbed().await;
    // `raw` reads until the server closes the connection.
    let response = raw(server.addr, b"GET /scope/old HTTP/1.0\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.0 200 OK\r\n"), "{response}");
    let body = &response[response.find("\r\n\r\n").unwrap() + 4..];
    let scope: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(scope["http_version"], "1.0");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn h2c_with_prior_knowledge_is_served() {
    let server = start_testbed().await;
    let mut sender = h2(server.addr).await;
    let request = Request::get(format!("http://{}/scope/h2", server.addr))
        .body(empty())
        .unwrap();
    let answer = read(sender.send_request(request).await.unwrap())
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    let scope = answer.json();
    assert_eq!(scope["http_version"], "2");
    assert_eq!(scope["path"], "/scope/h2");
    // `:authority` becomes the `host` header, as ASGI asks.
    let headers = scope["headers"].as_array().unwrap();
    assert!(headers.contains(&json!(["host", server.addr.to_string()])));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn unix_socket_is_served_with_its_path_as_server() {
    let path = temp_path("serve.sock");
    let _ = std::fs::remove_file(&path);
    let server = asgi::http::Server::builder()
        .unix_socket(&path)
        .handle_signals(false)
        .build(testbed::Testbed::new(false));
    let handle = server.handle();
    let task = tokio::spawn(server.serve());
    let listening = handle.listening().await.unwrap();
    assert_eq!(listening, asgi::core::ServerAddr::Unix(path.clone()));

    let stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let answer = read(sender.send_request(get("/scope/uds")).await.unwrap())
        .await
        .unwrap();
    let scope = answer.json();
    assert_eq!(scope["server"], json!([path.to_str().unwrap(), null]));
    assert_eq!(scope["client"], json!(null));

    handle.shutdown();
    task.await.unwrap().unwrap();
    assert!(!path.exists(), "the socket file is removed on shutdown");
}

#[tokio::test]
async fn stale_unix_socket_file_is_replaced() {
    let path = temp_path("stale.sock");
    let _ = std::fs::remove_file(&path);
    // A socket file whose listener is gone, as a crashed server leaves it.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());

    let server = asgi::http::Server::builder()
        .unix_socket(&path)
        .handle_signals(false)
        .build(testbed::Testbed::new(false));
    let handle = server.handle();
    let task = tokio::spawn(server.serve());
    assert!(handle.listening().await.is_some());
    assert!(tokio::net::UnixStream::connect(&path).await.is_ok());
    handle.shutdown();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn live_unix_socket_is_not_taken_over() {
    let path = temp_path("live.sock");
    let _ = std::fs::remove_file(&path);
    let _other_server = std::os::unix::net::UnixListener::bind(&path).unwrap();

    let result = asgi::http::Server::builder()
        .unix_socket(&path)
        .handle_signals(false)
        .serve(testbed::Testbed::new(false))
        .await;
    let err = result.unwrap_err();
    assert!(err.is_bind(), "{err}");
    assert!(path.exists(), "the live socket is left alone");
    std::fs::remove_file(&path).unwrap();
}

#[tokio::test]
async fn unix_socket_gets_the_configured_mode() {
    use std::os::unix::fs::PermissionsExt;

    let path = temp_path("mode.sock");
    let _ = std::fs::remove_file(&path);
    let server = asgi::http::Server::builder()
        .unix_socket(&path)
        .unix_socket_mode(Some(0o600))
        .handle_signals(false)
        .build(testbed::Testbed::new(false));
    let handle = server.handle();
    let task = tokio::spawn(server.serve());
    handle.listening().await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    handle.shutdown();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn request_body_streams_to_the_app_and_back_as_it_arrives() {
    let server = start_testbed().await;
    let (mut tx, body) = http_body_util::channel::Channel::<Bytes>::new(1);
    let request = Request::post("/echo")
        .header("host", "test")
        .body(body.boxed())
        .unwrap();
    let (mut sender, _conn) = h1(server.addr).await;
    let response = tokio::spawn(async move { sender.send_request(request).await });

    tx.send_data(Bytes::from_static(b"one")).await.unwrap();
    let response = response.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    // Each chunk comes back before the next one is sent: nothing waits for the whole body.
    let frame = body.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "one");
    tx.send_data(Bytes::from_static(b"two")).await.unwrap();
    let frame = body.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "two");
    drop(tx);
    let rest = body.collect().await.unwrap().to_bytes();
    assert!(rest.is_empty());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn large_body_streams_over_http2() {
    let server = start_testbed().await;
    let mut sender = h2(server.addr).await;
    let upload = Request::post(format!("http://{}/upload", server.addr))
        .body(full(vec![7u8; 3 * 1024 * 1024]))
        .unwrap();
    let answer = read(sender.send_request(upload).await.unwrap())
        .await
        .unwrap();
    assert_eq!(answer.json(), json!({ "bytes": 3 * 1024 * 1024 }));

    let download = Request::get(format!("http://{}/bytes/2000000", server.addr))
        .body(empty())
        .unwrap();
    let answer = read(sender.send_request(download).await.unwrap())
        .await
        .unwrap();
    assert_eq!(answer.body.len(), 2_000_000);
    assert!(answer.body.iter().all(|&b| b == b'x'));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn slow_client_backpressures_the_app() {
    const CHUNK: usize = 1024 * 1024;
    let sent = Arc::new(AtomicUsize::new(0));
    let (ended_tx, ended) = Report::new();
    let app = {
        let sent = sent.clone();
        http_only(move |_, _, mut send| {
            let sent = sent.clone();
            let ended_tx = ended_tx.clone();
            async move {
                let chunk = Bytes::from(vec![b'x'; CHUNK]);
                send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
                    .await?;
                let mut result = Ok(());
                for _ in 0..1000 {
                    if let Err(e) = send
                        .send(SendEvent::response_body(chunk.clone(), true))
                        .await
                    {
                        result = Err(e);
                        break;
                    }
                    sent.fetch_add(1, Ordering::SeqCst);
                }
                ended_tx.send(result.clone());
                result.map_err(Error::from)
            }
        })
    };
    let server = start(app, |b| b).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    // The client reads nothing: once the socket buffers, hyper's buffer and the channel are
    // full, the app's `send` waits.
    let mut last = usize::MAX;
    let stalled = eventually(async || {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = sent.load(Ordering::SeqCst);
        let same = now == last;
        last = now;
        same
    })
    .await;
    assert!(stalled, "the app kept sending");
    let buffered = sent.load(Ordering::SeqCst);
    assert!(
        buffered < 100,
        "{buffered} MiB were buffered for a client that reads nothing"
    );

    drop(stream);
    let result = tokio::time::timeout(PATIENCE, ended)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, Err(SendError::Disconnected));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn expect_continue_is_answered_when_the_app_reads() {
    let server = start_testbed().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\
              Expect: 100-continue\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let interim = read_for(&mut stream, Duration::from_secs(2)).await.unwrap();
    assert_eq!(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"hello").await.unwrap();
    let response = read_to_close(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with(r#"{"bytes":5}"#), "{response}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn expect_continue_waits_until_the_app_reads() {
    let go = Arc::new(Notify::new());
    let app = {
        let go = go.clone();
        http_only(move |_, mut receive, mut send| {
            let go = go.clone();
            async move {
                go.notified().await;
                let body = match receive.recv().await {
                    ReceiveEvent::HttpRequest { body, .. } => body,
                    _ => return Err(Error::disconnected()),
                };
                send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
                    .await?;
                send.send(SendEvent::response_body(body, false)).await?;
                Ok(())
            }
        })
    };
    let server = start(app, |b| b).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\n\
              Expect: 100-continue\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let early = read_for(&mut stream, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(early, "", "nothing is sent before the app reads");
    go.notify_one();
    let interim = read_for(&mut stream, Duration::from_secs(2)).await.unwrap();
    assert_eq!(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"ok").await.unwrap();
    let response = read_to_close(&mut stream).await;
    assert!(response.ends_with("\r\n\r\nok"), "{response}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn trailers_go_out_over_http1_when_the_request_accepts_them() {
    let server = start_testbed().await;
    let response = raw(
        server.addr,
        b"GET /trailers HTTP/1.1\r\nHost: test\r\nTE: trailers\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        response.contains("transfer-encoding: chunked\r\n"),
        "{response}"
    );
    let checksum = format!("x-checksum: {}", fnv1a(b"hello, trailers"));
    assert!(
        response.ends_with(&format!("\r\n0\r\n{checksum}\r\n\r\n")),
        "{response}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn trailers_are_dropped_over_http1_without_te_trailers() {
    let server = start_testbed().await;
    let response = raw(
        server.addr,
        b"GET /trailers HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(response.contains("hello, "), "{response}");
    assert!(response.contains("trailers"), "{response}");
    assert!(
        response.ends_with("\r\n0\r\n\r\n"),
        "the body ends normally: {response}"
    );
    assert!(!response.contains("x-checksum:"), "{response}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn trailers_go_out_over_http2() {
    let server = start_testbed().await;
    let mut sender = h2(server.addr).await;
    let request = Request::get(format!("http://{}/trailers", server.addr))
        .body(empty())
        .unwrap();
    let answer = read(sender.send_request(request).await.unwrap())
        .await
        .unwrap();
    assert_eq!(answer.text(), "hello, trailers");
    let trailers = answer.trailers.expect("trailers arrive");
    assert_eq!(
        trailers["x-checksum"],
        fnv1a(b"hello, trailers").to_string()
    );
    server.stop().await.unwrap();
}

/// The checksum the testbed's `/trailers` sends.
fn fnv1a(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5, |hash, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// An app that answers with `http.response.pathsend` of `path`, and reports what `send`
/// returned.
fn pathsend_app(
    path: std::path::PathBuf,
    report: Report<Result<(), SendError>>,
) -> impl asgi::core::App {
    http_only(move |_, _, mut send| {
        let path = path.clone();
        let report = report.clone();
        async move {
            send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
                .await?;
            let result = send.send(SendEvent::HttpResponsePathsend { path }).await;
            report.send(result.clone());
            result.map_err(Error::from)
        }
    })
}

#[tokio::test]
async fn pathsend_streams_the_file() {
    let path = temp_path("pathsend.bin");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    let (report, result) = Report::new();
    let server = start(pathsend_app(path.clone(), report), |b| b).await;
    let answer = fetch(server.addr, "/").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-length"], "300000");
    assert_eq!(&answer.body[..], &content[..]);
    assert_eq!(result.await.unwrap(), Ok(()));
    server.stop().await.unwrap();
    std::fs::remove_file(&path).unwrap();
}

#[tokio::test]
async fn pathsend_of_a_missing_file_gives_500_and_an_io_error_to_the_app() {
    let path = temp_path("does-not-exist.bin");
    let (report, result) = Report::new();
    let server = start(pathsend_app(path, report), |b| b).await;
    let answer = fetch(server.addr, "/").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    let err = result.await.unwrap().unwrap_err();
    // The file cannot be opened: an I/O error, not the app's protocol mistake.
    assert_eq!(err, SendError::Io(std::io::ErrorKind::NotFound));
    assert!(!asgi::core::Error::from(err).is_protocol());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn scope_path_is_percent_decoded_and_raw_parts_kept() {
    let server = start_testbed().await;
    let scope = fetch(server.addr, "/scope/caf%C3%A9%20x?q=%20y&z")
        .await
        .json();
    assert_eq!(scope["path"], "/scope/caf\u{e9} x");
    assert_eq!(scope["raw_path"], "/scope/caf%C3%A9%20x");
    assert_eq!(scope["query_string"], "q=%20y&z");
    assert_eq!(scope["root_path"], "");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn scope_path_with_invalid_utf8_gets_replacement_characters() {
    let server = start_testbed().await;
    let scope = fetch(server.addr, "/scope/%FF%FEok").await.json();
    assert_eq!(scope["path"], "/scope/\u{fffd}\u{fffd}ok");
    assert_eq!(scope["raw_path"], "/scope/%FF%FEok");
    // The server goes on serving.
    assert_eq!(fetch(server.addr, "/").await.status, StatusCode::OK);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn scope_keeps_repeated_headers_lowercase_and_in_order() {
    let server = start_testbed().await;
    let response = raw(
        server.addr,
        b"GET /scope/h HTTP/1.1\r\nHost: test\r\nX-Dup: first\r\nX-Other: 1\r\n\
          x-dup: second\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nConnection: close\r\n\r\n",
    )
    .await;
    let body = &response[response.find("\r\n\r\n").unwrap() + 4..];
    let scope: serde_json::Value = serde_json::from_str(body).unwrap();
    let headers = scope["headers"].as_array().unwrap();
    let values = |name: &str| -> Vec<&str> {
        headers
            .iter()
            .filter(|h| h[0] == name)
            .map(|h| h[1].as_str().unwrap())
            .collect()
    };
    assert_eq!(values("x-dup"), ["first", "second"]);
    assert_eq!(values("set-cookie"), ["a=1", "b=2"]);
    assert_eq!(values("x-other"), ["1"]);
    assert!(headers.iter().all(|h| {
        let name = h[0].as_str().unwrap();
        name == name.to_ascii_lowercase()
    }));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn scope_has_client_and_server_addresses() {
    let server = start_testbed().await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let local = stream.local_addr().unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let scope = read(sender.send_request(get("/scope/addr")).await.unwrap())
        .await
        .unwrap()
        .json();
    assert_eq!(scope["client"], json!(["127.0.0.1", local.port()]));
    assert_eq!(scope["server"], json!(["127.0.0.1", server.addr.port()]));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn scope_has_the_asgi_keys_and_extensions() {
    let server = start_testbed().await;
    let answer = send(
        server.addr,
        Request::put("/scope/keys")
            .header("host", "test")
            .body(full("x"))
            .unwrap(),
    )
    .await;
    let scope = answer.json();
    assert_eq!(scope["type"], "http");
    assert_eq!(
        scope["asgi"],
        json!({ "version": "3.0", "spec_version": "2.5" })
    );
    assert_eq!(scope["http_version"], "1.1");
    assert_eq!(scope["method"], "PUT");
    assert_eq!(scope["scheme"], "http");
    assert_eq!(
        scope["extensions"],
        json!({ "http.response.trailers": {}, "http.response.pathsend": {} })
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn scope_root_path_prefixes_path_and_raw_path() {
    let server = start(testbed::Testbed::new(false), |b| b.root_path("/api")).await;
    let scope = fetch(server.addr, "/scope/a%20b").await.json();
    assert_eq!(scope["root_path"], "/api");
    assert_eq!(scope["path"], "/api/scope/a b");
    assert_eq!(scope["raw_path"], "/api/scope/a%20b");
    server.stop().await.unwrap();
}
