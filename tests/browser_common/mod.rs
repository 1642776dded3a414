//! What the browser tests share: ChromeDriver on a free loopback port (stopped when the test
//! ends) and headless Chromium sessions with the flags the tests need, each with a profile
//! directory of its own (removed at the end).
//!
//! `CHROMEDRIVER` and `CHROMIUM` override the binaries' paths (defaults: `chromedriver` on the
//! `PATH`, `/usr/bin/chromium`, as Debian's `chromium-driver` and `chromium` install them).

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::json;

/// How long the browser may take for each step (start, load, deliver a message). Generous:
/// Chromium starts slowly on a loaded machine.
pub(crate) const BROWSER_PATIENCE: Duration = Duration::from_secs(30);

/// The flags every session gets: headless, no sandbox (tests may run as root in a
/// container), and no background traffic (updates, sync, QUIC), so that the browser talks to
/// the test's loopback servers only.
const CHROMIUM_FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// ChromeDriver, listening on a loopback port of its own; killed when dropped, with every
/// browser it started.
pub(crate) struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    /// Starts ChromeDriver on a free loopback port and waits until it accepts connections.
    ///
    /// # Panics
    ///
    /// When ChromeDriver is missing or does not listen within [`BROWSER_PATIENCE`].
    pub(crate) async fn start() -> Driver {
        let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = free_port();
        let child = Command::new(&binary)
            .arg(format!("--port={port}"))
            // A process group of its own, which the browsers it starts join: see `drop`.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary} ({e}): install chromium-driver"));
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + BROWSER_PATIENCE;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        driver
    }

    /// A new headless Chromium session with the common flags and `extra_flags`.
    ///
    /// # Panics
    ///
    /// When ChromeDriver cannot start Chromium.
    pub(crate) async fn browser(&self, extra_flags: &[String]) -> Browser {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let profile = Profile::new();
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.0.display()));
        args.extend(extra_flags.iter().cloned());
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": chromium, "args": args }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session");
        Browser {
            client,
            _profile: profile,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Ending the group ends the browsers too, also those of a test that failed before it
        // closed its sessions.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Chromium session (a [`Client`] through `Deref`) and its profile directory. Call
/// [`Browser::close`] at the end of a test; the profile is removed when this is dropped.
pub(crate) struct Browser {
    client: Client,
    _profile: Profile,
}

impl Browser {
    /// Ends the session (Chromium exits).
    pub(crate) async fn close(self) {
        let Browser { client, _profile } = self;
        client.close().await.expect("the browser closes");
    }
}

impl std::ops::Deref for Browser {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// A Chromium profile directory unique to this process and session; removed when dropped.
struct Profile(PathBuf);

impl Profile {
    fn new() -> Profile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("asgi-browser-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Profile(dir)
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port free right now (the OS picks it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
