//! The environ's streams: `wsgi.input` ([`Input`]) and `wsgi.errors` ([`Errors`]).

use std::fmt;
use std::io::{self, BufRead, Cursor, Read};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures_util::task::AtomicWaker;
use tokio::sync::mpsc;

use crate::to_asgi::INPUT_CHANNEL_CAPACITY;

/// The longest line [`Errors`] buffers: a longer one is logged in pieces of this size, so
/// that an app writing without newlines cannot grow memory. 8 KiB holds any sensible log
/// line, traceback lines included.
const MAX_ERRORS_LINE: usize = 8 * 1024;

/// One message from the host's body pump to [`Input`].
#[derive(Debug)]
pub(crate) enum BodyMessage {
    /// Request body data.
    Data(Bytes),
    /// The body is complete.
    End,
    /// No body data came for the read timeout: the host stopped waiting.
    TimedOut(Duration),
}

/// What the connection's task and the app's thread of one call tell each other, besides
/// the channels: one allocation for the three.
#[derive(Debug, Default)]
pub(crate) struct CallSignals {
    /// The client is gone (its disconnect arrived, or a response part could not be sent).
    pub(crate) gone: AtomicBool,
    /// The client sent no request body data for the read timeout.
    pub(crate) timed_out: AtomicBool,
    /// Set, and the host's body pump woken, when the app first needs body data, so that the
    /// host pulls the body from the connection only for an app that reads it.
    first_read: AtomicBool,
    first_read_waker: AtomicWaker,
    /// The body channel's sending end, made by the app's thread on its first read (an app
    /// that never reads its body costs no channel) and taken by the host's body pump.
    body: Mutex<BodySlot>,
}

#[derive(Debug, Default)]
struct BodySlot {
    tx: Option<mpsc::Sender<BodyMessage>>,
    /// The host stopped pumping the body (the call is over or was dropped): a channel made
    /// now would never be fed, so none is kept.
    closed: bool,
}

