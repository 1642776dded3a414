//! permessage-deflate on the wire: negotiation in the 101 headers, compressed round trips
//! with and without context takeover, window bits, fragments, and the failures.
//!
//! tungstenite cannot compress, so the client here speaks raw frames, compressing with
//! flate2 the way RFC 7692 says.

mod common;

use asgi_core::{ReceiveEvent, WebSocketMessage};
use asgi_ws::WebSocketConfig;
use common::*;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Compresses one message as a permessage-deflate sender: sync flush, tail removed.
fn compress(compressor: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut consumed = 0;
    loop {
        let before = compressor.total_in();
        compressor
            .compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
            .unwrap();
        consumed += (compressor.total_in() - before) as usize;
        if consumed == data.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(1024);
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

/// Decompresses one message as a permessage-deflate receiver: tail restored.
fn decompress(decompressor: &mut Decompress, data: &[u8]) -> Vec<u8> {
    let mut input = data.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(64 * 1024);
    let mut consumed = 0;
    loop {
        let before = decompressor.total_in();
        decompressor
            .decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync)
            .unwrap();
        consumed += (decompressor.total_in() - before) as usize;
        if consumed == input.len() && out.len() < out.capacity() {
            return out;
        }
        out.reserve(64 * 1024);
    }
}

fn raw_compressor() -> Compress {
    Compress::new(Compression::default(), false)
}

async fn open_deflate(
    offer: &'static str,
    config: WebSocketConfig,
) -> (TcpStream, Server, mpsc::Receiver<Report>) {
    let (tx, reports) = mpsc::channel(64);
    let (client, server_io) = tcp_pair().await;
    let request = upgrade(&[("sec-websocket-extensions", offer)]);
    let server = accept_over(reporting_echo(tx), config, &request, server_io).await;
    (client, server, reports)
}

#[tokio::test]
async fn deflate_is_negotiated_in_the_101_headers() {
    let (_client, server, _) = open_deflate(
        "permessage-deflate; client_no_context_takeover; server_max_window_bits=10",
        quiet(),
    )
    .await;
    assert_eq!(
        server.headers["sec-websocket-extensions"],
        "permessage-deflate; client_no_context_takeover; server_max_window_bits=10"
    );
}

#[tokio::test]
async fn deflate_disabled_by_config_is_not_negotiated() {
    let mut config = quiet();
    config.deflate = None;
    let (_client, server, _) = open_deflate("permessage-deflate", config).await;
    assert!(server.headers.get("sec-websocket-extensions").is_none());
}

#[tokio::test]
async fn compressed_round_trip_with_context_takeover() {
    let (mut client, _server, mut reports) = open_deflate("permessage-deflate", quiet()).await;
    let mut compressor = raw_compressor();
    let mut decompressor = Decompress::new(false);
    let text = "compress me, compress me, compress me please";
    let mut echoed_sizes = Vec::new();
    for _ in 0..3 {
        let payload = compress(&mut compressor, text.as_bytes());
        write_raw(&mut client, &client_frame(TEXT, true, true, &payload)).await;
        let frame = read_frame(&mut client).await.unwrap();
        assert!(frame.rsv1, "the server's answer is compressed");
        assert_eq!(frame.opcode, TEXT);
        echoed_sizes.push(frame.payload.len());
        assert_eq!(
            decompress(&mut decompressor, &frame.payload),
            text.as_bytes()
        );
    }
    // With context takeover, a repeat compresses to less than the first message.
    assert!(echoed_sizes[1] < echoed_sizes[0], "{echoed_sizes:?}");
    for _ in 0..3 {
        let Some(Report::Event(event)) = reports.recv().await else {
            panic!()
        };
        assert_eq!(
            event,
            ReceiveEvent::WebSocketReceive(WebSocketMessage::Text(text.into()))
        );
    }
}

#[tokio::test]
async fn compressed_round_trip_without_context_takeover() {
    let (mut client, server, _) = open_deflate(
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        quiet(),
    )
    .await;
    assert_eq!(
        server.headers["sec-websocket-extensions"],
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    );
    let data = b"no context, no context, no context".to_vec();
    let mut echoed = Vec::new();
    for _ in 0..2 {
        // A fresh compressor per message, as agreed.
        let payload = compress(&mut raw_compressor(), &data);
        write_raw(&mut client, &client_frame(BINARY, true, true, &payload)).await;
        let frame = read_frame(&mut client).await.unwrap();
        // Each answer decompresses on its own.
        assert_eq!(
            decompress(&mut Decompress::new(false), &frame.payload),
            data
        );
        echoed.push(frame.payload);
    }
    assert_eq!(
        echoed[0], echoed[1],
        "the server kept context between messages"
    );
}

/// 1000 pseudo-random bytes, twice: the repeat is 1000 bytes back.
fn repeated_block() -> Vec<u8> {
    let mut x: u32 = 12345;
    let block: Vec<u8> = (0..1000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    [block.clone(), block].concat()
}

#[tokio::test]
async fn server_max_window_bits_is_honoured() {
    let (mut client, server, _) =
        open_deflate("permessage-deflate; server_max_window_bits=9", quiet()).await;
    assert_eq!(
        server.headers["sec-websocket-extensions"],
        "permessage-deflate; server_max_window_bits=9"
    );
    let data = repeated_block();
    let payload = compress(&mut raw_compressor(), &data);
    write_raw(&mut client, &client_frame(BINARY, true, true, &payload)).await;
    let frame = read_frame(&mut client).await.unwrap();
    assert!(frame.rsv1);
    // A decompressor with a 512-byte window fails on any match reaching further back.
    let mut small_window = Decompress::new_with_window_bits(false, 9);
    assert_eq!(decompress(&mut small_window, &frame.payload), data);
}

#[tokio::test]
async fn fragmented_compressed_message_is_reassembled() {
    let (mut client, _server, _) = open_deflate("permessage-deflate", quiet()).await;
    let text: String = (0..3000).map(|i| format!("{i} ")).collect();
    let payload = compress(&mut raw_compressor(), text.as_bytes());
    let third = payload.len() / 3;
    // RSV1 on the first frame only (RFC 7692 6.1).
    write_raw(
        &mut client,
        &client_frame(TEXT, false, true, &payload[..third]),
    )
    .await;
    write_raw(
        &mut client,
        &client_frame(CONTINUATION, false, false, &payload[third..2 * third]),
    )
    .await;
    write_raw(
        &mut client,
        &client_frame(CONTINUATION, true, false, &payload[2 * third..]),
    )
    .await;
    let frame = read_frame(&mut client).await.unwrap();
    assert_eq!(
        decompress(&mut Decompress::new(false), &frame.payload),
        text.as_bytes()
    );
}

#[tokio::test]
async fn compressed_message_over_the_limit_closes_1009() {
    let mut config = quiet();
    config.max_message_size = Some(10_000);
    let (mut client, _server, mut reports) = open_deflate("permessage-deflate", config).await;
    // A megabyte of zeros compresses to about a kilobyte.
    let payload = compress(&mut raw_compressor(), &vec![0u8; 1 << 20]);
    assert!(payload.len() < 10_000);
    write_raw(&mut client, &client_frame(BINARY, true, true, &payload)).await;
    assert_eq!(read_close(&mut client).await.0, 1009);
    assert_eq!(one_disconnect(&mut reports).await.0.0, 1009);
}

#[tokio::test]
async fn compressed_message_at_the_limit_passes() {
    let mut config = quiet();
    config.max_message_size = Some(10_000);
    let (mut client, _server, _) = open_deflate("permessage-deflate", config).await;
    let payload = compress(&mut raw_compressor(), &[b'z'; 10_000]);
    write_raw(&mut client, &client_frame(TEXT, true, true, &payload)).await;
    let frame = read_frame(&mut client).await.unwrap();
    assert_eq!(
        decompress(&mut Decompress::new(false), &frame.payload),
        [b'z'; 10_000]
    );
}

#[tokio::test]
async fn rsv1_without_negotiation_closes_1002() {
    let (tx, mut reports) = mpsc::channel(64);
    let (mut client, _server) = open_raw(reporting_echo(tx), quiet()).await;
    let payload = compress(&mut raw_compressor(), b"hi");
    write_raw(&mut client, &client_frame(TEXT, true, true, &payload)).await;
    assert_eq!(read_close(&mut client).await.0, 1002);
    assert_eq!(one_disconnect(&mut reports).await.0.0, 1002);
}

#[tokio::test]
async fn corrupt_compressed_data_closes_1007() {
    let (mut client, _server, mut reports) = open_deflate("permessage-deflate", quiet()).await;
    write_raw(&mut client, &client_frame(BINARY, true, true, &[0xff; 16])).await;
    assert_eq!(read_close(&mut client).await.0, 1007);
    assert_eq!(one_disconnect(&mut reports).await.0.0, 1007);
}

#[tokio::test]
async fn uncompressed_messages_still_pass_when_deflate_is_on() {
    let (mut client, _server, _) = open_deflate("permessage-deflate", quiet()).await;
    write_raw(&mut client, &client_frame(TEXT, true, false, b"plain")).await;
    let frame = read_frame(&mut client).await.unwrap();
    assert_eq!(
        decompress(&mut Decompress::new(false), &frame.payload),
        b"plain"
    );
}

#[tokio::test]
async fn empty_compressed_payload_is_an_empty_message_and_later_messages_still_inflate() {
    let (mut client, _server, mut reports) = open_deflate("permessage-deflate", quiet()).await;
    // One compressor for the whole connection (context takeover): the messages after the
    // empty ones refer back to "repeat me, repeat me".
    let mut compressor = raw_compressor();
    let first = compress(&mut compressor, b"repeat me, repeat me");
    write_raw(&mut client, &client_frame(TEXT, true, true, &first)).await;
    // An RSV1 frame with no payload at all, then the same as two empty fragments.
    write_raw(&mut client, &client_frame(BINARY, true, true, &[])).await;
    write_raw(&mut client, &client_frame(TEXT, false, true, &[])).await;
    write_raw(&mut client, &client_frame(CONTINUATION, true, false, &[])).await;
    for _ in 0..2 {
        let again = compress(&mut compressor, b"repeat me, repeat me");
        write_raw(&mut client, &client_frame(TEXT, true, true, &again)).await;
    }

    let expected = [
        WebSocketMessage::Text("repeat me, repeat me".into()),
        WebSocketMessage::Binary(Vec::new().into()),
        WebSocketMessage::Text(String::new()),
        WebSocketMessage::Text("repeat me, repeat me".into()),
        WebSocketMessage::Text("repeat me, repeat me".into()),
    ];
    let mut decompressor = Decompress::new(false);
    for message in &expected {
        let Some(Report::Event(event)) = within(reports.recv()).await else {
            panic!("the app got no {message:?}")
        };
        assert_eq!(event, ReceiveEvent::WebSocketReceive(message.clone()));
        let frame = read_frame(&mut client).await.unwrap();
        let plain: &[u8] = match message {
            WebSocketMessage::Text(text) => text.as_bytes(),
            WebSocketMessage::Binary(bytes) => bytes,
        };
        assert_eq!(decompress(&mut decompressor, &frame.payload), plain);
    }
}
