//! [`TestStream`]: a response read event by event, and a client that can leave mid-way.

use std::fmt;

use asgi_core::bytes::Bytes;
use asgi_core::http::header::AsHeaderName;
use asgi_core::http::{HeaderMap, StatusCode};
use asgi_core::{Error, SendEvent};

use super::exchange::TestExchange;
use super::{extend, read_pathsend, unexpected};

/// A response whose head has arrived, read body event by body event as the app sends it;
/// from [`TestClient::stream`](super::TestClient::stream).
///
/// [`chunk`](TestStream::chunk) returns each `http.response.body` event's bytes when the app
/// sends it, so a test can check what the app does between chunks;
/// [`disconnect`](TestStream::disconnect) leaves like a client that closed the connection.
/// Dropping the stream also disconnects, without waiting for the app.
///
/// # Example
///
/// ```
/// use asgi_core::bytes::Bytes;
/// use asgi_core::{Error, Receiver, Scope, Sender};
/// use asgi_http::response::Response;
/// use asgi_http::test_client::{TestClient, TestRequest};
/// use futures_util::stream;
///
/// async fn ticks(_: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
///     let ticks = stream::iter(["tick 1\n", "tick 2\n"].map(|t| Ok::<_, Error>(Bytes::from(t))));
///     Response::streaming(ticks).send(&mut send).await
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let client = TestClient::new(ticks);
/// let mut stream = client.stream(TestRequest::get("/")).await?;
/// assert_eq!(stream.status(), 200);
/// assert_eq!(stream.chunk().await?.as_deref(), Some(&b"tick 1\n"[..]));
/// assert_eq!(stream.chunk().await?.as_deref(), Some(&b"tick 2\n"[..]));
/// assert_eq!(stream.chunk().await?, None);
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// ```
pub struct TestStream {
    exchange: TestExchange,
    status: StatusCode,
    headers: HeaderMap,
    trailers_expected: bool,
    trailers: HeaderMap,
    head_only: bool,
    max_response_body: Option<usize>,
    raise_app_errors: bool,
    body_done: bool,
    awaiting_trailers: bool,
    finished: bool,
}

impl fmt::Debug for TestStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestStream")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body_done", &self.body_done)
            .finish_non_exhaustive()
    }
}

impl TestStream {
    pub(super) fn new(
        exchange: TestExchange,
        status: StatusCode,
        headers: HeaderMap,
        trailers_expected: bool,
        head_only: bool,
        max_response_body: Option<usize>,
        raise_app_errors: bool,
    ) -> Self {
        TestStream {
            exchange,
            status,
            headers,
            trailers_expected,
            trailers: HeaderMap::new(),
            head_only,
            max_response_body,
            raise_app_errors,
            body_done: false,
            awaiting_trailers: false,
            finished: false,
        }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The first value of the header `name`, if it is there and visible ASCII.
    pub fn header(&self, name: impl AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The trailers received so far; all of them once [`chunk`](TestStream::chunk) returned
    /// `None`.
    pub fn trailers(&self) -> &HeaderMap {
        &self.trailers
    }

    /// The bytes of the app's next `http.response.body` event, as soon as it is sent;
    /// `None` once the body (and its trailers) are complete and the app returned. Empty
    /// events are skipped; a `HEAD` response gives no chunks; an `http.response.pathsend`
    /// gives the whole file as one chunk.
    ///
    /// # Errors
    ///
    /// A protocol mistake by the app, its error or panic (see
    /// [`raise_app_errors`](super::TestClient::raise_app_errors)), an app that returned
    /// before completing the body, a path-sent file that cannot be read, or a timeout.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future while it waits for the app's next event loses nothing.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            if self.body_done && !self.awaiting_trailers {
                if !self.finished {
                    self.finished = true;
                    match self.exchange.finish().await {
                        Err(e) if self.raise_app_errors || e.is_protocol() => return Err(e),
                        _ => {}
                    }
                }
                return Ok(None);
            }
            match self.exchange.next().await? {
                Some(SendEvent::HttpResponseBody { body, more_body }) => {
                    if !more_body {
                        self.end_body();
                    }
                    if !body.is_empty() && !self.head_only {
                        return Ok(Some(body));
                    }
                }
                Some(SendEvent::HttpResponsePathsend { path }) => {
                    self.end_body();
                    let file = read_pathsend(&path, 0, self.max_response_body).await?;
                    if !file.is_empty() && !self.head_only {
                        return Ok(Some(file));
                    }
                }
                Some(SendEvent::HttpResponseTrailers {
                    headers,
                    more_trailers,
                }) => {
                    extend(&mut self.trailers, headers);
                    if !more_trailers {
                        self.awaiting_trailers = false;
                    }
                }
                Some(other) => return Err(unexpected(&other)),
                None => {
                    self.finished = true;
                    self.exchange.finish().await?;
                    return Err(Error::msg(if self.body_done {
                        "the app returned before sending its `http.response.trailers`"
                    } else {
                        "the app returned before completing the response body"
                    }));
                }
            }
        }
    }

    fn end_body(&mut self) {
        self.body_done = true;
        self.awaiting_trailers = self.trailers_expected;
    }

    /// Leaves like a client that closed the connection mid-response: the app's pending and
    /// later `recv` return `http.disconnect`, its `send` returns `Disconnected`. Waits for
    /// the app to return and gives what it returned (an app that propagated the failed
    /// `send` with `?` returns an error for which `is_disconnected()` is true).
    ///
    /// # Errors
    ///
    /// The app's result, a protocol mistake it made, or a timeout.
    pub async fn disconnect(mut self) -> Result<(), Error> {
        self.exchange.disconnect();
        self.exchange.finish().await
    }
}
