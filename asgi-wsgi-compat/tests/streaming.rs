//! Request and response bodies stream through bounded channels: the app's reads interleave
//! with the client's pushes, and the client's reads with the app's writes.

mod common;

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use asgi_core::host::testing::{self, TestSession};
use asgi_core::{ReceiveEvent, Scope, SendEvent};
use asgi_wsgi_compat::testbed::{TESTBED_CHUNK_SIZE, testbed};
use asgi_wsgi_compat::to_asgi::{INPUT_CHANNEL_CAPACITY, OUTPUT_CHANNEL_CAPACITY};
use asgi_wsgi_compat::{Body, BoxError, Environ, StartResponse, WsgiToAsgi};
use bytes::Bytes;
use common::{PATIENCE, next, next_body, scope, seen};
use http::header::HeaderValue;
use http::{Method, StatusCode};

const CHUNK: usize = 64 * 1024;
const CHUNKS: usize = 128;

/// How many events wait in each direction of a test `TestSession`, as its documentation says.
const SESSION_CHANNEL_CAPACITY: usize = 16;

/// How far a client may push ahead of the app's reads, in chunks: the session's channel, the
/// adapter's channel, and one chunk in hand at each end.
const UPLOAD_MAX_LAG: usize = SESSION_CHANNEL_CAPACITY + INPUT_CHANNEL_CAPACITY + 2;

/// How far an app may produce ahead of the client's reads, in chunks, for the same reasons.
const DOWNLOAD_MAX_LAG: usize = SESSION_CHANNEL_CAPACITY + OUTPUT_CHANNEL_CAPACITY + 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_reads_interleave_with_pushes() {
    let pushed = Arc::new(AtomicUsize::new(0));
    let max_lag = Arc::new(AtomicUsize::new(0));
    let (pushed_in_app, lag) = (pushed.clone(), max_lag.clone());
    let app = WsgiToAsgi::new(
        move |mut environ: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            let mut chunks = 0;
            let mut bytes = 0;
            loop {
                // A slow consumer: an unbounded buffer would let the client run far ahead.
                std::thread::sleep(Duration::from_millis(1));
                let chunk = environ.input().read_chunk()?;
                if chunk.is_empty() {
                    break;
                }
                chunks += 1;
                bytes += chunk.len();
                let ahead = pushed_in_app.load(Ordering::SeqCst).saturating_sub(chunks);
                lag.fetch_max(ahead, Ordering::SeqCst);
            }
            start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
            Ok(Body::from(format!("{chunks} chunks, {bytes} bytes")))
        },
    );
    let mut session = TestSession::start(app, Scope::from(scope(Method::POST, "/upload")));
    let data = Bytes::from(vec![7u8; CHUNK]);
    for i in 0..CHUNKS {
        let event = ReceiveEvent::request(data.clone(), i + 1 < CHUNKS);
        tokio::time::timeout(PATIENCE, session.send(event))
            .await
            .expect("the app stopped reading")
            .unwrap();
        pushed.fetch_add(1, Ordering::SeqCst);
    }
    let events = [
        next(&mut session).await.unwrap(),
        next(&mut session).await.unwrap(),
    ];
    let seen = seen(&events);
    assert_eq!(seen.status, Some(StatusCode::OK));
    assert_eq!(
        String::from_utf8(seen.body).unwrap(),
        format!("{CHUNKS} chunks, {} bytes", CHUNKS * CHUNK)
    );
    let lag = max_lag.load(Ordering::SeqCst);
    assert!(
        lag <= UPLOAD_MAX_LAG,
        "the client ran {lag} chunks ahead of the app"
    );
    session.finish().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_writes_interleave_with_client_reads() {
    let produced = Arc::new(AtomicUsize::new(0));
    let count = produced.clone();
    let app = WsgiToAsgi::new(
        move |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            start_response.call(
                "200 OK",
                [("Content-Type", "application/octet-stream")],
                None,
            )?;
            let count = count.clone();
            let data = Bytes::from(vec![1u8; CHUNK]);
            Ok(Body::from_chunks((0..CHUNKS).map(move |_| {
                count.fetch_add(1, Ordering::SeqCst);
                data.clone()
            })))
        },
    );
    let mut session = TestSession::start(app, Scope::from(scope(Method::GET, "/download")));
    assert!(matches!(
        next(&mut session).await,
        Some(SendEvent::HttpResponseStart { .. })
    ));
    let mut received = 0;
    let mut max_lag = 0;
    let mut bytes = 0;
    loop {
        // A slow client: an unbounded buffer would let the app run far ahead.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let (body, more) = next_body(&mut session).await;
        if !body.is_empty() {
            received += 1;
            bytes += body.len();
            max_lag = max_lag.max(produced.load(Ordering::SeqCst).saturating_sub(received));
        }
        if !more {
            break;
        }
    }
    assert_eq!(received, CHUNKS);
    assert_eq!(bytes, CHUNKS * CHUNK);
    assert!(
        max_lag <= DOWNLOAD_MAX_LAG,
        "the app ran {max_lag} chunks ahead of the client"
    );
    session.finish().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_sends_each_chunk_back_before_the_next_arrives() {
    let mut s = scope(Method::POST, "/wsgi/echo");
    s.root_path = "/wsgi".into();
    let mut session = TestSession::start(WsgiToAsgi::new(testbed), Scope::from(s));
    session
        .send(ReceiveEvent::request("chunk-0", true))
        .await
        .unwrap();
    assert!(matches!(
        next(&mut session).await,
        Some(SendEvent::HttpResponseStart { status, .. }) if status == StatusCode::OK
    ));
    assert_eq!(
        next_body(&mut session).await,
        (Bytes::from("chunk-0"), true)
    );
    for i in 1..5 {
        let chunk = format!("chunk-{i}");
        session
            .send(ReceiveEvent::request(chunk.clone(), true))
            .await
            .unwrap();
        // The reply arrives while the request is still open: nothing waits for its end.
        assert_eq!(next_body(&mut session).await, (Bytes::from(chunk), true));
    }
    session
        .send(ReceiveEvent::request("", false))
        .await
        .unwrap();
    assert_eq!(next_body(&mut session).await, (Bytes::new(), false));
    session.finish().await.unwrap();
}

