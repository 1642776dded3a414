//! nginx in front, for real: Debian's `nginx`, started by each test on loopback with a
//! generated config (its own prefix, pid file and logs under a temporary directory),
//! proxying HTTP and WebSockets to the testbed over a Unix socket, as the README's
//! "Deploying" section shows. The server's proxy headers are at their defaults (on; Unix
//! socket peers and 127.0.0.1 trusted).
//!
//! Ignored in a plain `cargo test`: `.ci/run` installs nginx and runs
//! `cargo test --test nginx -- --ignored`.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use asgi::core::ServerAddr;
use asgi::server::server::{Listener, Peer, Server};
use common::*;
use futures_util::{SinkExt, StreamExt};
use http::Request;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream, UnixListener, UnixStream};
use tokio_tungstenite::tungstenite::Message;

/// The nginx config the README shows, with the test's own paths and port.
fn nginx_config(dir: &Path, socket: &Path, port: u16) -> String {
    let dir = dir.display();
    let socket = socket.display();
    format!(
        r#"daemon off;
user root root;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

    upstream app {{
        server unix:{socket};
        keepalive 8;
    }}

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      '';
    }}

    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
        }}
    }}
}}
"#
    )
}

/// An nginx process of the test's own; stopped and cleaned up on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Nginx {
    async fn start(dir: &Path, socket: &Path) -> Nginx {
        // A free port: bound and released; nginx binds it at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("nginx.conf");
        std::fs::write(&config, nginx_config(dir, socket, port)).unwrap();
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx runs (`.ci/run` installs it)");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let nginx = Nginx {
            child,
            dir: dir.to_owned(),
            addr,
        };
        assert!(
            eventually(async || TcpStream::connect(addr).await.is_ok()).await,
            "nginx listens in time; its log:\n{}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        nginx
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its worker (SIGKILL would leave the worker behind);
        // SIGKILL only if it does not stop in time.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + PATIENCE;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nginx_binary() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from("nginx"))
}

/// The testbed's Unix socket, counting the connections nginx opens to it.
struct CountingUnix {
    inner: UnixListener,
    path: PathBuf,
    accepted: Arc<AtomicUsize>,
}

impl Listener for CountingUnix {
    type Io = UnixStream;

    async fn accept(&mut self) -> std::io::Result<(UnixStream, Peer)> {
        let (stream, _) = self.inner.accept().await?;
        self.accepted.fetch_add(1, Ordering::SeqCst);
        Ok((stream, Peer::unix()))
    }

    fn local_addr(&self) -> std::io::Result<ServerAddr> {
        Ok(ServerAddr::Unix(self.path.clone()))
    }
}

/// The testbed behind nginx, over a Unix socket.
struct Stack {
    nginx: Nginx,
    server: asgi::server::server::ServerHandle,
    task: tokio::task::JoinHandle<Result<(), asgi::server::ServerError>>,
    upstream_connections: Arc<AtomicUsize>,
}

