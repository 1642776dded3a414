//! The server's drain signal, as seen from a scope.
//!
//! The scope carries a [`ShutdownSignal`] to await. What fires it belongs to the host that runs
//! the app: a server's `Shutdown` (see the `host` module, behind the `host` feature) hands out
//! signals and triggers them when draining starts. This side needs no runtime.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What a [`ShutdownSignal`] waits on: implemented by the host side of the signal, so that the
/// interface itself depends on no runtime.
pub(crate) trait SignalSource: Send + Sync + 'static {
    /// True once the host started draining.
    fn is_triggered(&self) -> bool;

    /// Resolves once the host started draining. Cancel safe.
    fn wait(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// Resolves when the server starts draining (graceful shutdown), so that long-lived handlers
/// (server-sent events, WebSockets, long polls) can finish by themselves.
///
/// A server puts one into every HTTP and WebSocket scope (`scope.shutdown`). A scope built by
/// hand carries [`ShutdownSignal::never`].
///
/// # Example
///
/// A server-sent-events loop that ends itself when the server drains:
///
/// ```
/// use asgi_core::{Error, Sender, SendEvent, ShutdownSignal};
/// use http::{HeaderMap, StatusCode};
///
/// async fn ticks(shutdown: ShutdownSignal, mut send: Sender) -> Result<(), Error> {
///     send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new())).await?;
///     let mut n = 0u32;
///     while !shutdown.is_triggered() && n < 3 {
///         send.send(SendEvent::response_body(format!("data: {n}\n\n"), true)).await?;
///         n += 1;
///     }
///     send.send(SendEvent::response_body("", false)).await?;
///     Ok(())
/// }
///
/// let never = ShutdownSignal::never();
/// assert!(!never.is_triggered());
/// ```
///
/// # Cancel safety
///
/// [`wait`](ShutdownSignal::wait) is cancel safe: use it in `tokio::select!` beside the work.
#[derive(Clone, Default)]
pub struct ShutdownSignal {
    // None: a signal that never fires (tests, scopes built by hand).
    source: Option<Arc<dyn SignalSource>>,
}

impl ShutdownSignal {
    /// A signal that never fires.
    pub fn never() -> Self {
        ShutdownSignal::default()
    }

    /// A signal that waits on `source`.
    #[cfg(feature = "host")]
    pub(crate) fn from_source(source: Arc<dyn SignalSource>) -> Self {
        ShutdownSignal {
            source: Some(source),
        }
    }

    /// True once the server has started draining.
    pub fn is_triggered(&self) -> bool {
        self.source.as_deref().is_some_and(|s| s.is_triggered())
    }

    /// Waits until the server starts draining; never resolves for
    /// [`never`](ShutdownSignal::never).
    pub async fn wait(&self) {
        match &self.source {
            Some(source) => source.wait().await,
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
