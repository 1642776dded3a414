//! [`Mount`]: serve whole apps under path prefixes, ASGI style.
//!
//! Mounting app `a` at `/api` means: a request for `/api/users` goes to `a` with
//! `root_path` extended by `/api` and `path` left whole (`/api/users`). ASGI, unlike WSGI,
//! keeps the full path; the mounted app finds its own part with
//! [`route_path`], which a [`Router`](crate::router::Router)
//! does by itself. So a router, a mount, or any app works the same mounted or not.

use std::fmt;
use std::sync::Arc;

use asgi_core::app::{AppFuture, OwnedApp};
use asgi_core::{App, Receiver, Scope, Sender};

use crate::lifespan::{self, Part};
use crate::router::{not_found, route_path, unsupported_scope};

/// Dispatches HTTP requests and WebSocket connections to apps by path prefix.
///
/// - A prefix matches on segment boundaries: `/api` matches `/api` and `/api/x`, never
///   `/apix`. The longest matching prefix wins, whatever the order of
///   [`mount`](Mount::mount) calls.
/// - The matched app gets the scope with `root_path` extended by the prefix and `path`
///   unchanged. Prefixes are matched against the path *after* the current `root_path`, so
///   mounts nest.
/// - Nothing matches: the [`fallback`](Mount::fallback) app, else `404 Not Found` (for a
///   WebSocket: a `404` denial when the server supports it, else `websocket.close`).
/// - Lifespan: the mount runs the lifespans of its [`lifespan`](Mount::lifespan) app, of
///   every mounted app (in the order of the [`mount`](Mount::mount) calls) and of the
///   [`fallback`](Mount::fallback), and answers for them all, so a mounted
///   [`Router`](crate::router::Router) with a lifespan, or a mounted mount, keeps it.
///   Startup runs in that order, shutdown in reverse. Each app fills a state of its own, and
///   the states are merged into the one every request sees: a type stored by two apps fails
///   the startup with a message naming the type and both (``mount `/api` ``). A failed
///   startup fails the mount's startup with that app's message, prefixed with its name
///   (``mount `/api`: database unreachable``), after the apps already started are shut down
///   again. A mounted app without lifespan support (it returns, or fails, on the lifespan
///   scope, as a WSGI app or [`StaticFiles`](crate::middleware::static_files::StaticFiles)
///   does) is left out, as a server goes on without lifespan for such an app. With nothing
///   to run, the mount answers `startup.complete` and `shutdown.complete` itself.
///
/// # Example
///
/// ```
/// use asgi_core::{Error, Receiver, Scope, Sender};
/// use asgi_http::mount::Mount;
/// use asgi_http::response::Response;
/// use asgi_http::test_client::TestClient;
///
/// async fn where_am_i(scope: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
///     let Scope::Http(http) = scope else { return Ok(()) };
///     Response::text(format!("root_path={} path={}", http.root_path, http.path))
///         .send(&mut send)
///         .await
/// }
///
/// let app = Mount::new().mount("/api", where_am_i);
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let client = TestClient::new(app);
/// assert_eq!(client.get("/api/users").await?.text(), "root_path=/api path=/api/users");
/// assert_eq!(client.get("/apix").await?.status(), 404);
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// ```
#[derive(Default)]
pub struct Mount {
    // Longest prefix first, so the first match is the most specific one.
    mounts: Vec<(String, Arc<dyn App>)>,
    // The prefixes in the order they were first mounted: lifespans start in this order.
    mount_order: Vec<String>,
    fallback: Option<Arc<dyn App>>,
    lifespan: Option<Arc<dyn App>>,
}

impl Mount {
    /// A mount with no apps: everything is `404`.
    pub fn new() -> Self {
        Mount::default()
    }

    /// Serves `app` under `prefix`. The prefix is taken literally (no parameters); a missing
    /// leading `/` is added and trailing ones are dropped, so `api/` is `/api`, and `/`
    /// matches every path (like a fallback that still goes through `root_path`). Mounting a
    /// prefix again replaces its app.
    pub fn mount(mut self, prefix: &str, app: impl App) -> Self {
        let trimmed = prefix.trim_matches('/');
        let prefix = if trimmed.is_empty() {
            String::new()
        } else {
            format!("/{trimmed}")
        };
        let app: Arc<dyn App> = Arc::new(app);
        match self.mounts.iter_mut().find(|(p, _)| *p == prefix) {
            Some(entry) => entry.1 = app,
            None => {
                self.mount_order.push(prefix.clone());
                self.mounts.push((prefix, app));
                self.mounts.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
            }
        }
        self
    }

