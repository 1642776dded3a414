//! The direct path: an HTTP request handed to a service in hyper's own types, with no scope,
//! `receive` or `send` in between, for an app that is only an adapter over such a service
//! (see [`DirectService`]).

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

use asgi_core::{BoxError, Error, ShutdownSignal, State};
use bytes::{Buf, Bytes};
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// An HTTP service the server calls directly: see [`DirectService`].
///
/// Implemented by adapters (`asgi-tower`'s `TowerApp`), not by apps: an app is written
/// against the ASGI interface, and a host that does not know this trait calls the app.
pub trait DirectHttp: Send + Sync + 'static {
    /// Answers one HTTP request. The request is the one the client sent: its method,
    /// origin-form URI (`/path?query`), version, headers and body; `context` holds what a
    /// scope would add to it.
    ///
    /// The returned future must not fail or panic for a reason the client caused: an error
    /// or a panic is answered with `500`, as an app's is.
    fn call(&self, request: Request<DirectBody>, context: DirectContext) -> DirectFuture;
}

/// The future of [`DirectHttp::call`]: the response, or the error that makes it a `500`.
pub type DirectFuture =
    Pin<Box<dyn Future<Output = Result<Response<DirectResponseBody>, BoxError>> + Send>>;

/// A [`DirectHttp`] service, as an app hands it to the server from
/// [`App::host_service`](asgi_core::App::host_service): the server then calls the service
/// with each HTTP request in hyper's own types, with no scope, `receive` or `send` in
/// between. Cheap to clone.
///
/// `asgi-tower`'s `TowerApp` offers one, so that an axum router served at the root is called
/// as under `axum::serve`, without turning each request into a scope and back. The
/// server takes this direct path only where the answer is the app's own:
///
/// - for HTTP requests (WebSocket handshakes and the lifespan go to the app);
/// - when the server has no `root_path` setting (the app would see it in the scope);
/// - for a request target that is a path (not `OPTIONS *`);
/// - over HTTP/2, when the request's call has a place among the connection's at once, and
///   once a response of the connection completed with no stream reset by its client
///   (otherwise the request waits for a place, or a turn, on the app's path).
///
/// Everything else the server does for a request holds on the direct path too: the checks
/// before the app (`400`, `413`, `431`), the request body limit (a body over it, or one hyper
/// cannot decode, ends in an error for the service and a `413` or `400` for the client, as on
/// the app's path), a `500` for a service that fails or panics before its response, an
/// aborted response for a body that fails after it, trailers over HTTP/1.1 only when the
/// request said `TE: trailers`, the access log, the drain and the HTTP/2 call limit.
///
/// One thing differs, as it differs between hyper and an ASGI server: a client that leaves
/// before its response is complete (a closed connection, a reset HTTP/2 stream) drops the
/// service's future and its response body, as under `axum::serve`; tower services are
/// written to be cancelled so. On the app's path the server runs an app to its end instead,
/// and the app learns of the disconnect from `recv`, as ASGI says.
#[derive(Clone)]
pub struct DirectService {
    inner: Arc<dyn DirectHttp>,
}

impl DirectService {
    /// Wraps `service`.
    pub fn new(service: impl DirectHttp) -> Self {
        DirectService {
            inner: Arc::new(service),
        }
    }

    #[inline]
    pub(crate) fn call(
        &self,
        request: Request<DirectBody>,
        context: DirectContext,
    ) -> DirectFuture {
        self.inner.call(request, context)
    }
}

impl fmt::Debug for DirectService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectService").finish_non_exhaustive()
    }
}

/// What the scope of a request would tell a service beyond the request itself.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DirectContext {
    /// The client (after the trusted proxy headers, as the scope's `client`); `None` for a
    /// Unix socket, or a client a proxy hid.
    pub client: Option<SocketAddr>,
    /// The frozen lifespan state (the scope's `state`).
    pub state: State,
    /// Fires when the server starts draining (the scope's `shutdown`).
    pub shutdown: ShutdownSignal,
}

/// The body of a response a [`DirectHttp`] service gives: any [`Body`], type-erased.
pub struct DirectResponseBody {
    inner: Pin<Box<dyn Body<Data = Bytes, Error = BoxError> + Send>>,
}

impl DirectResponseBody {
    /// Wraps `body`: its data frames become [`Bytes`] (with no copy when they are `Bytes`)
    /// and its error a [`BoxError`].
    pub fn new<B>(body: B) -> Self
    where
        B: Body + Send + 'static,
        B::Error: Into<BoxError>,
    {
        DirectResponseBody {
            inner: Box::pin(ErasedBody { inner: body }),
        }
    }
}

