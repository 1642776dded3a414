//! `start_response` and `write`: [`StartResponse`], [`Writer`], [`Status`], and the rules of
//! PEP 3333 that every host of a [`WsgiApp`](crate::WsgiApp) applies to a response.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use asgi_core::BoxError;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};

use crate::error::WsgiError;
use crate::to_asgi::ChannelOutput;

/// The `exc_info` argument of `start_response`: the error the app is handling when it calls
/// `start_response` again to replace the headers with an error response.
pub type ExcInfo = BoxError;

/// The response headers that PEP 3333 forbids an app to set: they describe the connection,
/// which belongs to the server.
pub const HOP_BY_HOP_HEADERS: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// A WSGI status line, `NNN Reason`, checked.
///
/// PEP 3333: "a string consisting of a Status-Code and a Reason-Phrase, in that order and
/// separated by a single space, with no surrounding whitespace or other characters". The code
/// must be 200 to 999 (a 1xx code is informational and cannot end a request); the reason may
/// be empty (`"204 "`) as HTTP allows. The reason phrase does not reach an ASGI client (ASGI's
/// `http.response.start` has none); HTTP/1.1 servers write the standard one.
///
/// # Example
///
/// ```
/// use asgi_wsgi_compat::Status;
/// use http::StatusCode;
///
/// let status = Status::parse("404 Not Found").unwrap();
/// assert_eq!(status.code(), StatusCode::NOT_FOUND);
/// assert_eq!(status.reason(), "Not Found");
/// assert!(Status::parse("404").is_err());
/// assert!(Status::parse("404  Not Found").is_err());
/// assert_eq!(Status::from(StatusCode::OK).as_str(), "200 OK");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Status {
    code: StatusCode,
    /// Borrowed for the common lines ([`common_line`]), so that most responses allocate
    /// nothing for their status.
    line: Cow<'static, str>,
}

/// The status lines most responses use, with their standard reason phrase.
fn common_line(code: StatusCode) -> Option<&'static str> {
    Some(match code.as_u16() {
        200 => "200 OK",
        201 => "201 Created",
        202 => "202 Accepted",
        204 => "204 No Content",
        301 => "301 Moved Permanently",
        302 => "302 Found",
        303 => "303 See Other",
        304 => "304 Not Modified",
        307 => "307 Temporary Redirect",
        308 => "308 Permanent Redirect",
        400 => "400 Bad Request",
        401 => "401 Unauthorized",
        403 => "403 Forbidden",
        404 => "404 Not Found",
        405 => "405 Method Not Allowed",
        408 => "408 Request Timeout",
        409 => "409 Conflict",
        413 => "413 Payload Too Large",
        422 => "422 Unprocessable Entity",
        429 => "429 Too Many Requests",
        500 => "500 Internal Server Error",
        502 => "502 Bad Gateway",
        503 => "503 Service Unavailable",
        504 => "504 Gateway Timeout",
        _ => return None,
    })
}

impl Status {
    /// Parses `NNN Reason`.
    ///
    /// # Errors
    ///
    /// [`WsgiError::InvalidStatus`] naming what is wrong.
    pub fn parse(status: &str) -> Result<Status, WsgiError> {
        let invalid = |reason| WsgiError::InvalidStatus {
            status: status.to_owned(),
            reason,
        };
        let bytes = status.as_bytes();
        if bytes.len() < 4 || bytes[3] != b' ' {
            return Err(invalid("expected `NNN Reason`, e.g. `200 OK`"));
        }
        if !bytes[..3].iter().all(u8::is_ascii_digit) {
            return Err(invalid("the status code must be three digits"));
        }
        let reason = &status[4..];
        if reason.starts_with([' ', '\t']) || reason.ends_with([' ', '\t']) {
            return Err(invalid(
                "one space between code and reason, and no surrounding whitespace",
            ));
        }
        if reason.chars().any(|c| c.is_control() && c != '\t') {
            return Err(invalid("the reason phrase contains a control character"));
        }
        let code = StatusCode::from_bytes(&bytes[..3])
            .map_err(|_| invalid("the status code must be 100 to 999"))?;
        if code.is_informational() {
            return Err(invalid(
                "1xx is informational and cannot be the final response",
            ));
        }
        let line = match common_line(code) {
            Some(common) if common == status => Cow::Borrowed(common),
            _ => Cow::Owned(status.to_owned()),
        };
        Ok(Status { code, line })
    }

    /// The status code.
    pub fn code(&self) -> StatusCode {
        self.code
    }

    /// The reason phrase (may be empty).
    pub fn reason(&self) -> &str {
        &self.line[4..]
    }

