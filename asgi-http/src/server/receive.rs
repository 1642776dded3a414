//! The app's `receive` for one HTTP request: `http.request` events pulled from hyper's
//! request body as the app asks for them, then `http.disconnect`.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use asgi_core::{EventSource, ReceiveEvent, async_trait};
use bytes::Bytes;
use http::StatusCode;
use http_body::Body;
use hyper::body::Incoming;

use super::body::{ServerExchange, server_response};
use super::exchange::EndReason;

/// The request body as `http.request` events.
///
/// Nothing is read before the app calls `recv` (so hyper answers `Expect: 100-continue` when
/// the app first reads, and HTTP/2 flow control follows the app). Once the body is read,
/// `recv` waits for the end of the request (client gone, or the response complete) and then
/// returns `http.disconnect`, on that call and every later one.
pub(crate) struct RequestBody {
    /// The body still to read; `None` once it ended.
    body: Option<Incoming>,
    exchange: Arc<ServerExchange>,
    /// Bytes the body may still have before it is over the limit; `None`: no limit.
    allowed: Option<u64>,
    /// HTTP/1: a 413 asks the client to close the connection (HTTP/2 resets the stream).
    http1: bool,
    disconnected: bool,
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody")
            .field("reading", &self.body.is_some())
            .field("disconnected", &self.disconnected)
            .finish_non_exhaustive()
    }
}

impl RequestBody {
    /// A source over `body`, limited to `limit` bytes.
    pub(crate) fn new(
        body: Incoming,
        exchange: Arc<ServerExchange>,
        limit: Option<u64>,
        http1: bool,
    ) -> Self {
        RequestBody {
            body: Some(body),
            exchange,
            allowed: limit,
            http1,
            disconnected: false,
        }
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<ReceiveEvent> {
        if self.disconnected {
            return Poll::Ready(ReceiveEvent::HttpDisconnect);
        }
        while let Some(body) = &mut self.body {
            match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    // Request trailers have no ASGI event: they are skipped.
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if let Some(allowed) = &mut self.allowed {
                        match allowed.checked_sub(data.len() as u64) {
                            Some(left) => *allowed = left,
                            None => return Poll::Ready(self.reject_too_large()),
                        }
                    }
                    let more_body = !body.is_end_stream();
                    if !more_body {
                        self.body = None;
                    }
                    return Poll::Ready(ReceiveEvent::HttpRequest {
                        body: data,
                        more_body,
                    });
                }
                Poll::Ready(None) => {
                    self.body = None;
                    return Poll::Ready(ReceiveEvent::HttpRequest {
                        body: Bytes::new(),
                        more_body: false,
                    });
                }
                Poll::Ready(Some(Err(e))) => {
                    self.body = None;
                    self.disconnected = true;
                    if is_malformed(&e) {
                        // The client sent a body hyper cannot decode: 400, and the app's
                        // request ends as if the client had left.
                        tracing::info!(error = %e, "malformed request body: answering 400");
                        self.exchange.reject_body(
                            server_response(StatusCode::BAD_REQUEST, self.http1),
                            EndReason::MalformedBody,
                        );
                    } else {
                        // The connection broke or the stream was reset: the client is gone.
                        tracing::debug!(error = %e, "reading the request body failed");
                        self.exchange.close(EndReason::ClientGone);
                    }
                    return Poll::Ready(ReceiveEvent::HttpDisconnect);
                }
                Poll::Pending => break,
            }
        }
        match self.exchange.poll_closed(cx) {
            Poll::Ready(_) => {
                self.disconnected = true;
                self.body = None;
                Poll::Ready(ReceiveEvent::HttpDisconnect)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// The body went over the limit: the client gets 413 (if the response had not started),
    /// the rest of the body is not read, and the app gets `http.disconnect`.
    fn reject_too_large(&mut self) -> ReceiveEvent {
        tracing::info!("request body over the limit: answering 413");
        // Dropping the body tells hyper to stop reading it (it closes an HTTP/1 connection
        // rather than read much more); the 413 asks an HTTP/1 client to close.
        self.body = None;
        self.disconnected = true;
        self.exchange.reject_body(
            server_response(StatusCode::PAYLOAD_TOO_LARGE, self.http1),
            EndReason::BodyTooLarge,
        );
        ReceiveEvent::HttpDisconnect
    }
}

/// True when reading the body failed because the client sent something hyper's decoder
/// refuses (a chunk size that is not hex or overflows, a bare LF in a chunk extension): hyper
/// reports those as `InvalidData` or `InvalidInput` I/O errors, while a client that left
/// gives an unexpected EOF, a reset, or an HTTP/2 error.
pub(crate) fn is_malformed(error: &hyper::Error) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<std::io::Error>())
        .is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
            )
        })
}

#[async_trait]
impl EventSource for RequestBody {
    async fn recv(&mut self) -> ReceiveEvent {
        // Cancel safe: `poll_event` only takes an event out when it returns it.
        poll_fn(|cx| self.poll_event(cx)).await
    }
}
