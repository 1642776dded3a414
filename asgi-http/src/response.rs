//! [`Response`]: build an HTTP response and send it through a [`Sender`].
//!
//! A response is a status, headers and a body; [`Response::send`] turns it into the ASGI
//! events (`http.response.start`, then `http.response.body` events or one
//! `http.response.pathsend`). Bodies can be in memory ([`text`](Response::text),
//! [`html`](Response::html), [`json`](Response::json), [`bytes`](Response::bytes)), a stream
//! ([`streaming`](Response::streaming)) or a file ([`file`](Response::file)).

use std::borrow::{BorrowMut, Cow};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use asgi_core::app::AppFuture;
use asgi_core::bytes::Bytes;
use asgi_core::extensions::{self, Extensions};
use asgi_core::handle::EventSink;
use asgi_core::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use asgi_core::{BoxError, Error, SendEvent, Sender};
use futures_util::stream::{BoxStream, Stream, StreamExt};
use percent_encoding::{AsciiSet, CONTROLS};
use serde::Serialize;

use crate::file::FileChunks;

pub use crate::file::FILE_CHUNK_SIZE;

/// Bytes that a `Location` header cannot carry as they are: controls, space and the
/// characters RFC 3986 never allows in a URI. `%` is kept so that an already-encoded URL
/// passes through unchanged; non-ASCII bytes are always encoded.
const LOCATION_ENCODE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A header given to [`Response::header`] that is not a valid name or value.
#[derive(Debug)]
struct InvalidHeader(asgi_core::http::Error);

impl fmt::Display for InvalidHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid response header: {}", self.0)
    }
}

impl std::error::Error for InvalidHeader {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

enum Body {
    Full(Bytes),
    Stream(BoxStream<'static, Result<Bytes, BoxError>>),
    Pathsend(PathBuf),
    File(FileChunks),
}

/// An HTTP response that sends itself through a [`Sender`].
///
/// Build it with a constructor for the body, adjust it with [`status`](Response::status)
/// and [`header`](Response::header), and [`send`](Response::send) it:
///
/// | constructor | status | `content-type` | body |
/// | --- | --- | --- | --- |
/// | [`new`](Response::new) | given | none | empty |
/// | [`text`](Response::text) | 200 | `text/plain; charset=utf-8` | the string |
/// | [`html`](Response::html) | 200 | `text/html; charset=utf-8` | the string |
/// | [`json`](Response::json) | 200 | `application/json` | the value, serialized |
/// | [`bytes`](Response::bytes) | 200 | `application/octet-stream` | the bytes |
/// | [`redirect`](Response::redirect) | 303 | none | empty, with `location` |
/// | [`streaming`](Response::streaming) | 200 | none | one event per stream item |
/// | [`file`](Response::file) | 200 | guessed from the extension | the file |
///
/// In-memory and file bodies get a `content-length`; streamed ones do not (the server uses
/// chunked encoding on HTTP/1.1).
///
/// # Example
///
/// ```
/// use asgi_core::http::{header, StatusCode};
/// use asgi_core::{Error, Receiver, Scope, Sender};
/// use asgi_http::response::Response;
/// use asgi_http::test_client::TestClient;
///
/// async fn app(_: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
///     Response::text("created")
///         .status(StatusCode::CREATED)
///         .header(header::CACHE_CONTROL, "no-store")
///         .send(&mut send)
///         .await
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let response = TestClient::new(app).get("/").await?;
/// assert_eq!(response.status(), StatusCode::CREATED);
/// assert_eq!(response.header("cache-control"), Some("no-store"));
/// assert_eq!(response.header("content-length"), Some("7"));
/// assert_eq!(response.text(), "created");
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// ```
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Body,
    // The first header that could not be converted, or the error of a response made from an
    // error (`Response::failed`); `send` returns it instead of sending.
    error: Option<Error>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body = match &self.body {
            Body::Full(bytes) => format!("{} bytes", bytes.len()),
            Body::Stream(_) => "stream".to_owned(),
            Body::Pathsend(path) => format!("pathsend {}", path.display()),
            Body::File(chunks) => format!("file of {} bytes", chunks.remaining()),
        };
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &body)
            .field("error", &self.error)
            .finish()
    }
}

/// A text body's bytes: static text is referred to, not copied; owned text is moved.
fn text_bytes(text: Cow<'static, str>) -> Bytes {
    match text {
        Cow::Borrowed(text) => Bytes::from_static(text.as_bytes()),
        Cow::Owned(text) => Bytes::from(text),
    }
}

