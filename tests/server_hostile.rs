//! Hostile clients, over raw sockets and raw HTTP/2 frames: one abusive connection must not
//! hurt anyone else. Rapid reset, silent HTTP/2 connections, malformed chunked bodies,
//! stalled clients at the drain, the keep-alive idle timer, `Host` validation, raw bytes in
//! the request target, and clients that never read.

mod common;

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use asgi::core::{ReceiveEvent, SendEvent};
use asgi::wsgi::{Body, BoxError, Environ, StartResponse, WsgiToAsgi};
use common::*;
use http::{HeaderMap, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

// ---------------------------------------------------------------------------------------------
// Raw HTTP/2: just enough framing to play a client that a client library would not let us be.

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;
const CANCEL: u32 = 0x8;
const ENHANCE_YOUR_CALM: u32 = 0xb;
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// An HTTP/2 frame: length, type, flags, stream id, payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The client preface and an empty SETTINGS frame.
fn preface() -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    out
}

/// A HEADERS frame for `GET path` (HPACK: static `:method GET`, `:scheme http`, then `:path`
/// and `:authority` as literals with indexed names), ending the stream.
fn get_headers(stream: u32, path: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x86, 0x04, u8::try_from(path.len()).unwrap()];
    block.extend_from_slice(path.as_bytes());
    block.extend_from_slice(&[0x01, 0x04]);
    block.extend_from_slice(b"test");
    frame(HEADERS, END_STREAM | END_HEADERS, stream, &block)
}

/// `GET path` on `stream`, reset by the client at once (the "rapid reset" pattern).
fn rapid_reset(stream: u32, path: &str) -> Vec<u8> {
    let mut out = get_headers(stream, path);
    out.extend(frame(RST_STREAM, 0, stream, &CANCEL.to_be_bytes()));
    out
}

/// The frames in `bytes`, as (type, flags, error code of a GOAWAY).
fn frames(bytes: &[u8]) -> Vec<(u8, u8, Option<u32>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 9 <= bytes.len() {
        let len = u32::from_be_bytes([0, bytes[at], bytes[at + 1], bytes[at + 2]]) as usize;
        let kind = bytes[at + 3];
        let flags = bytes[at + 4];
        let payload = &bytes[at + 9..(at + 9 + len).min(bytes.len())];
        let code = (kind == GOAWAY && payload.len() >= 8)
            .then(|| u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]));
        out.push((kind, flags, code));
        at += 9 + len;
    }
    out
}

/// The payloads of the PINGs (not acknowledgements) in `bytes`.
fn pings(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 9 <= bytes.len() {
        let len = u32::from_be_bytes([0, bytes[at], bytes[at + 1], bytes[at + 2]]) as usize;
        if bytes[at + 3] == PING && bytes[at + 4] & ACK == 0 && at + 9 + len <= bytes.len() {
            out.push(bytes[at + 9..at + 9 + len].to_vec());
        }
        at += 9 + len;
    }
    out
}

/// How a read of [`read_until_end`] ended.
#[derive(Debug, PartialEq)]
enum ReadEnd {
    /// What came satisfied the condition.
    Done,
    /// The server closed the connection (or the read failed).
    Closed,
    /// The wait passed.
    TimedOut,
}

