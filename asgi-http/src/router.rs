//! [`Router`]: dispatch by path (with [`matchit`]) and method to any [`App`].
//!
//! Routes take apps and request handlers alike (`get(list)` with `async fn list(request:
//! Request) -> Result<Response, HttpError>`, see [`handler`](crate::handler)).
//!
//! A router is itself an app. For each HTTP or WebSocket connection it matches the path
//! *after* `root_path` (so a router works the same under a [`Mount`](crate::mount::Mount)),
//! stores the matched parameters in the scope as [`PathParams`], and calls the route's app:
//!
//! - no route matches: the [`fallback`](Router::fallback) app, else for HTTP the
//!   [`not_found`](Router::not_found) app, else `404 Not Found`;
//! - the route matches but has no app for the method: the
//!   [`method_not_allowed`](Router::method_not_allowed) app, else `405 Method Not Allowed`;
//!   either way with an `Allow` header listing the methods it has;
//! - `HEAD` falls back to the `GET` app (the server sends no body for `HEAD`);
//! - WebSocket connections route by path alone, to the route's
//!   [`websocket`](MethodRouter::websocket) app; with none, they get the not-found answer
//!   (and HTTP requests to a route that only has a WebSocket app get `404`);
//! - the lifespan scope runs the lifespan of the router's [`lifespan`](Router::lifespan)
//!   app, then that of its [`fallback`](Router::fallback) (a sub-app: a
//!   [`Mount`](crate::mount::Mount), a nested router), and answers for them all; route apps
//!   are handlers and never see the lifespan scope. See [`Router::lifespan`].

use std::fmt;
use std::sync::Arc;

use asgi_core::app::{AppFuture, OwnedApp};
use asgi_core::http::{HeaderValue, Method, StatusCode, header};
use asgi_core::{App, Error, Receiver, Scope, SendEvent, Sender};

use crate::handler::IntoApp;
use crate::lifespan::{self, Part};
use crate::response::Response;

/// The path parameters of the matched route, stored in the scope's typed
/// [`extensions`](asgi_core::Extensions) by [`Router`].
///
/// Values are taken from the scope's `path`, which the server has already percent-decoded
/// (so `/files/a%20b` gives `"a b"`). When routers are nested, the inner router adds its
/// parameters to the outer one's; a name matched twice keeps the inner value.
///
/// # Example
///
/// ```
/// use asgi_core::{Error, Receiver, Scope, Sender};
/// use asgi_http::router::PathParams;
///
/// async fn show_user(scope: Scope, _: Receiver, _: Sender) -> Result<(), Error> {
///     let id = scope
///         .extensions()
///         .and_then(|ext| ext.get::<PathParams>())
///         .and_then(|params| params.get("id"));
///     println!("user {id:?}");
///     Ok(())
/// }
/// # fn assert_app(_: impl asgi_core::App) {}
/// # assert_app(show_user);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathParams {
    params: Vec<(String, String)>,
}

impl PathParams {
    /// No parameters.
    pub fn new() -> Self {
        PathParams::default()
    }

    /// The value of the parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Sets `name` to `value`, replacing an earlier value of that name.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.params.iter_mut().find(|(key, _)| *key == name) {
            Some(entry) => entry.1 = value,
            None => self.params.push((name, value)),
        }
    }

    /// The parameters in the order of the route pattern, outer routers first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many parameters there are.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }
}

/// The path an app routes on: the scope's `path` with its `root_path` removed, or `/` when
/// nothing is left.
///
/// ASGI keeps the full path in `path` and says where the app is mounted in `root_path`;
/// this gives the part that belongs to the app. `root_path` is removed only on a segment
/// boundary (`/api` is removed from `/api/x` but not from `/apix`); a `path` that does not
/// start with `root_path` is returned whole.
///
/// # Example
///
/// ```
/// use asgi_http::router::route_path;
///
/// assert_eq!(route_path("/api/users/7", "/api"), "/users/7");
/// assert_eq!(route_path("/api", "/api"), "/");
/// assert_eq!(route_path("/apix", "/api"), "/apix");
/// assert_eq!(route_path("/users", ""), "/users");
/// ```
pub fn route_path<'a>(path: &'a str, root_path: &str) -> &'a str {
    let rest = match path.strip_prefix(root_path) {
        Some(rest) if !root_path.is_empty() && (rest.is_empty() || rest.starts_with('/')) => rest,
        _ => path,
    };
    if rest.is_empty() { "/" } else { rest }
}

