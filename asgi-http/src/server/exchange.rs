//! The state one request shares between hyper's side (the service future, the response body)
//! and the app's side (its `Receiver` and `Sender`), which may run in different tasks.
//!
//! It is one allocation per request, with one lock held for a few instructions at a time: the
//! response head travels through it (a one-shot slot the service future waits on), and it
//! records why the app's `recv` now returns `http.disconnect`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use http::uri::PathAndQuery;
use http::{Method, Response};

/// How far the app got with its response, for the log line written when it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// No response head from the app reached the connection.
    NotStarted,
    /// The head went out and the body is streaming.
    Streaming,
    /// The app sent the whole response.
    Complete,
}

/// Why the request is over for the app: its `recv` returns `http.disconnect` from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndReason {
    /// The client went away (connection closed, stream reset) or the response was aborted.
    ClientGone,
    /// The response was sent completely (ASGI: `recv` after the response gives a disconnect).
    ResponseComplete,
    /// The request body went over the server's limit; the client got (or gets) a 413.
    BodyTooLarge,
    /// The request body was malformed (a bad chunk size, say); the client got (or gets) a
    /// 400.
    MalformedBody,
}

// The head is large (a whole response head) but lives inside the exchange's one allocation per
// request; boxing it would add a second one.
#[allow(clippy::large_enum_variant)]
enum Head<B> {
    /// The service future waits for the head; its waker, once it polled.
    Waiting(Option<Waker>),
    /// The head is ready for the service future to take.
    Ready(Response<B>),
    /// The service future took the head (or gave up on it: the client left).
    Taken,
}

struct Inner<B> {
    head: Head<B>,
    closed: Option<EndReason>,
    /// The app's pending `recv`, woken when `closed` is set.
    recv_waker: Option<Waker>,
    progress: Progress,
}

/// See the module docs. `B` is the response body (the server's body; generic only so that
/// this module does not depend on the body's).
pub(crate) struct Exchange<B> {
    inner: Mutex<Inner<B>>,
    /// The request's method and target, for the log line of how the app call ended (clones
    /// of the request's own bytes). Kept here, in the allocation the request has anyway,
    /// rather than in the future hyper moves on every request.
    method: Method,
    target: Option<PathAndQuery>,
    /// True once `closed` is `ClientGone`: written under the lock, read without it, so that
    /// the check every `send` makes costs a load, not a lock.
    client_gone: AtomicBool,
}

impl<B> std::fmt::Debug for Exchange<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("Exchange")
            .field("closed", &inner.closed)
            .field("progress", &inner.progress)
            .finish_non_exhaustive()
    }
}

impl<B> Exchange<B> {
    /// The exchange of a request with `method` and `target`.
    pub(crate) fn new(method: Method, target: Option<PathAndQuery>) -> Self {
        Exchange {
            method,
            target,
            inner: Mutex::new(Inner {
                head: Head::Waiting(None),
                closed: None,
                recv_waker: None,
                progress: Progress::NotStarted,
            }),
            client_gone: AtomicBool::new(false),
        }
    }

    /// The request's method, and its target (`/` when it had none), for log lines.
    pub(crate) fn request_line(&self) -> (&Method, &str) {
        let target = self.target.as_ref().map_or("/", PathAndQuery::as_str);
        (&self.method, target)
    }

    fn lock(&self) -> MutexGuard<'_, Inner<B>> {
        // Nothing panics while the lock is held (wakers are woken after it is released), so a
        // poisoned lock still guards consistent data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands the app's response head to the connection. `complete` says whether this head
    /// carries the whole response (the fast path).
    ///
    /// Returns false (and drops the response) when nobody waits for a head any more: hyper
    /// gave up on it (the client left), or the server already answered (a 413).
    pub(crate) fn send_head(&self, response: Response<B>, complete: bool) -> bool {
        let progress = if complete {
            Progress::Complete
        } else {
            Progress::Streaming
        };
        self.put_head(response, Some(progress))
    }

    /// Hands a response the server made (a 500 for a failed app, a 413) to the connection,
    /// unless a head was already sent or nobody waits for one.
    pub(crate) fn send_server_head(&self, response: Response<B>) {
        self.put_head(response, None);
    }

