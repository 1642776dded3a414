//! One lifespan made of several: how a [`Mount`](crate::mount::Mount) or a
//! [`Router`](crate::router::Router) runs the lifespans of the apps it contains.
//!
//! Each part (the container's own lifespan app, then its sub-apps) is started in order, in a
//! task of its own and with a lifespan state of its own (see
//! [`Lifespan::startup_with`]); what each one stored is merged into the state of the
//! container's scope, so a type stored by two parts is found at startup instead of one value
//! silently replacing the other. Shutdown runs in reverse order. A part that does not speak
//! the lifespan protocol (it returns, or fails, on the lifespan scope) is left out, as a server
//! goes on without lifespan for such an app.

use std::sync::Arc;

use asgi_core::host::lifespan::{Lifespan, Startup};
use asgi_core::scope::LifespanScope;
use asgi_core::{App, Error, LifespanState, ReceiveEvent, Receiver, Scope, SendEvent, Sender};

/// An app whose lifespan is part of its container's.
pub(crate) struct Part {
    /// How messages name it (``mount `/api` ``, `the fallback`); `None` for the container's
    /// own lifespan app, whose messages pass through unchanged, as they would if it were the
    /// top-level app.
    name: Option<String>,
    app: Arc<dyn App>,
}

impl Part {
    /// The container's own lifespan app (`Router::lifespan`, `Mount::lifespan`).
    pub(crate) fn own(app: &Arc<dyn App>) -> Self {
        Part {
            name: None,
            app: app.clone(),
        }
    }

    /// A sub-app, named for messages.
    pub(crate) fn named(name: String, app: &Arc<dyn App>) -> Self {
        Part {
            name: Some(name),
            app: app.clone(),
        }
    }

    fn label(&self) -> &str {
        self.name.as_deref().unwrap_or("the lifespan app")
    }

    /// `message` as the container reports it: prefixed with the part's name, so that the
    /// server's "startup failed" says which sub-app failed.
    fn message(&self, message: &str) -> String {
        match &self.name {
            Some(name) => format!("{name}: {message}"),
            None => message.to_owned(),
        }
    }
}

/// A part whose startup completed, waiting for its shutdown.
struct Started {
    part: Part,
    lifespan: Lifespan,
    /// The state it filled, kept for its type names.
    state: LifespanState,
}

/// Answers the lifespan scope for a container made of `parts`: `lifespan.startup` starts every
/// part in order and answers `startup.complete`, or `startup.failed` with the failing part's
/// message once the parts already started are shut down again; `lifespan.shutdown` shuts the
/// parts down in reverse order and answers `shutdown.complete`, or `shutdown.failed` with the
/// messages of the parts that failed. With no parts, it answers both at once; with only the
/// container's own lifespan app, that app answers.
pub(crate) async fn run(
    scope: LifespanScope,
    mut receive: Receiver,
    mut send: Sender,
    mut parts: Vec<Part>,
) -> Result<(), Error> {
    if let [Part { name: None, .. }] = parts.as_slice() {
        // Only the container's own lifespan app: it answers the lifespan scope as if it were
        // the top-level app, with no task or merge in between.
        let own = parts.remove(0);
        return own.app.call(Scope::Lifespan(scope), receive, send).await;
    }
    match receive.recv().await {
        ReceiveEvent::LifespanStartup => {}
        // Shut down before any startup: nothing to stop.
        ReceiveEvent::LifespanShutdown => {
            return Ok(send.send(SendEvent::LifespanShutdownComplete).await?);
        }
        other => return Err(unexpected(&other)),
    }
    let started = match start(&scope, parts).await {
        Ok(started) => started,
        Err(message) => {
            send.send(SendEvent::LifespanStartupFailed { message })
                .await?;
            return Ok(());
        }
    };
    if let Err(e) = send.send(SendEvent::LifespanStartupComplete).await {
        // The host is gone: the parts must not outlive it unannounced.
        stop(started).await;
        return Err(e.into());
    }
    // A host that goes away without a shutdown makes `recv` return `lifespan.shutdown` too,
    // so the parts are shut down on every path.
    let event = receive.recv().await;
    let failures = stop(started).await;
    if !matches!(event, ReceiveEvent::LifespanShutdown) {
        return Err(unexpected(&event));
    }
    let answer = if failures.is_empty() {
        SendEvent::LifespanShutdownComplete
    } else {
        SendEvent::LifespanShutdownFailed {
            message: failures.join("; "),
        }
    };
    Ok(send.send(answer).await?)
}

