//! permessage-deflate, both ways: messages a client compresses (with the parameters it
//! offered, any level and window, fragmented anywhere, some ending the deflate stream)
//! reach the app exactly as sent, and what the server compresses in its echo inflates back
//! to them. The inflater is also fed the raw bytes of the input as compressed messages:
//! corrupt data and deflate bombs close the connection (1007, 1009), never panic or
//! allocate past the message limit.

#![no_main]

use asgi_core::WebSocketMessage;
use asgi_fuzz::{Input, check_echo, client_frame, run_session};
use asgi_ws::WebSocketConfig;
use flate2::{Compress, Compression, FlushCompress, Status};
use libfuzzer_sys::fuzz_target;

/// The tail of a sync flush, which the sender removes (RFC 7692 7.2.1).
const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.byte();
    let server_window = 8 + input.byte() % 8;
    let client_window = 9 + input.byte() % 7;
    let level = u32::from(input.byte() % 10);
    let mut offer = String::from("permessage-deflate");
    if flags & 0x01 != 0 {
        offer.push_str("; server_no_context_takeover");
    }
    let client_resets = flags & 0x02 != 0;
    if client_resets {
        offer.push_str("; client_no_context_takeover");
    }
    if flags & 0x04 != 0 {
        offer.push_str(&format!("; server_max_window_bits={server_window}"));
    }
    offer.push_str(&format!("; client_max_window_bits={client_window}"));
    let raw = flags & 0x08 != 0;
    let mut config = WebSocketConfig::default();
    config.ping_interval = None;
    config.max_message_size = Some(256 * 1024);

    let mask = [input.byte(), input.byte(), input.byte(), input.byte()];
    let mut compressor =
        Compress::new_with_window_bits(Compression::new(level), false, client_window);
    let mut sent = Vec::new();
    let mut bytes = Vec::new();
    while !input.is_empty() {
        let kind = input.byte();
        let content = input.piece();
        let text = kind & 0x01 != 0;
        let payload = if raw {
            // Arbitrary bytes for the inflater.
            content.to_vec()
        } else {
            let message = if text {
                WebSocketMessage::Text(String::from_utf8_lossy(content).into_owned())
            } else {
                WebSocketMessage::Binary(content.to_vec().into())
            };
            let plain: &[u8] = match &message {
                WebSocketMessage::Text(t) => t.as_bytes(),
                WebSocketMessage::Binary(b) => b,
            };
            let finish = kind & 0x02 != 0;
            let mut out = Vec::new();
            let flush = if finish {
                FlushCompress::Finish
            } else {
                FlushCompress::Sync
            };
            let mut consumed = 0;
            loop {
                if out.capacity() - out.len() < 64 {
                    out.reserve(plain.len() + 64);
                }
                let before = compressor.total_in();
                let status = compressor
                    .compress_vec(&plain[consumed..], &mut out, flush)
                    .expect("compression");
                consumed += usize::try_from(compressor.total_in() - before).unwrap();
                let done = if finish {
                    status == Status::StreamEnd
                } else {
                    consumed == plain.len() && out.len() < out.capacity()
                };
                if done {
                    break;
                }
            }
            if finish || client_resets {
                compressor.reset();
            }
            if !finish && out.ends_with(&TAIL) {
                out.truncate(out.len() - TAIL.len());
            }
            if out.is_empty() {
                // Nothing to flush after the last message: an empty stored block, as RFC
                // 7692 7.2.3.6 writes an empty message.
                out.push(0x00);
            }
            sent.push(message);
            out
        };
        // Fragments: cut points from the kind byte, with a ping between fragments.
        let pieces = usize::from((kind >> 2) & 0x03) + 1;
        let step = payload.len().div_ceil(pieces).max(1);
        let fragments: Vec<&[u8]> = if payload.is_empty() {
            vec![&payload[..]]
        } else {
            payload.chunks(step).collect()
        };
        for (i, fragment) in fragments.iter().enumerate() {
            let fin = if i + 1 == fragments.len() { 0x80 } else { 0 };
            let first = if i == 0 {
                fin | 0x40 | if text { 0x1 } else { 0x2 }
            } else {
                fin
            };
            bytes.extend(client_frame(first, mask, fragment));
            if kind & 0x10 != 0 && fin == 0 {
                bytes.extend(client_frame(0x89, mask, b"p"));
            }
        }
    }
    // A clean close: every message before it reaches the app.
    bytes.extend(client_frame(0x88, mask, &1000u16.to_be_bytes()));
    let session = run_session(&[bytes], Some(&offer), &config);
    check_echo(&session);
    if !raw {
        assert_eq!(session.received, sent, "the app received other messages");
        assert_eq!(session.closed.code, 1000);
    }
});
