//! A small JSON API behind the everyday middleware: sessions for a login, static files for
//! its page, compression, CORS, request ids and trusted hosts, stacked in one documented
//! order (drawn in `app.rs`).
//!
//! ```sh
//! cargo run --example api                                  # http://127.0.0.1:8000/
//! cargo run --example api -- --cors-origin http://localhost:3000 --cors-origin http://127.0.0.1:8001
//! curl -i -H 'accept-encoding: gzip' http://127.0.0.1:8000/api/items --compressed
//! ```
//!
//! Options: `--bind ADDR` (default `127.0.0.1:8000`), `--uds PATH`, `--cors-origin ORIGIN`
//! (repeatable; default `http://127.0.0.1:8001`). The session key comes from
//! `API_SESSION_SECRET` (at least 32 bytes) or is made at random at startup (sessions then
//! end with the process).

mod app;

use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::ExitCode;

use asgi::server::server::{DEFAULT_BIND, Server};
use tracing_subscriber::EnvFilter;

const USAGE: &str = "options:
  --bind ADDR           listen on this TCP address (default 127.0.0.1:8000)
  --uds PATH            listen on a Unix domain socket instead
  --cors-origin ORIGIN  allow this CORS origin (repeatable; default http://127.0.0.1:8001)
environment:
  API_SESSION_SECRET    the session signing key, at least 32 bytes (default: random)
  RUST_LOG              log filter (default info)";

enum Listen {
    Tcp(std::net::SocketAddr),
    Unix(PathBuf),
}

fn parse_args() -> Result<(Listen, Vec<String>), String> {
    let mut listen = Listen::Tcp(DEFAULT_BIND);
    let mut origins = Vec::new();
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
                listen = Listen::Unix(PathBuf::from(args.next().ok_or("--uds needs a path")?))
            }
            "--cors-origin" => origins.push(args.next().ok_or("--cors-origin needs an origin")?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if origins.is_empty() {
        origins.push(app::DEFAULT_CORS_ORIGIN.to_owned());
    }
    Ok((listen, origins))
}

fn secret() -> Result<Vec<u8>, String> {
    match std::env::var("API_SESSION_SECRET") {
        Ok(secret) if secret.len() >= 32 => Ok(secret.into_bytes()),
        Ok(_) => Err("API_SESSION_SECRET must be at least 32 bytes".to_owned()),
        Err(_) => Ok(random_secret().into_bytes()),
    }
}

/// A random key: two v4 UUIDs, from the operating system's random source.
fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

#[tokio::main]
async fn main() -> ExitCode {
    let (listen, origins) = match parse_args() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let secret = match secret() {
        Ok(secret) => secret,
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
    let app = match app::api(&origins, &secret) {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("cannot serve {}: {e}", app::static_dir().display());
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(?origins, "CORS origins allowed");
    let builder = match listen {
        Listen::Tcp(addr) => Server::builder().bind(addr),
        Listen::Unix(path) => Server::builder().unix_socket(path),
    };
    match builder.serve(app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}
