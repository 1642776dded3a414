//! One accepted connection: hyper serves it (HTTP/1.1 or HTTP/2, with upgrades) while this
//! task closes it when it sits idle, shuts it down gracefully when the server drains, and
//! drops it when the drain deadline passes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, OwnedSemaphorePermit};

use super::listener::{ConnInfo, Stream};
use super::run::Shared;
use super::service::ConnService;

/// Counts a connection's requests in flight, for the keep-alive idle timer.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    /// Requests whose response hyper has not finished with.
    active: AtomicUsize,
    /// Requests started so far: tells the idle timer that a request came and went.
    started: AtomicU64,
    /// Notified when `active` drops to zero.
    idle: Notify,
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

/// Resolves once the connection has had no request in flight for `timeout`; never when
/// `timeout` is `None`.
async fn idle_for(activity: &Activity, timeout: Option<Duration>) {
    let Some(timeout) = timeout else {
        return std::future::pending().await;
    };
    loop {
        if activity.active.load(Ordering::Acquire) == 0 {
            let started = activity.started.load(Ordering::Acquire);
            tokio::time::sleep(timeout).await;
            if activity.active.load(Ordering::Acquire) == 0
                && activity.started.load(Ordering::Acquire) == started
            {
                return;
            }
        } else {
            // `notify_one` keeps a permit when nobody waits, so a request that ends between
            // the check above and this wait is not missed.
            activity.idle.notified().await;
        }
    }
}

/// Serves one connection until it ends, the server drains it, or the drain deadline closes
/// it. `permit` holds the connection's place under `max_connections`.
pub(crate) async fn serve(
    stream: Stream,
    info: ConnInfo,
    shared: Arc<Shared>,
    permit: Option<OwnedSemaphorePermit>,
) {
    match stream {
        Stream::Tcp(tcp) => serve_io(tcp, info, shared).await,
        #[cfg(unix)]
        Stream::Unix(unix) => serve_io(unix, info, shared).await,
    }
    drop(permit);
}

async fn serve_io<I>(io: I, info: ConnInfo, shared: Arc<Shared>)
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let activity = Arc::new(Activity::default());
    let service = ConnService::new(shared.clone(), info, activity.clone());
    let conn = shared
        .http
        .serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let idle = idle_for(&activity, shared.config.keep_alive_timeout);
    tokio::pin!(idle);
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    // Clients that vanish, send garbage or time out end here: their problem,
                    // not the server's, so it is not an error in the log.
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            () = shared.force_close.cancelled() => {
                tracing::debug!("closing a connection still busy at the drain deadline");
                break;
            }
            () = shared.graceful.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = &mut idle, if !closing => {
                tracing::debug!("closing an idle keep-alive connection");
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
