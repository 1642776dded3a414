//! Compression: the coding negotiated from `Accept-Encoding`, what is left alone, the
//! encoder flushed per body event (in-process and over a real socket with server-sent
//! events), bounded output events, and request decompression with its limits.

mod common;

use std::io::Write;
use std::time::Duration;

use asgi::core::{AppExt, Error, ReceiveEvent, Receiver, Scope, SendEvent, Sender};
use asgi::server::middleware::compression::{CompressionLayer, Level, OUTPUT_CHUNK_SIZE};
use asgi::server::response::Response;
use asgi::server::test_client::{TestClient, TestRequest};
use bytes::Bytes;
use compression_codecs::core::util::PartialBuffer;
use compression_codecs::{BrotliDecoder, Decode, GzipDecoder, ZstdDecoder};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use tokio::sync::mpsc;

/// Text that compresses well, of `len` bytes.
fn text(len: usize) -> String {
    "the quick brown fox jumps over the lazy dog. "
        .chars()
        .cycle()
        .take(len)
        .collect()
}

/// Inflates a stream as it arrives: `push` gives what the bytes so far decode to.
/// Takes the next compressed bytes, gives what they decode to.
type Feed = Box<dyn FnMut(&[u8]) -> Vec<u8> + Send>;

struct Inflater(Feed);

impl Inflater {
    fn new(coding: &str) -> Self {
        fn run<D: Decode + Send + 'static>(mut decoder: D) -> Feed {
            Box::new(move |chunk: &[u8]| {
                let mut out = Vec::new();
                let mut input = PartialBuffer::new(chunk);
                loop {
                    let mut output = PartialBuffer::new(vec![0u8; 64 * 1024]);
                    let done = decoder.decode(&mut input, &mut output).unwrap();
                    let n = output.written_len();
                    out.extend_from_slice(&output.into_inner()[..n]);
                    // Stop when the input is used up and the decoder had room to spare: it
                    // holds nothing more until more input comes.
                    if done || (input.unwritten().is_empty() && n < 64 * 1024) {
                        break;
                    }
                }
                out
            })
        }
        Inflater(match coding {
            "gzip" => run(GzipDecoder::new()),
            "br" => run(BrotliDecoder::new()),
            "zstd" => run(ZstdDecoder::new()),
            other => panic!("unknown coding {other}"),
        })
    }

    fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        (self.0)(chunk)
    }
}

fn decode(coding: &str, bytes: &[u8]) -> Vec<u8> {
    Inflater::new(coding).push(bytes)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Answers with `len` bytes of text, as one event.
fn body_app(len: usize) -> impl asgi::core::App {
    move |_: Scope, _: Receiver, mut send: Sender| async move {
        Response::text(text(len)).send(&mut send).await
    }
}

fn with_headers(
    headers: &'static [(&'static str, &'static str)],
    len: usize,
) -> impl asgi::core::App {
    move |_: Scope, _: Receiver, mut send: Sender| async move {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, HeaderValue::from_static(v));
        }
        let status = map
            .remove("x-status")
            .map_or(StatusCode::OK, |s| s.to_str().unwrap().parse().unwrap());
        send.send(SendEvent::response_start(status, map)).await?;
        send.send(SendEvent::response_body(text(len), false))
            .await?;
        Ok(())
    }
}

async fn get(client: &TestClient, accept: &str) -> asgi::server::test_client::TestResponse {
    client
        .send(TestRequest::get("/").header("accept-encoding", accept))
        .await
        .unwrap()
}

#[tokio::test]
async fn gzip_response_decodes_to_the_original_with_vary_and_no_length() {
    let client = TestClient::new(body_app(2000).with(CompressionLayer::new()));
    let response = get(&client, "gzip").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.header("content-encoding"), Some("gzip"));
    assert_eq!(response.header("vary"), Some("Accept-Encoding"));
    assert_eq!(response.header("content-length"), None);
    assert!(response.bytes().len() < 2000);
    assert_eq!(decode("gzip", response.bytes()), text(2000).as_bytes());
}

