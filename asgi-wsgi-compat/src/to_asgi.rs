//! [`WsgiToAsgi`]: a [`WsgiApp`] as an ASGI [`App`], on a pool of persistent threads.

use std::fmt;
use std::future::Ready;
use std::io;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use asgi_core::app::AppFuture;
use asgi_core::error::SendError;
use asgi_core::scope::HttpScope;
use asgi_core::{App, Error, EventSink, ReceiveEvent, Receiver, Scope, SendEvent, Sender};
use futures_util::future::{BoxFuture, Either};
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{HeaderMap, StatusCode};
use std::panic::{AssertUnwindSafe, catch_unwind};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::app::WsgiApp;
use crate::environ::Environ;
use crate::handler::{RunOutcome, run};
use crate::pool::{Rejected, ThreadPool, Turn};
use crate::response::ResponsePart;
use crate::stream::{BodyMessage, CallSignals, Input};

/// How many request body chunks wait between the connection and `wsgi.input`. With the
/// one chunk the pump holds, at most five chunks of a request body are in memory however
/// large the body is; more would only add memory, since the app reads at its own pace.
pub const INPUT_CHANNEL_CAPACITY: usize = 4;

/// How many response parts wait between the app's thread and the connection. Small for the
/// same reason: a slow client makes the app's `write` (or the iteration of its body) wait,
/// instead of piling the response up in memory.
pub const OUTPUT_CHANNEL_CAPACITY: usize = 4;

/// The default of [`WsgiToAsgi::slot_timeout`]: 10 seconds. Long enough to ride out a burst
/// of slow handlers, short enough that a client gets an answer (`503`) well before the usual
/// 60-second timeout of a proxy in front.
pub const DEFAULT_SLOT_TIMEOUT: Duration = Duration::from_secs(10);

/// The default of [`WsgiToAsgi::read_timeout`]: 60 seconds, nginx's `client_body_timeout`.
/// A client that sends nothing of its request body for that long frees the thread the app
/// reads it on; a slow but moving upload is never cut, since the time counts from the last
/// data.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The default of [`WsgiToAsgi::max_queued`]: 128 calls may wait in the pool's queue for a
/// thread once every thread is busy.
///
/// A call waiting there costs the async side nothing (no timer, no waiting task), and a
/// server under load hands the threads every request it read in one turn, which they then
/// run one after the other without a wake-up across threads in between: with the server on
/// one CPU this raised the WSGI hello's throughput in the load benchmark by 10-15% (paired
/// runs), and took a third of the context switches per request away. 128 covers the requests
/// in flight of a busy server's keep-alive connections; calls beyond it wait for a place as
/// they would for a thread (with the same [`slot_timeout`](WsgiToAsgi::slot_timeout)), so the
/// bound limits memory, not what is served. A waiting call holds its environ, a few hundred
/// bytes, and a response channel is kept for reuse for every call admitted at once (threads
/// and places), about 4.5 KiB each once used: under 600 KiB for 128 places and three threads.
/// Change it with [`WsgiToAsgi::max_queued`].
pub const DEFAULT_MAX_QUEUED: usize = 128;

/// The default of [`WsgiToAsgi::max_threads`]: `2 * cores + 1`, gunicorn's advice for its
/// worker and thread counts. Blocking handlers spend much of their time waiting (on a
/// database, a file, a service), so more threads than cores keep the cores busy; the bound
/// keeps a flood of slow requests from exhausting memory and threads.
pub fn default_max_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    2 * cores + 1
}

