//! Closing: codes and reasons both ways, and exactly one `websocket.disconnect` on every path.

mod common;

use std::time::Duration;

use asgi_core::{Error, ReceiveEvent, Receiver, Scope, SendError, SendEvent, Sender};
use asgi_ws::CloseInitiator;
use common::*;
use futures_util::StreamExt;
use http::HeaderMap;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn accept() -> SendEvent {
    SendEvent::WebSocketAccept {
        subprotocol: None,
        headers: HeaderMap::new(),
    }
}

#[tokio::test]
async fn client_close_reaches_the_app_once_with_code_and_reason() {
    let (tx, mut reports) = mpsc::channel(64);
    let (mut client, server) = open(reporting_echo(tx), quiet()).await;
    client
        .close(Some(CloseFrame {
            code: CloseCode::from(4002),
            reason: "done here".into(),
        }))
        .await
        .unwrap();
    // The server answers the close with the same code.
    let answer = within(client.next()).await.unwrap().unwrap();
    assert_eq!(
        answer,
        Message::Close(Some(CloseFrame {
            code: CloseCode::from(4002),
            reason: "".into()
        }))
    );
    let ((code, reason), _) = one_disconnect(&mut reports).await;
    assert_eq!((code, reason.as_str()), (4002, "done here"));
    let closed = within(server.run).await.unwrap();
    assert_eq!(
        (closed.code, closed.initiator),
        (4002, CloseInitiator::Client)
    );
}

#[tokio::test]
async fn close_without_a_code_gives_1005() {
    let (tx, mut reports) = mpsc::channel(64);
    let (mut client, server) = open_raw(reporting_echo(tx), quiet()).await;
    write_raw(&mut client, &client_frame(CLOSE, true, false, &[])).await;
    // The answer has no code either.
    let answer = read_frame(&mut client).await.unwrap();
    assert_eq!((answer.opcode, answer.payload.len()), (CLOSE, 0));
    assert_eq!(one_disconnect(&mut reports).await.0, (1005, String::new()));
    assert_eq!(within(server.run).await.unwrap().code, 1005);
}

#[tokio::test]
async fn invalid_close_code_from_the_client_closes_1002() {
    let (tx, mut reports) = mpsc::channel(64);
    let (mut client, _server) = open_raw(reporting_echo(tx), quiet()).await;
    write_raw(
        &mut client,
        &client_frame(CLOSE, true, false, &close_payload(1005, "")),
    )
    .await;
    assert_eq!(read_close(&mut client).await.0, 1002);
    assert_eq!(one_disconnect(&mut reports).await.0.0, 1002);
}

#[tokio::test]
async fn network_drop_gives_1006_once() {
    let (tx, mut reports) = mpsc::channel(64);
    let (client, server) = open_raw(reporting_echo(tx), quiet()).await;
    drop(client);
    assert_eq!(one_disconnect(&mut reports).await.0, (1006, String::new()));
    let closed = within(server.run).await.unwrap();
    assert_eq!(
        (closed.code, closed.initiator),
        (1006, CloseInitiator::Client)
    );
}

#[tokio::test]
async fn disconnect_reaches_a_pending_recv_while_the_app_waits() {
    let (got, mut seen) = mpsc::channel(1);
    let app = move |_: Scope, mut receive: Receiver, mut send: Sender| {
        let got = got.clone();
        async move {
            receive.recv().await;
            send.send(accept()).await?;
            // Pending here, with nothing queued, when the client drops.
            let event = receive.recv().await;
            let _ = got.send(event).await;
            Ok::<(), Error>(())
        }
    };
    let (client, _server) = open_raw(app, quiet()).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(client);
    let event = within(seen.recv()).await.unwrap();
    assert_eq!(
        event,
        ReceiveEvent::WebSocketDisconnect {
            code: 1006,
            reason: String::new()
        }
    );
}

