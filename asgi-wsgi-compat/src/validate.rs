//! [`Validator`]: checks both sides of a WSGI call against PEP 3333, like Python's
//! `wsgiref.validate`.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use asgi_core::BoxError;
use bytes::Bytes;
use http::StatusCode;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};

use crate::app::WsgiApp;
use crate::body::{Body, Chunk, Chunks};
use crate::environ::{Environ, Value, WSGI_VERSION};
use crate::error::WsgiError;
use crate::response::{HOP_BY_HOP_HEADERS, StartResponse, Writer};

/// The rule of PEP 3333 that a [`ValidationError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// The server left out a required environ key (`REQUEST_METHOD`, `SERVER_NAME`,
    /// `SERVER_PORT`, `SERVER_PROTOCOL`, `wsgi.version`, `wsgi.url_scheme`,
    /// `wsgi.multithread`, `wsgi.multiprocess`, `wsgi.run_once`).
    EnvironMissingKey,
    /// An environ key has the wrong type (a CGI variable that is not a string, a `wsgi.*`
    /// flag that is not a boolean, ...).
    EnvironType,
    /// An environ value is malformed (a `PATH_INFO` without a leading `/`, a non-numeric
    /// `CONTENT_LENGTH`, an `HTTP_CONTENT_TYPE` key, ...).
    EnvironValue,
    /// The status is not `NNN Reason`.
    Status,
    /// A header name or value is invalid, or the app set `Status` as a header.
    Header,
    /// The app set a hop-by-hop header.
    HopByHopHeader,
    /// A response other than 204 or 304 has no `Content-Type`.
    ContentType,
    /// `start_response` was called a second time without `exc_info`.
    StartResponseTwice,
    /// Body data, or the end of the response, came before `start_response`.
    StartResponseMissing,
    /// The app sent fewer bytes than its `Content-Length` declared, or wrote after the end.
    ContentLength,
    /// The server dropped the response body without calling `close()`.
    NotClosed,
}

impl Rule {
    /// A short, stable name for the rule, e.g. `start_response.twice`.
    pub fn name(self) -> &'static str {
        match self {
            Rule::EnvironMissingKey => "environ.missing_key",
            Rule::EnvironType => "environ.type",
            Rule::EnvironValue => "environ.value",
            Rule::Status => "status",
            Rule::Header => "headers",
            Rule::HopByHopHeader => "headers.hop_by_hop",
            Rule::ContentType => "headers.content_type",
            Rule::StartResponseTwice => "start_response.twice",
            Rule::StartResponseMissing => "start_response.missing",
            Rule::ContentLength => "body.content_length",
            Rule::NotClosed => "body.close",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A violation of PEP 3333 that a [`Validator`] found: the [`Rule`] and what broke it.
///
/// # Example
///
/// ```
/// use asgi_wsgi_compat::validate::Rule;
/// use asgi_wsgi_compat::ValidationError;
///
/// let err = ValidationError::new(Rule::EnvironMissingKey, "REQUEST_METHOD is missing");
/// assert_eq!(err.rule(), Rule::EnvironMissingKey);
/// assert_eq!(
///     err.to_string(),
///     "PEP 3333 violation (environ.missing_key): REQUEST_METHOD is missing"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    rule: Rule,
    message: String,
}

impl ValidationError {
    /// A violation of `rule`, described by `message`.
    pub fn new(rule: Rule, message: impl Into<String>) -> Self {
        ValidationError {
            rule,
            message: message.into(),
        }
    }

    /// The rule that was broken.
    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// What broke it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PEP 3333 violation ({}): {}", self.rule, self.message)
    }
}

impl std::error::Error for ValidationError {}

