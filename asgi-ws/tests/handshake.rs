//! Every handshake outcome of `start`: accept, close before accept, denial, error, panic,
//! and the protocol mistakes an app can make while answering.

mod common;

use asgi_core::extensions::WEBSOCKET_HTTP_RESPONSE;
use asgi_core::{
    Error, ReceiveEvent, Receiver, Scope, SendError, SendEvent, Sender, WebSocketScope,
};
use asgi_ws::{HandshakeOutcome, WebSocketConfig};
use bytes::Bytes;
use common::*;
use futures_util::StreamExt;
use http::{HeaderMap, HeaderValue, StatusCode};
use tokio::sync::{mpsc, oneshot};

async fn outcome_of(
    app: impl asgi_core::App,
    extra: &[(&'static str, &'static str)],
) -> HandshakeOutcome {
    within(asgi_ws::start(
        app,
        WebSocketScope::new("/ws"),
        &upgrade(extra),
        &WebSocketConfig::default(),
        |run| drop(tokio::spawn(run)),
    ))
    .await
}

/// Reports what the app's `recv` gives after its answer, and what a `send` gives.
type After = mpsc::Sender<(ReceiveEvent, Result<(), SendError>)>;

async fn report_after(receive: &mut Receiver, send: &mut Sender, after: &After) {
    let event = receive.recv().await;
    let sent = send.send(SendEvent::text("late")).await;
    let _ = after.send((event, sent)).await;
}

