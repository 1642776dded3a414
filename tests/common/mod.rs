//! What the server's integration tests share: the testbed app, a server on `127.0.0.1:0`,
//! hyper clients for HTTP/1.1 and HTTP/2, raw sockets, and a log capture.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

#[path = "../../examples/testbed/app.rs"]
pub(crate) mod testbed;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::future::Future;

use asgi::core::{App, Error, Receiver, Scope, Sender};
use asgi::server::server::{Builder, Server, ServerError, ServerHandle};
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A bound on every wait in these tests, so that a broken server fails a test instead of
/// hanging it. Generous: the machines running tests are shared and slow.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

/// The body type the test clients send.
pub(crate) type ClientBody = BoxBody<Bytes, Infallible>;

/// A server running in the test's runtime.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    pub(crate) handle: ServerHandle,
    pub(crate) task: JoinHandle<Result<(), ServerError>>,
}

/// Starts `app` on `127.0.0.1:0` with the settings `configure` makes (signals off), and
/// waits until it accepts connections.
pub(crate) async fn start(app: impl App, configure: impl FnOnce(Builder) -> Builder) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = configure(Server::builder().listener(listener).handle_signals(false)).build(app);
    let handle = server.handle();
    let task = tokio::spawn(server.serve());
    tokio::time::timeout(PATIENCE, handle.listening())
        .await
        .expect("the server starts in time")
        .expect("the server listens");
    TestServer { addr, handle, task }
}

/// Starts the testbed app as the example serves it (the WSGI testbed mounted at `/wsgi`),
/// with default settings.
pub(crate) async fn start_testbed() -> TestServer {
    start(testbed::served_app(false), |b| b).await
}

impl TestServer {
    /// Shuts the server down gracefully and returns what `serve` returned.
    pub(crate) async fn stop(self) -> Result<(), ServerError> {
        self.handle.shutdown();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the server stops in time")
            .expect("the server task does not panic")
    }
}

/// An empty request body.
pub(crate) fn empty() -> ClientBody {
    Empty::new().boxed()
}

/// A request body of these bytes.
pub(crate) fn full(bytes: impl Into<Bytes>) -> ClientBody {
    Full::new(bytes.into()).boxed()
}

/// A GET request for `path`.
pub(crate) fn get(path: &str) -> Request<ClientBody> {
    Request::get(path)
        .header("host", "test")
        .body(empty())
        .unwrap()
}

/// An HTTP/1.1 connection; the connection task runs beside the test.
pub(crate) async fn h1(
    addr: SocketAddr,
) -> (
    hyper::client::conn::http1::SendRequest<ClientBody>,
    JoinHandle<hyper::Result<()>>,
) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    (sender, tokio::spawn(conn))
}

/// An HTTP/2 connection with prior knowledge (h2c).
pub(crate) async fn h2(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<ClientBody> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

/// A whole response: status, headers, body.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) trailers: Option<HeaderMap>,
}

impl Answer {
    pub(crate) fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// Reads a response whole.
pub(crate) async fn read(response: Response<Incoming>) -> Result<Answer, hyper::Error> {
    let (parts, body) = response.into_parts();
    let collected = body.collect().await?;
    let trailers = collected.trailers().cloned();
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
    })
}

/// Sends `request` on a new HTTP/1.1 connection and reads the response.
pub(crate) async fn send(addr: SocketAddr, mut request: Request<ClientBody>) -> Answer {
    // An HTTP/1.1 client always names the host (the server answers 400 without it); hyper's
    // connection-level client leaves that to its caller.
    if !request.headers().contains_key(http::header::HOST) {
        request
            .headers_mut()
            .insert(http::header::HOST, http::HeaderValue::from_static("test"));
    }
    let (mut sender, _conn) = h1(addr).await;
    let response = tokio::time::timeout(PATIENCE, sender.send_request(request))
        .await
        .expect("the response comes in time")
        .unwrap();
    read(response).await.unwrap()
}

