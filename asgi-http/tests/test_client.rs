//! TestClient: the scope it builds, request bodies, streamed responses chunk by chunk,
//! disconnect, trailers, protocol violations, app errors, lifespan and WebSockets.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use asgi_core::bytes::Bytes;
use asgi_core::http::{HeaderMap, HeaderValue, StatusCode, header};
use asgi_core::{Error, ReceiveEvent, Receiver, Scope, SendEvent, Sender};
use asgi_http::response::Response;
use asgi_http::test_client::{Message, TestClient, TestRequest};
use futures_util::stream;
use tokio::sync::{mpsc, oneshot};

fn start() -> SendEvent {
    SendEvent::response_start(StatusCode::OK, HeaderMap::new())
}

fn accept() -> SendEvent {
    SendEvent::WebSocketAccept {
        subprotocol: None,
        headers: HeaderMap::new(),
    }
}

/// Answers with the scope in its ASGI serde form.
async fn scope_as_json(scope: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
    Response::json(&scope)?.send(&mut send).await
}

#[tokio::test]
async fn http_scope_has_the_keys_a_server_gives() {
    let client = TestClient::new(scope_as_json);
    let response = client
        .send(TestRequest::get("/caf%C3%A9/x?q=1%202").header("x-custom", "yes"))
        .await
        .unwrap();
    let scope: serde_json::Value = response.json().unwrap();
    assert_eq!(scope["type"], "http");
    assert_eq!(scope["asgi"]["version"], "3.0");
    assert_eq!(scope["http_version"], "1.1");
    assert_eq!(scope["method"], "GET");
    assert_eq!(scope["scheme"], "http");
    assert_eq!(scope["path"], "/caf\u{e9}/x");
    assert_eq!(scope["raw_path"], "/caf%C3%A9/x");
    assert_eq!(scope["query_string"], "q=1%202");
    assert_eq!(scope["root_path"], "");
    assert_eq!(scope["client"], serde_json::json!(["127.0.0.1", 50000]));
    assert_eq!(scope["server"], serde_json::json!(["127.0.0.1", 80]));
    let headers = scope["headers"].as_array().unwrap();
    assert!(headers.contains(&serde_json::json!(["host", "testserver"])));
    assert!(headers.contains(&serde_json::json!(["user-agent", "testclient"])));
    assert!(headers.contains(&serde_json::json!(["x-custom", "yes"])));
    // A GET without a body says nothing about its length.
    assert!(!headers.iter().any(|h| h[0] == "content-length"));
    let extensions = scope["extensions"].as_object().unwrap();
    for name in [
        "http.response.trailers",
        "http.response.pathsend",
        "websocket.http.response",
    ] {
        assert!(extensions.contains_key(name), "missing extension {name}");
    }
}

