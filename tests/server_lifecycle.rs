//! The server's life: lifespan startup and shutdown, graceful drain, the drain deadline, a
//! forced stop, and the testbed example as a process (exit status, signals).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use asgi::core::{Error, ReceiveEvent, Receiver, Scope, SendEvent, Sender};
use asgi::server::Server;
use common::*;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use tokio::net::{TcpListener, TcpStream};

#[tokio::test]
async fn lifespan_state_reaches_requests() {
    let server = start_testbed().await;
    let answer = fetch(server.addr, "/state").await;
    assert_eq!(
        answer.json(),
        serde_json::json!({ "greeting": "hello from lifespan startup" })
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn failed_startup_ends_serve_with_an_error_and_nothing_listens() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::builder()
        .listener(listener)
        .handle_signals(false)
        .build(testbed::Testbed::new(true));
    let handle = server.handle();
    let err = tokio::time::timeout(PATIENCE, server.serve())
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.is_startup_failed(), "{err}");
    assert_eq!(err.startup_message(), Some("TESTBED_STARTUP_FAIL is set"));
    assert_eq!(handle.listening().await, None);
    assert!(TcpStream::connect(addr).await.is_err(), "something listens");
}

#[tokio::test]
async fn failed_startup_binds_no_unix_socket() {
    let path = temp_path("startup-failed.sock");
    let _ = std::fs::remove_file(&path);
    let err = Server::builder()
        .unix_socket(&path)
        .handle_signals(false)
        .serve(testbed::Testbed::new(true))
        .await
        .unwrap_err();
    assert!(err.is_startup_failed());
    assert!(!path.exists(), "the socket was bound");
}

#[tokio::test]
async fn app_without_lifespan_support_is_served() {
    let (logs, _guard) = LogCapture::install();
    // This app fails on the lifespan scope, which means "no lifespan support".
    let app = |scope: Scope, _: Receiver, mut send: Sender| async move {
        let Scope::Http(_) = scope else {
            return Err(Error::msg("no lifespan here"));
        };
        send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
            .await?;
        send.send(SendEvent::response_body("served", false)).await?;
        Ok(())
    };
    let server = start(app, |b| b).await;
    assert_eq!(fetch(server.addr, "/").await.text(), "served");
    server.stop().await.unwrap();
    assert!(
        logs.text()
            .contains("does not support the lifespan protocol")
    );
    assert_eq!(logs.errors(), Vec::<String>::new());
}

/// An app that records, in order, when its requests finish and when lifespan events come.
fn recording_app(journal: Arc<Mutex<Vec<String>>>) -> impl asgi::core::App {
    move |scope: Scope, mut receive: Receiver, mut send: Sender| {
        let journal = journal.clone();
        async move {
            match scope {
                Scope::Lifespan(_) => loop {
                    match receive.recv().await {
                        ReceiveEvent::LifespanStartup => {
                            send.send(SendEvent::LifespanStartupComplete).await?;
                        }
                        _ => {
                            journal.lock().unwrap().push("lifespan.shutdown".into());
                            // Cleaning up takes a while.
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            journal.lock().unwrap().push("cleaned up".into());
                            send.send(SendEvent::LifespanShutdownComplete).await?;
                            return Ok(());
                        }
                    }
                },
                _ => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
                        .await?;
                    send.send(SendEvent::response_body("done", false)).await?;
                    journal.lock().unwrap().push("request".into());
                    Ok(())
                }
            }
        }
    }
}

