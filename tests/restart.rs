//! A restart that loses nothing, as the README's "Deploying" section does it: the test plays
//! the supervisor (systemd's socket unit, or `systemfd`): it holds the listening socket and
//! passes it to each server process as file descriptor 3 (`LISTEN_FDS=1`; the `testbed`
//! example runs with `--fd 3`). Under a steady load, a new process starts on the same
//! socket, then the old one gets SIGTERM and drains. Every request must succeed: none
//! refused, reset or lost. And the other live change, a certificate reload by SIGHUP, on the
//! same kind of process.

mod common;
mod tls_common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use command_fds::{CommandFdExt, FdMapping};
use common::*;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How many lines of a process's standard output wait for the test to read them.
const OUTPUT_LINES: usize = 1024;

/// The testbed example, built once with the profile of these tests.
fn testbed_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
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
                .args(["build", "--message-format=json", "--example", "testbed"])
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
                .expect("cargo reports the testbed's executable")
        })
        .clone()
}

/// A server process on the inherited socket; killed if the test fails before it stops.
struct Process {
    child: Child,
}

impl Process {
    /// Starts the testbed on `socket` (as file descriptor 3) and waits until it listens.
    fn start(socket: &std::net::TcpListener, args: &[&std::ffi::OsStr]) -> Process {
        Process::start_logging(socket, args, "info,asgi_http::access=off").0
    }

    /// Like [`start`](Process::start), with `RUST_LOG` set to `filter`; also returns the
    /// lines of its standard output that come after the one that says it listens, as they
    /// come (up to [`OUTPUT_LINES`] waiting).
    fn start_logging(
        socket: &std::net::TcpListener,
        args: &[&std::ffi::OsStr],
        filter: &str,
    ) -> (Process, std::sync::mpsc::Receiver<String>) {
        let fd: OwnedFd = socket.try_clone().unwrap().into();
        let mut command = Command::new(testbed_binary());
        command
            .args(["--fd", "3"])
            .args(args)
            .env("LISTEN_FDS", "1")
            .env_remove("LISTEN_PID")
            .env("NO_COLOR", "1")
            .env("RUST_LOG", filter)
            .stdout(Stdio::piped())
            .fd_mappings(vec![FdMapping {
                parent_fd: fd,
                child_fd: 3,
            }])
            .unwrap();
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (listening_tx, listening) = std::sync::mpsc::channel();
        let (lines_tx, lines) = std::sync::mpsc::sync_channel(OUTPUT_LINES);
        std::thread::spawn(move || {
            let mut listens = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if listens {
                    // Nobody reads them once the receiver is gone: the output is still read
                    // to its end, so that the process never blocks on a full pipe.
                    let _ = lines_tx.send(line);
                } else if line.contains("listening on ") {
                    listens = true;
                    let _ = listening_tx.send(());
                }
            }
        });
        listening
            .recv_timeout(PATIENCE)
            .expect("the process listens");
        (Process { child }, lines)
    }

    /// SIGTERM, as systemd stops a service: the process drains and exits.
    fn terminate(&mut self) {
        self.signal("-TERM");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(signal)
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit; returns its status code.
    async fn exited(&mut self) -> Option<i32> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while tokio::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the process did not exit in time");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What the load saw.
#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    failed: AtomicU64,
}

/// `GET path` over HTTP/1.1 on `io`, a new connection: the answer, or what went wrong.
async fn get_on<IO>(io: IO, path: &str) -> Result<Answer, String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    let response = tokio::time::timeout(PATIENCE, sender.send_request(get(path)))
        .await
        .map_err(|_| "no response in time".to_owned())?
        .map_err(|e| format!("request: {e}"))?;
    read(response).await.map_err(|e| format!("body: {e}"))
}