#[tokio::test]
async fn br_and_zstd_responses_decode_to_the_original() {
    let client = TestClient::new(body_app(5000).with(CompressionLayer::new()));
    for coding in ["br", "zstd"] {
        let response = get(&client, coding).await;
        assert_eq!(response.header("content-encoding"), Some(coding));
        assert_eq!(
            decode(coding, response.bytes()),
            text(5000).as_bytes(),
            "{coding}"
        );
    }
}

#[tokio::test]
async fn q_values_choose_the_coding() {
    let client = TestClient::new(body_app(2000).with(CompressionLayer::new()));
    let cases = [
        ("gzip, br, zstd", Some("br")),
        ("gzip;q=1.0, br;q=0.5", Some("gzip")),
        ("br;q=0, *", Some("zstd")),
        ("*;q=0.1, gzip;q=0.9", Some("gzip")),
        ("GZIP", Some("gzip")),
        ("identity", None),
        ("gzip;q=0", None),
        ("*;q=0", None),
        ("deflate", None),
        ("gzip;q=nonsense", None),
    ];
    for (accept, expected) in cases {
        let response = get(&client, accept).await;
        assert_eq!(
            response.header("content-encoding"),
            expected,
            "Accept-Encoding: {accept}"
        );
    }
    let plain = client.get("/").await.unwrap();
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.bytes().len(), 2000);
}

#[tokio::test]
async fn disabled_codings_are_not_chosen() {
    let client =
        TestClient::new(body_app(2000).with(CompressionLayer::new().br(false).zstd(false)));
    assert_eq!(
        get(&client, "br, zstd, gzip;q=0.1")
            .await
            .header("content-encoding"),
        Some("gzip")
    );
}

#[tokio::test]
async fn small_responses_stay_plain_unless_identity_is_refused() {
    let client = TestClient::new(body_app(100).with(CompressionLayer::new()));
    let small = get(&client, "gzip").await;
    assert_eq!(small.header("content-encoding"), None);
    assert_eq!(small.header("content-length"), Some("100"));
    assert_eq!(small.header("vary"), Some("Accept-Encoding"));
    let refused = get(&client, "gzip, identity;q=0").await;
    assert_eq!(refused.header("content-encoding"), Some("gzip"));
    assert_eq!(decode("gzip", refused.bytes()), text(100).as_bytes());
    let client = TestClient::new(body_app(100).with(CompressionLayer::new().minimum_size(0)));
    assert_eq!(
        get(&client, "gzip").await.header("content-encoding"),
        Some("gzip")
    );
}

#[tokio::test]
async fn every_level_round_trips() {
    for level in [
        Level::Fastest,
        Level::Default,
        Level::Best,
        Level::Precise(2),
    ] {
        let client = TestClient::new(body_app(3000).with(CompressionLayer::new().level(level)));
        for coding in ["gzip", "br", "zstd"] {
            let response = get(&client, coding).await;
            assert_eq!(
                decode(coding, response.bytes()),
                text(3000).as_bytes(),
                "{level:?} {coding}"
            );
        }
    }
}

#[tokio::test]
async fn already_encoded_event_streams_partial_and_no_transform_are_left_alone() {
    let cases: [&'static [(&'static str, &'static str)]; 4] = [
        &[("content-encoding", "gzip")],
        &[("content-type", "text/event-stream")],
        &[("x-status", "206"), ("content-range", "bytes 0-1999/4000")],
        &[("cache-control", "public, no-transform")],
    ];
    for headers in cases {
        let client = TestClient::new(with_headers(headers, 2000).with(CompressionLayer::new()));
        let response = get(&client, "gzip").await;
        assert_eq!(
            response.bytes().as_ref(),
            text(2000).as_bytes(),
            "{headers:?}"
        );
        assert_eq!(response.header("vary"), None, "{headers:?}");
        assert_ne!(
            response.header("content-encoding"),
            Some("br"),
            "{headers:?}"
        );
    }
}

