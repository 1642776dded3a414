//! The accept loop: connections from a [`Listener`] until the server drains, each served in
//! a task of its own under `max_connections`.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
#[cfg(unix)]
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use asgi_core::ServerAddr;
use tokio::sync::Semaphore;

use super::connection;
use super::listener::{ACCEPT_ERROR_BACKOFF, Listener, is_connection_error};
use super::shared::{ConnInfo, Shared};
use super::tls::{ErasedListener, HandshakeFailures, TlsListener, TlsReloadHandle};

/// Where the server listens, as the builder was told.
pub(crate) enum Listen {
    /// Bind this address after lifespan startup.
    Addr(SocketAddr),
    /// Bind a Unix domain socket at this path after lifespan startup.
    #[cfg(unix)]
    Unix(PathBuf),
    /// Accept on a listener the caller made.
    Listener(Box<dyn AcceptLoop>),
}

impl Listen {
    /// Accept on `listener`.
    pub(crate) fn listener(listener: impl Listener) -> Listen {
        Listen::Listener(Box::new(listener))
    }
}

impl fmt::Debug for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Addr(addr) => write!(f, "Addr({addr})"),
            #[cfg(unix)]
            Listen::Unix(path) => write!(f, "Unix({})", path.display()),
            Listen::Listener(l) => write!(f, "Listener({:?})", l.local_addr().ok()),
        }
    }
}

/// A [`Listener`] with its type erased, so that `Server` and `Builder` stay plain types: the
/// accept loop itself is compiled for each listener type.
pub(crate) trait AcceptLoop: Send {
    /// The listener's [`Listener::local_addr`].
    fn local_addr(&self) -> io::Result<ServerAddr>;

    /// This listener with a TLS handshake on each connection.
    fn with_tls(
        self: Box<Self>,
        tls: TlsReloadHandle,
        failures: HandshakeFailures,
    ) -> Box<dyn AcceptLoop>;

    /// Runs [`accept`] on this listener; the listener is closed when it returns.
    fn run(
        self: Box<Self>,
        server: ServerAddr,
        shared: Arc<Shared>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

impl<L: Listener> AcceptLoop for L {
    fn local_addr(&self) -> io::Result<ServerAddr> {
        Listener::local_addr(self)
    }

    fn with_tls(
        self: Box<Self>,
        tls: TlsReloadHandle,
        failures: HandshakeFailures,
    ) -> Box<dyn AcceptLoop> {
        // Through a listener with its type erased: wrapping `L` itself would make the
        // compiler instantiate TLS over TLS over ... without end.
        Box::new(TlsListener::with_handle(
            ErasedListener::new(*self),
            tls,
            failures,
        ))
    }

    fn run(
        self: Box<Self>,
        server: ServerAddr,
        shared: Arc<Shared>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(accept(*self, server, shared))
    }
}

/// Accepts connections until a shutdown starts, each served in a task of its own.
pub(crate) async fn accept<L: Listener>(mut listener: L, server: ServerAddr, shared: Arc<Shared>) {
    let limit = shared
        .config
        .max_connections
        .map(|max| Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))));
    loop {
        // At the connection limit, wait for a place before accepting: new connections queue
        // in the kernel's backlog meanwhile.
        let permit = match &limit {
            Some(limit) => tokio::select! {
                permit = limit.clone().acquire_owned() => permit.ok(),
                () = shared.graceful.cancelled() => return,
            },
            None => None,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shared.graceful.cancelled() => return,
        };
        match accepted {
            Ok((io, peer)) => {
                let info = ConnInfo {
                    peer,
                    server: server.clone(),
                };
                shared
                    .connections
                    .spawn(connection::serve(io, info, shared.clone(), permit));
            }
            Err(e) if is_connection_error(&e) => {
                tracing::debug!(error = %e, "a connection failed before it was accepted");
            }
            Err(e) => {
                tracing::error!(error = %e, "accepting connections failed; pausing");
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => {}
                    () = shared.graceful.cancelled() => return,
                }
            }
        }
    }
}
