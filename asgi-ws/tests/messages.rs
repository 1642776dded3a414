//! Messages both ways over a real socket: echo, fragmentation, size limits, and the frames a
//! server must reject.

mod common;

use asgi_core::{ReceiveEvent, WebSocketMessage};
use asgi_ws::WebSocketConfig;
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

#[tokio::test]
async fn echo_text_round_trip() {
    let (tx, mut reports) = mpsc::channel(64);
    let (mut client, server) = open(reporting_echo(tx), quiet()).await;
    client
        .send(Message::text("hello, ünïcode ✓"))
        .await
        .unwrap();
    let echoed = within(client.next()).await.unwrap().unwrap();
    assert_eq!(echoed, Message::text("hello, ünïcode ✓"));
    client.close(None).await.unwrap();
    let (_, events) = one_disconnect(&mut reports).await;
    assert_eq!(
        events,
        [ReceiveEvent::WebSocketReceive(WebSocketMessage::Text(
            "hello, ünïcode ✓".into()
        ))]
    );
    within(server.run).await.unwrap();
}

#[tokio::test]
async fn echo_binary_round_trip() {
    let (tx, _reports) = mpsc::channel(64);
    let (mut client, _server) = open(reporting_echo(tx), quiet()).await;
    let payload: Vec<u8> = (0..=255).cycle().take(300_000).collect();
    client.send(Message::binary(payload.clone())).await.unwrap();
    client.send(Message::binary(Vec::new())).await.unwrap();
    assert_eq!(
        within(client.next()).await.unwrap().unwrap(),
        Message::binary(payload)
    );
    assert_eq!(
        within(client.next()).await.unwrap().unwrap(),
        Message::binary(Vec::new())
    );
}

#[tokio::test]
async fn many_messages_arrive_in_order() {
    let (tx, _reports) = mpsc::channel(1024);
    let (client, _server) = open(reporting_echo(tx), quiet()).await;
    let (mut write, mut read) = client.split();
    let sender = tokio::spawn(async move {
        for i in 0..500 {
            write.send(Message::text(i.to_string())).await.unwrap();
        }
        write
    });
    for i in 0..500 {
        let message = within(read.next()).await.unwrap().unwrap();
        assert_eq!(message, Message::text(i.to_string()));
    }
    drop(sender.await.unwrap());
}

#[tokio::test]
async fn fragmented_message_is_reassembled_with_a_ping_between_fragments() {
    let (tx, mut reports) = mpsc::channel(64);
    let (mut client, _server) = open(reporting_echo(tx), quiet()).await;
    let fragments = [
        Frame::message("frag", OpCode::Data(Data::Text), false),
        Frame::message("men", OpCode::Data(Data::Continue), false),
        Frame::ping("between"),
        Frame::message("ted ✓", OpCode::Data(Data::Continue), true),
    ];
    for frame in fragments {
        client.send(Message::Frame(frame)).await.unwrap();
    }
    // The pong for the ping comes first: it was answered before the message completed.
    assert_eq!(
        within(client.next()).await.unwrap().unwrap(),
        Message::Pong("between".into())
    );
    assert_eq!(
        within(client.next()).await.unwrap().unwrap(),
        Message::text("fragmented ✓")
    );
    let Some(Report::Event(event)) = reports.recv().await else {
        panic!()
    };
    assert_eq!(
        event,
        ReceiveEvent::WebSocketReceive(WebSocketMessage::Text("fragmented ✓".into()))
    );
}

#[tokio::test]
async fn fragmented_binary_message_is_reassembled() {
    let (tx, _reports) = mpsc::channel(64);
    let (mut client, _server) = open(reporting_echo(tx), quiet()).await;
    for (data, opcode, fin) in [
        (vec![1u8; 1000], Data::Binary, false),
        (vec![2u8; 70_000], Data::Continue, false),
        (vec![3u8; 10], Data::Continue, true),
    ] {
        let frame = Frame::message(data, OpCode::Data(opcode), fin);
        client.send(Message::Frame(frame)).await.unwrap();
    }
    let Message::Binary(echoed) = within(client.next()).await.unwrap().unwrap() else {
        panic!("expected binary")
    };
    assert_eq!(echoed.len(), 71_010);
    assert!(echoed[..1000].iter().all(|&b| b == 1));
    assert!(echoed[1000..71_000].iter().all(|&b| b == 2));
    assert!(echoed[71_000..].iter().all(|&b| b == 3));
}

fn limited(max: usize) -> WebSocketConfig {
    let mut config = quiet();
    config.max_message_size = Some(max);
    config
}

#[tokio::test]
async fn message_at_the_size_limit_passes() {
    let (tx, _reports) = mpsc::channel(64);
    let (mut client, _server) = open(reporting_echo(tx), limited(1024)).await;
    client.send(Message::binary(vec![7u8; 1024])).await.unwrap();
    assert_eq!(
        within(client.next()).await.unwrap().unwrap(),
        Message::binary(vec![7u8; 1024])
    );
}