#[tokio::test]
async fn head_responses_are_left_alone() {
    let client = TestClient::new(body_app(2000).with(CompressionLayer::new()));
    let response = client
        .send(TestRequest::head("/").header("accept-encoding", "gzip"))
        .await
        .unwrap();
    assert_eq!(response.header("content-encoding"), None);
    assert_eq!(response.header("content-length"), Some("2000"));
}

#[tokio::test]
async fn event_streams_can_be_compressed_on_request() {
    let client = TestClient::new(
        with_headers(&[("content-type", "text/event-stream")], 2000)
            .with(CompressionLayer::new().compress_event_streams(true)),
    );
    let response = get(&client, "gzip").await;
    assert_eq!(response.header("content-encoding"), Some("gzip"));
    assert_eq!(decode("gzip", response.bytes()), text(2000).as_bytes());
}

/// An app that streams three events, sending each only when the test says so.
fn paced_app(
    mut go: mpsc::Receiver<()>,
) -> impl FnOnce(Scope, Receiver, Sender) -> futures_like::BoxFut {
    move |_, _, mut send| {
        Box::pin(async move {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            send.send(SendEvent::response_start(StatusCode::OK, headers))
                .await?;
            for i in 0..3 {
                go.recv().await;
                send.send(SendEvent::response_body(format!("event {i}\n"), true))
                    .await?;
            }
            send.send(SendEvent::response_body(Bytes::new(), false))
                .await?;
            Ok(())
        })
    }
}

mod futures_like {
    pub(crate) type BoxFut =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), asgi::core::Error>> + Send>>;
}

/// Wraps a one-shot app factory as an app that can be called once.
fn once(
    f: impl FnOnce(Scope, Receiver, Sender) -> futures_like::BoxFut + Send + 'static,
) -> impl asgi::core::App {
    let slot = std::sync::Mutex::new(Some(f));
    move |scope: Scope, receive: Receiver, send: Sender| {
        let f = slot.lock().unwrap().take();
        async move {
            match f {
                Some(f) => f(scope, receive, send).await,
                None => Ok(()),
            }
        }
    }
}

#[tokio::test]
async fn each_streamed_event_decodes_before_the_next_is_sent() {
    for coding in ["gzip", "br", "zstd"] {
        let (go, paced) = mpsc::channel(1);
        let client = TestClient::new(once(paced_app(paced)).with(CompressionLayer::new()));
        let mut stream = client
            .stream(TestRequest::get("/").header("accept-encoding", coding))
            .await
            .unwrap();
        assert_eq!(stream.header("content-encoding"), Some(coding));
        let mut inflater = Inflater::new(coding);
        for i in 0..3 {
            go.send(()).await.unwrap();
            let chunk = stream.chunk().await.unwrap().unwrap();
            assert_eq!(
                inflater.push(&chunk),
                format!("event {i}\n").as_bytes(),
                "{coding}"
            );
        }
        while let Some(chunk) = stream.chunk().await.unwrap() {
            assert!(inflater.push(&chunk).is_empty());
        }
    }
}

#[tokio::test]
async fn output_events_are_bounded_whatever_the_input_size() {
    // Random-looking bytes barely compress: 1 MiB in, about 1 MiB out.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let noise: Vec<u8> = (0..1 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let body = Bytes::from(noise);
    let expected = body.clone();
    let app = move |_: Scope, _: Receiver, mut send: Sender| {
        let body = body.clone();
        async move { Response::bytes(body).send(&mut send).await }
    };
    let client = TestClient::new(app.with(CompressionLayer::new().level(Level::Fastest)));
    let mut stream = client
        .stream(TestRequest::get("/").header("accept-encoding", "gzip"))
        .await
        .unwrap();
    let mut all = Vec::new();
    let mut events = 0;
    while let Some(chunk) = stream.chunk().await.unwrap() {
        assert!(
            chunk.len() <= OUTPUT_CHUNK_SIZE,
            "an event of {} bytes",
            chunk.len()
        );
        all.extend_from_slice(&chunk);
        events += 1;
    }
    assert!(events > 1);
    assert_eq!(decode("gzip", &all), expected);
}

