//! A [`TowerApp`](super::TowerApp)'s service on the server's direct path: the request as hyper
//! has it, with no scope between (see `asgi_http::server::DirectService`). The service sees
//! what it sees on the scope's path: the same URI, headers, body and extensions, and the same
//! rule for response trailers.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use asgi_core::BoxError;
use asgi_http::server::{DirectBody, DirectContext, DirectFuture, DirectHttp, DirectResponseBody};
use http::header::{TE, TRAILER};
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use tower_service::Service;

use super::{ReceiverBody, ScopeInfo, has_token, insert_client};

/// The service of a [`TowerApp`](super::TowerApp), called directly by the server.
pub(super) struct DirectTower<S> {
    pub(super) service: S,
}

impl<S, ResBody> DirectHttp for DirectTower<S>
where
    S: Service<Request<ReceiverBody>, Response = Response<ResBody>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    ResBody: Body + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Into<BoxError> + Send,
{
    fn call(&self, request: Request<DirectBody>, context: DirectContext) -> DirectFuture {
        let asked = request
            .headers()
            .get_all(TE)
            .iter()
            .any(|v| has_token(v, b"trailers"));
        let mut request = request.map(ReceiverBody::direct);
        let extensions = request.extensions_mut();
        if let Some(client) = context.client {
            insert_client(extensions, client);
        }
        extensions.insert(ScopeInfo {
            root_path: String::new(),
            state: context.state,
            shutdown: context.shutdown,
        });
        let mut service = self.service.clone();
        // As on the scope's path: a service ready at once (an axum `Router` always is) is
        // called here, and only its future is boxed. The server catches a panic here.
        let mut cx = Context::from_waker(Waker::noop());
        match service.poll_ready(&mut cx) {
            Poll::Ready(Ok(())) => Box::pin(respond(service.call(request), asked)),
            Poll::Ready(Err(e)) => Box::pin(std::future::ready(Err(e.into()))),
            Poll::Pending => Box::pin(async move {
                poll_fn(|cx| service.poll_ready(cx))
                    .await
                    .map_err(Into::into)?;
                respond(service.call(request), asked).await
            }),
        }
    }
}

/// Waits for the service's response and erases its body, keeping its trailers only when
/// the request asked for them or the response names them (`Trailer`), as the scope's path
/// does; the server then applies its own rule (HTTP/1.1 needs `TE: trailers`).
async fn respond<F, E, ResBody>(
    future: F,
    asked: bool,
) -> Result<Response<DirectResponseBody>, BoxError>
where
    F: std::future::Future<Output = Result<Response<ResBody>, E>>,
    E: Into<BoxError>,
    ResBody: Body + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let response = future.await.map_err(Into::into)?;
    let keep_trailers = asked || response.headers().contains_key(TRAILER);
    Ok(response.map(|inner| {
        DirectResponseBody::new(TrailerRule {
            inner,
            keep_trailers,
        })
    }))
}

pin_project_lite::pin_project! {
    /// A response body whose trailers are dropped unless `keep_trailers`.
    struct TrailerRule<B> {
        #[pin]
        inner: B,
        keep_trailers: bool,
    }
}

impl<B: Body> Body for TrailerRule<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        match std::task::ready!(this.inner.poll_frame(cx)) {
            Some(Ok(frame)) if !frame.is_data() && !*this.keep_trailers => {
                tracing::debug!(
                    "response trailers dropped: the scope or the request does not allow them"
                );
                Poll::Ready(None)
            }
            other => Poll::Ready(other),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