    /// The whole status line, `NNN Reason`.
    pub fn as_str(&self) -> &str {
        &self.line
    }
}

impl From<StatusCode> for Status {
    /// The code with its standard reason phrase (empty for a code that has none).
    fn from(code: StatusCode) -> Self {
        let line = match common_line(code) {
            Some(common) => Cow::Borrowed(common),
            None => Cow::Owned(format!(
                "{} {}",
                code.as_str(),
                code.canonical_reason().unwrap_or("")
            )),
        };
        Status { code, line }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.line, f)
    }
}

type StartFn =
    dyn Fn(Status, HeaderMap, Option<ExcInfo>) -> Result<Writer, WsgiError> + Send + Sync;

/// PEP 3333's `start_response(status, response_headers, exc_info=None)`: the callable the
/// server passes to the app, which returns the `write` callable.
///
/// # The rules
///
/// The host's `StartResponse` (the one [`WsgiToAsgi`](crate::WsgiToAsgi) passes) applies
/// PEP 3333:
///
/// - `status` must be `NNN Reason` ([`Status::parse`]); header names and values must be
///   valid HTTP, and hop-by-hop headers ([`HOP_BY_HOP_HEADERS`]) are an error.
/// - Nothing is sent yet: the headers go out with the first non-empty body chunk, the first
///   call of [`Writer::write`], or at the end of the response.
/// - A second call without `exc_info` is an error ([`WsgiError::AlreadyStarted`]). With
///   `exc_info`, before the headers went out, it replaces status and headers (the app is
///   turning a failure into an error page); after, it returns `exc_info` back
///   ([`WsgiError::Reraised`]) for the app to return, and the server aborts the response.
/// - No more than the declared `Content-Length` is sent; a response that ends short of it
///   is aborted.
///
/// It is a cheap handle (`Clone`, `Send`): an app may move it into its response iterator
/// and call it there, before the first chunk, as a Python generator can.
///
/// # Example
///
/// ```
/// use asgi_wsgi_compat::{Body, BoxError, Environ, StartResponse};
///
/// fn app(_environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
///     start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
///     Ok(Body::from("Hello, world!\n"))
/// }
/// ```
///
/// Middleware wraps it with [`from_fn`](StartResponse::from_fn), e.g. to add a header:
///
/// ```
/// use asgi_wsgi_compat::{Body, BoxError, Environ, StartResponse, WsgiApp};
/// use http::HeaderValue;
///
/// fn with_server_header(
///     app: impl WsgiApp,
/// ) -> impl Fn(Environ, StartResponse) -> Result<Body, BoxError> + Send + Sync + 'static {
///     move |environ, start_response| {
///         let inner = StartResponse::from_fn(move |status, mut headers, exc_info| {
///             headers.insert("server", HeaderValue::from_static("example"));
///             start_response.start(status, headers, exc_info)
///         });
///         app.call(environ, inner)
///     }
/// }
/// ```
///
/// # Errors
///
/// The [`WsgiError`] of the rule the call breaks.
#[derive(Clone)]
pub struct StartResponse {
    inner: StartInner,
}

/// The host's own `start_response` calls into the response state directly; the others go
/// through a closure.
#[derive(Clone)]
enum StartInner {
    Host(Arc<Mutex<ResponseState>>),
    Fn(Arc<StartFn>),
}

impl StartResponse {
    /// A `start_response` that calls `f` with the checked status and headers: the way to
    /// wrap the host's `start_response` in middleware, or to call an app outside a server
    /// (tests).
    pub fn from_fn<F>(f: F) -> Self
    where
        F: Fn(Status, HeaderMap, Option<ExcInfo>) -> Result<Writer, WsgiError>
            + Send
            + Sync
            + 'static,
    {
        StartResponse {
            inner: StartInner::Fn(Arc::new(f)),
        }
    }