/// An app that accepts, then closes with `code` and `reason` and reports what its next
/// `recv` and a `send` give.
fn closing_app(
    code: u16,
    reason: &'static str,
    report: mpsc::Sender<Report>,
) -> impl asgi_core::App {
    move |_: Scope, mut receive: Receiver, mut send: Sender| {
        let report = report.clone();
        async move {
            receive.recv().await;
            send.send(accept()).await?;
            send.send(SendEvent::WebSocketClose {
                code,
                reason: reason.into(),
            })
            .await?;
            let event = receive.recv().await;
            let _ = report.send(Report::Event(event)).await;
            let again = receive.recv().await;
            let _ = report.send(Report::RecvAgain(again)).await;
            let sent = send.send(SendEvent::text("after close")).await;
            let _ = report.send(Report::SendAfter(sent)).await;
            Ok::<(), Error>(())
        }
    }
}

#[tokio::test]
async fn app_close_sends_its_code_and_reason_and_disconnects_once() {
    let (tx, mut reports) = mpsc::channel(64);
    let (mut client, server) = open(closing_app(4001, "bye now", tx), quiet()).await;
    let close = within(client.next()).await.unwrap().unwrap();
    assert_eq!(
        close,
        Message::Close(Some(CloseFrame {
            code: CloseCode::from(4001),
            reason: "bye now".into()
        }))
    );
    // tungstenite answers the close with the same code; the app learns it once.
    assert!(within(client.next()).await.is_none());
    let ((code, _), _) = one_disconnect_after_close(&mut reports).await;
    assert_eq!(code, 4001);
    let closed = within(server.run).await.unwrap();
    assert_eq!((closed.code, closed.initiator), (4001, CloseInitiator::App));
}

/// Like [`one_disconnect`], where `send` after the app's own close is a protocol error or
/// `Disconnected` (the app closed; both say it is over).
async fn one_disconnect_after_close(
    reports: &mut mpsc::Receiver<Report>,
) -> ((u16, String), Vec<ReceiveEvent>) {
    let mut disconnect = None;
    let mut again = None;
    let mut sent = None;
    while let Some(report) = within(reports.recv()).await {
        match report {
            Report::Event(event) => {
                assert!(disconnect.is_none());
                disconnect = Some(event);
            }
            Report::RecvAgain(event) => again = Some(event),
            Report::SendAfter(result) => sent = Some(result),
        }
    }
    let disconnect = disconnect.unwrap();
    assert_eq!(again.as_ref(), Some(&disconnect));
    assert!(matches!(sent, Some(Err(_))), "{sent:?}");
    let ReceiveEvent::WebSocketDisconnect { code, reason } = disconnect else {
        panic!("expected a disconnect, got {disconnect:?}")
    };
    ((code, reason), Vec::new())
}

#[tokio::test]
async fn app_close_without_an_answer_gives_1006_after_the_close_timeout() {
    let (tx, mut reports) = mpsc::channel(64);
    let mut config = quiet();
    config.close_timeout = Some(Duration::from_millis(200));
    let (mut client, server) = open_raw(closing_app(1000, "", tx), config).await;
    // Read the close frame but never answer it.
    assert_eq!(read_close(&mut client).await, (1000, String::new()));
    let ((code, _), _) = one_disconnect_after_close(&mut reports).await;
    assert_eq!(code, 1006);
    assert_eq!(within(server.run).await.unwrap().code, 1006);
}

#[tokio::test]
async fn invalid_close_code_from_the_app_is_a_protocol_error() {
    let (result_tx, mut result) = mpsc::channel(1);
    let app = move |_: Scope, mut receive: Receiver, mut send: Sender| {
        let result_tx = result_tx.clone();
        async move {
            receive.recv().await;
            send.send(accept()).await?;
            let bad_code = send
                .send(SendEvent::WebSocketClose {
                    code: 1006,
                    reason: String::new(),
                })
                .await;
            let long_reason = send
                .send(SendEvent::WebSocketClose {
                    code: 1000,
                    reason: "x".repeat(124),
                })
                .await;
            let _ = result_tx.send((bad_code, long_reason)).await;
            Ok::<(), Error>(())
        }
    };
    let (_client, _server) = open_raw(app, quiet()).await;
    let (bad_code, long_reason) = within(result.recv()).await.unwrap();
    let Err(SendError::Protocol(e)) = bad_code else {
        panic!("{bad_code:?}")
    };
    assert_eq!(e.received(), "websocket.close");
    assert!(e.expected().contains("code"), "{}", e.expected());
    let Err(SendError::Protocol(e)) = long_reason else {
        panic!("{long_reason:?}")
    };
    assert!(e.expected().contains("123 bytes"), "{}", e.expected());
}

