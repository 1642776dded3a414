//! Every limit and timeout of the server, one test per limit.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use asgi::core::{ReceiveEvent, SendEvent};
use common::*;
use http::{HeaderMap, Request, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test]
async fn slowloris_is_cut_off_by_the_header_read_timeout() {
    const TIMEOUT: Duration = Duration::from_millis(300);
    let server = start(testbed::Testbed::new(false), |b| {
        b.header_read_timeout(Some(TIMEOUT))
            .keep_alive_timeout(None)
    })
    .await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let opened = Instant::now();
    // A header line every 50 ms: never a complete head.
    let trickle = tokio::spawn(async move {
        writer.write_all(b"GET / HTTP/1.1\r\n").await?;
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(50)).await;
            writer
                .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
                .await?;
        }
        Ok::<(), std::io::Error>(())
    });
    let mut out = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, async {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the slow client was never cut off");
    assert!(opened.elapsed() >= TIMEOUT, "cut off before the timeout");
    assert!(!String::from_utf8_lossy(&out).contains("200 OK"));
    trickle.abort();
    // Other clients are served.
    assert_eq!(fetch(server.addr, "/").await.status, StatusCode::OK);
    server.stop().await.unwrap();
}

/// A raw HTTP/1.1 request to `/` with `n` extra headers.
fn request_with_headers(n: usize) -> Vec<u8> {
    let mut request = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n".to_vec();
    for i in 0..n {
        request.extend_from_slice(format!("X-Header-{i}: {i}\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    request
}

#[tokio::test]
async fn too_many_headers_get_431() {
    let server = start_testbed().await;
    // Host and Connection plus 98 more: exactly the default of 100.
    let response = raw(server.addr, &request_with_headers(98)).await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    let response = raw(server.addr, &request_with_headers(99)).await;
    assert!(
        response.starts_with("HTTP/1.1 431 Request Header Fields Too Large"),
        "{response}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn max_headers_setting_applies_to_http1_and_http2() {
    let server = start(testbed::Testbed::new(false), |b| b.max_headers(5)).await;
    let response = raw(server.addr, &request_with_headers(3)).await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    let response = raw(server.addr, &request_with_headers(4)).await;
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");

    let mut sender = h2(server.addr).await;
    let mut request = Request::get(format!("http://{}/", server.addr));
    for i in 0..6 {
        request = request.header(format!("x-header-{i}"), "1");
    }
    let answer = read(
        sender
            .send_request(request.body(empty()).unwrap())
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(answer.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn content_length_over_the_limit_gets_413_without_calling_the_app() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = {
        let calls = calls.clone();
        http_only(move |_, _, mut send| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
                    .await?;
                send.send(SendEvent::response_body("called", false)).await?;
                Ok(())
            }
        })
    };
    let server = start(app, |b| b.max_request_body(Some(10))).await;
    let response = raw(
        server.addr,
        b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 11\r\n\r\n01234567890",
    )
    .await;
    assert!(
        response.starts_with("HTTP/1.1 413 Payload Too Large"),
        "{response}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // At the limit is fine.
    let answer = send(
        server.addr,
        Request::post("/")
            .header("host", "test")
            .body(full("0123456789"))
            .unwrap(),
    )
    .await;
    assert_eq!(answer.text(), "called");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn chunked_body_over_the_limit_gets_413_and_the_app_a_disconnect() {
    let (events_report, events) = Report::new();
    let app = http_only(move |_, mut receive, send| {
        let events_report = events_report.clone();
        async move {
            // Held until the app returns: dropping it would answer at once.
            let _send = send;
            let mut seen = Vec::new();
            loop {
                let event = receive.recv().await;
                let done = !matches!(
                    event,
                    ReceiveEvent::HttpRequest {
                        more_body: true,
                        ..
                    }
                );
                seen.push(event);
                if done {
                    break;
                }
            }
            events_report.send(seen);
            Ok(())
        }
    });
    let server = start(app, |b| b.max_request_body(Some(10))).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nfirst\r\n5\r\nsecnd\r\n5\r\nthird\r\n0\r\n\r\n",
        )
        .await
        .unwrap();
    let response = read_to_close(&mut stream).await;
    assert!(
        response.starts_with("HTTP/1.1 413 Payload Too Large"),
        "{response}"
    );
    assert!(response.contains("connection: close"), "{response}");
    let events = tokio::time::timeout(PATIENCE, events)
        .await
        .unwrap()
        .unwrap();
    // Ten bytes are within the limit; the eleventh ends the request for the app.
    let received: usize = events
        .iter()
        .map(|e| match e {
            ReceiveEvent::HttpRequest { body, .. } => body.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(received, 10);
    assert_eq!(events.last(), Some(&ReceiveEvent::HttpDisconnect));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed() {
    const IDLE: Duration = Duration::from_millis(200);
    let server = start(testbed::Testbed::new(false), |b| {
        b.keep_alive_timeout(Some(IDLE))
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // The idle timer starts when the response ends, which is after the request was sent:
    // measured from here, the connection stays open at least `IDLE` however late this task
    // runs on a busy machine.
    let sent = Instant::now();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let everything = read_to_close(&mut stream).await;
    let closed = sent.elapsed();
    assert!(everything.starts_with("HTTP/1.1 200 OK"), "{everything}");
    assert!(
        everything.ends_with("Hello, world!"),
        "one response and nothing after it: {everything}"
    );
    assert!(closed >= IDLE, "closed {closed:?} after the request");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn busy_connection_is_not_closed_by_the_idle_timer() {
    let server = start(testbed::Testbed::new(false), |b| {
        b.keep_alive_timeout(Some(Duration::from_millis(100)))
    })
    .await;
    // The request takes longer than the idle timeout: it is in flight, not idle.
    let answer = fetch(server.addr, "/sleep/400").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), "slept 400 ms");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn connections_over_the_limit_wait_in_the_backlog() {
    let server = start(testbed::Testbed::new(false), |b| {
        b.max_connections(Some(1)).keep_alive_timeout(None)
    })
    .await;
    let (mut first, first_conn) = h1(server.addr).await;
    let answer = read(first.send_request(get("/")).await.unwrap())
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK);

    // The kernel completes the second connection, but the server does not take it yet.
    let mut second = TcpStream::connect(server.addr).await.unwrap();
    second
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let early = read_for(&mut second, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(
        early, "",
        "the second connection was served beside the first"
    );

    // When the first connection closes, the second one gets its turn.
    drop(first);
    first_conn.await.unwrap().unwrap();
    let response = read_to_close(&mut second).await;
    assert!(response.ends_with("Hello, world!"), "{response}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn http2_streams_over_the_limit_wait_for_a_free_stream() {
    let current = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let app = {
        let (current, most) = (current.clone(), most.clone());
        http_only(move |_, _, mut send| {
            let (current, most) = (current.clone(), most.clone());
            async move {
                let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                current.fetch_sub(1, Ordering::SeqCst);
                send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
                    .await?;
                send.send(SendEvent::response_body("ok", false)).await?;
                Ok(())
            }
        })
    };
    let server = start(app, |b| b.http2_max_concurrent_streams(Some(1))).await;
    let mut sender = h2(server.addr).await;
    // A first request, so that the client has the server's settings (a client that opens
    // more streams before it knows the limit gets them refused, as HTTP/2 says).
    let warm_up = Request::get(format!("http://{}/", server.addr))
        .body(empty())
        .unwrap();
    read(sender.send_request(warm_up).await.unwrap())
        .await
        .unwrap();
    let requests = (0..3).map(|_| {
        let mut sender = sender.clone();
        let uri = format!("http://{}/", server.addr);
        tokio::spawn(async move {
            let request = Request::get(uri).body(empty()).unwrap();
            read(sender.send_request(request).await.unwrap())
                .await
                .unwrap()
        })
    });
    for request in requests.collect::<Vec<_>>() {
        let answer = request.await.unwrap();
        assert_eq!(answer.text(), "ok");
    }
    assert_eq!(most.load(Ordering::SeqCst), 1, "streams ran side by side");
    server.stop().await.unwrap();
}

/// An HTTP/2 frame header: length, type, flags, stream id.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The client preface, empty settings, and `n` requests that HTTP/2 forbids (a
/// connection-specific `connection` header), each of which the server must reset.
fn malformed_requests(n: u32) -> Vec<u8> {
    const HEADERS: u8 = 0x1;
    const SETTINGS: u8 = 0x4;
    const END_STREAM_END_HEADERS: u8 = 0x5;
    let mut block = vec![0x82, 0x86, 0x84]; // :method GET, :scheme http, :path / (HPACK static)
    block.extend_from_slice(&[0x01, 0x04]); // :authority, literal of 4 bytes
    block.extend_from_slice(b"test");
    block.extend_from_slice(&[0x00, 0x0a]); // a new name of 10 bytes
    block.extend_from_slice(b"connection");
    block.push(0x05);
    block.extend_from_slice(b"close");
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    for i in 0..n {
        out.extend(frame(HEADERS, END_STREAM_END_HEADERS, 1 + 2 * i, &block));
    }
    out
}

/// The client preface, empty settings, and `n` requests each reset by the client right after
/// it is sent (the "rapid reset" pattern).
fn rapid_resets(n: u32) -> Vec<u8> {
    const HEADERS: u8 = 0x1;
    const SETTINGS: u8 = 0x4;
    const END_HEADERS: u8 = 0x4;
    const CANCEL: u32 = 0x8;
    let mut block = vec![0x82, 0x86, 0x84, 0x01, 0x04]; // GET http / , :authority (4 bytes)
    block.extend_from_slice(b"test");
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    for i in 0..n {
        out.extend(frame(HEADERS, END_HEADERS, 1 + 2 * i, &block));
        out.extend(frame(RST_STREAM, 0, 1 + 2 * i, &CANCEL.to_be_bytes()));
    }
    out
}

/// The frames the server sends within `wait`, as (type, error code of a GOAWAY).
async fn server_frames(stream: &mut TcpStream, wait: Duration) -> Vec<(u8, Option<u32>)> {
    use tokio::io::AsyncReadExt;
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut bytes)).await;
    let mut frames = Vec::new();
    let mut at = 0;
    while at + 9 <= bytes.len() {
        let len = u32::from_be_bytes([0, bytes[at], bytes[at + 1], bytes[at + 2]]) as usize;
        let kind = bytes[at + 3];
        let payload = &bytes[at + 9..(at + 9 + len).min(bytes.len())];
        let code = (kind == 0x7 && payload.len() >= 8)
            .then(|| u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]));
        frames.push((kind, code));
        at += 9 + len;
    }
    frames
}

const RST_STREAM: u8 = 0x3;
const GOAWAY: u8 = 0x7;
const ENHANCE_YOUR_CALM: u32 = 0xb;

#[tokio::test]
async fn http2_reset_flood_closes_the_connection() {
    let server = start(testbed::Testbed::new(false), |b| {
        b.http2_max_local_error_reset_streams(Some(2))
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(&malformed_requests(5)).await.unwrap();
    // The server closes the connection: `server_frames` reads to the end.
    let frames = server_frames(&mut stream, PATIENCE).await;
    assert!(
        frames.contains(&(GOAWAY, Some(ENHANCE_YOUR_CALM))),
        "{frames:?}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn http2_resets_under_the_limit_keep_the_connection() {
    let server = start_testbed().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(&malformed_requests(5)).await.unwrap();
    let frames = server_frames(&mut stream, Duration::from_millis(300)).await;
    let resets = frames.iter().filter(|f| f.0 == RST_STREAM).count();
    assert_eq!(resets, 5, "{frames:?}");
    assert!(!frames.iter().any(|f| f.0 == GOAWAY), "{frames:?}");
    // A client that never answers the server's pings would hold a graceful shutdown until
    // the drain deadline; this one leaves first.
    drop(stream);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn http2_rapid_reset_closes_the_connection() {
    let server = start(testbed::Testbed::new(false), |b| {
        b.http2_max_pending_accept_reset_streams(Some(2))
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(&rapid_resets(50)).await.unwrap();
    let frames = server_frames(&mut stream, PATIENCE).await;
    assert!(
        frames.contains(&(GOAWAY, Some(ENHANCE_YOUR_CALM))),
        "{frames:?}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn http2_few_client_resets_keep_the_connection() {
    let server = start_testbed().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(&rapid_resets(5)).await.unwrap();
    let frames = server_frames(&mut stream, Duration::from_millis(300)).await;
    assert!(!frames.iter().any(|f| f.0 == GOAWAY), "{frames:?}");
    drop(stream);
    server.stop().await.unwrap();
}