impl CallSignals {
    /// Waits until the app first needs body data.
    pub(crate) async fn first_read(&self) {
        std::future::poll_fn(|cx| {
            if self.first_read.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            self.first_read_waker.register(cx.waker());
            if self.first_read.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    /// The body channel's sending end, once the app asked for its body.
    pub(crate) fn take_body_sender(&self) -> Option<mpsc::Sender<BodyMessage>> {
        lock_slot(&self.body).tx.take()
    }

    /// Ends the hand-over: a read waiting for body data, or one to come, sees the
    /// channel closed (the client is gone) instead of waiting forever.
    pub(crate) fn close_body(&self) {
        let mut slot = lock_slot(&self.body);
        slot.closed = true;
        slot.tx = None;
    }

    /// A new body channel, its sending end left for the host's pump (unless the host
    /// stopped pumping).
    fn open_body(&self) -> mpsc::Receiver<BodyMessage> {
        let (tx, rx) = mpsc::channel(INPUT_CHANNEL_CAPACITY);
        let mut slot = lock_slot(&self.body);
        if !slot.closed {
            slot.tx = Some(tx);
        }
        rx
    }
}

fn lock_slot(slot: &Mutex<BodySlot>) -> MutexGuard<'_, BodySlot> {
    // Nothing panics while it is held.
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `wsgi.input`: the request body as a blocking [`Read`] + [`BufRead`] stream.
///
/// Under [`WsgiToAsgi`](crate::WsgiToAsgi) it streams from the connection through a bounded
/// channel: a read blocks until the client's next chunk arrives, and the body is never held
/// whole in memory. It reports end of file at `CONTENT_LENGTH` (bytes past it are never
/// returned), or, for a body without a length (chunked), when the client's body ends.
///
/// # Errors
///
/// - When the client disconnected before its body was complete, reads return the chunks that
///   had already arrived (at most a few, the channel is small) and then fail, on every later
///   call too, with [`io::ErrorKind::ConnectionAborted`]: stop and return; the response
///   cannot reach the client.
/// - A body that ends before its `CONTENT_LENGTH` fails with
///   [`io::ErrorKind::UnexpectedEof`].
/// - When the client sent no body data for the read timeout
///   ([`WsgiToAsgi::read_timeout`](crate::WsgiToAsgi::read_timeout)), reads fail, on every
///   later call too, with [`io::ErrorKind::TimedOut`]; if the app then fails before its
///   headers went out, the client gets `408 Request Timeout`.
///
/// # Panics
///
/// Reading the host's stream blocks the thread, so it panics when called from inside an
/// async task (it runs on the blocking thread the host gave the app; keep it there).
///
/// # Example
///
/// ```
/// use std::io::{BufRead, Read};
/// use asgi_wsgi_compat::Input;
///
/// let mut input = Input::from_bytes("name=ferris\nlang=rust\n");
/// let mut first = String::new();
/// input.read_line(&mut first).unwrap();
/// assert_eq!(first, "name=ferris\n");
/// let mut rest = String::new();
/// input.read_to_string(&mut rest).unwrap();
/// assert_eq!(rest, "lang=rust\n");
/// ```
pub struct Input {
    inner: InputInner,
}

enum InputInner {
    Reader(Box<dyn BufRead + Send>),
    Channel(ChannelInput),
}

impl Input {
    /// A stream over any blocking reader; for hosts of other kinds and for tests.
    pub fn new(reader: impl BufRead + Send + 'static) -> Self {
        Input {
            inner: InputInner::Reader(Box::new(reader)),
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        Input::new(io::empty())
    }

    /// A body held in memory.
    pub fn from_bytes(body: impl Into<Bytes>) -> Self {
        Input::new(Cursor::new(body.into()))
    }

    /// The host's stream: chunks from a channel that the first read that has to wait
    /// opens ([`CallSignals`]), end of file at `content_length` if known.
    pub(crate) fn channel(content_length: Option<u64>, signals: Arc<CallSignals>) -> Self {
        Input {
            inner: InputInner::Channel(ChannelInput {
                rx: None,
                buf: Bytes::new(),
                remaining: content_length,
                state: ChannelState::Open,
                first_read: Some(signals),
            }),
        }
    }

    /// The next chunk of the body as it arrived, without copying it; empty at end of file.
    /// Use it to pass the body on (`write(input.read_chunk()?)`) with no copy.
    ///
    /// # Errors
    ///
    /// As for [`Read`]; see the type's docs.
    pub fn read_chunk(&mut self) -> io::Result<Bytes> {
        match &mut self.inner {
            InputInner::Channel(c) => c.read_chunk(),
            InputInner::Reader(r) => {
                let chunk = Bytes::copy_from_slice(r.fill_buf()?);
                r.consume(chunk.len());
                Ok(chunk)
            }
        }
    }
}

impl Read for Input {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Input {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match &mut self.inner {
            InputInner::Channel(c) => c.fill_buf(),
            InputInner::Reader(r) => r.fill_buf(),
        }
    }

    fn consume(&mut self, amount: usize) {
        match &mut self.inner {
            InputInner::Channel(c) => c.consume(amount),
            InputInner::Reader(r) => r.consume(amount),
        }
    }
}

impl Default for Input {
    fn default() -> Self {
        Input::empty()
    }
}

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Input");
        if let InputInner::Channel(c) = &self.inner {
            d.field("remaining", &c.remaining).field("state", &c.state);
        }
        d.finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChannelState {
    Open,
    /// The client's body ended.
    Ended,
    /// The pump went away before the end: the client disconnected.
    Aborted,
    /// The client sent no body data for this long.
    TimedOut(Duration),
}

struct ChannelInput {
    /// `None` until the first read that has to wait.
    rx: Option<mpsc::Receiver<BodyMessage>>,
    /// The unread rest of the current chunk.
    buf: Bytes,
    /// Bytes left before `CONTENT_LENGTH`, if it is known.
    remaining: Option<u64>,
    state: ChannelState,
    /// Told (then dropped) on the first wait for data.
    first_read: Option<Arc<CallSignals>>,
}

impl ChannelInput {
    /// Makes `buf` non-empty unless the body is at its end.
    fn fill(&mut self) -> io::Result<()> {
        while self.buf.is_empty() {
            if self.remaining == Some(0) {
                return Ok(());
            }
            match self.state {
                ChannelState::Aborted => return Err(aborted()),
                ChannelState::TimedOut(timeout) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the client sent no request body data for {timeout:?}"),
                    ));
                }
                ChannelState::Ended => {
                    return match self.remaining {
                        Some(left) if left > 0 => Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!(
                                "the request body ended {left} bytes before its Content-Length"
                            ),
                        )),
                        _ => Ok(()),
                    };
                }
                ChannelState::Open => {}
            }
            let rx = match &mut self.rx {
                Some(rx) => rx,
                None => {
                    let rx = match self.first_read.take() {
                        Some(signals) => {
                            let rx = signals.open_body();
                            signals.first_read.store(true, Ordering::Release);
                            signals.first_read_waker.wake();
                            rx
                        }
                        // Unreachable: the signals go only when the channel came.
                        None => mpsc::channel(1).1,
                    };
                    self.rx.insert(rx)
                }
            };
            match rx.blocking_recv() {
                Some(BodyMessage::Data(data)) => self.buf = data,
                Some(BodyMessage::End) => self.state = ChannelState::Ended,
                Some(BodyMessage::TimedOut(timeout)) => {
                    self.state = ChannelState::TimedOut(timeout);
                }
                None => self.state = ChannelState::Aborted,
            }
        }
        Ok(())
    }

    fn limit(&self) -> usize {
        match self.remaining {
            Some(left) => usize::try_from(left).map_or(self.buf.len(), |l| l.min(self.buf.len())),
            None => self.buf.len(),
        }
    }

    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.fill()?;
        let n = self.limit();
        Ok(&self.buf[..n])
    }

    fn consume(&mut self, amount: usize) {
        let amount = amount.min(self.limit());
        self.buf.advance(amount);
        if let Some(left) = &mut self.remaining {
            *left -= amount as u64;
        }
    }

    fn read_chunk(&mut self) -> io::Result<Bytes> {
        self.fill()?;
        let n = self.limit();
        let chunk = self.buf.split_to(n);
        if let Some(left) = &mut self.remaining {
            *left -= n as u64;
        }
        Ok(chunk)
    }
}

