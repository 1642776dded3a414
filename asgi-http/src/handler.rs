//! Request handlers: an `async fn(Request) -> Result<Response, HttpError>` as an [`App`].
//!
//! The raw form of an app takes the scope and both handles, and sends its answer itself:
//!
//! ```
//! use asgi_http::request::Request;
//! use asgi_http::response::Response;
//! use asgi_core::{Error, Receiver, Scope, Sender};
//!
//! async fn hello(scope: Scope, receive: Receiver, mut send: Sender) -> Result<(), Error> {
//!     let request = Request::from_scope(scope, receive)?;
//!     let name = request.query("name").unwrap_or_else(|| "world".to_owned());
//!     Response::text(format!("hello {name}")).send(&mut send).await
//! }
//! # fn assert_app(_: impl asgi_core::App) {}
//! # assert_app(hello);
//! ```
//!
//! A handler takes the [`Request`] and returns what becomes the answer ([`IntoResponse`]):
//!
//! ```
//! use asgi_http::request::Request;
//! use asgi_http::response::Response;
//!
//! async fn hello(request: Request) -> Response {
//!     let name = request.query("name").unwrap_or_else(|| "world".to_owned());
//!     Response::text(format!("hello {name}"))
//! }
//! # fn assert_app(_: impl asgi_core::App) {}
//! # assert_app(asgi_http::handler::handler(hello));
//! ```
//!
//! Both forms are apps, and both are routes: [`get`](crate::router::get) and the other
//! route functions, [`Router::fallback`](crate::router::Router::fallback),
//! [`Router::not_found`](crate::router::Router::not_found) and
//! [`Router::method_not_allowed`](crate::router::Router::method_not_allowed) take either
//! (through [`IntoApp`]). Where an [`App`] is needed (for [`serve`](crate::serve), a
//! [`TestClient`](crate::test_client::TestClient), a layer), wrap a handler in
//! [`handler`].
//!
//! # Errors become answers
//!
//! A handler that returns `Result<Response, HttpError>` uses `?` on everything a request
//! can fail with, and each error becomes the answer a client expects, as a JSON body of the
//! shape `{"error": "..."}` ([`Response::json_error`]):
//!
//! | error | answer |
//! | --- | --- |
//! | [`JsonError`]: not JSON (a syntax error, a body cut short) | `400` naming the problem |
//! | [`JsonError`]: JSON of the wrong shape (a missing field, a wrong type) | `422` naming the problem |
//! | [`BodyError::TooLarge`] (from [`Request::body`] and [`Request::json`]) | `413` |
//! | [`ParamError::Invalid`] (from [`Request::param_as`]) | `400` naming the parameter |
//! | [`HttpError::new`] and its shortcuts | the status and message given |
//! | [`Error`] (e.g. from [`Response::json`] or [`State::try_get`](asgi_core::State::try_get)), [`ParamError::Missing`], [`BodyError::Consumed`] | the error is returned to the server, which logs it and answers `500` |
//! | [`BodyError::Disconnected`] | nothing: the client is gone, and the server does not log it |
//!
//! The `500` cases are the app's own bugs: they go to the server as an [`Error`], so that
//! they are logged, rather than answered quietly.
//!
//! # Example
//!
//! ```
//! use asgi_core::http::StatusCode;
//! use asgi_http::handler::HttpError;
//! use asgi_http::request::{Request, DEFAULT_BODY_LIMIT};
//! use asgi_http::response::Response;
//! use asgi_http::router::{post, Router};
//! use asgi_http::test_client::{TestClient, TestRequest};
//!
//! #[derive(serde::Deserialize)]
//! struct Transfer {
//!     amount: u64,
//! }
//!
//! async fn transfer(mut request: Request) -> Result<Response, HttpError> {
//!     let account: u32 = request.param_as("account")?;
//!     let transfer: Transfer = request.json(DEFAULT_BODY_LIMIT).await?;
//!     if transfer.amount == 0 {
//!         return Err(HttpError::bad_request("the amount must be positive"));
//!     }
//!     Ok(Response::json(&serde_json::json!({"account": account, "amount": transfer.amount}))?
//!         .status(StatusCode::CREATED))
//! }
//!
//! let app = Router::new().route("/accounts/{account}/transfers", post(transfer));
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let client = TestClient::new(app);
//! let ok = client.send(TestRequest::post("/accounts/7/transfers").body(r#"{"amount": 5}"#)).await?;
//! assert_eq!(ok.status(), 201);
//! assert_eq!(ok.text(), r#"{"account":7,"amount":5}"#);
//!
//! let shape = client.send(TestRequest::post("/accounts/7/transfers").body(r#"{"amount": "5"}"#)).await?;
//! assert_eq!(shape.status(), 422);
//! assert_eq!(shape.header("content-type"), Some("application/json"));
//!
//! let param = client.send(TestRequest::post("/accounts/x/transfers").body("{}")).await?;
//! assert_eq!(param.status(), 400);
//! assert!(param.text().contains("path parameter `account`"), "{}", param.text());
//! # Ok::<(), asgi_core::Error>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use asgi_core::app::{AppFuture, OwnedApp};
use asgi_core::http::StatusCode;
use asgi_core::{App, Error, Receiver, Scope, Sender};