/// The apps of one route, by method: built with [`get`], [`post`], [`put`], [`delete`],
/// [`patch`], [`any`], [`on`] and [`websocket`], and chained (`get(list).post(create)`).
///
/// Adding a second app for a method replaces the first.
#[derive(Clone, Default)]
pub struct MethodRouter {
    methods: Vec<(Method, Arc<dyn App>)>,
    any: Option<Arc<dyn App>>,
    websocket: Option<Arc<dyn App>>,
}

impl MethodRouter {
    /// A route with no apps yet; until one is added it answers nothing (requests and
    /// WebSockets get the not-found answer).
    pub fn new() -> Self {
        MethodRouter::default()
    }

    /// Handles `method` with `app`.
    pub fn on<M>(mut self, method: Method, app: impl IntoApp<M>) -> Self {
        let app: Arc<dyn App> = Arc::new(app.into_app());
        match self.methods.iter_mut().find(|(m, _)| *m == method) {
            Some(entry) => entry.1 = app,
            None => self.methods.push((method, app)),
        }
        self
    }

    /// Handles `GET` (and `HEAD`, unless a `HEAD` app is given) with `app`.
    pub fn get<M>(self, app: impl IntoApp<M>) -> Self {
        self.on(Method::GET, app)
    }

    /// Handles `POST` with `app`.
    pub fn post<M>(self, app: impl IntoApp<M>) -> Self {
        self.on(Method::POST, app)
    }

    /// Handles `PUT` with `app`.
    pub fn put<M>(self, app: impl IntoApp<M>) -> Self {
        self.on(Method::PUT, app)
    }

    /// Handles `DELETE` with `app`.
    pub fn delete<M>(self, app: impl IntoApp<M>) -> Self {
        self.on(Method::DELETE, app)
    }

    /// Handles `PATCH` with `app`.
    pub fn patch<M>(self, app: impl IntoApp<M>) -> Self {
        self.on(Method::PATCH, app)
    }

    /// Handles every HTTP method that has no app of its own with `app`. WebSocket
    /// connections are not HTTP requests: give them [`websocket`](MethodRouter::websocket).
    pub fn any<M>(mut self, app: impl IntoApp<M>) -> Self {
        self.any = Some(Arc::new(app.into_app()));
        self
    }

    /// Handles WebSocket connections to this path with `app`.
    pub fn websocket(mut self, app: impl App) -> Self {
        self.websocket = Some(Arc::new(app));
        self
    }

    fn serves_http(&self) -> bool {
        !self.methods.is_empty() || self.any.is_some()
    }

    fn for_method(&self, method: &Method) -> Option<&Arc<dyn App>> {
        let find = |wanted: &Method| {
            self.methods
                .iter()
                .find(|(m, _)| m == wanted)
                .map(|(_, app)| app)
        };
        find(method)
            .or_else(|| {
                if *method == Method::HEAD {
                    find(&Method::GET)
                } else {
                    None
                }
            })
            .or(self.any.as_ref())
    }

    /// The `Allow` header value: the methods in the order they were added, plus `HEAD` when
    /// `GET` is there.
    fn allow(&self) -> String {
        let mut names: Vec<&str> = self.methods.iter().map(|(m, _)| m.as_str()).collect();
        let has = |names: &[&str], m: &Method| names.contains(&m.as_str());
        if has(&names, &Method::GET) && !has(&names, &Method::HEAD) {
            names.push(Method::HEAD.as_str());
        }
        names.join(", ")
    }