/// Runs a [`WsgiApp`] as an ASGI [`App`], the way an ASGI server runs a WSGI app through a
/// thread pool.
///
/// For each HTTP request it builds the [`Environ`] from the scope
/// ([`Environ::from_scope`]), calls the app on a thread of its own pool (persistent threads,
/// started on demand up to [`max_threads`](WsgiToAsgi::max_threads), each ending after 10
/// seconds without work), never on the runtime's async workers, and streams both ways
/// through bounded channels:
///
/// - the request body flows into `wsgi.input` as the app reads it (at most
///   [`INPUT_CHANNEL_CAPACITY`] chunks ahead), so a 1 GiB upload never sits in memory. The
///   connection is asked for the body (`recv`) only once the app first reads it, so an app
///   that ignores its body costs nothing, as an ASGI app that never calls `recv`;
/// - what the app writes and yields flows out as `http.response.*` events, the app waiting
///   while the client is slow (at most [`OUTPUT_CHANNEL_CAPACITY`] parts ahead).
///
/// The rules of PEP 3333 are applied ([`StartResponse`](crate::StartResponse)): headers go
/// out with the first body data or at the end, no more than `Content-Length` is sent and a
/// response short of it is aborted, hop-by-hop headers are an error.
///
/// # Threads
///
/// At most [`max_threads`](WsgiToAsgi::max_threads) calls run at once (default
/// [`default_max_threads`]); a request waits up to
/// [`slot_timeout`](WsgiToAsgi::slot_timeout) (default [`DEFAULT_SLOT_TIMEOUT`]) for a free
/// thread and then gets `503 Service Unavailable`, instead of queueing without bound. Clones
/// share the limit and the threads. The app's thread is inside the runtime's context, so it
/// can reach the runtime with `tokio::runtime::Handle::current()` as on tokio's blocking
/// threads.
///
/// # Failures
///
/// - An `Err` or a panic before the headers went out: a `500`, and the error is logged
///   through `tracing`. After: `call` returns the error, and the server aborts the response.
///   The pool keeps serving either way.
/// - The client disconnects: the app's next `wsgi.input` read or `write` fails with
///   [`io::ErrorKind::ConnectionAborted`], its response iterator is dropped (its cleanup
///   runs), the thread is released when the app returns, and `call` returns an error for
///   which [`is_disconnected`](Error::is_disconnected) is true.
///
/// The caller's `tracing` span (and subscriber) carry into the blocking thread, so that
/// `wsgi.errors` and the app's own events land in the request's span.
///
/// # Other scopes
///
/// Lifespan: `call` returns `Ok(())` at once, which tells the server "no lifespan support".
/// WebSocket: the handshake is refused with `websocket.close` (HTTP 403); WSGI has no
/// WebSocket.
///
/// # Example
///
/// ```
/// use asgi_core::host::testing;
/// use asgi_core::{HttpScope, Scope};
/// use asgi_wsgi_compat::{Body, BoxError, Environ, StartResponse, WsgiToAsgi};
/// use http::Method;
///
/// fn hello(environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
///     start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
///     Ok(Body::from(format!("Hello from {}!", environ.path_info())))
/// }
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let app = WsgiToAsgi::new(hello).max_threads(4);
/// let scope = Scope::from(HttpScope::new(Method::GET, "/world"));
/// let outcome = testing::call(&app, scope, []).await;
/// assert_eq!(outcome.status(), Some(http::StatusCode::OK));
/// assert_eq!(outcome.body(), b"Hello from /world!");
/// # });
/// ```
///
/// # Panics
///
/// `call` needs a tokio runtime with the time driver (`enable_time` or `enable_all`) when a
/// request has to wait for a thread with a `slot_timeout` set.
pub struct WsgiToAsgi<A> {
    app: Arc<A>,
    slots: Arc<Semaphore>,
    pool: Arc<ThreadPool>,
    channels: Arc<ChannelCache>,
    max_threads: usize,
    max_queued: usize,
    slot_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
}

impl<A: WsgiApp> WsgiToAsgi<A> {
    /// Wraps `app` with the default settings.
    pub fn new(app: A) -> Self {
        let max_threads = default_max_threads();
        let max_queued = DEFAULT_MAX_QUEUED;
        let (slots, pool, channels) = Self::limits(max_threads, max_queued);
        WsgiToAsgi {
            app: Arc::new(app),
            slots,
            pool,
            channels,
            max_threads,
            max_queued,
            slot_timeout: Some(DEFAULT_SLOT_TIMEOUT),
            read_timeout: Some(DEFAULT_READ_TIMEOUT),
        }
    }

    /// The admissions, the pool and the channel cache for these limits: as many admissions
    /// as threads plus queue places, and a channel kept for each.
    #[allow(clippy::type_complexity)]
    fn limits(
        max_threads: usize,
        max_queued: usize,
    ) -> (Arc<Semaphore>, Arc<ThreadPool>, Arc<ChannelCache>) {
        let admitted = max_threads.saturating_add(max_queued);
        (
            Arc::new(Semaphore::new(admitted)),
            Arc::new(ThreadPool::new(max_threads, admitted)),
            Arc::new(ChannelCache::new(admitted)),
        )
    }