/// One request on a new connection: `GET /` must answer 200 "Hello, world!".
async fn one_request(addr: SocketAddr) -> Result<(), String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let answer = get_on(stream, "/").await?;
    if answer.status != 200 || answer.text() != "Hello, world!" {
        return Err(format!("answer: {} {:?}", answer.status, answer.text()));
    }
    Ok(())
}

/// The access log's line of a request reaches standard output while the server runs, not
/// when it exits: the log's writer thread writes out what it has whenever its queue runs
/// empty, so lines gathered for one system call are never held back on a quiet server.
#[tokio::test]
async fn an_access_log_line_reaches_standard_output_while_the_server_runs() {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let (mut process, lines) = Process::start_logging(&socket, &[], "info");
    one_request(addr).await.unwrap();
    let deadline = std::time::Instant::now() + PATIENCE;
    let line = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = lines
            .recv_timeout(left)
            .expect("the request's access log line, while the server runs");
        if line.contains("asgi_http::access") {
            break line;
        }
    };
    assert!(line.contains("\"GET / HTTP/1.1\" 200"), "{line}");
    process.terminate();
    assert_eq!(process.exited().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_on_an_inherited_socket_loses_no_request() {
    // The supervisor's socket: it stays open across the restart.
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let mut old = Process::start(&socket, &[]);

    const CLIENTS: usize = 8;
    let counts = Arc::new(Counts::default());
    let errors = Arc::new(std::sync::Mutex::new(HashMap::<String, u64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (counts, errors, stop) = (counts.clone(), errors.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    match one_request(addr).await {
                        Ok(()) => counts.ok.fetch_add(1, Ordering::SeqCst),
                        Err(e) => {
                            *errors.lock().unwrap().entry(e).or_default() += 1;
                            counts.failed.fetch_add(1, Ordering::SeqCst)
                        }
                    };
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = counts.ok.load(Ordering::SeqCst);
    // The new process takes over the socket beside the old one; then the old one drains.
    let mut new = Process::start(&socket, &[]);
    old.terminate();
    assert_eq!(
        old.exited().await,
        Some(0),
        "the old process drains and exits cleanly"
    );
    let during = counts.ok.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    for client in load {
        client.await.unwrap();
    }
    new.terminate();
    assert_eq!(new.exited().await, Some(0));

    let ok = counts.ok.load(Ordering::SeqCst);
    let failed = counts.failed.load(Ordering::SeqCst);
    println!(
        "restart under load: {ok} requests succeeded ({before} before the restart, {} during it, {} after), {failed} failed",
        during - before,
        ok - during
    );
    assert_eq!(failed, 0, "failures: {:?}", errors.lock().unwrap());
    assert!(
        ok > during && during >= before && before > 0,
        "the load ran throughout"
    );
}

#[tokio::test]
async fn sighup_reloads_the_certificate_of_a_running_example() {
    use tls_common::*;

    let dir = temp_dir("sighup");
    let ca = Ca::new("Test CA");
    let (cert, key) = ca.server("server one").write(&dir, "server");
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let mut process = Process::start(
        &socket,
        &[
            "--tls-cert".as_ref(),
            cert.as_os_str(),
            "--tls-key".as_ref(),
            key.as_os_str(),
        ],
    );
    let subject = |tls: &tokio_rustls::client::TlsStream<TcpStream>| {
        let der = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
        String::from_utf8_lossy(&der).into_owned()
    };
    let config = client_config(&ca, &[b"http/1.1"], None);
    let tls = connect_tls(addr, config.clone()).await.unwrap();
    assert!(subject(&tls).contains("server one"));

    ca.server("server two").write(&dir, "server");
    process.signal("-HUP");
    assert!(
        eventually(async || {
            let tls = connect_tls(addr, config.clone()).await.unwrap();
            subject(&tls).contains("server two")
        })
        .await,
        "after SIGHUP new handshakes get the new certificate"
    );
    // The connection made before the reload still works.
    let (mut open, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let answer = read(open.send_request(get("/")).await.unwrap())
        .await
        .unwrap();
    assert_eq!(answer.text(), "Hello, world!");
    drop(open);
    process.terminate();
    assert_eq!(process.exited().await, Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `GET /scope/x` over TLS on a new connection: the scope the testbed shows, or what went
/// wrong (a refused certificate shows as a failed handshake or a failed first request).
async fn scope_over_tls(
    addr: SocketAddr,
    config: rustls::ClientConfig,
) -> Result<serde_json::Value, String> {
    let tls = tls_common::connect_tls(addr, config)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))?;
    let answer = get_on(tls, "/scope/x").await?;
    if answer.status != 200 {
        return Err(format!("answer: {} {:?}", answer.status, answer.text()));
    }
    Ok(answer.json())
}

/// `--tls-client-auth` picks what `--tls-client-ca` asks of clients, as `ClientAuth` does in
/// code: `required` by default, `optional` lets a client without a certificate in but
/// refuses one the CA did not sign, `report-errors` lets that one in too and says why in the
/// scope. A mode it does not know stops the example with the modes it knows.
#[tokio::test]
async fn the_client_auth_flag_of_an_example_sets_how_client_certificates_are_checked() {
    use tls_common::*;

    let dir = temp_dir("client-auth-flag");
    let ca = Ca::new("Test CA");
    let (cert, key) = ca.server("localhost").write(&dir, "server");
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    let alice = ca.client("alice");
    let mallory = Ca::new("Other CA").client("mallory");
    let with = |client: Option<&tls_common::Issued>| client_config(&ca, &[b"http/1.1"], client);

    let run = async |mode: Option<&str>| {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let ca_file = dir.join("ca.pem");
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "--tls-cert".as_ref(),
            cert.as_os_str(),
            "--tls-key".as_ref(),
            key.as_os_str(),
            "--tls-client-ca".as_ref(),
            ca_file.as_os_str(),
        ];
        if let Some(mode) = mode {
            args.extend([std::ffi::OsStr::new("--tls-client-auth"), mode.as_ref()]);
        }
        (Process::start(&socket, &args), addr)
    };

    // The default: required.
    let (mut process, addr) = run(None).await;
    let scope = scope_over_tls(addr, with(Some(&alice))).await.unwrap();
    assert_eq!(
        scope["extensions"]["tls"]["client_cert_name"],
        "O=Example,CN=alice"
    );
    assert!(scope_over_tls(addr, with(None)).await.is_err());
    assert!(scope_over_tls(addr, with(Some(&mallory))).await.is_err());
    process.terminate();
    assert_eq!(process.exited().await, Some(0));

    let (mut process, addr) = run(Some("optional")).await;
    let scope = scope_over_tls(addr, with(None)).await.unwrap();
    assert_eq!(
        scope["extensions"]["tls"]["client_cert_chain"],
        serde_json::json!([])
    );
    assert!(scope_over_tls(addr, with(Some(&mallory))).await.is_err());
    process.terminate();
    assert_eq!(process.exited().await, Some(0));

    let (mut process, addr) = run(Some("report-errors")).await;
    let scope = scope_over_tls(addr, with(Some(&mallory))).await.unwrap();
    let tls = &scope["extensions"]["tls"];
    let error = tls["client_cert_error"].as_str().unwrap_or_default();
    assert!(error.contains("UnknownIssuer"), "client_cert_error: {tls}");
    let scope = scope_over_tls(addr, with(Some(&alice))).await.unwrap();
    assert_eq!(
        scope["extensions"]["tls"]["client_cert_error"],
        serde_json::Value::Null
    );
    process.terminate();
    assert_eq!(process.exited().await, Some(0));

    let refused = Command::new(testbed_binary())
        .args(["--bind", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .arg("--tls-client-ca")
        .arg(dir.join("ca.pem"))
        .args(["--tls-client-auth", "maybe"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "a usage error");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("required, optional, report-errors"), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}