/// `GET path` with `te: trailers` on a new HTTP/2 connection, so that trailers can come.
pub(crate) async fn fetch_h2_with_trailers(addr: SocketAddr, path: &str) -> Answer {
    let mut h2 = h2(addr).await;
    let request = Request::get(format!("http://{addr}{path}"))
        .header("te", "trailers")
        .body(empty())
        .unwrap();
    let response = tokio::time::timeout(PATIENCE, h2.send_request(request))
        .await
        .expect("the response comes in time")
        .unwrap();
    read(response).await.unwrap()
}

/// `GET path` with `headers`, `n` times one after the other on one new HTTP/2 connection.
/// For an app with a direct service (`TowerApp` at the root) the first request goes through
/// its scope (until a response of the connection completed, the server does not trust a
/// client not to reset streams) and the later ones take the direct path: their answers
/// should not differ.
pub(crate) async fn h2_in_a_row(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    n: usize,
) -> Vec<Answer> {
    let mut h2 = h2(addr).await;
    let mut answers = Vec::new();
    for _ in 0..n {
        let mut request = Request::get(format!("http://{addr}{path}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response =
            tokio::time::timeout(PATIENCE, h2.send_request(request.body(empty()).unwrap()))
                .await
                .expect("the response comes in time")
                .unwrap();
        answers.push(read(response).await.unwrap());
    }
    answers
}

/// `GET path` on a new HTTP/1.1 connection.
pub(crate) async fn fetch(addr: SocketAddr, path: &str) -> Answer {
    send(addr, get(path)).await
}

/// Writes `request` on a new TCP connection and reads until the server closes it: for what a
/// client library would hide. Send `Connection: close` (or HTTP/1.0) so that it does.
pub(crate) async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    read_to_close(&mut stream).await
}

/// Reads until the peer closes (a reset counts as closed).
///
/// # Panics
///
/// When the peer keeps the connection open longer than [`PATIENCE`].
pub(crate) async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server closes the connection");
    String::from_utf8_lossy(&out).into_owned()
}

/// A path for a temporary file or socket, unique to this process and `name`.
pub(crate) fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("asgi-test-{}-{name}", std::process::id()))
}

/// Reads what arrives within `wait`, without waiting for the close.
pub(crate) async fn read_for(stream: &mut TcpStream, wait: Duration) -> io::Result<String> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => break,
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Collects the log lines written while it is installed on this thread (tests run the server
/// on a current-thread runtime, so everything logs here).
#[derive(Clone, Default)]
pub(crate) struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// Installs a capture at DEBUG level for the current thread.
    pub(crate) fn install() -> (LogCapture, tracing::subscriber::DefaultGuard) {
        let capture = LogCapture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(capture.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        (capture, guard)
    }

    /// Everything logged so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The lines logged at ERROR level.
    pub(crate) fn errors(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter(|line| line.contains(" ERROR "))
            .map(str::to_owned)
            .collect()
    }
}

impl io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;

    fn make_writer(&'a self) -> LogCapture {
        self.clone()
    }
}

/// Polls `condition` every few milliseconds until it holds, up to [`PATIENCE`].
pub(crate) async fn eventually(mut condition: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// An app from a closure that only sees HTTP scopes; it returns at once from the lifespan
/// scope ("no lifespan support").
pub(crate) fn http_only<F, Fut>(f: F) -> impl App
where
    F: Fn(Scope, Receiver, Sender) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
{
    move |scope: Scope, receive: Receiver, send: Sender| {
        let call = matches!(scope, Scope::Http(_)).then(|| f(scope, receive, send));
        async move {
            match call {
                Some(call) => call.await,
                None => Ok(()),
            }
        }
    }
}

/// Lets an app (called once per request) report one value to the test: the first report is
/// kept.
pub(crate) struct Report<T>(Arc<Mutex<Option<oneshot::Sender<T>>>>);

impl<T> Clone for Report<T> {
    fn clone(&self) -> Self {
        Report(self.0.clone())
    }
}

impl<T> Report<T> {
    pub(crate) fn new() -> (Report<T>, oneshot::Receiver<T>) {
        let (tx, rx) = oneshot::channel();
        (Report(Arc::new(Mutex::new(Some(tx)))), rx)
    }

    pub(crate) fn send(&self, value: T) {
        if let Some(tx) = self.0.lock().unwrap().take() {
            let _ = tx.send(value);
        }
    }
}
