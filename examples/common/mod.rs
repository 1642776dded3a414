//! What every serving example shares: `--bind ADDR` / `--uds PATH`, logging with `RUST_LOG`,
//! and the exit status (3 when lifespan startup failed, as uvicorn does).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use asgi::core::App;
use asgi::http::server::{Builder, DEFAULT_BIND, Server};
use tracing_subscriber::EnvFilter;

/// The exit status when the app's lifespan startup failed (uvicorn's `STARTUP_FAILURE`).
pub(crate) const STARTUP_FAILURE: u8 = 3;

/// Where to listen, from the command line.
enum Listen {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

const USAGE: &str = "options:
  --bind ADDR   listen on this TCP address (default 127.0.0.1:8000)
  --uds PATH    listen on a Unix domain socket instead
environment:
  RUST_LOG      log filter (default info)";

fn parse_args() -> Result<Listen, String> {
    let mut listen = Listen::Tcp(DEFAULT_BIND);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bind" => {
                let value = args.next().ok_or("--bind needs an address")?;
                let addr = value
                    .to_socket_addrs()
                    .map_err(|e| format!("--bind {value}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("--bind {value}: resolves to nothing"))?;
                listen = Listen::Tcp(addr);
            }
            "--uds" => {
                let value = args.next().ok_or("--uds needs a path")?;
                listen = Listen::Unix(PathBuf::from(value));
            }
            // Options of one example, read by it with `option_values`.
            option if EXAMPLE_OPTIONS.contains(&option) => {
                args.next();
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(listen)
}

/// Options that take a value and that one example reads itself: `--redis URL` (chat).
const EXAMPLE_OPTIONS: &[&str] = &["--redis"];

/// The values given to `option` (an entry of `EXAMPLE_OPTIONS`), in order.
#[allow(dead_code)] // Only the examples with options of their own call it.
pub(crate) fn option_values(option: &str) -> Vec<String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    args.windows(2)
        .filter(|pair| pair[0] == option)
        .map(|pair| pair[1].clone())
        .collect()
}

/// Parses the command line, sets up logging, and serves `app` until SIGINT/SIGTERM.
#[allow(dead_code)] // Each example compiles this module on its own and uses one of the two.
pub(crate) async fn run(app: impl App) -> ExitCode {
    run_with(app, |builder| builder).await
}

/// Like [`run`], with the server's settings adjusted by `configure`.
#[allow(dead_code)]
pub(crate) async fn run_with(
    app: impl App,
    configure: impl FnOnce(Builder) -> Builder,
) -> ExitCode {
    let listen = match parse_args() {
        Ok(listen) => listen,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let builder = match listen {
        Listen::Tcp(addr) => Server::builder().bind(addr),
        Listen::Unix(path) => Server::builder().unix_socket(path),
    };
    match configure(builder).serve(app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is_startup_failed() => {
            tracing::error!("{err}");
            ExitCode::from(STARTUP_FAILURE)
        }
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}
