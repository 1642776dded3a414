//! What the fuzz targets share: a reader that turns fuzz bytes into structured choices, and
//! a WebSocket session that runs the server's connection (handshake, then the frame reader,
//! permessage-deflate and the echo app) over an in-memory pipe.

use std::sync::{Arc, Mutex};

use asgi_core::{
    Error, ReceiveEvent, Receiver, Scope, SendEvent, Sender, WebSocketMessage, WebSocketScope,
};
use asgi_ws::deflate::DeflateParams;
use asgi_ws::{Closed, HandshakeOutcome, UpgradeRequest, WebSocketConfig};
use flate2::{Decompress, FlushDecompress, Status};
use http::HeaderMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Reads structured choices from fuzz bytes; past the end every read gives zeros.
#[derive(Debug)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads from `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// True when every byte was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte, or 0.
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes as a big-endian number.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        taken
    }

    /// A piece whose length is the next byte.
    pub fn piece(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte());
        self.take(n)
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(usize::MAX)
    }
}

/// The capacity of each direction of the in-memory pipe: larger than any fuzz input and its
/// echo, so that neither side waits for the other to read.
const PIPE: usize = 4 * 1024 * 1024;

thread_local! {
    /// One runtime for every run, with a paused clock that jumps to the next timer when
    /// nothing can run: the close timeout and the failure grace pass at once.
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
}

/// A frame the server sent, as read back by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFrame {
    /// FIN.
    pub fin: bool,
    /// RSV1: the message is compressed.
    pub rsv1: bool,
    /// The opcode.
    pub opcode: u8,
    /// The payload.
    pub payload: Vec<u8>,
}

/// What one WebSocket session gave.
#[derive(Debug)]
pub struct SessionRecord {
    /// The messages the app received, in order.
    pub received: Vec<WebSocketMessage>,
    /// Every frame the server sent, in order.
    pub frames: Vec<ServerFrame>,
    /// How the connection closed, as the server reports it.
    pub closed: Closed,
    /// The permessage-deflate parameters agreed in the handshake.
    pub deflate: Option<DeflateParams>,
}

/// The app of every session: accepts, records and echoes each message until the disconnect.
/// An echo that fails (the connection is closing) does not stop it from receiving.
fn echo_app(received: Arc<Mutex<Vec<WebSocketMessage>>>) -> impl asgi_core::App {
    move |_scope: Scope, mut receive: Receiver, mut send: Sender| {
        let received = received.clone();
        async move {
            receive.recv().await;
            send.send(SendEvent::WebSocketAccept {
                subprotocol: None,
                headers: HeaderMap::new(),
            })
            .await?;
            loop {
                match receive.recv().await {
                    ReceiveEvent::WebSocketReceive(message) => {
                        received
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(message.clone());
                        // After the client's close frame the echo fails, but the
                        // messages before it are still to be received.
                        let _ = send.send(SendEvent::WebSocketSend(message)).await;
                    }
                    _ => return Ok::<(), Error>(()),
                }
            }
        }
    }
}

/// Runs one connection: the handshake (with `offer` as `Sec-WebSocket-Extensions`), then
/// `chunks` written one after the other (the server may read each on its own), then the
/// end of the client's stream; returns what the app and the client saw.
///
/// # Panics
///
/// When the server breaks a rule a client can check: a masked or fragmented server frame,
/// reserved bits, an oversized control frame, a frame after the close frame, or a close code
/// that may not be sent.
pub fn run_session(chunks: &[Vec<u8>], offer: Option<&str>, config: &WebSocketConfig) -> SessionRecord {
    RUNTIME.with(|runtime| runtime.block_on(session(chunks, offer, config)))
}

async fn session(chunks: &[Vec<u8>], offer: Option<&str>, config: &WebSocketConfig) -> SessionRecord {
    let mut request = http::Request::get("/fuzz")
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    if let Some(offer) = offer {
        request = request.header("sec-websocket-extensions", offer);
    }
    let (parts, ()) = request.body(()).expect("a valid request").into_parts();
    let upgrade = UpgradeRequest::from_parts(&parts).expect("a valid handshake");
    let received = Arc::new(Mutex::new(Vec::new()));
    // The app's run is polled beside the connection, below, and the session ends only once
    // the app returned: messages still queued for it when the connection closed are received
    // by then (the app reads them before its `websocket.disconnect`).
    let app_run = std::cell::Cell::new(None);
    let outcome = asgi_ws::start(
        echo_app(received.clone()),
        WebSocketScope::new("/fuzz"),
        &upgrade,
        config,
        |run| app_run.set(Some(run)),
    );
    let app_run = app_run
        .take()
        .expect("asgi_ws::start hands over the app's run");
    let app_task = tokio::spawn(app_run);
    let outcome = outcome.await;
    let HandshakeOutcome::Accept(accepted) = outcome else {
        panic!("the echo app accepts, got {outcome:?}");
    };
    let deflate = accepted.deflate().copied();
    let (client, server) = tokio::io::duplex(PIPE);
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let write = async move {
        for chunk in chunks {
            if client_write.write_all(chunk).await.is_err() {
                return;
            }
            // Let the server read this chunk on its own.
            tokio::task::yield_now().await;
        }
        let _ = client_write.shutdown().await;
    };
    let read = async move {
        let mut out = Vec::new();
        let _ = client_read.read_to_end(&mut out).await;
        out
    };
    let (closed, (), output) = tokio::join!(
        accepted.run(server, std::future::pending::<()>()),
        write,
        read
    );
    app_task.await.expect("the echo app does not panic");
    let frames = parse_server_frames(&output, deflate.is_some());
    if let Some(close) = frames.iter().find(|f| f.opcode == 0x8) {
        if let Some(code) = close_code(&close.payload) {
            assert!(
                asgi_ws::close::is_valid_code(code),
                "sent close code {code}"
            );
        }
    }
    let received = std::mem::take(&mut *received.lock().unwrap_or_else(|p| p.into_inner()));
    SessionRecord {
        received,
        frames,
        closed,
        deflate,
    }
}