impl Stack {
    async fn start(name: &str) -> Stack {
        let dir = temp_path(&format!("nginx-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("app.sock");
        let accepted = Arc::new(AtomicUsize::new(0));
        let listener = CountingUnix {
            inner: UnixListener::bind(&socket).unwrap(),
            path: socket.clone(),
            accepted: accepted.clone(),
        };
        // The worker may run as another user: let it connect.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
        let server = Server::builder()
            .listener(listener)
            .handle_signals(false)
            .build(testbed::served_app(false));
        let handle = server.handle();
        let task = tokio::spawn(server.serve());
        assert!(handle.listening().await.is_some());
        let nginx = Nginx::start(&dir, &socket).await;
        Stack {
            nginx,
            server: handle,
            task,
            upstream_connections: accepted,
        }
    }

    async fn stop(self) {
        self.server.shutdown();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the server stops in time")
            .unwrap()
            .unwrap();
    }
}

/// A TCP connection to `addr` from another loopback address than 127.0.0.1, so that the
/// client is not a trusted proxy and its address differs from nginx's.
async fn connect_from(local: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((local, 0))).unwrap();
    socket.connect(addr).await.unwrap()
}

/// `GET path` with `headers`, sent from 127.0.0.2.
async fn get_from_127_0_0_2(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    let stream = connect_from([127, 0, 0, 2], addr).await;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut request = Request::get(path).header("host", "app.test");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = tokio::time::timeout(
        PATIENCE,
        sender.send_request(request.body(empty()).unwrap()),
    )
    .await
    .expect("nginx answers in time")
    .unwrap();
    read(response).await.unwrap()
}

#[tokio::test]
#[ignore = "needs nginx: run by .ci/run"]
async fn app_sees_the_client_and_scheme_nginx_forwarded() {
    let stack = Stack::start("client").await;
    let scope = get_from_127_0_0_2(stack.nginx.addr, "/scope/x", &[])
        .await
        .json();
    assert_eq!(scope["client"], serde_json::json!(["127.0.0.2", 0]));
    assert_eq!(scope["scheme"], "http");
    // The connection itself is nginx's, over the Unix socket.
    assert_eq!(scope["server"][1], serde_json::Value::Null);

    // A forged X-Forwarded-For sent through nginx: nginx appends the real address, and the
    // app takes it, not the forgery on the left.
    let scope = get_from_127_0_0_2(
        stack.nginx.addr,
        "/scope/x",
        &[("x-forwarded-for", "203.0.113.66")],
    )
    .await
    .json();
    assert_eq!(scope["client"], serde_json::json!(["127.0.0.2", 0]));

    let environ = get_from_127_0_0_2(stack.nginx.addr, "/wsgi/environ/x", &[])
        .await
        .json();
    assert_eq!(environ["REMOTE_ADDR"], "127.0.0.2");
    assert_eq!(environ["wsgi.url_scheme"], "http");
    stack.stop().await;
}

#[tokio::test]
#[ignore = "needs nginx: run by .ci/run"]
async fn websocket_through_nginx_echoes() {
    let stack = Stack::start("websocket").await;
    let url = format!("ws://{}/ws/echo", stack.nginx.addr);
    let (mut ws, response) = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(url))
        .await
        .expect("the handshake ends in time")
        .expect("nginx passes the upgrade on");
    assert_eq!(response.status(), 101);
    for text in ["hello through nginx", "and again"] {
        ws.send(Message::text(text)).await.unwrap();
        let echoed = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("the echo comes in time")
            .unwrap()
            .unwrap();
        assert_eq!(echoed, Message::text(text));
    }
    ws.close(None).await.unwrap();
    stack.stop().await;
}

#[tokio::test]
#[ignore = "needs nginx: run by .ci/run"]
async fn nginx_reuses_keep_alive_connections_to_the_server() {
    let stack = Stack::start("keepalive").await;
    const REQUESTS: usize = 10;
    for _ in 0..REQUESTS {
        // Each request on a new client connection: only nginx's upstream pool links them.
        let answer = get_from_127_0_0_2(stack.nginx.addr, "/", &[]).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.text(), "Hello, world!");
    }
    let upstream = stack.upstream_connections.load(Ordering::SeqCst);
    // One worker sending one request at a time reuses its idle connection; a second one is
    // allowed for a race between a response's end and the next request.
    assert!(
        (1..=2).contains(&upstream),
        "{REQUESTS} requests took {upstream} upstream connections"
    );
    stack.stop().await;
}

#[tokio::test]
#[ignore = "needs nginx: run by .ci/run"]
async fn x_forwarded_for_straight_from_an_untrusted_client_changes_nothing() {
    // The server as deployed, but reached straight over TCP from 127.0.0.2, which is not a
    // trusted proxy (only 127.0.0.1 and Unix socket peers are, by default).
    let server = start_testbed().await;
    let scope = get_from_127_0_0_2(
        server.addr,
        "/scope/x",
        &[
            ("x-forwarded-for", "203.0.113.66"),
            ("x-forwarded-proto", "https"),
        ],
    )
    .await
    .json();
    assert_eq!(scope["client"][0], "127.0.0.2");
    assert_ne!(scope["client"][1], 0);
    assert_eq!(scope["scheme"], "http");
    server.stop().await.unwrap();
}
