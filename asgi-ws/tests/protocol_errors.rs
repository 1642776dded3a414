//! A client's protocol error, as Autobahn's strict cases check it: messages read before the
//! bad frame still reach the app and its answers go out before the close frame, and
//! invalid UTF-8 fails the connection as soon as it arrives, not when its frame ends.

mod common;

use std::time::{Duration, Instant};

use asgi_core::{ReceiveEvent, Receiver, Scope, SendEvent, Sender, WebSocketMessage};
use common::*;
use http::HeaderMap;
use tokio::sync::mpsc;

/// The bad frames the tests send after good messages, with the close code each gets.
fn bad_frames() -> Vec<(&'static str, Vec<u8>, u16)> {
    let mut rsv2 = client_frame(TEXT, true, false, b"bad");
    rsv2[0] |= 0x20;
    let mut reserved_opcode = client_frame(TEXT, true, false, b"");
    reserved_opcode[0] = 0x80 | 0x5;
    vec![
        ("RSV2 set", rsv2, 1002),
        ("reserved opcode", reserved_opcode, 1002),
        (
            "continuation without a message",
            client_frame(CONTINUATION, true, false, b"orphan"),
            1002,
        ),
        ("unmasked frame", unmasked_frame(TEXT, b"hi"), 1002),
        (
            "invalid UTF-8",
            client_frame(TEXT, true, false, &[0xff]),
            1007,
        ),
    ]
}

/// Reads server frames up to the close frame; returns the data payloads and the close code.
async fn frames_until_close(client: &mut tokio::net::TcpStream) -> (Vec<Vec<u8>>, u16) {
    let mut data = Vec::new();
    loop {
        let frame = read_frame(client)
            .await
            .expect("connection ended before a close frame");
        match frame.opcode {
            CLOSE => return (data, frame.close().0),
            TEXT | BINARY => data.push(frame.payload),
            other => panic!("unexpected opcode {other}"),
        }
    }
}

#[tokio::test]
async fn messages_before_a_bad_frame_in_the_same_write_are_echoed_before_the_close() {
    for (name, bad, code) in bad_frames() {
        let (tx, mut reports) = mpsc::channel(64);
        let (mut client, _server) = open_raw(reporting_echo(tx), quiet()).await;
        let mut bytes = client_frame(TEXT, true, false, b"first");
        bytes.extend(client_frame(BINARY, true, false, b"second"));
        bytes.extend(client_frame(TEXT, false, false, b"thi"));
        bytes.extend(client_frame(CONTINUATION, true, false, b"rd"));
        bytes.extend(&bad);
        bytes.extend(client_frame(PING, true, false, b"never answered"));
        write_raw(&mut client, &bytes).await;

        let (data, close) = frames_until_close(&mut client).await;
        assert_eq!(data, [&b"first"[..], b"second", b"third"], "{name}");
        assert_eq!(close, code, "{name}");
        let ((disconnect, _), events) = one_disconnect(&mut reports).await;
        assert_eq!(disconnect, code, "{name}");
        assert_eq!(events.len(), 3, "{name}: {events:?}");
    }
}

#[tokio::test]
async fn more_messages_than_the_receive_queue_before_a_bad_frame_are_all_echoed_in_order() {
    let (tx, mut reports) = mpsc::channel(256);
    let mut config = quiet();
    config.receive_queue = 2;
    let (mut client, _server) = open_raw(reporting_echo(tx), config).await;
    let mut bytes = Vec::new();
    for i in 0..40 {
        bytes.extend(client_frame(TEXT, true, false, format!("m{i}").as_bytes()));
    }
    bytes.extend(client_frame(CONTINUATION, true, false, b"orphan"));
    write_raw(&mut client, &bytes).await;

    let (data, close) = frames_until_close(&mut client).await;
    let expected: Vec<Vec<u8>> = (0..40).map(|i| format!("m{i}").into_bytes()).collect();
    assert_eq!(data, expected);
    assert_eq!(close, 1002);
    assert_eq!(one_disconnect(&mut reports).await.0.0, 1002);
}

/// Accepts and never reads, like an app busy elsewhere.
fn app_that_never_reads() -> impl asgi_core::App {
    |_scope: Scope, mut receive: Receiver, mut send: Sender| async move {
        assert_eq!(receive.recv().await, ReceiveEvent::WebSocketConnect);
        send.send(SendEvent::WebSocketAccept {
            subprotocol: None,
            headers: HeaderMap::new(),
        })
        .await?;
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(())
    }
}

#[tokio::test]
async fn an_app_that_does_not_read_holds_the_failure_for_the_grace_only() {
    let grace = Duration::from_millis(400);
    let mut config = quiet();
    config.failure_grace = Some(grace);
    let (mut client, server) = open_raw(app_that_never_reads(), config).await;
    let started = Instant::now();
    write_raw(&mut client, &client_frame(CONTINUATION, true, false, b"x")).await;
    assert_eq!(read_close(&mut client).await.0, 1002);
    // The timer decides the lower bound; the upper bound is `within`'s.
    assert!(started.elapsed() >= grace, "{:?}", started.elapsed());
    write_raw(
        &mut client,
        &client_frame(CLOSE, true, false, &close_payload(1002, "")),
    )
    .await;
    assert_eq!(within(server.run).await.unwrap().code, 1002);
}