#[tokio::test]
async fn chunked_upload_without_length_reads_to_its_end() {
    let mut s = scope(Method::POST, "/echo");
    s.headers
        .insert("transfer-encoding", HeaderValue::from_static("chunked"));
    let events = (0..10).map(|i| ReceiveEvent::request(format!("{i};"), i < 9));
    let outcome = testing::call(&WsgiToAsgi::new(testbed), Scope::from(s), events).await;
    assert_eq!(outcome.body(), b"0;1;2;3;4;5;6;7;8;9;");
    assert!(seen(&outcome.sent).complete);
}

#[tokio::test]
async fn input_reports_end_of_file_at_content_length() {
    let mut s = scope(Method::POST, "/environ/cl");
    s.headers
        .insert("content-length", HeaderValue::from_static("5"));
    let events = [
        ReceiveEvent::request("hel", true),
        ReceiveEvent::request("loEXTRA", false),
    ];
    let outcome = testing::call(&WsgiToAsgi::new(testbed), Scope::from(s), events).await;
    let env: serde_json::Value = serde_json::from_slice(&outcome.body()).unwrap();
    assert_eq!(env["body"], "hello");
}

#[tokio::test]
async fn app_that_stops_reading_at_content_length_gets_eof_not_an_error() {
    let app = WsgiToAsgi::new(
        |mut environ: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            let mut body = String::new();
            environ.input().read_to_string(&mut body)?;
            // A second read at end of file is still end of file.
            let again = environ.input().read(&mut [0; 8])?;
            start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
            Ok(Body::from(format!("{body}|{again}")))
        },
    );
    let mut s = scope(Method::POST, "/");
    s.headers
        .insert("content-length", HeaderValue::from_static("3"));
    let outcome = testing::call(&app, Scope::from(s), [ReceiveEvent::request("abc", false)]).await;
    assert_eq!(outcome.body(), b"abc|0");
}

#[tokio::test]
async fn large_download_comes_in_bounded_chunks_with_its_length() {
    let n = 3 * TESTBED_CHUNK_SIZE + 17;
    let s = scope(Method::GET, &format!("/bytes/{n}"));
    let outcome = testing::call(&WsgiToAsgi::new(testbed), Scope::from(s), []).await;
    let seen = seen(&outcome.sent);
    assert_eq!(seen.status, Some(StatusCode::OK));
    assert_eq!(seen.headers["content-length"], n.to_string().as_str());
    assert_eq!(seen.body.len(), n);
    assert!(seen.body.iter().all(|&b| b == b'x'));
    assert!(seen.complete);
    assert_eq!(seen.body_events, 4, "three full chunks and the rest");
    for event in &outcome.sent {
        if let SendEvent::HttpResponseBody { body, .. } = event {
            assert!(body.len() <= TESTBED_CHUNK_SIZE);
        }
    }
}

#[tokio::test]
async fn single_chunk_response_needs_no_extra_final_event() {
    fn hello(_: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
        start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
        Ok(Body::from("Hello"))
    }
    let outcome = testing::call(
        &WsgiToAsgi::new(hello),
        Scope::from(scope(Method::GET, "/")),
        [],
    )
    .await;
    assert_eq!(
        outcome.sent[1],
        SendEvent::response_body("Hello", false),
        "start and one final body, as a server's fast path wants"
    );
    assert_eq!(outcome.sent.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testbed_upload_counts_the_body_as_it_streams() {
    let mut s = scope(Method::POST, "/wsgi/upload");
    s.root_path = "/wsgi".into();
    s.headers
        .insert("transfer-encoding", HeaderValue::from_static("chunked"));
    let mut session = TestSession::start(WsgiToAsgi::new(testbed), Scope::from(s));
    let data = Bytes::from(vec![b'u'; CHUNK]);
    // Far more chunks than the channels between the client and the app hold: every push
    // goes through only because the app reads the body as it arrives.
    for i in 0..CHUNKS {
        let event = ReceiveEvent::request(data.clone(), i + 1 < CHUNKS);
        tokio::time::timeout(PATIENCE, session.send(event))
            .await
            .expect("the app stopped reading")
            .unwrap();
    }
    let events = [
        next(&mut session).await.unwrap(),
        next(&mut session).await.unwrap(),
    ];
    let seen = seen(&events);
    assert_eq!(seen.status, Some(StatusCode::OK));
    assert_eq!(seen.headers["content-type"], "application/json");
    let answer: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(answer, serde_json::json!({ "bytes": CHUNKS * CHUNK }));
    session.finish().await.unwrap();
}