    fn merge(&mut self, other: MethodRouter) {
        for (method, app) in other.methods {
            match self.methods.iter_mut().find(|(m, _)| *m == method) {
                Some(entry) => entry.1 = app,
                None => self.methods.push((method, app)),
            }
        }
        if other.any.is_some() {
            self.any = other.any;
        }
        if other.websocket.is_some() {
            self.websocket = other.websocket;
        }
    }
}

impl fmt::Debug for MethodRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MethodRouter")
            .field(
                "methods",
                &self.methods.iter().map(|(m, _)| m).collect::<Vec<_>>(),
            )
            .field("any", &self.any.is_some())
            .field("websocket", &self.websocket.is_some())
            .finish()
    }
}

/// A route that handles `method` with `app`.
pub fn on<M>(method: Method, app: impl IntoApp<M>) -> MethodRouter {
    MethodRouter::new().on(method, app)
}

/// A route that handles `GET` and `HEAD` with `app`.
pub fn get<M>(app: impl IntoApp<M>) -> MethodRouter {
    MethodRouter::new().get(app)
}

/// A route that handles `POST` with `app`.
pub fn post<M>(app: impl IntoApp<M>) -> MethodRouter {
    MethodRouter::new().post(app)
}

/// A route that handles `PUT` with `app`.
pub fn put<M>(app: impl IntoApp<M>) -> MethodRouter {
    MethodRouter::new().put(app)
}

/// A route that handles `DELETE` with `app`.
pub fn delete<M>(app: impl IntoApp<M>) -> MethodRouter {
    MethodRouter::new().delete(app)
}

/// A route that handles `PATCH` with `app`.
pub fn patch<M>(app: impl IntoApp<M>) -> MethodRouter {
    MethodRouter::new().patch(app)
}

/// A route that handles every HTTP method with `app`.
pub fn any<M>(app: impl IntoApp<M>) -> MethodRouter {
    MethodRouter::new().any(app)
}

/// A route that handles WebSocket connections with `app`.
pub fn websocket(app: impl App) -> MethodRouter {
    MethodRouter::new().websocket(app)
}

/// A route pattern the router cannot use.
#[derive(Debug, thiserror::Error)]
#[error("invalid route {pattern:?}: {reason}")]
pub struct RouteError {
    pattern: String,
    reason: String,
}

impl RouteError {
    /// The pattern that was rejected.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }
}

/// Routes HTTP requests by path and method, and WebSocket connections by path, to apps.
///
/// Patterns are [`matchit`]'s: `/users/{id}` matches one segment, `/static/{*path}` the rest
/// of the path. The parameters reach the route's app as [`PathParams`] in the scope's
/// extensions (and through [`Request::param`](crate::request::Request::param)). Paths are
/// matched after `root_path` is removed (see [`route_path`]). See the [module
/// docs](self) for what happens when nothing matches, for `HEAD`, WebSockets and lifespan.
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
///     let id = request.param("id").unwrap_or_default().to_owned();
///     Response::text(format!("user {id}")).send(&mut send).await
/// }
///
/// let app = Router::new().route("/users/{id}", get(show_user));
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let client = TestClient::new(app);
/// let response = client.get("/users/7").await?;
/// assert_eq!(response.text(), "user 7");
/// assert_eq!(client.get("/nope").await?.status(), 404);
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// ```
#[derive(Default)]
pub struct Router {
    matcher: matchit::Router<usize>,
    // The apps of each pattern, indexed by the matcher's values; the pattern is kept to merge
    // a second `route` call for the same pattern into the first.
    routes: Vec<(String, MethodRouter)>,
    fallback: Option<Arc<dyn App>>,
    not_found: Option<Arc<dyn App>>,
    method_not_allowed: Option<Arc<dyn App>>,
    lifespan: Option<Arc<dyn App>>,
}

impl Router {
    /// A router with no routes: everything is `404`.
    pub fn new() -> Self {
        Router::default()
    }

    /// Adds a route. Routing the same pattern again adds the new methods to it.
    ///
    /// # Panics
    ///
    /// If `pattern` is not a valid route: it does not start with `/`, has a malformed
    /// parameter, or conflicts with an earlier pattern (see [`matchit`]). Routes are set up
    /// once at startup, so this is a programming error; use
    /// [`try_route`](Router::try_route) to handle it instead.
    pub fn route(self, pattern: &str, methods: MethodRouter) -> Self {
        match self.try_route(pattern, methods) {
            Ok(router) => router,
            Err(e) => panic!("{e}"),
        }
    }