#[tokio::test]
async fn without_a_failure_grace_the_close_goes_out_at_once_and_answers_are_dropped() {
    let (tx, mut reports) = mpsc::channel(64);
    let mut config = quiet();
    config.failure_grace = None;
    let (mut client, server) = open_raw(reporting_echo(tx), config).await;
    let mut bytes = client_frame(TEXT, true, false, b"read before");
    bytes.extend(client_frame(CONTINUATION, true, false, b"x"));
    write_raw(&mut client, &bytes).await;
    // The message still reaches the app, but the close frame was out before its echo.
    let (data, close) = frames_until_close(&mut client).await;
    assert_eq!((data.len(), close), (0, 1002));
    let ((code, _), events) = one_disconnect(&mut reports).await;
    assert_eq!(code, 1002);
    assert_eq!(
        events,
        [ReceiveEvent::WebSocketReceive(WebSocketMessage::Text(
            "read before".into()
        ))]
    );
    write_raw(
        &mut client,
        &client_frame(CLOSE, true, false, &close_payload(1002, "")),
    )
    .await;
    assert_eq!(within(server.run).await.unwrap().code, 1002);
}

#[tokio::test]
async fn app_close_while_failing_is_replaced_by_the_failure_code() {
    // The app answers each message with a close of its own, after the bad frame was read.
    let app = |_scope: Scope, mut receive: Receiver, mut send: Sender| async move {
        receive.recv().await;
        send.send(SendEvent::WebSocketAccept {
            subprotocol: None,
            headers: HeaderMap::new(),
        })
        .await?;
        if let ReceiveEvent::WebSocketReceive(_) = receive.recv().await {
            send.send(SendEvent::text("bye")).await?;
            send.send(SendEvent::WebSocketClose {
                code: 4000,
                reason: String::new(),
            })
            .await?;
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(())
    };
    let (mut client, _server) = open_raw(app, quiet()).await;
    let mut bytes = client_frame(TEXT, true, false, b"hello");
    bytes.extend(client_frame(CONTINUATION, true, false, b"orphan"));
    write_raw(&mut client, &bytes).await;
    let (data, close) = frames_until_close(&mut client).await;
    assert_eq!(data, [b"bye"]);
    assert_eq!(close, 1002);
}

/// The first `n` bytes of a masked client frame of under 126 bytes (a 6-byte header).
fn prefix(frame: &[u8], payload_bytes: usize) -> &[u8] {
    &frame[..6 + payload_bytes]
}

#[tokio::test]
async fn invalid_utf8_fails_before_its_frame_is_complete() {
    let (tx, mut reports) = mpsc::channel(64);
    let (mut client, _server) = open_raw(reporting_echo(tx), quiet()).await;
    // Valid text, then F4 90 (beyond U+10FFFF), then more that never arrives.
    let mut payload = "κόσμε".as_bytes().to_vec();
    let valid = payload.len();
    payload.extend([0xf4, 0x90, 0x80, 0x80]);
    payload.extend(b"and the rest of a long frame");
    let frame = client_frame(TEXT, true, false, &payload);
    write_raw(&mut client, prefix(&frame, valid)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    write_raw(&mut client, &frame[6 + valid..6 + valid + 2]).await;
    assert_eq!(read_close(&mut client).await.0, 1007);
    assert_eq!(one_disconnect(&mut reports).await.0.0, 1007);
}

#[tokio::test]
async fn invalid_utf8_in_an_arriving_continuation_fails_before_it_is_complete() {
    let (tx, mut reports) = mpsc::channel(64);
    let (mut client, _server) = open_raw(reporting_echo(tx), quiet()).await;
    // The first fragment ends inside "€" (E2 82 AC); the continuation gets it wrong.
    write_raw(
        &mut client,
        &client_frame(TEXT, false, false, &[b'a', 0xe2]),
    )
    .await;
    let continuation = client_frame(CONTINUATION, true, false, &[0x82, 0x41, b'b', b'c']);
    write_raw(&mut client, prefix(&continuation, 2)).await;
    assert_eq!(read_close(&mut client).await.0, 1007);
    assert_eq!(one_disconnect(&mut reports).await.0.0, 1007);
}

#[tokio::test]
async fn code_points_cut_between_writes_and_fragments_are_valid() {
    let (tx, mut reports) = mpsc::channel(64);
    let (mut client, _server) = open_raw(reporting_echo(tx), quiet()).await;
    let text = "€𝄞ü".as_bytes();
    // One frame, written a byte at a time.
    let frame = client_frame(TEXT, true, false, text);
    for byte in &frame {
        write_raw(&mut client, std::slice::from_ref(byte)).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Three fragments, cut inside code points, each fragment in two writes.
    for (i, piece) in [&text[..2], &text[2..5], &text[5..]]
        .into_iter()
        .enumerate()
    {
        let opcode = if i == 0 { TEXT } else { CONTINUATION };
        let fragment = client_frame(opcode, i == 2, false, piece);
        write_raw(&mut client, &fragment[..7]).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        write_raw(&mut client, &fragment[7..]).await;
    }
    for _ in 0..2 {
        let echo = read_frame(&mut client).await.unwrap();
        assert_eq!((echo.opcode, echo.payload.as_slice()), (TEXT, text));
    }
    write_raw(
        &mut client,
        &client_frame(CLOSE, true, false, &close_payload(1000, "")),
    )
    .await;
    let ((code, _), events) = one_disconnect(&mut reports).await;
    assert_eq!(code, 1000);
    let message = ReceiveEvent::WebSocketReceive(WebSocketMessage::Text("€𝄞ü".into()));
    assert_eq!(events, [message.clone(), message]);
}
