//! A connection's socket with a write timeout: a write that makes no progress for that long
//! fails, so that hyper closes the connection of a client that takes none of its response.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// `io`, whose writes (and flushes and shutdown) fail with [`io::ErrorKind::TimedOut`] once
/// they have waited `timeout` without a byte going out. Reads pass through.
#[derive(Debug)]
pub(crate) struct WriteTimeout<I> {
    io: I,
    timeout: Option<Duration>,
    /// The deadline of the write that waits; allocated at the first wait, then reused.
    deadline: Option<Pin<Box<Sleep>>>,
    /// True while a write waits: the deadline runs.
    waiting: bool,
}

impl<I> WriteTimeout<I> {
    /// `io` with writes limited to `timeout` without progress; `None`: no limit.
    pub(crate) fn new(io: I, timeout: Option<Duration>) -> Self {
        WriteTimeout {
            io,
            timeout,
            deadline: None,
            waiting: false,
        }
    }

    /// What to return for a write the socket is not ready for: pending until the deadline,
    /// then the timeout error.
    fn wait<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let Some(timeout) = self.timeout else {
            return Poll::Pending;
        };
        let deadline = Instant::now() + timeout;
        let sleep = match &mut self.deadline {
            Some(sleep) => {
                if !self.waiting {
                    sleep.as_mut().reset(deadline);
                }
                sleep
            }
            None => self
                .deadline
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        self.waiting = true;
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took none of the response within the write timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Passes on what the socket said: anything but pending is progress.
    fn progress<T>(
        &mut self,
        polled: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Pending => self.wait(cx),
            ready => {
                self.waiting = false;
                ready
            }
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for WriteTimeout<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.progress(polled, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.progress(polled, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_flush(cx);
        this.progress(polled, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_shutdown(cx);
        this.progress(polled, cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn a_write_nobody_reads_fails_after_the_timeout() {
        let (near, _far) = tokio::io::duplex(16);
        let mut io = WriteTimeout::new(near, Some(TIMEOUT));
        let started = Instant::now();
        let err = io.write_all(&[0; 64]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_takes_bytes_keeps_the_connection() {
        let (near, mut far) = tokio::io::duplex(16);
        let reader = tokio::spawn(async move {
            let mut buf = [0; 16];
            let mut total = 0;
            while total < 64 {
                // Each read comes before the timeout, the whole body long after it.
                tokio::time::sleep(TIMEOUT / 2).await;
                total += far.read(&mut buf).await.unwrap();
            }
        });
        let mut io = WriteTimeout::new(near, Some(TIMEOUT));
        io.write_all(&[0; 64]).await.unwrap();
        reader.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_timeout_a_write_waits_for_good() {
        let (near, _far) = tokio::io::duplex(16);
        let mut io = WriteTimeout::new(near, None);
        let waited = tokio::time::timeout(TIMEOUT * 10, io.write_all(&[0; 64])).await;
        assert!(waited.is_err());
    }
}
