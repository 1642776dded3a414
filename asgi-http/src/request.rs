//! [`Request`]: a view over an HTTP scope and its [`Receiver`], for app authors.
//!
//! It answers what a handler asks of a request (method, path, query, headers, path
//! parameters, lifespan state) from the scope, and reads the body from the receiver: whole
//! with a size limit ([`body`](Request::body), [`json`](Request::json)), or chunk by chunk as
//! it arrives ([`chunk`](Request::chunk)).

use std::fmt;

use asgi_core::bytes::{Bytes, BytesMut};
use asgi_core::http::header::{self, AsHeaderName};
use asgi_core::http::{HeaderMap, Method, StatusCode};
use asgi_core::{Error, Extensions, HttpScope, ReceiveEvent, Receiver, Scope, State};
use serde::de::DeserializeOwned;

use crate::router::{PathParams, route_path};

/// A body limit for [`Request::body`] and [`Request::json`] when an app has no better
/// number: 2 MiB, enough for any form or JSON document a handler reads into memory, small
/// enough that a client cannot make the app hold much. Pass a limit of your own for larger
/// uploads, or stream them with [`Request::chunk`].
pub const DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// Why the request body could not be read.
///
/// "Too large" and "the client disconnected" are told apart, because the answer differs: a
/// `413` for the first, nothing at all for the second (the client is gone).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is larger than the limit: said so by `content-length` (nothing was read),
    /// or found while reading.
    #[error("the request body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit that was passed.
        limit: usize,
    },
    /// The client disconnected before the body was complete.
    #[error("the client disconnected before the request body was complete")]
    Disconnected,
    /// The body was already read the other way: chunk by chunk, and then whole, or the
    /// other way round. A body can be read once.
    #[error("the request body was already read chunk by chunk")]
    Consumed,
    /// The receiver gave an event that is not part of an HTTP request (a middleware bug).
    #[error("unexpected ASGI event `{0}` while reading the request body")]
    UnexpectedEvent(&'static str),
}

impl BodyError {
    /// The status to answer with: `413` for [`TooLarge`](BodyError::TooLarge), `500` for
    /// the app's own mistakes, and `None` for [`Disconnected`](BodyError::Disconnected),
    /// since no one is left to answer.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            BodyError::TooLarge { .. } => Some(StatusCode::PAYLOAD_TOO_LARGE),
            BodyError::Disconnected => None,
            BodyError::Consumed | BodyError::UnexpectedEvent(_) => {
                Some(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

impl From<BodyError> for Error {
    /// [`BodyError::Disconnected`] becomes [`Error::disconnected`], which servers do not log
    /// as an error; the others keep the `BodyError` as their source.
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::Disconnected => Error::disconnected(),
            other => Error::new(other),
        }
    }
}

/// Why [`Request::json`] failed: the body could not be read, or it is not the JSON asked for.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The body could not be read.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The body is not valid JSON, or not of the expected shape.
    #[error("invalid JSON in the request body: {0}")]
    Invalid(#[source] serde_json::Error),
}

impl JsonError {
    /// The status to answer with: the body error's (see [`BodyError::status`]); `400` for a
    /// body that is not JSON; `422` for JSON of the wrong shape (a missing field, a string
    /// where a number belongs), as axum and FastAPI answer.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            JsonError::Body(e) => e.status(),
            JsonError::Invalid(e) if e.is_data() => Some(StatusCode::UNPROCESSABLE_ENTITY),
            JsonError::Invalid(_) => Some(StatusCode::BAD_REQUEST),
        }
    }
}

impl From<JsonError> for Error {
    fn from(error: JsonError) -> Self {
        match error {
            JsonError::Body(e) => e.into(),
            invalid => Error::new(invalid),
        }
    }
}

/// Why [`Request::param_as`] gave no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamError {
    /// The matched route has no parameter of that name: the route's pattern and the handler
    /// disagree, a bug in the app.
    #[error("the route has no path parameter `{name}`")]
    Missing {
        /// The parameter asked for.
        name: String,
    },
    /// The parameter is there, but does not parse as the type asked for: the client's
    /// mistake.
    #[error("invalid path parameter `{name}`: `{value}` is not a valid {expected} ({reason})")]
    Invalid {
        /// The parameter.
        name: String,
        /// The value in the path, percent-decoded.
        value: String,
        /// The type asked for, e.g. `u64`.
        expected: &'static str,
        /// Why it did not parse, e.g. "invalid digit found in string".
        reason: String,
    },
}

