//! The `WebSocket` type for app authors, in-process (`asgi_core::host::testing::TestSession`) and over
//! a socket.

mod common;

use asgi_core::extensions::{Extensions, WEBSOCKET_HTTP_RESPONSE};
use asgi_core::host::testing::TestSession;
use asgi_core::{Error, ReceiveEvent, Receiver, Scope, SendEvent, Sender, WebSocketScope};
use asgi_ws::{HandshakeOutcome, Message, WebSocket, WebSocketConfig};
use bytes::Bytes;
use common::*;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, StatusCode};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite;

fn scope() -> Scope {
    Scope::from(WebSocketScope::new("/ws"))
}

fn ws(scope: Scope, receive: Receiver, send: Sender) -> WebSocket {
    let Scope::WebSocket(scope) = scope else {
        panic!("not a WebSocket scope")
    };
    WebSocket::new(scope, receive, send)
}

#[tokio::test]
async fn helper_echoes_and_reports_close_on_every_later_recv() {
    let (tx, mut closes) = mpsc::channel(4);
    let app = move |scope: Scope, receive: Receiver, send: Sender| {
        let tx = tx.clone();
        async move {
            let mut ws = ws(scope, receive, send);
            ws.accept().await?;
            loop {
                match ws.recv().await? {
                    Message::Text(text) => ws.send_text(format!("echo: {text}")).await?,
                    Message::Binary(bytes) => ws.send_binary(bytes).await?,
                    close @ Message::Close { .. } => {
                        let again = ws.recv().await?;
                        let _ = tx.send((close, again)).await;
                        return Ok::<(), Error>(());
                    }
                    _ => {}
                }
            }
        }
    };
    let mut session = TestSession::start(app, scope());
    session.send(ReceiveEvent::WebSocketConnect).await.unwrap();
    assert_eq!(
        session.recv().await.map(|e| e.type_name()),
        Some("websocket.accept")
    );
    session
        .send(ReceiveEvent::WebSocketReceive("hi".into()))
        .await
        .unwrap();
    assert_eq!(session.recv().await, Some(SendEvent::text("echo: hi")));
    session
        .send(ReceiveEvent::WebSocketReceive(
            Bytes::from_static(b"\x00\x01").into(),
        ))
        .await
        .unwrap();
    assert_eq!(
        session.recv().await,
        Some(SendEvent::binary(Bytes::from_static(b"\x00\x01")))
    );
    session
        .send(ReceiveEvent::WebSocketDisconnect {
            code: 4000,
            reason: "bye".into(),
        })
        .await
        .unwrap();
    let (close, again) = within(closes.recv()).await.unwrap();
    let expected = Message::Close {
        code: 4000,
        reason: "bye".into(),
    };
    assert_eq!((close, again), (expected.clone(), expected));
    assert!(session.finish().await.is_ok());
}

#[tokio::test]
async fn recv_before_accept_is_an_error() {
    let app = |scope: Scope, receive: Receiver, send: Sender| async move {
        let mut ws = ws(scope, receive, send);
        ws.recv().await.map(|_| ())
    };
    let session = TestSession::start(app, scope());
    let error = session.finish().await.unwrap_err();
    assert!(error.to_string().contains("before accept"), "{error}");
}

#[tokio::test]
async fn close_before_accept_rejects_the_handshake() {
    let app = |scope: Scope, receive: Receiver, send: Sender| async move {
        let mut ws = ws(scope, receive, send);
        ws.close(4003, "members only").await
    };
    let mut session = TestSession::start(app, scope());
    session.send(ReceiveEvent::WebSocketConnect).await.unwrap();
    assert_eq!(
        session.recv().await,
        Some(SendEvent::WebSocketClose {
            code: 4003,
            reason: "members only".into()
        })
    );
    assert!(session.finish().await.is_ok());
}

async fn denying_app(scope: Scope, receive: Receiver, send: Sender) -> Result<(), Error> {
    let mut ws = ws(scope, receive, send);
    let mut headers = HeaderMap::new();
    headers.insert("www-authenticate", HeaderValue::from_static("Bearer"));
    ws.deny(StatusCode::UNAUTHORIZED, headers, "token required")
        .await
}

#[tokio::test]
async fn deny_sends_the_response_start_and_body() {
    let mut scope = WebSocketScope::new("/ws");
    scope.extensions = Extensions::with_supported([WEBSOCKET_HTTP_RESPONSE]);
    let mut session = TestSession::start(denying_app, Scope::from(scope));
    session.send(ReceiveEvent::WebSocketConnect).await.unwrap();
    let Some(SendEvent::WebSocketHttpResponseStart { status, headers }) = session.recv().await
    else {
        panic!("expected the response start")
    };
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer");
    assert_eq!(
        session.recv().await,
        Some(SendEvent::WebSocketHttpResponseBody {
            body: Bytes::from_static(b"token required"),
            more_body: false
        })
    );
    assert!(session.finish().await.is_ok());
}

#[tokio::test]
async fn deny_without_server_support_is_an_error() {
    let mut session = TestSession::start(denying_app, scope());
    session.send(ReceiveEvent::WebSocketConnect).await.unwrap();
    let error = session.finish().await.unwrap_err();
    assert!(
        error.to_string().contains("websocket.http.response"),
        "{error}"
    );
}

#[tokio::test]
async fn deny_through_the_server_gives_a_denial_outcome() {
    let outcome = within(asgi_ws::start(
        denying_app,
        WebSocketScope::new("/ws"),
        &upgrade(&[]),
        &WebSocketConfig::default(),
        |run| drop(tokio::spawn(run)),
    ))
    .await;
    let HandshakeOutcome::Deny(denial) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(denial.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        within(denial.body.collect()).await.unwrap(),
        "token required"
    );
}

#[tokio::test]
async fn accept_when_the_client_already_left_is_disconnected() {
    let app = |scope: Scope, receive: Receiver, send: Sender| async move {
        let mut ws = ws(scope, receive, send);
        ws.accept().await
    };
    let mut session = TestSession::start(app, scope());
    session.disconnect();
    let error = session.finish().await.unwrap_err();
    assert!(error.is_disconnected(), "{error:?}");
}

#[tokio::test]
async fn helper_over_a_socket_with_a_subprotocol() {
    let app = |scope: Scope, receive: Receiver, send: Sender| async move {
        let mut ws = ws(scope, receive, send);
        let chosen = ws.scope().subprotocols.last().cloned().unwrap_or_default();
        ws.accept_subprotocol(chosen).await?;
        while let Message::Text(text) = ws.recv().await? {
            ws.send_text(text.to_uppercase()).await?;
        }
        Ok::<(), Error>(())
    };
    let (client_io, server_io) = tcp_pair().await;
    let request = upgrade(&[("sec-websocket-protocol", "v1, v2")]);
    let server = accept_over(app, quiet(), &request, server_io).await;
    assert_eq!(server.headers["sec-websocket-protocol"], "v2");
    let mut client = client_over(client_io).await;
    client
        .send(tungstenite::Message::text("shout"))
        .await
        .unwrap();
    assert_eq!(
        within(client.next()).await.unwrap().unwrap(),
        tungstenite::Message::text("SHOUT")
    );
    client.close(None).await.unwrap();
    // The app returns after the close; the connection ends with the client's close.
    assert_eq!(within(server.run).await.unwrap().code, 1005);
}
