//! The load harness: the project's server against a bare hyper server (and axum, and a bare
//! tokio-tungstenite server for WebSocket) on this machine, in one run, under the same load,
//! in turns. It prints throughput for each and the ratio project / baseline (of the means
//! over the rounds, and with two rounds or more also round by round: their median and
//! range), and the servers' peak memory while streaming; and it counts instructions per
//! request with callgrind.
//!
//! ```text
//! cargo bench --bench load                 # every suite
//! cargo bench --bench load -- http         # hello over HTTP/1.1 and h2c, 1 GiB down and up
//! cargo bench --bench load -- ws           # WebSocket echo, 10,000 idle sockets
//! cargo bench --bench load -- wsgi         # the WSGI adapter's hello and 1 GiB upload
//! cargo bench --bench load -- tower        # asgi-tower's adapters against axum (tower.rs)
//! cargo bench --bench load -- channels     # group_send fan-out over Redis and in memory (channels.rs)
//! cargo bench --bench load -- callgrind    # instructions per request (valgrind)
//! cargo bench --bench load -- middleware   # instructions per call of each middleware (middleware.rs)
//! cargo bench --bench load -- api          # the api example's stack vs hello (middleware.rs)
//! ```
//!
//! Settings through the environment: `LOAD_SECONDS` (per run, default 10), `LOAD_ROUNDS`
//! (turns per server, default 2), `LOAD_CONNECTIONS` (wrk's, default 64),
//! `LOAD_H2_CONNECTIONS` and `LOAD_H2_STREAMS` (h2load's, default 16 x 32),
//! `LOAD_IDLE_SOCKETS` (default 10000), `LOAD_STREAM_BYTES` (default 1 GiB),
//! `LOAD_CALLGRIND_REQUESTS` (N, default 2000), `LOAD_CALLGRIND_KEEP` (a directory: the
//! callgrind suite leaves its counts there, for `callgrind_annotate`, instead of removing
//! them), `LOAD_CALLGRIND_ONLY` (labels separated by commas, e.g. `asgi,asgi+log`: the
//! callgrind suite counts only those servers, and hyper), `LOAD_CALLGRIND_H2=1` (the callgrind
//! suite's requests go over h2c from `h2load`, one connection with `LOAD_H2_STREAMS` streams
//! at a time, instead of HTTP/1.1 one at a time), `LOAD_CALLGRIND_CACHE=1` (the callgrind
//! suite also simulates the first-level caches, `--cache-sim=yes`, and prints their misses
//! per request beside the instructions). The HTTP/1.1 load comes from `wrk`
//! (`apt-get install wrk`), the HTTP/2 load from `h2load` (`apt-get install nghttp2-client`),
//! the instruction counts from `valgrind` (`apt-get install valgrind`); everything else from
//! clients in this harness.
//!
//! With two or more CPUs, the servers run pinned to CPU 0 and the load (wrk, h2load and this
//! harness's clients) to CPU 1 (`taskset`), so that the server and its load never fight for
//! one core: on a small machine that fight, not the server, would decide the numbers.
//! `LOAD_PIN=0` turns pinning off.
//!
//! The project's server is the `hello` example binary for the hello rows and the `testbed`
//! example binary for everything else (both built in release mode by the harness), with the
//! examples' logging (`logging::init`): `RUST_LOG=warn` for the access log off, and
//! `RUST_LOG=info` (the default) for the `asgi+log` row, its lines going to the server's
//! standard output, which is `/dev/null` (not a terminal, so no colour). The baselines log
//! nothing in either row: the access-log row prices the log against servers that write none.
//! They run in a child process of this harness (`--serve hyper|axum|tungstenite`), on a tokio
//! multi-thread runtime like the example's.
//!
//! The `callgrind` suite also counts `asgi-raw`: the project's server in this harness, with
//! the hello written as a raw `(scope, receive, send)` app and the examples' logging
//! (`RUST_LOG=warn`), which is the server's own cost without a request handler's `Request`
//! and `Response`.
//!
//! The `callgrind` suite runs each server under `valgrind --tool=callgrind` twice, serving N
//! and then 2N keep-alive `GET`s from the same client (one connection, one request at a
//! time), and prints `(instructions(2N) - instructions(N)) / N`: start-up and shutdown cancel
//! out. Only the server process's user-space instructions count, all its threads (the access
//! log's writer thread too); the client runs outside valgrind.

