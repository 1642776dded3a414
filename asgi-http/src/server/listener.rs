//! The listening socket: TCP or a Unix domain socket, and what the scope learns from each
//! accepted connection.

use std::io;
use std::net::SocketAddr;
#[cfg(unix)]
use std::path::{Path, PathBuf};
use std::time::Duration;

use asgi_core::ServerAddr;
use tokio::net::{TcpListener, TcpStream};
#[cfg(unix)]
use tokio::net::{UnixListener, UnixStream};

use super::config::{Config, Listen};

/// How long the accept loop pauses after an error that is not about one connection (out of
/// file descriptors, out of memory): 100 ms lets connections close and resources come back
/// without spinning on the error. Not a setting: it only matters when the process is already
/// starved.
pub(crate) const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// A bound listener.
#[derive(Debug)]
pub(crate) enum Listener {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix {
        listener: UnixListener,
        path: PathBuf,
    },
}

/// An accepted connection's stream.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

/// What a connection's scopes say about its ends.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    /// `client`: the peer's address; `None` for Unix sockets.
    pub(crate) client: Option<SocketAddr>,
    /// `server`: the local address of the connection, or the socket path.
    pub(crate) server: ServerAddr,
}

impl Listener {
    /// Binds (or adopts) the listening socket.
    #[cfg_attr(not(unix), allow(unused_variables))]
    pub(crate) async fn bind(listen: Listen, config: &Config) -> io::Result<Listener> {
        match listen {
            Listen::Addr(addr) => Ok(Listener::Tcp(TcpListener::bind(addr).await?)),
            Listen::Listener(listener) => Ok(Listener::Tcp(listener)),
            #[cfg(unix)]
            Listen::Unix(path) => {
                remove_stale_socket(&path)?;
                let listener = UnixListener::bind(&path)?;
                if let Some(mode) = config.unix_socket_mode {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
                }
                Ok(Listener::Unix { listener, path })
            }
        }
    }

    /// The address scopes report as `server` for the listener itself.
    pub(crate) fn local_addr(&self) -> io::Result<ServerAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().map(ServerAddr::Tcp),
            #[cfg(unix)]
            Listener::Unix { path, .. } => Ok(ServerAddr::Unix(path.clone())),
        }
    }

    /// Accepts one connection.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as tokio's `accept` is: no connection is lost when the future is dropped.
    pub(crate) async fn accept(&self) -> io::Result<(Stream, ConnInfo)> {
        match self {
            Listener::Tcp(l) => {
                let (stream, peer) = l.accept().await?;
                // Responses are written in few, whole writes; Nagle's algorithm would only
                // delay the last segment of each.
                stream.set_nodelay(true)?;
                let local = stream.local_addr()?;
                Ok((
                    Stream::Tcp(stream),
                    ConnInfo {
                        client: Some(peer),
                        server: ServerAddr::Tcp(local),
                    },
                ))
            }
            #[cfg(unix)]
            Listener::Unix { listener, path } => {
                let (stream, _) = listener.accept().await?;
                Ok((
                    Stream::Unix(stream),
                    ConnInfo {
                        client: None,
                        server: ServerAddr::Unix(path.clone()),
                    },
                ))
            }
        }
    }

    /// Stops listening; a Unix socket's file is removed.
    pub(crate) fn close(self) {
        match self {
            Listener::Tcp(l) => drop(l),
            #[cfg(unix)]
            Listener::Unix { listener, path } => {
                drop(listener);
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove the Unix socket file");
                }
            }
        }
    }
}

/// True for accept errors that concern one connection only (it was reset before we took it):
/// the loop goes on at once. Others mean the process is short of something, and the loop
/// backs off for [`ACCEPT_ERROR_BACKOFF`].
pub(crate) fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// Makes room for a Unix socket at `path`: a socket file nobody listens on (left by a process
/// that is gone) is removed; a live socket or a file that is not a socket is an error, never
/// deleted.
#[cfg(unix)]
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;

    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    // A connect to a Unix socket answers at once: refused means nobody listens.
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("another server is listening on {}", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing stale Unix socket file");
            std::fs::remove_file(path)
        }
        Err(e) => Err(e),
    }
}
