//! A WebSocket echo server for conformance runs with the Autobahn|Testsuite fuzzing client.
//!
//! It reads the upgrade request with `httparse` (the hyper server lives in `asgi-http`; this
//! example shows what `asgi-ws` needs from any server), then runs an echo app through
//! `asgi_ws::start` and `Accepted::run`.
//!
//! ```text
//! cargo run --release -p asgi-ws --example autobahn_server -- --bind 127.0.0.1:9001
//! autobahn ws://127.0.0.1:9001/
//! ```
//!
//! Options: `--bind ADDR` (default `127.0.0.1:8000`), `--uds PATH` (a Unix socket instead).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use asgi_core::{Error, Receiver, Scope, Sender, WebSocketScope};
use asgi_ws::{HandshakeOutcome, Message, UpgradeRequest, WebSocket, WebSocketConfig};
use bytes::{Buf, Bytes};
use http::{HeaderMap, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The largest request head this example reads: 16 KiB, plenty for an upgrade request.
const MAX_HEAD: usize = 16 * 1024;

/// The most header lines this example reads.
const MAX_HEADERS: usize = 64;

async fn echo(scope: Scope, receive: Receiver, send: Sender) -> Result<(), Error> {
    let Scope::WebSocket(scope) = scope else {
        return Ok(());
    };
    let mut ws = WebSocket::new(scope, receive, send);
    ws.accept().await?;
    loop {
        match ws.recv().await? {
            Message::Text(text) => ws.send_text(text).await?,
            Message::Binary(bytes) => ws.send_binary(bytes).await?,
            _ => return Ok(()),
        }
    }
}

#[tokio::main]
async fn main() -> io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let mut bind = String::from("127.0.0.1:8000");
    let mut uds = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bind" => bind = args.next().ok_or_else(|| usage("--bind needs ADDR"))?,
            "--uds" => uds = Some(args.next().ok_or_else(|| usage("--uds needs PATH"))?),
            other => return Err(usage(&format!("unknown argument {other}"))),
        }
    }
    if let Some(path) = uds {
        let listener = tokio::net::UnixListener::bind(&path)?;
        tracing::info!("listening on unix:{path}");
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(serve(stream));
        }
    }
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    tracing::info!("listening on ws://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(serve(stream));
    }
}

fn usage(message: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{message}\nusage: autobahn_server [--bind ADDR] [--uds PATH]"),
    )
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    if let Err(e) = handle(&mut stream).await {
        tracing::debug!(error = %e, "connection failed");
    }
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let (parts, head_len) = loop {
        if buf.len() >= MAX_HEAD {
            return respond(
                stream,
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                &HeaderMap::new(),
                b"",
            )
            .await;
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => match to_parts(&request) {
                Some(parts) => break (parts, len),
                None => {
                    return respond(stream, StatusCode::BAD_REQUEST, &HeaderMap::new(), b"").await;
                }
            },
            Ok(httparse::Status::Partial) => continue,
            Err(e) => {
                return respond(
                    stream,
                    StatusCode::BAD_REQUEST,
                    &HeaderMap::new(),
                    e.to_string().as_bytes(),
                )
                .await;
            }
        }
    };
    let upgrade = match UpgradeRequest::from_parts(&parts) {
        Ok(upgrade) => upgrade,
        Err(e) => {
            return respond(
                stream,
                e.status(),
                &e.response_headers(),
                e.to_string().as_bytes(),
            )
            .await;
        }
    };
    let mut scope = WebSocketScope::new(parts.uri.path());
    scope.headers = parts.headers.clone();
    let spawn = |run| drop(tokio::spawn(run));
    match asgi_ws::start(echo, scope, &upgrade, &WebSocketConfig::default(), spawn).await {
        HandshakeOutcome::Accept(accepted) => {
            respond_head(
                stream,
                StatusCode::SWITCHING_PROTOCOLS,
                accepted.response_headers(),
            )
            .await?;
            let io = Rewind {
                prefix: Bytes::copy_from_slice(&buf[head_len..]),
                inner: stream,
            };
            let closed = accepted.run(io, std::future::pending()).await;
            tracing::debug!(?closed, "connection closed");
            Ok(())
        }
        HandshakeOutcome::Close { .. } => {
            respond(stream, StatusCode::FORBIDDEN, &HeaderMap::new(), b"").await
        }
        HandshakeOutcome::Deny(denial) => {
            let status = denial.status;
            let headers = denial.headers;
            let body = denial.body.collect().await.map_err(io::Error::other)?;
            respond(stream, status, &headers, &body).await
        }
        _ => {
            respond(
                stream,
                StatusCode::INTERNAL_SERVER_ERROR,
                &HeaderMap::new(),
                b"",
            )
            .await
        }
    }
}

fn to_parts(request: &httparse::Request<'_, '_>) -> Option<http::request::Parts> {
    let mut builder = http::Request::builder()
        .method(request.method?)
        .uri(request.path?)
        .version(match request.version? {
            0 => http::Version::HTTP_10,
            _ => http::Version::HTTP_11,
        });
    for header in request.headers.iter() {
        builder = builder.header(header.name, header.value);
    }
    builder.body(()).ok().map(|r| r.into_parts().0)
}

async fn respond_head<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: StatusCode,
    headers: &HeaderMap,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    stream.write_all(&head).await?;
    stream.flush().await
}

async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> io::Result<()> {
    let mut headers = headers.clone();
    headers.insert(http::header::CONTENT_LENGTH, body.len().into());
    headers.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    respond_head(stream, status, &headers).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

/// The upgraded connection: bytes read past the request head come first.
struct Rewind<S> {
    prefix: Bytes,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.has_remaining() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