impl Response {
    /// A response with `status`, no headers and an empty body.
    pub fn new(status: StatusCode) -> Self {
        Response {
            status,
            headers: HeaderMap::new(),
            body: Body::Full(Bytes::new()),
            error: None,
        }
    }

    fn full(content_type: HeaderValue, body: Bytes) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, content_type);
        Response {
            status: StatusCode::OK,
            headers,
            body: Body::Full(body),
            error: None,
        }
    }

    /// `200 OK`, `text/plain; charset=utf-8`.
    ///
    /// Takes a `&'static str` (sent as it is, without a copy) or a `String` (moved in), as
    /// axum's `IntoResponse` does; a borrowed `&str` is sent with `text(s.to_owned())`.
    pub fn text(text: impl Into<Cow<'static, str>>) -> Self {
        Response::full(TEXT_PLAIN, text_bytes(text.into()))
    }

    /// `200 OK`, `text/html; charset=utf-8`. Takes what [`text`](Response::text) takes.
    pub fn html(html: impl Into<Cow<'static, str>>) -> Self {
        Response::full(TEXT_HTML, text_bytes(html.into()))
    }

    /// `200 OK`, `application/octet-stream`.
    pub fn bytes(bytes: impl Into<Bytes>) -> Self {
        Response::full(OCTET_STREAM, bytes.into())
    }

    /// `200 OK`, `application/json`, with `value` serialized by serde.
    ///
    /// # Errors
    ///
    /// When `value` cannot be serialized (e.g. a map with non-string keys); the error's
    /// source is the [`serde_json::Error`].
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        let body = serde_json::to_vec(value).map_err(Error::new)?;
        Ok(Response::full(APPLICATION_JSON, Bytes::from(body)))
    }

    /// `status` with the JSON body `{"error": message}` (`application/json`): the error
    /// answer of [`HttpError`](crate::handler::HttpError), the request errors and the
    /// [`Router`](crate::router::Router)'s JSON answers.
    ///
    /// # Example
    ///
    /// ```
    /// use asgi_core::http::StatusCode;
    /// use asgi_http::response::Response;
    ///
    /// let response = Response::json_error(StatusCode::NOT_FOUND, "no todo 7");
    /// assert_eq!(response.status_code(), StatusCode::NOT_FOUND);
    /// assert_eq!(response.headers()["content-type"], "application/json");
    /// ```
    pub fn json_error(status: StatusCode, message: impl Into<String>) -> Self {
        let body = serde_json::json!({ "error": message.into() });
        // Infallible: a map with one string is always serializable.
        let body = serde_json::to_vec(&body).unwrap_or_default();
        Response::full(APPLICATION_JSON, Bytes::from(body)).status(status)
    }

    /// A response that sends nothing: [`send`](Response::send) returns `error`, so the
    /// server answers `500` and logs it (or, for a disconnect, neither).
    pub(crate) fn failed(error: Error) -> Self {
        Response {
            error: Some(error),
            ..Response::new(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }

    /// `303 See Other` to `location`: the client follows it with a `GET`, the usual answer
    /// to a form `POST`. Use [`temporary_redirect`](Response::temporary_redirect) (307) or
    /// [`permanent_redirect`](Response::permanent_redirect) (308) to keep the method and
    /// body.
    ///
    /// Characters a URL cannot carry (spaces, non-ASCII, controls) are percent-encoded, so
    /// any string makes a valid header; `%` is kept as it is.
    pub fn redirect(location: &str) -> Self {
        Response::redirect_with(StatusCode::SEE_OTHER, location)
    }

    /// `307 Temporary Redirect` to `location`: the client repeats the same method and body.
    pub fn temporary_redirect(location: &str) -> Self {
        Response::redirect_with(StatusCode::TEMPORARY_REDIRECT, location)
    }

    /// `308 Permanent Redirect` to `location`: like 307, and clients may remember it.
    pub fn permanent_redirect(location: &str) -> Self {
        Response::redirect_with(StatusCode::PERMANENT_REDIRECT, location)
    }

    fn redirect_with(status: StatusCode, location: &str) -> Self {
        let encoded = percent_encoding::utf8_percent_encode(location, LOCATION_ENCODE).to_string();
        // Infallible: after encoding, every byte is visible ASCII (controls, including DEL,
        // and all non-ASCII bytes are percent-encoded), which is what a header value allows.
        let value = HeaderValue::from_str(&encoded).expect("percent-encoded URL is ASCII");
        Response::new(status).header(header::LOCATION, value)
    }

    /// `200 OK` with a body streamed from `stream`: each item becomes one
    /// `http.response.body` event, in order, and a last empty event ends the body.
    ///
    /// The stream is pulled only after the previous event was accepted by the server, so a
    /// slow client slows the stream down (backpressure) and nothing piles up in memory. No
    /// `content-type` is set: add one with [`header`](Response::header).
    ///
    /// An `Err` item ends the response: [`send`](Response::send) returns it, and the server
    /// aborts the response, so the client can tell the body is incomplete.
    pub fn streaming<S, E>(stream: S) -> Self
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Response {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Body::Stream(stream.map(|item| item.map_err(Into::into)).boxed()),
            error: None,
        }
    }

    /// `200 OK` with the file at `path` as the body, `content-type` guessed from its
    /// extension (`application/octet-stream` when unknown) and `content-length` from its size.
    ///
    /// When `extensions` (the scope's) declare `http.response.pathsend`, the body is one
    /// `http.response.pathsend` event with the file's absolute path, and the server sends the
    /// file itself. Otherwise the file is opened now and read in chunks of
    /// [`FILE_CHUNK_SIZE`] while sending, one `http.response.body` event each.
    ///
    /// # Errors
    ///
    /// The I/O error when the file cannot be found, opened or read, or
    /// [`io::ErrorKind::InvalidInput`] when `path` is not a regular file. Nothing has been
    /// sent then: answer it as you like, e.g. with a 404 for [`io::ErrorKind::NotFound`].
    ///
    /// # Example
    ///
    /// ```
    /// use std::io::ErrorKind;
    ///
    /// use asgi_core::http::StatusCode;
    /// use asgi_core::{Error, Receiver, Scope, Sender};
    /// use asgi_http::response::Response;
    ///
    /// async fn download(scope: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
    ///     let Some(extensions) = scope.extensions() else { return Ok(()) };
    ///     let response = match Response::file("report.pdf", extensions).await {
    ///         Ok(response) => response,
    ///         Err(e) if e.kind() == ErrorKind::NotFound => {
    ///             Response::text("no such file").status(StatusCode::NOT_FOUND)
    ///         }
    ///         Err(e) => return Err(e.into()),
    ///     };
    ///     response.send(&mut send).await
    /// }
    /// # fn assert_app(_: impl asgi_core::App) {}
    /// # assert_app(download);
    /// ```
    pub async fn file(path: impl AsRef<Path>, extensions: &Extensions) -> io::Result<Self> {
        let path = tokio::fs::canonicalize(path.as_ref()).await?;
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type_for(&path)),
        );
        let (body, len) = if extensions.supports(extensions::HTTP_RESPONSE_PATHSEND) {
            let metadata = tokio::fs::metadata(&path).await?;
            require_file(&metadata, &path)?;
            (Body::Pathsend(path), metadata.len())
        } else {
            let chunks = FileChunks::open(&path).await?;
            let len = chunks.remaining();
            (Body::File(chunks), len)
        };
        headers.insert(header::CONTENT_LENGTH, content_length(len));
        Ok(Response {
            status: StatusCode::OK,
            headers,
            body,
            error: None,
        })
    }

    /// Sets the status.
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Sets the header `name` to `value`, replacing any value it had.
    ///
    /// `name` and `value` are anything that converts to a header name and value, as for
    /// the test client's requests: `"cache-control"` and `"no-store"` as well as
    /// [`header::CACHE_CONTROL`] and a [`HeaderValue`]. A name or value that is not valid
    /// (a space in a name, a newline in a value) makes [`send`](Response::send) fail with
    /// the conversion error before anything is sent, so the server answers 500.
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: Into<asgi_core::http::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<asgi_core::http::Error>,
    {
        if let Some((name, value)) = self.convert_header(name, value) {
            self.headers.insert(name, value);
        }
        self
    }

    /// Adds a value for the header `name`, keeping the ones it had (e.g. a second
    /// `set-cookie`). Takes what [`header`](Response::header) takes.
    pub fn append_header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: Into<asgi_core::http::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<asgi_core::http::Error>,
    {
        if let Some((name, value)) = self.convert_header(name, value) {
            self.headers.append(name, value);
        }
        self
    }

    fn convert_header<K, V>(&mut self, name: K, value: V) -> Option<(HeaderName, HeaderValue)>
    where
        K: TryInto<HeaderName>,
        K::Error: Into<asgi_core::http::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<asgi_core::http::Error>,
    {
        let converted = name
            .try_into()
            .map_err(Into::into)
            .and_then(|name| Ok((name, value.try_into().map_err(Into::into)?)));
        match converted {
            Ok(pair) => Some(pair),
            Err(e) => {
                self.error
                    .get_or_insert_with(|| Error::new(InvalidHeader(e)));
                None
            }
        }
    }

    /// The status.
    pub fn status_code(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The headers, to change them in place.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// Sends the response: `http.response.start`, then the body.
    ///
    /// # Errors
    ///
    /// - a header given to [`header`](Response::header) that is not a valid name or value,
    ///   before anything is sent;
    /// - the [`SendError`](asgi_core::SendError) of `send`, converted: `is_disconnected()`
    ///   when the client left (return it with `?`: it is the normal end), `is_protocol()`
    ///   when a response was already started on this `send`;
    /// - the error of a [`streaming`](Response::streaming) body's `Err` item, or the I/O
    ///   error of reading a [`file`](Response::file) (including a file that became shorter
    ///   than its `content-length`). The head has gone out then; returning the error makes
    ///   the server abort the response.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropping the future part way leaves the response incomplete.
    // The future holds the response and, only when the sink had to wait or the body
    // streams, a pointer at the rest of the sending (see `start_sending`): not a send future
    // with its event, which every caller's future would carry and move.
    pub async fn send(self, send: &mut Sender) -> Result<(), Error> {
        match self.start_sending(send) {
            Sent::Now(result) => result,
            Sent::Later(sending) => sending.await,
        }
    }

    /// Starts sending the response into `send`. A whole body goes out at once when the sink
    /// takes each event without waiting (the server's sink does, through
    /// [`EventSink::send_now`]): nothing is left to await then. What has to wait (a sink
    /// that cannot take an event at once, a body that streams) is returned as a boxed
    /// future, so that the caller's future never holds a send future of its own.
    ///
    /// `send` is the sender or a borrow of it: a caller that owns its sender hands it over,
    /// and gets back a future that borrows nothing (`Sent<'static>`).
    pub(crate) fn start_sending<'a, S>(self, mut send: S) -> Sent<'a>
    where
        S: BorrowMut<Sender> + Send + 'a,
    {
        let Response {
            status,
            mut headers,
            body,
            error,
        } = self;
        if let Some(error) = error {
            return Sent::Now(Err(error));
        }
        let bytes = match body {
            Body::Full(bytes) => bytes,
            body => {
                return Sent::Later(Box::pin(async move {
                    send_body(status, headers, body, send.borrow_mut()).await
                }));
            }
        };
        if allows_body(status) && response_header(&headers, &header::CONTENT_LENGTH).is_none() {
            headers.insert(header::CONTENT_LENGTH, content_length(bytes.len() as u64));
        }
        let body = SendEvent::response_body(bytes, false);
        match send
            .borrow_mut()
            .send_now(SendEvent::response_start(status, headers))
        {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Sent::Now(Err(error.into())),
            Err(start) => {
                return Sent::Later(Box::pin(async move {
                    let send = send.borrow_mut();
                    send.send(start).await?;
                    send.send(body).await?;
                    Ok(())
                }));
            }
        }
        match send.borrow_mut().send_now(body) {
            Ok(result) => Sent::Now(result.map_err(Error::from)),
            Err(body) => Sent::Later(Box::pin(async move {
                send.borrow_mut().send(body).await?;
                Ok(())
            })),
        }
    }
}