use crate::request::{BodyError, JsonError, ParamError, Request};
use crate::response::{Response, Sent};

/// What a [`handler`] can return: anything that becomes a [`Response`].
///
/// Implemented for [`Response`], [`HttpError`], the request errors ([`JsonError`],
/// [`BodyError`], [`ParamError`]), [`Error`], a bare [`StatusCode`] (an empty answer), and
/// `Result<T, E>` where both sides are `IntoResponse`. See the [module docs](self) for the
/// answer each error gives.
pub trait IntoResponse {
    /// The response.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        Response::new(self)
    }
}

impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(ok) => ok.into_response(),
            Err(err) => err.into_response(),
        }
    }
}

impl IntoResponse for Error {
    /// A response whose [`send`](Response::send) returns this error before sending
    /// anything: the server logs it (unless it says the client disconnected) and answers
    /// `500`.
    fn into_response(self) -> Response {
        Response::failed(self)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        match self.0 {
            Inner::Answer { status, message } => Response::json_error(status, message),
            Inner::Internal(error) => Response::failed(error),
        }
    }
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        HttpError::from(self).into_response()
    }
}

impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
        HttpError::from(self).into_response()
    }
}

impl IntoResponse for ParamError {
    fn into_response(self) -> Response {
        HttpError::from(self).into_response()
    }
}

/// The error type of handlers: an answer for the client (a status and a message, sent as
/// `{"error": message}`), or an [`Error`] for the server (which logs it and answers `500`).
///
/// Every error a [`Request`] gives converts into it, as does [`Error`], so `?` works on all
/// of them in a handler that returns `Result<Response, HttpError>`; the [module
/// docs](self) list the answers.
///
/// # Example
///
/// ```
/// use asgi_core::http::StatusCode;
/// use asgi_http::handler::HttpError;
///
/// let error = HttpError::new(StatusCode::CONFLICT, "the name is taken");
/// assert_eq!(error.status(), StatusCode::CONFLICT);
/// assert_eq!(error.to_string(), "the name is taken");
/// assert_eq!(HttpError::not_found("no such todo").status(), 404);
/// ```
pub struct HttpError(Inner);

enum Inner {
    Answer { status: StatusCode, message: String },
    Internal(Error),
}

