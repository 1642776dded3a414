//! The WSGI examples: `wsgi_hello` and `testbed` run as processes, and `mixed` (a WSGI app
//! under `/legacy` beside an async app) through the server, its WebSocket route in-process.

mod common;

#[path = "../examples/mixed/app.rs"]
mod mixed;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use asgi::server::test_client::{Message, TestClient};
use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The examples these tests run, built once (if needed) with the profile of these tests.
fn example_binary(name: &str) -> PathBuf {
    static BINARIES: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    let binaries = BINARIES.get_or_init(|| {
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
            .args(["build", "--message-format=json"])
            .args(["--example", "wsgi_hello", "--example", "testbed"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit());
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        let output = build.output().expect("cargo runs");
        assert!(output.status.success(), "building the examples failed");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|msg| {
                let name = msg["target"]["name"].as_str()?.to_owned();
                let executable = msg["executable"].as_str()?;
                Some((name, PathBuf::from(executable)))
            })
            .collect()
    });
    binaries
        .get(name)
        .unwrap_or_else(|| panic!("cargo reports no executable for {name}"))
        .clone()
}

/// An example running as a process, killed when dropped.
struct Example {
    child: Child,
    /// What the example logged after "listening on ": `http://ADDR` or `unix:PATH`.
    listening: String,
}

impl Example {
    /// Starts the example `name` with `args` and waits until it says where it listens.
    fn start(name: &str, args: &[&str]) -> Example {
        let mut child = Command::new(example_binary(name))
            .args(args)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.split("listening on ").nth(1) {
                    let _ = tx.send(at.trim().to_owned());
                }
            }
        });
        let listening = rx.recv_timeout(PATIENCE).expect("the example listens");
        Example { child, listening }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.listening
            .strip_prefix("http://")
            .expect("a TCP address")
            .parse()
            .unwrap()
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn wsgi_hello_example_serves_simple_app_on_a_unix_socket() {
    let path = temp_path("wsgi-hello.sock");
    let _ = std::fs::remove_file(&path);
    let example = Example::start("wsgi_hello", &["--uds", path.to_str().unwrap()]);
    assert_eq!(example.listening, format!("unix:{}", path.display()));

    let stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let answer = read(sender.send_request(get("/")).await.unwrap())
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-type"], "text/plain");
    assert_eq!(answer.text(), "Hello world!\n");
    // Killed, the process leaves its socket file behind.
    drop(example);
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn testbed_example_serves_the_wsgi_testbed_under_wsgi() {
    let example = Example::start("testbed", &["--bind", "127.0.0.1:0"]);
    let addr = example.addr();
    let hello = fetch(addr, "/wsgi/hello").await;
    assert_eq!(hello.status, StatusCode::OK);
    assert_eq!(hello.text(), "Hello, world!");
    let environ = fetch(addr, "/wsgi/environ/x").await.json();
    assert_eq!(environ["SCRIPT_NAME"], "/wsgi");
    assert_eq!(environ["PATH_INFO"], "/environ/x");
    // The async routes see the scope as the server built it.
    let scope = fetch(addr, "/scope/x").await.json();
    assert_eq!(scope["root_path"], "");
    assert_eq!(fetch(addr, "/").await.text(), "Hello, world!");
}

/// A gigabyte upload to `/wsgi/upload` that asks before sending its body.
const GIGABYTE_UPLOAD_HEAD: &[u8] = b"POST /wsgi/upload HTTP/1.1\r\nHost: test\r\n\
    Content-Length: 1073741824\r\nExpect: 100-continue\r\n\r\n";

/// Reads a response head (or an interim one), up to its blank line.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(PATIENCE, async {
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
    })
    .await
    .expect("a response head comes in time");
    String::from_utf8_lossy(&head).into_owned()
}

#[tokio::test]
async fn testbed_example_takes_a_gigabyte_upload_to_wsgi_upload() {
    // With the server's default limit (100 MiB), such a body is refused before it is read.
    let defaults = start_testbed().await;
    let mut stream = TcpStream::connect(defaults.addr).await.unwrap();
    stream.write_all(GIGABYTE_UPLOAD_HEAD).await.unwrap();
    let refused = read_head(&mut stream).await;
    assert!(refused.starts_with("HTTP/1.1 413 "), "{refused}");
    drop(stream);
    defaults.stop().await.unwrap();

    // The example raises the limit, so the WSGI app starts reading: the client may send.
    let example = Example::start("testbed", &["--bind", "127.0.0.1:0"]);
    let mut stream = TcpStream::connect(example.addr()).await.unwrap();
    stream.write_all(GIGABYTE_UPLOAD_HEAD).await.unwrap();
    let interim = read_head(&mut stream).await;
    assert_eq!(interim, "HTTP/1.1 100 Continue\r\n\r\n");
}