#[tokio::test]
async fn message_over_the_size_limit_closes_1009() {
    let (tx, mut reports) = mpsc::channel(64);
    let (mut client, server) = open_raw(reporting_echo(tx), limited(1024)).await;
    write_raw(
        &mut client,
        &client_frame(BINARY, true, false, &[7u8; 1025]),
    )
    .await;
    assert_eq!(read_close(&mut client).await.0, 1009);
    let ((code, _), events) = one_disconnect(&mut reports).await;
    assert_eq!(code, 1009);
    assert!(events.is_empty());
    let closed = within(server.run).await.unwrap();
    assert_eq!(closed.code, 1009);
    assert_eq!(closed.initiator, asgi_ws::CloseInitiator::Server);
}

#[tokio::test]
async fn fragmented_message_over_the_size_limit_closes_1009() {
    let (tx, mut reports) = mpsc::channel(64);
    let (mut client, _server) = open_raw(reporting_echo(tx), limited(1024)).await;
    write_raw(
        &mut client,
        &client_frame(TEXT, false, false, &[b'a'; 1000]),
    )
    .await;
    write_raw(
        &mut client,
        &client_frame(CONTINUATION, true, false, &[b'a'; 25]),
    )
    .await;
    assert_eq!(read_close(&mut client).await.0, 1009);
    assert_eq!(one_disconnect(&mut reports).await.0.0, 1009);
}

#[tokio::test]
async fn invalid_utf8_text_closes_1007() {
    let (tx, mut reports) = mpsc::channel(64);
    let (mut client, _server) = open_raw(reporting_echo(tx), quiet()).await;
    write_raw(
        &mut client,
        &client_frame(TEXT, true, false, &[b'o', b'k', 0xff]),
    )
    .await;
    assert_eq!(read_close(&mut client).await.0, 1007);
    assert_eq!(one_disconnect(&mut reports).await.0.0, 1007);
}

#[tokio::test]
async fn invalid_utf8_in_a_first_fragment_fails_before_the_message_ends() {
    let (tx, mut reports) = mpsc::channel(64);
    let (mut client, _server) = open_raw(reporting_echo(tx), quiet()).await;
    // No final fragment follows: the server must fail on the first one.
    write_raw(
        &mut client,
        &client_frame(
            TEXT,
            false,
            false,
            &[0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xf4, 0x90],
        ),
    )
    .await;
    assert_eq!(read_close(&mut client).await.0, 1007);
    assert_eq!(one_disconnect(&mut reports).await.0.0, 1007);
}

#[tokio::test]
async fn unmasked_frame_closes_1002() {
    let (tx, mut reports) = mpsc::channel(64);
    let (mut client, _server) = open_raw(reporting_echo(tx), quiet()).await;
    write_raw(&mut client, &unmasked_frame(TEXT, b"hi")).await;
    assert_eq!(read_close(&mut client).await.0, 1002);
    assert_eq!(one_disconnect(&mut reports).await.0.0, 1002);
}

#[tokio::test]
async fn reserved_bits_close_1002() {
    let (tx, mut reports) = mpsc::channel(64);
    let (mut client, _server) = open_raw(reporting_echo(tx), quiet()).await;
    let mut frame = client_frame(TEXT, true, false, b"hi");
    frame[0] |= 0x20; // RSV2
    write_raw(&mut client, &frame).await;
    assert_eq!(read_close(&mut client).await.0, 1002);
    assert_eq!(one_disconnect(&mut reports).await.0.0, 1002);
}

#[tokio::test]
async fn continuation_without_a_message_closes_1002() {
    let (tx, mut reports) = mpsc::channel(64);
    let (mut client, _server) = open_raw(reporting_echo(tx), quiet()).await;
    write_raw(
        &mut client,
        &client_frame(CONTINUATION, true, false, b"orphan"),
    )
    .await;
    assert_eq!(read_close(&mut client).await.0, 1002);
    assert_eq!(one_disconnect(&mut reports).await.0.0, 1002);
}

#[tokio::test]
async fn fragmented_ping_closes_1002() {
    let (tx, mut reports) = mpsc::channel(64);
    let (mut client, _server) = open_raw(reporting_echo(tx), quiet()).await;
    write_raw(&mut client, &client_frame(PING, false, false, b"x")).await;
    assert_eq!(read_close(&mut client).await.0, 1002);
    assert_eq!(one_disconnect(&mut reports).await.0.0, 1002);
}

#[tokio::test]
async fn client_ping_gets_a_pong_with_its_payload() {
    let (tx, _reports) = mpsc::channel(64);
    let (mut client, _server) = open_raw(reporting_echo(tx), quiet()).await;
    write_raw(
        &mut client,
        &client_frame(PING, true, false, b"are you there"),
    )
    .await;
    let pong = read_frame(&mut client).await.unwrap();
    assert_eq!(pong.opcode, PONG);
    assert_eq!(pong.payload, b"are you there");
}

#[tokio::test]
async fn messages_over_an_in_memory_duplex() {
    let (tx, _reports) = mpsc::channel(64);
    let (client_io, server_io) = tokio::io::duplex(4096);
    let _server = accept_over(reporting_echo(tx), quiet(), &upgrade(&[]), server_io).await;
    let mut client = client_over(client_io).await;
    client.send(Message::text("over memory")).await.unwrap();
    assert_eq!(
        within(client.next()).await.unwrap().unwrap(),
        Message::text("over memory")
    );
}
