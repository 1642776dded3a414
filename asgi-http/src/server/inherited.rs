//! Listening sockets inherited from the parent process: systemd socket activation
//! (`LISTEN_FDS`), `systemfd` in development, or any supervisor that keeps the socket open
//! across restarts.

use std::io;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};

use asgi_core::ServerAddr;
use listenfd::ListenFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
#[cfg(unix)]
use tokio::net::UnixListener;

use super::listener::{Listener, Peer};

/// The first inherited file descriptor, as systemd numbers them (`SD_LISTEN_FDS_START`).
pub const FIRST_INHERITED_FD: u32 = 3;

/// The sockets the parent passed, read from the environment once: `listenfd` removes the
/// variables as it reads them, so a second read would find nothing.
fn inherited() -> &'static Mutex<ListenFd> {
    static FDS: OnceLock<Mutex<ListenFd>> = OnceLock::new();
    FDS.get_or_init(|| Mutex::new(ListenFd::from_env()))
}

/// A listening socket (TCP or Unix) that the parent process passed down, as systemd does for
/// socket activation (`LISTEN_FDS`; `LISTEN_PID` when set must be this process), and as
/// `systemfd --no-pid` does in development.
///
/// The socket outlives any one server process: while the parent holds it, connections that
/// arrive between an old process and a new one wait in the kernel's listen backlog instead
/// of being refused. That is what makes a restart lose nothing (see the README, "Deploying").
///
/// # Example
///
/// ```no_run
/// use asgi_http::server::{InheritedListener, Server};
/// # async fn app(_: asgi_core::Scope, _: asgi_core::Receiver, _: asgi_core::Sender) -> Result<(), asgi_core::Error> { Ok(()) }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// // systemd passes the first socket of the unit as file descriptor 3.
/// let listener = InheritedListener::from_fd(3)?;
/// Server::builder().listener(listener).serve(app).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct InheritedListener {
    socket: Socket,
}

#[derive(Debug)]
enum Socket {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(UnixListener),
}

impl InheritedListener {
    /// Takes the inherited listening socket at file descriptor `fd` (3 is the first).
    ///
    /// Call it inside a tokio runtime. The environment (`LISTEN_FDS`, `LISTEN_PID`) is read
    /// on the first call, before anything else in the process reads or changes it.
    ///
    /// # Errors
    ///
    /// When the parent passed no socket at `fd` (or it was taken already), or when it is
    /// not a listening TCP or Unix stream socket.
    pub fn from_fd(fd: u32) -> io::Result<InheritedListener> {
        let index = fd.checked_sub(FIRST_INHERITED_FD).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "inherited sockets start at file descriptor {FIRST_INHERITED_FD}, not {fd}"
                ),
            )
        })? as usize;
        let mut fds = inherited().lock().unwrap_or_else(|e| e.into_inner());
        let missing = || {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "no inherited socket at file descriptor {fd} (LISTEN_FDS passed {})",
                    fds_len_hint()
                ),
            )
        };
        let socket = match fds.take_tcp_listener(index) {
            Ok(Some(listener)) => {
                listener.set_nonblocking(true)?;
                Socket::Tcp(TcpListener::from_std(listener)?)
            }
            Ok(None) => return Err(missing()),
            #[cfg(unix)]
            Err(_) => match fds.take_unix_listener(index)? {
                Some(listener) => {
                    listener.set_nonblocking(true)?;
                    Socket::Unix(UnixListener::from_std(listener)?)
                }
                None => return Err(missing()),
            },
            #[cfg(not(unix))]
            Err(e) => return Err(e),
        };
        Ok(InheritedListener { socket })
    }
}

/// How many sockets the parent passed, for error messages.
fn fds_len_hint() -> String {
    match inherited().try_lock() {
        Ok(fds) => fds.len().to_string(),
        Err(_) => "some".to_owned(),
    }
}

impl Listener for InheritedListener {
    type Io = InheritedStream;

    async fn accept(&mut self) -> io::Result<(InheritedStream, Peer)> {
        match &mut self.socket {
            Socket::Tcp(listener) => {
                let (stream, peer) = Listener::accept(listener).await?;
                Ok((InheritedStream::Tcp(stream), peer))
            }
            #[cfg(unix)]
            Socket::Unix(listener) => {
                let (stream, peer) = Listener::accept(listener).await?;
                Ok((InheritedStream::Unix(stream), peer))
            }
        }
    }

    fn local_addr(&self) -> io::Result<ServerAddr> {
        match &self.socket {
            Socket::Tcp(listener) => Listener::local_addr(listener),
            #[cfg(unix)]
            Socket::Unix(listener) => Listener::local_addr(listener),
        }
    }
}

/// A connection accepted on an [`InheritedListener`]: TCP or Unix.
#[derive(Debug)]
#[non_exhaustive]
pub enum InheritedStream {
    /// Over TCP.
    Tcp(tokio::net::TcpStream),
    /// Over a Unix domain socket.
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

/// Forwards a call to the stream inside, which is `Unpin`.
macro_rules! each_stream {
    ($self:ident, $stream:ident => $call:expr) => {
        match $self.get_mut() {
            InheritedStream::Tcp($stream) => $call,
            #[cfg(unix)]
            InheritedStream::Unix($stream) => $call,
        }
    };
}

impl AsyncRead for InheritedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each_stream!(self, stream => Pin::new(stream).poll_read(cx, buf))
    }
}

impl AsyncWrite for InheritedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each_stream!(self, stream => Pin::new(stream).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each_stream!(self, stream => Pin::new(stream).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            InheritedStream::Tcp(stream) => stream.is_write_vectored(),
            #[cfg(unix)]
            InheritedStream::Unix(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each_stream!(self, stream => Pin::new(stream).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each_stream!(self, stream => Pin::new(stream).poll_shutdown(cx))
    }
}
