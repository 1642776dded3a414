//! The load harness: the project's server against a bare hyper server (and axum, and a bare
//! tokio-tungstenite server for WebSocket) on this machine, in one run, under the same load,
//! in turns. It prints throughput for each and the ratio project / baseline, and the servers'
//! peak memory while streaming.
//!
//! ```text
//! cargo bench --bench load                 # every suite
//! cargo bench --bench load -- http         # hello, 1 GiB download, 1 GiB upload
//! cargo bench --bench load -- ws           # WebSocket echo, 10,000 idle sockets
//! cargo bench --bench load -- wsgi         # the WSGI adapter's hello and 1 GiB upload
//! cargo bench --bench load -- tower        # asgi-tower's adapters against axum (tower.rs)
//! ```
//!
//! Settings through the environment: `LOAD_SECONDS` (per run, default 10), `LOAD_ROUNDS`
//! (turns per server, default 2), `LOAD_CONNECTIONS` (default 64), `LOAD_IDLE_SOCKETS`
//! (default 10000), `LOAD_STREAM_BYTES` (default 1 GiB). The HTTP load comes from `wrk`
//! (`apt-get install wrk`); everything else from clients in this harness.
//!
//! With two or more CPUs, the servers run pinned to CPU 0 and the load (wrk and this harness's
//! clients) to CPU 1 (`taskset`), so that the server and its load never fight for one core:
//! on a small machine that fight, not the server, would decide the numbers. `LOAD_PIN=0`
//! turns pinning off.
//!
//! The project's server is the `hello` example binary for the hello rows and the `testbed`
//! example binary for everything else (both built in release mode by the harness), run with `RUST_LOG=warn` so that the access log is off, as it would be for a
//! benchmark of any server. The baselines run in a child process of this harness
//! (`--serve hyper|axum|tungstenite`), on a tokio multi-thread runtime like the example's.

mod baseline;
mod client;
mod process;
mod tower;

use std::time::Duration;

use process::{Server, ServerKind};