#[tokio::test]
async fn invalid_request_header_fails_the_call() {
    let client = TestClient::new(scope_as_json);
    let err = client
        .send(TestRequest::get("/").header("bad header", "x"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("invalid HTTP header name"),
        "{err}"
    );
}

/// Answers with the `http.request` events it received, as `body:more_body` lines.
async fn record_request(_: Scope, mut receive: Receiver, mut send: Sender) -> Result<(), Error> {
    let mut lines = Vec::new();
    loop {
        match receive.recv().await {
            ReceiveEvent::HttpRequest { body, more_body } => {
                lines.push(format!("{}:{more_body}", String::from_utf8_lossy(&body)));
                if !more_body {
                    break;
                }
            }
            other => return Err(Error::msg(format!("unexpected {}", other.type_name()))),
        }
    }
    Response::text(lines.join("\n")).send(&mut send).await
}

#[tokio::test]
async fn bytes_body_is_one_event_with_content_length() {
    let response = TestClient::new(record_request)
        .send(TestRequest::post("/").body("hello"))
        .await
        .unwrap();
    assert_eq!(response.text(), "hello:false");
    let scope: serde_json::Value = TestClient::new(scope_as_json)
        .send(TestRequest::post("/").body("hello"))
        .await
        .unwrap()
        .json()
        .unwrap();
    let headers = scope["headers"].as_array().unwrap();
    assert!(headers.contains(&serde_json::json!(["content-length", "5"])));
}

#[tokio::test]
async fn empty_post_is_one_empty_event() {
    let response = TestClient::new(record_request)
        .send(TestRequest::post("/"))
        .await
        .unwrap();
    assert_eq!(response.text(), ":false");
}

#[tokio::test]
async fn stream_body_arrives_one_event_per_chunk() {
    let chunks = stream::iter(["a", "b", "c"].map(|s| Bytes::from_static(s.as_bytes())));
    let response = TestClient::new(record_request)
        .send(TestRequest::post("/").body_stream(chunks))
        .await
        .unwrap();
    assert_eq!(response.text(), "a:true\nb:true\nc:true\n:false");
}

#[tokio::test]
async fn streamed_response_is_read_chunk_by_chunk_as_the_app_sends_it() {
    // The app sends a chunk, then waits for the test's go-ahead before the next one.
    let (go_tx, go_rx) = mpsc::channel::<()>(1);
    let go_rx = Arc::new(tokio::sync::Mutex::new(go_rx));
    let app = move |_: Scope, _: Receiver, mut send: Sender| {
        let go_rx = go_rx.clone();
        async move {
            let mut go = go_rx.lock().await;
            send.send(start()).await?;
            for part in ["one", "two", "three"] {
                send.send(SendEvent::response_body(part, true)).await?;
                go.recv().await;
            }
            send.send(SendEvent::response_body("", false)).await?;
            Ok::<(), Error>(())
        }
    };
    let client = TestClient::new(app);
    let mut response = client.stream(TestRequest::get("/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for part in ["one", "two", "three"] {
        // Each chunk is readable while the app is still waiting to send the next one.
        assert_eq!(
            response.chunk().await.unwrap().as_deref(),
            Some(part.as_bytes())
        );
        go_tx.send(()).await.unwrap();
    }
    assert_eq!(response.chunk().await.unwrap(), None);
    assert_eq!(response.chunk().await.unwrap(), None);
}

#[tokio::test]
async fn client_disconnect_reaches_a_pending_recv_in_the_app() {
    let (seen_tx, seen_rx) = oneshot::channel::<&'static str>();
    let seen_tx = Arc::new(std::sync::Mutex::new(Some(seen_tx)));
    let app = move |_: Scope, mut receive: Receiver, mut send: Sender| {
        let seen_tx = seen_tx.clone();
        async move {
            // Read the (empty) request, start a response, then wait on recv.
            receive.recv().await;
            send.send(start()).await?;
            send.send(SendEvent::response_body("first", true)).await?;
            let event = receive.recv().await;
            if let Some(tx) = seen_tx.lock().unwrap().take() {
                let _ = tx.send(event.type_name());
            }
            Ok::<(), Error>(())
        }
    };
    let client = TestClient::new(app);
    let mut response = client.stream(TestRequest::get("/")).await.unwrap();
    assert_eq!(
        response.chunk().await.unwrap().as_deref(),
        Some(&b"first"[..])
    );
    response.disconnect().await.unwrap();
    assert_eq!(seen_rx.await.unwrap(), "http.disconnect");
}

#[tokio::test]
async fn send_after_client_disconnect_returns_disconnected_to_the_app() {
    let app = |_: Scope, _: Receiver, mut send: Sender| async move {
        send.send(start()).await?;
        loop {
            send.send(SendEvent::response_body("more", true)).await?;
            tokio::task::yield_now().await;
        }
    };
    let client = TestClient::new(app);
    let mut response = client.stream(TestRequest::get("/")).await.unwrap();
    assert_eq!(
        response.chunk().await.unwrap().as_deref(),
        Some(&b"more"[..])
    );
    let result = response.disconnect().await;
    assert!(result.unwrap_err().is_disconnected());
}

#[tokio::test]
async fn trailers_are_collected_after_the_body() {
    let app = |_: Scope, _: Receiver, mut send: Sender| async move {
        send.send(SendEvent::HttpResponseStart {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            trailers: true,
        })
        .await?;
        send.send(SendEvent::response_body("data", false)).await?;
        let mut first = HeaderMap::new();
        first.insert("x-checksum", HeaderValue::from_static("abc"));
        send.send(SendEvent::HttpResponseTrailers {
            headers: first,
            more_trailers: true,
        })
        .await?;
        let mut second = HeaderMap::new();
        second.append("x-note", HeaderValue::from_static("1"));
        second.append("x-note", HeaderValue::from_static("2"));
        send.send(SendEvent::HttpResponseTrailers {
            headers: second,
            more_trailers: false,
        })
        .await?;
        Ok::<(), Error>(())
    };
    let client = TestClient::new(app);
    let response = client.get("/").await.unwrap();
    assert_eq!(response.text(), "data");
    assert_eq!(response.trailers()["x-checksum"], "abc");
    let notes: Vec<_> = response.trailers().get_all("x-note").iter().collect();
    assert_eq!(notes, ["1", "2"]);

    let mut stream = client.stream(TestRequest::get("/")).await.unwrap();
    assert_eq!(stream.chunk().await.unwrap().as_deref(), Some(&b"data"[..]));
    assert_eq!(stream.chunk().await.unwrap(), None);
    assert_eq!(stream.trailers()["x-checksum"], "abc");
}

#[tokio::test]
async fn head_response_body_is_dropped() {
    let client = TestClient::new(|_: Scope, _: Receiver, mut send: Sender| async move {
        Response::text("body").send(&mut send).await
    });
    let response = client.send(TestRequest::head("/")).await.unwrap();
    assert_eq!(response.header("content-length"), Some("4"));
    assert!(response.bytes().is_empty());
}

#[tokio::test]
async fn body_before_start_is_a_protocol_error_naming_the_event() {
    let app = |_: Scope, _: Receiver, mut send: Sender| async move {
        send.send(SendEvent::response_body("early", false)).await?;
        Ok::<(), Error>(())
    };
    let err = TestClient::new(app).get("/").await.unwrap_err();
    assert!(err.is_protocol());
    assert_eq!(
        err.to_string(),
        "unexpected ASGI event `http.response.body`: expected `http.response.start`"
    );
}

#[tokio::test]
async fn protocol_error_the_app_ignored_still_fails_the_call() {
    let app = |_: Scope, _: Receiver, mut send: Sender| async move {
        let _ = send.send(SendEvent::response_body("early", false)).await;
        send.send(start()).await?;
        send.send(SendEvent::response_body("ok", false)).await?;
        Ok::<(), Error>(())
    };
    let err = TestClient::new(app).get("/").await.unwrap_err();
    assert_eq!(
        err.protocol_error().map(|p| p.received()),
        Some("http.response.body")
    );
}

#[tokio::test]
async fn event_after_the_response_completed_is_a_protocol_error() {
    let app = |_: Scope, _: Receiver, mut send: Sender| async move {
        send.send(start()).await?;
        send.send(SendEvent::response_body("done", false)).await?;
        let _ = send.send(SendEvent::response_body("extra", false)).await;
        Ok::<(), Error>(())
    };
    let err = TestClient::new(app).get("/").await.unwrap_err();
    assert!(err.is_protocol());
    assert!(
        err.to_string().contains("the response is complete"),
        "{err}"
    );
}

#[tokio::test]
async fn app_error_before_start_fails_the_call() {
    let app = |_: Scope, _: Receiver, _: Sender| async { Err::<(), _>(Error::msg("db down")) };
    let err = TestClient::new(app).get("/").await.unwrap_err();
    assert_eq!(err.to_string(), "db down");
}

#[tokio::test]
async fn app_error_before_start_gives_500_when_not_raised() {
    let app = |_: Scope, _: Receiver, _: Sender| async { Err::<(), _>(Error::msg("db down")) };
    let client = TestClient::new(app).raise_app_errors(false);
    let response = client.get("/").await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.text(), "Internal Server Error");
}

#[tokio::test]
async fn panic_surfaces_as_a_panic_error() {
    let app = |_: Scope, _: Receiver, _: Sender| async {
        if true {
            panic!("handler exploded");
        }
        Ok::<(), Error>(())
    };
    let err = TestClient::new(app).get("/").await.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.to_string(), "app panicked: handler exploded");
}