    /// The app for requests and WebSockets under no prefix, instead of `404`. It gets the
    /// scope unchanged.
    pub fn fallback(mut self, app: impl App) -> Self {
        self.fallback = Some(Arc::new(app));
        self
    }

    /// An app whose lifespan is the mount's own, started before those of the mounted apps
    /// and shut down after them (see [`Mount`]'s lifespan rules). Mounted apps and the
    /// fallback run their own lifespans: do not give one of them here as well, or its
    /// lifespan runs twice (and the state it stores is refused as stored twice).
    pub fn lifespan(mut self, app: impl App) -> Self {
        self.lifespan = Some(Arc::new(app));
        self
    }

    /// The apps whose lifespans make up the mount's: its own lifespan app, the mounted apps
    /// in the order they were mounted, then the fallback.
    fn lifespan_parts(&self) -> Vec<Part> {
        let own = self.lifespan.iter().map(Part::own);
        let mounted = self.mount_order.iter().filter_map(|prefix| {
            let (_, app) = self.mounts.iter().find(|(p, _)| p == prefix)?;
            let shown = if prefix.is_empty() { "/" } else { prefix };
            Some(Part::named(format!("mount `{shown}`"), app))
        });
        let fallback = self
            .fallback
            .iter()
            .map(|app| Part::named("the fallback".to_owned(), app));
        own.chain(mounted).chain(fallback).collect()
    }

    /// The mounted app and its prefix for a path relative to the current `root_path`.
    fn find(&self, path: &str) -> Option<(&str, &Arc<dyn App>)> {
        self.mounts
            .iter()
            .find(|(prefix, _)| matches_prefix(path, prefix))
            .map(|(prefix, app)| (prefix.as_str(), app))
    }
}

/// True when `prefix` is `path`, or `path` continues it with a new segment.
fn matches_prefix(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.is_empty() || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

impl fmt::Debug for Mount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mount")
            .field(
                "prefixes",
                &self.mounts.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            )
            .field("fallback", &self.fallback.is_some())
            .field("lifespan", &self.lifespan.is_some())
            .finish()
    }
}

// An `OwnedApp`, as the router is: the mounted app's own future is handed out
// (`call_owned`), with no future of the mount's around it.
impl OwnedApp for Mount {
    /// One call: the mounted app it goes to (its prefix added to `root_path`), the fallback,
    /// or the not-found answer.
    fn start(&self, mut scope: Scope, receive: Receiver, mut send: Sender) -> AppFuture<'static> {
        let (path, root_path) = match &mut scope {
            Scope::Http(http) => (&http.path, &mut http.root_path),
            Scope::WebSocket(ws) => (&ws.path, &mut ws.root_path),
            Scope::Lifespan(scope) => {
                let scope = scope.clone();
                return Box::pin(lifespan::run(scope, receive, send, self.lifespan_parts()));
            }
            _ => return Box::pin(std::future::ready(Err(unsupported_scope(&scope)))),
        };
        match self.find(route_path(path, root_path)) {
            Some((prefix, app)) => {
                root_path.push_str(prefix);
                app.clone().call_owned(scope, receive, send)
            }
            None => match &self.fallback {
                Some(app) => app.clone().call_owned(scope, receive, send),
                None => Box::pin(async move { not_found(&scope, &mut send).await }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asgi_core::Error;

    fn noop() -> impl App {
        |_: Scope, _: Receiver, _: Sender| async { Ok::<(), Error>(()) }
    }

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        assert!(matches_prefix("/api", "/api"));
        assert!(matches_prefix("/api/x", "/api"));
        assert!(!matches_prefix("/apix", "/api"));
        assert!(!matches_prefix("/", "/api"));
        assert!(matches_prefix("/anything", ""));
    }

    #[test]
    fn prefixes_are_normalized_and_longest_first() {
        let mount = Mount::new()
            .mount("api/", noop())
            .mount("/api/v2", noop())
            .mount("/", noop());
        let prefixes: Vec<&str> = mount.mounts.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(prefixes, ["/api/v2", "/api", ""]);
        assert_eq!(mount.find("/api/v2/x").map(|(p, _)| p), Some("/api/v2"));
        assert_eq!(mount.find("/api/v3").map(|(p, _)| p), Some("/api"));
        assert_eq!(mount.find("/other").map(|(p, _)| p), Some(""));
    }
}
