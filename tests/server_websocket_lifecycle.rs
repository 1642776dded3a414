//! The life of a WebSocket through the real server: keepalive, exactly one
//! `websocket.disconnect` on every path, backpressure from a client that stops reading, the
//! connection limit, and graceful shutdown with sockets open.

mod common;
mod ws_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use asgi::core::bytes::Bytes;
use asgi::core::http::{HeaderMap, StatusCode};
use asgi::http::server::{Builder, WebSocketConfig};
use asgi::prelude::*;
use asgi::ws::{Message, WebSocket};
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use ws_common::*;

/// An app that accepts, records every event it receives (a disconnect with its code) until
/// the first `websocket.disconnect`, and reports the record. On the text `close` it closes
/// with 4001. HTTP requests get `200`.
fn recording_app(report: Report<Vec<String>>) -> impl App {
    move |scope: Scope, mut receive: Receiver, mut send: Sender| {
        let report = report.clone();
        async move {
            match scope {
                Scope::WebSocket(_) => {}
                Scope::Http(_) => {
                    let start = SendEvent::response_start(StatusCode::OK, HeaderMap::new());
                    send.send(start).await?;
                    return send
                        .send(SendEvent::response_body("ok", false))
                        .await
                        .map_err(Into::into);
                }
                _ => return Ok(()),
            }
            let mut events = Vec::new();
            loop {
                let event = receive.recv().await;
                match &event {
                    ReceiveEvent::WebSocketConnect => {
                        events.push("websocket.connect".to_owned());
                        send.send(SendEvent::WebSocketAccept {
                            subprotocol: None,
                            headers: HeaderMap::new(),
                        })
                        .await?;
                    }
                    ReceiveEvent::WebSocketReceive(WebSocketMessage::Text(text)) => {
                        events.push(format!("websocket.receive {text}"));
                        if text == "close" {
                            send.send(SendEvent::WebSocketClose {
                                code: 4001,
                                reason: "asked to".to_owned(),
                            })
                            .await?;
                        }
                    }
                    ReceiveEvent::WebSocketDisconnect { code, .. } => {
                        events.push(format!("websocket.disconnect {code}"));
                        // Later calls repeat the same disconnect: the connection is over.
                        let again = receive.recv().await;
                        assert_eq!(again, event, "recv after the disconnect repeats it");
                        report.send(events);
                        return Ok(());
                    }
                    other => events.push(other.type_name().to_owned()),
                }
            }
        }
    }
}

/// Waits for the app's record.
async fn record(rx: tokio::sync::oneshot::Receiver<Vec<String>>) -> Vec<String> {
    tokio::time::timeout(PATIENCE, rx)
        .await
        .expect("the app gets its disconnect in time")
        .expect("the app reports")
}