// The content types of the whole-body constructors, checked once when compiled rather than
// on every response (`HeaderValue::from_static` checks its bytes).
const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const TEXT_HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
const OCTET_STREAM: HeaderValue = HeaderValue::from_static("application/octet-stream");
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// How far [`Response::start_sending`] got.
pub(crate) enum Sent<'a> {
    /// The response went out (or failed) without waiting.
    Now(Result<(), Error>),
    /// The rest of the sending, which has to wait.
    Later(AppFuture<'a>),
}

/// Puts `headers` where a fresh, empty header map is (a new response's, a new scope's). The
/// map replaced is dropped, unless it has no capacity: such a map holds no memory
/// (`HeaderMap::new` allocates nothing), so it is forgotten instead, which spares the hot path
/// the fifty-odd instructions that dropping even an empty map costs.
pub(crate) fn put_headers(slot: &mut HeaderMap, headers: HeaderMap) {
    let replaced = std::mem::replace(slot, headers);
    if replaced.capacity() == 0 {
        std::mem::forget(replaced);
    }
}

/// The first value of `name` in `headers`. A response has few headers: up to
/// [`SCANNED_HEADERS`] of them, comparing their names costs less than hashing the name for a
/// lookup, so they are compared.
pub(crate) fn response_header<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Option<&'a HeaderValue> {
    if headers.len() <= SCANNED_HEADERS {
        headers
            .iter()
            .find_map(|(key, value)| (key == name).then_some(value))
    } else {
        headers.get(name)
    }
}

