//! Starting, measuring and stopping the servers under test.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::BoxResult;

/// A server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerKind {
    /// The project's server running the `hello` example, access log off.
    Hello,
    /// The same, with the access log on (`RUST_LOG=info`, the examples' default).
    HelloLogged,
    /// The project's server with a hello written as a raw `(scope, receive, send)` app, in
    /// this harness, access log off: the server's own cost (baseline.rs).
    HelloRaw,
    /// The project's server running the `api` example (its whole middleware stack), access
    /// log off.
    Api,
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
    /// An ASGI hello through `AsgiService` under `axum::serve`, in this harness (tower.rs).
    AsgiService,
    /// axum's hello router through `TowerApp` under this project's server, in this harness
    /// (tower.rs).
    TowerApp,
}

impl ServerKind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            ServerKind::Hello => "asgi",
            ServerKind::HelloLogged => "asgi+log",
            ServerKind::HelloRaw => "asgi-raw",
            ServerKind::Api => "api",
            ServerKind::Asgi => "asgi",
            ServerKind::AsgiWsgi => "asgi-wsgi",
            ServerKind::Hyper => "hyper",
            ServerKind::Axum => "axum",
            ServerKind::Tungstenite => "tungstenite",
            ServerKind::AsgiService => "asgi-service",
            ServerKind::TowerApp => "tower-app",
        }
    }

    /// The argument of `--serve` that runs this server in this harness.
    fn serve_arg(self) -> String {
        match self {
            ServerKind::AsgiService | ServerKind::TowerApp => format!("tower-{}", self.label()),
            _ => self.label().to_owned(),
        }
    }

    pub(crate) fn is_ours(self) -> bool {
        matches!(
            self,
            ServerKind::Hello
                | ServerKind::HelloLogged
                | ServerKind::Api
                | ServerKind::Asgi
                | ServerKind::AsgiWsgi
        )
    }

    pub(crate) fn is_baseline(self) -> bool {
        matches!(self, ServerKind::Hyper | ServerKind::Tungstenite)
    }

    pub(crate) fn hello_path(self) -> &'static str {
        match self {
            ServerKind::AsgiWsgi => "/wsgi/hello",
            // A small JSON answer through every layer of the stack and the router.
            ServerKind::Api => "/api/items",
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

/// How a server process is run.
#[derive(Debug, Clone)]
pub(crate) enum Launch {
    /// Natively, pinned to the server CPU when pinning is on.
    Native,
    /// Under `valgrind --tool=callgrind`, writing its counts to `out` at exit; with the
    /// first-level caches simulated (`--cache-sim=yes`) when `cache_sim` is set.
    Callgrind {
        /// Where the counts go.
        out: PathBuf,
        /// Simulate the caches too.
        cache_sim: bool,
    },
}

/// A running server process.
pub(crate) struct Server {
    child: Child,
    addr: SocketAddr,
}

pub(crate) fn target_dir() -> BoxResult<PathBuf> {
    // This binary is target/<profile>/deps/load-<hash>.
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or("cannot locate the target directory")?;
    Ok(dir.to_path_buf())
}

/// Builds the `hello`, `testbed`, `chat` and `api` examples in release mode, next to this
/// harness.
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
            "--example",
            "chat",
            "--example",
            "api",
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

/// The CPU the servers run on; the load runs on [`CLIENT_CPU`].
pub(crate) const SERVER_CPU: &str = "0";
/// The CPU the load generators run on.
pub(crate) const CLIENT_CPU: &str = "1";

/// True when servers and load are pinned to separate CPUs: two or more CPUs, `taskset` found,
/// and `LOAD_PIN` is not `0`.
///
/// The harness process that measures is the one [`pin_to_client_cpu`] started: it runs on the
/// client CPU alone, so the CPUs it sees are one, and it takes the answer of the process that
/// started it (`LOAD_PINNED`) instead of asking again. Asking again would say "no", and each
/// server would then inherit the client CPU and share it with the load.
pub(crate) fn pinning() -> bool {
    if std::env::var_os("LOAD_PINNED").is_some() {
        return true;
    }
    std::env::var_os("LOAD_PIN").is_none_or(|v| v != "0")
        && std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
        && Command::new("taskset")
            .arg("-V")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// Runs this harness again pinned to the client CPU (once: the child sees `LOAD_PINNED`);
/// returns its exit status, or `None` when this process is the one to run.
pub(crate) fn pin_to_client_cpu(args: &[String]) -> BoxResult<Option<i32>> {
    if std::env::var_os("LOAD_PINNED").is_some() || !pinning() {
        return Ok(None);
    }
    let status = Command::new("taskset")
        .args(["-c", CLIENT_CPU])
        .arg(std::env::current_exe()?)
        .args(args)
        .env("LOAD_PINNED", "1")
        .status()?;
    Ok(Some(status.code().unwrap_or(1)))
}

fn free_port() -> BoxResult<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

impl Server {
    pub(crate) async fn start(kind: ServerKind) -> BoxResult<Server> {
        Server::launch(kind, Launch::Native).await
    }

    pub(crate) async fn launch(kind: ServerKind, launch: Launch) -> BoxResult<Server> {
        let addr = free_port()?;
        let program = match kind {
            ServerKind::Hello | ServerKind::HelloLogged => {
                target_dir()?.join("examples").join("hello")
            }
            ServerKind::Asgi | ServerKind::AsgiWsgi => {
                target_dir()?.join("examples").join("testbed")
            }
            ServerKind::Api => target_dir()?.join("examples").join("api"),
            _ => std::env::current_exe()?,
        };
        let mut command = if pinning() {
            let mut c = Command::new("taskset");
            c.args(["-c", SERVER_CPU]);
            c
        } else {
            // `env` runs the program: one command shape for both cases.
            Command::new("env")
        };
        if let Launch::Callgrind { out, cache_sim } = &launch {
            // Counts every thread of the server process (user space only: valgrind does not
            // see the kernel), written when it exits.
            command
                .args(["valgrind", "--tool=callgrind", "--quiet"])
                .arg(format!("--callgrind-out-file={}", out.display()));
            if *cache_sim {
                command.arg("--cache-sim=yes");
            }
        }
        command.arg(program);
        if kind.is_ours() {
            // The log goes where the servers' output goes (nowhere: stdout is /dev/null),
            // through the examples' writer, as a file or pipe would take it.
            let filter = if kind == ServerKind::HelloLogged {
                "info"
            } else {
                "warn"
            };
            command.env("RUST_LOG", filter);
        } else {
            if kind == ServerKind::HelloRaw {
                command.env("RUST_LOG", "warn");
            }
            command.args(["--serve", &kind.serve_arg()]);
        }
        command
            .args(["--bind", &addr.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let child = command.spawn()?;
        let server = Server { child, addr };
        let deadline = Instant::now() + Duration::from_secs(60);
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

    /// Sends SIGTERM and waits for the process to exit (a server under callgrind writes its
    /// counts then).
    pub(crate) fn terminate(mut self) -> BoxResult<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            return Err("kill -TERM failed".into());
        }
        self.child.wait()?;
        Ok(())
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
