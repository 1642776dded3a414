//! One call to set up logging the way the examples do: `RUST_LOG` filtering, lines to
//! standard output through a bounded non-blocking writer, colour only on a terminal.
//!
//! ```no_run
//! # async fn serve() {}
//! #[tokio::main]
//! async fn main() {
//!     // Keep the guard until the end of `main`: dropping it flushes the lines still queued
//!     // and reports how many were dropped.
//!     let _logging = asgi_http::logging::init();
//!     serve().await;
//! }
//! ```
//!
//! # Off the request path
//!
//! A request formats its line (the access log's, or any event's) and hands it to a queue of
//! at most [`LOG_QUEUE_LINES`] lines; a thread of its own writes them out. A slow terminal,
//! pipe or disk never makes a request wait: when the queue is full the line is dropped and
//! counted. The count is logged every [`DROPPED_LINES_REPORT_INTERVAL`] while lines are being
//! dropped, and once more when the guard is dropped (on standard error, since the writer is
//! then gone).
//!
//! Building the subscriber yourself instead is fine: everything here is tracing-subscriber's
//! `fmt` and tracing-appender's `non_blocking`.

use std::io::IsTerminal;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// How many formatted lines wait for the writer thread: 8,192. A burst of that many lines
/// (a few MiB at most) rides out a stall of the output; past it, lines are dropped and
/// counted rather than making requests wait or memory grow. Choose another bound with
/// [`init_with`].
pub const LOG_QUEUE_LINES: usize = 8_192;

/// How often the count of dropped lines is logged while lines are being dropped: every 10
/// seconds, often enough to notice and rarely enough not to add to the flood.
pub const DROPPED_LINES_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// The filter when `RUST_LOG` is unset or invalid: `info`, which includes the access log (as
/// uvicorn logs every request by default). `RUST_LOG=warn` or
/// `RUST_LOG=info,asgi_http::access=off` turns it off.
pub const DEFAULT_FILTER: &str = "info";

/// Keeps logging running; see [`init`]. Dropping it flushes the queued lines, stops the
/// writer thread and reports the lines dropped over the program's life, if any.
#[must_use = "logging stops when the guard is dropped"]
pub struct LogGuard {
    // Dropped first: the reporter stops before the writer goes.
    reporter: Option<(mpsc::SyncSender<()>, JoinHandle<()>)>,
    writer: Option<WorkerGuard>,
    dropped: ErrorCounter,
}

impl std::fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogGuard")
            .field("dropped_lines", &self.dropped.dropped_lines())
            .finish_non_exhaustive()
    }
}

impl LogGuard {
    /// How many lines were dropped so far because the queue was full.
    pub fn dropped_lines(&self) -> usize {
        self.dropped.dropped_lines()
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some((stop, reporter)) = self.reporter.take() {
            // The reporter is waiting on the channel; a closed or full channel wakes it too.
            let _ = stop.try_send(());
            drop(stop);
            let _ = reporter.join();
        }
        // Flushes what is queued.
        drop(self.writer.take());
        let dropped = self.dropped.dropped_lines();
        if dropped > 0 {
            eprintln!("logging: {dropped} log lines were dropped because the output was too slow");
        }
    }
}

/// Sets up the global `tracing` subscriber: the filter from `RUST_LOG` (default
/// [`DEFAULT_FILTER`]), tracing-subscriber's `fmt` lines on standard output, ANSI colour only
/// when standard output is a terminal, written through a bounded lossy queue of
/// [`LOG_QUEUE_LINES`] lines by a thread of its own (see the [module docs](self)).
///
/// If a global subscriber is already set, that one stays and the returned guard only
/// reports.
pub fn init() -> LogGuard {
    init_with(LOG_QUEUE_LINES)
}

/// Like [`init`], with a queue of `queue_lines` lines (at least 1).
pub fn init_with(queue_lines: usize) -> LogGuard {
    let terminal = std::io::stdout().is_terminal();
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(queue_lines.max(1))
        .thread_name("asgi-log-writer")
        .finish(std::io::stdout());
    let dropped = writer.error_counter();
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(terminal)
        .with_writer(writer)
        .try_init()
        .is_ok();
    let reporter = installed.then(|| spawn_reporter(dropped.clone())).flatten();
    LogGuard {
        reporter,
        writer: Some(guard),
        dropped,
    }
}

/// A thread that logs the count of dropped lines when it grew, every
/// [`DROPPED_LINES_REPORT_INTERVAL`], until the guard stops it.
fn spawn_reporter(dropped: ErrorCounter) -> Option<(mpsc::SyncSender<()>, JoinHandle<()>)> {
    // One slot: the stop signal.
    let (stop, stopped) = mpsc::sync_channel::<()>(1);
    let thread = std::thread::Builder::new()
        .name("asgi-log-report".into())
        .spawn(move || {
            let mut reported = 0;
            while let Err(mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(DROPPED_LINES_REPORT_INTERVAL)
            {
                let now = dropped.dropped_lines();
                if now > reported {
                    tracing::warn!(
                        dropped_lines = now - reported,
                        total_dropped_lines = now,
                        "log lines were dropped because the output was too slow"
                    );
                    reported = now;
                }
            }
        })
        .ok()?;
    Some((stop, thread))
}