/// Up to this many headers, [`response_header`] compares names instead of looking one up. Not
/// a setting: it only picks the cheaper of two ways to the same answer.
const SCANNED_HEADERS: usize = 8;

/// [`Response::send`] for a streamed body, a file and a path to send.
async fn send_body(
    status: StatusCode,
    headers: HeaderMap,
    body: Body,
    send: &mut Sender,
) -> Result<(), Error> {
    match body {
        Body::Full(bytes) => {
            send.send(SendEvent::response_start(status, headers))
                .await?;
            send.send(SendEvent::response_body(bytes, false)).await?;
        }
        Body::Stream(mut stream) => {
            send.send(SendEvent::response_start(status, headers))
                .await?;
            while let Some(item) = stream.next().await {
                let chunk = item.map_err(Error::new)?;
                send.send(SendEvent::response_body(chunk, true)).await?;
            }
            send.send(SendEvent::response_body(Bytes::new(), false))
                .await?;
        }
        Body::Pathsend(path) => {
            send.send(SendEvent::response_start(status, headers))
                .await?;
            send.send(SendEvent::HttpResponsePathsend { path }).await?;
        }
        Body::File(mut chunks) => {
            send.send(SendEvent::response_start(status, headers))
                .await?;
            if chunks.remaining() == 0 {
                send.send(SendEvent::response_body(Bytes::new(), false))
                    .await?;
            }
            while let Some(chunk) = chunks.next_chunk().await {
                let more_body = chunks.remaining() > 0;
                send.send(SendEvent::response_body(chunk?, more_body))
                    .await?;
            }
        }
    }
    Ok(())
}

