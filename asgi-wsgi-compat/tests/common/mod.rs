//! Code shared by the integration tests. Each test file uses a subset of it.
#![allow(dead_code)]

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use asgi_core::host::testing::TestSession;
use asgi_core::{HttpScope, SendEvent};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use tracing_subscriber::fmt::MakeWriter;

/// A safety net for awaits that must not hang a failing test; never a speed assertion.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

pub(crate) fn scope(method: Method, path: &str) -> HttpScope {
    HttpScope::new(method, path)
}

/// What a client saw of a response.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub(crate) status: Option<StatusCode>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
    /// The final `more_body: false` event arrived.
    pub(crate) complete: bool,
    pub(crate) body_events: usize,
}

pub(crate) fn seen(events: &[SendEvent]) -> Seen {
    let mut seen = Seen::default();
    for event in events {
        match event {
            SendEvent::HttpResponseStart {
                status, headers, ..
            } => {
                seen.status = Some(*status);
                seen.headers = headers.clone();
            }
            SendEvent::HttpResponseBody { body, more_body } => {
                seen.body.extend_from_slice(body);
                seen.body_events += 1;
                if !more_body {
                    seen.complete = true;
                }
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    seen
}

/// The next event of a session, failing the test instead of hanging.
pub(crate) async fn next(session: &mut TestSession) -> Option<SendEvent> {
    tokio::time::timeout(PATIENCE, session.recv())
        .await
        .expect("the app sent nothing in time")
}

/// The next body chunk of a session (skipping nothing: the next event must be a body).
pub(crate) async fn next_body(session: &mut TestSession) -> (Bytes, bool) {
    match next(session).await {
        Some(SendEvent::HttpResponseBody { body, more_body }) => (body, more_body),
        other => panic!("expected http.response.body, got {other:?}"),
    }
}

/// Log lines captured from `tracing`, for asserting what was logged.
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Captures what this thread logs (and the adapter's threads, which inherit it) until
    /// the guard is dropped.
    pub(crate) fn capture(&self) -> tracing::subscriber::DefaultGuard {
        // With a single registered subscriber, tracing recomputes call site interest and the
        // global level filter from whichever thread happens to register a new call site, and
        // another test's thread has none: our events would be filtered out. A second, idle
        // subscriber that lives for the whole run makes tracing consult every subscriber.
        static IDLE: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
        IDLE.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
        let subscriber = tracing_subscriber::fmt()
            .with_writer(self.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        // Other tests of this binary may have hit the same call sites while no subscriber
        // wanted them; make every call site ask again.
        tracing::callsite::rebuild_interest_cache();
        guard
    }
}

pub(crate) struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter(self.0.clone())
    }
}

/// A gate a blocking app waits at until the test opens it.
#[derive(Clone, Default)]
pub(crate) struct Gate(Arc<(Mutex<bool>, std::sync::Condvar)>);

impl Gate {
    pub(crate) fn open(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }

    /// Waits until the gate is open (from a blocking thread).
    pub(crate) fn wait(&self) {
        let mut open = self.0.0.lock().unwrap();
        while !*open {
            open = self.0.1.wait(open).unwrap();
        }
    }
}

/// Waits until `condition` holds, failing the test after `PATIENCE` instead of hanging.
pub(crate) async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let wait = async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    tokio::time::timeout(PATIENCE, wait)
        .await
        .unwrap_or_else(|_| panic!("never happened: {what}"));
}