#[tokio::test]
async fn shutdown_closes_1001_and_disconnects_once() {
    let (tx, mut reports) = mpsc::channel(64);
    let (mut client, server) = open(reporting_echo(tx), quiet()).await;
    server.shutdown.trigger();
    let close = within(client.next()).await.unwrap().unwrap();
    let Message::Close(Some(frame)) = close else {
        panic!("expected a close frame, got {close:?}")
    };
    assert_eq!(u16::from(frame.code), 1001);
    assert!(within(client.next()).await.is_none());
    let ((code, reason), _) = one_disconnect(&mut reports).await;
    assert_eq!((code, reason.as_str()), (1001, "server shutting down"));
    let closed = within(server.run).await.unwrap();
    assert_eq!(
        (closed.code, closed.initiator),
        (1001, CloseInitiator::Server)
    );
}

#[tokio::test]
async fn send_after_disconnect_is_disconnected() {
    let (tx, mut reports) = mpsc::channel(64);
    let (mut client, _server) = open(reporting_echo(tx), quiet()).await;
    client.close(None).await.unwrap();
    // `one_disconnect` checks that the app's `send` after the disconnect failed so.
    let ((code, _), _) = one_disconnect(&mut reports).await;
    assert_eq!(code, 1005);
}

/// An app that accepts, sends "last words", then ends as `end` says.
fn ending_app(end: &'static str) -> impl asgi_core::App {
    move |_: Scope, mut receive: Receiver, mut send: Sender| async move {
        receive.recv().await;
        send.send(accept()).await?;
        send.send(SendEvent::text("last words")).await?;
        match end {
            "ok" => Ok(()),
            "error" => Err(Error::msg("the database is down")),
            _ => panic!("app bug"),
        }
    }
}

async fn ended_with(end: &'static str) -> (u16, asgi_ws::Closed) {
    let (mut client, server) = open(ending_app(end), quiet()).await;
    // What the app sent before it returned goes out before the close.
    assert_eq!(
        within(client.next()).await.unwrap().unwrap(),
        Message::text("last words")
    );
    let Message::Close(Some(frame)) = within(client.next()).await.unwrap().unwrap() else {
        panic!("expected a close frame")
    };
    assert!(within(client.next()).await.is_none());
    (u16::from(frame.code), within(server.run).await.unwrap())
}

#[tokio::test]
async fn app_return_closes_1000() {
    let (code, closed) = ended_with("ok").await;
    assert_eq!(code, 1000);
    assert_eq!((closed.code, closed.initiator), (1000, CloseInitiator::App));
}

#[tokio::test]
async fn app_error_after_accept_closes_1011() {
    let (code, closed) = ended_with("error").await;
    assert_eq!(code, 1011);
    assert_eq!(closed.code, 1011);
}

#[tokio::test]
async fn app_panic_after_accept_closes_1011() {
    let (code, closed) = ended_with("panic").await;
    assert_eq!(code, 1011);
    assert_eq!(closed.code, 1011);
}

#[tokio::test]
async fn dropping_the_run_future_disconnects_the_app_with_1006() {
    let (tx, mut reports) = mpsc::channel(64);
    let (_client, server) = open_raw(reporting_echo(tx), quiet()).await;
    server.run.abort();
    assert_eq!(one_disconnect(&mut reports).await.0.0, 1006);
}