/// The numbers [`content_length`] answers from a table instead of writing them.
const TABLED_LENGTHS: usize = 10_000;

/// How many digits `n` has, for `n` below [`TABLED_LENGTHS`].
const fn digits(n: usize) -> usize {
    match n {
        0..=9 => 1,
        10..=99 => 2,
        100..=999 => 3,
        _ => 4,
    }
}

/// Where the text of `n` starts in [`LENGTH_DIGITS`]: the numbers come in order, each as
/// wide as it is.
const fn digits_at(n: usize) -> usize {
    match digits(n) {
        1 => n,
        2 => 10 + 2 * (n - 10),
        3 => 190 + 3 * (n - 100),
        _ => 2890 + 4 * (n - 1000),
    }
}

/// The decimal text of every number below [`TABLED_LENGTHS`], back to back (39 KB), built
/// at compile time.
static LENGTH_DIGITS: [u8; digits_at(TABLED_LENGTHS)] = {
    let mut table = [0u8; digits_at(TABLED_LENGTHS)];
    let mut n = 0;
    while n < TABLED_LENGTHS {
        let at = digits_at(n);
        let mut i = digits(n);
        let mut rest = n;
        while i > 0 {
            i -= 1;
            table[at + i] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        n += 1;
    }
    table
};

/// The `content-length` header value for a body of `len` bytes.
///
/// The same value as `HeaderValue::from(len)`, without its allocation for lengths below
/// 10,000 (a slice of a static table): responses set this header on every request.
///
/// # Example
///
/// ```
/// use asgi_http::response::content_length;
///
/// assert_eq!(content_length(0), "0");
/// assert_eq!(content_length(1234), "1234");
/// assert_eq!(content_length(1 << 40), "1099511627776");
/// ```
pub fn content_length(len: u64) -> HeaderValue {
    match usize::try_from(len) {
        Ok(n) if n < TABLED_LENGTHS => {
            let at = digits_at(n);
            let text = Bytes::from_static(&LENGTH_DIGITS[at..at + digits(n)]);
            // Digits are always a valid header value.
            HeaderValue::from_maybe_shared(text).unwrap_or_else(|_| HeaderValue::from(len))
        }
        _ => HeaderValue::from(len),
    }
}

fn require_file(metadata: &std::fs::Metadata, path: &Path) -> io::Result<()> {
    if metadata.is_file() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ))
    }
}