impl fmt::Debug for DirectResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectResponseBody")
            .field("size_hint", &self.inner.size_hint())
            .finish()
    }
}

impl Body for DirectResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.inner.as_mut().poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// A body whose frames are mapped to `Bytes` and its errors to `BoxError`.
    struct ErasedBody<B> {
        #[pin]
        inner: B,
    }
}

impl<B> Body for ErasedBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let inner = self.project().inner;
        match std::task::ready!(inner.poll_frame(cx)) {
            None => Poll::Ready(None),
            Some(Err(e)) => Poll::Ready(Some(Err(e.into()))),
            Some(Ok(frame)) => Poll::Ready(Some(Ok(
                frame.map_data(|mut data| data.copy_to_bytes(data.remaining()))
            ))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What went wrong with a request body that the server answers for itself, as on the app's
/// path: the service gets an error from the body, and the client this status.
#[derive(Debug, Default)]
pub(crate) struct BodyFault(AtomicU8);

/// No fault.
const FAULT_NONE: u8 = 0;
/// The body went over `max_request_body`: `413`.
const FAULT_TOO_LARGE: u8 = 1;
/// hyper could not decode the body: `400`.
const FAULT_MALFORMED: u8 = 2;

impl BodyFault {
    fn set(&self, fault: u8) {
        self.0.store(fault, Ordering::Relaxed);
    }

    /// The status the server answers with instead of the service, if the body failed so.
    pub(crate) fn status(&self) -> Option<StatusCode> {
        match self.0.load(Ordering::Relaxed) {
            FAULT_TOO_LARGE => Some(StatusCode::PAYLOAD_TOO_LARGE),
            FAULT_MALFORMED => Some(StatusCode::BAD_REQUEST),
            _ => None,
        }
    }
}

/// The request body a [`DirectHttp`] service reads: hyper's, under the server's
/// `max_request_body`.
///
/// Nothing is read before the service polls it (so `Expect: 100-continue` is answered then,
/// and HTTP/2 flow control follows the service).
///
/// # Errors
///
/// A frame fails with an [`Error`] for which [`is_disconnected`](Error::is_disconnected) is
/// true when the client left, when the body went over the limit (the client gets `413`) and
/// when hyper could not decode it (`400`): the same error a scope's `http.disconnect` gives
/// `asgi-tower`'s request body. Trailers of the request are passed on.
pub struct DirectBody {
    /// The body still to read; `None` once it ended or failed.
    body: Option<Incoming>,
    /// Bytes the body may still have before it is over the limit; `None`: no limit.
    allowed: Option<u64>,
    /// Shared with the server's future of the response; `None` for a body that is empty from
    /// the start (nothing can go wrong with it, so nothing is shared).
    fault: Option<Arc<BodyFault>>,
}

impl fmt::Debug for DirectBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectBody")
            .field("reading", &self.body.is_some())
            .field("allowed", &self.allowed)
            .finish()
    }
}

impl DirectBody {
    /// A body over `body`, limited to `limit` bytes, and where its faults go (for a body that
    /// is not empty).
    pub(crate) fn new(body: Incoming, limit: Option<u64>) -> (Self, Option<Arc<BodyFault>>) {
        if body.is_end_stream() {
            let empty = DirectBody {
                body: None,
                allowed: limit,
                fault: None,
            };
            return (empty, None);
        }
        let fault = Arc::new(BodyFault::default());
        let direct = DirectBody {
            body: Some(body),
            allowed: limit,
            fault: Some(fault.clone()),
        };
        (direct, Some(fault))
    }

    fn fail(&mut self, fault: u8) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.body = None;
        if let Some(shared) = &self.fault {
            shared.set(fault);
        }
        Poll::Ready(Some(Err(Error::disconnected())))
    }
}

impl Body for DirectBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        let Some(body) = &mut this.body else {
            return Poll::Ready(None);
        };
        match std::task::ready!(Pin::new(body).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let (Some(data), Some(allowed)) = (frame.data_ref(), &mut this.allowed) {
                    match allowed.checked_sub(data.len() as u64) {
                        Some(left) => *allowed = left,
                        None => {
                            tracing::info!("request body over the limit: answering 413");
                            return this.fail(FAULT_TOO_LARGE);
                        }
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            None => {
                this.body = None;
                Poll::Ready(None)
            }
            Some(Err(e)) if super::receive::is_malformed(&e) => {
                tracing::info!(error = %e, "malformed request body: answering 400");
                this.fail(FAULT_MALFORMED)
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "reading the request body failed");
                this.fail(FAULT_NONE)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}