    /// Adds a route, or says why the pattern cannot be used.
    ///
    /// # Errors
    ///
    /// A [`RouteError`] when `pattern` does not start with `/`, has a malformed parameter,
    /// or conflicts with an earlier pattern.
    pub fn try_route(mut self, pattern: &str, methods: MethodRouter) -> Result<Self, RouteError> {
        if let Some((_, existing)) = self.routes.iter_mut().find(|(p, _)| p == pattern) {
            existing.merge(methods);
            return Ok(self);
        }
        if !pattern.starts_with('/') {
            return Err(RouteError {
                pattern: pattern.to_owned(),
                reason: "a route must start with `/`".to_owned(),
            });
        }
        self.matcher
            .insert(pattern, self.routes.len())
            .map_err(|e| RouteError {
                pattern: pattern.to_owned(),
                reason: e.to_string(),
            })?;
        self.routes.push((pattern.to_owned(), methods));
        Ok(self)
    }

    /// The app for requests and WebSockets that match no route, instead of `404`.
    pub fn fallback<M>(mut self, app: impl IntoApp<M>) -> Self {
        self.fallback = Some(Arc::new(app.into_app()));
        self
    }

    /// The app that answers HTTP requests that match no route, instead of the plain-text
    /// `404 Not Found`; a JSON API answers in JSON with it (see the example). WebSocket
    /// connections that match no route keep their own answer, and a
    /// [`fallback`](Router::fallback), which takes every unmatched connection, comes first.
    ///
    /// # Example
    ///
    /// ```
    /// use asgi_core::http::{Method, StatusCode};
    /// use asgi_http::request::Request;
    /// use asgi_http::response::Response;
    /// use asgi_http::router::{get, Router};
    /// use asgi_http::test_client::{TestClient, TestRequest};
    ///
    /// async fn list(_: Request) -> Response {
    ///     Response::text("[]")
    /// }
    ///
    /// let app = Router::new()
    ///     .route("/todos", get(list))
    ///     .not_found(|request: Request| async move {
    ///         Response::json_error(StatusCode::NOT_FOUND, format!("no route for {}", request.path()))
    ///     })
    ///     .method_not_allowed(|request: Request| async move {
    ///         let message = format!("{} is not allowed here", request.method());
    ///         Response::json_error(StatusCode::METHOD_NOT_ALLOWED, message)
    ///     });
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let client = TestClient::new(app);
    /// let missing = client.get("/nope").await?;
    /// assert_eq!(missing.status(), 404);
    /// assert_eq!(missing.text(), r#"{"error":"no route for /nope"}"#);
    /// let wrong = client.send(TestRequest::new(Method::DELETE, "/todos")).await?;
    /// assert_eq!(wrong.status(), 405);
    /// assert_eq!(wrong.header("allow"), Some("GET, HEAD"));
    /// assert_eq!(wrong.text(), r#"{"error":"DELETE is not allowed here"}"#);
    /// # Ok::<(), asgi_core::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn not_found<M>(mut self, app: impl IntoApp<M>) -> Self {
        self.not_found = Some(Arc::new(app.into_app()));
        self
    }

    /// The app that answers HTTP requests to a route that has no app for their method,
    /// instead of the plain-text `405 Method Not Allowed`. The router adds the `Allow`
    /// header (the methods the route has) to its answer, unless the app set one. See
    /// [`not_found`](Router::not_found) for an example.
    pub fn method_not_allowed<M>(mut self, app: impl IntoApp<M>) -> Self {
        self.method_not_allowed = Some(Arc::new(app.into_app()));
        self
    }

    /// The app that runs the router's lifespan: it fills the state at `lifespan.startup`
    /// and cleans up at `lifespan.shutdown`, as a top-level app would.
    ///
    /// The router answers the lifespan scope for its sub-apps as one app, so a router with a
    /// lifespan works the same served alone, mounted in a [`Mount`](crate::mount::Mount), or
    /// set as another router's fallback:
    ///
    /// - startup runs this app's lifespan, then the [`fallback`](Router::fallback)'s (each in
    ///   a task of its own); shutdown runs in reverse order. Route apps never see the lifespan
    ///   scope.
    /// - Each one fills a state of its own; the states are merged into the one the server
    ///   shares with every request. A type stored by both fails the startup, with a message
    ///   that names the type and both (`the lifespan app`, `the fallback`).
    /// - A failed startup fails the router's startup with that message (prefixed with
    ///   `the fallback: ` when the fallback failed), after the ones already started are shut
    ///   down again.
    /// - An app without lifespan support (it returns, or fails, on the lifespan scope) is left
    ///   out, as a server goes on without lifespan for such an app.
    ///
    /// Without a lifespan app and a fallback, the router answers `startup.complete` and
    /// `shutdown.complete` itself, as Starlette's router does.
    ///
    /// # Example
    ///
    /// ```
    /// use asgi_core::{Error, LifespanState, ReceiveEvent, Receiver, Scope, SendEvent, Sender};
    /// use asgi_http::mount::Mount;
    /// use asgi_http::request::Request;
    /// use asgi_http::response::Response;
    /// use asgi_http::router::{get, Router};
    /// use asgi_http::test_client::TestClient;
    ///
    /// #[derive(Clone)]
    /// struct Db(&'static str);
    ///
    /// async fn lifespan(scope: Scope, mut receive: Receiver, mut send: Sender) -> Result<(), Error> {
    ///     let Scope::Lifespan(scope) = scope else { return Ok(()) };
    ///     while let ReceiveEvent::LifespanStartup = receive.recv().await {
    ///         scope.state.insert(Db("orders"))?;
    ///         send.send(SendEvent::LifespanStartupComplete).await?;
    ///     }
    ///     send.send(SendEvent::LifespanShutdownComplete).await?;
    ///     Ok(())
    /// }
    ///
    /// async fn list(scope: Scope, receive: Receiver, mut send: Sender) -> Result<(), Error> {
    ///     let request = Request::from_scope(scope, receive)?;
    ///     let db = request.state().try_get::<Db>()?;
    ///     Response::text(db.0).send(&mut send).await
    /// }
    ///
    /// let api = Router::new().route("/orders", get(list)).lifespan(lifespan);
    /// // Mounted, the router's lifespan still runs: the mount runs its sub-apps' lifespans.
    /// let app = Mount::new().mount("/api", api);
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let client = TestClient::with_lifespan(app).await?;
    /// assert_eq!(client.get("/api/orders").await?.text(), "orders");
    /// client.shutdown().await?;
    /// # Ok::<(), Error>(())
    /// # }).unwrap();
    /// ```
    pub fn lifespan(mut self, app: impl App) -> Self {
        self.lifespan = Some(Arc::new(app));
        self
    }
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("routes", &self.routes)
            .field("fallback", &self.fallback.is_some())
            .field("not_found", &self.not_found.is_some())
            .field("method_not_allowed", &self.method_not_allowed.is_some())
            .field("lifespan", &self.lifespan.is_some())
            .finish()
    }
}

