//! WebSocket handshakes and messages through the real server: accept, subprotocols, extra
//! headers, the app's refusals (close, denial response, error, panic), invalid handshakes,
//! plain HTTP to a WebSocket route, message size limits, permessage-deflate, the scope, the
//! `mixed` example, and WebSockets over HTTP/2. The lifecycle (keepalive, disconnects,
//! backpressure, shutdown) is in `server_websocket_lifecycle.rs`.

mod common;
mod ws_common;

#[path = "../examples/mixed/app.rs"]
mod mixed;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use asgi::core::http::header::HeaderValue;
use asgi::core::http::{HeaderMap, StatusCode};
use asgi::prelude::*;
use asgi::server::server::WebSocketConfig;
use asgi::ws::{Message, WebSocket};
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use ws_common::*;

/// The next message the client receives, skipping nothing.
async fn next(ws: &mut Client) -> WsMessage {
    tokio::time::timeout(PATIENCE, ws.next())
        .await
        .expect("a message comes in time")
        .expect("the connection is open")
        .expect("the message is valid")
}

/// Answers an HTTP request with `200 plain`.
async fn plain(send: &mut Sender) -> Result<(), Error> {
    let start = SendEvent::response_start(StatusCode::OK, HeaderMap::new());
    send.send(start).await?;
    send.send(SendEvent::response_body("plain", false)).await?;
    Ok(())
}

/// An app that counts its calls for WebSocket scopes and accepts them; HTTP requests get
/// `200 plain`.
fn counting_app(calls: Arc<AtomicUsize>) -> impl App {
    move |scope: Scope, receive: Receiver, mut send: Sender| {
        let calls = calls.clone();
        async move {
            let scope = match scope {
                Scope::WebSocket(scope) => scope,
                Scope::Http(_) => return plain(&mut send).await,
                _ => return Ok(()),
            };
            calls.fetch_add(1, Ordering::SeqCst);
            let mut ws = WebSocket::new(scope, receive, send);
            ws.accept().await?;
            while !matches!(ws.recv().await?, Message::Close { .. }) {}
            Ok(())
        }
    }
}

