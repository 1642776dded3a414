//! Timeout: 504 when the response has not started in time; the app then sees
//! `http.disconnect` on its pending `recv` and its sends fail with `Disconnected`; a
//! response that started in time is not cut.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use asgi::core::{AppExt, Error, ReceiveEvent, Receiver, Scope, SendError, SendEvent, Sender};
use asgi::server::middleware::timeout::TimeoutLayer;
use asgi::server::response::Response;
use asgi::server::test_client::{TestClient, TestRequest};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use tokio::sync::oneshot;

const LIMIT: Duration = Duration::from_millis(100);

#[tokio::test]
async fn fast_responses_pass() {
    let app = |_: Scope, _: Receiver, mut send: Sender| async move {
        Response::text("quick").send(&mut send).await
    };
    let client = TestClient::new(app.with(TimeoutLayer::new(LIMIT)));
    let response = client.get("/").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text(), "quick");
}

/// What the slow app observed after the deadline: the event its pending `recv` gave, and
/// what its `send` returned.
type Observed = Arc<Mutex<Option<(ReceiveEvent, Result<(), SendError>)>>>;

#[tokio::test]
async fn slow_app_gets_504_then_disconnect_and_failing_sends() {
    let observed: Observed = Arc::default();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let done_tx = Arc::new(Mutex::new(Some(done_tx)));
    let seen = observed.clone();
    let app = move |_: Scope, mut receive: Receiver, mut send: Sender| {
        let seen = seen.clone();
        let done = done_tx.clone();
        async move {
            // Read the (empty) body, then wait for the next event, which is the disconnect
            // the timeout delivers: the app is told, not dropped.
            let _body = receive.recv().await;
            let event = receive.recv().await;
            let sent = send
                .send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
                .await;
            *seen.lock().unwrap() = Some((event, sent));
            if let Some(done) = done.lock().unwrap().take() {
                let _ = done.send(());
            }
            Ok(())
        }
    };
    let client = TestClient::new(app.with(TimeoutLayer::new(LIMIT)));
    let started = std::time::Instant::now();
    let response = client.get("/").await.unwrap();
    assert_eq!(response.status(), 504);
    assert_eq!(response.text(), "Gateway Timeout");
    assert!(started.elapsed() >= LIMIT);
    tokio::time::timeout(Duration::from_secs(10), done_rx)
        .await
        .expect("the app finishes")
        .unwrap();
    let (event, sent) = observed.lock().unwrap().take().unwrap();
    assert_eq!(event, ReceiveEvent::HttpDisconnect);
    assert_eq!(sent, Err(SendError::Disconnected));
}

#[tokio::test]
async fn app_busy_without_recv_learns_from_its_send() {
    let app = |_: Scope, _: Receiver, mut send: Sender| async move {
        tokio::time::sleep(LIMIT * 3).await;
        // The normal `?` ends the app; the middleware turns that into the normal end.
        send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
            .await?;
        unreachable!("the send after the deadline fails");
    };
    let client = TestClient::new(app.with(TimeoutLayer::new(LIMIT)));
    let response = client.get("/").await.unwrap();
    assert_eq!(response.status(), 504);
}

#[tokio::test]
async fn started_stream_is_not_cut_by_the_limit() {
    let app = |_: Scope, _: Receiver, mut send: Sender| async move {
        send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
            .await?;
        for i in 0..3 {
            tokio::time::sleep(LIMIT).await;
            send.send(SendEvent::response_body(format!("{i}"), true))
                .await?;
        }
        send.send(SendEvent::response_body(Bytes::new(), false))
            .await?;
        Ok(())
    };
    let client = TestClient::new(app.with(TimeoutLayer::new(LIMIT)));
    let response = client.send(TestRequest::get("/")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text(), "012");
}

#[tokio::test]
async fn app_errors_are_kept() {
    let app = |_: Scope, _: Receiver, _: Sender| async move { Err(Error::msg("broken")) };
    let client = TestClient::new(app.with(TimeoutLayer::new(LIMIT))).raise_app_errors(false);
    assert_eq!(client.get("/").await.unwrap().status(), 500);
}