/// Wraps a [`WsgiApp`] and checks both sides of each call against PEP 3333, as Python's
/// `wsgiref.validate` does: the environ the server built, and the app's use of
/// `start_response`, `write` and its body.
///
/// The first violation ends the call with a [`ValidationError`] naming the [`Rule`]: from
/// `call` (the server answers 500 and logs the message), from `start_response` (wrapped in
/// [`WsgiError::Validation`], for the app to return), or as the body's next item. A body the
/// server drops without `close()` is reported through `tracing` at `ERROR` (there is nobody
/// to return it to). Some of Python's checks need no code here, because the types already
/// guarantee them (`wsgi.input` exists and is readable, chunks are bytes, a body cannot be
/// iterated after `close()`).
///
/// Use it in development and tests; it costs a lock per chunk.
///
/// # Example
///
/// ```
/// use asgi_wsgi_compat::validate::Rule;
/// use asgi_wsgi_compat::{Body, BoxError, Environ, StartResponse, ValidationError, Validator, WsgiApp, Writer};
///
/// // Forgets the Content-Type.
/// fn app(_: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
///     start_response.call("200 OK", Vec::<(&str, &str)>::new(), None)?;
///     Ok(Body::from("untyped"))
/// }
///
/// let start_response = StartResponse::from_fn(|_, _, _| Ok(Writer::from_fn(|_| Ok(()))));
/// let err = Validator::new(app)
///     .call(Environ::for_request("GET", "/"), start_response)
///     .unwrap_err();
/// let violation = err.downcast_ref::<ValidationError>().unwrap();
/// assert_eq!(violation.rule(), Rule::ContentType);
/// ```
#[derive(Debug, Clone)]
pub struct Validator<A> {
    inner: A,
}

impl<A: WsgiApp> Validator<A> {
    /// Wraps `app`.
    pub fn new(app: A) -> Self {
        Validator { inner: app }
    }

    /// The wrapped app.
    pub fn get_ref(&self) -> &A {
        &self.inner
    }

    /// Unwraps the app.
    pub fn into_inner(self) -> A {
        self.inner
    }
}

/// What the validator saw of one call.
#[derive(Default)]
struct Seen {
    started: bool,
    status: Option<StatusCode>,
    head_request: bool,
    content_length: Option<u64>,
    sent: u64,
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<A: WsgiApp> WsgiApp for Validator<A> {
    fn call(&self, environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
        check_environ(&environ)?;
        let seen = Arc::new(Mutex::new(Seen {
            head_request: environ.method() == "HEAD",
            ..Seen::default()
        }));
        let checked = checked_start_response(start_response, seen.clone());
        let body = self.inner.call(environ, checked).map_err(classify)?;
        Ok(Body::from_dyn(Box::new(CheckedBody {
            inner: Some(body),
            seen,
            done: false,
        })))
    }
}

fn checked_start_response(outer: StartResponse, seen: Arc<Mutex<Seen>>) -> StartResponse {
    StartResponse::from_fn(move |status, headers, exc_info| {
        let violation =
            |rule, message: String| Err(WsgiError::Validation(ValidationError::new(rule, message)));
        if lock(&seen).started && exc_info.is_none() {
            return violation(
                Rule::StartResponseTwice,
                "start_response called a second time without exc_info".into(),
            );
        }
        if headers.contains_key("status") {
            return violation(
                Rule::Header,
                "`Status` is not a header: pass the status as start_response's first argument"
                    .into(),
            );
        }
        if let Some(name) = HOP_BY_HOP_HEADERS
            .iter()
            .find(|n| headers.contains_key(**n))
        {
            return violation(
                Rule::HopByHopHeader,
                format!("hop-by-hop header {name:?} in the response"),
            );
        }
        let code = status.code();
        if !headers.contains_key(CONTENT_TYPE)
            && code != StatusCode::NO_CONTENT
            && code != StatusCode::NOT_MODIFIED
        {
            return violation(
                Rule::ContentType,
                format!("no Content-Type header in a `{status}` response"),
            );
        }
        let content_length = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let writer = outer
            .start(status, headers, exc_info)
            .map_err(|e| into_violation(e).map_or_else(|e| e, WsgiError::Validation))?;
        {
            let mut seen = lock(&seen);
            seen.started = true;
            seen.status = Some(code);
            seen.content_length = content_length;
        }
        let seen = seen.clone();
        Ok(Writer::from_fn(move |data: Bytes| {
            lock(&seen).sent += data.len() as u64;
            writer.write(data)
        }))
    })
}

struct CheckedBody {
    /// `None` once closed.
    inner: Option<Body>,
    seen: Arc<Mutex<Seen>>,
    done: bool,
}

impl CheckedBody {
    fn end(&mut self) -> Option<Chunk> {
        self.done = true;
        let seen = lock(&self.seen);
        if !seen.started {
            return Some(Err(ValidationError::new(
                Rule::StartResponseMissing,
                "the app's response ended without a call of start_response",
            )
            .into()));
        }
        let bodyless = seen.head_request
            || matches!(
                seen.status,
                Some(StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED)
            );
        match seen.content_length {
            Some(declared) if seen.sent < declared && !bodyless => {
                Some(Err(ValidationError::new(
                    Rule::ContentLength,
                    format!(
                        "the response ended after {} of the {declared} bytes its Content-Length declared",
                        seen.sent
                    ),
                )
                .into()))
            }
            _ => None,
        }
    }
}

impl Chunks for CheckedBody {
    fn next_chunk(&mut self) -> Option<Chunk> {
        if self.done {
            return None;
        }
        let item = self.inner.as_mut().and_then(Iterator::next);
        match item {
            None => self.end(),
            Some(Err(e)) => {
                self.done = true;
                Some(Err(classify(e)))
            }
            Some(Ok(chunk)) => {
                let mut seen = lock(&self.seen);
                if !chunk.is_empty() && !seen.started {
                    self.done = true;
                    return Some(Err(ValidationError::new(
                        Rule::StartResponseMissing,
                        "the body yielded data before start_response was called",
                    )
                    .into()));
                }
                seen.sent += chunk.len() as u64;
                Some(Ok(chunk))
            }
        }
    }

