//! Tools for whatever runs an app (a server, a test client, a benchmark), behind the `host`
//! feature: apps and middleware never need them, so the interface itself carries no runtime.
//!
//! - [`channel`]: an [`EventSource`](crate::EventSource) and an
//!   [`EventSink`](crate::EventSink) over bounded tokio channels, for a host that moves events
//!   between tasks.
//! - [`lifespan`]: runs the lifespan protocol against an app: startup, frozen state, shutdown.
//! - [`Shutdown`]: fires the [`ShutdownSignal`](crate::ShutdownSignal)s a host put into its
//!   scopes when it starts draining.
//! - [`testing`]: run an app in-process with scripted or interactive events.
//!
//! Turn it on with `asgi-core = { version = "..", features = ["host"] }`. It brings in tokio's
//! `rt` and `macros` features (apps run in tasks of their own here).

pub mod channel;
pub mod lifespan;
mod shutdown;
pub mod testing;

pub use shutdown::Shutdown;

use tokio::task::JoinError;

use crate::error::Error;

/// The result of an app's task: a panic becomes an [`Error`] for which
/// [`is_panic`](Error::is_panic) is true, a cancelled task an error that says so.
pub(crate) fn app_result(joined: Result<Result<(), Error>, JoinError>) -> Result<(), Error> {
    joined.unwrap_or_else(|e| match e.try_into_panic() {
        Ok(payload) => Err(Error::from_panic(payload)),
        Err(e) => Err(Error::new(e)),
    })
}
