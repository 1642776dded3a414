//! The chat example across processes: two servers on different ports share a Redis channel
//! layer, and clients on either see every message of the room, in order; with real nginx in
//! front of both; through a Redis restart; with a client that never reads.
//!
//! Each test starts its own `redis-server` (and nginx) on loopback ports of its own and stops
//! them. They are `#[ignore]`d in a plain `cargo test` because they need Debian's
//! `redis-server` and `nginx`; `.ci/run` installs both and runs them with
//! `cargo test --test chat_across_servers -- --ignored`.

#[path = "../examples/chat/app.rs"]
#[allow(dead_code)]
mod chat;
mod common;
#[path = "../asgi-channels/tests/support/redis_server.rs"]
mod redis_server;
mod ws_common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use asgi::core::{App, Receiver, Scope, Sender};

use asgi::channels::{ChannelLayer, LayerConfig, RedisChannelLayer};
use futures_util::{SinkExt, StreamExt};
use redis_server::RedisServer;
use tokio_tungstenite::tungstenite::Message as WireMessage;

use common::TestServer;
use ws_common::Client;

async fn chat_server(redis: &RedisServer, config: LayerConfig) -> TestServer {
    counted_chat_server(redis, config, Arc::default()).await
}

/// A chat server that counts the WebSockets it is asked to open in `sockets`.
async fn counted_chat_server(
    redis: &RedisServer,
    config: LayerConfig,
    sockets: Arc<AtomicUsize>,
) -> TestServer {
    let layer = RedisChannelLayer::builder()
        .host(redis.url())
        .config(config)
        .connect()
        .await
        .expect("the layer connects");
    let chat = Arc::new(chat::chat(Arc::new(layer) as Arc<dyn ChannelLayer>));
    let app = move |scope: Scope, receive: Receiver, send: Sender| {
        let chat = chat.clone();
        if matches!(scope, Scope::WebSocket(_)) {
            sockets.fetch_add(1, Ordering::SeqCst);
        }
        async move { chat.call(scope, receive, send).await }
    };
    common::start(app, |b| b).await
}

async fn say(client: &mut Client, text: &str) {
    client
        .send(WireMessage::text(text))
        .await
        .expect("the message is sent");
}