    fn is_end(&self) -> bool {
        // The end check above must run before the host finishes the response.
        false
    }

    fn close(mut self: Box<Self>, explicit: bool) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        if explicit {
            inner.close();
        } else {
            tracing::error!(
                "{}",
                ValidationError::new(
                    Rule::NotClosed,
                    "the server dropped the response body without calling close()",
                )
            );
            drop(inner);
        }
    }
}

/// Names the rule behind an error the app returned or its body yielded: a [`WsgiError`]
/// from `start_response` or `write` (returned with `?`, also inside an [`io::Error`])
/// becomes a [`ValidationError`]; other errors, and a re-raised `exc_info`, pass unchanged.
fn classify(error: BoxError) -> BoxError {
    let error = match error.downcast::<io::Error>() {
        Ok(io) if io.get_ref().is_some_and(|e| e.is::<WsgiError>()) => match io.into_inner() {
            Some(inner) => inner,
            None => return "an I/O error without a cause".into(),
        },
        Ok(io) => return io,
        Err(other) => other,
    };
    match error.downcast::<WsgiError>() {
        Ok(wsgi) => match into_violation(*wsgi) {
            Ok(violation) => violation.into(),
            Err(WsgiError::Reraised(exc)) => exc,
            Err(other) => other.into(),
        },
        Err(other) => other,
    }
}

/// The violation a [`WsgiError`] reports; `Err` for a re-raised `exc_info`, which is the
/// rule working, not a violation.
fn into_violation(error: WsgiError) -> Result<ValidationError, WsgiError> {
    let rule = match &error {
        WsgiError::Validation(v) => return Ok(v.clone()),
        WsgiError::Reraised(_) => return Err(error),
        WsgiError::InvalidStatus { .. } => Rule::Status,
        WsgiError::InvalidHeader { .. } => Rule::Header,
        WsgiError::HopByHopHeader { .. } => Rule::HopByHopHeader,
        WsgiError::AlreadyStarted => Rule::StartResponseTwice,
        WsgiError::NotStarted(_) => Rule::StartResponseMissing,
        WsgiError::ContentLengthShort { .. } | WsgiError::ResponseComplete => Rule::ContentLength,
    };
    Ok(ValidationError::new(rule, error.to_string()))
}

