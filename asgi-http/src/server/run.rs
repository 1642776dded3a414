//! The server's life: lifespan startup, listening, accepting, draining, lifespan shutdown.

use std::fmt;
use std::sync::{Arc, OnceLock};

use asgi_core::host::Shutdown;
use asgi_core::host::lifespan::{Lifespan, Startup};
use asgi_core::{App, ServerAddr, State};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::accept::{AcceptLoop, Listen};
use super::builder::Builder;
use super::config::Config;
use super::direct::DirectService;
use super::error::ServerError;
use super::shared::Shared;
use super::tls::{HandshakeFailures, TlsError, TlsReloadHandle};

/// Where the server is in its life, for [`ServerHandle::listening`].
#[derive(Debug, Clone)]
enum Status {
    Starting,
    Listening(ServerAddr),
    Stopped,
}

/// What a [`ServerHandle`] controls.
#[derive(Debug)]
struct Control {
    /// Cancelled by a graceful shutdown request (first signal, `shutdown()`).
    graceful: CancellationToken,
    /// Cancelled by a request to stop at once (second signal, `shutdown_now()`).
    immediate: CancellationToken,
    status: watch::Sender<Status>,
    /// The TLS certificate files, once loaded: for reloads.
    tls: OnceLock<TlsReloadHandle>,
    /// Failed TLS handshakes so far.
    tls_failures: HandshakeFailures,
}

impl Control {
    fn shutdown(&self) {
        self.graceful.cancel();
    }

    fn shutdown_now(&self) {
        self.graceful.cancel();
        self.immediate.cancel();
    }

    fn reload_tls(&self) -> Result<(), TlsError> {
        match self.tls.get() {
            Some(tls) => tls.reload(),
            None => Err(TlsError::not_configured()),
        }
    }
}

/// The HTTP/1.1 + HTTP/2 server for one [`App`].
///
/// Build it with [`Server::builder`] (or use [`serve`](crate::serve)), keep a
/// [`ServerHandle`] if something else must stop it, then [`serve`](Server::serve).
///
/// # Example
///
/// Serve on a port the test picked, then shut down gracefully:
///
/// ```
/// use asgi_core::{Error, Receiver, Scope, SendEvent, Sender};
/// use asgi_http::server::Server;
/// use http::{HeaderMap, StatusCode};
///
/// async fn app(scope: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
///     if let Scope::Http(_) = scope {
///         send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new())).await?;
///         send.send(SendEvent::response_body("Hello, world!", false)).await?;
///     }
///     Ok(())
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let server = Server::builder().listener(listener).handle_signals(false).build(app);
/// let handle = server.handle();
/// let serving = tokio::spawn(server.serve());
///
/// let addr = handle.listening().await.expect("the server listens");
/// println!("listening on {addr:?}");
///
/// handle.shutdown();
/// serving.await.unwrap().unwrap();
/// # });
/// ```
pub struct Server {
    app: Arc<dyn App>,
    config: Config,
    listen: Listen,
    control: Arc<Control>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

/// Controls a [`Server`] from elsewhere: waits until it listens, shuts it down.
///
/// Cheap to clone; every clone controls the same server.
///
/// # Example
///
/// ```
/// use asgi_core::{Error, Receiver, Scope, Sender, ServerAddr};
/// use asgi_http::server::Server;
///
/// async fn app(_: Scope, _: Receiver, _: Sender) -> Result<(), Error> {
///     Ok(())
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let server = Server::builder()
///     .bind("127.0.0.1:0".parse().unwrap())
///     .handle_signals(false)
///     .build(app);
/// let handle = server.handle();
/// let serving = tokio::spawn(server.serve());
///
/// // Port 0 picked a free port; `listening` says which.
/// let Some(ServerAddr::Tcp(addr)) = handle.listening().await else { panic!("not listening") };
/// assert_ne!(addr.port(), 0);
///
/// handle.shutdown();
/// serving.await.unwrap().unwrap();
/// // Once stopped, it no longer listens.
/// assert_eq!(handle.listening().await, None);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct ServerHandle {
    control: Arc<Control>,
}

