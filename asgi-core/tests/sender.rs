//! `Sender` contract: every protocol-error case, and `Disconnected` after the client left.

use asgi_core::host::testing::{self, TestSession};
use asgi_core::http::{HeaderMap, Method, StatusCode};
use asgi_core::{
    Error, HttpScope, LifespanScope, ReceiveEvent, Receiver, Scope, SendError, SendEvent, Sender,
    WebSocketScope,
};

fn http() -> Scope {
    Scope::from(HttpScope::new(Method::GET, "/"))
}

fn ws() -> Scope {
    Scope::from(WebSocketScope::new("/ws"))
}

fn start() -> SendEvent {
    SendEvent::response_start(StatusCode::OK, HeaderMap::new())
}

fn accept() -> SendEvent {
    SendEvent::WebSocketAccept {
        subprotocol: None,
        headers: HeaderMap::new(),
    }
}

/// Sends `events` in order; returns the (received, expected) of the first protocol error.
async fn first_protocol_error(scope: Scope, events: Vec<SendEvent>) -> Option<(String, String)> {
    let app = move |_: Scope, _: Receiver, mut send: Sender| {
        let events = events.clone();
        async move {
            for event in events {
                send.send(event).await?;
            }
            Ok::<(), Error>(())
        }
    };
    let outcome = testing::call(&app, scope, []).await;
    let err = outcome.result.err()?;
    let p = err.protocol_error()?;
    Some((p.received().to_owned(), p.expected().to_owned()))
}

#[tokio::test]
async fn body_before_start_is_a_protocol_error() {
    let (received, expected) =
        first_protocol_error(http(), vec![SendEvent::response_body("x", false)])
            .await
            .unwrap();
    assert_eq!(received, "http.response.body");
    assert_eq!(expected, "`http.response.start`");
}

#[tokio::test]
async fn second_start_is_a_protocol_error() {
    let (received, expected) = first_protocol_error(http(), vec![start(), start()])
        .await
        .unwrap();
    assert_eq!(received, "http.response.start");
    assert!(expected.contains("http.response.body"), "{expected}");
}

#[tokio::test]
async fn event_after_response_completed_is_a_protocol_error() {
    let (received, expected) = first_protocol_error(
        http(),
        vec![
            start(),
            SendEvent::response_body("done", false),
            SendEvent::response_body("more", false),
        ],
    )
    .await
    .unwrap();
    assert_eq!(received, "http.response.body");
    assert_eq!(expected, "nothing: the response is complete");
}

#[tokio::test]
async fn trailers_without_announcing_them_is_a_protocol_error() {
    let trailers = SendEvent::HttpResponseTrailers {
        headers: HeaderMap::new(),
        more_trailers: false,
    };
    let (received, _) = first_protocol_error(
        http(),
        vec![start(), SendEvent::response_body("x", true), trailers],
    )
    .await
    .unwrap();
    assert_eq!(received, "http.response.trailers");
}

#[tokio::test]
async fn announced_trailers_must_come_before_completion() {
    let trailing_start = SendEvent::HttpResponseStart {
        status: StatusCode::OK,
        headers: HeaderMap::new(),
        trailers: true,
    };
    let trailers = SendEvent::HttpResponseTrailers {
        headers: HeaderMap::new(),
        more_trailers: false,
    };
    // The right order is accepted.
    assert_eq!(
        first_protocol_error(
            http(),
            vec![
                trailing_start.clone(),
                SendEvent::response_body("x", false),
                trailers.clone()
            ]
        )
        .await,
        None
    );
    // A body after the final body, where trailers are due, is not.
    let (received, expected) = first_protocol_error(
        http(),
        vec![
            trailing_start,
            SendEvent::response_body("x", false),
            SendEvent::response_body("y", false),
        ],
    )
    .await
    .unwrap();
    assert_eq!(received, "http.response.body");
    assert_eq!(expected, "`http.response.trailers`");
}