/// The code of a close payload, `None` when it is empty.
pub fn close_code(payload: &[u8]) -> Option<u16> {
    match payload {
        [] => None,
        [hi, lo, reason @ ..] => {
            assert!(
                std::str::from_utf8(reason).is_ok(),
                "close reason not UTF-8"
            );
            Some(u16::from_be_bytes([*hi, *lo]))
        }
        [_] => panic!("a 1-byte close payload"),
    }
}

/// Splits what the server sent into frames, checking the rules for server frames.
fn parse_server_frames(mut bytes: &[u8], deflate: bool) -> Vec<ServerFrame> {
    let mut frames: Vec<ServerFrame> = Vec::new();
    while !bytes.is_empty() {
        assert!(
            frames.last().is_none_or(|f| f.opcode != 0x8),
            "a frame after the close frame"
        );
        assert!(bytes.len() >= 2, "a truncated frame header");
        let (b0, b1) = (bytes[0], bytes[1]);
        assert_eq!(b1 & 0x80, 0, "a masked server frame");
        assert_eq!(b0 & 0x30, 0, "RSV2 or RSV3 set");
        let opcode = b0 & 0x0f;
        let rsv1 = b0 & 0x40 != 0;
        let fin = b0 & 0x80 != 0;
        assert!(fin, "a fragmented server frame");
        assert!(
            matches!(opcode, 0x1 | 0x2 | 0x8 | 0x9 | 0xa),
            "opcode {opcode}"
        );
        assert!(!rsv1 || (deflate && opcode < 0x8), "RSV1 where not allowed");
        let (len, header) = match b1 & 0x7f {
            126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 => {
                let mut len = [0u8; 8];
                len.copy_from_slice(&bytes[2..10]);
                (
                    usize::try_from(u64::from_be_bytes(len)).expect("a length"),
                    10,
                )
            }
            n => (usize::from(n), 2),
        };
        assert!(opcode < 0x8 || len <= 125, "a control frame over 125 bytes");
        assert!(bytes.len() >= header + len, "a truncated frame");
        frames.push(ServerFrame {
            fin,
            rsv1,
            opcode,
            payload: bytes[header..header + len].to_vec(),
        });
        bytes = &bytes[header + len..];
    }
    frames
}

/// The messages of the server's data frames, decompressed as a client would.
pub fn server_messages(session: &SessionRecord) -> Vec<WebSocketMessage> {
    let mut decompressor = Decompress::new(false);
    let reset = session
        .deflate
        .is_some_and(|params| params.server_no_context_takeover());
    let mut messages = Vec::new();
    for frame in &session.frames {
        if frame.opcode != 0x1 && frame.opcode != 0x2 {
            continue;
        }
        let payload = if frame.rsv1 {
            let mut out = Vec::new();
            inflate(&mut decompressor, &frame.payload, &mut out);
            inflate(&mut decompressor, &[0, 0, 0xff, 0xff], &mut out);
            if reset {
                decompressor.reset(false);
            }
            out
        } else {
            frame.payload.clone()
        };
        messages.push(if frame.opcode == 0x1 {
            WebSocketMessage::Text(String::from_utf8(payload).expect("the server sent UTF-8 text"))
        } else {
            WebSocketMessage::Binary(payload.into())
        });
    }
    messages
}

fn inflate(decompressor: &mut Decompress, mut input: &[u8], out: &mut Vec<u8>) {
    loop {
        out.reserve(64 * 1024);
        let before = decompressor.total_in();
        let status = decompressor
            .decompress_vec(input, out, FlushDecompress::Sync)
            .expect("the server's deflate stream is valid");
        let used = usize::try_from(decompressor.total_in() - before).expect("a length");
        input = &input[used..];
        if status == Status::StreamEnd || (input.is_empty() && out.len() < out.capacity()) {
            return;
        }
    }
}

/// A masked client frame.
pub fn client_frame(first_byte: u8, mask: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first_byte];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(0x80 | 126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Checks what every session must give: the messages the client got back are the ones the
/// app received, in order (a prefix of them: echoes still queued when the connection ended
/// are lost), and the close code the server reports is one a close can carry.
pub fn check_echo(session: &SessionRecord) {
    let echoed = server_messages(session);
    assert!(
        echoed.len() <= session.received.len() && echoed[..] == session.received[..echoed.len()],
        "echoed {echoed:?}, received {:?}",
        session.received
    );
    let code = session.closed.code;
    assert!(
        asgi_ws::close::is_valid_code(code) || code == 1005 || code == 1006,
        "closed with {code}"
    );
}