/// The environ checks of `wsgiref.validate.check_environ`.
fn check_environ(environ: &Environ) -> Result<(), ValidationError> {
    let missing = |key: &str| {
        ValidationError::new(Rule::EnvironMissingKey, format!("the environ has no {key}"))
    };
    let wrong_type = |key: &str, expected: &str| {
        ValidationError::new(Rule::EnvironType, format!("{key} must be {expected}"))
    };
    let bad_value = |message: String| ValidationError::new(Rule::EnvironValue, message);

    for key in [
        "REQUEST_METHOD",
        "SERVER_NAME",
        "SERVER_PORT",
        "SERVER_PROTOCOL",
        "wsgi.url_scheme",
    ] {
        match environ.get(key) {
            None => return Err(missing(key)),
            Some(Value::Str(_)) => {}
            Some(_) => return Err(wrong_type(key, "a string")),
        }
    }
    for key in ["wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once"] {
        match environ.get(key) {
            None => return Err(missing(key)),
            Some(Value::Bool(_)) => {}
            Some(_) => return Err(wrong_type(key, "a boolean")),
        }
    }
    match environ.get("wsgi.version") {
        None => return Err(missing("wsgi.version")),
        Some(Value::Version(major, minor)) if (*major, *minor) == WSGI_VERSION => {}
        Some(Value::Version(major, minor)) => {
            return Err(bad_value(format!(
                "wsgi.version is ({major}, {minor}); PEP 3333 is (1, 0)"
            )));
        }
        Some(_) => return Err(wrong_type("wsgi.version", "a version")),
    }
    for (key, value) in environ.iter() {
        let cgi = key.chars().all(|c| c.is_ascii_uppercase() || c == '_');
        if cgi && value.as_str().is_none() {
            return Err(wrong_type(key, "a string"));
        }
    }
    for key in ["HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"] {
        if environ.contains_key(key) {
            return Err(bad_value(format!(
                "{key} must not be set: the header goes into {}",
                &key[5..]
            )));
        }
    }
    let method = environ.method();
    let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    if method.is_empty() || !method.iter().all(token) {
        return Err(bad_value(format!(
            "REQUEST_METHOD {method:?} is not an HTTP method"
        )));
    }
    let script_name = environ.script_name();
    if !script_name.is_empty() && (!script_name.starts_with(b"/") || script_name == "/") {
        return Err(bad_value(format!(
            "SCRIPT_NAME {script_name:?} must be empty or start with `/` (and not be `/`)"
        )));
    }
    let path_info = environ.path_info();
    if !path_info.is_empty() && !path_info.starts_with(b"/") {
        return Err(bad_value(format!(
            "PATH_INFO {path_info:?} must be empty or start with `/`"
        )));
    }
    if script_name.is_empty() && path_info.is_empty() {
        return Err(bad_value(
            "one of SCRIPT_NAME or PATH_INFO must be set (PATH_INFO `/` for the root)".into(),
        ));
    }
    let scheme = environ.url_scheme();
    if scheme != "http" && scheme != "https" {
        return Err(bad_value(format!(
            "wsgi.url_scheme {scheme:?} must be `http` or `https`"
        )));
    }
    let digits = |v: &[u8]| !v.is_empty() && v.iter().all(u8::is_ascii_digit);
    if let Some(length) = environ.get_str("CONTENT_LENGTH") {
        if !length.is_empty() && !digits(length) {
            return Err(bad_value(format!(
                "CONTENT_LENGTH {length:?} must be a decimal number"
            )));
        }
    }
    let port = environ.server_port();
    if !digits(port) {
        return Err(bad_value(format!(
            "SERVER_PORT {port:?} must be a decimal number"
        )));
    }
    Ok(())
}
