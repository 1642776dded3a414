//! The one file-chunk reader: a file read in [`FILE_CHUNK_SIZE`] chunks up to the length it
//! had when it was opened. The server's `http.response.pathsend`, [`Response::file`], the
//! [`TestClient`] and other hosts (`asgi-tower`'s `AsgiService`) all read files through it.
//!
//! [`Response::file`]: crate::response::Response::file
//! [`TestClient`]: crate::test_client::TestClient

use std::future::poll_fn;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, ReadBuf};

/// How many bytes of a file go into each chunk: into each `http.response.body` event of
/// [`Response::file`](crate::response::Response::file), and each frame of a file the server
/// sends for `http.response.pathsend`.
///
/// 64 KiB, a common filesystem read size: large enough that a big file costs few events,
/// small enough that a file being sent never sits in memory (one chunk per event in flight).
/// Not a setting: the chunking is invisible to the client.
pub const FILE_CHUNK_SIZE: usize = 64 * 1024;

/// A file read in [`FILE_CHUNK_SIZE`] chunks up to the length it had when it was opened.
/// See the module docs.
#[derive(Debug)]
pub struct FileChunks {
    file: tokio::fs::File,
    /// Bytes still to read: the file's length when opened, less what was read.
    remaining: u64,
    /// The chunk being filled; it survives a `Pending` read.
    buf: BytesMut,
}

impl FileChunks {
    /// Opens the regular file at `path`.
    ///
    /// # Errors
    ///
    /// The I/O error of opening it, or [`io::ErrorKind::InvalidInput`] when it is not a
    /// regular file.
    pub async fn open(path: &Path) -> io::Result<FileChunks> {
        let file = tokio::fs::File::open(path).await?;
        // The size of the file that was opened, so that a later rename of `path` cannot make
        // the length and the bytes disagree.
        let meta = file.metadata().await?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", path.display()),
            ));
        }
        Ok(FileChunks {
            file,
            remaining: meta.len(),
            buf: BytesMut::new(),
        })
    }

    /// Opens the file of an `http.response.pathsend` event: as the ASGI extension says, `path`
    /// must be absolute.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for a relative path, else as [`open`](FileChunks::open).
    pub async fn open_absolute(path: &Path) -> io::Result<FileChunks> {
        if !path.is_absolute() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the path is not absolute",
            ));
        }
        FileChunks::open(path).await
    }

    /// The bytes still to read (the file's length, before the first chunk).
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The next chunk: [`FILE_CHUNK_SIZE`] bytes, fewer for the last one; `None` at the end.
    /// A file that became shorter than its length while it was read is an
    /// [`io::ErrorKind::UnexpectedEof`] error.
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let want =
            usize::try_from(self.remaining).map_or(FILE_CHUNK_SIZE, |r| r.min(FILE_CHUNK_SIZE));
        if self.buf.capacity() < want {
            self.buf.reserve(want - self.buf.len());
        }
        while self.buf.len() < want {
            let filled = self.buf.len();
            self.buf.resize(want, 0);
            let mut read_buf = ReadBuf::new(&mut self.buf[filled..]);
            let polled = Pin::new(&mut self.file).poll_read(cx, &mut read_buf);
            let n = read_buf.filled().len();
            self.buf.truncate(filled + n);
            ready!(polled)?;
            if n == 0 {
                self.remaining = 0;
                return Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file became shorter than its length while it was read",
                ))));
            }
        }
        self.remaining -= want as u64;
        Poll::Ready(Some(Ok(self.buf.split().freeze())))
    }

    /// [`poll_chunk`](FileChunks::poll_chunk) as a future.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: bytes read before a cancel stay for the next call.
    pub async fn next_chunk(&mut self) -> Option<io::Result<Bytes>> {
        poll_fn(|cx| self.poll_chunk(cx)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_comes_in_full_chunks_and_a_short_last_one() {
        let dir = std::env::temp_dir().join(format!("asgi-file-chunks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("data");
        let contents: Vec<u8> = (0..2 * FILE_CHUNK_SIZE + 10).map(|i| i as u8).collect();
        std::fs::write(&path, &contents).unwrap();
        let mut chunks = FileChunks::open(&path).await.unwrap();
        assert_eq!(chunks.remaining(), contents.len() as u64);
        let mut sizes = Vec::new();
        let mut read = Vec::new();
        while let Some(chunk) = chunks.next_chunk().await {
            let chunk = chunk.unwrap();
            sizes.push(chunk.len());
            read.extend_from_slice(&chunk);
        }
        assert_eq!(sizes, [FILE_CHUNK_SIZE, FILE_CHUNK_SIZE, 10]);
        assert_eq!(read, contents);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_directory_is_not_a_file() {
        let err = FileChunks::open(&std::env::temp_dir()).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
