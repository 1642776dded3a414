//! Shared code for the integration tests: a connection over loopback TCP (or an in-memory
//! duplex), a reporting echo app, and raw frames for what a WebSocket client would hide.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use asgi_core::{
    App, Error, ReceiveEvent, Receiver, Scope, SendError, SendEvent, Sender, Shutdown,
    WebSocketScope,
};
use asgi_ws::{Closed, HandshakeOutcome, UpgradeRequest, WebSocketConfig};
use http::HeaderMap;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

/// Generous bound for anything that should happen "at once"; only hit when a test fails.
pub const WITHIN: Duration = Duration::from_secs(5);

/// Awaits `future`, failing the test if it takes longer than [`WITHIN`].
pub async fn within<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(WITHIN, future)
        .await
        .expect("timed out")
}

/// A valid upgrade request with `extra` headers.
pub fn upgrade(extra: &[(&'static str, &'static str)]) -> UpgradeRequest {
    let mut request = http::Request::get("/ws")
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let (parts, ()) = request.body(()).unwrap().into_parts();
    UpgradeRequest::from_parts(&parts).unwrap()
}

/// The server side of one accepted connection.
pub struct Server {
    /// The `101` headers.
    pub headers: HeaderMap,
    /// `Accepted::run`, in a task.
    pub run: JoinHandle<Closed>,
    /// Resolves `run`'s shutdown future.
    pub shutdown: Shutdown,
}

/// A loopback TCP pair: (client, server).
pub async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    client.set_nodelay(true).unwrap();
    server.set_nodelay(true).unwrap();
    (client, server)
}

/// Starts `app`, expects it to accept, and runs the connection over `io` in a task.
pub async fn accept_over<IO>(
    app: impl App,
    config: WebSocketConfig,
    request: &UpgradeRequest,
    io: IO,
) -> Server
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let outcome = within(asgi_ws::start(
        app,
        WebSocketScope::new("/ws"),
        request,
        &config,
        |run| drop(tokio::spawn(run)),
    ))
    .await;
    let HandshakeOutcome::Accept(accepted) = outcome else {
        panic!("expected an accept, got {outcome:?}");
    };
    let headers = accepted.response_headers().clone();
    let shutdown = Shutdown::new();
    let signal = shutdown.signal();
    let run =
        tokio::spawn(async move { accepted.run(io, async move { signal.wait().await }).await });
    Server {
        headers,
        run,
        shutdown,
    }
}

/// Opens a connection over loopback TCP; the client end is raw.
pub async fn open_raw(app: impl App, config: WebSocketConfig) -> (TcpStream, Server) {
    let (client, server_io) = tcp_pair().await;
    let server = accept_over(app, config, &upgrade(&[]), server_io).await;
    (client, server)
}

/// Opens a connection over loopback TCP with a tungstenite client.
pub async fn open(app: impl App, config: WebSocketConfig) -> (WebSocketStream<TcpStream>, Server) {
    let (client, server) = open_raw(app, config).await;
    (client_over(client).await, server)
}

/// A tungstenite client over an IO whose handshake was done elsewhere.
pub async fn client_over<IO: AsyncRead + AsyncWrite + Unpin>(io: IO) -> WebSocketStream<IO> {
    WebSocketStream::from_raw_socket(io, Role::Client, None).await
}

/// What the reporting app saw.
#[derive(Debug)]
pub enum Report {
    /// An event from `recv`.
    Event(ReceiveEvent),
    /// The `recv` after the first disconnect.
    RecvAgain(ReceiveEvent),
    /// A `send` after the disconnect.
    SendAfter(Result<(), SendError>),
}