/// Reads until what came satisfies `done`, the server closes the connection, or `wait`
/// passes; returns the bytes and which came first.
async fn read_until_end(
    stream: &mut TcpStream,
    wait: Duration,
    done: impl Fn(&[u8]) -> bool,
) -> (Vec<u8>, ReadEnd) {
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if done(&bytes) {
            return (bytes, ReadEnd::Done);
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (bytes, ReadEnd::TimedOut),
            Ok(Ok(0) | Err(_)) => return (bytes, ReadEnd::Closed),
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads until what came satisfies `done`, up to `wait`; returns whether it did.
async fn read_until(stream: &mut TcpStream, wait: Duration, done: impl Fn(&[u8]) -> bool) -> bool {
    read_until_end(stream, wait, done).await.1 == ReadEnd::Done
}

/// Reads until the server closes the connection, up to `wait`; returns the bytes and whether
/// it closed.
async fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> (Vec<u8>, bool) {
    let (bytes, end) = read_until_end(stream, wait, |_| false).await;
    (bytes, end == ReadEnd::Closed)
}

/// An app that counts its calls and how many run at once, and answers after `sleep`.
#[derive(Clone, Default)]
struct Counting {
    calls: Arc<AtomicUsize>,
    running: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

impl Counting {
    fn app(&self, sleep: Duration) -> impl asgi::core::App {
        let this = self.clone();
        http_only(move |_, _, mut send| {
            let this = this.clone();
            async move {
                this.calls.fetch_add(1, Ordering::SeqCst);
                let now = this.running.fetch_add(1, Ordering::SeqCst) + 1;
                this.most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(sleep).await;
                this.running.fetch_sub(1, Ordering::SeqCst);
                send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
                    .await?;
                send.send(SendEvent::response_body("ok", false)).await?;
                Ok(())
            }
        })
    }
}

impl Counting {
    /// An axum router whose `/` counts its calls and answers `ok` after a timer tick, as
    /// [`Counting::app`] with no sleep does, so that a reset can come while it runs.
    fn router(&self) -> axum::Router {
        let calls = self.calls.clone();
        axum::Router::new().route(
            "/",
            axum::routing::get(move || {
                calls.fetch_add(1, Ordering::SeqCst);
                async {
                    tokio::time::sleep(Duration::ZERO).await;
                    "ok"
                }
            }),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// 1. HTTP/2 rapid reset.

/// How a flood of resets is written.
#[derive(Debug, Clone, Copy)]
enum Pattern {
    /// HEADERS + RST_STREAM pairs, this many to a write.
    PairsPerWrite(u32),
    /// Each HEADERS, then its RST_STREAM in a later write: the app is called before the
    /// reset comes.
    ResetAfterTheAppStarted,
}

/// Writes `pairs` HEADERS + RST_STREAM pairs to `path` in `pattern`, and returns what the
/// server sent until it closed the connection (or `PATIENCE` passed).
async fn reset_flood(
    server: &TestServer,
    pairs: u32,
    pattern: Pattern,
    path: &'static str,
) -> (Vec<(u8, u8, Option<u32>)>, bool) {
    const PACE: Duration = Duration::from_millis(1);
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(&preface()).await.unwrap();
    let writing = tokio::spawn(async move {
        let mut id = 1;
        while id < 1 + 2 * pairs {
            let written = match pattern {
                Pattern::PairsPerWrite(per_write) => {
                    let mut batch = Vec::new();
                    for _ in 0..per_write {
                        batch.extend(rapid_reset(id, path));
                        id += 2;
                    }
                    writer.write_all(&batch).await
                }
                Pattern::ResetAfterTheAppStarted => {
                    let headers = writer.write_all(&get_headers(id, path)).await;
                    tokio::time::sleep(PACE).await;
                    let reset = frame(RST_STREAM, 0, id, &CANCEL.to_be_bytes());
                    id += 2;
                    headers.and(writer.write_all(&reset).await)
                }
            };
            if written.is_err() {
                break;
            }
            tokio::time::sleep(PACE).await;
        }
        writer
    });
    let mut bytes = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, reader.read_to_end(&mut bytes))
        .await
        .is_ok();
    writing.abort();
    (frames(&bytes), closed)
}

/// Floods `server` with 10,000 streams reset in `pattern`, and checks what a client sees:
/// the connection closed with `ENHANCE_YOUR_CALM`, a bounded number of the requests reached
/// the app (`calls`: at most the allowance, plus what the reads before the GOAWAY bring),
/// and honest clients served all along.
async fn assert_reset_flood_is_calmed(server: &TestServer, calls: &AtomicUsize, pattern: Pattern) {
    let (frames, closed) = reset_flood(server, 10_000, pattern, "/").await;
    assert!(closed, "{pattern:?}: the connection stayed open");
    assert!(
        frames.contains(&(GOAWAY, 0, Some(ENHANCE_YOUR_CALM))),
        "{pattern:?}: {frames:?}"
    );
    let calls = calls.load(Ordering::SeqCst);
    assert!(
        calls < 2_000,
        "{pattern:?}: {calls} requests reached the app"
    );
    assert_eq!(fetch(server.addr, "/").await.text(), "ok");
}

/// How much a client may reset in the rapid reset tests.
const RESET_BUDGET: u32 = 100;

#[tokio::test]
async fn http2_rapid_reset_gets_enhance_your_calm_whatever_the_write_pattern() {
    for pattern in [
        Pattern::PairsPerWrite(1),
        Pattern::PairsPerWrite(10),
        Pattern::PairsPerWrite(100),
        Pattern::ResetAfterTheAppStarted,
    ] {
        let counting = Counting::default();
        let server = start(counting.app(Duration::ZERO), |b| {
            b.http2_max_client_resets(Some(RESET_BUDGET))
        })
        .await;
        assert_reset_flood_is_calmed(&server, &counting.calls, pattern).await;
        server.stop().await.unwrap();
    }
}

#[tokio::test]
async fn http2_rapid_reset_against_an_axum_router_at_the_root_gets_enhance_your_calm() {
    // An axum router served at the root takes the server's direct path only on connections
    // that have reset nothing; a flood of resets meets the same limits as with any app.
    for pattern in [
        Pattern::PairsPerWrite(1),
        Pattern::PairsPerWrite(100),
        Pattern::ResetAfterTheAppStarted,
    ] {
        let counting = Counting::default();
        let server = start(asgi::tower::TowerApp::new(counting.router()), |b| {
            b.http2_max_client_resets(Some(RESET_BUDGET))
        })
        .await;
        assert_reset_flood_is_calmed(&server, &counting.calls, pattern).await;
        server.stop().await.unwrap();
    }
}

#[tokio::test]
async fn http2_reset_streams_still_running_count_against_the_stream_limit() {
    const STREAMS: u32 = 4;
    let counting = Counting::default();
    let server = start(counting.app(Duration::from_millis(500)), |b| {
        b.http2_max_concurrent_streams(Some(STREAMS))
            .http2_max_client_resets(Some(50))
    })
    .await;
    // Each stream is reset after its app was called: the app call goes on (it sleeps) after
    // its stream is gone.
    let (frames, _) = reset_flood(&server, 2_000, Pattern::ResetAfterTheAppStarted, "/sleep").await;
    let most = counting.most.load(Ordering::SeqCst);
    assert!(
        most <= STREAMS as usize,
        "{most} app calls ran at once on one connection limited to {STREAMS} streams"
    );
    assert!(
        most > 0,
        "no app call ran: the pattern did not reach the app"
    );
    assert!(
        frames.contains(&(GOAWAY, 0, Some(ENHANCE_YOUR_CALM))),
        "{frames:?}"
    );
    // Another connection is served beside it.
    let started = Instant::now();
    assert_eq!(fetch(server.addr, "/").await.text(), "ok");
    assert!(started.elapsed() < PATIENCE);
    server.stop().await.unwrap();
}

/// Writes `bytes` and five streams from `first` on, each reset in the same write as its
/// HEADERS, and checks that they cost the connection nothing and called no app.
async fn five_rapid_resets_call_no_app(
    stream: &mut TcpStream,
    mut bytes: Vec<u8>,
    first: u32,
    counting: &Counting,
) {
    let before = counting.calls.load(Ordering::SeqCst);
    for i in 0..5 {
        bytes.extend(rapid_reset(first + 2 * i, "/"));
    }
    stream.write_all(&bytes).await.unwrap();
    let (received, _) = read_until_closed(stream, Duration::from_millis(300)).await;
    assert!(
        !frames(&received).iter().any(|f| f.0 == GOAWAY),
        "a few resets cost the connection"
    );
    assert_eq!(counting.calls.load(Ordering::SeqCst), before);
}

#[tokio::test]
async fn http2_a_stream_reset_before_its_app_ran_does_not_call_the_app() {
    let counting = Counting::default();
    let server = start(counting.app(Duration::ZERO), |b| b).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // Five streams reset in the same write as their HEADERS: the server reads each reset
    // before it could answer.
    five_rapid_resets_call_no_app(&mut stream, preface(), 1, &counting).await;
    drop(stream);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn http2_once_a_client_reset_a_stream_its_rapid_resets_do_not_call_the_app() {
    let counting = Counting::default();
    let server = start(counting.app(Duration::from_millis(50)), |b| b).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // One request answered: a connection whose client has reset nothing no longer holds its
    // requests back.
    let mut bytes = preface();
    bytes.extend(get_headers(1, "/"));
    stream.write_all(&bytes).await.unwrap();
    let answered = read_until(&mut stream, PATIENCE, |bytes| {
        frames(bytes)
            .iter()
            .any(|&(kind, flags, _)| kind == DATA && flags & END_STREAM != 0)
    })
    .await;
    assert!(answered, "the first request was not answered");
    // A stream reset while its app runs: the client is one that resets.
    stream.write_all(&rapid_reset(3, "/")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // From then on, a stream reset in the same write as its request does not call its app.
    five_rapid_resets_call_no_app(&mut stream, Vec::new(), 5, &counting).await;
    drop(stream);
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 2. Silent HTTP/2 connections.

#[tokio::test]
async fn silent_http2_connection_is_closed_by_the_keep_alive_ping() {
    const INTERVAL: Duration = Duration::from_millis(200);
    let server = start(testbed::Testbed::new(false), |b| {
        b.keep_alive_timeout(None)
            .http2_keep_alive_interval(Some(INTERVAL))
            .http2_keep_alive_timeout(INTERVAL)
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let opened = Instant::now();
    stream.write_all(&preface()).await.unwrap();
    // The client reads, but answers nothing: not the PING either.
    let (received, closed) = read_until_closed(&mut stream, PATIENCE).await;
    assert!(closed, "the silent connection stayed open");
    assert!(opened.elapsed() >= INTERVAL, "closed before the ping");
    assert!(
        frames(&received)
            .iter()
            .any(|f| f.0 == PING && f.1 & ACK == 0),
        "no PING was sent: {:?}",
        frames(&received)
    );
    assert_eq!(fetch(server.addr, "/").await.status, StatusCode::OK);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn http2_connection_that_never_opens_a_stream_is_closed_at_the_idle_timeout() {
    const IDLE: Duration = Duration::from_millis(300);
    let server = start(testbed::Testbed::new(false), |b| {
        b.keep_alive_timeout(Some(IDLE))
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let opened = Instant::now();
    stream.write_all(&preface()).await.unwrap();
    let (received, closed) = read_until_closed(&mut stream, PATIENCE).await;
    assert!(closed, "the idle connection stayed open");
    assert!(opened.elapsed() >= IDLE, "closed before the idle timeout");
    // Well within the bound: the idle timeout and a short grace for the GOAWAY.
    assert!(
        opened.elapsed() < Duration::from_secs(5),
        "{:?}",
        opened.elapsed()
    );
    assert!(
        frames(&received).iter().any(|f| f.0 == GOAWAY),
        "no GOAWAY before the close"
    );
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 3. Malformed chunked request bodies.

/// Chunked bodies that hyper's decoder refuses: not hex, overflowing, a bare LF in an
/// extension.
const MALFORMED_CHUNKS: [&str; 3] = [
    "zz\r\nhello\r\n0\r\n\r\n",
    "fffffffffffffffff\r\nhello\r\n0\r\n\r\n",
    "5;ext=1\nbad\r\nhello\r\n0\r\n\r\n",
];

fn chunked_post(path: &str, chunks: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n{chunks}"
    )
    .into_bytes()
}

#[tokio::test]
async fn malformed_chunked_body_gets_400_and_the_app_a_disconnect() {
    for chunks in MALFORMED_CHUNKS {
        let (report, events) = Report::new();
        let app = http_only(move |_, mut receive, mut send| {
            let report = report.clone();
            async move {
                send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
                    .await?;
                let mut seen = Vec::new();
                loop {
                    let event = receive.recv().await;
                    let more = matches!(
                        event,
                        ReceiveEvent::HttpRequest {
                            more_body: true,
                            ..
                        }
                    );
                    seen.push(event);
                    if !more {
                        break;
                    }
                }
                report.send(seen);
                Err(asgi::core::Error::disconnected())
            }
        });
        let server = start(app, |b| b).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(&chunked_post("/", chunks)).await.unwrap();
        let response = read_to_close(&mut stream).await;
        assert!(
            response.starts_with("HTTP/1.1 400 Bad Request"),
            "{chunks:?}: {response}"
        );
        assert!(response.contains("connection: close"), "{response}");
        let events = tokio::time::timeout(PATIENCE, events)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            events.last(),
            Some(&ReceiveEvent::HttpDisconnect),
            "{chunks:?}"
        );
        server.stop().await.unwrap();
    }
}

#[tokio::test]
async fn malformed_chunked_body_gets_400_on_the_wsgi_path_and_the_app_an_input_error() {
    for chunks in MALFORMED_CHUNKS {
        let (report, kinds) = Report::new();
        let app = WsgiToAsgi::new(
            move |mut environ: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
                let mut body = Vec::new();
                let read = environ.input().read_to_end(&mut body);
                report.send(read.as_ref().map_err(std::io::Error::kind).err());
                read?;
                start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
                Ok(Body::from(body))
            },
        );
        let server = start(app, |b| b).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(&chunked_post("/", chunks)).await.unwrap();
        let response = read_to_close(&mut stream).await;
        assert!(
            response.starts_with("HTTP/1.1 400 Bad Request"),
            "{chunks:?}: {response}"
        );
        let kind = tokio::time::timeout(PATIENCE, kinds)
            .await
            .unwrap()
            .unwrap();
        assert!(
            kind.is_some(),
            "{chunks:?}: wsgi.input read a malformed body"
        );
        server.stop().await.unwrap();
    }
}

#[tokio::test]
async fn client_leaving_mid_body_is_still_a_disconnect_not_a_400() {
    let (report, events) = Report::new();
    let app = http_only(move |_, mut receive, _send| {
        let report = report.clone();
        async move {
            let mut last = receive.recv().await;
            while matches!(
                last,
                ReceiveEvent::HttpRequest {
                    more_body: true,
                    ..
                }
            ) {
                last = receive.recv().await;
            }
            report.send(last);
            Ok(())
        }
    });
    let (logs, _guard) = LogCapture::install();
    let server = start(app, |b| b).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\nonly part")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(stream);
    let last = tokio::time::timeout(PATIENCE, events)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last, ReceiveEvent::HttpDisconnect);
    assert!(!logs.text().contains("malformed"), "{}", logs.text());
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 4. The graceful drain.

#[tokio::test]
async fn drain_closes_stalled_and_idle_connections_at_once() {
    const DRAIN: Duration = Duration::from_secs(20);
    let server = start(testbed::Testbed::new(false), |b| {
        b.drain_timeout(Some(DRAIN))
    })
    .await;
    // A half-sent request head.
    let mut half_head = TcpStream::connect(server.addr).await.unwrap();
    half_head
        .write_all(b"GET / HTTP/1.1\r\nHost: te")
        .await
        .unwrap();
    // An idle HTTP/1.1 keep-alive connection, after one request.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let answered = read_for(&mut idle, Duration::from_millis(200))
        .await
        .unwrap();
    assert!(answered.ends_with("Hello, world!"), "{answered}");
    // A silent HTTP/2 connection: the preface and SETTINGS, then nothing.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    silent.write_all(&preface()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    server.handle.shutdown();
    tokio::time::timeout(PATIENCE, server.task)
        .await
        .expect("the drain waited for connections with nothing in flight")
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    for stream in [&mut half_head, &mut idle, &mut silent] {
        let (_, closed) = read_until_closed(stream, PATIENCE).await;
        assert!(closed);
    }
}

#[tokio::test]
async fn http1_response_in_flight_at_the_drain_carries_connection_close() {
    let server = start_testbed().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /sleep/500 HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let in_app =
        eventually(async || fetch(server.addr, "/stats").await.json()["inflight"] == 1).await;
    assert!(in_app);
    server.handle.shutdown();
    let response = read_to_close(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("connection: close"),
        "{response}"
    );
    assert!(response.ends_with("slept 500 ms"), "{response}");
    tokio::time::timeout(PATIENCE, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn http2_response_in_flight_at_the_drain_is_followed_by_goaway() {
    let server = start_testbed().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut bytes = preface();
    bytes.extend(get_headers(1, "/sleep/500"));
    stream.write_all(&bytes).await.unwrap();
    let in_app =
        eventually(async || fetch(server.addr, "/stats").await.json()["inflight"] == 1).await;
    assert!(in_app);
    server.handle.shutdown();
    // The client acknowledges what a well-behaved client would: SETTINGS and PINGs.
    let mut received = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut acked = 0;
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => break,
            Ok(Ok(n)) => n,
        };
        received.extend_from_slice(&buf[..n]);
        let pings = pings(&received);
        for payload in &pings[acked..] {
            let _ = stream.write_all(&frame(PING, ACK, 0, payload)).await;
        }
        acked = pings.len();
    }
    let seen = frames(&received);
    let response = seen.iter().position(|f| f.0 == HEADERS);
    let goaway = seen.iter().rposition(|f| f.0 == GOAWAY);
    assert!(response.is_some(), "no response: {seen:?}");
    assert!(goaway.is_some(), "no GOAWAY: {seen:?}");
    tokio::time::timeout(PATIENCE, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// 5. The keep-alive idle timer.

#[tokio::test]
async fn keep_alive_idle_timeout_counts_from_the_last_request() {
    const IDLE: Duration = Duration::from_secs(2);
    let server = start(testbed::Testbed::new(false), |b| {
        b.keep_alive_timeout(Some(IDLE))
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let first = read_for(&mut stream, Duration::from_millis(100))
        .await
        .unwrap();
    assert!(first.ends_with("Hello, world!"), "{first}");
    // A second request early in the idle period: the period starts again from its end, not
    // from the moment the timer next looks.
    tokio::time::sleep(IDLE / 5).await;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let second = read_for(&mut stream, Duration::from_millis(100))
        .await
        .unwrap();
    assert!(second.ends_with("Hello, world!"), "{second}");
    let last_activity = Instant::now() - Duration::from_millis(100);
    let (rest, closed) = read_until_closed(&mut stream, PATIENCE).await;
    assert!(closed && rest.is_empty());
    let idle = last_activity.elapsed();
    assert!(idle >= IDLE - IDLE / 10, "closed after {idle:?}");
    // The old timer closed it at about 1.8 times the timeout.
    assert!(idle < IDLE + IDLE / 2, "closed after {idle:?}");
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 6. Host.

#[tokio::test]
async fn http11_request_without_host_gets_400() {
    let server = start_testbed().await;
    let response = raw(server.addr, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert!(
        response.starts_with("HTTP/1.1 400 Bad Request"),
        "{response}"
    );
    // HTTP/1.0 does not require it.
    let response = raw(server.addr, b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.0 200 OK"), "{response}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn http11_request_with_two_hosts_gets_400() {
    let server = start_testbed().await;
    let response = raw(
        server.addr,
        b"GET /scope/x HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        response.starts_with("HTTP/1.1 400 Bad Request"),
        "{response}"
    );
    assert!(!response.contains("b.test"), "{response}");
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 7. Raw bytes in the request target.

#[tokio::test]
async fn raw_non_ascii_bytes_in_the_target_get_400() {
    let server = start_testbed().await;
    let response = raw(
        server.addr,
        "GET /scope/café HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".as_bytes(),
    )
    .await;
    assert!(
        response.starts_with("HTTP/1.1 400 Bad Request"),
        "{response}"
    );
    let response = raw(
        server.addr,
        "GET /scope/x?q=café HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".as_bytes(),
    )
    .await;
    assert!(
        response.starts_with("HTTP/1.1 400 Bad Request"),
        "{response}"
    );
    // Percent-encoded, the same path is fine and decoded in `path`.
    let answer = fetch(server.addr, "/scope/caf%C3%A9").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["path"], "/scope/café");
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 8. The write timeout.

#[tokio::test]
async fn write_timeout_closes_a_connection_whose_client_never_reads() {
    const TIMEOUT: Duration = Duration::from_millis(500);
    let (report, events) = Report::new();
    let app = http_only(move |scope, mut receive, mut send| {
        let report = report.clone();
        async move {
            send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
                .await?;
            let asgi::core::Scope::Http(scope) = scope else {
                return Ok(());
            };
            if scope.path != "/big" {
                send.send(SendEvent::response_body("small", false)).await?;
                return Ok(());
            }
            let chunk = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
            // 1 GiB, far more than the socket buffers hold.
            let mut sent = 0usize;
            while sent < 1 << 30 {
                if send
                    .send(SendEvent::response_body(chunk.clone(), true))
                    .await
                    .is_err()
                {
                    break;
                }
                sent += chunk.len();
            }
            // The request's (empty) body first, then the end of the request.
            let mut event = receive.recv().await;
            while matches!(event, ReceiveEvent::HttpRequest { .. }) {
                event = receive.recv().await;
            }
            report.send((sent, event, Instant::now()));
            Ok(())
        }
    });
    let server = start(app, |b| b.write_timeout(Some(TIMEOUT))).await;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /big HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // The client never reads.
    let (sent, event, stopped) = tokio::time::timeout(PATIENCE, events)
        .await
        .expect("the stalled response was never given up")
        .unwrap();
    assert!(sent < 1 << 30, "the whole body went out");
    assert_eq!(event, ReceiveEvent::HttpDisconnect);
    assert!(stopped - started >= TIMEOUT, "gave up before the timeout");
    // The server closed the connection: what it wrote, then the end.
    let (received, closed) = read_until_closed(&mut stream, PATIENCE).await;
    assert!(closed);
    assert!(received.len() < sent + 1024, "more came than the app sent");
    assert_eq!(fetch(server.addr, "/").await.text(), "small");
    server.stop().await.unwrap();
}
