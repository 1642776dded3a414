//! The host side of the drain signal: what fires the scopes' [`ShutdownSignal`]s.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::shutdown::{ShutdownSignal, SignalSource};

/// The trigger of the shutdown signal: a server hands out [`signal`](Shutdown::signal)s to
/// put into scopes, and [`trigger`](Shutdown::trigger)s them all when draining starts.
///
/// Clones share one signal.
///
/// # Example
///
/// ```
/// use asgi_core::host::Shutdown;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let shutdown = Shutdown::new();
/// let signal = shutdown.signal();
/// assert!(!signal.is_triggered());
/// shutdown.trigger();
/// signal.wait().await; // resolves at once now
/// assert!(signal.is_triggered());
/// # });
/// ```
#[derive(Clone)]
pub struct Shutdown {
    token: Arc<TokenSource>,
}

struct TokenSource(CancellationToken);

impl SignalSource for TokenSource {
    fn is_triggered(&self) -> bool {
        self.0.is_cancelled()
    }

    fn wait(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.0.cancelled())
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            token: Arc::new(TokenSource(CancellationToken::new())),
        }
    }
}

impl Shutdown {
    /// A new, untriggered shutdown.
    pub fn new() -> Self {
        Shutdown::default()
    }

    /// A signal to put into scopes. Cloning it is one reference count.
    pub fn signal(&self) -> ShutdownSignal {
        ShutdownSignal::from_source(self.token.clone())
    }

    /// Fires every signal made from this shutdown; idempotent.
    pub fn trigger(&self) {
        self.token.0.cancel();
    }

    /// True once triggered.
    pub fn is_triggered(&self) -> bool {
        self.token.0.is_cancelled()
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn trigger_wakes_a_pending_wait() {
        let shutdown = Shutdown::new();
        let signal = shutdown.signal();
        let waiter = tokio::spawn(async move { signal.wait().await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the wait did not end within 5 s of the trigger")
            .expect("the waiting task panicked");
    }

    #[test]
    fn never_is_never_triggered() {
        let signal = ShutdownSignal::never();
        assert!(!signal.is_triggered());
    }
}
