//! `Receiver` contract: never fails, keeps returning the disconnect event, and a disconnect
//! reaches a `recv` that is already pending.

use std::time::Duration;

use asgi_core::host::testing::{self, TestSession};
use asgi_core::http::Method;
use asgi_core::{Error, HttpScope, ReceiveEvent, Receiver, Scope, Sender, WebSocketScope};

fn http() -> Scope {
    Scope::from(HttpScope::new(Method::POST, "/"))
}

#[tokio::test]
async fn recv_after_events_run_out_returns_disconnect_every_time() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
    let app = move |_: Scope, mut receive: Receiver, _: Sender| {
        let tx = tx.clone();
        async move {
            let mut seen = Vec::new();
            for _ in 0..4 {
                seen.push(receive.recv().await);
            }
            if let Some(tx) = tx.lock().unwrap().take() {
                let _ = tx.send(seen);
            }
            Ok::<(), Error>(())
        }
    };
    let outcome = testing::call(&app, http(), [ReceiveEvent::request("a", false)]).await;
    assert!(outcome.result.is_ok());
    assert_eq!(
        rx.await.unwrap(),
        vec![
            ReceiveEvent::request("a", false),
            ReceiveEvent::HttpDisconnect,
            ReceiveEvent::HttpDisconnect,
            ReceiveEvent::HttpDisconnect
        ]
    );
}

#[tokio::test]
async fn websocket_disconnect_is_abnormal_closure_when_peer_vanishes() {
    let outcome_event = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = outcome_event.clone();
    let app = move |_: Scope, mut receive: Receiver, _: Sender| {
        let slot = slot.clone();
        async move {
            *slot.lock().unwrap() = Some(receive.recv().await);
            Ok::<(), Error>(())
        }
    };
    testing::call(&app, Scope::from(WebSocketScope::new("/")), []).await;
    assert_eq!(
        outcome_event.lock().unwrap().clone(),
        Some(ReceiveEvent::WebSocketDisconnect {
            code: 1006,
            reason: String::new()
        })
    );
}

#[tokio::test]
async fn disconnect_reaches_pending_recv() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
    let app = move |_: Scope, mut receive: Receiver, _: Sender| {
        let tx = tx.clone();
        async move {
            // Pending here, with no events, until the client leaves.
            let event = receive.recv().await;
            if let Some(tx) = tx.lock().unwrap().take() {
                let _ = tx.send(event);
            }
            Ok::<(), Error>(())
        }
    };
    let mut session = TestSession::start(app, http());
    tokio::time::sleep(Duration::from_millis(20)).await;
    session.disconnect();
    let event = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .expect("disconnect did not reach the pending recv")
        .unwrap();
    assert_eq!(event, ReceiveEvent::HttpDisconnect);
}

#[tokio::test]
async fn receiver_moved_into_a_task_sees_disconnect_while_app_works() {
    let (tx, rx) = tokio::sync::oneshot::channel::<ReceiveEvent>();
    let tx = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
    let app = move |_: Scope, mut receive: Receiver, _: Sender| {
        let tx = tx.clone();
        async move {
            let watcher = tokio::spawn(async move { receive.recv().await });
            // The app is "busy" until the watcher reports.
            let event = watcher.await.map_err(Error::new)?;
            if let Some(tx) = tx.lock().unwrap().take() {
                let _ = tx.send(event);
            }
            Ok(())
        }
    };
    let mut session = TestSession::start(app, http());
    session.disconnect();
    assert_eq!(rx.await.unwrap(), ReceiveEvent::HttpDisconnect);
    assert!(session.finish().await.is_ok());
}

#[tokio::test]
async fn receiver_map_rewrites_events() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
    let app = move |_: Scope, receive: Receiver, _: Sender| {
        let tx = tx.clone();
        async move {
            let mut receive = receive.map(|event| match event {
                ReceiveEvent::HttpRequest { body, more_body } => ReceiveEvent::HttpRequest {
                    body: body.to_ascii_uppercase().into(),
                    more_body,
                },
                other => other,
            });
            let event = receive.recv().await;
            if let Some(tx) = tx.lock().unwrap().take() {
                let _ = tx.send(event);
            }
            Ok::<(), Error>(())
        }
    };
    testing::call(&app, http(), [ReceiveEvent::request("shout", false)]).await;
    assert_eq!(rx.await.unwrap(), ReceiveEvent::request("SHOUT", false));
}

#[test]
fn handles_are_send_and_static() {
    fn assert_send_static<T: Send + 'static>() {}
    assert_send_static::<Receiver>();
    assert_send_static::<Sender>();
    assert_send_static::<Scope>();
}