#[tokio::test]
async fn path_sent_files_are_read_and_compressed() {
    let path = std::env::temp_dir().join(format!("asgi-compression-{}.txt", std::process::id()));
    std::fs::write(&path, text(100_000)).unwrap();
    let file = path.clone();
    let app = move |scope: Scope, _: Receiver, mut send: Sender| {
        let file = file.clone();
        async move {
            Response::file(&file, scope.extensions().unwrap())
                .await?
                .send(&mut send)
                .await
        }
    };
    let client = TestClient::new(app.with(CompressionLayer::new()));
    let compressed = get(&client, "gzip").await;
    let plain = client.get("/").await.unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(compressed.header("content-encoding"), Some("gzip"));
    assert_eq!(compressed.header("content-length"), None);
    assert_eq!(decode("gzip", compressed.bytes()), text(100_000).as_bytes());
    assert_eq!(plain.header("content-length"), Some("100000"));
}

#[tokio::test]
async fn already_compressed_content_types_are_left_alone() {
    for content_type in ["image/png", "video/mp4", "application/zip", "font/woff2"] {
        let headers: &'static [(&'static str, &'static str)] =
            Box::leak(vec![("content-type", content_type)].into_boxed_slice());
        let client = TestClient::new(with_headers(headers, 2000).with(CompressionLayer::new()));
        assert_eq!(
            get(&client, "gzip").await.header("content-encoding"),
            None,
            "{content_type}"
        );
    }
    let svg = TestClient::new(
        with_headers(&[("content-type", "image/svg+xml")], 2000).with(CompressionLayer::new()),
    );
    assert_eq!(
        get(&svg, "gzip").await.header("content-encoding"),
        Some("gzip")
    );
}

/// Echoes the request body with its length and the content-encoding the app saw.
async fn echo(scope: Scope, mut receive: Receiver, mut send: Sender) -> Result<(), Error> {
    let seen = scope
        .headers()
        .and_then(|h| h.get("content-encoding"))
        .map(|v| v.to_str().unwrap().to_owned());
    let mut body = Vec::new();
    loop {
        match receive.recv().await {
            ReceiveEvent::HttpRequest {
                body: chunk,
                more_body,
            } => {
                assert!(chunk.len() <= OUTPUT_CHUNK_SIZE);
                body.extend_from_slice(&chunk);
                if !more_body {
                    break;
                }
            }
            _ => return Err(Error::disconnected()),
        }
    }
    Response::text(format!(
        "{seen:?} {} {}",
        body.len(),
        String::from_utf8_lossy(&body[..body.len().min(9)])
    ))
    .send(&mut send)
    .await
}

#[tokio::test]
async fn compressed_request_bodies_are_inflated_for_the_app() {
    let client =
        TestClient::new(echo.with(CompressionLayer::new().decompress_requests(Some(1 << 20))));
    let body = gzip(text(100_000).as_bytes());
    let response = client
        .send(
            TestRequest::post("/")
                .header("content-encoding", "gzip")
                .body(body),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text(), "None 100000 the quick");
}

#[tokio::test]
async fn compressed_request_bodies_in_many_chunks_are_inflated() {
    let client =
        TestClient::new(echo.with(CompressionLayer::new().decompress_requests(Some(1 << 20))));
    let body = gzip(text(50_000).as_bytes());
    let chunks: Vec<Bytes> = body.chunks(7).map(Bytes::copy_from_slice).collect();
    let response = client
        .send(
            TestRequest::post("/")
                .header("content-encoding", "gzip")
                .body_stream(futures_util::stream::iter(chunks)),
        )
        .await
        .unwrap();
    assert_eq!(response.text(), "None 50000 the quick");
}