impl HttpError {
    /// An answer with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        HttpError(Inner::Answer {
            status,
            message: message.into(),
        })
    }

    /// `400 Bad Request` with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        HttpError::new(StatusCode::BAD_REQUEST, message)
    }

    /// `401 Unauthorized` with `message`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        HttpError::new(StatusCode::UNAUTHORIZED, message)
    }

    /// `403 Forbidden` with `message`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        HttpError::new(StatusCode::FORBIDDEN, message)
    }

    /// `404 Not Found` with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        HttpError::new(StatusCode::NOT_FOUND, message)
    }

    /// An error for the server: it logs `error` and answers `500` (or, for
    /// [`Error::disconnected`], nothing).
    pub fn internal(error: impl Into<Error>) -> Self {
        HttpError(Inner::Internal(error.into()))
    }

    /// The status the client gets: `500` for an [`internal`](HttpError::internal) error.
    pub fn status(&self) -> StatusCode {
        match &self.0 {
            Inner::Answer { status, .. } => *status,
            Inner::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error for the server, when this is one (see [`internal`](HttpError::internal)).
    pub fn as_internal(&self) -> Option<&Error> {
        match &self.0 {
            Inner::Internal(error) => Some(error),
            Inner::Answer { .. } => None,
        }
    }
}

impl fmt::Debug for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Answer { status, message } => f
                .debug_struct("HttpError")
                .field("status", status)
                .field("message", message)
                .finish(),
            Inner::Internal(error) => f.debug_tuple("HttpError").field(error).finish(),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Answer { message, .. } => f.write_str(message),
            Inner::Internal(error) => fmt::Display::fmt(error, f),
        }
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            Inner::Internal(error) => Some(error),
            Inner::Answer { .. } => None,
        }
    }
}

impl From<Error> for HttpError {
    fn from(error: Error) -> Self {
        HttpError::internal(error)
    }
}

impl From<BodyError> for HttpError {
    /// `413` for [`BodyError::TooLarge`]; the others are for the server (a disconnect is
    /// not logged).
    fn from(error: BodyError) -> Self {
        match error.status() {
            Some(status) if status.is_client_error() => HttpError::new(status, error.to_string()),
            _ => HttpError::internal(error),
        }
    }
}

impl From<JsonError> for HttpError {
    /// `400` for a body that is not JSON, `422` for JSON of the wrong shape, as
    /// [`JsonError::status`] says; a body error as [`BodyError`] converts.
    fn from(error: JsonError) -> Self {
        match error {
            JsonError::Body(body) => body.into(),
            JsonError::Invalid(e) if e.is_data() => HttpError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("the JSON in the request body does not have the expected shape: {e}"),
            ),
            invalid => match invalid.status() {
                Some(status) => HttpError::new(status, invalid.to_string()),
                None => HttpError::internal(invalid),
            },
        }
    }
}

impl From<ParamError> for HttpError {
    /// `400` naming the parameter for [`ParamError::Invalid`]; [`ParamError::Missing`] (the
    /// route and the handler disagree) is for the server.
    fn from(error: ParamError) -> Self {
        match error.status() {
            status if status.is_client_error() => HttpError::new(status, error.to_string()),
            _ => HttpError::internal(error),
        }
    }
}

/// A request handler as an [`App`]: see [`handler`].
pub struct Handler<F> {
    f: F,
}

impl<F> fmt::Debug for Handler<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handler")
            .field("fn", &std::any::type_name::<F>())
            .finish()
    }
}

/// Makes an `async fn(Request) -> impl IntoResponse` (or a closure of that shape) an
/// [`App`]: it builds the [`Request`] from the scope, calls `f`, and sends what `f` returns.
///
/// Routes take handlers without it (see [`IntoApp`]); use it where an app is needed:
/// `serve(handler(hello))`, `TestClient::new(handler(hello))`, `handler(hello).with(layer)`.
///
/// # Errors
///
/// The handler answers HTTP requests only. Given a WebSocket or lifespan scope, it returns
/// an error that names the scope's type (for the lifespan, servers take that as "no lifespan
/// support" and go on; a WebSocket is refused). Besides, the errors of
/// [`Response::send`], including those an [`IntoResponse`] error hands to the server.
///
/// # Example
///
/// ```
/// use asgi_http::handler::handler;
/// use asgi_http::request::Request;
/// use asgi_http::response::Response;
/// use asgi_http::test_client::TestClient;
///
/// let app = handler(|request: Request| async move {
///     Response::text(format!("you asked for {}", request.path()))
/// });
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let response = TestClient::new(app).get("/x").await?;
/// assert_eq!(response.text(), "you asked for /x");
/// # Ok::<(), asgi_core::Error>(())
/// # }).unwrap();
/// ```
pub fn handler<F, Fut>(f: F) -> Handler<F>
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: IntoResponse,
{
    Handler { f }
}