    fn put_head(&self, response: Response<B>, progress: Option<Progress>) -> bool {
        let mut inner = self.lock();
        // A head goes to the service future as long as it waits, even when the client is
        // gone: hyper may still be waiting for it to finish the connection.
        let Head::Waiting(waiting) = &mut inner.head else {
            drop(inner);
            // Dropped outside the lock: a response body's drop may lock its exchange.
            drop(response);
            return false;
        };
        let waker = waiting.take();
        // Written in place (the response is moved once, not swapped through a temporary).
        inner.head = Head::Ready(response);
        if let Some(progress) = progress {
            inner.progress = progress;
        }
        drop(inner);
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// The service future's poll: the head once it is ready.
    pub(crate) fn poll_head(&self, cx: &mut Context<'_>) -> Poll<Response<B>> {
        let mut inner = self.lock();
        match std::mem::replace(&mut inner.head, Head::Taken) {
            Head::Ready(response) => Poll::Ready(response),
            Head::Waiting(waker) => {
                let waker = match waker {
                    Some(w) if w.will_wake(cx.waker()) => w,
                    _ => cx.waker().clone(),
                };
                inner.head = Head::Waiting(Some(waker));
                Poll::Pending
            }
            // Polled again after it returned: hyper does not do that; stay pending.
            Head::Taken => Poll::Pending,
        }
    }

    /// Records how far the app got (its response is complete once it sent its last event).
    pub(crate) fn set_progress(&self, progress: Progress) {
        self.lock().progress = progress;
    }

    /// How far the app got, and why the request ended for it (if it did), read together.
    pub(crate) fn outcome(&self) -> (Progress, Option<EndReason>) {
        let inner = self.lock();
        (inner.progress, inner.closed)
    }

    /// Ends the request for the app: its `recv` returns `http.disconnect` from now on, and a
    /// pending one wakes. The first reason given is kept.
    pub(crate) fn close(&self, why: EndReason) {
        let mut inner = self.lock();
        if inner.closed.is_some() {
            return;
        }
        inner.closed = Some(why);
        if why == EndReason::ClientGone {
            self.client_gone.store(true, Ordering::Release);
        }
        let waker = inner.recv_waker.take();
        drop(inner);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// hyper dropped the service future before it took the head: the client is gone, and
    /// nobody will take a head now. One that waits is dropped (after the lock is released),
    /// so that the app's response body and its channel go away and its next `send` fails.
    pub(crate) fn abandon_head(&self) {
        let mut inner = self.lock();
        let unsent = std::mem::replace(&mut inner.head, Head::Taken);
        drop(inner);
        drop(unsent);
        self.close(EndReason::ClientGone);
    }

    /// The request body is refused (`why`: over the limit, or malformed): answers with
    /// `response` (413, 400) if no head was sent yet, and ends the request for the app.
    pub(crate) fn reject_body(&self, response: Response<B>, why: EndReason) {
        self.send_server_head(response);
        self.close(why);
    }

    /// True once the client is gone.
    pub(crate) fn is_client_gone(&self) -> bool {
        self.client_gone.load(Ordering::Acquire)
    }

    /// The app's `recv` waiting for the end of the request: ready once it is closed.
    pub(crate) fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<EndReason> {
        let mut inner = self.lock();
        match inner.closed {
            Some(why) => Poll::Ready(why),
            None => {
                match &inner.recv_waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => inner.recv_waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use bytes::Bytes;
    use http::StatusCode;

    use super::*;
    use crate::server::body::{ResponseBody, server_response};

    fn head(status: StatusCode) -> Response<ResponseBody> {
        let mut response = Response::new(ResponseBody::full(Bytes::from_static(b"x")));
        *response.status_mut() = status;
        response
    }

    #[tokio::test]
    async fn head_reaches_the_waiting_service_future() {
        let exchange = Exchange::<ResponseBody>::new(Method::GET, None);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(exchange.poll_head(&mut cx).is_pending());
        assert!(exchange.send_head(head(StatusCode::CREATED), true));
        let response = poll_fn(|cx| exchange.poll_head(cx)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(exchange.outcome().0, Progress::Complete);
    }

    #[test]
    fn a_second_head_is_refused() {
        let exchange = Exchange::<ResponseBody>::new(Method::GET, None);
        assert!(exchange.send_head(head(StatusCode::OK), false));
        assert!(!exchange.send_head(head(StatusCode::OK), true));
        assert_eq!(exchange.outcome().0, Progress::Streaming);
    }

    #[test]
    fn an_abandoned_head_refuses_the_app_and_means_the_client_left() {
        let exchange = Exchange::<ResponseBody>::new(Method::GET, None);
        exchange.abandon_head();
        assert!(!exchange.send_head(head(StatusCode::OK), true));
        assert!(exchange.is_client_gone());
        assert_eq!(exchange.outcome().0, Progress::NotStarted);
    }

    #[test]
    fn a_head_still_reaches_hyper_after_the_client_left_mid_body() {
        // hyper keeps waiting for the head when the client vanished while sending its body.
        let exchange = Exchange::<ResponseBody>::new(Method::GET, None);
        exchange.close(EndReason::ClientGone);
        exchange.send_server_head(head(StatusCode::INTERNAL_SERVER_ERROR));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let Poll::Ready(response) = exchange.poll_head(&mut cx) else {
            panic!("the head did not arrive");
        };
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn close_wakes_a_pending_recv_and_keeps_the_first_reason() {
        let exchange = std::sync::Arc::new(Exchange::<ResponseBody>::new(Method::GET, None));
        let waiting = {
            let exchange = exchange.clone();
            tokio::spawn(async move { poll_fn(|cx| exchange.poll_closed(cx)).await })
        };
        tokio::task::yield_now().await;
        exchange.close(EndReason::ClientGone);
        exchange.close(EndReason::ResponseComplete);
        assert_eq!(waiting.await.unwrap(), EndReason::ClientGone);
        assert_eq!(exchange.outcome().1, Some(EndReason::ClientGone));
    }

    #[test]
    fn a_body_over_the_limit_answers_413_in_place_of_the_app() {
        let exchange = Exchange::<ResponseBody>::new(Method::GET, None);
        exchange.reject_body(
            server_response(StatusCode::PAYLOAD_TOO_LARGE, true),
            EndReason::BodyTooLarge,
        );
        assert_eq!(exchange.outcome().1, Some(EndReason::BodyTooLarge));
        assert!(!exchange.send_head(head(StatusCode::OK), true));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let Poll::Ready(response) = exchange.poll_head(&mut cx) else {
            panic!("no 413");
        };
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(response.headers()["connection"], "close");
    }
}
