//! The bounded, lossy queue between the threads that log and the thread that writes the lines
//! out (see the [module docs](super)).
//!
//! A line is appended to one shared buffer under a lock held only for the copy; nothing is
//! allocated per line, and no thread is woken per line. The writer thread takes the whole
//! buffer at once (it swaps it with an empty one), writes it out in one call, and then waits
//! [`LOG_FLUSH_INTERVAL`] before it takes the next batch, so that a busy server's lines go out
//! many to a system call and its request path never wakes the writer. A writer that finds
//! nothing to write sleeps until a line comes: the line that finds it asleep wakes it, so a
//! quiet server's lines still go out at once.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{JoinHandle, Thread};

use tracing_subscriber::fmt::MakeWriter;

use super::{LOG_BATCH_KEPT_BYTES, LOG_FLUSH_INTERVAL};

/// What the logging threads and the writer thread share.
#[derive(Debug)]
pub(super) struct Queue {
    pending: Mutex<Pending>,
    /// Set by the writer thread before it sleeps with nothing to write; the first line that
    /// finds it set clears it and wakes the thread.
    asleep: AtomicBool,
    /// Lines dropped because the queue was full (or closed).
    dropped: AtomicUsize,
    /// How many lines may wait.
    limit: usize,
    /// The writer thread, once it runs.
    writer: std::sync::OnceLock<Thread>,
}

/// The lines waiting for the writer thread.
#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    lines: usize,
    /// The guard was dropped: the writer writes what is here and stops.
    closed: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while the lock is held cannot leave `Pending` half-updated in a way that
        // matters (at worst a line is cut short), so a poisoned lock is used as it is.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues one line, or drops and counts it when `limit` lines already wait.
    fn push(&self, line: &[u8]) {
        let mut pending = self.lock();
        if pending.closed || pending.lines >= self.limit {
            drop(pending);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        pending.bytes.extend_from_slice(line);
        pending.lines += 1;
        drop(pending);
        // SeqCst, as the writer's store: see `sleep_until_a_line`.
        if self.asleep.load(Ordering::SeqCst) && self.asleep.swap(false, Ordering::SeqCst) {
            if let Some(writer) = self.writer.get() {
                writer.unpark();
            }
        }
    }

    /// How many lines were dropped so far.
    pub(super) fn dropped_lines(&self) -> usize {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The `MakeWriter` of the subscriber: each event's line goes into the queue.
#[derive(Debug, Clone)]
pub(super) struct QueueWriter {
    queue: Arc<Queue>,
}

/// One event's writer: tracing-subscriber writes the whole line with one `write_all`.
#[derive(Debug)]
pub(super) struct LineWriter<'a> {
    queue: &'a Queue,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.queue.push(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for QueueWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter { queue: &self.queue }
    }
}

/// Stops the writer thread when dropped (or [stopped](WriterGuard::stop)), after it wrote
/// every line queued before.
#[derive(Debug)]
pub(super) struct WriterGuard {
    queue: Arc<Queue>,
    thread: Option<JoinHandle<()>>,
}

impl WriterGuard {
    /// The queue the guard's writer thread empties.
    pub(super) fn queue(&self) -> Arc<Queue> {
        self.queue.clone()
    }