    /// `start_response(status, response_headers, exc_info)` with the status and the headers
    /// as the app writes them: `"200 OK"`, `[("Content-Type", "text/plain")]`. Names and
    /// values are bytes (`&str`, `String`, `Vec<u8>`, `Bytes`, [`WsgiStr`](crate::WsgiStr)).
    ///
    /// # Errors
    ///
    /// [`WsgiError::InvalidStatus`], [`WsgiError::InvalidHeader`], and every error of
    /// [`start`](StartResponse::start).
    pub fn call<N, V>(
        &self,
        status: &str,
        headers: impl IntoIterator<Item = (N, V)>,
        exc_info: Option<ExcInfo>,
    ) -> Result<Writer, WsgiError>
    where
        N: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let status = Status::parse(status)?;
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let name_bytes = name.as_ref();
            let invalid = |reason| WsgiError::InvalidHeader {
                name: String::from_utf8_lossy(name_bytes).into_owned(),
                reason,
            };
            let header_name = HeaderName::from_bytes(name_bytes)
                .map_err(|_| invalid("the name is not an HTTP token"))?;
            let header_value = HeaderValue::from_bytes(value.as_ref())
                .map_err(|_| invalid("the value contains a control character"))?;
            map.append(header_name, header_value);
        }
        self.start(status, map, exc_info)
    }

    /// `start_response` with a typed status and headers.
    ///
    /// # Errors
    ///
    /// [`WsgiError::HopByHopHeader`], [`WsgiError::InvalidHeader`] for a bad
    /// `Content-Length`, [`WsgiError::AlreadyStarted`] for a second call without `exc_info`,
    /// [`WsgiError::Reraised`] with `exc_info` after the headers were sent.
    pub fn start(
        &self,
        status: Status,
        headers: HeaderMap,
        exc_info: Option<ExcInfo>,
    ) -> Result<Writer, WsgiError> {
        match &self.inner {
            StartInner::Host(state) => {
                lock(state).start(status, headers, exc_info)?;
                Ok(Writer {
                    inner: WriterInner::Host(state.clone()),
                })
            }
            StartInner::Fn(f) => f(status, headers, exc_info),
        }
    }
}

impl fmt::Debug for StartResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartResponse").finish_non_exhaustive()
    }
}

type WriteFn = dyn Fn(Bytes) -> io::Result<()> + Send + Sync;

/// PEP 3333's `write(data)` callable, returned by [`StartResponse`]: sends body data at once,
/// before anything the app's response iterator yields. It blocks while the client is slower
/// than the app (backpressure).
///
/// The first call sends the headers, even with empty data. Data past the declared
/// `Content-Length` is dropped. It also implements [`std::io::Write`], so `write!` works.
///
/// # Example
///
/// ```
/// use std::io::Write as _;
/// use asgi_wsgi_compat::{Body, BoxError, Environ, StartResponse};
///
/// fn app(_environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
///     let mut write = start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
///     write.write("streamed ")?;
///     write!(write, "{} lines", 2)?;
///     Ok(Body::empty())
/// }
/// ```
///
/// # Errors
///
/// [`io::ErrorKind::ConnectionAborted`] once the client disconnected: stop and return. An
/// [`io::ErrorKind::Other`] error wrapping a [`WsgiError`] when the call breaks a rule
/// (`write` before `start_response`, after the response completed).
#[derive(Clone)]
pub struct Writer {
    inner: WriterInner,
}

/// As [`StartInner`]: the host's `write` sends through the response state directly.
#[derive(Clone)]
enum WriterInner {
    Host(Arc<Mutex<ResponseState>>),
    Fn(Arc<WriteFn>),
}

impl Writer {
    /// A `write` callable that calls `f`; for middleware and tests.
    pub fn from_fn<F>(f: F) -> Self
    where
        F: Fn(Bytes) -> io::Result<()> + Send + Sync + 'static,
    {
        Writer {
            inner: WriterInner::Fn(Arc::new(f)),
        }
    }

    /// `write(data)`: sends `data` now, blocking while the client is slower than the app.
    ///
    /// # Errors
    ///
    /// See the type's docs.
    pub fn write(&self, data: impl Into<Bytes>) -> io::Result<()> {
        self.write_bytes(data.into())
    }

    fn write_bytes(&self, data: Bytes) -> io::Result<()> {
        match &self.inner {
            WriterInner::Host(state) => lock(state)
                .send_data(data, true, false)
                .map_err(io::Error::from),
            WriterInner::Fn(f) => f(data),
        }
    }
}