#[tokio::test]
async fn panic_before_start_gives_500_when_not_raised() {
    let app = |_: Scope, _: Receiver, _: Sender| async {
        if true {
            panic!("handler exploded");
        }
        Ok::<(), Error>(())
    };
    let response = TestClient::new(app)
        .raise_app_errors(false)
        .get("/")
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn app_returning_without_a_response_is_an_error() {
    let app = |_: Scope, _: Receiver, _: Sender| async { Ok::<(), Error>(()) };
    let err = TestClient::new(app).get("/").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the app returned without sending `http.response.start`"
    );
}

#[tokio::test]
async fn app_returning_mid_body_is_an_error() {
    let app = |_: Scope, _: Receiver, mut send: Sender| async move {
        send.send(start()).await?;
        send.send(SendEvent::response_body("part", true)).await?;
        Ok::<(), Error>(())
    };
    let err = TestClient::new(app).get("/").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the app returned before completing the response body"
    );
}

#[tokio::test]
async fn relative_pathsend_path_is_an_error() {
    let app = |_: Scope, _: Receiver, mut send: Sender| async move {
        send.send(start()).await?;
        send.send(SendEvent::HttpResponsePathsend {
            path: "relative.txt".into(),
        })
        .await?;
        Ok::<(), Error>(())
    };
    let err = TestClient::new(app).get("/").await.unwrap_err();
    assert!(err.to_string().contains("needs an absolute path"), "{err}");
}