impl Router {
    /// The apps whose lifespans make up the router's: its own lifespan app, then the
    /// fallback (a sub-app: a mount, a nested router). Route apps are handlers and never see
    /// the lifespan scope.
    fn lifespan_parts(&self) -> Vec<Part> {
        let own = self.lifespan.iter().map(Part::own);
        let fallback = self
            .fallback
            .iter()
            .map(|app| Part::named("the fallback".to_owned(), app));
        own.chain(fallback).collect()
    }
}

enum Dispatch<'r> {
    App(&'r Arc<dyn App>, PathParams),
    MethodNotAllowed(String),
    NoRoute,
}

impl Router {
    fn find(&self, scope: &Scope) -> Dispatch<'_> {
        let (path, root_path, method) = match scope {
            Scope::Http(http) => (&http.path, &http.root_path, Some(&http.method)),
            Scope::WebSocket(ws) => (&ws.path, &ws.root_path, None),
            _ => return Dispatch::NoRoute,
        };
        let Ok(matched) = self.matcher.at(route_path(path, root_path)) else {
            return Dispatch::NoRoute;
        };
        let Some((_, route)) = self.routes.get(*matched.value) else {
            return Dispatch::NoRoute;
        };
        let mut params = PathParams::new();
        for (name, value) in matched.params.iter() {
            params.insert(name, value);
        }
        match method {
            // A WebSocket-only route is not there for HTTP, as in Starlette.
            Some(_) if !route.serves_http() => Dispatch::NoRoute,
            Some(method) => match route.for_method(method) {
                Some(app) => Dispatch::App(app, params),
                None => Dispatch::MethodNotAllowed(route.allow()),
            },
            None => match &route.websocket {
                Some(app) => Dispatch::App(app, params),
                None => Dispatch::NoRoute,
            },
        }
    }
}