    /// How many calls of the app may run at once, each on a thread of the adapter's pool
    /// (gunicorn's `--threads`). Default is [`default_max_threads`]: `2 * cores + 1`.
    /// At least 1 (0 counts as 1). Set it before cloning: clones share one limit.
    pub fn max_threads(mut self, threads: usize) -> Self {
        let threads = threads.clamp(1, Semaphore::MAX_PERMITS / 2);
        self.max_threads = threads;
        (self.slots, self.pool, self.channels) = Self::limits(threads, self.max_queued);
        self
    }

    /// How many calls may wait in the pool's queue for a thread once every thread is busy.
    /// Default is [`DEFAULT_MAX_QUEUED`]: 128. A call beyond waits for a place in the queue,
    /// and either way a call that finds no thread within the
    /// [`slot_timeout`](WsgiToAsgi::slot_timeout) gets `503`; 0 makes every call wait for a
    /// thread before it is handed over. Set it before cloning: clones share one queue.
    pub fn max_queued(mut self, calls: usize) -> Self {
        let calls = calls.min(Semaphore::MAX_PERMITS / 2);
        self.max_queued = calls;
        (self.slots, self.pool, self.channels) = Self::limits(self.max_threads, calls);
        self
    }

    /// How long a request waits for a free thread before it gets `503 Service
    /// Unavailable`. Default is 10 seconds ([`DEFAULT_SLOT_TIMEOUT`]). `Some(Duration::ZERO)`
    /// answers 503 at once when every thread is busy. Pass `None` to wait as long as it
    /// takes (the number of waiting requests is then bounded only by the server's connection
    /// limit).
    pub fn slot_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.slot_timeout = timeout;
        self
    }

    /// How long a `wsgi.input` read waits for the client's next request body data. When it
    /// passes, that read and every later one fail with [`io::ErrorKind::TimedOut`], so a
    /// client that sends its body slowly, or stops, cannot hold a thread for longer; if the
    /// app then fails before its headers went out, the client gets `408 Request Timeout`.
    /// Default is 60 seconds ([`DEFAULT_READ_TIMEOUT`]). Pass `None` to wait as long as the
    /// client takes.
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The wrapped app.
    pub fn get_ref(&self) -> &A {
        &self.app
    }

    /// The configured thread limit.
    pub fn thread_limit(&self) -> usize {
        self.max_threads
    }

    /// An admission, and how long the call may wait in the pool's queue for a thread: what
    /// is left of the slot timeout. `None` when the slot timeout passed first.
    async fn acquire(&self) -> Option<(OwnedSemaphorePermit, Option<Duration>)> {
        let (permit, left) = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => (permit, self.slot_timeout),
            // Boxed: the wait and its timer would make every call's future larger, and most
            // calls find a place free.
            Err(_) => Box::pin(self.wait_for_slot()).await?,
        };
        Some((permit, left))
    }

    async fn wait_for_slot(&self) -> Option<(OwnedSemaphorePermit, Option<Duration>)> {
        let acquire = self.slots.clone().acquire_owned();
        match self.slot_timeout {
            Some(timeout) => {
                let asked = Instant::now();
                let permit = tokio::time::timeout(timeout, acquire).await.ok()?.ok()?;
                Some((permit, Some(timeout.saturating_sub(asked.elapsed()))))
            }
            None => Some((acquire.await.ok()?, None)),
        }
    }

    /// Hands the call to a thread of the pool, to wait there at most `slot_timeout` for
    /// one: the response channel and the signals come back. Not async, so that the job is
    /// no part of the call's future (which is moved, and copied, as a whole).
    ///
    /// The environ is made on the pool's thread, which frees it, from the scope, which the
    /// thread hands back with the outcome for the connection's task to free: memory freed
    /// by another thread than the one that made it costs the allocator's slow path on
    /// both, and the scope was made on the connection's thread.
    fn start(
        &self,
        scope: Box<HttpScope>,
        permit: OwnedSemaphorePermit,
        slot_timeout: Option<Duration>,
    ) -> Result<Started, Rejected> {
        let signals = Arc::new(CallSignals::default());
        let (out_tx, out_rx) = self.channels.take();
        let mut done_tx = DoneSender(Some(out_tx.clone()));
        let part_tx = out_tx.clone();

        let app = self.app.clone();
        let span = tracing::Span::current();
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let runtime = tokio::runtime::Handle::try_current().ok();
        let thread_signals = signals.clone();
        let job = move |turn: Turn<'_>| {
            // A call that waited too long for a thread, or whose connection went away while
            // it waited, never runs.
            let Turn::Run(running) = turn else {
                drop((thread_signals, permit));
                done_tx.finish(Outgoing::Expired(scope));
                return;
            };
            if part_tx.is_closed() {
                // As at the end of a call: the thread is free before the slot is.
                drop(running);
                drop(permit);
                return;
            }
            // The app may reach the runtime (`Handle::current()`), as on tokio's own
            // blocking threads.
            let _runtime = runtime.as_ref().map(tokio::runtime::Handle::enter);
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                tracing::dispatcher::with_default(&dispatch, || {
                    span.in_scope(|| {
                        let mut environ = Environ::from_scope(&scope);
                        let content_length = environ.content_length();
                        environ.set_input(Input::channel(content_length, thread_signals.clone()));
                        let output = ChannelOutput {
                            tx: part_tx,
                            signals: thread_signals.clone(),
                        };
                        run(
                            &*app,
                            environ,
                            output,
                            &|| thread_signals.gone.load(Ordering::SeqCst),
                            &|| thread_signals.timed_out.load(Ordering::SeqCst),
                        )
                    })
                })
            }));
            // Dropped before the outcome is sent, so that the connection's task holds the
            // last reference to the signals and frees them (and the task's waker in them)
            // where they were made.
            drop(thread_signals);
            // The slot is held until the app's call is over, whatever happens to the
            // connection's task, and is free by the time the outcome arrives; the thread
            // counts as free before the slot is, so that the call the slot lets in finds it.
            drop(running);
            drop(permit);
            done_tx.send(outcome, scope);
        };
        self.pool.execute(Box::new(job), slot_timeout)?;
        Ok((out_tx, out_rx, signals))
    }
}

