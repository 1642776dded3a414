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
//! A request formats its line (the access log's, or any event's) and appends it to a queue of
//! at most [`LOG_QUEUE_LINES`] lines; a thread of its own writes them out. A slow terminal,
//! pipe or disk never makes a request wait: when the queue is full the line is dropped and
//! counted. The count is logged every [`DROPPED_LINES_REPORT_INTERVAL`] while lines are being
//! dropped, and once more when the guard is dropped (on standard error, since the writer is
//! then gone).
//!
//! The queue is one buffer under a lock held only to copy a line in: nothing is allocated
//! and no thread is woken per line. The writer thread takes all the queued lines at once,
//! writes them in one call, and waits [`LOG_FLUSH_INTERVAL`] for the next batch to gather:
//! under load, many lines to a system call, and no wake-up on the request path. With nothing
//! to write it sleeps until a line comes, so a quiet server's lines go out at once.
//!
//! # The access log's lines
//!
//! The access log writes one line per request, so its cost is per request. Its lines are
//! formatted by [`LineFormat`]: the line tracing-subscriber's default format would write,
//! written without its general machinery (the timestamp, and the message copied character by
//! character through its escaping writer, cost more than the rest of the request). Every
//! other event goes through tracing-subscriber's default format.
//!
//! Building the subscriber yourself instead is fine: everything here is tracing-subscriber's
//! `fmt` with a writer of its own (tracing-appender's `non_blocking` is the usual one), and
//! with the default format the access log's lines read the same.

use std::fmt;
use std::io::IsTerminal;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::server::ACCESS_LOG_TARGET;

mod queue;

/// How many formatted lines wait for the writer thread: 8,192. A burst of that many lines
/// (a few MiB at most) rides out a stall of the output; past it, lines are dropped and
/// counted rather than making requests wait or memory grow. Choose another bound with
/// [`init_with`].
pub const LOG_QUEUE_LINES: usize = 8_192;

/// How long the writer thread waits after writing a batch of lines before it takes the next:
/// 10 ms. Lines come out at most this much later under load (a line that finds the thread
/// idle wakes it at once), and a server answering tens of thousands of requests a second
/// writes a few hundred lines per system call, where standard output alone writes at every
/// newline. A tuning constant, not a setting: change it here.
pub const LOG_FLUSH_INTERVAL: Duration = Duration::from_millis(10);

/// The most room the writer thread keeps for its next batch after writing one: 64 KiB. A burst
/// of lines grows the batch as far as it needs (the queue's line count bounds it); past this,
/// the room is given back once the burst is written. A tuning constant, not a setting: change
/// it here.
pub const LOG_BATCH_KEPT_BYTES: usize = 64 * 1024;

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
    writer: Option<queue::WriterGuard>,
}

impl std::fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogGuard")
            .field("dropped_lines", &self.dropped_lines())
            .finish_non_exhaustive()
    }
}