// An `OwnedApp` rather than an `async_trait` app: the router picks the app before any future
// is made and hands out that app's own future (`call_owned`), so a routed request carries no
// future of the router's, and its scope is not moved once more.
impl OwnedApp for Router {
    /// One call: the app it goes to, called, or the router's own answer.
    fn start(&self, mut scope: Scope, receive: Receiver, mut send: Sender) -> AppFuture<'static> {
        if let Scope::Lifespan(scope) = scope {
            return Box::pin(lifespan::run(scope, receive, send, self.lifespan_parts()));
        }
        if !matches!(scope, Scope::Http(_) | Scope::WebSocket(_)) {
            return Box::pin(std::future::ready(Err(unsupported_scope(&scope))));
        }
        match self.find(&scope) {
            Dispatch::App(app, params) => {
                let app = app.clone();
                if let Some(ext) = scope.extensions_mut() {
                    match ext.get_mut::<PathParams>() {
                        Some(outer) => {
                            for (name, value) in params.params {
                                outer.insert(name, value);
                            }
                        }
                        None => {
                            ext.insert(params);
                        }
                    }
                }
                app.call_owned(scope, receive, send)
            }
            Dispatch::MethodNotAllowed(allow) => {
                // Method names are tokens, so the value is always valid; a 405 without
                // `Allow` would still be a correct answer.
                let allow = HeaderValue::from_str(&allow).ok();
                match &self.method_not_allowed {
                    Some(app) => {
                        let send = match allow {
                            Some(allow) => add_allow(send, allow),
                            None => send,
                        };
                        app.clone().call_owned(scope, receive, send)
                    }
                    None => {
                        let response = Response::text("Method Not Allowed")
                            .status(StatusCode::METHOD_NOT_ALLOWED);
                        let response = match allow {
                            Some(value) => response.header(header::ALLOW, value),
                            None => response,
                        };
                        Box::pin(async move { response.send(&mut send).await })
                    }
                }
            }
            Dispatch::NoRoute => match (&self.fallback, &self.not_found) {
                (Some(app), _) => app.clone().call_owned(scope, receive, send),
                (None, Some(app)) if matches!(scope, Scope::Http(_)) => {
                    app.clone().call_owned(scope, receive, send)
                }
                _ => Box::pin(async move { not_found(&scope, &mut send).await }),
            },
        }
    }
}

/// `send` with `allow` added to `http.response.start` when the app gave no `Allow` header.
fn add_allow(send: Sender, allow: HeaderValue) -> Sender {
    send.map(move |event| match event {
        SendEvent::HttpResponseStart {
            status,
            mut headers,
            trailers,
        } => {
            if !headers.contains_key(header::ALLOW) {
                headers.insert(header::ALLOW, allow.clone());
            }
            SendEvent::HttpResponseStart {
                status,
                headers,
                trailers,
            }
        }
        other => other,
    })
}

/// The error for a scope type this crate's apps do not know.
pub(crate) fn unsupported_scope(scope: &Scope) -> Error {
    Error::msg(format!("unsupported scope type `{}`", scope.type_name()))
}

