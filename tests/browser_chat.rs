//! The chat example in a real browser: two chat servers share a Redis channel layer, a
//! headless Chromium page on each joins the room, and a message typed in one appears in the
//! other.
//!
//! It needs Chromium, ChromeDriver and Redis (Debian's `chromium`, `chromium-driver` and
//! `redis-server`), so it is `#[ignore]`d in a plain `cargo test`; `.ci/run` installs them
//! and runs it with
//! `cargo test --test browser_chat -- --ignored`. `CHROMEDRIVER` and `CHROMIUM` override the
//! binaries' paths.

mod common;

#[path = "../examples/chat/app.rs"]
mod chat;
#[path = "../asgi-channels/tests/support/redis_server.rs"]
mod redis_server;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use asgi::channels::{ChannelLayer, RedisChannelLayer};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// How long the browser may take for each step (start, load, deliver a message).
const BROWSER_PATIENCE: Duration = Duration::from_secs(30);

/// ChromeDriver, killed when the test ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn start_driver() -> (Driver, String) {
    let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let port = free_port();
    let child = Command::new(&binary)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary} ({e}): install chromium-driver"));
    let driver = Driver(child);
    let deadline = Instant::now() + BROWSER_PATIENCE;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (driver, format!("http://127.0.0.1:{port}"))
}

async fn browser(webdriver: &str) -> Client {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let profile = std::env::temp_dir().join(format!("asgi-chat-{}", free_port()));
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(webdriver)
        .await
        .expect("a Chromium session")
}

async fn open_chat(client: &Client, addr: SocketAddr) {
    client
        .goto(&format!("http://{addr}/"))
        .await
        .expect("the page loads");
    client
        .wait()
        .at_most(BROWSER_PATIENCE)
        .for_element(Locator::Css("body[data-state='open']"))
        .await
        .expect("the page's WebSocket opens");
}

async fn messages(client: &Client) -> Vec<String> {
    let mut texts = Vec::new();
    for item in client
        .find_all(Locator::Css("#messages li"))
        .await
        .expect("the message list")
    {
        texts.push(item.text().await.expect("a message's text"));
    }
    texts
}

#[tokio::test]
#[ignore = "needs Chromium, ChromeDriver and Redis: .ci/run installs them and runs this test"]
async fn message_typed_in_one_page_appears_in_the_other() {
    // Two chat servers sharing a Redis channel layer, one tab on each: the room spans both.
    let redis = redis_server::RedisServer::start();
    let mut servers = Vec::new();
    for _ in 0..2 {
        let layer = RedisChannelLayer::builder()
            .host(redis.url())
            .connect()
            .await
            .expect("the layer connects to Redis");
        let layer: Arc<dyn ChannelLayer> = Arc::new(layer);
        servers.push(common::start(chat::chat(layer), |b| b).await);
    }
    let (_driver, webdriver) = start_driver().await;
    let alice = browser(&webdriver).await;
    let bob = browser(&webdriver).await;
    open_chat(&alice, servers[0].addr).await;
    open_chat(&bob, servers[1].addr).await;

    let input = alice.find(Locator::Id("message")).await.expect("the input");
    input.send_keys("hello from alice").await.expect("typing");
    alice
        .find(Locator::Id("send"))
        .await
        .expect("the button")
        .click()
        .await
        .expect("clicking send");

    let deadline = Instant::now() + BROWSER_PATIENCE;
    loop {
        let seen = messages(&bob).await;
        if seen.iter().any(|m| m == "hello from alice") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "bob never saw alice's message; bob's page shows {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The sender sees its own message too, once.
    let own: Vec<String> = messages(&alice).await;
    assert_eq!(
        own.iter().filter(|m| *m == "hello from alice").count(),
        1,
        "alice's page shows {own:?}"
    );

    alice.close().await.expect("closing alice's browser");
    bob.close().await.expect("closing bob's browser");
    for server in servers {
        server.stop().await.expect("the server stops cleanly");
    }
}