impl io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_bytes(Bytes::copy_from_slice(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

/// One part of a response as a host sends it on: the head, then body chunks, the last with
/// `more_body: false`. The shape of ASGI's `http.response.*` events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResponsePart {
    Start {
        status: StatusCode,
        headers: HeaderMap,
    },
    Body {
        data: Bytes,
        more_body: bool,
    },
    /// The head and the first body part, when both are ready at once (a body of one chunk):
    /// one hand-over instead of two.
    StartWithBody {
        status: StatusCode,
        headers: HeaderMap,
        data: Bytes,
        more_body: bool,
    },
}

/// Why sending response data failed.
#[derive(Debug)]
pub(crate) enum SendFailure {
    /// The app broke a rule.
    Rule(WsgiError),
    /// The output failed: the client is gone.
    Output(io::Error),
}

impl From<SendFailure> for io::Error {
    fn from(f: SendFailure) -> Self {
        match f {
            SendFailure::Rule(e) => io::Error::other(e),
            SendFailure::Output(e) => e,
        }
    }
}

/// The state of one response under the rules of PEP 3333, shared by the host's
/// `start_response`, `write` and response loop.
pub(crate) struct ResponseState {
    /// `None` once the host closed the response: later writes fail.
    output: Option<ChannelOutput>,
    /// Status and headers from the last `start_response`, until they are sent.
    pending: Option<(StatusCode, HeaderMap)>,
    /// `start_response` was called (successfully) at least once.
    started: bool,
    headers_sent: bool,
    /// The final part went out (the end, or the declared `Content-Length` was reached).
    complete: bool,
    /// The response can have no body (HEAD, 204, 304), so a short `Content-Length` is fine.
    bodyless: bool,
    head_request: bool,
    content_length: Option<u64>,
    sent: u64,
    /// The output failed once: the client is gone.
    output_failed: bool,
}

impl ResponseState {
    pub(crate) fn new(output: ChannelOutput, head_request: bool) -> Self {
        ResponseState {
            output: Some(output),
            pending: None,
            started: false,
            headers_sent: false,
            complete: false,
            bodyless: head_request,
            head_request,
            content_length: None,
            sent: 0,
            output_failed: false,
        }
    }

    pub(crate) fn headers_sent(&self) -> bool {
        self.headers_sent
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.complete
    }

    pub(crate) fn output_failed(&self) -> bool {
        self.output_failed
    }

    fn start(
        &mut self,
        status: Status,
        headers: HeaderMap,
        exc_info: Option<ExcInfo>,
    ) -> Result<(), WsgiError> {
        match exc_info {
            None if self.started => return Err(WsgiError::AlreadyStarted),
            Some(exc) if self.headers_sent => return Err(WsgiError::Reraised(exc)),
            _ => {}
        }
        for name in headers.keys() {
            if HOP_BY_HOP_HEADERS.contains(&name.as_str()) {
                return Err(WsgiError::HopByHopHeader {
                    name: name.as_str().to_owned(),
                });
            }
        }
        let code = status.code();
        if code.is_informational() {
            // A `Status` built from a `StatusCode` skips `Status::parse`.
            return Err(WsgiError::InvalidStatus {
                status: status.as_str().to_owned(),
                reason: "1xx is informational and cannot be the final response",
            });
        }
        let content_length = parse_content_length(&headers)?;
        self.bodyless =
            self.head_request || code == StatusCode::NO_CONTENT || code == StatusCode::NOT_MODIFIED;
        self.content_length = content_length;
        self.pending = Some((code, headers));
        self.started = true;
        Ok(())
    }

    /// Sends body data. `from_write`: a `write()` call, which sends the headers even when
    /// `data` is empty. `last`: the host knows no data follows.
    pub(crate) fn send_data(
        &mut self,
        data: Bytes,
        from_write: bool,
        last: bool,
    ) -> Result<(), SendFailure> {
        if !self.started {
            return Err(SendFailure::Rule(WsgiError::NotStarted(if from_write {
                "write()"
            } else {
                "the first non-empty body chunk"
            })));
        }
        if self.complete {
            // Past the declared Content-Length the server drops data (PEP 3333); after the
            // end of the response, writing is a mistake.
            return if self.content_length.is_some_and(|cl| self.sent >= cl) {
                Ok(())
            } else {
                Err(SendFailure::Rule(WsgiError::ResponseComplete))
            };
        }
        if data.is_empty() && !from_write {
            return Ok(());
        }
        let head = self.take_head()?;
        if data.is_empty() {
            return match head {
                Some((status, headers)) => {
                    self.output_send(ResponsePart::Start { status, headers })
                }
                None => Ok(()),
            };
        }
        let mut data = data;
        if let Some(cl) = self.content_length {
            let left = cl.saturating_sub(self.sent);
            if (data.len() as u64) > left {
                // `left` < data.len() <= usize::MAX here, so the conversion cannot fail.
                data.truncate(usize::try_from(left).unwrap_or(usize::MAX));
            }
        }
        self.sent += data.len() as u64;
        let reached = self.content_length.is_some_and(|cl| self.sent >= cl);
        let final_part = reached || (last && self.content_length.is_none());
        self.output_send(with_head(head, data, !final_part))?;
        if final_part {
            self.complete = true;
        }
        Ok(())
    }

    /// Ends the response: sends the headers if they are still pending, then the final part.
    pub(crate) fn finish(&mut self) -> Result<(), SendFailure> {
        if !self.started {
            return Err(SendFailure::Rule(WsgiError::NotStarted(
                "the end of the response",
            )));
        }
        if self.complete {
            return Ok(());
        }
        if let Some(declared) = self.content_length {
            if self.sent < declared && !self.bodyless {
                return Err(SendFailure::Rule(WsgiError::ContentLengthShort {
                    declared,
                    sent: self.sent,
                }));
            }
        }
        let head = self.take_head()?;
        self.output_send(with_head(head, Bytes::new(), false))?;
        self.complete = true;
        Ok(())
    }

    /// Sends a complete response of its own, for a failure before the headers went out.
    pub(crate) fn send_error_response(&mut self, status: StatusCode) -> Result<(), SendFailure> {
        let body = Bytes::from(status.canonical_reason().unwrap_or("Error"));
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        self.headers_sent = true;
        self.output_send(ResponsePart::StartWithBody {
            status,
            headers,
            data: body,
            more_body: false,
        })?;
        self.complete = true;
        Ok(())
    }

    /// Drops the output: nothing more goes out, and the host's reader sees the end.
    pub(crate) fn close(&mut self) {
        self.output = None;
    }

    /// The head, if it has not gone out yet: the caller sends it with what follows.
    fn take_head(&mut self) -> Result<Option<(StatusCode, HeaderMap)>, SendFailure> {
        if self.headers_sent {
            return Ok(None);
        }
        let Some(head) = self.pending.take() else {
            return Err(SendFailure::Rule(WsgiError::NotStarted("the headers")));
        };
        self.headers_sent = true;
        Ok(Some(head))
    }

    fn output_send(&mut self, part: ResponsePart) -> Result<(), SendFailure> {
        let Some(output) = self.output.as_mut() else {
            return Err(SendFailure::Rule(WsgiError::ResponseComplete));
        };
        output.send(part).map_err(|e| {
            self.output_failed = true;
            SendFailure::Output(e)
        })
    }
}

/// A body part, with the head in front when it has not gone out yet.
fn with_head(head: Option<(StatusCode, HeaderMap)>, data: Bytes, more_body: bool) -> ResponsePart {
    match head {
        Some((status, headers)) => ResponsePart::StartWithBody {
            status,
            headers,
            data,
            more_body,
        },
        None => ResponsePart::Body { data, more_body },
    }
}

fn parse_content_length(headers: &HeaderMap) -> Result<Option<u64>, WsgiError> {
    let mut values = headers.get_all(CONTENT_LENGTH).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let invalid = |reason| WsgiError::InvalidHeader {
        name: "content-length".to_owned(),
        reason,
    };
    if values.next().is_some() {
        return Err(invalid("Content-Length appears more than once"));
    }
    let bytes = value.as_bytes();
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return Err(invalid("Content-Length must be a decimal number"));
    }
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| invalid("Content-Length is too large"))
}