#[tokio::test]
async fn mixed_page_comes_from_the_async_app() {
    let server = start(mixed::mixed(), |b| b).await;
    let page = fetch(server.addr, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    assert!(page.text().contains("new WebSocket"), "{}", page.text());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn mixed_legacy_routes_come_from_the_wsgi_app_below_its_script_name() {
    let server = start(mixed::mixed(), |b| b).await;
    let index = fetch(server.addr, "/legacy/").await;
    assert_eq!(index.status, StatusCode::OK);
    assert_eq!(
        index.text(),
        "legacy index\nSCRIPT_NAME=/legacy\nPATH_INFO=/\n"
    );
    let bare = fetch(server.addr, "/legacy").await;
    assert_eq!(
        bare.text(),
        "legacy index\nSCRIPT_NAME=/legacy\nPATH_INFO=\n"
    );
    let report = fetch(server.addr, "/legacy/report").await;
    assert_eq!(report.status, StatusCode::OK);
    assert_eq!(report.text(), "report: 3 open orders\n");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn mixed_legacy_notes_reads_its_body_from_wsgi_input() {
    let server = start(mixed::mixed(), |b| b).await;
    let request = Request::post("/legacy/notes")
        .header("host", "test")
        .body(full("remember the milk"))
        .unwrap();
    let answer = send(server.addr, request).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(answer.text(), "saved a note of 17 bytes\n");

    let too_long = Request::post("/legacy/notes")
        .header("host", "test")
        .body(full(vec![b'n'; mixed::MAX_NOTE + 1]))
        .unwrap();
    let answer = send(server.addr, too_long).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn mixed_wrong_method_on_a_legacy_route_gets_405_with_allow() {
    let server = start(mixed::mixed(), |b| b).await;
    let answer = fetch(server.addr, "/legacy/notes").await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.headers["allow"], "POST");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn mixed_unknown_paths_get_404_from_the_part_that_owns_them() {
    let server = start(mixed::mixed(), |b| b).await;
    // The async router's 404 says `Not Found`; the legacy app's ends with a newline.
    let async_side = fetch(server.addr, "/nope").await;
    assert_eq!(async_side.status, StatusCode::NOT_FOUND);
    assert_eq!(async_side.text(), "Not Found");
    let legacy_side = fetch(server.addr, "/legacy/nope").await;
    assert_eq!(legacy_side.status, StatusCode::NOT_FOUND);
    assert_eq!(legacy_side.text(), "Not Found\n");
    // `/legacyx` is not under `/legacy`: the async app answers.
    let neighbour = fetch(server.addr, "/legacyx").await;
    assert_eq!(neighbour.status, StatusCode::NOT_FOUND);
    assert_eq!(neighbour.text(), "Not Found");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn mixed_websocket_echoes_text_and_binary() {
    let client = TestClient::new(mixed::mixed());
    let mut ws = client.websocket("/ws").connect().await.unwrap();
    assert_eq!(ws.subprotocol(), None);
    ws.send_text("hello").await.unwrap();
    assert_eq!(ws.receive().await.unwrap(), Message::Text("hello".into()));
    ws.send_binary(Bytes::from_static(&[0, 1, 255]))
        .await
        .unwrap();
    assert_eq!(
        ws.receive().await.unwrap(),
        Message::Binary(Bytes::from_static(&[0, 1, 255]))
    );
    // The handler returns cleanly when the client closes.
    ws.close(1000).await.unwrap();
}

#[tokio::test]
async fn mixed_websocket_under_legacy_is_refused_with_403() {
    let client = TestClient::new(mixed::mixed());
    let refused = client.websocket("/legacy/").connect().await.unwrap_err();
    let denial = refused.denial().expect("a denial, not an app failure");
    assert_eq!(denial.status(), StatusCode::FORBIDDEN);
}
