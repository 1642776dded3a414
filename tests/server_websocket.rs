//! WebSockets through the real server: handshakes, messages, limits, keepalive, disconnects,
//! backpressure and shutdown, with tokio-tungstenite as the client and raw bytes where a
//! client library would hide what the server does.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[tokio::test]
async fn accept_and_echo_text_and_binary() {
    let server = start_testbed().await;
    let url = format!("ws://{}/ws/echo", server.addr);
    let (mut ws, response) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(response.status(), 101);
    ws.send(WsMessage::text("hello")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), WsMessage::text("hello"));
    ws.send(WsMessage::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        WsMessage::binary(vec![0u8, 1, 2, 255])
    );
    ws.close(None).await.unwrap();
    server.stop().await.unwrap();
}