impl LogGuard {
    /// How many lines were dropped so far because the queue was full.
    pub fn dropped_lines(&self) -> usize {
        self.writer
            .as_ref()
            .map_or(0, |writer| writer.queue().dropped_lines())
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
        // Writes what is queued.
        if let Some(writer) = &mut self.writer {
            writer.stop();
        }
        let dropped = self.dropped_lines();
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
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(terminal)
        .event_format(LineFormat::default());
    let Ok((writer, guard)) = queue::start(std::io::stdout(), queue_lines, "asgi-log-writer")
    else {
        // No thread for the writer: lines are written where they are logged.
        let _ = builder.with_writer(std::io::stdout).try_init();
        return LogGuard {
            reporter: None,
            writer: None,
        };
    };
    let installed = builder.with_writer(writer).try_init().is_ok();
    let reporter = installed.then(|| spawn_reporter(guard.queue())).flatten();
    LogGuard {
        reporter,
        writer: Some(guard),
    }
}

/// A thread that logs the count of dropped lines when it grew, every
/// [`DROPPED_LINES_REPORT_INTERVAL`], until the guard stops it.
fn spawn_reporter(dropped: Arc<queue::Queue>) -> Option<(mpsc::SyncSender<()>, JoinHandle<()>)> {
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

/// The event format of [`init`]: tracing-subscriber's default ([`Format`]), with a fast path
/// for the access log's lines (target [`ACCESS_LOG_TARGET`]).
///
/// An access log event whose only field is its message, outside any span, on a writer
/// without colour, is written here as the default format writes it
/// (`2026-01-02T03:04:05.678901Z  INFO asgi_http::access: <line>`), with no formatting
/// machinery; control characters in the message are escaped as the default format escapes
/// them. Every other event goes to the default format.
#[derive(Debug, Default)]
pub struct LineFormat {
    full: Format,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        let fast = metadata.target() == ACCESS_LOG_TARGET
            && metadata.fields().len() == 1
            && metadata.fields().field("message").is_some()
            && !writer.has_ansi_escapes()
            && ctx.lookup_current().is_none();
        if !fast {
            return self.full.format_event(ctx, writer, event);
        }
        let level = match *metadata.level() {
            Level::TRACE => " TRACE ",
            Level::DEBUG => " DEBUG ",
            Level::INFO => "  INFO ",
            Level::WARN => "  WARN ",
            Level::ERROR => " ERROR ",
        };
        // The timestamp, the level and the target go to the writer as one piece.
        write_timestamp(
            &mut writer,
            SystemTime::now(),
            &[level, metadata.target(), ": "],
        )?;
        let mut message = MessageWriter {
            writer: &mut writer,
            result: Ok(()),
        };
        event.record(&mut message);
        message.result?;
        writer.write_char('\n')
    }
}

/// Writes an event's message, its control characters escaped.
struct MessageWriter<'a, 'w> {
    writer: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Visit for MessageWriter<'_, '_> {
    fn record_str(&mut self, _field: &Field, value: &str) {
        if self.result.is_ok() {
            self.result = write_escaped(self.writer, value);
        }
    }

    fn record_debug(&mut self, _field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_ok() {
            // A message given as format arguments (not the access log's own form): its
            // `Debug` is its text.
            self.result = write_escaped(self.writer, &format!("{value:?}"));
        }
    }
}

/// Writes `text`, each ANSI or C1 control character escaped as tracing-subscriber's format
/// escapes it, so that a log line cannot drive the terminal it is read on.
fn write_escaped(writer: &mut Writer<'_>, text: &str) -> fmt::Result {
    let needs_escape = |c: char| {
        matches!(
            c,
            '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\u{80}'..='\u{9f}'
        )
    };
    if !may_need_escape(text.as_bytes()) {
        return writer.write_str(text);
    }
    for c in text.chars() {
        match c {
            '\x1b' => writer.write_str("\\x1b")?,
            '\x07' => writer.write_str("\\x07")?,
            '\x08' => writer.write_str("\\x08")?,
            '\x0c' => writer.write_str("\\x0c")?,
            '\x7f' => writer.write_str("\\x7f")?,
            c if needs_escape(c) => write!(writer, "\\u{{{:x}}}", u32::from(c))?,
            c => writer.write_char(c)?,
        }
    }
    Ok(())
}

/// False when `bytes` (UTF-8) hold none of the characters [`write_escaped`] escapes: none of
/// its ASCII ones, and no `0xC2`, the lead byte of every character from `U+0080` to
/// `U+009F`. Checked a block at a time with no early exit, which the compiler turns into
/// vector compares: an access log line is checked in a few dozen instructions.
fn may_need_escape(bytes: &[u8]) -> bool {
    bytes.chunks(16).any(|block| {
        block.iter().fold(false, |found, &b| {
            found | matches!(b, 0x07 | 0x08 | 0x0c | 0x1b | 0x7f | 0xc2)
        })
    })
}

/// Writes `now` as tracing-subscriber's default timer does: RFC 3339 in UTC, with
/// microseconds (`2026-01-02T03:04:05.678901Z`), followed by the texts of `after`, all in one
/// write.
fn write_timestamp(writer: &mut Writer<'_>, now: SystemTime, after: &[&str]) -> fmt::Result {
    let Ok(since_epoch) = now.duration_since(SystemTime::UNIX_EPOCH) else {
        writer.write_str("<unknown time>")?;
        return after.iter().try_for_each(|text| writer.write_str(text));
    };
    let seconds = since_epoch.as_secs();
    let mut number = itoa::Buffer::new();
    let micros = number.format(since_epoch.subsec_micros());
    HEAD.with(|head| {
        let mut head = head.borrow_mut();
        let (second, text) = &mut *head;
        // The date and time to the second, written once a second by each thread that logs.
        if *second != Some(seconds) {
            text.clear();
            text.push_str(&second_text(seconds));
            *second = Some(seconds);
        }
        text.truncate(SECOND_TEXT_LEN);
        // `.` and the microseconds, zero-padded to six digits, then `Z`.
        text.push_str(&".000000"[..7 - micros.len().min(6)]);
        text.push_str(micros);
        text.push('Z');
        for piece in after {
            text.push_str(piece);
        }
        writer.write_str(text)
    })
}

/// The length of [`second_text`]'s text.
const SECOND_TEXT_LEN: usize = "2026-01-02T03:04:05".len();

thread_local! {
    /// The second [`write_timestamp`] last wrote on this thread, and the text it wrote: that
    /// second's date and time, then the rest of the line's head (bounded by a target's
    /// length).
    static HEAD: std::cell::RefCell<(Option<u64>, String)> =
        const { std::cell::RefCell::new((None, String::new())) };
}

/// `seconds` since the epoch as `2026-01-02T03:04:05`.
fn second_text(seconds: u64) -> String {
    let (year, month, day) = civil_date(seconds / 86_400);
    let of_day = seconds % 86_400;
    let mut text = [0u8; 19];
    put_digits(&mut text[0..4], year);
    text[4] = b'-';
    put_digits(&mut text[5..7], month);
    text[7] = b'-';
    put_digits(&mut text[8..10], day);
    text[10] = b'T';
    put_digits(&mut text[11..13], of_day / 3600);
    text[13] = b':';
    put_digits(&mut text[14..16], of_day % 3600 / 60);
    text[16] = b':';
    put_digits(&mut text[17..19], of_day % 60);
    // Only ASCII digits and separators were written.
    String::from_utf8_lossy(&text).into_owned()
}

/// Writes the last `digits.len()` decimal digits of `n` into `digits`, zero-padded.
fn put_digits(digits: &mut [u8], mut n: u64) {
    for digit in digits.iter_mut().rev() {
        // Below 10: the cast keeps every bit.
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// The (year, month, day) of the `days`-th day since 1970-01-01, in the proleptic Gregorian
/// calendar (the days-to-civil algorithm of Howard Hinnant's date library).
fn civil_date(days: u64) -> (u64, u64, u64) {
    // Shifted to start on 0000-03-01, so that the leap day ends each 400-year era.
    let days = days + 719_468;
    let era = days / 146_097;
    let day_of_era = days % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_check_finds_every_character_that_is_escaped() {
        let escaped = |c: char| {
            matches!(
                c,
                '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\u{80}'..='\u{9f}'
            )
        };
        let long = "GET /a/fairly/long/path?with=query HTTP/1.1\" 200 13B 0.1ms";
        for c in [
            '\x1b', '\x07', '\x08', '\x0c', '\x7f', '\u{80}', '\u{85}', '\u{9f}',
        ] {
            for at in [0, 5, 16, 17, long.len()] {
                let mut text = long.to_owned();
                text.insert(at, c);
                assert!(may_need_escape(text.as_bytes()), "{c:?} at {at}");
            }
        }
        // Text without those characters takes the fast path, except for `U+00A0` to
        // `U+00BF` (the same lead byte), which the character check then writes as they are.
        for text in [long, "", "caf\u{e9} \u{2028} \u{1f600} tab\there\n"] {
            assert!(!text.chars().any(escaped));
            assert!(!may_need_escape(text.as_bytes()), "{text:?}");
        }
        assert!(may_need_escape("\u{a0}".as_bytes()));
    }

    fn timestamp(now: SystemTime) -> String {
        let mut text = String::new();
        write_timestamp(&mut Writer::new(&mut text), now, &[]).unwrap();
        text
    }

    #[test]
    fn timestamps_read_as_rfc_3339_in_utc() {
        let at = |seconds: u64, micros: u64| {
            SystemTime::UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_micros(micros)
        };
        assert_eq!(timestamp(at(0, 0)), "1970-01-01T00:00:00.000000Z");
        // The same second again, from the thread's cached text.
        assert_eq!(timestamp(at(0, 120)), "1970-01-01T00:00:00.000120Z");
        assert_eq!(timestamp(at(951_782_400, 7)), "2000-02-29T00:00:00.000007Z");
        assert_eq!(
            timestamp(at(1_709_251_199, 999_999)),
            "2024-02-29T23:59:59.999999Z"
        );
        assert_eq!(
            timestamp(at(1_798_686_245, 678_901)),
            "2026-12-31T03:04:05.678901Z"
        );
        assert_eq!(
            timestamp(at(4_102_444_800, 0)),
            "2100-01-01T00:00:00.000000Z"
        );
    }

    /// What a subscriber writes, kept for the test to read.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// The lines `emit` logs, through the default format or `LineFormat`, each without its
    /// timestamp (checked to be one).
    fn lines(fast: bool, emit: impl Fn()) -> Vec<String> {
        let out = Captured::default();
        let builder = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(out.clone());
        if fast {
            let subscriber = builder.event_format(LineFormat::default()).finish();
            tracing::subscriber::with_default(subscriber, &emit);
        } else {
            tracing::subscriber::with_default(builder.finish(), &emit);
        }
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| {
                let (time, rest) = line.split_at(27);
                assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{line}");
                rest.to_owned()
            })
            .collect()
    }

    #[test]
    fn access_log_lines_read_as_the_default_format_writes_them() {
        let emit = || {
            let line = "127.0.0.1:5000 - \"GET /a?b=c HTTP/1.1\" 200 13B 0.1ms";
            tracing::info!(target: ACCESS_LOG_TARGET, message = line);
            tracing::warn!(target: ACCESS_LOG_TARGET, message = "odd \x1b[31m bytes");
            tracing::info!(target: ACCESS_LOG_TARGET, "as {} arguments", "format");
            tracing::info!(target: ACCESS_LOG_TARGET, status = 200, "with a field");
            tracing::info!(status = 200, "another target");
        };
        let fast = lines(true, emit);
        assert_eq!(fast, lines(false, emit));
        assert_eq!(
            fast[0],
            "  INFO asgi_http::access: 127.0.0.1:5000 - \"GET /a?b=c HTTP/1.1\" 200 13B 0.1ms"
        );
        assert_eq!(fast.len(), 5);
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut text = String::new();
        write_escaped(&mut Writer::new(&mut text), "a\x1b[31mb\u{85}c").unwrap();
        assert_eq!(text, "a\\x1b[31mb\\u{85}c");
        let mut plain = String::new();
        write_escaped(&mut Writer::new(&mut plain), "GET / HTTP/1.1").unwrap();
        assert_eq!(plain, "GET / HTTP/1.1");
    }
}