impl<A> WsgiToAsgi<A> {
    /// How many threads are free now: [`thread_limit`](WsgiToAsgi::thread_limit) minus the
    /// calls in progress (none when calls wait in the queue).
    pub fn available_threads(&self) -> usize {
        self.slots
            .available_permits()
            .saturating_sub(self.max_queued)
    }
}

impl<A> Clone for WsgiToAsgi<A> {
    fn clone(&self) -> Self {
        WsgiToAsgi {
            app: self.app.clone(),
            slots: self.slots.clone(),
            pool: self.pool.clone(),
            channels: self.channels.clone(),
            max_threads: self.max_threads,
            max_queued: self.max_queued,
            slot_timeout: self.slot_timeout,
            read_timeout: self.read_timeout,
        }
    }
}

impl<A> fmt::Debug for WsgiToAsgi<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsgiToAsgi")
            .field("max_threads", &self.max_threads)
            .field("max_queued", &self.max_queued)
            .field("available_threads", &self.available_threads())
            .field("slot_timeout", &self.slot_timeout)
            .field("read_timeout", &self.read_timeout)
            .finish_non_exhaustive()
    }
}

// Written out rather than with `async_trait`: `call_owned` runs the same future on the
// `Arc` itself, one box per call, where the default would box a future around `call`'s; and
// the scope is taken apart before the future is made.
impl<A: WsgiApp> App for WsgiToAsgi<A> {
    fn call<'life0, 'async_trait>(
        &'life0 self,
        scope: Scope,
        receive: Receiver,
        send: Sender,
    ) -> AppFuture<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        dispatch(self, scope, receive, send)
    }

    fn call_owned(
        self: Arc<Self>,
        scope: Scope,
        receive: Receiver,
        send: Sender,
    ) -> AppFuture<'static> {
        dispatch(self, scope, receive, send)
    }
}