#[tokio::test]
async fn zip_bomb_gets_413() {
    let client =
        TestClient::new(echo.with(CompressionLayer::new().decompress_requests(Some(64 * 1024))));
    let bomb = gzip(&vec![0u8; 10 << 20]);
    assert!(bomb.len() < 64 * 1024);
    let response = client
        .send(
            TestRequest::post("/")
                .header("content-encoding", "gzip")
                .body(bomb),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn corrupt_compressed_body_gets_400() {
    let client =
        TestClient::new(echo.with(CompressionLayer::new().decompress_requests(Some(1 << 20))));
    let response = client
        .send(
            TestRequest::post("/")
                .header("content-encoding", "gzip")
                .body("not gzip at all"),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let mut truncated = gzip(text(10_000).as_bytes());
    truncated.truncate(truncated.len() / 2);
    let response = client
        .send(
            TestRequest::post("/")
                .header("content-encoding", "gzip")
                .body(truncated),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn unknown_request_coding_gets_415() {
    let client =
        TestClient::new(echo.with(CompressionLayer::new().decompress_requests(Some(1 << 20))));
    let response = client
        .send(
            TestRequest::post("/")
                .header("content-encoding", "compress")
                .body("x"),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
}

#[tokio::test]
async fn request_bodies_pass_untouched_without_decompression() {
    let client = TestClient::new(echo.with(CompressionLayer::new()));
    let body = gzip(b"hello");
    let len = body.len();
    let response = client
        .send(
            TestRequest::post("/")
                .header("content-encoding", "gzip")
                .body(body),
        )
        .await
        .unwrap();
    assert!(
        response
            .text()
            .starts_with(&format!("Some(\"gzip\") {len} "))
    );
}

/// Server-sent events over a real socket: each event arrives, decoded, before the app sends
/// the next one, compressed (when asked for) or not.
#[tokio::test]
async fn server_sent_events_arrive_one_by_one_over_a_socket() {
    for compress in [false, true] {
        let (go_tx, go_rx) = mpsc::channel::<()>(1);
        let go_rx = std::sync::Arc::new(tokio::sync::Mutex::new(go_rx));
        let app = move |_: Scope, _: Receiver, mut send: Sender| {
            let go = go_rx.clone();
            async move {
                let mut headers = HeaderMap::new();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/event-stream"),
                );
                send.send(SendEvent::response_start(StatusCode::OK, headers))
                    .await?;
                let mut go = go.lock().await;
                for i in 0..3 {
                    go.recv().await;
                    send.send(SendEvent::response_body(
                        format!("data: tick {i}\n\n"),
                        true,
                    ))
                    .await?;
                }
                send.send(SendEvent::response_body(Bytes::new(), false))
                    .await?;
                Ok(())
            }
        };
        let server = common::start(
            app.with(CompressionLayer::new().compress_event_streams(compress)),
            |b| b,
        )
        .await;
        let (mut sender, _conn) = common::h1(server.addr).await;
        let request = http::Request::get("/events")
            .header("host", "test")
            .header("accept-encoding", "gzip")
            .body(common::empty())
            .unwrap();
        // The server sends the head with the first body event: let the app send it.
        go_tx.send(()).await.unwrap();
        let response = tokio::time::timeout(Duration::from_secs(10), sender.send_request(request))
            .await
            .expect("the head arrives with the first event")
            .unwrap();
        let expected_coding = compress.then_some("gzip");
        assert_eq!(
            response
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap()),
            expected_coding
        );
        let mut body = response.into_body();
        let mut inflater = compress.then(|| Inflater::new("gzip"));
        for i in 0..3 {
            if i > 0 {
                go_tx.send(()).await.unwrap();
            }
            let want = format!("data: tick {i}\n\n");
            let mut got = Vec::new();
            while got.len() < want.len() {
                let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
                    .await
                    .expect("the event arrives before the next is sent")
                    .unwrap()
                    .unwrap();
                if let Ok(data) = frame.into_data() {
                    match &mut inflater {
                        Some(inflater) => got.extend(inflater.push(&data)),
                        None => got.extend_from_slice(&data),
                    }
                }
            }
            assert_eq!(
                String::from_utf8(got).unwrap(),
                want,
                "compress: {compress}"
            );
        }
        server.stop().await.unwrap();
    }
}
