//! The server's drain signal, as seen from a scope.

use std::fmt;

use tokio_util::sync::CancellationToken;

/// The server side of the shutdown signal: [`trigger`](Shutdown::trigger) when draining
/// starts, and every [`ShutdownSignal`] made from it resolves.
#[derive(Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    /// A new, untriggered shutdown.
    pub fn new() -> Self {
        Shutdown::default()
    }

    /// A signal to put into scopes.
    pub fn signal(&self) -> ShutdownSignal {
        ShutdownSignal {
            token: Some(self.token.clone()),
        }
    }

    /// Fires the signal; idempotent.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// True once triggered.
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

/// Resolves when the server starts draining (graceful shutdown), so that long-lived handlers
/// (server-sent events, WebSockets, long polls) can finish by themselves.
///
/// # Example
///
/// ```
/// use asgi_core::Shutdown;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let shutdown = Shutdown::new();
/// let signal = shutdown.signal();
/// assert!(!signal.is_triggered());
/// shutdown.trigger();
/// signal.wait().await; // resolves at once now
/// # });
/// ```
///
/// # Cancel safety
///
/// [`wait`](ShutdownSignal::wait) is cancel safe: use it in `tokio::select!` beside the work.
#[derive(Clone, Default)]
pub struct ShutdownSignal {
    // None: a signal that never fires (tests, scopes built by hand).
    token: Option<CancellationToken>,
}

impl ShutdownSignal {
    /// A signal that never fires.
    pub fn never() -> Self {
        ShutdownSignal::default()
    }

    /// True once the server has started draining.
    pub fn is_triggered(&self) -> bool {
        self.token.as_ref().is_some_and(|t| t.is_cancelled())
    }

    /// Waits until the server starts draining.
    pub async fn wait(&self) {
        match &self.token {
            Some(token) => token.cancelled().await,
            None => std::future::pending().await,
        }
    }
}

impl fmt::Debug for ShutdownSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownSignal")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}
