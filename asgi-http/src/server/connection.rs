//! One accepted connection: hyper serves it (HTTP/1.1 or HTTP/2, with upgrades) while this
//! task closes it when it sits idle, shuts it down gracefully when the server drains, and
//! drops it when the drain deadline passes.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures_util::task::AtomicWaker;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::service::ConnService;
use super::shared::{Activity, ConnInfo, Shared, lock};
use super::write_timeout::WriteTimeout;

/// Resolves once the connection has had no request in flight for `timeout`, counted from
/// the end of its last request or from the call, whichever is later; never when `timeout` is
/// `None`.
async fn idle_for(activity: &Activity, timeout: Option<Duration>) {
    let Some(timeout) = timeout else {
        return std::future::pending().await;
    };
    let called = Instant::now();
    loop {
        if activity.active.load(Ordering::Acquire) == 0 {
            let started = activity.started.load(Ordering::Acquire);
            let since = lock(&activity.last_ended).map_or(called, |ended| ended.max(called));
            tokio::time::sleep_until(since + timeout).await;
            if activity.active.load(Ordering::Acquire) == 0
                && activity.started.load(Ordering::Acquire) == started
            {
                return;
            }
        } else {
            // Waiting is announced before the count is read again: a request that ends after
            // that read sees the announcement and notifies (`notify_one` keeps a permit when
            // the wait has not begun), and one that ended before it is seen here.
            activity.idle_waiting.store(true, Ordering::SeqCst);
            if activity.active.load(Ordering::SeqCst) != 0 {
                activity.idle.notified().await;
            }
            // Left set if this future is dropped while it waits (another branch of the
            // connection's `select!` won): requests then notify as they always did, harmlessly.
            activity.idle_waiting.store(false, Ordering::SeqCst);
        }
    }
}

/// How long a connection with no request in flight has to close by itself once it was
/// asked to (the drain started, or its idle timeout passed), before it is dropped: an idle
/// HTTP/1 connection closes at once, an HTTP/2 client needs a round trip to answer the
/// GOAWAY's PING. A client that never answers (a silent HTTP/2 connection) or never finishes
/// its request head (one half-sent, or trickled in) holds nothing longer than this.
pub(crate) const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How long a connection whose HTTP/2 client reset more streams than its allowance is not
/// read from, each time it does: meanwhile no request of it reaches the app. A client that
/// keeps sending resets has more than `http2_max_pending_accept_reset_streams` (20) of them
/// waiting when it is read again, and hyper answers `GOAWAY` with `ENHANCE_YOUR_CALM`: one
/// second is enough for that at more than 20 resets a second, and the default allowance
/// refills faster than that anyway.
pub(crate) const RESET_FLOOD_PAUSE: Duration = Duration::from_secs(1);

/// How long a drain waits for the first request of a connection that has not sent one yet:
/// 1 second. A connection accepted just before the drain began belongs to a client that is
/// sending its request; closing it at once would lose that request (the race that makes a
/// restart drop requests). A client that sends nothing in that time is closed as idle. Not a
/// setting: it only delays the drain of connections that carry nothing.
const DRAIN_FIRST_REQUEST_WAIT: Duration = Duration::from_secs(1);

/// How often the drain looks whether a fresh connection's first request has started.
const DRAIN_FIRST_REQUEST_POLL: Duration = Duration::from_millis(5);

/// Resolves once the connection has started a request, or after `wait`.
async fn first_request(activity: &Activity, wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    while activity.started.load(Ordering::Acquire) == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(DRAIN_FIRST_REQUEST_POLL).await;
    }
}

/// What ends the connection's wait.
enum Event {
    /// hyper finished with the connection.
    Ended(Result<(), Box<dyn std::error::Error + Send + Sync>>),
    /// Shut the connection down gracefully: the server drains, or it sat idle.
    Close(&'static str),
    /// The client reset more streams than it may: stop reading it for a while.
    Pause,
    /// The pause is over.
    Resume,
    /// Drop the connection: the drain deadline passed.
    Force,
    /// Drop the connection: it was asked to close with nothing in flight, and did not.
    Abandon,
}

/// Wakes the connection's task when one of its control futures (drain, deadline, idle timer)
/// is ready, and remembers that it is to be polled. A busy connection's task wakes for every
/// read and write; polling the control futures each time would take the locks of the
/// server-wide drain signals, shared by every connection, on every wake.
struct ControlWake {
    signaled: AtomicBool,
    task: AtomicWaker,
}

impl Wake for ControlWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.signaled.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// What a serving connection waits for beside hyper.
fn serving<'a>(
    shared: &'a Shared,
    activity: &'a Activity,
) -> Pin<Box<dyn Future<Output = Event> + Send + 'a>> {
    Box::pin(async move {
        tokio::select! {
            biased;
            () = shared.force_close.cancelled() => Event::Force,
            () = async {
                shared.graceful.cancelled().await;
                first_request(activity, DRAIN_FIRST_REQUEST_WAIT).await;
            } => Event::Close("the server is draining"),
            () = idle_for(activity, shared.config.idle_timeout()) => {
                Event::Close("idle connection")
            }
            () = activity.reset_flood.notified() => Event::Pause,
        }
    })
}