#[tokio::test]
async fn pathsend_after_body_is_a_protocol_error() {
    let (received, _) = first_protocol_error(
        http(),
        vec![
            start(),
            SendEvent::response_body("x", true),
            SendEvent::HttpResponsePathsend {
                path: "/etc/hostname".into(),
            },
        ],
    )
    .await
    .unwrap();
    assert_eq!(received, "http.response.pathsend");
}

#[tokio::test]
async fn websocket_event_in_http_scope_is_a_protocol_error() {
    let (received, _) = first_protocol_error(http(), vec![accept()]).await.unwrap();
    assert_eq!(received, "websocket.accept");
}

#[tokio::test]
async fn websocket_send_before_accept_is_a_protocol_error() {
    let (received, expected) = first_protocol_error(ws(), vec![SendEvent::text("early")])
        .await
        .unwrap();
    assert_eq!(received, "websocket.send");
    assert!(expected.contains("websocket.accept"), "{expected}");
}

#[tokio::test]
async fn websocket_send_after_close_is_a_protocol_error() {
    let close = SendEvent::WebSocketClose {
        code: 1000,
        reason: String::new(),
    };
    let (received, expected) =
        first_protocol_error(ws(), vec![accept(), close, SendEvent::text("late")])
            .await
            .unwrap();
    assert_eq!(received, "websocket.send");
    assert_eq!(expected, "nothing: the WebSocket is closed");
}

#[tokio::test]
async fn websocket_accept_after_denial_start_is_a_protocol_error() {
    let deny = SendEvent::WebSocketHttpResponseStart {
        status: StatusCode::FORBIDDEN,
        headers: HeaderMap::new(),
    };
    let (received, expected) = first_protocol_error(ws(), vec![deny, accept()])
        .await
        .unwrap();
    assert_eq!(received, "websocket.accept");
    assert_eq!(expected, "`websocket.http.response.body`");
}

#[tokio::test]
async fn lifespan_shutdown_answer_before_startup_is_a_protocol_error() {
    let (received, _) = first_protocol_error(
        Scope::Lifespan(LifespanScope::default()),
        vec![SendEvent::LifespanShutdownComplete],
    )
    .await
    .unwrap();
    assert_eq!(received, "lifespan.shutdown.complete");
}

#[tokio::test]
async fn protocol_error_leaves_the_response_usable() {
    // A rejected event does not advance the state: the app can still answer correctly.
    let app = |_: Scope, _: Receiver, mut send: Sender| async move {
        let err = send
            .send(SendEvent::response_body("early", false))
            .await
            .unwrap_err();
        assert!(matches!(err, SendError::Protocol(_)));
        send.send(start()).await?;
        send.send(SendEvent::response_body("ok", false)).await?;
        Ok(())
    };
    let outcome = testing::call(&app, http(), []).await;
    assert!(outcome.result.is_ok());
    assert_eq!(outcome.body(), b"ok");
    assert_eq!(outcome.protocol_errors.len(), 1);
}

#[tokio::test]
async fn send_after_client_disconnect_returns_disconnected() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
    let app = move |_: Scope, mut receive: Receiver, mut send: Sender| {
        let tx = tx.clone();
        async move {
            let event = receive.recv().await;
            let result = send.send(start()).await;
            if let Some(tx) = tx.lock().unwrap().take() {
                let _ = tx.send((event, result));
            }
            Ok::<(), Error>(())
        }
    };
    let mut session = TestSession::start(app, http());
    session.disconnect();
    let (event, result) = rx.await.unwrap();
    assert_eq!(event, ReceiveEvent::HttpDisconnect);
    assert_eq!(result, Err(SendError::Disconnected));
    assert!(session.finish().await.is_ok());
}

#[tokio::test]
async fn disconnected_error_propagated_with_question_mark_is_disconnected() {
    let app = |_: Scope, _: Receiver, mut send: Sender| async move {
        send.send(start()).await?;
        Ok::<(), Error>(())
    };
    let mut session = TestSession::start(app, http());
    session.disconnect();
    let err = session.finish().await.unwrap_err();
    assert!(err.is_disconnected());
}