/// The not-found answer: `404 Not Found` for HTTP; for a WebSocket, a `404` denial response
/// when the server supports `websocket.http.response`, else `websocket.close` (which the
/// server turns into `403`), as Starlette does.
pub(crate) async fn not_found(scope: &Scope, send: &mut Sender) -> Result<(), Error> {
    match scope {
        Scope::WebSocket(ws) => {
            if ws
                .extensions
                .supports(asgi_core::extensions::WEBSOCKET_HTTP_RESPONSE)
            {
                let mut headers = asgi_core::http::HeaderMap::new();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                send.send(SendEvent::WebSocketHttpResponseStart {
                    status: StatusCode::NOT_FOUND,
                    headers,
                })
                .await?;
                send.send(SendEvent::WebSocketHttpResponseBody {
                    body: "Not Found".into(),
                    more_body: false,
                })
                .await?;
            } else {
                send.send(SendEvent::WebSocketClose {
                    code: asgi_core::event::CLOSE_NORMAL,
                    reason: String::new(),
                })
                .await?;
            }
            Ok(())
        }
        _ => {
            Response::text("Not Found")
                .status(StatusCode::NOT_FOUND)
                .send(send)
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_path_strips_root_path_on_segment_boundary() {
        assert_eq!(route_path("/api/x", "/api"), "/x");
        assert_eq!(route_path("/api/", "/api"), "/");
        assert_eq!(route_path("/api", "/api"), "/");
        assert_eq!(route_path("/apix", "/api"), "/apix");
        assert_eq!(route_path("/other", "/api"), "/other");
        assert_eq!(route_path("/", ""), "/");
        assert_eq!(route_path("", ""), "/");
    }

    #[test]
    fn path_params_insert_replaces_by_name_and_keeps_order() {
        let mut params = PathParams::new();
        params.insert("org", "acme");
        params.insert("id", "1");
        params.insert("org", "other");
        assert_eq!(params.get("org"), Some("other"));
        assert_eq!(
            params.iter().collect::<Vec<_>>(),
            [("org", "other"), ("id", "1")]
        );
        assert_eq!(params.len(), 2);
        assert!(params.get("missing").is_none());
    }

    #[test]
    fn allow_lists_methods_in_order_and_adds_head_for_get() {
        let noop = |_: Scope, _: Receiver, _: Sender| async { Ok::<(), Error>(()) };
        assert_eq!(get(noop).post(noop).allow(), "GET, POST, HEAD");
        assert_eq!(post(noop).delete(noop).allow(), "POST, DELETE");
        assert_eq!(get(noop).on(Method::HEAD, noop).allow(), "GET, HEAD");
    }

    #[test]
    fn head_falls_back_to_get_but_not_to_other_methods() {
        let noop = |_: Scope, _: Receiver, _: Sender| async { Ok::<(), Error>(()) };
        assert!(get(noop).for_method(&Method::HEAD).is_some());
        assert!(post(noop).for_method(&Method::HEAD).is_none());
        assert!(post(noop).any(noop).for_method(&Method::PUT).is_some());
    }

    #[test]
    fn invalid_patterns_are_rejected_with_the_pattern_named() {
        let noop = |_: Scope, _: Receiver, _: Sender| async { Ok::<(), Error>(()) };
        let err = Router::new().try_route("users", get(noop)).unwrap_err();
        assert_eq!(err.pattern(), "users");
        let err = Router::new()
            .route("/users/{id}", get(noop))
            .try_route("/users/{name}", get(noop))
            .unwrap_err();
        assert!(err.to_string().contains("/users/{name}"), "{err}");
    }

    #[test]
    fn routing_a_pattern_twice_merges_methods() {
        let noop = |_: Scope, _: Receiver, _: Sender| async { Ok::<(), Error>(()) };
        let router = Router::new()
            .route("/items", get(noop))
            .route("/items", post(noop));
        assert_eq!(router.routes.len(), 1);
        assert_eq!(router.routes[0].1.allow(), "GET, POST, HEAD");
    }
}