fn aborted() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the client disconnected before the request body was complete",
    )
}

/// `wsgi.errors`: a [`Write`](io::Write) stream into [`tracing`].
///
/// Each line becomes one `WARN` event with target `wsgi.errors`, inside the span of the
/// request (the host carries it into the blocking thread). Output is line-buffered: a partial
/// line waits for its newline, a [`flush`](io::Write::flush), or the drop of the stream;
/// a line longer than 8 KiB is logged in pieces of 8 KiB, so that an app writing without
/// newlines cannot grow memory. Bytes that are not UTF-8 are shown as U+FFFD.
///
/// # Example
///
/// ```
/// use std::io::Write;
/// use asgi_wsgi_compat::Errors;
///
/// let mut errors = Errors::new();
/// writeln!(errors, "cache miss for {}", "/home").unwrap();
/// ```
pub struct Errors {
    line: Vec<u8>,
}

impl Errors {
    /// A stream into `tracing`.
    pub fn new() -> Self {
        Errors { line: Vec::new() }
    }

    fn emit(&mut self) {
        let text = String::from_utf8_lossy(&self.line);
        tracing::warn!(target: "wsgi.errors", "{}", text.trim_end_matches(['\n', '\r']));
        self.line.clear();
    }
}

impl Default for Errors {
    fn default() -> Self {
        Errors::new()
    }
}

impl io::Write for Errors {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            let room = MAX_ERRORS_LINE - self.line.len();
            let take = match rest.iter().position(|&b| b == b'\n') {
                Some(i) if i < room => i + 1,
                _ => rest.len().min(room),
            };
            self.line.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.line.ends_with(b"\n") || self.line.len() >= MAX_ERRORS_LINE {
                self.emit();
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.line.is_empty() {
            self.emit();
        }
        Ok(())
    }
}

impl Drop for Errors {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.emit();
        }
    }
}

impl fmt::Debug for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Errors")
            .field("buffered", &self.line.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel_input(
        messages: Vec<BodyMessage>,
        close: bool,
        content_length: Option<u64>,
    ) -> (Input, Option<mpsc::Sender<BodyMessage>>) {
        let (tx, rx) = mpsc::channel(messages.len().max(1));
        for m in messages {
            tx.try_send(m).unwrap();
        }
        let mut input = Input::channel(content_length, Arc::new(CallSignals::default()));
        if let InputInner::Channel(c) = &mut input.inner {
            c.rx = Some(rx);
        }
        (input, (!close).then_some(tx))
    }

    #[test]
    fn eof_at_content_length_ignores_extra_bytes() {
        let (mut input, _tx) = channel_input(
            vec![
                BodyMessage::Data("hello".into()),
                BodyMessage::Data("world".into()),
            ],
            false,
            Some(7),
        );
        let mut body = Vec::new();
        input.read_to_end(&mut body).unwrap();
        assert_eq!(body, b"hellowo");
    }

    #[test]
    fn chunked_body_ends_at_end_message() {
        let (mut input, _) = channel_input(
            vec![
                BodyMessage::Data("ab".into()),
                BodyMessage::Data("cd".into()),
                BodyMessage::End,
            ],
            true,
            None,
        );
        assert_eq!(input.read_chunk().unwrap(), "ab");
        let mut rest = String::new();
        input.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "cd");
        assert_eq!(input.read_chunk().unwrap(), "");
    }

    #[test]
    fn closed_channel_without_end_is_connection_aborted() {
        let (mut input, _) = channel_input(vec![BodyMessage::Data("ab".into())], true, None);
        assert_eq!(input.read_chunk().unwrap(), "ab");
        let err = input.read_chunk().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
        // And on every later read.
        assert_eq!(
            input.read(&mut [0; 4]).unwrap_err().kind(),
            io::ErrorKind::ConnectionAborted
        );
    }

    #[test]
    fn body_shorter_than_content_length_is_unexpected_eof() {
        let (mut input, _) = channel_input(
            vec![BodyMessage::Data("ab".into()), BodyMessage::End],
            true,
            Some(5),
        );
        let mut body = Vec::new();
        let err = input.read_to_end(&mut body).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(body, b"ab");
    }
}
