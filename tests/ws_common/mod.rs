//! What the WebSocket integration tests share beside `common`: clients (tokio-tungstenite
//! over HTTP/1.1 and over HTTP/2 extended CONNECT), a raw handshake, and raw frames for what
//! a client library would hide (pings it answers by itself, close codes it checks).

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response as HandshakeResponse;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::common::PATIENCE;

/// A tokio-tungstenite client over TCP.
pub(crate) type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket to `path` with tokio-tungstenite; `headers` are added to the handshake.
pub(crate) async fn connect_with(
    addr: SocketAddr,
    path: &str,
    headers: &[(&'static str, &'static str)],
) -> (Client, HandshakeResponse) {
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    for (name, value) in headers {
        request
            .headers_mut()
            .append(*name, http::HeaderValue::from_static(value));
    }
    tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(request))
        .await
        .expect("the handshake ends in time")
        .expect("the server accepts the WebSocket")
}

/// Opens a WebSocket to `path` with tokio-tungstenite.
pub(crate) async fn connect(addr: SocketAddr, path: &str) -> Client {
    connect_with(addr, path, &[]).await.0
}

/// A valid HTTP/1.1 handshake request for `path`, with `extra` header lines (each ending in
/// `\r\n`).
pub(crate) fn handshake_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nhost: test\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
         sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
}

/// A raw connection after its handshake: the response head, and the bytes read past it.
pub(crate) struct Raw {
    pub(crate) stream: TcpStream,
    pub(crate) head: String,
    buf: Vec<u8>,
}

/// Writes `request` on a new connection and reads the response head.
pub(crate) async fn raw_handshake(addr: SocketAddr, request: &str) -> Raw {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let end = tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return end + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the server closed before the response head");
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("the response head comes in time");
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end);
    Raw { stream, head, buf }
}

/// A frame as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) fin: bool,
    pub(crate) opcode: u8,
    pub(crate) payload: Vec<u8>,
}

/// Opcodes (RFC 6455 5.2).
pub(crate) const TEXT: u8 = 0x1;
pub(crate) const BINARY: u8 = 0x2;
pub(crate) const CLOSE: u8 = 0x8;
pub(crate) const PING: u8 = 0x9;
pub(crate) const PONG: u8 = 0xA;

impl Frame {
    /// The code of a close frame.
    pub(crate) fn close_code(&self) -> Option<u16> {
        (self.opcode == CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

impl Raw {
    /// The status code of the response head.
    pub(crate) fn status(&self) -> u16 {
        self.head[9..12].parse().unwrap()
    }

    /// The value of header `name` in the response head (case-insensitive), if there.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    /// Reads the rest until the server closes the connection: the body of a response that
    /// is not a 101.
    pub(crate) async fn read_to_close(mut self) -> Vec<u8> {
        tokio::time::timeout(PATIENCE, async {
            let mut chunk = [0u8; 4096];
            loop {
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return self.buf,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await
        .expect("the server closes the connection")
    }

    /// Reads `n` body bytes after the head.
    pub(crate) async fn read_body(&mut self, n: usize) -> Vec<u8> {
        self.fill(n).await.expect("the body comes");
        self.buf.drain(..n).collect()
    }

    /// Reads the next frame; `None` when the server closed the connection first.
    pub(crate) async fn read_frame(&mut self) -> Option<Frame> {
        tokio::time::timeout(PATIENCE, async {
            self.fill(2).await?;
            let fin = self.buf[0] & 0x80 != 0;
            let opcode = self.buf[0] & 0x0f;
            assert_eq!(self.buf[1] & 0x80, 0, "server frames are not masked");
            let (len, header) = match self.buf[1] & 0x7f {
                126 => {
                    self.fill(4).await?;
                    (
                        usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])),
                        4,
                    )
                }
                127 => {
                    self.fill(10).await?;
                    let bytes: [u8; 8] = self.buf[2..10].try_into().unwrap();
                    (usize::try_from(u64::from_be_bytes(bytes)).unwrap(), 10)
                }
                n => (usize::from(n), 2),
            };
            self.fill(header + len).await?;
            let payload = self.buf[header..header + len].to_vec();
            self.buf.drain(..header + len);
            Some(Frame {
                fin,
                opcode,
                payload,
            })
        })
        .await
        .expect("a frame (or the close of the connection) comes in time")
    }

    /// Writes one masked frame, as a client must.
    pub(crate) async fn write_frame(&mut self, opcode: u8, payload: &[u8]) {
        let mut frame = Vec::new();
        self.encode(&mut frame, opcode, payload);
        self.stream.write_all(&frame).await.unwrap();
    }

    fn encode(&self, frame: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
        let mask = [0x37u8, 0xfa, 0x21, 0x3d];
        frame.push(0x80 | opcode);
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= usize::from(u16::MAX) => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    }

    /// Writes one masked frame with the FIN bit as given (`opcode` 0 continues a message).
    pub(crate) async fn write_fragment(&mut self, opcode: u8, fin: bool, payload: &[u8]) {
        let mut frame = Vec::new();
        self.encode(&mut frame, opcode, payload);
        if !fin {
            frame[0] &= 0x7f;
        }
        self.stream.write_all(&frame).await.unwrap();
    }

    /// Writes a close frame with `code`.
    pub(crate) async fn write_close(&mut self, code: u16) {
        self.write_frame(CLOSE, &code.to_be_bytes()).await;
    }

    /// Reads until at least `n` bytes are buffered; `None` when the connection ends first.
    async fn fill(&mut self, n: usize) -> Option<()> {
        let mut chunk = [0u8; 8192];
        while self.buf.len() < n {
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(read) => self.buf.extend_from_slice(&chunk[..read]),
            }
        }
        Some(())
    }
}

/// A tokio-tungstenite client over an HTTP/2 stream.
pub(crate) type H2Client = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Opens a WebSocket to `path` over HTTP/2 (RFC 8441 extended CONNECT, h2c prior
/// knowledge), with `headers` added to the CONNECT request; returns the response status
/// and headers, and the client when the server answered 2xx.
pub(crate) async fn connect_h2(
    addr: SocketAddr,
    path: &str,
    headers: &[(&'static str, &'static str)],
) -> (StatusCode, http::HeaderMap, Option<H2Client>) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut request = Request::builder()
        .method(Method::CONNECT)
        .uri(format!("http://{addr}{path}"))
        .header("sec-websocket-version", "13");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(Empty::<Bytes>::new()).unwrap();
    request
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    // The client may only send an extended CONNECT once the server's SETTINGS allowed it.
    tokio::time::timeout(PATIENCE, sender.ready())
        .await
        .expect("the HTTP/2 connection is ready in time")
        .unwrap();
    let mut response = tokio::time::timeout(PATIENCE, sender.send_request(request))
        .await
        .expect("the CONNECT is answered in time")
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    if !status.is_success() {
        return (status, headers, None);
    }
    let upgraded = hyper::upgrade::on(&mut response).await.unwrap();
    let client = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
    (status, headers, Some(client))
}
