//! The end of a request, as a guard: when hyper is done with a response (its body was sent
//! or dropped), the request is over for the app, its access log line is written, and the
//! connection counts one request less in flight.

use std::sync::Arc;

use super::access_log::AccessLog;
use super::exchange::{EndReason, Exchange};
use super::shared::ActivityGuard;
use crate::middleware::request_id::X_REQUEST_ID;

/// See the module docs. The service creates it with the request and owns it until the
/// response head is ready; then the response body owns it and ends it when hyper drops the
/// body. Dropped before that (hyper gave up on the response), it only ends the request's
/// count in flight: the service tells the app that the client left.
#[derive(Debug)]
pub(crate) struct FinishGuard<B> {
    /// The request's exchange with the app, for HTTP requests; `None` for responses the
    /// server makes itself and WebSocket handshakes.
    exchange: Option<Arc<Exchange<B>>>,
    log: Option<Box<AccessLog>>,
    activity: ActivityGuard,
}

impl<B> FinishGuard<B> {
    pub(crate) fn new(activity: ActivityGuard, log: Option<Box<AccessLog>>) -> Self {
        FinishGuard {
            exchange: None,
            log,
            activity,
        }
    }

    /// The request's exchange, closed when the request ends.
    pub(crate) fn set_exchange(&mut self, exchange: Arc<Exchange<B>>) {
        self.exchange = Some(exchange);
    }

    /// The response head with `status` and `headers` went out. The headers are read only
    /// for the access log (the request id), and only when it is on.
    pub(crate) fn responded(&mut self, status: u16, headers: &http::HeaderMap) {
        if let Some(log) = &mut self.log {
            log.set_status(status);
            let id = crate::response::response_header(headers, &X_REQUEST_ID);
            log.set_request_id(id);
        }
    }

    /// Ends the request: `bytes` of body went to hyper; `complete` is false when the
    /// response was cut short (the client left, or it was aborted).
    pub(crate) fn finish(self, bytes: u64, complete: bool) {
        if complete {
            self.activity.response_completed();
        }
        if let Some(exchange) = &self.exchange {
            exchange.close(if complete {
                EndReason::ResponseComplete
            } else {
                EndReason::ClientGone
            });
        }
        if let Some(log) = self.log {
            log.write(bytes, complete);
        }
    }
}