/// One HTTP call of `adapter`, borrowed or held by an `Arc`: a slot, the app's run on a
/// thread of the pool, and the pumps between it and the connection.
async fn call_http<A: WsgiApp>(
    adapter: impl Deref<Target = WsgiToAsgi<A>> + Send,
    scope: Box<HttpScope>,
    mut receive: Receiver,
    mut send: Sender,
) -> Result<(), Error> {
    let Some((permit, slot_timeout)) = adapter.acquire().await else {
        return busy(&adapter, &mut send).await;
    };
    let (out_tx, mut out_rx, signals) = match adapter.start(scope, permit, slot_timeout) {
        Ok(started) => started,
        Err(Rejected::Busy) => return busy(&adapter, &mut send).await,
        Err(Rejected::NoThread(error)) => {
            tracing::error!(%error, "could not start a WSGI thread; answering 503");
            return send_unavailable(&mut send).await;
        }
    };

    // However this call ends (returned, or dropped with its connection), a read still
    // waiting for body data then fails instead of waiting for a pump that stopped.
    let _body_guard = BodyGuard(&signals);
    let done = {
        let input = pump_input(&mut receive, &signals, adapter.read_timeout);
        let output = pump_output(&mut out_rx, &mut send, &signals.gone);
        tokio::pin!(input, output);
        let mut input_done = false;
        loop {
            tokio::select! {
                () = &mut input, if !input_done => input_done = true,
                done = &mut output => break done,
            }
        }
        // Leaving this block drops the input pump and with it the body channel.
    };

    let outcome = match done {
        Ending::Outcome(outcome) => outcome,
        Ending::Expired => {
            // The job's last message: the channel is empty, ready for another call.
            adapter.channels.put((out_tx, out_rx));
            return busy(&adapter, &mut send).await;
        }
        // The job was dropped unrun: its pool lost every thread.
        Ending::Dropped => return Err(Error::disconnected()),
    };
    // The outcome was the last message: the channel is empty, ready for another call.
    adapter.channels.put((out_tx, out_rx));
    match outcome {
        Ok(RunOutcome::Complete | RunOutcome::Replaced) => Ok(()),
        Ok(RunOutcome::Disconnected) => Err(Error::disconnected()),
        Ok(RunOutcome::Aborted(error)) => Err(error),
        Err(payload) => Err(Error::from_panic(payload)),
    }
}

/// One call of `adapter`, borrowed or held by an `Arc`. The scope is taken apart here, so
/// that the call's future holds only an HTTP scope's box.
fn dispatch<'a, A: WsgiApp>(
    adapter: impl Deref<Target = WsgiToAsgi<A>> + Send + 'a,
    scope: Scope,
    receive: Receiver,
    send: Sender,
) -> AppFuture<'a> {
    match scope {
        Scope::Http(http) => Box::pin(call_http(adapter, http, receive, send)),
        Scope::WebSocket(_) => Box::pin(asgi_core::app::refuse_websocket(send)),
        // Lifespan, and any protocol this adapter does not know: returning tells the
        // server that the app does not take part.
        _ => Box::pin(std::future::ready(Ok(()))),
    }
}

/// The answer to a call that found no thread within the slot timeout.
async fn busy<A>(adapter: &WsgiToAsgi<A>, send: &mut Sender) -> Result<(), Error> {
    tracing::warn!(
        threads = adapter.max_threads,
        "every WSGI thread stayed busy for the slot timeout; answering 503"
    );
    send_unavailable(send).await
}

async fn send_unavailable(send: &mut Sender) -> Result<(), Error> {
    let body = "Service Unavailable";
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    send.send(SendEvent::response_start(
        StatusCode::SERVICE_UNAVAILABLE,
        headers,
    ))
    .await?;
    send.send(SendEvent::response_body(body, false)).await?;
    Ok(())
}

/// Moves `http.request` bodies into `wsgi.input`'s channel: from the app's first read on
/// (an app that never reads its body never makes the connection read it, as an ASGI app that
/// never calls `recv`), and then a few chunks ahead, pulling the next event only when there is
/// room for it. Returns at the end of the body, when the app dropped its input, or when the
/// client disconnected (then `gone` is set and the channel closes without its end message, so
/// reads fail), or when the client sent nothing for the read timeout (then `timed_out` is set
/// and reads fail with `TimedOut`).
async fn pump_input(receive: &mut Receiver, signals: &CallSignals, read_timeout: Option<Duration>) {
    signals.first_read().await;
    let Some(tx) = signals.take_body_sender() else {
        return;
    };
    // Boxed: the pump and its timer would make every call's future larger, and most
    // calls never read a body.
    Box::pin(pump_body(receive, tx, signals, read_timeout)).await;
}