#[tokio::test]
async fn accept_and_echo_text_and_binary() {
    let server = start_testbed().await;
    let (mut ws, response) = connect_with(server.addr, "/ws/echo", &[]).await;
    assert_eq!(response.status(), 101);
    ws.send(WsMessage::text("hello")).await.unwrap();
    assert_eq!(next(&mut ws).await, WsMessage::text("hello"));
    ws.send(WsMessage::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await, WsMessage::binary(vec![0u8, 1, 2, 255]));
    // Many messages in a row come back whole and in order.
    for i in 0..100 {
        ws.send(WsMessage::text(format!("message {i}")))
            .await
            .unwrap();
    }
    for i in 0..100 {
        assert_eq!(next(&mut ws).await, WsMessage::text(format!("message {i}")));
    }
    ws.close(None).await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_first_offered_subprotocol_is_chosen() {
    let server = start_testbed().await;
    let offer = [("sec-websocket-protocol", "graphql-ws, json")];
    let (mut ws, response) = connect_with(server.addr, "/ws/subprotocol", &offer).await;
    assert_eq!(response.headers()["sec-websocket-protocol"], "graphql-ws");
    ws.close(None).await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn extra_accept_headers_reach_the_client() {
    let app = |scope: Scope, receive: Receiver, send: Sender| async move {
        let Scope::WebSocket(scope) = scope else {
            return Ok(());
        };
        let mut headers = HeaderMap::new();
        headers.append("set-cookie", HeaderValue::from_static("a=1"));
        headers.append("set-cookie", HeaderValue::from_static("b=2"));
        headers.insert("x-served-by", HeaderValue::from_static("asgi"));
        // Handshake headers are the server's: the app cannot override them.
        headers.insert("sec-websocket-accept", HeaderValue::from_static("forged"));
        let mut ws = WebSocket::new(scope, receive, send);
        ws.accept_with_headers(None, headers).await?;
        while !matches!(ws.recv().await?, Message::Close { .. }) {}
        Ok(())
    };
    let server = start(app, |b| b).await;
    let mut raw = raw_handshake(server.addr, &handshake_request("/", "")).await;
    assert_eq!(raw.status(), 101);
    assert!(raw.head.contains("set-cookie: a=1\r\n"), "{}", raw.head);
    assert!(raw.head.contains("set-cookie: b=2\r\n"), "{}", raw.head);
    assert_eq!(raw.header("x-served-by").as_deref(), Some("asgi"));
    assert_eq!(
        raw.header("sec-websocket-accept").as_deref(),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    raw.write_close(1000).await;
    assert_eq!(
        raw.read_frame().await.and_then(|f| f.close_code()),
        Some(1000)
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn close_before_accept_gives_403() {
    let server = start_testbed().await;
    let raw = raw_handshake(server.addr, &handshake_request("/ws/close", "")).await;
    assert_eq!(raw.status(), 403, "{}", raw.head);
    assert_eq!(raw.header("upgrade"), None);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn denial_response_is_sent_verbatim() {
    let server = start_testbed().await;
    let mut raw = raw_handshake(server.addr, &handshake_request("/ws/deny", "")).await;
    assert_eq!(raw.status(), 401, "{}", raw.head);
    assert_eq!(raw.header("content-type").as_deref(), Some("text/plain"));
    assert_eq!(raw.header("upgrade"), None);
    let body = match raw.header("content-length") {
        Some(length) => raw.read_body(length.parse().unwrap()).await,
        // Streamed: a chunked body of one chunk.
        None => raw.read_body(b"6\r\ndenied\r\n0\r\n\r\n".len()).await,
    };
    let body = String::from_utf8(body).unwrap();
    assert!(
        body == "denied" || body == "6\r\ndenied\r\n0\r\n\r\n",
        "{body:?}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_denial_response_cut_short_by_an_error_is_aborted() {
    let app = |scope: Scope, mut receive: Receiver, mut send: Sender| async move {
        if !matches!(scope, Scope::WebSocket(_)) {
            return plain(&mut send).await;
        }
        receive.recv().await;
        send.send(SendEvent::WebSocketHttpResponseStart {
            status: StatusCode::UNAUTHORIZED,
            headers: HeaderMap::new(),
        })
        .await?;
        send.send(SendEvent::WebSocketHttpResponseBody {
            body: "the first half".into(),
            more_body: true,
        })
        .await?;
        Err(Error::msg("the app fails in the middle of its denial"))
    };
    let server = start(app, |b| b).await;
    let answer = raw(server.addr, handshake_request("/", "").as_bytes()).await;
    // The connection closes without the last chunk (hyper may not even have flushed the
    // head): the response never looks complete.
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 401"),
        "{answer:?}"
    );
    assert!(!answer.ends_with("0\r\n\r\n"), "{answer:?}");
    assert_eq!(
        fetch(server.addr, "/").await.text(),
        "plain",
        "the server goes on"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn app_error_before_accept_gives_500() {
    let (logs, _guard) = LogCapture::install();
    let server = start_testbed().await;
    let raw = raw_handshake(server.addr, &handshake_request("/ws/error", "")).await;
    assert_eq!(raw.status(), 500, "{}", raw.head);
    server.stop().await.unwrap();
    assert!(
        logs.errors().iter().any(|l| l.contains("fails on purpose")),
        "the failure is logged: {}",
        logs.text()
    );
}

#[tokio::test]
async fn app_panic_before_accept_gives_500_and_the_server_keeps_serving() {
    let server = start_testbed().await;
    for _ in 0..3 {
        let raw = raw_handshake(server.addr, &handshake_request("/ws/panic", "")).await;
        assert_eq!(raw.status(), 500, "{}", raw.head);
    }
    let mut ws = connect(server.addr, "/ws/echo").await;
    ws.send(WsMessage::text("still here")).await.unwrap();
    assert_eq!(next(&mut ws).await, WsMessage::text("still here"));
    assert_eq!(fetch(server.addr, "/").await.text(), "Hello, world!");
    ws.close(None).await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn unsupported_version_gets_426_with_version_13_without_calling_the_app() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = start(counting_app(calls.clone()), |b| b).await;
    let request = "GET / HTTP/1.1\r\nhost: test\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
                   sec-websocket-version: 8\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let raw = raw_handshake(server.addr, request).await;
    assert_eq!(raw.status(), 426, "{}", raw.head);
    assert_eq!(raw.header("sec-websocket-version").as_deref(), Some("13"));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn missing_key_gets_400_without_calling_the_app() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = start(counting_app(calls.clone()), |b| b).await;
    let request = "GET / HTTP/1.1\r\nhost: test\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
                   sec-websocket-version: 13\r\n\r\n";
    let mut raw = raw_handshake(server.addr, request).await;
    assert_eq!(raw.status(), 400, "{}", raw.head);
    let length: usize = raw.header("content-length").unwrap().parse().unwrap();
    let body = String::from_utf8(raw.read_body(length).await).unwrap();
    assert!(body.contains("Sec-WebSocket-Key"), "{body}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // The connection goes on serving HTTP.
    raw.stream
        .write_all(b"GET / HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let rest = String::from_utf8(raw.read_to_close().await).unwrap();
    assert!(rest.starts_with("HTTP/1.1 200"), "{rest}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn plain_get_to_a_websocket_route_reaches_the_app_as_http() {
    let server = start_testbed().await;
    let answer = fetch(server.addr, "/ws/echo").await;
    assert_eq!(answer.status, 426);
    assert_eq!(answer.headers["upgrade"], "websocket");
    assert!(answer.text().starts_with("this route speaks WebSocket"));
    server.stop().await.unwrap();
}

fn small_limit(builder: asgi::server::server::Builder) -> asgi::server::server::Builder {
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(1024);
    builder.websocket(config)
}

#[tokio::test]
async fn a_message_at_the_size_limit_passes() {
    let server = start(testbed::served_app(false), small_limit).await;
    let mut ws = connect(server.addr, "/ws/echo").await;
    let message = "x".repeat(1024);
    ws.send(WsMessage::text(message.clone())).await.unwrap();
    assert_eq!(next(&mut ws).await, WsMessage::text(message));
    ws.close(None).await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_message_over_the_size_limit_closes_with_1009() {
    let server = start(testbed::served_app(false), small_limit).await;
    let mut ws = connect(server.addr, "/ws/echo").await;
    ws.send(WsMessage::binary(vec![7u8; 1025])).await.unwrap();
    match next(&mut ws).await {
        WsMessage::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Size),
        other => panic!("expected a close frame with 1009, got {other:?}"),
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_fragmented_message_over_the_size_limit_closes_with_1009() {
    let server = start(testbed::served_app(false), small_limit).await;
    let mut raw = raw_handshake(server.addr, &handshake_request("/ws/echo", "")).await;
    assert_eq!(raw.status(), 101);
    // Three fragments of 512 bytes: each is small, the message is not.
    let fragment = [b'y'; 512];
    for (first, last) in [(true, false), (false, false), (false, true)] {
        let opcode = if first { TEXT } else { 0x0 };
        raw.write_fragment(opcode, last, &fragment).await;
    }
    let frame = raw.read_frame().await.expect("a close frame");
    assert_eq!(frame.close_code(), Some(1009));
    raw.write_close(1009).await;
    assert_eq!(
        raw.read_frame().await,
        None,
        "the server closes the connection"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn permessage_deflate_is_negotiated_with_a_client_offer() {
    let server = start_testbed().await;
    let offer = "sec-websocket-extensions: permessage-deflate; client_max_window_bits\r\n";
    let mut raw = raw_handshake(server.addr, &handshake_request("/ws/echo", offer)).await;
    assert_eq!(raw.status(), 101);
    let extensions = raw.header("sec-websocket-extensions").expect("negotiated");
    assert!(extensions.starts_with("permessage-deflate"), "{extensions}");
    raw.write_close(1000).await;
    assert_eq!(
        raw.read_frame().await.and_then(|f| f.close_code()),
        Some(1000)
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn permessage_deflate_is_not_negotiated_when_disabled() {
    let server = start(testbed::served_app(false), |b| {
        let mut config = WebSocketConfig::default();
        config.deflate = None;
        b.websocket(config)
    })
    .await;
    let offer = "sec-websocket-extensions: permessage-deflate\r\n";
    let mut raw = raw_handshake(server.addr, &handshake_request("/ws/echo", offer)).await;
    assert_eq!(raw.status(), 101);
    assert_eq!(raw.header("sec-websocket-extensions"), None);
    raw.write_close(1000).await;
    assert_eq!(
        raw.read_frame().await.and_then(|f| f.close_code()),
        Some(1000)
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn websocket_scope_has_every_key() {
    let server = start_testbed().await;
    let offer = [("sec-websocket-protocol", "chat, json")];
    let (mut ws, _) = connect_with(server.addr, "/scope/caf%C3%A9?x=1&y=%20", &offer).await;
    let WsMessage::Text(json) = next(&mut ws).await else {
        panic!("the scope comes as text");
    };
    let scope: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(scope["type"], "websocket");
    assert_eq!(scope["scheme"], "ws");
    assert_eq!(scope["http_version"], "1.1");
    assert_eq!(scope["path"], "/scope/café");
    assert_eq!(scope["raw_path"], "/scope/caf%C3%A9");
    assert_eq!(scope["query_string"], "x=1&y=%20");
    assert_eq!(scope["root_path"], "");
    assert_eq!(scope["subprotocols"], serde_json::json!(["chat", "json"]));
    let headers = scope["headers"].as_array().unwrap();
    let header = |name: &str| {
        headers
            .iter()
            .find(|pair| pair[0] == name)
            .map(|pair| pair[1].as_str().unwrap().to_owned())
    };
    assert_eq!(
        header("sec-websocket-protocol").as_deref(),
        Some("chat, json")
    );
    assert_eq!(header("upgrade").as_deref(), Some("websocket"));
    assert_eq!(
        header("host").as_deref(),
        Some(server.addr.to_string().as_str())
    );
    let local = ws.get_ref().get_ref();
    let client = local.local_addr().unwrap();
    assert_eq!(
        scope["client"],
        serde_json::json!([client.ip().to_string(), client.port()])
    );
    assert_eq!(
        scope["server"],
        serde_json::json!([server.addr.ip().to_string(), server.addr.port()])
    );
    let extensions = scope["extensions"].to_string();
    assert!(
        extensions.contains("websocket.http.response"),
        "{extensions}"
    );
    ws.close(None).await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn websocket_scope_path_includes_the_root_path() {
    let server = start(testbed::served_app(false), |b| b.root_path("/api")).await;
    let mut ws = connect(server.addr, "/scope/x").await;
    let WsMessage::Text(json) = next(&mut ws).await else {
        panic!("the scope comes as text");
    };
    let scope: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(scope["root_path"], "/api");
    assert_eq!(scope["path"], "/api/scope/x");
    assert_eq!(scope["raw_path"], "/api/scope/x");
    ws.close(None).await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn mixed_example_echoes_over_its_websocket() {
    let server = start(mixed::mixed(), |b| b).await;
    let mut ws = connect(server.addr, "/ws").await;
    ws.send(WsMessage::text("from the page")).await.unwrap();
    assert_eq!(next(&mut ws).await, WsMessage::text("from the page"));
    ws.send(WsMessage::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(next(&mut ws).await, WsMessage::binary(vec![1u8, 2, 3]));
    ws.close(None).await.unwrap();
    // The legacy WSGI part is served beside it.
    assert_eq!(fetch(server.addr, "/legacy/report").await.status, 200);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_handshake_and_its_101_are_in_the_access_log() {
    let (logs, _guard) = LogCapture::install();
    let server = start_testbed().await;
    let mut ws = connect(server.addr, "/ws/echo").await;
    ws.close(None).await.unwrap();
    server.stop().await.unwrap();
    let text = logs.text();
    assert!(
        text.lines().any(|l| l.contains("asgi_http::access")
            && l.contains("GET /ws/echo")
            && l.contains(" 101 ")),
        "{text}"
    );
}

#[tokio::test]
async fn a_client_that_vanishes_is_not_logged_as_an_error() {
    let (logs, _guard) = LogCapture::install();
    let server = start_testbed().await;
    let mut ws = connect(server.addr, "/ws/echo").await;
    ws.send(WsMessage::text("bye")).await.unwrap();
    assert_eq!(next(&mut ws).await, WsMessage::text("bye"));
    // No close frame: the TCP connection just goes.
    drop(ws);
    let mut raw = raw_handshake(server.addr, &handshake_request("/ws/echo", "")).await;
    drop(raw.stream.shutdown().await);
    drop(raw);
    assert!(eventually(async || logs.text().contains("WebSocket closed")).await);
    server.stop().await.unwrap();
    assert_eq!(logs.errors(), Vec::<String>::new());
}

#[tokio::test]
async fn websocket_over_http2_echoes() {
    let server = start_testbed().await;
    let offer = [("sec-websocket-protocol", "chat")];
    let (status, headers, ws) = connect_h2(server.addr, "/ws/subprotocol", &offer).await;
    assert_eq!(status, 200);
    assert_eq!(headers["sec-websocket-protocol"], "chat");
    assert!(headers.get("sec-websocket-accept").is_none());
    drop(ws);

    let (status, _, ws) = connect_h2(server.addr, "/ws/echo", &[]).await;
    assert_eq!(status, 200);
    let mut ws = ws.unwrap();
    ws.send(WsMessage::text("over h2")).await.unwrap();
    let echoed = tokio::time::timeout(PATIENCE, ws.next()).await.unwrap();
    assert_eq!(echoed.unwrap().unwrap(), WsMessage::text("over h2"));
    ws.close(None).await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn websocket_over_http2_is_refused_like_over_http1() {
    let server = start_testbed().await;
    let (status, _, _) = connect_h2(server.addr, "/ws/close", &[]).await;
    assert_eq!(status, 403);
    let (status, _, _) = connect_h2(server.addr, "/ws/deny", &[]).await;
    assert_eq!(status, 401);
    let (status, _, _) = connect_h2(server.addr, "/ws/error", &[]).await;
    assert_eq!(status, 500);
    server.stop().await.unwrap();
}

/// An extended CONNECT (RFC 8441) for a WebSocket to `path`, on an HTTP/2 connection.
fn websocket_connect(path: &str) -> hyper::Request<ClientBody> {
    let mut request = hyper::Request::connect(format!("http://test{path}"))
        .header("sec-websocket-version", "13")
        .body(empty())
        .unwrap();
    request
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    request
}

#[tokio::test]
async fn http2_websocket_app_calls_count_against_the_stream_limit() {
    const STREAMS: u32 = 2;
    let calls = Arc::new(AtomicUsize::new(0));
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let disconnected = Arc::new(AtomicUsize::new(0));
    // Each app call goes on after its client left, until the test lets it return.
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let app = {
        let (calls, running, most) = (calls.clone(), running.clone(), most.clone());
        let (disconnected, release) = (disconnected.clone(), release.clone());
        move |scope: Scope, mut receive: Receiver, mut send: Sender| {
            let (calls, running, most) = (calls.clone(), running.clone(), most.clone());
            let (disconnected, release) = (disconnected.clone(), release.clone());
            async move {
                if !matches!(scope, Scope::WebSocket(_)) {
                    return Ok(());
                }
                calls.fetch_add(1, Ordering::SeqCst);
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                receive.recv().await;
                send.send(SendEvent::WebSocketAccept {
                    subprotocol: None,
                    headers: HeaderMap::new(),
                })
                .await?;
                while let ReceiveEvent::WebSocketReceive(_) = receive.recv().await {}
                disconnected.fetch_add(1, Ordering::SeqCst);
                release.acquire().await.unwrap().forget();
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<(), Error>(())
            }
        }
    };
    let server = start(app, |b| b.http2_max_concurrent_streams(Some(STREAMS))).await;
    let mut sender = h2(server.addr).await;
    tokio::time::timeout(PATIENCE, sender.ready())
        .await
        .unwrap()
        .unwrap();

    // Two WebSockets, then their streams go (the client drops them, which resets them):
    // their app calls run on.
    for _ in 0..STREAMS {
        let mut response =
            tokio::time::timeout(PATIENCE, sender.send_request(websocket_connect("/")))
                .await
                .expect("the CONNECT is answered in time")
                .unwrap();
        assert_eq!(response.status(), 200);
        drop(hyper::upgrade::on(&mut response).await.unwrap());
    }
    assert!(
        eventually(async || disconnected.load(Ordering::SeqCst) == STREAMS as usize).await,
        "the apps heard of the disconnects"
    );

    // The streams are free, the app calls are not: a third WebSocket waits for one.
    let third = tokio::spawn(sender.send_request(websocket_connect("/")));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !third.is_finished(),
        "a WebSocket past the app-call bound was answered"
    );
    assert_eq!(calls.load(Ordering::SeqCst), STREAMS as usize);

    // One app call returns: the third WebSocket's app is called and it is accepted.
    release.add_permits(1);
    let response = tokio::time::timeout(PATIENCE, third)
        .await
        .expect("the third CONNECT is answered once an app call returned")
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), STREAMS as usize + 1);
    let most = most.load(Ordering::SeqCst);
    assert!(
        most <= STREAMS as usize,
        "{most} WebSocket app calls ran at once on a connection limited to {STREAMS}"
    );
    drop(response);
    release.add_permits(STREAMS as usize);
    server.stop().await.unwrap();
}