/// Serves one connection until it ends, the server drains it, or the drain deadline closes
/// it. `permit` holds the connection's place under `max_connections`.
pub(crate) async fn serve<I>(
    io: I,
    info: ConnInfo,
    shared: Arc<Shared>,
    permit: Option<OwnedSemaphorePermit>,
) where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    // Shared with the WebSockets this connection upgrades to, which outlive this task.
    let permit = permit.map(Arc::new);
    let config = &shared.config;
    let activity = Arc::new(Activity::new(
        config.http2_max_concurrent_streams,
        config.http2_max_client_resets,
    ));
    let service = ConnService::new(shared.clone(), info, activity.clone(), permit);
    let io = WriteTimeout::new(io, config.write_timeout);
    let conn = shared
        .http
        .serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);

    let wake = Arc::new(ControlWake {
        // Polled once at the start, to register with the control futures.
        signaled: AtomicBool::new(true),
        task: AtomicWaker::new(),
    });
    let control_waker = Waker::from(wake.clone());
    // True once the drain deadline gave WebSocket streams time to close.
    let mut grace = false;
    // True while the connection is neither read nor written, after a reset flood.
    let mut paused = false;
    let mut control = serving(&shared, &activity);
    loop {
        let event = poll_fn(|cx| {
            wake.task.register(cx.waker());
            if wake.signaled.swap(false, Ordering::AcqRel) {
                let mut control_cx = Context::from_waker(&control_waker);
                if let Poll::Ready(event) = control.as_mut().poll(&mut control_cx) {
                    return Poll::Ready(event);
                }
            }
            if paused {
                return Poll::Pending;
            }
            conn.as_mut().poll(cx).map(Event::Ended)
        })
        .await;
        match event {
            Event::Ended(Ok(())) => break,
            Event::Ended(Err(e)) => {
                // Clients that vanish, send garbage or time out end here: their problem, not
                // the server's, so it is not an error in the log.
                tracing::debug!(error = %e, "connection ended with an error");
                break;
            }
            Event::Pause => {
                tracing::info!(
                    "HTTP/2 client over its stream reset allowance: pausing its connection"
                );
                paused = true;
                control = Box::pin(async {
                    tokio::select! {
                        biased;
                        () = shared.force_close.cancelled() => Event::Force,
                        () = tokio::time::sleep(RESET_FLOOD_PAUSE) => Event::Resume,
                    }
                });
            }
            Event::Resume => {
                paused = false;
                control = serving(&shared, &activity);
            }
            // A forced stop (`shutdown_now`) does not wait for close handshakes.
            Event::Force
                if activity.websockets.load(Ordering::Acquire) > 0
                    && !grace
                    && !shared.immediate.is_cancelled() =>
            {
                // Its WebSocket streams got their 1001 close at this same deadline: the
                // connection carries their close handshakes, for up to the close timeout,
                // then is dropped.
                tracing::debug!("waiting for WebSocket close handshakes before closing");
                grace = true;
                paused = false;
                let close_timeout = config.websocket.close_timeout;
                control = Box::pin(async move {
                    match close_timeout {
                        Some(timeout) => tokio::time::sleep(timeout).await,
                        None => std::future::pending().await,
                    }
                    Event::Force
                });
            }
            Event::Force => {
                tracing::debug!("closing a connection still busy at the drain deadline");
                break;
            }
            Event::Abandon => {
                tracing::debug!("dropping a connection with nothing in flight that did not close");
                break;
            }
            Event::Close(why) => {
                tracing::debug!("shutting down a connection: {why}");
                conn.as_mut().graceful_shutdown();
                paused = false;
                control = Box::pin(async {
                    tokio::select! {
                        biased;
                        () = shared.force_close.cancelled() => Event::Force,
                        () = idle_for(&activity, Some(IDLE_CLOSE_GRACE)) => Event::Abandon,
                    }
                });
            }
        }
        // The control future changed: poll it once to register with what it waits for.
        wake.signaled.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::shared::ActivityGuard;

    const TIMEOUT: Duration = Duration::from_secs(5);

    #[tokio::test(start_paused = true)]
    async fn idle_for_resolves_after_the_timeout_without_requests() {
        let activity = Arc::new(Activity::default());
        let started = tokio::time::Instant::now();
        idle_for(&activity, Some(TIMEOUT)).await;
        assert_eq!(started.elapsed(), TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_for_waits_while_a_request_is_in_flight() {
        let activity = Arc::new(Activity::default());
        let guard = ActivityGuard::new(&activity);
        let idle = idle_for(&activity, Some(TIMEOUT));
        tokio::pin!(idle);
        let busy = tokio::time::timeout(TIMEOUT * 3, &mut idle).await;
        assert!(busy.is_err(), "a busy connection counted as idle");
        let ended = tokio::time::Instant::now();
        drop(guard);
        idle.await;
        assert_eq!(ended.elapsed(), TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_for_restarts_when_a_request_came_and_went() {
        let activity = Arc::new(Activity::default());
        let idle = idle_for(&activity, Some(TIMEOUT));
        tokio::pin!(idle);
        assert!(
            tokio::time::timeout(TIMEOUT / 2, &mut idle).await.is_err(),
            "idle too early"
        );
        drop(ActivityGuard::new(&activity));
        let last_request = tokio::time::Instant::now();
        idle.await;
        // From the end of the request, not from when the timer next looked.
        assert_eq!(last_request.elapsed(), TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_for_without_a_timeout_never_resolves() {
        let activity = Arc::new(Activity::default());
        let never =
            tokio::time::timeout(Duration::from_secs(3600), idle_for(&activity, None)).await;
        assert!(never.is_err());
    }
}