#[tokio::test]
async fn lifespan_shutdown_comes_after_the_drain() {
    let journal = Arc::new(Mutex::new(Vec::new()));
    let server = start(recording_app(journal.clone()), |b| b).await;
    let addr = server.addr;
    let request = tokio::spawn(async move { fetch(addr, "/").await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.stop().await.unwrap();
    assert_eq!(request.await.unwrap().text(), "done");
    assert_eq!(
        *journal.lock().unwrap(),
        ["request", "lifespan.shutdown", "cleaned up"]
    );
}

#[tokio::test]
async fn graceful_shutdown_finishes_requests_in_flight_and_refuses_new_connections() {
    let server = start_testbed().await;
    let addr = server.addr;
    let in_flight: Vec<_> = (0..3)
        .map(|_| tokio::spawn(async move { fetch(addr, "/sleep/600").await }))
        .collect();
    // An idle keep-alive connection: it is closed at once.
    let (mut idle, idle_conn) = h1(addr).await;
    assert_eq!(
        read(idle.send_request(get("/")).await.unwrap())
            .await
            .unwrap()
            .status,
        StatusCode::OK
    );
    let in_app = eventually(async || fetch(addr, "/stats").await.json()["inflight"] == 3).await;
    assert!(in_app, "the requests reached the app");

    server.handle.shutdown();
    let refused = eventually(async || TcpStream::connect(addr).await.is_err()).await;
    assert!(refused, "new connections are still accepted");
    tokio::time::timeout(Duration::from_secs(2), idle_conn)
        .await
        .expect("the idle connection is closed")
        .unwrap()
        .unwrap();
    for request in in_flight {
        let answer = request.await.unwrap();
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.text(), "slept 600 ms");
    }
    tokio::time::timeout(PATIENCE, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn shutdown_signal_ends_a_server_sent_events_stream() {
    let server = start_testbed().await;
    let (mut sender, _conn) = h1(server.addr).await;
    let response = sender
        .send_request(get("/sse?n=100000&interval_ms=20"))
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "data: 0\n\n");

    server.handle.shutdown();
    // The handler ends by itself: the body completes normally, with its goodbye event.
    let rest = tokio::time::timeout(PATIENCE, body.collect())
        .await
        .expect("the stream ends")
        .expect("the stream ends normally")
        .to_bytes();
    assert!(
        rest.ends_with(b"event: shutdown\ndata: bye\n\n"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
    tokio::time::timeout(PATIENCE, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn drain_deadline_closes_connections_still_busy() {
    const DRAIN: Duration = Duration::from_millis(300);
    let server = start(testbed::Testbed::new(false), |b| {
        b.drain_timeout(Some(DRAIN))
    })
    .await;
    let (mut sender, conn) = h1(server.addr).await;
    let request = tokio::spawn(sender.send_request(get("/wait-disconnect")));
    let waiting =
        eventually(async || fetch(server.addr, "/stats").await.json()["inflight"] == 1).await;
    assert!(waiting);

    let started = Instant::now();
    server.handle.shutdown();
    let outcome = tokio::time::timeout(PATIENCE, request)
        .await
        .unwrap()
        .unwrap();
    assert!(
        outcome.is_err(),
        "the request never answers, so it is cut off"
    );
    assert!(started.elapsed() >= DRAIN, "cut off before the deadline");
    tokio::time::timeout(PATIENCE, conn)
        .await
        .unwrap()
        .unwrap()
        .ok();
    tokio::time::timeout(PATIENCE, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn shutdown_now_stops_at_once_without_waiting_for_lifespan_shutdown() {
    let journal = Arc::new(Mutex::new(Vec::new()));
    let server = start(recording_app(journal.clone()), |b| b.drain_timeout(None)).await;
    let (mut sender, _conn) = h1(server.addr).await;
    let request = tokio::spawn(sender.send_request(get("/")));
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.handle.shutdown_now();
    tokio::time::timeout(PATIENCE, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(request.await.unwrap().is_err(), "the request was cut off");
    assert!(
        !journal.lock().unwrap().iter().any(|e| e == "cleaned up"),
        "the server waited for lifespan shutdown"
    );
}

/// The testbed example's executable, built (if needed) with the profile of these tests.
fn testbed_binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let mut build = Command::new(env!("CARGO"));
        // The variables cargo sets for a running test (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`) are
        // seen by build scripts (ring's): with them, this build and the next plain `cargo build`
        // would each rebuild those crates.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("CARGO_")
                && !["CARGO_HOME", "CARGO_TARGET_DIR", "CARGO_BUILD_JOBS"].contains(&&*name)
            {
                build.env_remove(&*name);
            }
        }
        build
            .args(["build", "--example", "testbed", "--message-format=json"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit());
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        let output = build.output().expect("cargo runs");
        assert!(output.status.success(), "building the testbed failed");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|msg| msg["target"]["name"] == "testbed")
            .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
            .expect("cargo reports the testbed executable")
    })
}

/// Waits for `child` to exit, up to [`PATIENCE`].
fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the testbed did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn testbed_exits_with_status_3_when_startup_fails() {
    let mut child = Command::new(testbed_binary())
        .args(["--bind", "127.0.0.1:0"])
        .env("TESTBED_STARTUP_FAIL", "1")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child);
    let mut log = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert_eq!(status.code(), Some(3), "{log}");
    assert!(log.contains("application startup failed"), "{log}");
    assert!(!log.contains("listening on"), "{log}");
}

/// A running testbed process, its address, and its log lines as they come.
struct Process {
    child: Child,
    addr: std::net::SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Process {
    fn start() -> Process {
        let mut child = Command::new(testbed_binary())
            .args(["--bind", "127.0.0.1:0"])
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.split("listening on http://").nth(1) {
                    let _ = addr_tx.send(addr.trim().to_owned());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = addr_rx
            .recv_timeout(PATIENCE)
            .expect("the testbed listens")
            .parse()
            .unwrap();
        Process { child, addr, log }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a request on a blocking socket and reads the response until the close.
fn blocking_request(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

#[test]
fn testbed_drains_and_exits_on_sigterm() {
    let mut process = Process::start();
    let addr = process.addr;
    let request = std::thread::spawn(move || blocking_request(addr, "/sleep/500"));
    std::thread::sleep(Duration::from_millis(150));
    process.signal("TERM");
    let response = request.join().unwrap().unwrap();
    assert!(response.ends_with("slept 500 ms"), "{response}");
    let status = wait_exit(&mut process.child);
    assert!(status.success(), "{}", process.log());
    let log = process.log();
    assert!(log.contains("SIGTERM: shutting down gracefully"), "{log}");
    assert!(log.contains("application shutdown complete"), "{log}");
}

#[test]
fn testbed_exits_at_once_on_a_second_signal() {
    let mut process = Process::start();
    let addr = process.addr;
    let request = std::thread::spawn(move || blocking_request(addr, "/sleep/20000"));
    std::thread::sleep(Duration::from_millis(150));
    let signalled = Instant::now();
    process.signal("INT");
    std::thread::sleep(Duration::from_millis(100));
    process.signal("INT");
    let status = wait_exit(&mut process.child);
    assert!(status.success(), "{}", process.log());
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "it waited for the request"
    );
    let response = request.join().unwrap();
    assert!(
        !response.as_deref().unwrap_or("").contains("slept"),
        "the request completed"
    );
    assert!(process.log().contains("SIGINT again: stopping now"));
}

#[tokio::test]
async fn http2_connections_drain_too() {
    let count = Arc::new(AtomicUsize::new(0));
    let server = start(testbed::Testbed::new(false), |b| b).await;
    let mut sender = h2(server.addr).await;
    let requests: Vec<_> = (0..2)
        .map(|_| {
            let mut sender = sender.clone();
            let uri = format!("http://{}/sleep/400", server.addr);
            let count = count.clone();
            tokio::spawn(async move {
                let request = Request::get(uri).body(empty()).unwrap();
                let answer = read(sender.send_request(request).await.unwrap())
                    .await
                    .unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                answer
            })
        })
        .collect();
    let in_app =
        eventually(async || fetch(server.addr, "/stats").await.json()["inflight"] == 2).await;
    assert!(in_app);
    server.handle.shutdown();
    for request in requests {
        assert_eq!(request.await.unwrap().text(), "slept 400 ms");
    }
    assert_eq!(count.load(Ordering::SeqCst), 2);
    // After the GOAWAY, the connection takes no new stream.
    let late = Request::get(format!("http://{}/", server.addr))
        .body(empty())
        .unwrap();
    assert!(sender.send_request(late).await.is_err());
    tokio::time::timeout(PATIENCE, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