/// [`pump_input`] once the app asked for its body.
async fn pump_body(
    receive: &mut Receiver,
    tx: mpsc::Sender<BodyMessage>,
    signals: &CallSignals,
    read_timeout: Option<Duration>,
) {
    loop {
        let Ok(permit) = tx.reserve().await else {
            // The app is done with the body; the rest of it is the server's to discard.
            return;
        };
        let event = match read_timeout {
            Some(timeout) => match tokio::time::timeout(timeout, receive.recv()).await {
                Ok(event) => event,
                Err(_) => {
                    signals.timed_out.store(true, Ordering::SeqCst);
                    permit.send(BodyMessage::TimedOut(timeout));
                    return;
                }
            },
            None => receive.recv().await,
        };
        match event {
            ReceiveEvent::HttpRequest { body, more_body } => {
                if !body.is_empty() {
                    permit.send(BodyMessage::Data(body));
                }
                if !more_body {
                    // An error means the app is done with the body: nothing to deliver.
                    let _ = tx.send(BodyMessage::End).await;
                    return;
                }
            }
            ReceiveEvent::HttpDisconnect => {
                signals.gone.store(true, Ordering::SeqCst);
                return;
            }
            other => {
                tracing::debug!(event = other.type_name(), "ignoring an unexpected event");
            }
        }
    }
}

/// Closes the body hand-over when dropped ([`CallSignals::close_body`]).
struct BodyGuard<'a>(&'a CallSignals);

impl Drop for BodyGuard<'_> {
    fn drop(&mut self) {
        self.0.close_body();
    }
}

/// What the app's thread hands to the connection's task: the parts of the response, then
/// the outcome of the call.
enum Outgoing {
    Part(ResponsePart),
    /// The outcome, and the call's scope, handed back to be freed where it was made.
    Done(std::thread::Result<RunOutcome>, Box<HttpScope>),
    /// The job waited in the pool's queue past the slot timeout, and did not run; its
    /// scope, handed back as with [`Outgoing::Done`].
    Expired(Box<HttpScope>),
    /// The job was dropped without running (its pool lost every thread).
    Dropped,
}

/// How a call's response channel ended: its last message.
enum Ending {
    /// The app ran; its outcome.
    Outcome(std::thread::Result<RunOutcome>),
    /// [`Outgoing::Expired`].
    Expired,
    /// [`Outgoing::Dropped`], or the channel closed.
    Dropped,
}

/// What [`WsgiToAsgi::start`] hands back: the response channel and the call's signals.
type Started = (
    mpsc::Sender<Outgoing>,
    mpsc::Receiver<Outgoing>,
    Arc<CallSignals>,
);

/// A response channel: the app's thread sends on it, the connection's task receives.
type OutputChannel = (mpsc::Sender<Outgoing>, mpsc::Receiver<Outgoing>);

/// Response channels kept for the next calls, at most one per admission (thread or place in
/// the pool's queue): a channel is reused once its call's outcome came (its last message),
/// so a call costs no channel of its own. A call dropped with its connection drops its
/// channel.
struct ChannelCache {
    free: Mutex<Vec<OutputChannel>>,
    limit: usize,
}

impl ChannelCache {
    fn new(limit: usize) -> Self {
        ChannelCache {
            free: Mutex::new(Vec::new()),
            limit,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<OutputChannel>> {
        // Nothing panics while it is held.
        self.free.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self) -> OutputChannel {
        let reused = self.lock().pop();
        reused.unwrap_or_else(|| mpsc::channel(OUTPUT_CHANNEL_CAPACITY))
    }

    fn put(&self, channel: OutputChannel) {
        let mut free = self.lock();
        if free.len() < self.limit {
            free.push(channel);
        }
    }
}

/// The job's way to send the call's outcome, the channel's last message. A job dropped
/// unrun says so instead, since the channel's other sender (kept for reuse) never closes
/// it.
struct DoneSender(Option<mpsc::Sender<Outgoing>>);

impl DoneSender {
    fn send(&mut self, outcome: std::thread::Result<RunOutcome>, scope: Box<HttpScope>) {
        self.finish(Outgoing::Done(outcome, scope));
    }

    /// Sends the channel's last message.
    fn finish(&mut self, last: Outgoing) {
        if let Some(tx) = self.0.take() {
            // The connection's task may be gone: then nobody needs it (and the send fails
            // at once).
            send_blocking(&tx, last);
        }
    }
}

impl Drop for DoneSender {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            // Unrun, the job sent nothing: there is room.
            let _ = tx.try_send(Outgoing::Dropped);
        }
    }
}

