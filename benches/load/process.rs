//! Starting, measuring and stopping the servers under test.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::BoxResult;

/// A server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerKind {
    /// The project's server running the `hello` example.
    Hello,
    /// The project's server running the `testbed` example.
    Asgi,
    /// The same process, measured on its WSGI routes (`/wsgi/...`).
    AsgiWsgi,
    /// A bare hyper server in this harness.
    Hyper,
    /// An axum server in this harness.
    Axum,
    /// A bare tokio-tungstenite echo server in this harness.
    Tungstenite,
}

impl ServerKind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            ServerKind::Hello => "asgi",
            ServerKind::Asgi => "asgi",
            ServerKind::AsgiWsgi => "asgi-wsgi",
            ServerKind::Hyper => "hyper",
            ServerKind::Axum => "axum",
            ServerKind::Tungstenite => "tungstenite",
        }
    }

    pub(crate) fn is_ours(self) -> bool {
        matches!(
            self,
            ServerKind::Hello | ServerKind::Asgi | ServerKind::AsgiWsgi
        )
    }

    pub(crate) fn is_baseline(self) -> bool {
        matches!(self, ServerKind::Hyper | ServerKind::Tungstenite)
    }

    pub(crate) fn hello_path(self) -> &'static str {
        match self {
            ServerKind::AsgiWsgi => "/wsgi/hello",
            _ => "/",
        }
    }

    pub(crate) fn upload_path(self) -> &'static str {
        match self {
            ServerKind::AsgiWsgi => "/wsgi/upload",
            _ => "/upload",
        }
    }

    pub(crate) fn ws_path(self) -> &'static str {
        match self {
            ServerKind::Tungstenite => "/",
            _ => "/ws/echo",
        }
    }
}

/// A running server process.
pub(crate) struct Server {
    child: Child,
    addr: SocketAddr,
}

fn target_dir() -> BoxResult<PathBuf> {
    // This binary is target/<profile>/deps/load-<hash>.
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or("cannot locate the target directory")?;
    Ok(dir.to_path_buf())
}

/// Builds the `hello` and `testbed` examples in release mode, next to this harness.
pub(crate) fn build_examples() -> BoxResult<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--example",
            "hello",
            "--example",
            "testbed",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()?;
    if !status.success() {
        return Err("building the examples failed".into());
    }
    Ok(())
}

/// Raises the open-file limit (soft up to hard) for the idle-socket test; children inherit it.
pub(crate) fn raise_fd_limit(wanted: u64) {
    if let Ok((soft, hard)) = rlimit::Resource::NOFILE.get() {
        let target = wanted.min(hard).max(soft);
        if rlimit::Resource::NOFILE.set(target, hard).is_err() {
            eprintln!("could not raise the open-file limit to {target}");
        }
    }
}

fn free_port() -> BoxResult<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

impl Server {
    pub(crate) async fn start(kind: ServerKind) -> BoxResult<Server> {
        let addr = free_port()?;
        let mut command = match kind {
            ServerKind::Hello | ServerKind::Asgi | ServerKind::AsgiWsgi => {
                let example = if kind == ServerKind::Hello {
                    "hello"
                } else {
                    "testbed"
                };
                let mut c = Command::new(target_dir()?.join("examples").join(example));
                c.env("RUST_LOG", "warn");
                c
            }
            other => {
                let mut c = Command::new(std::env::current_exe()?);
                c.args(["--serve", other.label()]);
                c
            }
        };
        command
            .args(["--bind", &addr.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let child = command.spawn()?;
        let server = Server { child, addr };
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if Instant::now() > deadline {
                return Err(format!("{} did not start listening on {addr}", kind.label()).into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(server)
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn status_field(&self, field: &str) -> BoxResult<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no {field} in /proc status").into())
    }

    /// Resident memory now, in KiB.
    pub(crate) fn rss_kib(&self) -> BoxResult<u64> {
        self.status_field("VmRSS:")
    }

    /// Peak resident memory over the process's life, in KiB.
    pub(crate) fn peak_rss_kib(&self) -> BoxResult<u64> {
        self.status_field("VmHWM:")
    }

    pub(crate) fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