/// Locks a response state; a panic while it was held (in an app's output, never in this
/// module) leaves it consistent, so the poison is ignored.
pub(crate) fn lock(state: &Mutex<ResponseState>) -> MutexGuard<'_, ResponseState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The host's `start_response` over `state`.
pub(crate) fn host_start_response(state: Arc<Mutex<ResponseState>>) -> StartResponse {
    StartResponse {
        inner: StartInner::Host(state),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_rules() {
        for ok in ["200 OK", "204 ", "599 Custom Reason", "404 Not\tFound"] {
            assert!(Status::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "200",
            "200OK",
            " 200 OK",
            "200 OK ",
            "200  OK",
            "20 OK",
            "2000 OK",
            "abc OK",
            "101 Switching",
            "099 Low",
            "200 O\nK",
        ] {
            assert!(
                matches!(Status::parse(bad), Err(WsgiError::InvalidStatus { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn common_status_lines_carry_the_standard_reason() {
        for code in 200..=599 {
            let code = StatusCode::from_u16(code).unwrap();
            if let Some(line) = common_line(code) {
                let standard = format!("{} {}", code.as_str(), code.canonical_reason().unwrap());
                assert_eq!(line, standard);
                assert_eq!(Status::parse(line).unwrap().as_str(), line);
                assert_eq!(Status::from(code).as_str(), line);
            }
        }
        // A custom reason is kept as given.
        assert_eq!(Status::parse("200 Fine").unwrap().as_str(), "200 Fine");
    }

    #[test]
    fn content_length_must_be_one_number() {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("12"));
        assert_eq!(parse_content_length(&h).unwrap(), Some(12));
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("-1"));
        assert!(parse_content_length(&h).is_err());
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("1"));
        h.append(CONTENT_LENGTH, HeaderValue::from_static("1"));
        assert!(parse_content_length(&h).is_err());
    }
}
