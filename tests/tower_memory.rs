//! A 1 GiB upload and a 1 GiB download through an axum router served as an ASGI app
//! (`TowerApp` under a `Mount`, beside ASGI and WSGI apps) by this project's server: both
//! stream, so the process's peak memory grows by far less than the bytes moved.
//!
//! In a test binary of its own: the peak (`VmHWM`) is the whole process's, so no other test
//! may run beside it.

mod common;

#[allow(dead_code)]
#[path = "../examples/axum_interop/app.rs"]
mod interop;

use std::convert::Infallible;
use std::time::Duration;

use asgi::server::mount::Mount;
use asgi::tower::TowerApp;
use axum::body::Body as AxumBody;
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, StreamBody};

/// The bytes moved each way: 1 GiB.
const TOTAL: u64 = 1 << 30;
/// The size of the chunks both sides write: 64 KiB.
const CHUNK: usize = 64 * 1024;
/// How much the peak memory may grow while 2 GiB go through: 64 MiB, a sixteenth of one
/// direction. Buffering a body whole would take 1 GiB.
const MAX_GROWTH_KIB: u64 = 64 * 1024;
/// A bound on each transfer, for a debug build on a loaded machine.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(300);

/// The process's peak resident memory (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

fn chunks(chunk: Bytes, total: u64) -> impl futures_util::Stream<Item = Bytes> + Send {
    let count = total / chunk.len() as u64;
    futures_util::stream::iter((0..count).map(move |_| chunk.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gigabyte_upload_and_download_stream_through_an_axum_router_with_bounded_memory() {
    let chunk = Bytes::from(vec![b'x'; CHUNK]);
    let served = chunk.clone();
    let router = axum::Router::new()
        .route(
            "/download",
            get(move || {
                let chunk = served.clone();
                async move { AxumBody::from_stream(chunks(chunk, TOTAL).map(Ok::<_, Infallible>)) }
            }),
        )
        .route(
            "/upload",
            post(|body: AxumBody| async move {
                let mut stream = body.into_data_stream();
                let mut received = 0u64;
                while let Some(chunk) = stream.next().await {
                    match chunk {
                        Ok(chunk) => received += chunk.len() as u64,
                        Err(_) => return (StatusCode::BAD_REQUEST, String::new()),
                    }
                }
                (StatusCode::OK, received.to_string())
            }),
        );
    let app = Mount::new()
        .mount("/axum", TowerApp::new(router))
        .mount("/asgi", interop::asgi_hello);
    let server = common::start(app, |b| b.max_request_body(None)).await;
    // Warm up (first connection, first request), then take the baseline.
    assert_eq!(
        common::fetch(server.addr, "/asgi/hello").await.status,
        StatusCode::OK
    );
    let before = peak_rss_kib();

    let (mut sender, _conn) = common::h1(server.addr).await;
    let response = sender
        .send_request(common::get("/axum/download"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut downloaded = 0u64;
    tokio::time::timeout(TRANSFER_TIMEOUT, async {
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                downloaded += data.len() as u64;
            }
        }
    })
    .await
    .expect("the download finishes in time");
    assert_eq!(downloaded, TOTAL);

    let upload = BodyExt::boxed(StreamBody::new(
        chunks(chunk, TOTAL).map(|c| Ok::<_, Infallible>(http_body::Frame::data(c))),
    ));
    let request = Request::post("/axum/upload")
        .header("host", "test")
        .header("content-length", TOTAL.to_string())
        .body(upload)
        .unwrap();
    sender.ready().await.unwrap();
    let response = tokio::time::timeout(TRANSFER_TIMEOUT, sender.send_request(request))
        .await
        .expect("the upload finishes in time")
        .unwrap();
    let answer = common::read(response).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), TOTAL.to_string());

    let growth = peak_rss_kib().saturating_sub(before);
    eprintln!("peak memory grew by {growth} KiB (baseline {before} KiB)");
    assert!(
        growth < MAX_GROWTH_KIB,
        "peak memory grew by {growth} KiB while 2 GiB went through"
    );
    server.stop().await.unwrap();
}
