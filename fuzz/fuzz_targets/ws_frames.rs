//! The WebSocket frame reader: whatever bytes a client sends after the handshake, the
//! server does not panic, allocates within the message size limit, sends only well-formed
//! frames (nothing after its close frame), and echoes exactly what the app received.
//!
//! Input: a config byte, then either raw bytes (the header parser sees everything) or
//! frames described by a first byte (FIN, RSV, opcode) and a payload, which the target
//! masks and frames; both are written in chunks, so frames also arrive cut in pieces.

#![no_main]

use asgi_fuzz::{Input, check_echo, client_frame, run_session};
use asgi_ws::WebSocketConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.byte();
    let mut config = WebSocketConfig::default();
    config.ping_interval = None;
    // Small limits reach the limit paths with small inputs.
    config.max_message_size = Some(if flags & 0x02 != 0 { 64 } else { 64 * 1024 });
    config.receive_queue = usize::from(flags >> 5) + 1;
    let offer = (flags & 0x01 != 0).then_some("permessage-deflate");
    let chunk = 1usize << (input.byte() % 12);
    let bytes = if flags & 0x10 != 0 {
        input.rest().to_vec()
    } else {
        let mask = [input.byte(), input.byte(), input.byte(), input.byte()];
        let mut bytes = Vec::new();
        while !input.is_empty() {
            let first = input.byte();
            let payload = input.piece();
            bytes.extend(client_frame(first, mask, payload));
        }
        bytes
    };
    let chunks: Vec<Vec<u8>> = bytes.chunks(chunk).map(<[u8]>::to_vec).collect();
    let session = run_session(&chunks, offer, &config);
    check_echo(&session);
});