impl ServerHandle {
    /// Starts a graceful shutdown, as a first SIGINT/SIGTERM does: stop accepting, fire the
    /// scopes' shutdown signal, let requests in flight finish (up to the drain timeout), then
    /// run lifespan shutdown. Calling it again does nothing more.
    pub fn shutdown(&self) {
        self.control.shutdown();
    }

    /// Stops at once, as a second signal does: connections still open are closed, and the
    /// server does not wait for the app's lifespan shutdown (the app's lifespan receiver just
    /// ends, which it sees as `lifespan.shutdown`).
    pub fn shutdown_now(&self) {
        self.control.shutdown_now();
    }

    /// Reads the TLS certificate, key and client CA files again, as SIGHUP does: handshakes
    /// that start afterwards use the new certificate, connections already open go on with
    /// theirs.
    ///
    /// # Errors
    ///
    /// When the server has no TLS ([`Builder::tls`]), has not loaded it yet, or a new file
    /// is missing or bad: then the certificate in use stays, and the error is logged too.
    pub fn reload_tls(&self) -> Result<(), TlsError> {
        self.control.reload_tls()
    }

    /// How many TLS handshakes failed so far (plaintext to the TLS port, an unknown client
    /// CA, a handshake timeout, ...): each closed its connection and was logged at DEBUG
    /// level.
    pub fn tls_handshake_failures(&self) -> u64 {
        self.control.tls_failures.get()
    }

    /// Waits until the server accepts connections and returns where it listens (the bound
    /// port when it was 0). `None` if it stopped before that (lifespan startup failed, the
    /// socket could not be bound, or it was shut down first).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn listening(&self) -> Option<ServerAddr> {
        let mut status = self.control.status.subscribe();
        loop {
            match &*status.borrow_and_update() {
                Status::Listening(addr) => return Some(addr.clone()),
                Status::Stopped => return None,
                Status::Starting => {}
            }
            if status.changed().await.is_err() {
                return None;
            }
        }
    }
}

impl Builder {
    /// The server for `app`, ready to [`serve`](Server::serve). Nothing is bound yet.
    pub fn build(self, app: impl App) -> Server {
        Server::new(app, self)
    }

    /// Builds the server and serves `app` until it is shut down.
    ///
    /// # Errors
    ///
    /// See [`Server::serve`].
    pub async fn serve(self, app: impl App) -> Result<(), ServerError> {
        self.build(app).serve().await
    }
}

impl Server {
    /// A [`Builder`] with every setting at its default.
    pub fn builder() -> Builder {
        Builder::new()
    }

    fn new(app: impl App, builder: Builder) -> Server {
        let (status, _) = watch::channel(Status::Starting);
        // Proxy headers are applied by the service as it builds each scope (see
        // `Builder::proxy_headers`), not by a middleware around the app: one resolution
        // serves the scope and the access log, and the scope is not moved once more.
        let app: Arc<dyn App> = Arc::new(app);
        Server {
            app,
            config: builder.config,
            listen: builder.listen,
            control: Arc::new(Control {
                graceful: CancellationToken::new(),
                immediate: CancellationToken::new(),
                status,
                tls: OnceLock::new(),
                tls_failures: HandshakeFailures::default(),
            }),
        }
    }

    /// A handle to shut this server down and learn where it listens.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            control: self.control.clone(),
        }
    }

    /// Runs the server until it is shut down (by SIGINT/SIGTERM, unless
    /// [`handle_signals`](Builder::handle_signals) is off, or through a [`ServerHandle`]).
    ///
    /// 1. Lifespan startup (the ASGI lifespan protocol): the app gets `lifespan.startup`. On
    ///    `lifespan.startup.complete` its state is frozen and shared into every scope; an app
    ///    without lifespan support (it returns or fails on the lifespan scope) is served
    ///    without it.
    /// 2. The socket is bound and connections are accepted, each served by hyper on the
    ///    tokio runtime this runs on.
    /// 3. On shutdown: stop accepting, fire the scopes' shutdown signal, shut every
    ///    connection down gracefully (idle keep-alive connections close at once, requests in
    ///    flight finish), wait up to the drain timeout, then close what is left.
    /// 4. Lifespan shutdown: `lifespan.shutdown`, waiting for the app's answer, unless the
    ///    stop was forced.
    ///
    /// # Errors
    ///
    /// [`ServerError::is_startup_failed`] when the app answered `lifespan.startup.failed`
    /// (nothing was bound), [`ServerError::is_bind`] when the socket could not be bound.
    /// Both are returned before anything is served.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with its IO and time drivers enabled.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops accepting and skips the drain and lifespan shutdown;
    /// connections already accepted go on until they end. Stop a server with a
    /// [`ServerHandle`] instead.
    pub async fn serve(self) -> Result<(), ServerError> {
        let Server {
            app,
            config,
            listen,
            control,
        } = self;
        let signals = config
            .handle_signals
            .then(|| AbortOnDrop(tokio::spawn(watch_signals(control.clone()))));
        // SIGHUP reloads the certificate; without TLS it keeps its default action.
        #[cfg(unix)]
        let hangup = (config.handle_signals && config.tls.is_some())
            .then(|| AbortOnDrop(tokio::spawn(reload_tls_on_hangup(control.clone()))));
        let result = run(app, config, listen, &control).await;
        drop(signals);
        #[cfg(unix)]
        drop(hangup);
        control.status.send_replace(Status::Stopped);
        result
    }
}

