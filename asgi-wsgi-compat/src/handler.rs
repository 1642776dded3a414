//! The host's side of one WSGI call, as Python's `wsgiref.handlers.BaseHandler.run`: call the
//! app, send what it writes and yields under the rules of PEP 3333, close the body, and turn a
//! failure into a 500 or an aborted response.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use asgi_core::Error;
use http::StatusCode;

use crate::app::WsgiApp;
use crate::body::Body;
use crate::environ::Environ;
use crate::response::{ResponseState, SendFailure, host_start_response, lock};
use crate::to_asgi::ChannelOutput;

/// How a WSGI call ended, for the host.
#[derive(Debug)]
pub(crate) enum RunOutcome {
    /// The response went out complete.
    Complete,
    /// The app failed before its headers went out; a 500 went out instead and the error was
    /// logged.
    Replaced,
    /// The app failed after its headers went out: the response is incomplete, and the host
    /// must abort it.
    Aborted(Error),
    /// The client went away.
    Disconnected,
}

/// Runs `app` for one request, sending the response to `output`. `client_gone` tells
/// whether the host already knows the client left (a failure then is not the app's fault);
/// `body_timed_out` whether the host stopped waiting for a request body that did not come (a
/// failure before the headers is then the client's: `408`).
///
/// The app's code runs under `catch_unwind`: a panic is a failure like an `Err`.
pub(crate) fn run<A: WsgiApp + ?Sized>(
    app: &A,
    environ: Environ,
    output: ChannelOutput,
    client_gone: &dyn Fn() -> bool,
    body_timed_out: &dyn Fn() -> bool,
) -> RunOutcome {
    let head_request = environ.method() == "HEAD";
    let state = Arc::new(Mutex::new(ResponseState::new(output, head_request)));
    let result = respond(app, environ, &state);
    let outcome = settle(result, &state, client_gone, body_timed_out);
    // Drops the output: the host's reader sees the end, and a `write` the app kept fails.
    lock(&state).close();
    outcome
}

fn respond<A: WsgiApp + ?Sized>(
    app: &A,
    environ: Environ,
    state: &Arc<Mutex<ResponseState>>,
) -> Result<(), Error> {
    let start_response = host_start_response(state.clone());
    let mut body = match catch_unwind(AssertUnwindSafe(|| app.call(environ, start_response))) {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => return Err(Error::new(e)),
        Err(payload) => return Err(Error::from_panic(payload)),
    };
    let sent = catch_unwind(AssertUnwindSafe(|| send_body(&mut body, state)));
    body.close();
    match sent {
        Ok(result) => result?,
        Err(payload) => return Err(Error::from_panic(payload)),
    }
    lock(state).finish().map_err(failure_error)
}

fn send_body(body: &mut Body, state: &Mutex<ResponseState>) -> Result<(), Error> {
    // The state is locked only around sending: the app's iterator may call `write` or
    // `start_response` itself.
    while let Some(chunk) = body.next() {
        let chunk = chunk.map_err(Error::new)?;
        let last = body.is_end();
        let mut state = lock(state);
        state.send_data(chunk, false, last).map_err(failure_error)?;
        if state.is_complete() {
            // Everything the Content-Length declared went out: PEP 3333 stops iterating.
            break;
        }
    }
    Ok(())
}

fn failure_error(failure: SendFailure) -> Error {
    match failure {
        SendFailure::Rule(e) => Error::new(e),
        SendFailure::Output(_) => Error::disconnected(),
    }
}

fn settle(
    result: Result<(), Error>,
    state: &Mutex<ResponseState>,
    client_gone: &dyn Fn() -> bool,
    body_timed_out: &dyn Fn() -> bool,
) -> RunOutcome {
    let Err(error) = result else {
        return RunOutcome::Complete;
    };
    let mut state = lock(state);
    if state.output_failed() || client_gone() || error.is_disconnected() {
        tracing::debug!(%error, "the client disconnected during a WSGI call");
        return RunOutcome::Disconnected;
    }
    if state.headers_sent() {
        return RunOutcome::Aborted(error);
    }
    if body_timed_out() {
        return match state.send_error_response(StatusCode::REQUEST_TIMEOUT) {
            Ok(()) => {
                tracing::info!(%error, "the request body did not arrive in time; answered 408");
                RunOutcome::Replaced
            }
            Err(_) => RunOutcome::Disconnected,
        };
    }
    match state.send_error_response(StatusCode::INTERNAL_SERVER_ERROR) {
        Ok(()) => {
            tracing::error!(%error, "WSGI app failed before sending its headers; answered 500");
            RunOutcome::Replaced
        }
        Err(_) => RunOutcome::Disconnected,
    }
}