// An `OwnedApp` rather than an `async_trait` app: the request is made from the scope before
// the future is, so the boxed future holds the handler's future and the sender, not the
// scope as well (an `async fn` keeps its arguments for as long as it runs).
impl<F, Fut> OwnedApp for Handler<F>
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: IntoResponse,
{
    /// One call: the function runs on the request, and the future answers with what it
    /// returns.
    fn start(&self, scope: Scope, receive: Receiver, send: Sender) -> AppFuture<'static> {
        let request = match scope {
            Scope::Http(http) => Request::new(http, receive),
            other => {
                let error = Error::msg(format!(
                    "a request handler serves `http` scopes only, got `{}` (route WebSockets \
                     with `websocket(app)`; give the lifespan to `Router::lifespan`)",
                    other.type_name()
                ));
                return Box::pin(std::future::ready(Err(error)));
            }
        };
        Box::pin(HandlerCall {
            handled: (self.f)(request),
            send: Some(send),
            sending: None,
        })
    }
}

pin_project_lite::pin_project! {
    /// One call of a handler: its future, then the sending of what it returned.
    ///
    /// A future of its own rather than an `async` block: the block would keep the handler's
    /// future twice over (once as it was handed in, once as it is awaited), and move it from
    /// one place to the other on the first poll. This one holds it once, where the box put
    /// it, and polls it there.
    struct HandlerCall<Fut> {
        #[pin]
        handled: Fut,
        // The sender, until the handler's answer is handed to it.
        send: Option<Sender>,
        // The rest of the sending, when it has to wait (a streamed body, a sink that could
        // not take the response at once).
        sending: Option<AppFuture<'static>>,
    }
}

impl<Fut> Future for HandlerCall<Fut>
where
    Fut: Future,
    Fut::Output: IntoResponse,
{
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(sending) = this.sending {
            return sending.as_mut().poll(cx);
        }
        let answer = ready!(this.handled.poll(cx));
        let Some(send) = this.send.take() else {
            // Polled again after it returned.
            return Poll::Ready(Ok(()));
        };
        // The sender is handed over: what has to wait owns it, and borrows nothing.
        match answer.into_response().start_sending(send) {
            Sent::Now(result) => Poll::Ready(result),
            Sent::Later(sending) => this.sending.insert(sending).as_mut().poll(cx),
        }
    }
}

/// What the route functions ([`get`](crate::router::get), ...) and the [`Router`](crate::router::Router)'s
/// fallbacks accept: an [`App`], or a request handler (`async fn(Request) -> impl
/// IntoResponse`, see [`handler`]).
///
/// The type parameter `M` only lets both kinds be accepted side by side; it is inferred,
/// and never written: it is [`ViaApp`] for apps and [`ViaRequest`] for handlers.
pub trait IntoApp<M>: Send + Sync + 'static {
    /// The app.
    type App: App;

    /// Makes the app.
    fn into_app(self) -> Self::App;
}

/// The [`IntoApp`] marker of apps.
#[derive(Debug)]
pub struct ViaApp(PhantomData<()>);

/// The [`IntoApp`] marker of request handlers.
#[derive(Debug)]
pub struct ViaRequest(PhantomData<()>);

impl<A: App> IntoApp<ViaApp> for A {
    type App = A;

    fn into_app(self) -> A {
        self
    }
}

impl<F, Fut> IntoApp<ViaRequest> for F
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: IntoResponse,
{
    type App = Handler<F>;

    fn into_app(self) -> Handler<F> {
        handler(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_error_from_request_errors_keeps_client_statuses() {
        let too_large = HttpError::from(BodyError::TooLarge { limit: 3 });
        assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(too_large.as_internal().is_none());

        let disconnected = HttpError::from(BodyError::Disconnected);
        assert!(disconnected.as_internal().unwrap().is_disconnected());

        let missing = HttpError::from(ParamError::Missing { name: "id".into() });
        assert_eq!(missing.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(missing.as_internal().is_some());
    }

    #[test]
    fn json_syntax_is_400_and_shape_is_422() {
        let syntax = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let shape = serde_json::from_str::<u32>("\"x\"").unwrap_err();
        assert_eq!(
            HttpError::from(JsonError::Invalid(syntax)).status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            HttpError::from(JsonError::Invalid(shape)).status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
}