impl ParamError {
    /// The status to answer with: `400` for [`Invalid`](ParamError::Invalid) (the client
    /// sent a path the handler cannot use), `500` for [`Missing`](ParamError::Missing) (the
    /// app's own mistake).
    pub fn status(&self) -> StatusCode {
        match self {
            ParamError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ParamError::Missing { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ParamError> for Error {
    fn from(error: ParamError) -> Self {
        Error::new(error)
    }
}

#[derive(Debug)]
enum BodyState {
    Unread,
    Streaming,
    Complete,
    Buffered(Bytes),
    Failed(BodyError),
}

/// An HTTP request: the scope's keys, and the body read from the [`Receiver`].
///
/// # Reading the body
///
/// A body is read once, one of two ways:
///
/// - whole, with [`body`](Request::body) or [`json`](Request::json), under a size limit.
///   Calling either again gives the same bytes.
/// - chunk by chunk, with [`chunk`](Request::chunk), as the client sends it: for uploads
///   too large to hold, or to process as they arrive.
///
/// Mixing the two gives [`BodyError::Consumed`].
///
/// # Example
///
/// ```
/// use asgi_core::{Error, Receiver, Scope, Sender};
/// use asgi_http::request::{Request, DEFAULT_BODY_LIMIT};
/// use asgi_http::response::Response;
/// use asgi_http::test_client::{TestClient, TestRequest};
///
/// #[derive(serde::Deserialize)]
/// struct Greeting {
///     name: String,
/// }
///
/// async fn greet(scope: Scope, receive: Receiver, mut send: Sender) -> Result<(), Error> {
///     let mut request = Request::from_scope(scope, receive)?;
///     let punctuation = request.query("p").unwrap_or_else(|| "!".to_owned());
///     let greeting: Greeting = match request.json(DEFAULT_BODY_LIMIT).await {
///         Ok(greeting) => greeting,
///         Err(e) => match e.status() {
///             Some(status) => return Response::text(e.to_string()).status(status).send(&mut send).await,
///             None => return Err(e.into()), // the client left
///         },
///     };
///     Response::text(format!("hello {}{punctuation}", greeting.name)).send(&mut send).await
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let client = TestClient::new(greet);
/// let response = client.send(TestRequest::post("/?p=%3F").body(r#"{"name": "ada"}"#)).await?;
/// assert_eq!(response.text(), "hello ada?");
/// let response = client.send(TestRequest::post("/").body("{")).await?;
/// assert_eq!(response.status(), 400);
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// ```
pub struct Request {
    scope: Box<HttpScope>,
    receive: Receiver,
    body: BodyState,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.scope.method)
            .field("path", &self.scope.path)
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

impl Request {
    /// A request over an HTTP scope (boxed, as [`Scope::Http`] holds it, or not) and its
    /// receiver.
    pub fn new(scope: impl Into<Box<HttpScope>>, receive: Receiver) -> Self {
        Request {
            scope: scope.into(),
            receive,
            body: BodyState::Unread,
        }
    }

    /// A request from the scope an app was called with.
    ///
    /// # Errors
    ///
    /// When `scope` is not an HTTP scope; the error names its type. Apps that serve
    /// WebSockets or lifespan too match on the scope first.
    pub fn from_scope(scope: Scope, receive: Receiver) -> Result<Self, Error> {
        match scope {
            Scope::Http(http) => Ok(Request::new(http, receive)),
            other => Err(Error::msg(format!(
                "expected an `http` scope, got `{}`",
                other.type_name()
            ))),
        }
    }

    /// The whole scope.
    pub fn scope(&self) -> &HttpScope {
        &self.scope
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.scope.method
    }

    /// The full path, percent-decoded, including `root_path`.
    pub fn path(&self) -> &str {
        &self.scope.path
    }

    /// The path inside the app: [`path`](Request::path) without `root_path` (see
    /// [`route_path`]).
    pub fn route_path(&self) -> &str {
        route_path(&self.scope.path, &self.scope.root_path)
    }

    /// The raw query string, not decoded.
    pub fn query_string(&self) -> &[u8] {
        &self.scope.query_string
    }

    /// The query's `name=value` pairs, in order, decoded as an HTML form does: `+` is a
    /// space, `%XX` escapes are decoded, and invalid UTF-8 becomes U+FFFD. A name without
    /// `=` has an empty value; empty pairs (`a=1&&b=2`) are skipped.
    pub fn query_pairs(&self) -> impl Iterator<Item = (String, String)> + '_ {
        query_pairs(&self.scope.query_string)
    }

    /// The first value of the query parameter `name`, decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    /// The headers: names lowercase, repeated headers in order.
    pub fn headers(&self) -> &HeaderMap {
        &self.scope.headers
    }

    /// The first value of the header `name`, if it is there and visible ASCII; read
    /// [`headers`](Request::headers) for other bytes and for repeated headers.
    pub fn header(&self, name: impl AsHeaderName) -> Option<&str> {
        self.scope.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The lifespan state shared by every connection.
    pub fn state(&self) -> &State {
        &self.scope.state
    }

    /// The scope's extensions: what the server supports, and what middleware added.
    pub fn extensions(&self) -> &Extensions {
        &self.scope.extensions
    }

    /// The typed value of type `T` that a middleware stored in the scope.
    pub fn extension<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.scope.extensions.get::<T>()
    }

    /// The path parameters a [`Router`](crate::router::Router) matched.
    pub fn path_params(&self) -> Option<&PathParams> {
        self.extension::<PathParams>()
    }

    /// The path parameter `name`, if a router matched one.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.path_params().and_then(|p| p.get(name))
    }

    /// The path parameter `name`, parsed as a `T` (any [`FromStr`](std::str::FromStr) type:
    /// numbers, `bool`, `String`, a type of the app's own).
    ///
    /// # Errors
    ///
    /// [`ParamError::Invalid`] when the value does not parse; its
    /// [`status`](ParamError::status) is `400` and its message names the parameter, the value
    /// and the type. [`ParamError::Missing`] (status `500`) when the route has no such
    /// parameter.
    ///
    /// # Example
    ///
    /// ```
    /// use asgi_core::{Error, Receiver, Scope, Sender};
    /// use asgi_http::request::Request;
    /// use asgi_http::response::Response;
    /// use asgi_http::router::{get, Router};
    /// use asgi_http::test_client::TestClient;
    ///
    /// async fn show_user(scope: Scope, receive: Receiver, mut send: Sender) -> Result<(), Error> {
    ///     let request = Request::from_scope(scope, receive)?;
    ///     let id = match request.param_as::<u64>("id") {
    ///         Ok(id) => id,
    ///         Err(e) => return Response::text(e.to_string()).status(e.status()).send(&mut send).await,
    ///     };
    ///     Response::text(format!("user {}", id + 1)).send(&mut send).await
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let client = TestClient::new(Router::new().route("/users/{id}", get(show_user)));
    /// assert_eq!(client.get("/users/41").await?.text(), "user 42");
    /// let bad = client.get("/users/abc").await?;
    /// assert_eq!(bad.status(), 400);
    /// assert!(bad.text().starts_with("invalid path parameter `id`: `abc` is not a valid u64"));
    /// # Ok::<(), Error>(())
    /// # }).unwrap();
    /// ```
    pub fn param_as<T>(&self, name: &str) -> Result<T, ParamError>
    where
        T: std::str::FromStr,
        T::Err: fmt::Display,
    {
        let value = self.param(name).ok_or_else(|| ParamError::Missing {
            name: name.to_owned(),
        })?;
        value.parse().map_err(|e: T::Err| ParamError::Invalid {
            name: name.to_owned(),
            value: value.to_owned(),
            expected: std::any::type_name::<T>(),
            reason: e.to_string(),
        })
    }

    /// The receiver, e.g. to wait for `http.disconnect` after the body was read.
    pub fn receiver(&mut self) -> &mut Receiver {
        &mut self.receive
    }

    /// The scope, boxed as [`Scope::Http`] holds it, and the receiver.
    pub fn into_parts(self) -> (Box<HttpScope>, Receiver) {
        (self.scope, self.receive)
    }

    /// Reads the whole body, up to `limit` bytes.
    ///
    /// When `content-length` already says the body is larger, nothing is read. A second
    /// call returns the same bytes.
    ///
    /// # Errors
    ///
    /// [`BodyError::TooLarge`] past the limit, [`BodyError::Disconnected`] when the client
    /// left first, [`BodyError::Consumed`] after [`chunk`](Request::chunk) was used.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: the chunks read before the future is dropped are lost.
    pub async fn body(&mut self, limit: usize) -> Result<Bytes, BodyError> {
        match &self.body {
            BodyState::Buffered(bytes) if bytes.len() > limit => {
                return Err(BodyError::TooLarge { limit });
            }
            BodyState::Buffered(bytes) => return Ok(bytes.clone()),
            BodyState::Streaming | BodyState::Complete => return Err(BodyError::Consumed),
            BodyState::Failed(e) => return Err(e.clone()),
            BodyState::Unread => {}
        }
        let declared = self
            .header(header::CONTENT_LENGTH)
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(self.fail(BodyError::TooLarge { limit }));
        }
        let mut buffer = BytesMut::new();
        loop {
            match self.receive.recv().await {
                ReceiveEvent::HttpRequest { body, more_body } => {
                    if buffer.len().saturating_add(body.len()) > limit {
                        return Err(self.fail(BodyError::TooLarge { limit }));
                    }
                    let whole = if !more_body && buffer.is_empty() {
                        // The common case, one event: no copy.
                        Some(body)
                    } else {
                        buffer.extend_from_slice(&body);
                        (!more_body).then(|| std::mem::take(&mut buffer).freeze())
                    };
                    if let Some(whole) = whole {
                        self.body = BodyState::Buffered(whole.clone());
                        return Ok(whole);
                    }
                }
                ReceiveEvent::HttpDisconnect => return Err(self.fail(BodyError::Disconnected)),
                other => return Err(self.fail(BodyError::UnexpectedEvent(other.type_name()))),
            }
        }
    }

    /// Reads the whole body, up to `limit` bytes, and deserializes it as JSON. The
    /// `content-type` is not checked.
    ///
    /// # Errors
    ///
    /// [`JsonError::Body`] when the body cannot be read (see [`body`](Request::body)),
    /// [`JsonError::Invalid`] when it is not JSON of type `T`. [`JsonError::status`] gives
    /// the status to answer with.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe, as [`body`](Request::body).
    pub async fn json<T: DeserializeOwned>(&mut self, limit: usize) -> Result<T, JsonError> {
        let body = self.body(limit).await?;
        serde_json::from_slice(&body).map_err(JsonError::Invalid)
    }

    /// The next chunk of the body as the client sends it; `None` once the body is complete.
    /// Empty chunks are skipped.
    ///
    /// # Errors
    ///
    /// [`BodyError::Disconnected`] when the client left before the body was complete (so a
    /// truncated upload is never mistaken for a whole one), [`BodyError::Consumed`] after
    /// [`body`](Request::body) was used.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped, no chunk is lost.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, BodyError> {
        match &self.body {
            BodyState::Unread | BodyState::Streaming => {}
            BodyState::Complete => return Ok(None),
            BodyState::Buffered(_) => return Err(BodyError::Consumed),
            BodyState::Failed(e) => return Err(e.clone()),
        }
        loop {
            match self.receive.recv().await {
                ReceiveEvent::HttpRequest { body, more_body } => {
                    self.body = if more_body {
                        BodyState::Streaming
                    } else {
                        BodyState::Complete
                    };
                    if !body.is_empty() {
                        return Ok(Some(body));
                    }
                    if !more_body {
                        return Ok(None);
                    }
                }
                ReceiveEvent::HttpDisconnect => return Err(self.fail(BodyError::Disconnected)),
                other => return Err(self.fail(BodyError::UnexpectedEvent(other.type_name()))),
            }
        }
    }