async fn run(
    app: Arc<dyn App>,
    config: Config,
    listen: Listen,
    control: &Control,
) -> Result<(), ServerError> {
    // Certificate files are read first: a bad one stops the server before the app starts
    // and before anything is bound.
    let tls = match &config.tls {
        Some(tls) => match TlsReloadHandle::load(tls) {
            Ok(handle) => {
                let handle = control.tls.get_or_init(|| handle).clone();
                Some(handle)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot set up TLS");
                return Err(ServerError::tls(e));
            }
        },
        None => None,
    };

    let startup = tokio::select! {
        startup = Lifespan::startup(app.clone()) => startup,
        () = control.graceful.cancelled() => {
            tracing::info!("shut down during application startup");
            return Ok(());
        }
    };
    let (lifespan, state) = match startup {
        Startup::Complete(lifespan) => {
            tracing::info!("application startup complete");
            let state = lifespan.state();
            (Some(lifespan), state)
        }
        Startup::Failed { message } => {
            tracing::error!(message, "application startup failed");
            return Err(ServerError::startup_failed(message));
        }
        Startup::Unsupported { error } => {
            tracing::info!("the app does not support the lifespan protocol: serving without it");
            if let Some(error) = error {
                tracing::debug!(%error, "the app's answer to the lifespan scope");
            }
            (None, State::empty())
        }
        other => {
            tracing::info!(?other, "unknown lifespan outcome: serving without lifespan");
            (None, State::empty())
        }
    };

    // A socket file the server made is the server's to remove.
    #[cfg(unix)]
    let bound_unix = matches!(listen, Listen::Unix(_));
    let (listener, local) = match bind(listen, &config).await {
        Ok((listener, local)) => match tls {
            Some(tls) => (listener.with_tls(tls, control.tls_failures.clone()), local),
            None => (listener, local),
        },
        Err(e) => {
            tracing::error!(error = %e, "cannot listen");
            if let Some(lifespan) = lifespan {
                shutdown_lifespan(lifespan, control).await;
            }
            return Err(ServerError::bind(e));
        }
    };
    match &local {
        ServerAddr::Tcp(addr) if config.tls.is_some() => {
            tracing::info!("listening on https://{addr}")
        }
        ServerAddr::Tcp(addr) => tracing::info!("listening on http://{addr}"),
        ServerAddr::Unix(path) => tracing::info!("listening on unix:{}", path.display()),
    }

    // Without a `root_path` setting: with one, the scope's `root_path` is the app's to see.
    let direct = if config.root_path.is_empty() {
        app.host_service()
            .and_then(|service| service.downcast_ref::<DirectService>())
            .cloned()
    } else {
        None
    };
    let shared = Arc::new(Shared {
        app,
        direct,
        http: config.http(),
        config,
        state,
        scope_shutdown: Shutdown::new(),
        graceful: control.graceful.clone(),
        force_close: CancellationToken::new(),
        immediate: control.immediate.clone(),
        connections: TaskTracker::new(),
        app_tasks: TaskTracker::new(),
    });
    control
        .status
        .send_replace(Status::Listening(local.clone()));

    listener.run(local.clone(), shared.clone()).await;
    #[cfg(unix)]
    if let (ServerAddr::Unix(path), true) = (&local, bound_unix) {
        if let Err(e) = std::fs::remove_file(path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove the Unix socket file");
        }
    }

    drain(&shared, control).await;

    if let Some(lifespan) = lifespan {
        if control.immediate.is_cancelled() {
            tracing::warn!("forced stop: not waiting for lifespan shutdown");
        } else {
            shutdown_lifespan(lifespan, control).await;
        }
    }
    tracing::info!("server stopped");
    Ok(())
}

