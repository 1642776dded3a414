//! One request's app call, and who polls it.
//!
//! The connection's task polls the app for as long as hyper waits on the request: hyper's
//! future for the response head polls it until the head is ready, then the response body
//! polls it each time hyper asks for more. An app that answers without waiting is done in
//! the first poll. One that waits (on a thread pool, a database, a timer) is woken in the
//! connection's task, where its response goes out, with no task of its own and no wake-up
//! across tasks. When hyper lets go of the request (the response was sent or abandoned)
//! while the app still runs, the app is [detached](AppCall::detach) into a task of the
//! server's, which the drain waits for: it is never dropped mid-await, so it learns from
//! `recv` that the request ended, as ASGI says.

use std::borrow::BorrowMut;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use asgi_core::Error;
use asgi_core::app::AppFuture;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::task::TaskTracker;

use super::exchange::{EndReason, Exchange, Progress};

/// A running app call and what it holds until it returns. `B` is the server's response body
/// (generic only so that this module does not depend on the body's).
pub(crate) struct AppCall<B> {
    run: AppRun<B>,
    /// The call's place among the connection's (HTTP/2), held until the app returns.
    permit: Option<OwnedSemaphorePermit>,
    /// The server's app tasks, where the call goes on once hyper lets go of the request.
    tasks: TaskTracker,
}

impl<B> std::fmt::Debug for AppCall<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCall").finish_non_exhaustive()
    }
}

impl<B: Send + 'static> AppCall<B> {
    /// Starts an app call: `call` calls the app (the server's `call` also builds the scope
    /// there, so that it is made where the app takes it). A panic in it (an app that does work
    /// before it returns its future) is the call's outcome, a 500, as one while it runs is.
    pub(crate) fn start(
        exchange: Arc<Exchange<B>>,
        permit: Option<OwnedSemaphorePermit>,
        tasks: TaskTracker,
        call: impl FnOnce() -> AppFuture<'static>,
    ) -> Self {
        let call = std::panic::catch_unwind(AssertUnwindSafe(call)).unwrap_or_else(|payload| {
            Box::pin(std::future::ready(Err(Error::from_panic(payload))))
        });
        AppCall {
            run: AppRun {
                call: Some(call),
                exchange,
            },
            permit,
            tasks,
        }
    }

    /// Polls the call in `slot`, if there is one, and empties the slot once the app returned
    /// (its end logged, its permit released). Never unwinds: a panic in the app is its outcome.
    pub(crate) fn poll_in<C: BorrowMut<Self>>(slot: &mut Option<C>, cx: &mut Context<'_>) {
        if let Some(call) = slot {
            if Pin::new(&mut call.borrow_mut().run).poll(cx).is_ready() {
                *slot = None;
            }
        }
    }

    /// Runs the rest of the call in a task of the server's, holding its permit until the app
    /// returns.
    pub(crate) fn detach(self) {
        let AppCall { run, permit, tasks } = self;
        tasks.spawn(async move {
            run.await;
            drop(permit);
        });
    }
}

/// The app's own future, and the log line of how it ended. The future borrows nothing (the app
/// is called through [`App::call_owned`](asgi_core::App::call_owned)), so this moves into a
/// task as it is, with no box of its own.
struct AppRun<B> {
    /// The app's future; `None` once it returned.
    call: Option<AppFuture<'static>>,
    /// The request's exchange: its method and target, and what became of its response.
    exchange: Arc<Exchange<B>>,
}

impl<B> Future for AppRun<B> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let Some(call) = this.call.as_mut() else {
            return Poll::Ready(());
        };
        let result = match std::panic::catch_unwind(AssertUnwindSafe(|| call.as_mut().poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(result)) => result,
            Err(payload) => Err(Error::from_panic(payload)),
        };
        // The app's future goes first: dropping its sender finishes the response (a 500 if
        // nothing was sent, an aborted body if it was incomplete) before the outcome is read.
        this.call = None;
        log_end(&this.exchange, result);
        Poll::Ready(())
    }
}

/// Logs how the app call ended, by its result and what became of the response.
fn log_end<B>(exchange: &Exchange<B>, result: Result<(), Error>) {
    let (method, path) = exchange.request_line();
    let (progress, closed) = exchange.outcome();
    let client_gone = matches!(
        closed,
        Some(EndReason::ClientGone | EndReason::BodyTooLarge | EndReason::MalformedBody)
    );
    match result {
        Err(e) if !e.is_disconnected() => match progress {
            Progress::NotStarted if client_gone => {
                tracing::error!(%method, path, error = %e, "app failed; the client had left");
            }
            Progress::NotStarted => {
                tracing::error!(%method, path, error = %e, "app failed before its response: answered 500");
            }
            Progress::Streaming => {
                tracing::error!(%method, path, error = %e, "app failed during its response: response aborted");
            }
            Progress::Complete => {
                tracing::error!(%method, path, error = %e, "app failed after its response was sent");
            }
        },
        // A client that leaves is a normal end, never an error.
        _ if client_gone => {
            tracing::debug!(%method, path, "request ended: the client left");
        }
        Err(_) => {
            tracing::debug!(%method, path, "the app stopped: its peer disconnected");
        }
        Ok(()) => match progress {
            Progress::Complete => {}
            Progress::NotStarted => {
                tracing::error!(%method, path, "app returned without sending a response: answered 500");
            }
            Progress::Streaming => {
                tracing::error!(%method, path, "app returned before its response was complete: response aborted");
            }
        },
    }
}
