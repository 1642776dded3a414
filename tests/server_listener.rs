//! Serving on a listener the user wrote: the server accepts through any `Listener`, and the
//! scope says what its `Peer` says.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use asgi::core::http::{HeaderMap, StatusCode};
use asgi::core::{Error, Receiver, Scope, SendEvent, Sender, ServerAddr};
use asgi::http::server::{Listener, Peer, Server};
use common::*;
use tokio::net::{TcpListener, TcpStream};

/// A listener of the user's own: TCP underneath, every connection counted and marked as
/// encrypted (as a listener that terminates TLS would mark them).
struct CountingListener {
    inner: TcpListener,
    accepted: Arc<AtomicUsize>,
}

impl Listener for CountingListener {
    type Io = TcpStream;

    async fn accept(&mut self) -> std::io::Result<(TcpStream, Peer)> {
        let (stream, addr) = self.inner.accept().await?;
        self.accepted.fetch_add(1, Ordering::SeqCst);
        Ok((stream, Peer::tcp(addr).secure(true)))
    }

    fn local_addr(&self) -> std::io::Result<ServerAddr> {
        self.inner.local_addr().map(ServerAddr::Tcp)
    }
}

/// Answers with the scope's scheme, client and server.
async fn echo_scope(scope: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
    let Scope::Http(scope) = scope else {
        return Ok(());
    };
    let server = match &scope.server {
        Some(ServerAddr::Tcp(addr)) => addr.to_string(),
        Some(ServerAddr::Unix(_)) => "unix".to_owned(),
        _ => "none".to_owned(),
    };
    let body = format!("{} {:?} {server}", scope.scheme, scope.client);
    send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
        .await?;
    send.send(SendEvent::response_body(body, false)).await?;
    Ok(())
}

#[tokio::test]
async fn a_user_written_listener_serves_and_its_peer_reaches_the_scope() {
    let inner = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = inner.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let listener = CountingListener {
        inner,
        accepted: accepted.clone(),
    };
    let server = Server::builder()
        .listener(listener)
        .handle_signals(false)
        .build(echo_scope);
    let handle = server.handle();
    let task = tokio::spawn(server.serve());
    assert_eq!(handle.listening().await, Some(ServerAddr::Tcp(addr)));

    for _ in 0..2 {
        let stream = TcpStream::connect(addr).await.unwrap();
        let client = stream.local_addr().unwrap();
        let mut sender = h1_over(stream).await;
        let answer = read(sender.send_request(get("/")).await.unwrap())
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.text(), format!("https Some({client}) {addr}"));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2);

    handle.shutdown();
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("the server stops in time")
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "still listening");
}

#[cfg(unix)]
#[tokio::test]
async fn tokio_unix_listener_is_a_listener() {
    let path = temp_path("listener.sock");
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let server = Server::builder()
        .listener(listener)
        .handle_signals(false)
        .build(echo_scope);
    let handle = server.handle();
    let task = tokio::spawn(server.serve());
    assert_eq!(
        handle.listening().await,
        Some(ServerAddr::Unix(path.clone()))
    );

    let stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let answer = read(sender.send_request(get("/")).await.unwrap())
        .await
        .unwrap();
    assert_eq!(answer.text(), "http None unix");
    handle.shutdown();
    tokio::time::timeout(PATIENCE, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let _ = std::fs::remove_file(&path);
}

/// An HTTP/1.1 client over `stream`.
async fn h1_over(stream: TcpStream) -> hyper::client::conn::http1::SendRequest<ClientBody> {
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}
