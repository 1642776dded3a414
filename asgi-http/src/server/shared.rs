//! What the server's modules share: the running server's state ([`Shared`]), what a
//! connection's scopes say about its ends ([`ConnInfo`]), and a connection's count of requests
//! in flight ([`Activity`]). A leaf: it imports no other module of the server but the
//! settings and the listener's [`Peer`].

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use asgi_core::host::Shutdown;
use asgi_core::{App, ServerAddr, State};
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::config::{Config, HTTP2_CLIENT_RESETS_REFILL};
use super::direct::DirectService;
use super::listener::Peer;

/// What every connection of a running server shares.
pub(crate) struct Shared {
    /// The app every request goes to.
    pub(crate) app: Arc<dyn App>,
    /// The app's direct service, which HTTP requests go to instead when the app has one
    /// and nothing the scope would say is lost without one (see the `direct` module).
    pub(crate) direct: Option<DirectService>,
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

/// Counts a connection's requests in flight, for the keep-alive idle timer, and what its
/// HTTP/2 client may still do: app calls, stream resets.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    /// Requests whose response hyper has not finished with.
    pub(crate) active: AtomicUsize,
    /// Requests started so far: tells the idle timer that a request came and went.
    pub(crate) started: AtomicU64,
    /// Notified when `active` drops to zero while the idle timer waits for it (`idle_waiting`).
    pub(crate) idle: Notify,
    /// Set while the idle timer waits on `idle`: a request that ends otherwise (the timer is
    /// asleep until its deadline, as it is between keep-alive requests) notifies nobody.
    pub(crate) idle_waiting: AtomicBool,
    /// When a request last ended: the keep-alive idle timeout counts from there.
    pub(crate) last_ended: Mutex<Option<Instant>>,
    /// HTTP/2 streams carrying a WebSocket: at the drain deadline the connection gives their
    /// close handshakes time before it is dropped.
    pub(crate) websockets: AtomicUsize,
    /// The app calls of the connection's HTTP/2 requests: one permit each, held until the
    /// app returns, even after the client reset its stream; `None`: no limit.
    pub(crate) app_calls: Option<Arc<Semaphore>>,
    /// How many more streams the client may reset; `None`: no limit.
    resets: Option<Mutex<ResetAllowance>>,
    /// Notified when the client reset a stream over its allowance.
    pub(crate) reset_flood: Notify,
    /// What the client's resets so far say: [`RESETS_UNKNOWN`], [`RESETS_NONE`] or
    /// [`RESETS_SEEN`]. See [`Activity::wary_of_resets`].
    resets_seen: AtomicU8,
}

/// No response of the connection has completed yet, and the client reset no stream.
const RESETS_UNKNOWN: u8 = 0;
/// A response completed, and the client has reset no stream.
const RESETS_NONE: u8 = 1;
/// The client reset a stream before its response was complete.
const RESETS_SEEN: u8 = 2;

impl Activity {
    /// The activity of a new connection: up to `app_calls` app calls at once for its HTTP/2
    /// requests, and `resets` stream resets (refilled over [`HTTP2_CLIENT_RESETS_REFILL`]).
    pub(crate) fn new(app_calls: Option<u32>, resets: Option<u32>) -> Self {
        Activity {
            app_calls: app_calls.map(|max| {
                let max = usize::try_from(max).unwrap_or(usize::MAX);
                Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS)))
            }),
            resets: resets.map(|max| Mutex::new(ResetAllowance::new(max))),
            ..Activity::default()
        }
    }

    /// Whether an HTTP/2 request's app call waits for one turn of the scheduler first, so
    /// that a stream the client reset in the same read as its request ("rapid reset") is
    /// dropped before its app is called: until a response of the connection has completed,
    /// and for good once its client has reset a stream. A client that has reset nothing has
    /// its requests go to their apps at once: the turn costs a second poll of each stream's
    /// task and splits hyper's batches of responses (half again as many writes under load).
    pub(crate) fn wary_of_resets(&self) -> bool {
        self.resets_seen.load(Ordering::Relaxed) != RESETS_NONE
    }

    /// A response of the connection completed: unless its client has reset a stream, its
    /// requests no longer wait a turn (see [`wary_of_resets`](Activity::wary_of_resets)).
    pub(crate) fn response_completed(&self) {
        if self.resets_seen.load(Ordering::Relaxed) == RESETS_UNKNOWN {
            // Fails, as it should, when a reset came in between.
            let _ = self.resets_seen.compare_exchange(
                RESETS_UNKNOWN,
                RESETS_NONE,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// Counts a stream the client reset before its response was complete; over the
    /// allowance, the connection's task hears of it. From then on the connection's requests
    /// wait a turn before their apps are called (see
    /// [`wary_of_resets`](Activity::wary_of_resets)).
    pub(crate) fn client_reset(&self) {
        self.resets_seen.store(RESETS_SEEN, Ordering::Relaxed);
        let Some(resets) = &self.resets else {
            return;
        };
        if !lock(resets).take(Instant::now()) {
            self.reset_flood.notify_one();
        }
    }
}

/// Locks `mutex`; nothing panics while these locks are held, so a poisoned one still guards
/// consistent data.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A token bucket of stream resets: `max` at once, refilled at `max` per
/// [`HTTP2_CLIENT_RESETS_REFILL`].
#[derive(Debug)]
struct ResetAllowance {
    max: f64,
    left: f64,
    counted: Instant,
}

impl ResetAllowance {
    fn new(max: u32) -> Self {
        ResetAllowance {
            max: f64::from(max),
            left: f64::from(max),
            counted: Instant::now(),
        }
    }

    /// Takes one reset at `now`; false when none was left.
    fn take(&mut self, now: Instant) -> bool {
        let refilled = now.saturating_duration_since(self.counted).as_secs_f64()
            / HTTP2_CLIENT_RESETS_REFILL.as_secs_f64()
            * self.max;
        self.left = (self.left + refilled).min(self.max);
        self.counted = now;
        if self.left >= 1.0 {
            self.left -= 1.0;
            true
        } else {
            false
        }
    }
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

    /// The request's response was sent whole.
    pub(crate) fn response_completed(&self) {
        self.0.response_completed();
    }
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        // Set before the count drops, so that the idle timer, once it sees no request in
        // flight, also sees when the last one ended.
        *lock(&self.0.last_ended) = Some(Instant::now());
        // Sequentially consistent with the timer's side (`idle_for`): either the timer sees
        // this request gone, or this sees the timer waiting and wakes it.
        if self.0.active.fetch_sub(1, Ordering::SeqCst) == 1
            && self.0.idle_waiting.load(Ordering::SeqCst)
        {
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