/// Lets connections and app tasks finish, up to the drain timeout; then closes what is left.
async fn drain(shared: &Shared, control: &Control) {
    shared.scope_shutdown.trigger();
    shared.connections.close();
    shared.app_tasks.close();
    tracing::info!(
        connections = shared.connections.len(),
        "shutting down: waiting for requests in flight"
    );
    let drained = async {
        shared.connections.wait().await;
        shared.app_tasks.wait().await;
    };
    let deadline = async {
        match shared.config.drain_timeout {
            Some(timeout) => tokio::time::sleep(timeout).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = drained => {
            tracing::info!("all requests finished");
            return;
        }
        () = deadline => {
            tracing::warn!(
                connections = shared.connections.len(),
                "drain timeout passed: closing the connections left"
            );
        }
        () = control.immediate.cancelled() => {
            tracing::warn!(
                connections = shared.connections.len(),
                "stopping now: closing the connections left"
            );
        }
    }
    shared.force_close.cancel();
    // Dropping a connection is immediate; app tasks still running learn of it through
    // `recv` (a disconnect) and `send` (an error), and are not waited for. WebSockets get
    // their close handshake (up to the close timeout), unless the stop is forced.
    tokio::select! {
        () = shared.connections.wait() => {}
        () = control.immediate.cancelled() => {}
    }
}

/// Binds what the builder asked for (a listener handed over is used as it is), and where it
/// listens.
#[cfg_attr(not(unix), allow(unused_variables))]
async fn bind(
    listen: Listen,
    config: &Config,
) -> std::io::Result<(Box<dyn AcceptLoop>, ServerAddr)> {
    let listener: Box<dyn AcceptLoop> = match listen {
        Listen::Addr(addr) => Box::new(tokio::net::TcpListener::bind(addr).await?),
        #[cfg(unix)]
        Listen::Unix(path) => Box::new(super::listener::bind_unix(&path, config.unix_socket_mode)?),
        Listen::Listener(listener) => listener,
    };
    let local = listener.local_addr()?;
    Ok((listener, local))
}

async fn shutdown_lifespan(lifespan: Lifespan, control: &Control) {
    tokio::select! {
        result = lifespan.shutdown() => match result {
            Ok(()) => tracing::info!("application shutdown complete"),
            Err(error) => tracing::error!(%error, "application shutdown failed"),
        },
        () = control.immediate.cancelled() => {
            tracing::warn!("forced stop during application shutdown");
        }
    }
}

/// Reloads the TLS certificate files on each SIGHUP.
#[cfg(unix)]
async fn reload_tls_on_hangup(control: Arc<Control>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => hangup,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGHUP: TLS reload by signal is off");
            return;
        }
    };
    while hangup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading the TLS certificate");
        // A failure is logged by the reload, and the certificate in use stays.
        let _ = control.reload_tls();
    }
}

/// Turns SIGINT and SIGTERM into shutdowns: the first one graceful, the next one immediate.
async fn watch_signals(control: Arc<Control>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (mut interrupt, mut terminate) = match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(i), Ok(t)) => (i, t),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "cannot watch SIGINT/SIGTERM");
                return;
            }
        };
        loop {
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            if control.graceful.is_cancelled() {
                tracing::warn!("{name} again: stopping now");
                control.shutdown_now();
                return;
            }
            tracing::info!("{name}: shutting down gracefully (send it again to stop now)");
            control.shutdown();
        }
    }
    #[cfg(not(unix))]
    {
        loop {
            if let Err(e) = tokio::signal::ctrl_c().await {
                tracing::warn!(error = %e, "cannot watch Ctrl-C");
                return;
            }
            if control.graceful.is_cancelled() {
                control.shutdown_now();
                return;
            }
            control.shutdown();
        }
    }
}

/// Aborts a helper task when the server is done with it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
