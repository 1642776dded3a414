//! Where connections come from: the [`Listener`] trait, what the server knows of each
//! accepted connection's far end ([`Peer`]), and the TCP and Unix domain socket listeners.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
#[cfg(unix)]
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use asgi_core::ServerAddr;
use asgi_core::extensions::TlsInfo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
#[cfg(unix)]
use tokio::net::{UnixListener, UnixStream};

/// How long the accept loop pauses after an error that is not about one connection (out of
/// file descriptors, out of memory): 100 ms lets connections close and resources come back
/// without spinning on the error. Not a setting: it only matters when the process is already
/// starved.
pub(crate) const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// A source of accepted connections, shaped like axum's `Listener`.
///
/// The server accepts on one listener: tokio's [`TcpListener`] and [`UnixListener`]
/// implement it, and so can any type of yours (a socket inherited from a supervisor, a
/// listener that wraps another one and runs a TLS handshake). Serve on it with
/// [`Builder::listener`](super::Builder::listener).
///
/// # Example
///
/// A listener that counts the connections it accepts, over a TCP listener:
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// use asgi_core::ServerAddr;
/// use asgi_http::server::{Listener, Peer};
///
/// struct Counting {
///     inner: tokio::net::TcpListener,
///     accepted: Arc<AtomicUsize>,
/// }
///
/// impl Listener for Counting {
///     type Io = tokio::net::TcpStream;
///
///     async fn accept(&mut self) -> std::io::Result<(Self::Io, Peer)> {
///         let accepted = self.inner.accept().await?;
///         self.accepted.fetch_add(1, Ordering::Relaxed);
///         accepted.0.set_nodelay(true)?;
///         Ok((accepted.0, Peer::tcp(accepted.1)))
///     }
///
///     fn local_addr(&self) -> std::io::Result<ServerAddr> {
///         self.inner.local_addr().map(ServerAddr::Tcp)
///     }
/// }
/// ```
///
/// # Errors
///
/// An `Err` from [`accept`](Listener::accept) is an accept error: the server skips errors
/// that concern one connection (`ECONNABORTED`, `ECONNRESET`, ...) and backs off for a
/// moment on the others (`EMFILE`, `ENOMEM`, ...), then accepts again.
///
/// # Cancel safety
///
/// The server drops a pending `accept` future when it starts draining; a listener whose
/// `accept` is cancel safe (tokio's are) loses no connection then.
pub trait Listener: Send + 'static {
    /// The accepted byte stream.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Waits for the next connection. An `Err` is an accept error: the server skips
    /// per-connection errors (ECONNABORTED, ...) and backs off on the others (EMFILE, ...).
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Io, Peer)>> + Send;

    /// Where it listens (the scope's `server` for its connections).
    fn local_addr(&self) -> io::Result<ServerAddr>;
}

/// What the server knows of an accepted connection's far end.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Peer {
    /// The peer's address (`scope.client`); `None` over a Unix socket.
    pub client: Option<SocketAddr>,
    /// The connection is encrypted: the scope's scheme is `https` / `wss`.
    pub secure: bool,
    /// The ASGI TLS extension's data (`scope["extensions"]["tls"]`) of an encrypted
    /// connection, shared by all its scopes.
    pub tls: Option<Arc<TlsInfo>>,
}

impl Peer {
    /// A TCP peer at `addr`, not encrypted.
    pub fn tcp(addr: SocketAddr) -> Peer {
        Peer {
            client: Some(addr),
            secure: false,
            tls: None,
        }
    }

    /// A Unix domain socket peer: it has no address.
    pub fn unix() -> Peer {
        Peer::default()
    }

    /// The same peer, marked as encrypted (`true`) or not.
    pub fn secure(mut self, secure: bool) -> Peer {
        self.secure = secure;
        self
    }
}

/// Accepted sockets get `TCP_NODELAY`: responses are written in few, whole writes, and
/// Nagle's algorithm would only delay the last segment of each.
impl Listener for TcpListener {
    type Io = TcpStream;

    async fn accept(&mut self) -> io::Result<(TcpStream, Peer)> {
        let (stream, addr) = TcpListener::accept(self).await?;
        stream.set_nodelay(true)?;
        Ok((stream, Peer::tcp(addr)))
    }

    fn local_addr(&self) -> io::Result<ServerAddr> {
        TcpListener::local_addr(self).map(ServerAddr::Tcp)
    }
}

/// The scope's `server` is the socket's path; an unnamed socket is an error.
#[cfg(unix)]
impl Listener for UnixListener {
    type Io = UnixStream;

    async fn accept(&mut self) -> io::Result<(UnixStream, Peer)> {
        let (stream, _) = UnixListener::accept(self).await?;
        Ok((stream, Peer::unix()))
    }

    fn local_addr(&self) -> io::Result<ServerAddr> {
        let addr = UnixListener::local_addr(self)?;
        match addr.as_pathname() {
            Some(path) => Ok(ServerAddr::Unix(path.to_owned())),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the Unix socket has no path",
            )),
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

/// Binds a Unix domain socket at `path` with the permission bits `mode`, replacing a stale
/// socket file.
#[cfg(unix)]
pub(crate) fn bind_unix(path: &Path, mode: Option<u32>) -> io::Result<UnixListener> {
    remove_stale_socket(path)?;
    let listener = UnixListener::bind(path)?;
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(listener)
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