/// The settings of one harness run, from the environment.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) seconds: u64,
    pub(crate) rounds: usize,
    pub(crate) connections: usize,
    pub(crate) idle_sockets: usize,
    pub(crate) stream_bytes: u64,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Settings {
    fn from_env() -> Self {
        Settings {
            seconds: env_or("LOAD_SECONDS", 10),
            rounds: env_or("LOAD_ROUNDS", 2),
            connections: env_or("LOAD_CONNECTIONS", 64),
            idle_sockets: env_or("LOAD_IDLE_SOCKETS", 10_000),
            stream_bytes: env_or("LOAD_STREAM_BYTES", 1 << 30),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        let kind = args.get(i + 1).ok_or("--serve needs a kind")?;
        let bind = args
            .iter()
            .position(|a| a == "--bind")
            .and_then(|j| args.get(j + 1))
            .ok_or("--serve needs --bind ADDR")?;
        if let Some(kind) = kind.strip_prefix("tower-") {
            return tower::serve(kind, bind.parse()?);
        }
        return baseline::serve(kind, bind.parse()?);
    }
    if let Some(status) = process::pin_to_client_cpu(&args)? {
        std::process::exit(status);
    }
    let settings = Settings::from_env();
    let suites: Vec<&str> = if args.is_empty() {
        vec!["http", "ws", "wsgi"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    process::raise_fd_limit(settings.idle_sockets as u64 * 2 + 1024);
    process::build_examples()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        for suite in suites {
            match suite {
                "http" => http_suite(&settings).await?,
                "ws" => ws_suite(&settings).await?,
                "wsgi" => wsgi_suite(&settings).await?,
                "tower" => tower::suite(&settings).await?,
                other => {
                    return Err(format!("unknown suite {other:?}: http, ws, wsgi or tower").into());
                }
            }
        }
        Ok(())
    })
}

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Runs `measure` against each server kind in turns, `rounds` times; returns the mean per kind.
async fn in_turns<F, Fut>(
    kinds: &[ServerKind],
    settings: &Settings,
    mut measure: F,
) -> BoxResult<Vec<f64>>
where
    F: FnMut(ServerKind, std::net::SocketAddr) -> Fut,
    Fut: std::future::Future<Output = BoxResult<f64>>,
{
    let mut sums = vec![0.0; kinds.len()];
    for _ in 0..settings.rounds {
        for (i, kind) in kinds.iter().enumerate() {
            let server = Server::start(*kind).await?;
            sums[i] += measure(*kind, server.addr()).await?;
            server.stop();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    Ok(sums
        .into_iter()
        .map(|s| s / settings.rounds as f64)
        .collect())
}

fn print_row(name: &str, unit: &str, values: &[(ServerKind, f64)]) {
    let base = values
        .iter()
        .find(|(k, _)| k.is_baseline())
        .map(|(_, v)| *v)
        .unwrap_or(f64::NAN);
    print!("{name:<28}");
    for (kind, value) in values {
        print!("  {:>10}: {:>12.1} {unit}", kind.label(), value);
    }
    if let Some((_, ours)) = values.iter().find(|(k, _)| k.is_ours()) {
        print!("  ratio project/baseline = {:.3}", ours / base);
    }
    println!();
}

async fn http_suite(settings: &Settings) -> BoxResult<()> {
    println!(
        "== HTTP ({} connections, {} s per run, {} rounds)",
        settings.connections, settings.seconds, settings.rounds
    );
    let kinds = [ServerKind::Hello, ServerKind::Hyper, ServerKind::Axum];
    let hello = in_turns(&kinds, settings, |kind, addr| {
        client::wrk(
            addr,
            kind.hello_path(),
            settings.connections,
            settings.seconds,
        )
    })
    .await?;
    print_row("hello (requests/s)", "req/s", &zip(&kinds, &hello));
    if let (Some(ours), Some(axum)) = (hello.first(), hello.get(2)) {
        println!("{:<28}  ratio project/axum = {:.3}", "", ours / axum);
    }

    let kinds = [ServerKind::Asgi, ServerKind::Hyper];
    for (name, upload) in [("download (MiB/s)", false), ("upload (MiB/s)", true)] {
        let mut rows = Vec::new();
        for kind in kinds {
            let server = Server::start(kind).await?;
            let mib_s = if upload {
                client::upload(server.addr(), kind.upload_path(), settings.stream_bytes).await?
            } else {
                client::download(server.addr(), settings.stream_bytes).await?
            };
            let peak = server.peak_rss_kib()?;
            server.stop();
            rows.push((kind, mib_s, peak));
        }
        print_row(
            name,
            "MiB/s",
            &rows.iter().map(|(k, v, _)| (*k, *v)).collect::<Vec<_>>(),
        );
        for (kind, _, peak) in rows {
            println!(
                "{:<28}  {:>10}: peak RSS {:.1} MiB",
                "",
                kind.label(),
                peak as f64 / 1024.0
            );
        }
    }
    Ok(())
}

async fn ws_suite(settings: &Settings) -> BoxResult<()> {
    println!(
        "== WebSocket ({} connections echoing 32-byte text, {} s per run)",
        settings.connections, settings.seconds
    );
    let kinds = [ServerKind::Asgi, ServerKind::Tungstenite];
    let echo = in_turns(&kinds, settings, |kind, addr| {
        let url = format!("ws://{addr}{}", kind.ws_path());
        client::ws_echo(url, settings.connections, settings.seconds)
    })
    .await?;
    print_row("echo (messages/s)", "msg/s", &zip(&kinds, &echo));

    for kind in kinds {
        let server = Server::start(kind).await?;
        let before = server.rss_kib()?;
        let url = format!("ws://{}{}", server.addr(), kind.ws_path());
        let sockets = client::ws_open_idle(&url, settings.idle_sockets).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = server.rss_kib()?;
        println!(
            "{:<28}  {:>10}: {} idle sockets: RSS {:.1} MiB (+{:.1} MiB, {:.1} KiB per socket)",
            "idle WebSockets",
            kind.label(),
            sockets.len(),
            after as f64 / 1024.0,
            after.saturating_sub(before) as f64 / 1024.0,
            after.saturating_sub(before) as f64 / sockets.len().max(1) as f64
        );
        drop(sockets);
        server.stop();
    }
    Ok(())
}

async fn wsgi_suite(settings: &Settings) -> BoxResult<()> {
    println!(
        "== WSGI adapter ({} connections, {} s per run)",
        settings.connections, settings.seconds
    );
    let kinds = [ServerKind::AsgiWsgi, ServerKind::Hello, ServerKind::Hyper];
    let hello = in_turns(&kinds, settings, |kind, addr| {
        client::wrk(
            addr,
            kind.hello_path(),
            settings.connections,
            settings.seconds,
        )
    })
    .await?;
    print_row("hello (requests/s)", "req/s", &zip(&kinds, &hello));
    if let (Some(wsgi), Some(ours)) = (hello.first(), hello.get(1)) {
        println!("{:<28}  ratio wsgi/async hello = {:.3}", "", wsgi / ours);
    }
    let server = Server::start(ServerKind::AsgiWsgi).await?;
    let mib_s = client::upload(
        server.addr(),
        ServerKind::AsgiWsgi.upload_path(),
        settings.stream_bytes,
    )
    .await?;
    let peak = server.peak_rss_kib()?;
    server.stop();
    println!(
        "{:<28}  {:>10}: {:.1} MiB/s, peak RSS {:.1} MiB",
        "upload via wsgi.input",
        ServerKind::AsgiWsgi.label(),
        mib_s,
        peak as f64 / 1024.0
    );
    Ok(())
}

fn zip(kinds: &[ServerKind], values: &[f64]) -> Vec<(ServerKind, f64)> {
    kinds.iter().copied().zip(values.iter().copied()).collect()
}