#[tokio::test]
async fn accept_gives_the_101_headers_with_subprotocol_extension_and_app_headers() {
    let (scope_tx, scope_rx) = oneshot::channel();
    let scope_tx = std::sync::Mutex::new(Some(scope_tx));
    let app = move |scope: Scope, mut receive: Receiver, mut send: Sender| {
        if let Some(tx) = scope_tx.lock().unwrap().take() {
            let _ = tx.send(scope.clone());
        }
        async move {
            receive.recv().await;
            let mut headers = HeaderMap::new();
            headers.append("set-cookie", HeaderValue::from_static("a=1"));
            headers.append("set-cookie", HeaderValue::from_static("b=2"));
            // Would contradict the handshake: dropped.
            headers.insert("sec-websocket-accept", HeaderValue::from_static("forged"));
            send.send(SendEvent::WebSocketAccept {
                subprotocol: Some("v2.chat".into()),
                headers,
            })
            .await?;
            Ok::<(), Error>(())
        }
    };
    let outcome = outcome_of(
        app,
        &[
            ("sec-websocket-protocol", "v1.chat, v2.chat"),
            ("sec-websocket-extensions", "permessage-deflate"),
        ],
    )
    .await;
    let HandshakeOutcome::Accept(accepted) = outcome else {
        panic!("{outcome:?}")
    };
    let headers = accepted.response_headers();
    assert_eq!(headers["upgrade"], "websocket");
    assert_eq!(headers["connection"], "upgrade");
    assert_eq!(
        headers["sec-websocket-accept"],
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    assert_eq!(headers.get_all("sec-websocket-accept").iter().count(), 1);
    assert_eq!(headers["sec-websocket-protocol"], "v2.chat");
    assert_eq!(headers["sec-websocket-extensions"], "permessage-deflate");
    let cookies: Vec<_> = headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert_eq!(accepted.subprotocol(), Some("v2.chat"));
    assert!(accepted.deflate().is_some());

    // The scope carries the offered subprotocols and declares denial responses.
    let Scope::WebSocket(scope) = scope_rx.await.unwrap() else {
        panic!()
    };
    assert_eq!(scope.subprotocols, ["v1.chat", "v2.chat"]);
    assert!(scope.extensions.supports(WEBSOCKET_HTTP_RESPONSE));
}

#[tokio::test]
async fn close_before_accept_gives_close_and_the_app_its_code() {
    let (after, mut seen) = mpsc::channel(1);
    let app = move |_: Scope, mut receive: Receiver, mut send: Sender| {
        let after = after.clone();
        async move {
            receive.recv().await;
            send.send(SendEvent::WebSocketClose {
                code: 4003,
                reason: "not allowed".into(),
            })
            .await?;
            report_after(&mut receive, &mut send, &after).await;
            Ok::<(), Error>(())
        }
    };
    let outcome = outcome_of(app, &[]).await;
    let HandshakeOutcome::Close { code, reason } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!((code, reason.as_str()), (4003, "not allowed"));
    let (event, sent) = within(seen.recv()).await.unwrap();
    assert_eq!(
        event,
        ReceiveEvent::WebSocketDisconnect {
            code: 4003,
            reason: "not allowed".into()
        }
    );
    assert_eq!(sent, Err(SendError::Disconnected));
}

#[tokio::test]
async fn denial_gives_status_headers_and_the_body_streamed_verbatim() {
    let (release, wait) = oneshot::channel::<()>();
    let wait = std::sync::Mutex::new(Some(wait));
    let (after, mut seen) = mpsc::channel(1);
    let app = move |_: Scope, mut receive: Receiver, mut send: Sender| {
        let wait = wait.lock().unwrap().take();
        let after = after.clone();
        async move {
            receive.recv().await;
            let mut headers = HeaderMap::new();
            headers.insert("content-type", HeaderValue::from_static("text/plain"));
            send.send(SendEvent::WebSocketHttpResponseStart {
                status: StatusCode::UNAUTHORIZED,
                headers,
            })
            .await?;
            send.send(SendEvent::WebSocketHttpResponseBody {
                body: Bytes::from_static(b"log in "),
                more_body: true,
            })
            .await?;
            // The server streams: the first chunk is readable before the second exists.
            if let Some(wait) = wait {
                let _ = wait.await;
            }
            send.send(SendEvent::WebSocketHttpResponseBody {
                body: Bytes::from_static(b"first\x00\xff"),
                more_body: false,
            })
            .await?;
            report_after(&mut receive, &mut send, &after).await;
            Ok::<(), Error>(())
        }
    };
    let outcome = outcome_of(app, &[]).await;
    let HandshakeOutcome::Deny(mut denial) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(denial.status, StatusCode::UNAUTHORIZED);
    assert_eq!(denial.headers["content-type"], "text/plain");
    assert_eq!(
        within(denial.body.chunk()).await.unwrap().unwrap(),
        "log in "
    );
    release.send(()).unwrap();
    assert_eq!(
        within(denial.body.next()).await.unwrap().unwrap(),
        &b"first\x00\xff"[..]
    );
    assert!(within(denial.body.chunk()).await.is_none());
    let (event, sent) = within(seen.recv()).await.unwrap();
    assert!(event.is_disconnect(), "{event:?}");
    assert_eq!(sent, Err(SendError::Disconnected));
}

#[tokio::test]
async fn denial_body_cut_short_by_an_error_is_an_error() {
    let app = |_: Scope, mut receive: Receiver, mut send: Sender| async move {
        receive.recv().await;
        send.send(SendEvent::WebSocketHttpResponseStart {
            status: StatusCode::FORBIDDEN,
            headers: HeaderMap::new(),
        })
        .await?;
        send.send(SendEvent::WebSocketHttpResponseBody {
            body: Bytes::from_static(b"partial"),
            more_body: true,
        })
        .await?;
        Err(Error::msg("failed mid-body"))
    };
    let HandshakeOutcome::Deny(denial) = outcome_of(app, &[]).await else {
        panic!()
    };
    let mut body = denial.body;
    assert_eq!(within(body.chunk()).await.unwrap().unwrap(), "partial");
    assert!(within(body.chunk()).await.unwrap().is_err());
    assert!(within(body.chunk()).await.is_none());
}

#[tokio::test]
async fn error_before_answering_fails_the_handshake() {
    let app = |_: Scope, mut receive: Receiver, _: Sender| async move {
        receive.recv().await;
        Err::<(), Error>(Error::msg("no database"))
    };
    let HandshakeOutcome::Failed(error) = outcome_of(app, &[]).await else {
        panic!()
    };
    assert_eq!(error.to_string(), "no database");
}

fn explode() -> Result<(), Error> {
    panic!("boom")
}

#[tokio::test]
async fn panic_before_answering_fails_the_handshake() {
    let app = |_: Scope, mut receive: Receiver, _: Sender| async move {
        receive.recv().await;
        explode()
    };
    let HandshakeOutcome::Failed(error) = outcome_of(app, &[]).await else {
        panic!()
    };
    assert!(error.is_panic(), "{error:?}");
    assert!(error.to_string().contains("boom"), "{error}");
}

#[tokio::test]
async fn returning_without_answering_fails_the_handshake() {
    let app = |_: Scope, mut receive: Receiver, _: Sender| async move {
        receive.recv().await;
        Ok::<(), Error>(())
    };
    let HandshakeOutcome::Failed(error) = outcome_of(app, &[]).await else {
        panic!()
    };
    assert!(error.to_string().contains("without answering"), "{error}");
}

#[tokio::test]
async fn subprotocol_the_client_did_not_offer_fails_the_handshake() {
    let (result_tx, result) = oneshot::channel();
    let result_tx = std::sync::Mutex::new(Some(result_tx));
    let app = move |_: Scope, mut receive: Receiver, mut send: Sender| {
        let result_tx = result_tx.lock().unwrap().take();
        async move {
            receive.recv().await;
            let accepted = send
                .send(SendEvent::WebSocketAccept {
                    subprotocol: Some("graphql".into()),
                    headers: HeaderMap::new(),
                })
                .await;
            if let Some(tx) = result_tx {
                let _ = tx.send(accepted);
            }
            // The app goes on waiting: the handshake must not wait for it.
            receive.recv().await;
            Ok::<(), Error>(())
        }
    };
    let outcome = outcome_of(app, &[("sec-websocket-protocol", "chat")]).await;
    let HandshakeOutcome::Failed(error) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(error.is_protocol(), "{error:?}");
    let Err(SendError::Protocol(e)) = within(result).await.unwrap() else {
        panic!()
    };
    assert_eq!(e.received(), "websocket.accept");
    assert!(e.expected().contains("subprotocol"), "{}", e.expected());
}

#[tokio::test]
async fn send_before_accept_is_a_protocol_error() {
    let (result_tx, result) = oneshot::channel();
    let result_tx = std::sync::Mutex::new(Some(result_tx));
    let app = move |_: Scope, mut receive: Receiver, mut send: Sender| {
        let result_tx = result_tx.lock().unwrap().take();
        async move {
            receive.recv().await;
            let early = send.send(SendEvent::text("too early")).await;
            if let Some(tx) = result_tx {
                let _ = tx.send(early);
            }
            send.send(SendEvent::WebSocketAccept {
                subprotocol: None,
                headers: HeaderMap::new(),
            })
            .await?;
            Ok::<(), Error>(())
        }
    };
    let outcome = outcome_of(app, &[]).await;
    assert!(
        matches!(outcome, HandshakeOutcome::Accept(_)),
        "{outcome:?}"
    );
    let Err(SendError::Protocol(e)) = within(result).await.unwrap() else {
        panic!()
    };
    assert_eq!(e.received(), "websocket.send");
}

#[tokio::test]
async fn dropping_the_handshake_disconnects_the_app_with_1006() {
    let (after, mut seen) = mpsc::channel(1);
    let app = move |_: Scope, mut receive: Receiver, mut send: Sender| {
        let after = after.clone();
        async move {
            receive.recv().await;
            report_after(&mut receive, &mut send, &after).await;
            Ok::<(), Error>(())
        }
    };
    let start = asgi_ws::start(
        app,
        WebSocketScope::new("/ws"),
        &upgrade(&[]),
        &WebSocketConfig::default(),
        |run| drop(tokio::spawn(run)),
    );
    // The client left before the app answered.
    drop(start);
    let (event, sent) = within(seen.recv()).await.unwrap();
    assert_eq!(
        event,
        ReceiveEvent::WebSocketDisconnect {
            code: 1006,
            reason: String::new()
        }
    );
    assert_eq!(sent, Err(SendError::Disconnected));
}

#[tokio::test]
async fn dropping_an_accepted_connection_disconnects_the_app_with_1006() {
    let (after, mut seen) = mpsc::channel(1);
    let app = move |_: Scope, mut receive: Receiver, mut send: Sender| {
        let after = after.clone();
        async move {
            receive.recv().await;
            send.send(SendEvent::WebSocketAccept {
                subprotocol: None,
                headers: HeaderMap::new(),
            })
            .await?;
            let event = receive.recv().await;
            let sent = send.send(SendEvent::text("late")).await;
            let _ = after.send((event, sent)).await;
            Ok::<(), Error>(())
        }
    };
    let HandshakeOutcome::Accept(accepted) = outcome_of(app, &[]).await else {
        panic!()
    };
    // The upgrade failed: the server never runs the connection.
    drop(accepted);
    let (event, sent) = within(seen.recv()).await.unwrap();
    assert_eq!(
        event,
        ReceiveEvent::WebSocketDisconnect {
            code: 1006,
            reason: String::new()
        }
    );
    assert_eq!(sent, Err(SendError::Disconnected));
}
