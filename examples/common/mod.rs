//! What every serving example shares: where to listen (`--bind ADDR`, `--uds PATH`, or an
//! inherited socket with `--fd N`), TLS (`--tls-cert`, `--tls-key`, `--tls-client-ca`,
//! `--tls-client-auth`),
//! proxy headers (`--proxy-headers` / `--no-proxy-headers`, `--forwarded-allow-ips`),
//! logging with `RUST_LOG`, and the exit status (3 when lifespan startup failed, as uvicorn
//! does).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use asgi::core::App;
use asgi::server::middleware::proxy_headers::TrustedProxies;
use asgi::server::server::{
    Builder, ClientAuth, DEFAULT_BIND, InheritedListener, Server, TlsConfig,
};

/// The exit status when the app's lifespan startup failed (uvicorn's `STARTUP_FAILURE`).
pub(crate) const STARTUP_FAILURE: u8 = 3;

/// Where to listen, from the command line.
enum Listen {
    Tcp(SocketAddr),
    Unix(PathBuf),
    /// A socket passed down by systemd or `systemfd` (`LISTEN_FDS`), at this descriptor.
    Fd(u32),
}

/// The command line.
struct Args {
    listen: Listen,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    tls_client_auth: Option<ClientAuth>,
    proxy_headers: bool,
    forwarded_allow_ips: Option<TrustedProxies>,
}

const USAGE: &str = "options:
  --bind ADDR                 listen on this TCP address (default 127.0.0.1:8000)
  --uds PATH                  listen on a Unix domain socket instead
  --fd N                      listen on the socket inherited at file descriptor N (systemd
                              socket activation, systemfd; the first one is 3)
  --tls-cert PATH             serve HTTPS with this PEM certificate chain (needs --tls-key)
  --tls-key PATH              the PEM private key of --tls-cert
  --tls-client-ca PATH        check client certificates against the CAs in this PEM file
  --tls-client-auth MODE      what --tls-client-ca asks of clients: `required` (the
                              default: no valid certificate, no handshake), `optional` (no
                              certificate is allowed; an invalid one is refused) or
                              `report-errors` (any certificate is let through, and the
                              scope's tls extension says why an invalid one was not trusted)
  --proxy-headers             believe X-Forwarded-For/-Proto and Forwarded from trusted
                              peers (the default)
  --no-proxy-headers          ignore them
  --forwarded-allow-ips LIST  the trusted peers: IPs, CIDRs, `unix`, `*` (default
                              127.0.0.1,unix)
environment:
  RUST_LOG                    log filter (default info)
signals:
  SIGINT, SIGTERM             graceful shutdown (a second one stops at once)
  SIGHUP                      reload the TLS certificate files";

fn parse_args() -> Result<Args, String> {
    let mut parsed = Args {
        listen: Listen::Tcp(DEFAULT_BIND),
        tls_cert: None,
        tls_key: None,
        tls_client_ca: None,
        tls_client_auth: None,
        proxy_headers: true,
        forwarded_allow_ips: None,
    };
    let mut args = std::env::args().skip(1);
    let path = |args: &mut std::iter::Skip<std::env::Args>, flag: &str| {
        args.next()
            .map(PathBuf::from)
            .ok_or_else(|| format!("{flag} needs a path"))
    };
    while let Some(arg) = args.next() {
        let listen = &mut parsed.listen;
        match arg.as_str() {
            "--fd" => {
                let value = args.next().ok_or("--fd needs a file descriptor number")?;
                let fd = value
                    .parse()
                    .map_err(|_| format!("--fd {value}: not a file descriptor number"))?;
                *listen = Listen::Fd(fd);
            }
            "--tls-cert" => parsed.tls_cert = Some(path(&mut args, "--tls-cert")?),
            "--tls-key" => parsed.tls_key = Some(path(&mut args, "--tls-key")?),
            "--tls-client-ca" => parsed.tls_client_ca = Some(path(&mut args, "--tls-client-ca")?),
            "--tls-client-auth" => {
                let value = args.next().ok_or("--tls-client-auth needs a mode")?;
                parsed.tls_client_auth = Some(match value.as_str() {
                    "required" => ClientAuth::Required,
                    "optional" => ClientAuth::Optional,
                    "report-errors" => ClientAuth::OptionalReportErrors,
                    other => {
                        return Err(format!(
                            "--tls-client-auth {other:?}: one of required, optional, report-errors"
                        ));
                    }
                });
            }
            "--proxy-headers" => parsed.proxy_headers = true,
            "--no-proxy-headers" => parsed.proxy_headers = false,
            "--forwarded-allow-ips" => {
                let value = args.next().ok_or("--forwarded-allow-ips needs a list")?;
                let trusted = value
                    .parse()
                    .map_err(|e| format!("--forwarded-allow-ips {value}: {e}"))?;
                parsed.forwarded_allow_ips = Some(trusted);
            }
            "--bind" => {
                let value = args.next().ok_or("--bind needs an address")?;
                let addr = value
                    .to_socket_addrs()
                    .map_err(|e| format!("--bind {value}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("--bind {value}: resolves to nothing"))?;
                *listen = Listen::Tcp(addr);
            }
            "--uds" => {
                let value = args.next().ok_or("--uds needs a path")?;
                *listen = Listen::Unix(PathBuf::from(value));
            }
            // Options of one example, read by it with `option_values`.
            option if EXAMPLE_OPTIONS.contains(&option) => {
                args.next();
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if parsed.tls_cert.is_some() != parsed.tls_key.is_some() {
        return Err("--tls-cert and --tls-key go together".to_owned());
    }
    if parsed.tls_client_ca.is_some() && parsed.tls_cert.is_none() {
        return Err("--tls-client-ca needs --tls-cert and --tls-key".to_owned());
    }
    if parsed.tls_client_auth.is_some() && parsed.tls_client_ca.is_none() {
        return Err("--tls-client-auth needs --tls-client-ca".to_owned());
    }
    Ok(parsed)
}

/// The server's builder for the command line.
fn builder(args: Args) -> Result<Builder, String> {
    let mut builder = match args.listen {
        Listen::Tcp(addr) => Server::builder().bind(addr),
        Listen::Unix(path) => Server::builder().unix_socket(path),
        Listen::Fd(fd) => {
            let listener = InheritedListener::from_fd(fd).map_err(|e| format!("--fd {fd}: {e}"))?;
            Server::builder().listener(listener)
        }
    };
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        let mut tls = TlsConfig::new(cert, key);
        if let Some(ca) = args.tls_client_ca {
            tls = tls.client_ca(ca, args.tls_client_auth.unwrap_or(ClientAuth::Required));
        }
        builder = builder.tls(tls);
    }
    builder = match args.forwarded_allow_ips {
        Some(trusted) => builder.forwarded_allow_ips(trusted),
        None => builder,
    };
    Ok(builder.proxy_headers(args.proxy_headers))
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
    let builder = match parse_args().and_then(builder) {
        Ok(builder) => builder,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    // Lines go out through a bounded non-blocking writer; the guard flushes them at exit and
    // reports any that were dropped.
    let _logging = asgi::server::logging::init();
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
