//! Backpressure both ways: a client that stops reading blocks the app's `send`; an app that
//! stops receiving stops the reading of frames. Memory stays bounded, nothing is lost.
//!
//! The link is an in-memory duplex with a 64 KiB buffer, so that the bound does not depend
//! on the kernel's socket buffers.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use asgi_core::{Error, ReceiveEvent, Receiver, Scope, SendEvent, Sender, WebSocketMessage};
use common::*;
use futures_util::StreamExt;
use http::HeaderMap;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Message;

const LINK_BUFFER: usize = 64 * 1024;
const MESSAGE: usize = 16 * 1024;

/// Waits until `counter` stops moving for 200 ms, and returns its value.
async fn settled(counter: &AtomicUsize) -> usize {
    let mut last = counter.load(Ordering::SeqCst);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = counter.load(Ordering::SeqCst);
        if now == last {
            return now;
        }
        last = now;
    }
}

#[tokio::test]
async fn client_that_stops_reading_blocks_the_apps_send() {
    let sent = Arc::new(AtomicUsize::new(0));
    let app_sent = sent.clone();
    let app = move |_: Scope, mut receive: Receiver, mut send: Sender| {
        let sent = app_sent.clone();
        async move {
            receive.recv().await;
            send.send(SendEvent::WebSocketAccept {
                subprotocol: None,
                headers: HeaderMap::new(),
            })
            .await?;
            for i in 0..1000u32 {
                let mut message = vec![0u8; MESSAGE];
                message[..4].copy_from_slice(&i.to_be_bytes());
                send.send(SendEvent::binary(message)).await?;
                sent.fetch_add(1, Ordering::SeqCst);
            }
            Ok::<(), Error>(())
        }
    };
    let config = quiet();
    let (client_io, server_io) = tokio::io::duplex(LINK_BUFFER);
    let server = accept_over(app, config.clone(), &upgrade(&[]), server_io).await;
    let mut client = client_over(client_io).await;

    // The client reads nothing: the app gets only as far as the buffers allow.
    let blocked_at = within(settled(&sent)).await;
    let bound = (LINK_BUFFER + 2 * config.write_buffer) / MESSAGE + config.send_queue + 1;
    assert!(blocked_at < 1000, "the app's send never blocked");
    assert!(
        blocked_at <= bound,
        "{blocked_at} messages buffered, bound {bound}"
    );
    assert!(!server.run.is_finished());

    // Reading again releases the app, and every message arrives in order.
    for i in 0..1000u32 {
        let Message::Binary(bytes) = within(client.next()).await.unwrap().unwrap() else {
            panic!("expected binary")
        };
        assert_eq!(bytes.len(), MESSAGE);
        assert_eq!(bytes[..4], i.to_be_bytes());
    }
    assert_eq!(sent.load(Ordering::SeqCst), 1000);
}

#[tokio::test]
async fn app_that_stops_receiving_stops_the_reading_of_frames() {
    let go = Arc::new(Notify::new());
    let (tx, mut received) = mpsc::channel(2000);
    let app_go = go.clone();
    let app = move |_: Scope, mut receive: Receiver, mut send: Sender| {
        let go = app_go.clone();
        let tx = tx.clone();
        async move {
            receive.recv().await;
            send.send(SendEvent::WebSocketAccept {
                subprotocol: None,
                headers: HeaderMap::new(),
            })
            .await?;
            go.notified().await;
            loop {
                match receive.recv().await {
                    ReceiveEvent::WebSocketReceive(WebSocketMessage::Binary(bytes)) => {
                        let _ = tx.send(bytes).await;
                    }
                    _ => return Ok::<(), Error>(()),
                }
            }
        }
    };
    let config = quiet();
    let (mut client_io, server_io) = tokio::io::duplex(LINK_BUFFER);
    let _server = accept_over(app, config.clone(), &upgrade(&[]), server_io).await;

    // Write raw frames until the writes block: the server stopped reading.
    let written = Arc::new(AtomicUsize::new(0));
    let client_written = written.clone();
    let writer = tokio::spawn(async move {
        for i in 0..1000u32 {
            let mut message = vec![0u8; MESSAGE];
            message[..4].copy_from_slice(&i.to_be_bytes());
            client_io
                .write_all(&client_frame(BINARY, true, false, &message))
                .await
                .unwrap();
            client_written.fetch_add(1, Ordering::SeqCst);
        }
        client_io
    });
    let blocked_at = within(settled(&written)).await;
    // The app's queue, one message waiting for room in it, the link buffer, and the few
    // frames one read of the server's buffer can hold.
    let bound = config.receive_queue + 1 + LINK_BUFFER / MESSAGE + 4;
    assert!(blocked_at < 1000, "the client's writes never blocked");
    assert!(
        blocked_at <= bound,
        "{blocked_at} messages accepted, bound {bound}"
    );

    // The app reads again: everything arrives, in order.
    go.notify_one();
    for i in 0..1000u32 {
        let bytes = within(received.recv()).await.unwrap();
        assert_eq!(bytes[..4], i.to_be_bytes());
    }
    within(writer).await.unwrap();
}
