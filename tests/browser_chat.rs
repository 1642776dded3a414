//! The chat example in a real browser:
//!
//! - two chat servers share a Redis channel layer, a headless Chromium page on each joins the
//!   room, and a message typed in one appears in the other;
//! - the server serves the page over HTTPS itself (a certificate made at test time), and two
//!   tabs of one browser talk over `wss://`; the browser trusts that certificate's key and
//!   nothing else.
//!
//! It needs Chromium, ChromeDriver and Redis (Debian's `chromium`, `chromium-driver` and
//! `redis-server`), so it is `#[ignore]`d in a plain `cargo test`; `.ci/run` installs them
//! and runs it with
//! `cargo test --test browser_chat -- --ignored`. `CHROMEDRIVER` and `CHROMIUM` override the
//! binaries' paths.

mod browser_common;
mod common;
mod tls_common;

#[path = "../examples/chat/app.rs"]
mod chat;
#[path = "../asgi-channels/tests/support/redis_server.rs"]
mod redis_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use asgi::channels::{ChannelLayer, InMemoryChannelLayer, RedisChannelLayer};
use asgi::server::server::TlsConfig;
use browser_common::{BROWSER_PATIENCE, Driver};
use fantoccini::{Client, Locator};

async fn open_chat(client: &Client, url: &str) {
    client.goto(url).await.expect("the page loads");
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
    let driver = Driver::start().await;
    let alice = driver.browser(&[]).await;
    let bob = driver.browser(&[]).await;
    open_chat(&alice, &format!("http://{}/", servers[0].addr)).await;
    open_chat(&bob, &format!("http://{}/", servers[1].addr)).await;

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

    alice.close().await;
    bob.close().await;
    for server in servers {
        server.stop().await.expect("the server stops cleanly");
    }
}

/// Types `text` into the page's input and presses Send.
async fn say(client: &Client, text: &str) {
    let input = client
        .find(Locator::Id("message"))
        .await
        .expect("the input");
    input.send_keys(text).await.expect("typing");
    client
        .find(Locator::Id("send"))
        .await
        .expect("the button")
        .click()
        .await
        .expect("clicking send");
}

/// Waits until the page shows as many messages as `expected`, then asserts they are those,
/// in that order.
async fn shows_messages(client: &Client, who: &str, expected: &[&str]) {
    let deadline = Instant::now() + BROWSER_PATIENCE;
    loop {
        let seen = messages(client).await;
        if seen.len() >= expected.len() {
            assert_eq!(seen, expected, "{who}'s page");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{who}'s page shows {seen:?}, never {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
#[ignore = "needs Chromium and ChromeDriver: .ci/run installs them and runs this test"]
async fn two_tabs_chat_over_wss_with_the_servers_own_certificate() {
    // The server terminates TLS itself, with a certificate of a CA made for this test.
    let dir = RemovedAtEnd(tls_common::temp_dir("browser-wss"));
    let ca = tls_common::Ca::new("Browser test CA");
    let certificate = ca.server("chat over wss");
    let (cert, key) = certificate.write(&dir.0, "server");
    let layer: Arc<dyn ChannelLayer> = Arc::new(InMemoryChannelLayer::default());
    let server = common::start(chat::chat(layer), |b| b.tls(TlsConfig::new(cert, key))).await;
    let page = format!("https://127.0.0.1:{}/", server.addr.port());

    let driver = Driver::start().await;
    // Trust this certificate's key alone: any other certificate error still stops the page.
    let trust = format!(
        "--ignore-certificate-errors-spki-list={}",
        certificate.spki_sha256_base64()
    );
    let browser = driver.browser(&[trust]).await;
    let alice = browser.window().await.expect("the first tab");
    open_chat(&browser, &page).await;
    let bob = browser.new_window(true).await.expect("a second tab").handle;
    browser
        .switch_to_window(bob.clone())
        .await
        .expect("to bob's tab");
    open_chat(&browser, &page).await;
    let socket_url: String = serde_json::from_value(
        browser
            .execute("return socket.url", vec![])
            .await
            .expect("the page's socket"),
    )
    .unwrap();
    assert_eq!(
        socket_url,
        format!("wss://127.0.0.1:{}/ws/lobby", server.addr.port())
    );

    browser
        .switch_to_window(alice.clone())
        .await
        .expect("to alice's tab");
    for text in ["one", "two", "three"] {
        say(&browser, text).await;
    }
    shows_messages(&browser, "alice", &["one", "two", "three"]).await;
    browser.switch_to_window(bob).await.expect("to bob's tab");
    shows_messages(&browser, "bob", &["one", "two", "three"]).await;
    say(&browser, "four, from bob").await;
    shows_messages(&browser, "bob", &["one", "two", "three", "four, from bob"]).await;
    browser
        .switch_to_window(alice)
        .await
        .expect("to alice's tab");
    shows_messages(
        &browser,
        "alice",
        &["one", "two", "three", "four, from bob"],
    )
    .await;

    // The trust is that key's alone: the same browser refuses another key of the same CA.
    let (other_cert, other_key) = ca.server("another key").write(&dir.0, "other");
    let layer: Arc<dyn ChannelLayer> = Arc::new(InMemoryChannelLayer::default());
    let other = common::start(chat::chat(layer), |b| {
        b.tls(TlsConfig::new(other_cert, other_key))
    })
    .await;
    let other_page = format!("https://127.0.0.1:{}/", other.addr.port());
    shows_certificate_warning(&browser, &other_page).await;
    browser.close().await;
    assert!(common::eventually(async || other.handle.tls_handshake_failures() >= 1).await);
    other.stop().await.expect("the other server stops cleanly");

    // And a browser without the flag refuses the chat's own certificate.
    let untrusting = driver.browser(&[]).await;
    shows_certificate_warning(&untrusting, &page).await;
    untrusting.close().await;
    assert!(common::eventually(async || server.handle.tls_handshake_failures() >= 1).await);
    server.stop().await.expect("the server stops cleanly");
}

/// Goes to `url` and asserts that Chromium shows its certificate warning in place of the
/// chat.
async fn shows_certificate_warning(client: &Client, url: &str) {
    client.goto(url).await.expect("the navigation ends");
    let title = client.title().await.expect("the tab's title");
    assert_ne!(title, "asgi chat", "{url} loaded despite its certificate");
    assert!(
        client.find(Locator::Id("messages")).await.is_err(),
        "{url} shows the chat's messages despite its certificate (the tab's title is {title:?})"
    );
}

/// A directory removed when the test ends, failed or not.
struct RemovedAtEnd(std::path::PathBuf);

impl Drop for RemovedAtEnd {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