mod baseline;
mod channels;
mod client;
mod middleware;
#[path = "../common/middleware_stacks.rs"]
mod middleware_stacks;
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
    pub(crate) h2_connections: usize,
    pub(crate) h2_streams: usize,
    pub(crate) callgrind_requests: u64,
    pub(crate) callgrind_h2: bool,
    pub(crate) callgrind_cache: bool,
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
            h2_connections: env_or("LOAD_H2_CONNECTIONS", 16),
            h2_streams: env_or("LOAD_H2_STREAMS", 32),
            callgrind_requests: env_or("LOAD_CALLGRIND_REQUESTS", 2000),
            callgrind_h2: env_or("LOAD_CALLGRIND_H2", 0u8) == 1,
            callgrind_cache: env_or("LOAD_CALLGRIND_CACHE", 0u8) == 1,
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
    if let Some(i) = args.iter().position(|a| a == "--middleware-calls") {
        let name = args
            .get(i + 1)
            .ok_or("--middleware-calls needs a stack name")?;
        let calls = args.get(i + 2).ok_or("--middleware-calls needs a count")?;
        return middleware::run_calls(name, calls.parse()?);
    }
    let suites: Vec<&str> = if args.is_empty() {
        vec!["http", "ws", "wsgi", "tower", "callgrind", "channels"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    // The in-process `middleware` suite runs no example server. The examples are built by
    // the first process, on every CPU, before it re-runs itself on the client CPU alone.
    if suites.iter().any(|suite| *suite != "middleware")
        && std::env::var_os("LOAD_PINNED").is_none()
    {
        process::build_examples()?;
    }
    if let Some(status) = process::pin_to_client_cpu(&args)? {
        std::process::exit(status);
    }
    let settings = Settings::from_env();
    process::raise_fd_limit(settings.idle_sockets as u64 * 2 + 1024);
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
                "callgrind" => callgrind_suite(&settings).await?,
                "channels" => channels::suite(&settings).await?,
                "middleware" => middleware::middleware_suite(&settings).await?,
                "api" => middleware::api_suite(&settings).await?,
                other => {
                    return Err(format!(
                        "unknown suite {other:?}: http, ws, wsgi, tower, callgrind, channels, middleware or api"
                    )
                    .into());
                }
            }
        }
        Ok(())
    })
}

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Runs `measure` against each server kind in turns, `rounds` times: every round measures
/// each kind once, one after the other.
async fn in_turns<F, Fut>(
    kinds: &[ServerKind],
    settings: &Settings,
    mut measure: F,
) -> BoxResult<Turns>
where
    F: FnMut(ServerKind, std::net::SocketAddr) -> Fut,
    Fut: std::future::Future<Output = BoxResult<f64>>,
{
    let mut rounds = Vec::with_capacity(settings.rounds);
    for _ in 0..settings.rounds {
        let mut round = Vec::with_capacity(kinds.len());
        for kind in kinds {
            let server = Server::start(*kind).await?;
            round.push(measure(*kind, server.addr()).await?);
            server.stop();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        rounds.push(round);
    }
    Ok(Turns { rounds })
}

/// What [`in_turns`] measured: each round's figures, in the order of its kinds.
pub(crate) struct Turns {
    rounds: Vec<Vec<f64>>,
}

impl Turns {
    /// Each kind's mean over the rounds.
    pub(crate) fn means(&self) -> Vec<f64> {
        let kinds = self.rounds.first().map_or(0, Vec::len);
        (0..kinds)
            .map(|i| {
                self.rounds.iter().map(|round| round[i]).sum::<f64>() / self.rounds.len() as f64
            })
            .collect()
    }

    /// The ratio of kind `i` to kind `base`, round by round: the median and the range, or
    /// nothing with fewer than two rounds. The kinds of one round are measured back to back
    /// and share the machine's load of that moment, so a round's ratio moves less with that
    /// load than the ratio of the means does.
    fn paired(&self, i: usize, base: usize) -> String {
        let mut ratios: Vec<f64> = self
            .rounds
            .iter()
            .map(|round| round[i] / round[base])
            .collect();
        if ratios.len() < 2 {
            return String::new();
        }
        ratios.sort_by(f64::total_cmp);
        let mid = ratios.len() / 2;
        let median = if ratios.len() % 2 == 0 {
            (ratios[mid - 1] + ratios[mid]) / 2.0
        } else {
            ratios[mid]
        };
        format!(
            " (round by round: median {median:.3}, {:.3}-{:.3} over {} rounds)",
            ratios[0],
            ratios[ratios.len() - 1],
            ratios.len()
        )
    }
}

/// Prints the rows of `turns` (see [`print_row`]) with each ratio to the baseline also
/// round by round ([`Turns::paired`]).
fn print_turns(name: &str, unit: &str, kinds: &[ServerKind], turns: &Turns) {
    print_row(name, unit, &zip(kinds, &turns.means()));
    let Some(base) = kinds.iter().position(|kind| kind.is_baseline()) else {
        return;
    };
    for (i, kind) in kinds.iter().enumerate() {
        let paired = turns.paired(i, base);
        if i != base && !paired.is_empty() {
            println!("  {:>10}/{}{paired}", kind.label(), kinds[base].label());
        }
    }
}

fn print_row(name: &str, unit: &str, values: &[(ServerKind, f64)]) {
    let base = values
        .iter()
        .find(|(k, _)| k.is_baseline())
        .map(|(_, v)| *v)
        .unwrap_or(f64::NAN);
    println!("{name}");
    for (kind, value) in values {
        print!("  {:>10}: {:>12.1} {unit}", kind.label(), value);
        if !kind.is_baseline() {
            print!(
                "  ratio {}/{} = {:.3}",
                kind.label(),
                baseline_label(values),
                value / base
            );
        }
        println!();
    }
}

fn baseline_label(values: &[(ServerKind, f64)]) -> &'static str {
    values
        .iter()
        .find(|(k, _)| k.is_baseline())
        .map_or("?", |(k, _)| k.label())
}