#[tokio::test]
async fn response_larger_than_max_response_body_fails() {
    let app = |_: Scope, _: Receiver, mut send: Sender| async move {
        Response::text("x".repeat(100)).send(&mut send).await
    };
    let client = TestClient::new(app).max_response_body(Some(10));
    let err = client.get("/").await.unwrap_err();
    assert!(
        err.to_string().contains("max_response_body of 10 bytes"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn stuck_app_times_out() {
    let app = |_: Scope, _: Receiver, send: Sender| async move {
        // Holds its sender and never answers.
        let _send = send;
        std::future::pending::<()>().await;
        Ok::<(), Error>(())
    };
    let client = TestClient::new(app).timeout(Some(Duration::from_secs(5)));
    let err = client.get("/").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the test client timed out after 5s waiting for the app to send an event"
    );
}

#[derive(Clone)]
struct Db(&'static str);

/// Fills `Db` at startup and records that shutdown ran; answers requests with the `Db`.
fn lifespan_app(shut_down: Arc<AtomicBool>) -> impl asgi_core::App {
    move |scope: Scope, mut receive: Receiver, mut send: Sender| {
        let shut_down = shut_down.clone();
        async move {
            match scope {
                Scope::Lifespan(lifespan) => loop {
                    match receive.recv().await {
                        ReceiveEvent::LifespanStartup => {
                            lifespan.state.insert(Db("postgres://test"))?;
                            send.send(SendEvent::LifespanStartupComplete).await?;
                        }
                        _ => {
                            shut_down.store(true, Ordering::SeqCst);
                            send.send(SendEvent::LifespanShutdownComplete).await?;
                            return Ok(());
                        }
                    }
                },
                scope => {
                    let db = scope.state().get::<Db>().map_or("none", |d| d.0);
                    Response::text(db).send(&mut send).await
                }
            }
        }
    }
}

#[tokio::test]
async fn lifespan_state_is_shared_into_every_scope_and_shutdown_runs() {
    let shut_down = Arc::new(AtomicBool::new(false));
    let client = TestClient::with_lifespan(lifespan_app(shut_down.clone()))
        .await
        .unwrap();
    assert_eq!(
        client.state().get::<Db>().map(|d| d.0),
        Some("postgres://test")
    );
    assert_eq!(client.get("/a").await.unwrap().text(), "postgres://test");
    assert_eq!(client.get("/b").await.unwrap().text(), "postgres://test");
    assert!(!shut_down.load(Ordering::SeqCst));
    client.shutdown().await.unwrap();
    assert!(shut_down.load(Ordering::SeqCst));
}

#[tokio::test]
async fn client_without_lifespan_gives_an_empty_state() {
    let client = TestClient::new(lifespan_app(Arc::default()));
    assert_eq!(client.get("/").await.unwrap().text(), "none");
}

#[tokio::test]
async fn lifespan_startup_failure_is_an_error_with_the_message() {
    let app = |_: Scope, mut receive: Receiver, mut send: Sender| async move {
        receive.recv().await;
        send.send(SendEvent::LifespanStartupFailed {
            message: "no database".into(),
        })
        .await?;
        Ok::<(), Error>(())
    };
    let err = TestClient::with_lifespan(app).await.unwrap_err();
    assert_eq!(err.to_string(), "lifespan startup failed: no database");
}

#[tokio::test]
async fn app_without_lifespan_support_still_gets_a_client() {
    let app = |scope: Scope, _: Receiver, mut send: Sender| async move {
        match scope {
            Scope::Http(_) => Response::text("ok").send(&mut send).await,
            _ => Err(Error::msg("only http")),
        }
    };
    let client = TestClient::with_lifespan(app).await.unwrap();
    assert!(client.state().is_empty());
    assert_eq!(client.get("/").await.unwrap().text(), "ok");
    client.shutdown().await.unwrap();
}

/// Accepts (with the first offered subprotocol), echoes messages, closes with 4000 on
/// "bye", and reports the disconnect it received.
fn ws_app(disconnect: Option<oneshot::Sender<(u16, String)>>) -> impl asgi_core::App {
    let disconnect = Arc::new(std::sync::Mutex::new(disconnect));
    move |scope: Scope, mut receive: Receiver, mut send: Sender| {
        let disconnect = disconnect.clone();
        async move {
            let Scope::WebSocket(ws) = scope else {
                return Err(Error::msg("expected websocket"));
            };
            assert_eq!(receive.recv().await, ReceiveEvent::WebSocketConnect);
            let mut headers = HeaderMap::new();
            headers.insert("x-accepted", HeaderValue::from_static("yes"));
            send.send(SendEvent::WebSocketAccept {
                subprotocol: ws.subprotocols.first().cloned(),
                headers,
            })
            .await?;
            loop {
                match receive.recv().await {
                    ReceiveEvent::WebSocketReceive(message) => {
                        if message == "bye".into() {
                            send.send(SendEvent::WebSocketClose {
                                code: 4000,
                                reason: "see you".into(),
                            })
                            .await?;
                        } else {
                            send.send(SendEvent::WebSocketSend(message)).await?;
                        }
                    }
                    ReceiveEvent::WebSocketDisconnect { code, reason } => {
                        if let Some(tx) = disconnect.lock().unwrap().take() {
                            let _ = tx.send((code, reason));
                        }
                        return Ok(());
                    }
                    other => return Err(Error::msg(format!("unexpected {}", other.type_name()))),
                }
            }
        }
    }
}

#[tokio::test]
async fn websocket_accept_exchange_and_client_close_code_reaches_the_app() {
    let (tx, rx) = oneshot::channel();
    let client = TestClient::new(ws_app(Some(tx)));
    let mut ws = client
        .websocket("/ws")
        .subprotocols(["chat", "superchat"])
        .connect()
        .await
        .unwrap();
    assert_eq!(ws.subprotocol(), Some("chat"));
    assert_eq!(ws.accept_headers()["x-accepted"], "yes");
    ws.send_text("hello").await.unwrap();
    assert_eq!(ws.receive().await.unwrap(), Message::Text("hello".into()));
    ws.send_binary(vec![1u8, 2, 3]).await.unwrap();
    assert_eq!(
        ws.receive().await.unwrap(),
        Message::Binary(Bytes::from_static(&[1, 2, 3]))
    );
    ws.close(1001).await.unwrap();
    assert_eq!(rx.await.unwrap(), (1001, String::new()));
}

#[tokio::test]
async fn websocket_app_close_is_received_with_code_and_reason() {
    let client = TestClient::new(ws_app(None));
    let mut ws = client.websocket("/ws").connect().await.unwrap();
    ws.send_text("bye").await.unwrap();
    let closed = Message::Close {
        code: 4000,
        reason: "see you".into(),
    };
    assert_eq!(ws.receive().await.unwrap(), closed);
    // It stays closed.
    assert_eq!(ws.receive().await.unwrap(), closed);
    ws.close(1000).await.unwrap();
}

#[tokio::test]
async fn websocket_dropped_session_gives_the_app_1006() {
    let (tx, rx) = oneshot::channel();
    let client = TestClient::new(ws_app(Some(tx)));
    let ws = client.websocket("/ws").connect().await.unwrap();
    drop(ws);
    assert_eq!(rx.await.unwrap().0, 1006);
}

#[tokio::test]
async fn websocket_scope_carries_subprotocols_and_handshake_headers() {
    let app = |scope: Scope, mut receive: Receiver, mut send: Sender| async move {
        receive.recv().await;
        send.send(accept()).await?;
        send.send(SendEvent::text(
            serde_json::to_string(&scope).map_err(Error::new)?,
        ))
        .await?;
        Ok::<(), Error>(())
    };
    let client = TestClient::new(app);
    let mut ws = client
        .websocket("/live?room=1")
        .subprotocols(["a", "b"])
        .header("origin", "http://testserver")
        .connect()
        .await
        .unwrap();
    let scope: serde_json::Value = serde_json::from_str(&ws.receive_text().await.unwrap()).unwrap();
    assert_eq!(scope["type"], "websocket");
    assert_eq!(scope["scheme"], "ws");
    assert_eq!(scope["path"], "/live");
    assert_eq!(scope["query_string"], "room=1");
    assert_eq!(scope["subprotocols"], serde_json::json!(["a", "b"]));
    assert_eq!(scope["client"], serde_json::json!(["127.0.0.1", 50000]));
    let headers = scope["headers"].as_array().unwrap();
    for expected in [
        ["sec-websocket-protocol", "a, b"],
        ["sec-websocket-version", "13"],
        ["upgrade", "websocket"],
        ["origin", "http://testserver"],
        ["host", "testserver"],
    ] {
        assert!(
            headers.contains(&serde_json::json!(expected)),
            "missing {expected:?}"
        );
    }
    // The app returned without closing: the client sees the connection end (1006).
    assert_eq!(
        ws.receive().await.unwrap(),
        Message::Close {
            code: 1006,
            reason: String::new()
        }
    );
}

#[tokio::test]
async fn websocket_close_before_accept_is_denied_with_403() {
    let app = |_: Scope, mut receive: Receiver, mut send: Sender| async move {
        receive.recv().await;
        send.send(SendEvent::WebSocketClose {
            code: 1008,
            reason: String::new(),
        })
        .await?;
        Ok::<(), Error>(())
    };
    let err = TestClient::new(app)
        .websocket("/ws")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the app denied the WebSocket with status 403 Forbidden"
    );
    let denial = err.into_denial().unwrap();
    assert_eq!(denial.status(), StatusCode::FORBIDDEN);
    assert!(denial.bytes().is_empty());
}

#[tokio::test]
async fn websocket_http_denial_gives_its_status_headers_and_body() {
    let app = |_: Scope, mut receive: Receiver, mut send: Sender| async move {
        receive.recv().await;
        let mut headers = HeaderMap::new();
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        send.send(SendEvent::WebSocketHttpResponseStart {
            status: StatusCode::UNAUTHORIZED,
            headers,
        })
        .await?;
        send.send(SendEvent::WebSocketHttpResponseBody {
            body: "log in ".into(),
            more_body: true,
        })
        .await?;
        send.send(SendEvent::WebSocketHttpResponseBody {
            body: "first".into(),
            more_body: false,
        })
        .await?;
        Ok::<(), Error>(())
    };
    let denial = TestClient::new(app)
        .websocket("/ws")
        .connect()
        .await
        .unwrap_err()
        .into_denial()
        .unwrap();
    assert_eq!(denial.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(denial.header("www-authenticate"), Some("Bearer"));
    assert_eq!(denial.text(), "log in first");
}

#[tokio::test]
async fn websocket_app_returning_without_an_answer_is_an_error() {
    let app = |_: Scope, _: Receiver, _: Sender| async { Ok::<(), Error>(()) };
    let err = TestClient::new(app)
        .websocket("/ws")
        .connect()
        .await
        .unwrap_err();
    assert!(err.denial().is_none());
    assert_eq!(
        err.to_string(),
        "the app returned without answering `websocket.connect`"
    );
}

#[tokio::test]
async fn websocket_protocol_violation_is_an_error_naming_the_event() {
    let app = |_: Scope, mut receive: Receiver, mut send: Sender| async move {
        receive.recv().await;
        send.send(SendEvent::text("before accept")).await?;
        Ok::<(), Error>(())
    };
    let err = Error::from(
        TestClient::new(app)
            .websocket("/ws")
            .connect()
            .await
            .unwrap_err(),
    );
    assert!(err.is_protocol());
    assert_eq!(
        err.protocol_error().map(|p| p.received()),
        Some("websocket.send")
    );
}

#[tokio::test]
async fn websocket_app_error_after_accept_surfaces_on_receive() {
    let app = |_: Scope, mut receive: Receiver, mut send: Sender| async move {
        receive.recv().await;
        send.send(accept()).await?;
        Err::<(), _>(Error::msg("lost the room"))
    };
    let mut ws = TestClient::new(app)
        .websocket("/ws")
        .connect()
        .await
        .unwrap();
    let err = ws.receive().await.unwrap_err();
    assert_eq!(err.to_string(), "lost the room");
}