#[tokio::test]
async fn unanswered_pings_close_with_1011() {
    let (report, rx) = Report::new();
    let server = start(recording_app(report), |b| {
        let mut config = WebSocketConfig::default();
        config.ping_interval = Some(Duration::from_millis(50));
        config.pong_timeout = Some(Duration::from_millis(100));
        b.websocket(config)
    })
    .await;
    // A raw client that reads but never answers a ping.
    let mut raw = raw_handshake(server.addr, &handshake_request("/", "")).await;
    assert_eq!(raw.status(), 101);
    let first = raw.read_frame().await.expect("a ping");
    assert_eq!(first.opcode, PING);
    let close = loop {
        let frame = raw.read_frame().await.expect("a close frame");
        if frame.opcode == CLOSE {
            break frame;
        }
        assert_eq!(frame.opcode, PING, "only pings before the close");
    };
    assert_eq!(close.close_code(), Some(1011));
    assert_eq!(
        record(rx).await,
        ["websocket.connect", "websocket.disconnect 1011"]
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn answered_pings_keep_the_connection_open() {
    let server = start(testbed::served_app(false), |b| {
        let mut config = WebSocketConfig::default();
        config.ping_interval = Some(Duration::from_millis(20));
        config.pong_timeout = Some(Duration::from_millis(100));
        b.websocket(config)
    })
    .await;
    // tokio-tungstenite answers pings while it reads.
    let mut ws = ws_common::connect(server.addr, "/ws/echo").await;
    for i in 0..5 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        ws.send(WsMessage::text(format!("{i}"))).await.unwrap();
        let echoed = loop {
            match tokio::time::timeout(PATIENCE, ws.next()).await.unwrap() {
                Some(Ok(WsMessage::Ping(_))) => continue,
                other => break other,
            }
        };
        assert_eq!(echoed.unwrap().unwrap(), WsMessage::text(format!("{i}")));
    }
    ws.close(None).await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn disconnect_once_when_the_client_closes() {
    let (report, rx) = Report::new();
    let server = start(recording_app(report), |b| b).await;
    let mut ws = ws_common::connect(server.addr, "/").await;
    ws.send(WsMessage::text("hi")).await.unwrap();
    ws.close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    assert_eq!(
        record(rx).await,
        [
            "websocket.connect",
            "websocket.receive hi",
            "websocket.disconnect 1001"
        ]
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn disconnect_once_when_the_network_drops() {
    let (report, rx) = Report::new();
    let server = start(recording_app(report), |b| b).await;
    let mut raw = raw_handshake(server.addr, &handshake_request("/", "")).await;
    raw.write_frame(TEXT, b"hi").await;
    drop(raw);
    assert_eq!(
        record(rx).await,
        [
            "websocket.connect",
            "websocket.receive hi",
            "websocket.disconnect 1006"
        ]
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn disconnect_once_when_the_app_closes() {
    let (report, rx) = Report::new();
    let server = start(recording_app(report), |b| b).await;
    let mut ws = ws_common::connect(server.addr, "/").await;
    ws.send(WsMessage::text("close")).await.unwrap();
    match tokio::time::timeout(PATIENCE, ws.next()).await.unwrap() {
        Some(Ok(WsMessage::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 4001);
            assert_eq!(frame.reason, "asked to");
        }
        other => panic!("expected the app's close frame, got {other:?}"),
    }
    // tokio-tungstenite answers with the same code.
    assert!(matches!(
        tokio::time::timeout(PATIENCE, ws.next()).await.unwrap(),
        None | Some(Err(_))
    ));
    assert_eq!(
        record(rx).await,
        [
            "websocket.connect",
            "websocket.receive close",
            "websocket.disconnect 4001"
        ]
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn disconnect_once_on_shutdown() {
    let (report, rx) = Report::new();
    let server = start(recording_app(report), |b| {
        b.drain_timeout(Some(Duration::from_millis(100)))
    })
    .await;
    let mut ws = ws_common::connect(server.addr, "/").await;
    server.handle.shutdown();
    match tokio::time::timeout(PATIENCE, ws.next()).await.unwrap() {
        Some(Ok(WsMessage::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected a close frame with 1001, got {other:?}"),
    }
    // Reading on sends tokio-tungstenite's answering close frame.
    assert!(
        tokio::time::timeout(PATIENCE, ws.next())
            .await
            .unwrap()
            .is_none_or(|end| end.is_err())
    );
    assert_eq!(
        record(rx).await,
        ["websocket.connect", "websocket.disconnect 1001"]
    );
    server.stop().await.unwrap();
}

/// The size of each message of the backpressure test: 16 KiB.
const MESSAGE: usize = 16 * 1024;

/// How many messages the backpressure app sends if nothing stops it: 4,000 (64 MiB).
const BACKPRESSURE_TOTAL: usize = 4_000;

/// The most messages a client that stopped reading may have been sent: the server's queues
/// (16 events, a 64 KiB write buffer) plus what the kernel buffers on both sides of a
/// loopback connection (a few MiB when it autotunes). Well under [`BACKPRESSURE_TOTAL`]: an
/// unbounded server would reach the total.
const BACKPRESSURE_BOUND: usize = 640;

#[tokio::test]
async fn a_client_that_stops_reading_blocks_the_apps_send() {
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let app = move |scope: Scope, receive: Receiver, send: Sender| {
        let sent = counter.clone();
        async move {
            let Scope::WebSocket(scope) = scope else {
                return Ok(());
            };
            let mut ws = WebSocket::new(scope, receive, send);
            ws.accept().await?;
            for i in 0..BACKPRESSURE_TOTAL {
                let mut message = vec![0u8; MESSAGE];
                message[..8].copy_from_slice(&(i as u64).to_be_bytes());
                ws.send_binary(message).await?;
                sent.fetch_add(1, Ordering::SeqCst);
            }
            while !matches!(ws.recv().await?, Message::Close { .. }) {}
            Ok(())
        }
    };
    let server = start(app, |b| b).await;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let url = format!("ws://{}/", server.addr);
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();

    // The client reads nothing: the app's sends stop once the buffers on the way are full.
    let mut stalled_at = 0;
    let mut stable = 0;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while stable < 5 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = sent.load(Ordering::SeqCst);
        if now == stalled_at {
            stable += 1;
        } else {
            (stalled_at, stable) = (now, 0);
        }
    }
    assert_eq!(
        stable, 5,
        "the app's send never blocked ({stalled_at} sent)"
    );
    assert!(
        stalled_at < BACKPRESSURE_BOUND,
        "{stalled_at} messages were sent to a client that reads nothing"
    );

    // Once the client reads again, every message arrives, in order, and the app goes on.
    let goal = stalled_at + 50;
    for i in 0..goal {
        let message = tokio::time::timeout(PATIENCE, ws.next()).await.unwrap();
        let Some(Ok(WsMessage::Binary(bytes))) = message else {
            panic!("message {i}: {message:?}");
        };
        assert_eq!(bytes.len(), MESSAGE);
        assert_eq!(u64::from_be_bytes(bytes[..8].try_into().unwrap()), i as u64);
    }
    assert!(sent.load(Ordering::SeqCst) >= goal);
    drop(ws);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_signal_reaches_the_app_and_sockets_close_with_1001_at_the_drain_deadline() {
    const DRAIN: Duration = Duration::from_millis(300);
    let (report, seen) = Report::new();
    let app = move |scope: Scope, receive: Receiver, send: Sender| {
        let report = report.clone();
        async move {
            let Scope::WebSocket(scope) = scope else {
                return Ok(());
            };
            let shutdown = scope.shutdown.clone();
            let mut ws = WebSocket::new(scope, receive, send);
            ws.accept().await?;
            // The app notices the shutdown but does not close: the server must.
            shutdown.wait().await;
            report.send(());
            loop {
                if let Message::Close { code, .. } = ws.recv().await? {
                    assert_eq!(code, 1001);
                    return Ok(());
                }
            }
        }
    };
    let server = start(app, |b| b.drain_timeout(Some(DRAIN))).await;
    let mut raw = raw_handshake(server.addr, &handshake_request("/", "")).await;
    assert_eq!(raw.status(), 101);
    let started = tokio::time::Instant::now();
    server.handle.shutdown();
    tokio::time::timeout(PATIENCE, seen)
        .await
        .expect("the app sees the shutdown signal")
        .unwrap();
    let close = raw.read_frame().await.expect("a close frame");
    assert_eq!(close.close_code(), Some(1001));
    assert!(
        started.elapsed() >= DRAIN,
        "closed before the drain deadline"
    );
    // The server waits for the close handshake: it has not stopped.
    assert!(!server.task.is_finished(), "the drain did not wait");
    raw.write_close(1001).await;
    assert_eq!(raw.read_frame().await, None);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_app_that_closes_on_the_shutdown_signal_ends_the_drain_early() {
    let app = |scope: Scope, receive: Receiver, send: Sender| async move {
        let Scope::WebSocket(scope) = scope else {
            return Ok(());
        };
        let shutdown = scope.shutdown.clone();
        let mut ws = WebSocket::new(scope, receive, send);
        ws.accept().await?;
        shutdown.wait().await;
        ws.send_text("going away").await?;
        ws.close(1012, "restarting").await
    };
    // A drain deadline far beyond the test's patience: only the app's close ends it in time.
    let server = start(app, |b| b.drain_timeout(Some(PATIENCE * 10))).await;
    let mut ws = ws_common::connect(server.addr, "/").await;
    server.handle.shutdown();
    let goodbye = tokio::time::timeout(PATIENCE, ws.next()).await.unwrap();
    assert_eq!(goodbye.unwrap().unwrap(), WsMessage::text("going away"));
    match tokio::time::timeout(PATIENCE, ws.next()).await.unwrap() {
        Some(Ok(WsMessage::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1012),
        other => panic!("expected the app's close frame, got {other:?}"),
    }
    let _ = tokio::time::timeout(PATIENCE, ws.next()).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_websockets_over_http2_with_1001() {
    let (report, rx) = Report::new();
    let server = start(recording_app(report), |b| {
        b.drain_timeout(Some(Duration::from_millis(100)))
    })
    .await;
    let (status, _, ws) = connect_h2(server.addr, "/", &[]).await;
    assert_eq!(status, 200);
    let mut ws = ws.unwrap();
    server.handle.shutdown();
    match tokio::time::timeout(PATIENCE, ws.next()).await.unwrap() {
        Some(Ok(WsMessage::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected a close frame with 1001, got {other:?}"),
    }
    // Reading on sends tokio-tungstenite's answering close frame.
    assert!(
        tokio::time::timeout(PATIENCE, ws.next())
            .await
            .unwrap()
            .is_none_or(|end| end.is_err())
    );
    assert_eq!(
        record(rx).await,
        ["websocket.connect", "websocket.disconnect 1001"]
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_open_websocket_keeps_its_place_under_max_connections() {
    let (report, _rx) = Report::new();
    let server = start(recording_app(report), |b: Builder| {
        b.max_connections(Some(1))
    })
    .await;
    let mut ws = ws_common::connect(server.addr, "/").await;
    let addr = server.addr;
    let request = tokio::spawn(async move { fetch(addr, "/").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !request.is_finished(),
        "a second connection was served while the WebSocket held the only place"
    );
    ws.close(None).await.unwrap();
    let answer = tokio::time::timeout(PATIENCE, request)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, Bytes::from_static(b"ok"));
    server.stop().await.unwrap();
}

/// An app with lifespan support whose WebSocket app goes on for `linger` after its
/// `websocket.disconnect`; `order` records when lifespan shutdown starts and when a
/// WebSocket app returns.
fn lingering_app(order: Arc<std::sync::Mutex<Vec<&'static str>>>, linger: Duration) -> impl App {
    move |scope: Scope, mut receive: Receiver, mut send: Sender| {
        let order = order.clone();
        async move {
            match scope {
                Scope::Lifespan(_) => loop {
                    match receive.recv().await {
                        ReceiveEvent::LifespanStartup => {
                            send.send(SendEvent::LifespanStartupComplete).await?;
                        }
                        _ => {
                            order.lock().unwrap().push("lifespan.shutdown");
                            send.send(SendEvent::LifespanShutdownComplete).await?;
                            return Ok(());
                        }
                    }
                },
                Scope::WebSocket(_) => {
                    assert_eq!(receive.recv().await, ReceiveEvent::WebSocketConnect);
                    send.send(SendEvent::WebSocketAccept {
                        subprotocol: None,
                        headers: HeaderMap::new(),
                    })
                    .await?;
                    while !matches!(
                        receive.recv().await,
                        ReceiveEvent::WebSocketDisconnect { .. }
                    ) {}
                    // Cleaning up after the client left.
                    tokio::time::sleep(linger).await;
                    order.lock().unwrap().push("websocket app returned");
                    Ok(())
                }
                _ => Ok(()),
            }
        }
    }
}

#[tokio::test]
async fn lifespan_shutdown_starts_after_every_websocket_app_returned() {
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let server = start(
        lingering_app(order.clone(), Duration::from_millis(300)),
        |b| b,
    )
    .await;
    let mut ws = connect(server.addr, "/").await;
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = tokio::time::timeout(PATIENCE, ws.next()).await.unwrap() {}
    server.stop().await.unwrap();
    assert_eq!(
        *order.lock().unwrap(),
        ["websocket app returned", "lifespan.shutdown"]
    );
}

#[tokio::test]
async fn lifespan_shutdown_starts_at_the_drain_deadline_when_a_websocket_app_lingers() {
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let server = start(
        lingering_app(order.clone(), Duration::from_secs(3600)),
        |b| b.drain_timeout(Some(Duration::from_millis(200))),
    )
    .await;
    let mut ws = connect(server.addr, "/").await;
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = tokio::time::timeout(PATIENCE, ws.next()).await.unwrap() {}
    let stopping = std::time::Instant::now();
    server.stop().await.unwrap();
    assert!(
        stopping.elapsed() < PATIENCE,
        "the drain deadline was not kept"
    );
    assert_eq!(*order.lock().unwrap(), ["lifespan.shutdown"]);
}

#[tokio::test]
async fn shutdown_now_stops_at_once_over_http2_websockets_without_a_close_timeout() {
    let (report, rx) = Report::new();
    let mut websocket = WebSocketConfig::default();
    websocket.close_timeout = None;
    let server = start(recording_app(report), |b| {
        b.drain_timeout(None).websocket(websocket)
    })
    .await;
    let (status, _, ws) = connect_h2(server.addr, "/", &[]).await;
    assert_eq!(status, 200);
    // The client never reads, so it never answers a close frame.
    let _ws = ws.unwrap();
    server.handle.shutdown_now();
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("shutdown_now stops the server at once")
        .unwrap()
        .unwrap();
    // The app still gets its one `websocket.disconnect`.
    let record = record(rx).await;
    assert_eq!(record[0], "websocket.connect");
    assert!(record[1].starts_with("websocket.disconnect"), "{record:?}");
    assert_eq!(record.len(), 2);
}