/// 1xx, 204 and 304 responses have no body, so no `content-length` either (RFC 9110 8.6).
fn allows_body(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

/// The `content-type` for a file, by its extension (case-insensitive). A small table of the
/// types a web app serves; everything else is `application/octet-stream`, which browsers
/// download rather than guess at.
fn content_type_for(path: &Path) -> &'static str {
    let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
        return "application/octet-stream";
    };
    match ext.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "pdf" => "application/pdf",
        "wasm" => "application/wasm",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asgi_core::host::testing;
    use asgi_core::{HttpScope, Receiver, Scope};

    async fn events_of(response: Response) -> Vec<SendEvent> {
        let slot = std::sync::Mutex::new(Some(response));
        let app = move |_: Scope, _: Receiver, mut send: Sender| {
            let response = slot.lock().unwrap().take();
            async move {
                if let Some(response) = response {
                    response.send(&mut send).await?;
                }
                Ok::<(), Error>(())
            }
        };
        let scope = Scope::from(HttpScope::new(asgi_core::http::Method::GET, "/"));
        let outcome = testing::call(&app, scope, []).await;
        outcome.result.unwrap();
        outcome.sent
    }

    #[test]
    fn content_type_is_guessed_from_the_extension() {
        assert_eq!(
            content_type_for(Path::new("a/index.HTML")),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type_for(Path::new("logo.png")), "image/png");
        assert_eq!(
            content_type_for(Path::new("archive.unknown")),
            "application/octet-stream"
        );
        assert_eq!(
            content_type_for(Path::new("Makefile")),
            "application/octet-stream"
        );
    }

    #[test]
    fn redirect_percent_encodes_what_a_header_cannot_carry() {
        let response = Response::redirect("/caf\u{e9} menu?q=a b%20c");
        assert_eq!(response.status_code(), StatusCode::SEE_OTHER);
        assert_eq!(
            response.headers()[header::LOCATION],
            "/caf%C3%A9%20menu?q=a%20b%20c"
        );
        assert_eq!(
            Response::temporary_redirect("/x").status_code(),
            StatusCode::TEMPORARY_REDIRECT
        );
        assert_eq!(
            Response::permanent_redirect("/x").status_code(),
            StatusCode::PERMANENT_REDIRECT
        );
    }

    #[test]
    fn content_length_values_are_the_decimal_length() {
        for len in (0..12_000).chain([99_999, 1 << 32, u64::MAX]) {
            assert_eq!(content_length(len), HeaderValue::from(len), "{len}");
        }
    }

    #[tokio::test]
    async fn full_body_is_one_final_event_with_content_length() {
        let events = events_of(Response::text("hello")).await;
        assert_eq!(events.len(), 2);
        let SendEvent::HttpResponseStart { headers, .. } = &events[0] else {
            panic!("expected a start, got {:?}", events[0]);
        };
        assert_eq!(headers[header::CONTENT_LENGTH], "5");
        assert_eq!(events[1], SendEvent::response_body("hello", false));
    }

    #[tokio::test]
    async fn static_text_is_sent_without_a_copy_and_owned_text_is_moved() {
        static GREETING: &str = "Hello, world!";
        let events = events_of(Response::text(GREETING)).await;
        let SendEvent::HttpResponseBody { body, .. } = &events[1] else {
            panic!("expected a body, got {:?}", events[1]);
        };
        assert_eq!(body.as_ptr(), GREETING.as_ptr());

        let owned = String::from("<p>owned</p>");
        let at = owned.as_ptr();
        let events = events_of(Response::html(owned)).await;
        let SendEvent::HttpResponseBody { body, .. } = &events[1] else {
            panic!("expected a body, got {:?}", events[1]);
        };
        assert_eq!((body.as_ptr(), &body[..]), (at, &b"<p>owned</p>"[..]));
    }

    #[tokio::test]
    async fn no_content_gets_no_content_length() {
        let events = events_of(Response::new(StatusCode::NO_CONTENT)).await;
        let SendEvent::HttpResponseStart {
            headers, status, ..
        } = &events[0]
        else {
            panic!("expected a start, got {:?}", events[0]);
        };
        assert_eq!(*status, StatusCode::NO_CONTENT);
        assert!(!headers.contains_key(header::CONTENT_LENGTH));
    }

    #[tokio::test]
    async fn json_that_cannot_serialize_is_an_error() {
        let mut map = std::collections::HashMap::new();
        map.insert(vec![1u8], 1u8);
        let err = Response::json(&map).unwrap_err();
        assert!(std::error::Error::source(&err).is_some());
    }
}