/// Sends the response parts the app's thread produces, and returns how the call ended, the
/// channel's last message. Once the client is gone
/// (`gone` set, here or by the input pump) parts are dropped, and the thread's next send
/// fails.
async fn pump_output(
    rx: &mut mpsc::Receiver<Outgoing>,
    send: &mut Sender,
    gone: &AtomicBool,
) -> Ending {
    loop {
        // The message and its part live in this block only: a local that lived on across the
        // send's `await` would take room of its own in the call's future, which is boxed and
        // moved on every request.
        let (sending, then) = {
            let Some(message) = rx.recv().await else {
                return Ending::Dropped;
            };
            let part = match message {
                // The scope is freed here, on the connection's thread.
                Outgoing::Done(outcome, _scope) => return Ending::Outcome(outcome),
                Outgoing::Expired(_scope) => return Ending::Expired,
                Outgoing::Dropped => return Ending::Dropped,
                Outgoing::Part(part) => part,
            };
            if gone.load(Ordering::SeqCst) {
                continue;
            }
            // One send at a time, of one event; a part with both gives its body next.
            let (first, then) = match part {
                ResponsePart::Start { status, headers } => {
                    (SendEvent::response_start(status, headers), None)
                }
                ResponsePart::Body { data, more_body } => {
                    (SendEvent::response_body(data, more_body), None)
                }
                ResponsePart::StartWithBody {
                    status,
                    headers,
                    data,
                    more_body,
                } => (
                    SendEvent::response_start(status, headers),
                    Some((data, more_body)),
                ),
            };
            (send_event(send, first), then)
        };
        let mut sent = sending.await;
        if let (Ok(()), Some((data, more_body))) = (&sent, then) {
            sent = send_event(send, SendEvent::response_body(data, more_body)).await;
        }
        if let Err(e) = sent {
            if !e.is_disconnected() {
                // The response state machine only produces parts in protocol order; a
                // sender wrapped by middleware may still refuse one.
                tracing::error!(error = %e, "the sender refused a WSGI response part");
            }
            gone.store(true, Ordering::SeqCst);
        }
    }
}

/// A send of [`send_event`]: done, or waiting in the sender's boxed `send`.
type Sending<'a> = Either<Ready<Result<(), SendError>>, BoxFuture<'a, Result<(), SendError>>>;

/// Sends `event`: at once when the sender takes it without waiting (a server storing a
/// response head), else through the sender's boxed `send`. Not an `async fn`, and not a
/// [`Sender::send`] future: the future that awaits this holds a box pointer, not the event.
fn send_event(send: &mut Sender, event: SendEvent) -> Sending<'_> {
    match EventSink::send_now(send, event) {
        Ok(result) => Either::Left(std::future::ready(result)),
        Err(event) => Either::Right(EventSink::send(send, event)),
    }
}

/// The blocking end of the response channel, where the host's response state delivers the
/// parts of a response. `send` blocks for backpressure; an error means the client is gone.
pub(crate) struct ChannelOutput {
    tx: mpsc::Sender<Outgoing>,
    signals: Arc<CallSignals>,
}

impl ChannelOutput {
    pub(crate) fn send(&mut self, part: ResponsePart) -> io::Result<()> {
        if self.signals.gone.load(Ordering::SeqCst) {
            return Err(client_gone());
        }
        if send_blocking(&self.tx, Outgoing::Part(part)) {
            Ok(())
        } else {
            Err(client_gone())
        }
    }
}

/// Sends from the app's thread: at once when there is room (the common case, without the
/// cost of blocking on a future), else waiting for room. False when the receiver is gone.
fn send_blocking(tx: &mpsc::Sender<Outgoing>, message: Outgoing) -> bool {
    match tx.try_send(message) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(message)) => tx.blocking_send(message).is_ok(),
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

fn client_gone() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "the client disconnected")
}