    fn fail(&mut self, error: BodyError) -> BodyError {
        self.body = BodyState::Failed(error.clone());
        error
    }
}

/// Splits and decodes a query string as `application/x-www-form-urlencoded`.
fn query_pairs(query: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    query
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            (decode_form_component(name), decode_form_component(value))
        })
}

fn decode_form_component(raw: &[u8]) -> String {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let decoded: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use asgi_core::Sender;
    use asgi_core::host::testing::TestSession;
    use asgi_core::http::HeaderValue;

    fn pairs(query: &str) -> Vec<(String, String)> {
        query_pairs(query.as_bytes()).collect()
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn query_pairs_decode_plus_and_percent() {
        assert_eq!(
            pairs("q=a+b%2Bc&name=caf%C3%A9"),
            owned(&[("q", "a b+c"), ("name", "caf\u{e9}")])
        );
    }

    #[test]
    fn query_pairs_keep_blank_values_and_skip_empty_pairs() {
        assert_eq!(
            pairs("a=&&b&c=1=2"),
            owned(&[("a", ""), ("b", ""), ("c", "1=2")])
        );
        assert!(pairs("").is_empty());
    }

    #[test]
    fn query_pairs_replace_invalid_utf8() {
        assert_eq!(pairs("x=%FF"), owned(&[("x", "\u{fffd}")]));
    }

    #[test]
    fn body_error_statuses() {
        assert_eq!(
            BodyError::TooLarge { limit: 1 }.status(),
            Some(StatusCode::PAYLOAD_TOO_LARGE)
        );
        assert_eq!(BodyError::Disconnected.status(), None);
        assert!(Error::from(BodyError::Disconnected).is_disconnected());
        assert!(!Error::from(BodyError::TooLarge { limit: 1 }).is_disconnected());
    }

    /// Runs `read` against a request whose client sends `events` and then stays connected.
    async fn with_request<T, F, Fut>(headers: HeaderMap, events: Vec<ReceiveEvent>, read: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(Request) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = T> + Send,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let slot = std::sync::Mutex::new(Some((read, tx)));
        let app = move |scope: Scope, receive: Receiver, _: Sender| {
            let taken = slot.lock().unwrap().take();
            async move {
                let (read, tx) = taken.expect("called once");
                let request = Request::from_scope(scope, receive)?;
                let _ = tx.send(read(request).await);
                Ok::<(), Error>(())
            }
        };
        let mut scope = HttpScope::new(Method::POST, "/");
        scope.headers = headers;
        let mut session = TestSession::start(app, Scope::from(scope));
        for event in events {
            session.send(event).await.unwrap();
        }
        let out = rx.await.unwrap();
        session.disconnect();
        session.finish().await.unwrap();
        out
    }

    #[tokio::test]
    async fn body_joins_chunks_and_can_be_read_again() {
        let events = vec![
            ReceiveEvent::request("ab", true),
            ReceiveEvent::request("", true),
            ReceiveEvent::request("cd", false),
        ];
        let (first, second) = with_request(HeaderMap::new(), events, |mut r| async move {
            (r.body(10).await, r.body(10).await)
        })
        .await;
        assert_eq!(first.unwrap(), "abcd");
        assert_eq!(second.unwrap(), "abcd");
    }

    #[tokio::test]
    async fn declared_content_length_over_limit_reads_nothing() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("100"));
        // No events at all: the limit must be enforced before the first recv.
        let result = with_request(headers, vec![], |mut r| async move { r.body(10).await }).await;
        assert_eq!(result, Err(BodyError::TooLarge { limit: 10 }));
    }

    #[tokio::test]
    async fn chunk_then_body_is_consumed() {
        let events = vec![
            ReceiveEvent::request("ab", true),
            ReceiveEvent::request("cd", false),
        ];
        let (chunk, body) = with_request(HeaderMap::new(), events, |mut r| async move {
            (r.chunk().await, r.body(10).await)
        })
        .await;
        assert_eq!(chunk.unwrap().as_deref(), Some(&b"ab"[..]));
        assert_eq!(body, Err(BodyError::Consumed));
    }

    #[tokio::test]
    async fn unexpected_event_is_named() {
        let events = vec![ReceiveEvent::WebSocketConnect];
        let result = with_request(
            HeaderMap::new(),
            events,
            |mut r| async move { r.body(10).await },
        )
        .await;
        assert_eq!(result, Err(BodyError::UnexpectedEvent("websocket.connect")));
    }

    #[test]
    fn from_scope_rejects_other_scope_types() {
        let scope = Scope::from(asgi_core::WebSocketScope::new("/ws"));
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        drop(tx);
        let receive = Receiver::new(asgi_core::host::channel::ChannelSource::new(&scope, rx));
        let err = Request::from_scope(scope, receive).unwrap_err();
        assert_eq!(err.to_string(), "expected an `http` scope, got `websocket`");
    }
}
