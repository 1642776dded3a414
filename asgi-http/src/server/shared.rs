//! What the server's modules share: the running server's state ([`Shared`]), what a
//! connection's scopes say about its ends ([`ConnInfo`]), and a connection's count of requests
//! in flight ([`Activity`]). A leaf: it imports no other module of the server but the
//! settings and the listener's [`Peer`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use asgi_core::{App, ServerAddr, Shutdown, State};
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::config::Config;
use super::listener::Peer;

/// What every connection of a running server shares.
pub(crate) struct Shared {
    /// The app every request goes to.
    pub(crate) app: Arc<dyn App>,
    /// The settings.
    pub(crate) config: Config,
    /// hyper's connection builder, configured once.
    pub(crate) http: auto::Builder<TokioExecutor>,
    /// The frozen lifespan state, shared into every scope.
    pub(crate) state: State,
    /// The scopes' shutdown signal, fired when draining starts.
    pub(crate) scope_shutdown: Shutdown,
    /// Cancelled when draining starts: connections shut down gracefully.
    pub(crate) graceful: CancellationToken,
    /// Cancelled at the drain deadline (or a forced stop): connections are dropped.
    pub(crate) force_close: CancellationToken,
    /// Cancelled by a forced stop: WebSockets are dropped without a close handshake.
    pub(crate) immediate: CancellationToken,
    /// The connections being served, and upgraded connections: draining waits for them.
    pub(crate) connections: TaskTracker,
    /// The app tasks, HTTP and WebSocket: draining waits for them too, so work an app does
    /// after its response is not cut off, and lifespan shutdown starts only after them.
    pub(crate) app_tasks: TaskTracker,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("connections", &self.connections.len())
            .field("app_tasks", &self.app_tasks.len())
            .finish_non_exhaustive()
    }
}

/// What a connection's scopes say about its ends.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    /// The far end: `client`, and whether the connection is encrypted.
    pub(crate) peer: Peer,
    /// `server`: where the listener listens.
    pub(crate) server: ServerAddr,
}

/// Counts a connection's requests in flight, for the keep-alive idle timer.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    /// Requests whose response hyper has not finished with.
    pub(crate) active: AtomicUsize,
    /// Requests started so far: tells the idle timer that a request came and went.
    pub(crate) started: AtomicU64,
    /// Notified when `active` drops to zero.
    pub(crate) idle: Notify,
    /// HTTP/2 streams carrying a WebSocket: at the drain deadline the connection gives their
    /// close handshakes time before it is dropped.
    pub(crate) websockets: AtomicUsize,
}

/// One request in flight on a connection; dropped when hyper is done with its response.
#[derive(Debug)]
pub(crate) struct ActivityGuard(Arc<Activity>);

impl ActivityGuard {
    pub(crate) fn new(activity: &Arc<Activity>) -> Self {
        activity.active.fetch_add(1, Ordering::AcqRel);
        activity.started.fetch_add(1, Ordering::AcqRel);
        ActivityGuard(activity.clone())
    }
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_one();
        }
    }
}

/// An HTTP/2 stream carrying a WebSocket, while it is open: its connection is busy (not
/// idle), and is not dropped at the drain deadline before the WebSocket's close handshake.
#[derive(Debug)]
pub(crate) struct WebSocketStreamGuard {
    request: ActivityGuard,
}

impl WebSocketStreamGuard {
    pub(crate) fn new(activity: &Arc<Activity>) -> Self {
        activity.websockets.fetch_add(1, Ordering::AcqRel);
        WebSocketStreamGuard {
            request: ActivityGuard::new(activity),
        }
    }
}

impl Drop for WebSocketStreamGuard {
    fn drop(&mut self) {
        self.request.0.websockets.fetch_sub(1, Ordering::AcqRel);
    }
}