/// The next text message, within `PATIENCE`.
async fn hear(client: &mut Client) -> String {
    loop {
        let message = tokio::time::timeout(common::PATIENCE, client.next())
            .await
            .expect("a message arrives in time")
            .expect("the socket stays open")
            .expect("a valid frame");
        if let WireMessage::Text(text) = message {
            return text.to_string();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: .ci/run installs it and runs this test"]
async fn two_servers_sharing_redis_share_the_room_in_order() {
    let redis = RedisServer::start();
    let one = chat_server(&redis, LayerConfig::default()).await;
    let two = chat_server(&redis, LayerConfig::default()).await;
    let mut alice = ws_common::connect(one.addr, "/ws/general").await;
    let mut bob = ws_common::connect(two.addr, "/ws/general").await;
    let mut elsewhere = ws_common::connect(two.addr, "/ws/other-room").await;

    for n in 0..20 {
        say(&mut alice, &format!("alice {n}")).await;
        say(&mut bob, &format!("bob {n}")).await;
    }
    // Each client hears all 40, each sender's in the order it sent them.
    for client in [&mut alice, &mut bob] {
        let mut heard = Vec::new();
        for _ in 0..40 {
            heard.push(hear(client).await);
        }
        for who in ["alice", "bob"] {
            let theirs: Vec<&String> = heard.iter().filter(|m| m.starts_with(who)).collect();
            let expected: Vec<String> = (0..20).map(|n| format!("{who} {n}")).collect();
            assert_eq!(theirs, expected.iter().collect::<Vec<_>>());
        }
    }
    // Another room hears nothing of it.
    say(&mut elsewhere, "only here").await;
    assert_eq!(hear(&mut elsewhere).await, "only here");

    for server in [one, two] {
        server.stop().await.expect("the server stops cleanly");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: .ci/run installs it and runs this test"]
async fn redis_restart_crashes_nothing_and_the_room_recovers() {
    let mut redis = RedisServer::start();
    let one = chat_server(&redis, LayerConfig::default()).await;
    let two = chat_server(&redis, LayerConfig::default()).await;
    let mut alice = ws_common::connect(one.addr, "/ws/sturdy").await;
    let mut bob = ws_common::connect(two.addr, "/ws/sturdy").await;
    say(&mut alice, "before").await;
    assert_eq!(hear(&mut bob).await, "before");
    assert_eq!(hear(&mut alice).await, "before");

    redis.stop();
    // During the outage the sender is told; the socket stays open.
    say(&mut alice, "during").await;
    assert!(hear(&mut alice).await.starts_with("(not delivered"));
    redis.restart();
    let back = Instant::now();

    // Redis came back empty, so the memberships are gone: clients that join now share the
    // room again at once, and both servers kept serving throughout.
    let mut carol = ws_common::connect(one.addr, "/ws/sturdy").await;
    let mut dave = ws_common::connect(two.addr, "/ws/sturdy").await;
    loop {
        say(&mut carol, "after").await;
        match tokio::time::timeout(Duration::from_millis(500), hear(&mut dave)).await {
            Ok(text) if text == "after" => break,
            _ => assert!(
                back.elapsed() < Duration::from_secs(10),
                "the room did not recover"
            ),
        }
    }
    assert!(back.elapsed() < Duration::from_secs(10));
    for server in [one, two] {
        server.stop().await.expect("the server stops cleanly");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: .ci/run installs it and runs this test"]
async fn a_client_that_never_reads_holds_up_nobody() {
    let redis = RedisServer::start();
    let config = LayerConfig::default().capacity(16);
    let one = chat_server(&redis, config.clone()).await;
    let two = chat_server(&redis, config).await;
    // The stalled client completes its handshake and then never reads a byte.
    let _stalled = ws_common::connect(one.addr, "/ws/busy").await;
    let mut reader = ws_common::connect(one.addr, "/ws/busy").await;
    let mut talker = ws_common::connect(two.addr, "/ws/busy").await;
    let text = "x".repeat(1000);
    for _ in 0..500 {
        say(&mut talker, &text).await;
    }
    for _ in 0..500 {
        assert_eq!(hear(&mut reader).await.len(), 1000);
    }
    for server in [one, two] {
        server.stop().await.expect("the server stops cleanly");
    }
}

/// nginx on a loopback port of its own, balancing over `upstreams` with WebSocket proxying.
/// One process (`master_process off`), so that killing it leaves no worker behind.
struct Nginx {
    child: Child,
    port: u16,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Nginx {
    fn start(upstreams: &[SocketAddr]) -> Nginx {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = common::temp_path(&format!("nginx-{port}"));
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        let servers: String = upstreams
            .iter()
            .map(|addr| format!("    server {addr};\n"))
            .collect();
        let config = format!(
            "daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  upstream chat {{
{servers}  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://chat;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_read_timeout 1h;
    }}
  }}
}}
",
            dir = dir.display()
        );
        let config_path = dir.join("nginx.conf");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new(nginx_binary())
            .arg("-c")
            .arg(&config_path)
            .arg("-p")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx is installed (.ci/run installs Debian's nginx)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx {
            child,
            port,
            _dir: TempDir(dir),
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx_binary() -> String {
    std::env::var("NGINX").unwrap_or_else(|_| {
        if std::path::Path::new("/usr/sbin/nginx").exists() {
            "/usr/sbin/nginx".to_owned()
        } else {
            "nginx".to_owned()
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server and nginx: .ci/run installs them and runs this test"]
async fn clients_spread_by_nginx_over_two_servers_share_the_room() {
    let redis = RedisServer::start();
    let counts = [Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0))];
    let one = counted_chat_server(&redis, LayerConfig::default(), counts[0].clone()).await;
    let two = counted_chat_server(&redis, LayerConfig::default(), counts[1].clone()).await;
    let nginx = Nginx::start(&[one.addr, two.addr]);
    // nginx's round robin puts consecutive connections on alternate servers.
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(ws_common::connect(nginx.addr(), "/ws/balanced").await);
    }
    let spread = counts.each_ref().map(|count| count.load(Ordering::SeqCst));
    assert_eq!(
        spread,
        [2, 2],
        "nginx did not spread the clients over both servers"
    );
    for (i, client) in clients.iter_mut().enumerate() {
        say(client, &format!("client {i}")).await;
    }
    for client in &mut clients {
        let mut heard = Vec::new();
        for _ in 0..4 {
            heard.push(hear(client).await);
        }
        heard.sort();
        assert_eq!(heard, ["client 0", "client 1", "client 2", "client 3"]);
    }
    drop(clients);
    drop(nginx);
    for server in [one, two] {
        server.stop().await.expect("the server stops cleanly");
    }
}