/// Starts `parts` in order and merges their states into the scope's. On a failure (a part's
/// `startup.failed`, or a type stored twice), shuts down the parts already started, in
/// reverse order, and returns the message to answer `startup.failed` with.
async fn start(scope: &LifespanScope, parts: Vec<Part>) -> Result<Vec<Started>, String> {
    let mut started: Vec<Started> = Vec::with_capacity(parts.len());
    for part in parts {
        let part_state = LifespanState::new();
        let mut part_scope = scope.clone();
        part_scope.state = part_state.clone();
        match Lifespan::startup_with(part.app.clone(), part_scope).await {
            Startup::Complete(lifespan) => {
                let conflict = merge(&scope.state, &part_state, &part, &started);
                started.push(Started {
                    part,
                    lifespan,
                    state: part_state,
                });
                if let Err(message) = conflict {
                    stop(started).await;
                    return Err(message);
                }
            }
            Startup::Failed { message } => {
                let message = part.message(&message);
                stop(started).await;
                return Err(message);
            }
            Startup::Unsupported { error } => {
                tracing::debug!(
                    part = part.label(),
                    "does not support the lifespan protocol: going on without its lifespan"
                );
                if let Some(error) = error {
                    tracing::debug!(part = part.label(), %error, "its answer to the lifespan scope");
                }
            }
            other => {
                tracing::debug!(
                    part = part.label(),
                    ?other,
                    "unknown lifespan outcome: going on without its lifespan"
                );
            }
        }
    }
    Ok(started)
}

/// Merges the state `part` filled into `state`; on a type that is already there, the message
/// names the type and, when an earlier part stored it, that part too.
fn merge(
    state: &LifespanState,
    own: &LifespanState,
    part: &Part,
    started: &[Started],
) -> Result<(), String> {
    let Err(error) = state.merge(own) else {
        return Ok(());
    };
    // `LifespanState::merge` checks by type; the names say which part stored the type first.
    let types = own.type_names();
    let first = started.iter().find_map(|earlier| {
        let stored = earlier.state.type_names();
        types
            .iter()
            .find(|name| stored.contains(name))
            .map(|name| (*name, earlier.part.label()))
    });
    Err(match first {
        Some((name, earlier)) => format!(
            "`{name}` is stored in the lifespan state by both {earlier} and {}",
            part.label()
        ),
        None => part.message(&error.to_string()),
    })
}

/// Shuts `started` down in reverse order, each one even when an earlier one failed, and
/// returns the failures' messages.
async fn stop(started: Vec<Started>) -> Vec<String> {
    let mut failures = Vec::new();
    for Started { part, lifespan, .. } in started.into_iter().rev() {
        if let Err(error) = lifespan.shutdown().await {
            tracing::warn!(part = part.label(), %error, "lifespan shutdown failed");
            // `Lifespan::shutdown` words a child's `lifespan.shutdown.failed` as "lifespan
            // shutdown failed: {message}"; the container's own answer says that once, so
            // only the child's message goes in.
            let error = error.to_string();
            let message = error
                .strip_prefix("lifespan shutdown failed: ")
                .unwrap_or(&error);
            failures.push(part.message(message));
        }
    }
    failures
}

fn unexpected(event: &ReceiveEvent) -> Error {
    Error::msg(format!(
        "unexpected `{}` on the lifespan scope",
        event.type_name()
    ))
}