    /// Closes the queue (a line after this is dropped and counted) and waits until the writer
    /// thread wrote what was queued and stopped. Does nothing the second time.
    pub(super) fn stop(&mut self) {
        self.queue.lock().closed = true;
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts a writer thread named `name` that writes the queued lines to `out`; at most `limit`
/// lines (at least 1) wait for it.
pub(super) fn start(
    out: impl Write + Send + 'static,
    limit: usize,
    name: &str,
) -> io::Result<(QueueWriter, WriterGuard)> {
    let queue = Arc::new(Queue {
        pending: Mutex::new(Pending::default()),
        asleep: AtomicBool::new(false),
        dropped: AtomicUsize::new(0),
        limit: limit.max(1),
        writer: std::sync::OnceLock::new(),
    });
    let thread = std::thread::Builder::new().name(name.into()).spawn({
        let queue = queue.clone();
        move || run(&queue, out)
    })?;
    let writer = QueueWriter {
        queue: queue.clone(),
    };
    let guard = WriterGuard {
        queue,
        thread: Some(thread),
    };
    Ok((writer, guard))
}

/// The writer thread: takes the queued lines as one batch, writes them, waits
/// [`LOG_FLUSH_INTERVAL`] (or until the guard is dropped), and again; with nothing queued, it
/// sleeps until a line comes.
fn run(queue: &Queue, mut out: impl Write) {
    // Set before the thread can first sleep, so a line that finds it asleep can wake it.
    let _ = queue.writer.set(std::thread::current());
    let mut batch = Vec::new();
    loop {
        let closed = {
            let mut pending = queue.lock();
            std::mem::swap(&mut pending.bytes, &mut batch);
            pending.lines = 0;
            pending.closed
        };
        let wrote = !batch.is_empty();
        if wrote {
            // A failed write loses these lines, as a full queue does; there is nowhere to
            // report it but the output that failed.
            let _ = out.write_all(&batch).and_then(|()| out.flush());
            batch.clear();
            if batch.capacity() > LOG_BATCH_KEPT_BYTES {
                batch = Vec::new();
            }
        }
        if closed {
            return;
        }
        if wrote {
            // Let the next batch gather. The guard's drop cuts this short.
            std::thread::park_timeout(LOG_FLUSH_INTERVAL);
        } else {
            sleep_until_a_line(queue);
        }
    }
}

/// With nothing queued, sleeps until a line (or the guard's drop) wakes the thread; returns
/// at once when lines are queued.
///
/// The flag is set before the queue is looked at, and a line is queued before the flag is
/// read (both `SeqCst`, and the queue under its lock): a line either is seen here, or sees the
/// flag and wakes the thread. An unpark that comes before the park makes the park return at
/// once, and a spurious wake-up only makes the loop look again.
fn sleep_until_a_line(queue: &Queue) {
    queue.asleep.store(true, Ordering::SeqCst);
    let idle = {
        let pending = queue.lock();
        pending.bytes.is_empty() && !pending.closed
    };
    if idle {
        std::thread::park();
    }
    queue.asleep.store(false, Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// An output the test reads while the writer thread writes to it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }

        /// Waits (up to 5 s) until the output holds `lines` lines.
        fn wait_for_lines(&self, lines: usize) -> String {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let text = self.text();
                if text.lines().count() >= lines || Instant::now() > deadline {
                    return text;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    fn line(writer: &QueueWriter, text: &str) {
        writer.make_writer().write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn lines_go_out_in_order_while_the_writer_runs() {
        let out = Shared::default();
        let (writer, guard) = start(out.clone(), 100, "test-log-writer").unwrap();
        line(&writer, "one\n");
        // The writer is asleep with nothing to write: the line wakes it.
        assert_eq!(out.wait_for_lines(1), "one\n");
        // Asleep again, after a pause; then lines in a burst.
        std::thread::sleep(Duration::from_millis(30));
        for i in 0..50 {
            line(&writer, &format!("line {i}\n"));
        }
        let text = out.wait_for_lines(51);
        let expected: String = std::iter::once("one\n".to_owned())
            .chain((0..50).map(|i| format!("line {i}\n")))
            .collect();
        assert_eq!(text, expected);
        assert_eq!(guard.queue().dropped_lines(), 0);
    }

    #[test]
    fn lines_over_the_limit_are_dropped_and_counted() {
        // An output that blocks until the test lets it go, so the queue fills up.
        let gate = Arc::new(Mutex::new(()));
        struct Gated(Arc<Mutex<()>>, Shared);
        impl Write for Gated {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let _open = self.0.lock().unwrap();
                self.1.write(buf)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let out = Shared::default();
        let closed = gate.lock().unwrap();
        let (writer, guard) =
            start(Gated(gate.clone(), out.clone()), 3, "test-log-writer").unwrap();
        // The first line goes to the writer, which then blocks on the gate.
        line(&writer, "first\n");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !writer.queue.lock().bytes.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        for i in 0..5 {
            line(&writer, &format!("queued {i}\n"));
        }
        assert_eq!(
            guard.queue().dropped_lines(),
            2,
            "three wait, two are dropped"
        );
        drop(closed);
        drop(guard);
        assert_eq!(out.text(), "first\nqueued 0\nqueued 1\nqueued 2\n");
    }

    #[test]
    fn dropping_the_guard_writes_every_queued_line_first() {
        let out = Shared::default();
        let (writer, guard) = start(out.clone(), 1000, "test-log-writer").unwrap();
        for i in 0..200 {
            line(&writer, &format!("{i}\n"));
        }
        drop(guard);
        assert_eq!(out.text().lines().count(), 200);
        // Lines after the guard are dropped and counted, not queued for nobody.
        line(&writer, "late\n");
        assert_eq!(writer.queue.dropped_lines(), 1);
    }
}
