//! The tower suite (`cargo bench --bench load -- tower`): the two adapters of `asgi-tower`
//! against axum on its own, in one run, under the same `wrk` load, in turns.
//!
//! | row | measured | against |
//! | --- | --- | --- |
//! | `AsgiService under axum::serve` | an ASGI hello app nested in an axum router, served by `axum::serve` | axum's own hello handler under `axum::serve` |
//! | `axum Router via TowerApp` | the same axum hello router as an ASGI app, served by this project's server | that router under `axum::serve` |
//!
//! The `callgrind` suite counts the instructions per request of both adapters too
//! (`asgi-service` and `tower-app`, against its `axum` row).
//!
//! Every server runs in a child process of this harness (`--serve tower-KIND`), on the same
//! tokio multi-thread runtime, pinned like the other suites' servers.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use asgi::core::http::header::{CONTENT_TYPE, HeaderValue};
use asgi::core::http::{HeaderMap, StatusCode};
use asgi::prelude::*;
use asgi::tower::{AsgiService, TowerApp};
use tokio::net::TcpListener;

use crate::process::SERVER_CPU;
use crate::{BoxResult, Settings, Turns};

/// The servers of this suite.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// axum's own hello handler under `axum::serve`.
    Axum,
    /// An ASGI hello app through `AsgiService` under `axum::serve`.
    AsgiService,
    /// The axum hello router through `TowerApp` under this project's server.
    TowerApp,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Axum => "axum",
            Kind::AsgiService => "asgi-service",
            Kind::TowerApp => "tower-app",
        }
    }
}

/// The axum hello router of both comparisons.
fn axum_hello() -> axum::Router {
    axum::Router::new().route(
        "/",
        axum::routing::get(|| async { ([("content-type", "text/plain")], "Hello, world!") }),
    )
}

/// The ASGI hello app, as the `hello` example answers `/`.
async fn asgi_hello(scope: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
    let Scope::Http(_) = scope else {
        return Ok(());
    };
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    send.send(SendEvent::response_start(StatusCode::OK, headers))
        .await?;
    send.send(SendEvent::response_body("Hello, world!", false))
        .await?;
    Ok(())
}

/// Runs one of this suite's servers (`--serve tower-KIND`) until killed.
pub(crate) fn serve(kind: &str, addr: SocketAddr) -> BoxResult<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // SIGTERM ends the process normally, as in the baselines, so that a server run under
        // callgrind writes its counts.
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let serve = async move {
            match kind {
                "axum" => axum::serve(TcpListener::bind(addr).await?, axum_hello()).await?,
                "asgi-service" => {
                    let router =
                        axum::Router::new().route_service("/", AsgiService::new(asgi_hello));
                    axum::serve(TcpListener::bind(addr).await?, router).await?
                }
                "tower-app" => {
                    asgi::server::Server::builder()
                        .bind(addr)
                        .access_log(false)
                        .handle_signals(false)
                        .serve(TowerApp::new(axum_hello()))
                        .await?
                }
                other => return Err(format!("unknown tower server {other:?}").into()),
            }
            BoxResult::Ok(())
        };
        tokio::select! {
            result = serve => result,
            _ = terminate.recv() => Ok(()),
        }
    })
}

/// A server of this suite in a child process; killed on drop.
struct TowerServer {
    child: Child,
    addr: SocketAddr,
}

impl Drop for TowerServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(kind: Kind) -> BoxResult<TowerServer> {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let exe = std::env::current_exe()?;
    let mut command = if crate::process::pinning() {
        let mut c = Command::new("taskset");
        c.args(["-c", SERVER_CPU]).arg(exe);
        c
    } else {
        Command::new(exe)
    };
    command
        .args(["--serve", &format!("tower-{}", kind.label())])
        .args(["--bind", &addr.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let server = TowerServer {
        child: command.spawn()?,
        addr,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            return Err(format!("{} did not start listening on {addr}", kind.label()).into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(server)
}

/// Clock ticks per second in `/proc/PID/stat` (`USER_HZ`): 100 on every Linux platform
/// this harness runs on.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// The CPU time the server process used so far, in seconds (user + system).
fn cpu_seconds(child: &Child) -> BoxResult<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id()))?;
    // The fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .ok_or("unreadable /proc stat")?
        .1
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: f64 = fields
        .get(11..13)
        .ok_or("short /proc stat")?
        .iter()
        .map(|v| v.parse::<f64>().unwrap_or(0.0))
        .sum();
    Ok(ticks / CLOCK_TICKS_PER_SECOND)
}

pub(crate) async fn suite(settings: &Settings) -> BoxResult<()> {
    println!(
        "== tower interop ({} connections, {} s per run, {} rounds)",
        settings.connections, settings.seconds, settings.rounds
    );
    let kinds = [Kind::AsgiService, Kind::TowerApp, Kind::Axum];
    let mut rates = Turns {
        rounds: Vec::with_capacity(settings.rounds),
    };
    let mut per_cpu = Turns {
        rounds: Vec::with_capacity(settings.rounds),
    };
    for _ in 0..settings.rounds {
        let mut round_rates = Vec::with_capacity(kinds.len());
        let mut round_per_cpu = Vec::with_capacity(kinds.len());
        for kind in kinds {
            let server = start(kind).await?;
            let cpu_before = cpu_seconds(&server.child)?;
            let rate = crate::client::wrk(server.addr, "/", settings.connections, settings.seconds)
                .await?;
            let cpu = cpu_seconds(&server.child)? - cpu_before;
            round_rates.push(rate);
            round_per_cpu.push(rate * settings.seconds as f64 / cpu.max(0.01));
            drop(server);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        rates.rounds.push(round_rates);
        per_cpu.rounds.push(round_per_cpu);
    }
    let means = rates.means();
    let means_per_cpu = per_cpu.means();
    let axum = kinds.len() - 1;
    // Requests per CPU-second of the server process: on a shared machine the rate follows
    // whatever else runs on the server's CPU, the CPU cost per request much less so. Each
    // ratio is also given round by round (median and range), as in the HTTP suite.
    for (i, name) in [
        (0, "AsgiService under axum::serve"),
        (1, "axum Router via TowerApp"),
    ] {
        println!(
            "{name:<30} {:>12}: {:>9.1} req/s  axum::serve: {:>9.1} req/s  ratio = {:.3}{}",
            kinds[i].label(),
            means[i],
            means[axum],
            means[i] / means[axum],
            rates.paired(i, axum)
        );
        println!(
            "{:<30} {:>12}: {:>9.0} req/CPU-s  axum::serve: {:>9.0} req/CPU-s  ratio = {:.3}{}",
            "",
            "",
            means_per_cpu[i],
            means_per_cpu[axum],
            means_per_cpu[i] / means_per_cpu[axum],
            per_cpu.paired(i, axum)
        );
    }
    Ok(())
}
