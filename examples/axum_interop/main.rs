//! An axum router and ASGI apps in one server, both ways (see `app.rs` for the routes).
//!
//! ```sh
//! cargo run --example axum_interop                  # this project's server
//! cargo run --example axum_interop -- --axum-serve  # axum::serve, the ASGI parts nested
//! curl http://127.0.0.1:8000/axum/hello             # Hello from axum
//! curl http://127.0.0.1:8000/asgi/hello             # Hello from ASGI
//! curl http://127.0.0.1:8000/legacy/                # the WSGI app
//! curl -d 'ping' http://127.0.0.1:8000/axum/echo    # ping
//! ```
//!
//! Options: `--bind ADDR` (default `127.0.0.1:8000`), `--uds PATH` (this project's server
//! only), `--axum-serve`.

#[path = "../common/mod.rs"]
mod common;

mod app;

use std::net::SocketAddr;
use std::process::ExitCode;

use asgi::core::host::Shutdown;
use asgi::server::server::DEFAULT_BIND;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let Some(i) = args.iter().position(|a| a == "--axum-serve") else {
        return common::run(app::served_by_asgi()).await;
    };
    args.remove(i);
    let bind = match args.as_slice() {
        [] => DEFAULT_BIND,
        [flag, addr] if flag == "--bind" => match addr.parse() {
            Ok(addr) => addr,
            Err(e) => {
                eprintln!("--bind {addr}: {e}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("with --axum-serve: only --bind ADDR");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match axum_serve(bind).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Serves the tree with `axum::serve` until SIGINT or SIGTERM.
async fn axum_serve(bind: SocketAddr) -> std::io::Result<()> {
    let shutdown = Shutdown::new();
    let router = app::served_by_axum(shutdown.signal());
    let listener = tokio::net::TcpListener::bind(bind).await?;
    tracing::info!("axum::serve listening on http://{}", listener.local_addr()?);
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("a SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            shutdown.trigger();
        })
        .await
}