/// The hello rows: the project's server with the access log off and on, bare hyper and axum.
/// The baselines log nothing, in both rows: the access-log row prices the log against
/// servers that write none.
const HELLO_KINDS: [ServerKind; 4] = [
    ServerKind::Hello,
    ServerKind::HelloLogged,
    ServerKind::Hyper,
    ServerKind::Axum,
];

async fn http_suite(settings: &Settings) -> BoxResult<()> {
    println!(
        "== HTTP ({} connections, {} s per run, {} rounds)",
        settings.connections, settings.seconds, settings.rounds
    );
    let hello = in_turns(&HELLO_KINDS, settings, |kind, addr| {
        client::wrk(
            addr,
            kind.hello_path(),
            settings.connections,
            settings.seconds,
        )
    })
    .await?;
    print_turns(
        "hello over HTTP/1.1, wrk (requests/s)",
        "req/s",
        &HELLO_KINDS,
        &hello,
    );
    let means = hello.means();
    if let (Some(ours), Some(axum)) = (means.first(), means.get(3)) {
        println!(
            "  ratio asgi/axum = {:.3}{}",
            ours / axum,
            hello.paired(0, 3)
        );
    }
    let h2 = in_turns(&HELLO_KINDS, settings, |kind, addr| {
        client::h2load(
            addr,
            kind.hello_path(),
            settings.h2_connections,
            settings.h2_streams,
            settings.seconds,
        )
    })
    .await?;
    print_turns(
        &format!(
            "hello over h2c, h2load {} connections x {} streams (requests/s)",
            settings.h2_connections, settings.h2_streams
        ),
        "req/s",
        &HELLO_KINDS,
        &h2,
    );
    let means = h2.means();
    if let (Some(ours), Some(axum)) = (means.first(), means.get(3)) {
        println!("  ratio asgi/axum = {:.3}{}", ours / axum, h2.paired(0, 3));
    }

    // One transfer takes about half a second, so each runs `rounds` times, in turns with
    // hyper's, on a fresh server: the mean rate, and the highest peak RSS of any round.
    let kinds = [ServerKind::Asgi, ServerKind::Hyper];
    for (name, upload) in [("download (MiB/s)", false), ("upload (MiB/s)", true)] {
        let mut rates = [0.0; 2];
        let mut peaks = [0u64; 2];
        for _ in 0..settings.rounds {
            for (i, kind) in kinds.into_iter().enumerate() {
                let server = Server::start(kind).await?;
                rates[i] += if upload {
                    client::upload(server.addr(), kind.upload_path(), settings.stream_bytes).await?
                } else {
                    client::download(server.addr(), settings.stream_bytes).await?
                };
                peaks[i] = peaks[i].max(server.peak_rss_kib()?);
                server.stop();
            }
        }
        let rows: Vec<_> = kinds
            .into_iter()
            .zip(rates.map(|sum| sum / settings.rounds as f64))
            .collect();
        print_row(name, "MiB/s", &rows);
        for (kind, peak) in kinds.into_iter().zip(peaks) {
            println!(
                "  {:>10}: peak RSS {:.1} MiB",
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
    print_turns("echo (messages/s)", "msg/s", &kinds, &echo);

    for kind in kinds {
        let server = Server::start(kind).await?;
        let before = server.rss_kib()?;
        let url = format!("ws://{}{}", server.addr(), kind.ws_path());
        let sockets = client::ws_open_idle(&url, settings.idle_sockets).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = server.rss_kib()?;
        println!(
            "idle WebSockets\n  {:>10}: {} idle sockets: RSS {:.1} MiB (+{:.1} MiB, {:.1} KiB per socket)",
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
    print_turns(
        "WSGI hello over HTTP/1.1, wrk (requests/s)",
        "req/s",
        &kinds,
        &hello,
    );
    let means = hello.means();
    if let (Some(wsgi), Some(ours)) = (means.first(), means.get(1)) {
        println!(
            "  ratio asgi-wsgi/asgi = {:.3}{}",
            wsgi / ours,
            hello.paired(0, 1)
        );
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
        "upload via wsgi.input\n  {:>10}: {:.1} MiB/s, peak RSS {:.1} MiB",
        ServerKind::AsgiWsgi.label(),
        mib_s,
        peak as f64 / 1024.0
    );
    Ok(())
}

fn zip(kinds: &[ServerKind], values: &[f64]) -> Vec<(ServerKind, f64)> {
    kinds.iter().copied().zip(values.iter().copied()).collect()
}

/// The servers whose instructions per request the `callgrind` suite counts, hyper first;
/// the tower adapters last, to be read against the `axum` row.
const CALLGRIND_KINDS: [ServerKind; 8] = [
    ServerKind::Hyper,
    ServerKind::Axum,
    ServerKind::Hello,
    ServerKind::HelloLogged,
    ServerKind::HelloRaw,
    ServerKind::AsgiWsgi,
    ServerKind::AsgiService,
    ServerKind::TowerApp,
];

/// Instructions per request, counted by callgrind: each server runs under
/// `valgrind --tool=callgrind` twice, serving `n` and then `2n` keep-alive hellos from the
/// same client on one connection, and exits on SIGTERM; `(instr(2n) - instr(n)) / n` is the
/// cost of one request, start-up and shutdown cancelled out. Only the server process's
/// user-space instructions are counted (all its threads; the client runs outside valgrind).
async fn callgrind_suite(settings: &Settings) -> BoxResult<()> {
    let n = settings.callgrind_requests.max(1);
    let over = if settings.callgrind_h2 {
        format!("h2c, {} streams at a time", settings.h2_streams)
    } else {
        "HTTP/1.1 keep-alive".to_owned()
    };
    println!(
        "== Instructions per request (callgrind, {n} and {} hellos, {over})",
        2 * n
    );
    let keep = std::env::var_os("LOAD_CALLGRIND_KEEP").map(std::path::PathBuf::from);
    let dir = keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("asgi-load-callgrind-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir)?;
    let only = std::env::var("LOAD_CALLGRIND_ONLY").ok();
    let counted = |kind: ServerKind| {
        kind == ServerKind::Hyper
            || only
                .as_deref()
                .is_none_or(|only| only.split(',').any(|label| label == kind.label()))
    };
    let mut hyper = f64::NAN;
    for kind in CALLGRIND_KINDS.into_iter().filter(|&kind| counted(kind)) {
        let h2 = settings.callgrind_h2.then_some(settings.h2_streams);
        let cache = settings.callgrind_cache;
        let once = callgrind_count(kind, n, h2, cache, &dir).await?;
        let twice = callgrind_count(kind, 2 * n, h2, cache, &dir).await?;
        let per_request = |count: fn(&Counts) -> u64| {
            count(&twice).saturating_sub(count(&once)) as f64 / n as f64
        };
        let instructions = per_request(|c| c.instructions);
        if kind == ServerKind::Hyper {
            hyper = instructions;
        }
        let misses = if cache {
            format!(
                "  L1 misses per request: instructions {:.0}, data {:.0}",
                per_request(|c| c.i1_misses),
                per_request(|c| c.d1_misses)
            )
        } else {
            String::new()
        };
        println!(
            "  {:>10} {:<12} {:>8.1}k instructions per request  {:.2}x hyper{misses}",
            kind.label(),
            kind.hello_path(),
            instructions / 1000.0,
            instructions / hyper
        );
    }
    match keep {
        Some(_) => println!("  counts kept in {}", dir.display()),
        None => {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    Ok(())
}

/// What the server of `kind` ran in all, serving `requests` hellos: over HTTP/1.1 one at a
/// time, or over h2c with `h2_streams` streams at a time; with the first-level caches
/// simulated when `cache_sim` is set.
async fn callgrind_count(
    kind: ServerKind,
    requests: u64,
    h2_streams: Option<usize>,
    cache_sim: bool,
    dir: &std::path::Path,
) -> BoxResult<Counts> {
    let protocol = if h2_streams.is_some() { "h2-" } else { "" };
    let out = dir.join(format!("{}-{protocol}{requests}.out", kind.label()));
    let launch = process::Launch::Callgrind {
        out: out.clone(),
        cache_sim,
    };
    let server = Server::launch(kind, launch).await?;
    match h2_streams {
        Some(streams) => {
            client::h2_gets(server.addr(), kind.hello_path(), requests, streams).await?;
        }
        None => client::keep_alive_gets(server.addr(), kind.hello_path(), requests).await?,
    }
    server.terminate()?;
    Counts::read(&out)
}

/// The totals of a callgrind output file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counts {
    /// Instructions run.
    pub(crate) instructions: u64,
    /// First-level instruction cache misses (0 without the cache simulation).
    pub(crate) i1_misses: u64,
    /// First-level data cache misses, reads and writes (0 without the cache simulation).
    pub(crate) d1_misses: u64,
}

impl Counts {
    /// Reads the `summary:` (or `totals:`) line of `out`, whose columns the `events:` line
    /// names.
    pub(crate) fn read(out: &std::path::Path) -> BoxResult<Counts> {
        let text = std::fs::read_to_string(out)?;
        let line = |prefix: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(prefix))
                .map(|v| v.split_whitespace().collect::<Vec<_>>())
        };
        let events = line("events:").unwrap_or_default();
        let totals = line("summary:")
            .or_else(|| line("totals:"))
            .ok_or_else(|| format!("no totals in {}", out.display()))?;
        let event = |name: &str| -> u64 {
            (events.iter().position(|e| *e == name))
                .and_then(|at| totals.get(at))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let instructions = event("Ir");
        if instructions == 0 {
            return Err(format!("no instruction total in {}", out.display()).into());
        }
        Ok(Counts {
            instructions,
            i1_misses: event("I1mr"),
            d1_misses: event("D1mr") + event("D1mw"),
        })
    }
}
