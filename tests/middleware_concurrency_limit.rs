//! ConcurrencyLimit: up to N requests in the app at once; the next gets 503 with
//! Retry-After, and a freed slot is used again.

use std::time::Duration;

use asgi::core::{AppExt, Error, Receiver, Scope, Sender};
use asgi::server::middleware::concurrency_limit::ConcurrencyLimitLayer;
use asgi::server::response::Response;
use asgi::server::test_client::TestClient;
use tokio::sync::{Semaphore, mpsc};

/// An app that reports that it entered, then waits until the test releases it.
fn gated(entered: mpsc::Sender<()>, gate: std::sync::Arc<Semaphore>) -> impl asgi::core::App {
    move |_: Scope, _: Receiver, mut send: Sender| {
        let entered = entered.clone();
        let gate = gate.clone();
        async move {
            entered.send(()).await.unwrap();
            gate.acquire().await.unwrap().forget();
            Response::text("done").send(&mut send).await
        }
    }
}

#[tokio::test]
async fn requests_beyond_the_limit_get_503_with_retry_after() {
    let (entered_tx, mut entered) = mpsc::channel(4);
    let gate = std::sync::Arc::new(Semaphore::new(0));
    let client = std::sync::Arc::new(TestClient::new(
        gated(entered_tx, gate.clone())
            .with(ConcurrencyLimitLayer::new(2).retry_after(Duration::from_millis(2500))),
    ));
    let mut in_flight = Vec::new();
    for _ in 0..2 {
        let client = client.clone();
        in_flight.push(tokio::spawn(async move { client.get("/").await.unwrap() }));
        entered.recv().await.unwrap();
    }
    let refused = client.get("/").await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.header("retry-after"), Some("3"));
    assert_eq!(refused.text(), "Service Unavailable");
    gate.add_permits(2);
    for task in in_flight {
        assert_eq!(task.await.unwrap().text(), "done");
    }
    // The slots are free again.
    gate.add_permits(1);
    let again = client.get("/").await.unwrap();
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn a_failing_app_frees_its_slot() {
    let app = |_: Scope, _: Receiver, _: Sender| async move { Err::<(), _>(Error::msg("boom")) };
    let client = TestClient::new(app.with(ConcurrencyLimitLayer::new(1))).raise_app_errors(false);
    for _ in 0..3 {
        assert_eq!(client.get("/").await.unwrap().status(), 500);
    }
}

#[tokio::test]
async fn websockets_count_and_are_refused_with_503() {
    async fn ws(scope: Scope, receive: Receiver, send: Sender) -> Result<(), Error> {
        let Scope::WebSocket(scope) = scope else {
            return Ok(());
        };
        let mut socket = asgi::ws::WebSocket::new(scope, receive, send);
        socket.accept().await?;
        // Held open until the client closes.
        while !matches!(socket.recv().await?, asgi::ws::Message::Close { .. }) {}
        Ok(())
    }
    let client = TestClient::new(ws.with(ConcurrencyLimitLayer::new(1)));
    let open = client.websocket("/").connect().await.unwrap();
    let refused = client.websocket("/").connect().await.unwrap_err();
    let denial = refused.denial().unwrap();
    assert_eq!(denial.status(), 503);
    assert_eq!(denial.header("retry-after"), Some("1"));
    open.close(1000).await.unwrap();
}