/// An app that accepts, echoes every message, reports every event, and on disconnect
/// reports one more `recv` and a `send` attempt, then returns.
pub fn reporting_echo(report: mpsc::Sender<Report>) -> impl App {
    move |_scope: Scope, mut receive: Receiver, mut send: Sender| {
        let report = report.clone();
        async move {
            assert_eq!(receive.recv().await, ReceiveEvent::WebSocketConnect);
            send.send(SendEvent::WebSocketAccept {
                subprotocol: None,
                headers: HeaderMap::new(),
            })
            .await?;
            loop {
                let event = receive.recv().await;
                let _ = report.send(Report::Event(event.clone())).await;
                match event {
                    ReceiveEvent::WebSocketReceive(message) => {
                        // The client may be gone already; the disconnect comes next.
                        let _ = send.send(SendEvent::WebSocketSend(message)).await;
                    }
                    ReceiveEvent::WebSocketDisconnect { .. } => {
                        let again = receive.recv().await;
                        let _ = report.send(Report::RecvAgain(again)).await;
                        let sent = send.send(SendEvent::text("too late")).await;
                        let _ = report.send(Report::SendAfter(sent)).await;
                        return Ok::<(), Error>(());
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Reads every report until the app is gone; checks that exactly one disconnect came, that
/// `recv` repeats it and `send` after it is `Disconnected`; returns its code and reason and
/// the messages before it.
pub async fn one_disconnect(
    reports: &mut mpsc::Receiver<Report>,
) -> ((u16, String), Vec<ReceiveEvent>) {
    let mut events = Vec::new();
    let mut disconnects = Vec::new();
    let mut again = None;
    let mut sent = None;
    while let Some(report) = within(reports.recv()).await {
        match report {
            Report::Event(event @ ReceiveEvent::WebSocketDisconnect { .. }) => {
                disconnects.push(event)
            }
            Report::Event(event) => {
                assert!(disconnects.is_empty(), "{event:?} after the disconnect");
                events.push(event);
            }
            Report::RecvAgain(event) => again = Some(event),
            Report::SendAfter(result) => sent = Some(result),
        }
    }
    assert_eq!(disconnects.len(), 1, "disconnects: {disconnects:?}");
    assert_eq!(
        again.as_ref(),
        Some(&disconnects[0]),
        "recv after disconnect"
    );
    assert_eq!(
        sent,
        Some(Err(SendError::Disconnected)),
        "send after disconnect"
    );
    let ReceiveEvent::WebSocketDisconnect { code, reason } = disconnects.remove(0) else {
        unreachable!()
    };
    ((code, reason), events)
}

/// Opcodes for raw frames.
pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// A masked client frame.
pub fn client_frame(opcode: u8, fin: bool, rsv1: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// A client frame with no mask, which a server must reject.
pub fn unmasked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode, payload.len() as u8];
    out.extend_from_slice(payload);
    out
}

/// A frame the server sent.
#[derive(Debug, PartialEq, Eq)]
pub struct ServerFrame {
    pub fin: bool,
    pub rsv1: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl ServerFrame {
    /// The close code and reason of a close frame (1005 for an empty one).
    pub fn close(&self) -> (u16, String) {
        assert_eq!(self.opcode, CLOSE, "not a close frame: {self:?}");
        if self.payload.is_empty() {
            return (1005, String::new());
        }
        let code = u16::from_be_bytes([self.payload[0], self.payload[1]]);
        (code, String::from_utf8(self.payload[2..].to_vec()).unwrap())
    }
}

/// Reads one server frame; `None` at end of stream.
pub async fn read_frame<IO: AsyncRead + Unpin>(io: &mut IO) -> Option<ServerFrame> {
    let mut head = [0u8; 2];
    within(io.read_exact(&mut head)).await.ok()?;
    assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            io.read_exact(&mut b).await.unwrap();
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            io.read_exact(&mut b).await.unwrap();
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0u8; len as usize];
    within(io.read_exact(&mut payload)).await.unwrap();
    Some(ServerFrame {
        fin: head[0] & 0x80 != 0,
        rsv1: head[0] & 0x40 != 0,
        opcode: head[0] & 0x0f,
        payload,
    })
}

/// Reads server frames until a close frame; returns its code and reason. Pings on the way
/// are skipped.
pub async fn read_close<IO: AsyncRead + Unpin>(io: &mut IO) -> (u16, String) {
    loop {
        let frame = read_frame(io)
            .await
            .expect("connection ended before a close frame");
        if frame.opcode == CLOSE {
            return frame.close();
        }
    }
}

/// Writes raw bytes to the server.
pub async fn write_raw<IO: AsyncWrite + Unpin>(io: &mut IO, bytes: &[u8]) {
    io.write_all(bytes).await.unwrap();
    io.flush().await.unwrap();
}

/// A close frame payload.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

/// A config with keepalive off, so that pings do not interleave with what a test reads.
pub fn quiet() -> WebSocketConfig {
    let mut config = WebSocketConfig::default();
    config.ping_interval = None;
    config
}
