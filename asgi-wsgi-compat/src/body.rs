//! [`Body`]: the response iterable of PEP 3333, with its `close()`.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use asgi_core::BoxError;
use bytes::Bytes;

/// One item of a response body: a chunk, or the error that ends the response.
pub type Chunk = Result<Bytes, BoxError>;

/// What a [`Body`] iterates over. The validator wraps bodies through it; `close` tells an
/// explicit `close()` from a drop.
pub(crate) trait Chunks: Send {
    fn next_chunk(&mut self) -> Option<Chunk>;

    /// True when no chunk can follow, known without blocking.
    fn is_end(&self) -> bool {
        false
    }

    /// Releases what the chunks hold. `explicit`: the host called [`Body::close`].
    fn close(self: Box<Self>, explicit: bool) {
        let _ = explicit;
    }
}

struct Once(Option<Bytes>);

impl Chunks for Once {
    fn next_chunk(&mut self) -> Option<Chunk> {
        self.0.take().map(Ok)
    }

    fn is_end(&self) -> bool {
        self.0.is_none()
    }
}

struct IterChunks<I>(I);

impl<I> Chunks for IterChunks<I>
where
    I: Iterator<Item = Chunk> + Send,
{
    fn next_chunk(&mut self) -> Option<Chunk> {
        self.0.next()
    }
}

type CloseHook = Box<dyn FnOnce() + Send>;

/// The response body of a [`WsgiApp`](crate::WsgiApp): PEP 3333's iterable of byte strings,
/// with its `close()`.
///
/// The host iterates it and sends each chunk as it comes (nothing is collected), so a body
/// can be larger than memory. An `Err` item ends the response with that error (a 500 before
/// the headers went out, an aborted response after).
///
/// # Cleanup
///
/// PEP 3333's `close()` is Rust's `Drop`: the iterator is dropped, then the hooks added with
/// [`on_close`](Body::on_close) run, on every path: completion, an error, a panic in the app,
/// the client disconnecting. The host calls [`close`](Body::close) explicitly when it is
/// done; dropping the body does the same cleanup. A panic in cleanup is caught and logged.
///
/// # Example
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use asgi_wsgi_compat::Body;
///
/// let closed = Arc::new(AtomicBool::new(false));
/// let flag = closed.clone();
/// let body = Body::from_chunks((0..3).map(|i| format!("line {i}\n")))
///     .on_close(move || flag.store(true, Ordering::SeqCst));
///
/// let mut chunks = Vec::new();
/// let mut body = body;
/// for chunk in &mut body {
///     chunks.push(chunk.unwrap());
/// }
/// assert_eq!(chunks.concat(), b"line 0\nline 1\nline 2\n");
/// body.close();
/// assert!(closed.load(Ordering::SeqCst));
/// ```
pub struct Body {
    /// `None` once closed.
    chunks: Option<Inner>,
    on_close: Option<CloseHook>,
}

/// A body of at most one chunk (the common case: a whole response in one value) is held
/// inline, without a box.
enum Inner {
    Once(Once),
    Dyn(Box<dyn Chunks>),
}

impl Inner {
    fn next_chunk(&mut self) -> Option<Chunk> {
        match self {
            Inner::Once(once) => once.next_chunk(),
            Inner::Dyn(chunks) => chunks.next_chunk(),
        }
    }

    fn is_end(&self) -> bool {
        match self {
            Inner::Once(once) => once.is_end(),
            Inner::Dyn(chunks) => chunks.is_end(),
        }
    }

    fn close(self, explicit: bool) {
        match self {
            Inner::Once(_) => {}
            Inner::Dyn(chunks) => chunks.close(explicit),
        }
    }
}

impl Body {
    /// A body with no data.
    pub fn empty() -> Self {
        Body::once(None)
    }

    fn once(chunk: Option<Bytes>) -> Self {
        Body {
            chunks: Some(Inner::Once(Once(chunk))),
            on_close: None,
        }
    }

    /// A body of the chunks an iterator yields, pulled one at a time as the client takes
    /// them. Each chunk is anything that converts into [`Bytes`] (`String`, `Vec<u8>`,
    /// `&'static str`, ...).
    pub fn from_chunks<I, B>(chunks: I) -> Self
    where
        I: IntoIterator<Item = B>,
        I::IntoIter: Send + 'static,
        B: Into<Bytes>,
    {
        Body::from_dyn(Box::new(IterChunks(
            chunks.into_iter().map(|b| Ok(b.into())),
        )))
    }

    /// A body of fallible chunks: an `Err` ends the response with that error.
    pub fn try_from_chunks<I, B, E>(chunks: I) -> Self
    where
        I: IntoIterator<Item = Result<B, E>>,
        I::IntoIter: Send + 'static,
        B: Into<Bytes>,
        E: Into<BoxError>,
    {
        Body::from_dyn(Box::new(IterChunks(
            chunks
                .into_iter()
                .map(|r| r.map(Into::into).map_err(Into::into)),
        )))
    }

    pub(crate) fn from_dyn(chunks: Box<dyn Chunks>) -> Self {
        Body {
            chunks: Some(Inner::Dyn(chunks)),
            on_close: None,
        }
    }

    /// Adds a cleanup hook, PEP 3333's `close()`: it runs once, after the iterator was
    /// dropped, on every path. Hooks run in the order they were added.
    pub fn on_close(mut self, hook: impl FnOnce() + Send + 'static) -> Self {
        // Each hook runs under its own guard, so that one that panics does not skip the rest.
        let guarded = move || run_guarded(hook);
        self.on_close = Some(match self.on_close.take() {
            None => Box::new(guarded),
            Some(previous) => Box::new(move || {
                previous();
                guarded();
            }),
        });
        self
    }

    /// PEP 3333's `close()`: drops the iterator and runs the cleanup hooks now. Hosts call it
    /// when they are done with the body; dropping the body does the same.
    pub fn close(mut self) {
        self.cleanup(true);
    }

    /// True when no chunk can follow, known without blocking (a body from a single value
    /// after its chunk was taken, or an empty body).
    pub(crate) fn is_end(&self) -> bool {
        self.chunks.as_ref().is_none_or(|c| c.is_end())
    }

    fn cleanup(&mut self, explicit: bool) {
        if let Some(chunks) = self.chunks.take() {
            run_guarded(|| chunks.close(explicit));
        }
        if let Some(hook) = self.on_close.take() {
            hook();
        }
    }
}

/// Runs cleanup code, catching and logging a panic: cleanup also runs while a panic unwinds,
/// where a second panic would abort the process.
fn run_guarded(f: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        log_cleanup_panic(&*payload);
    }
}

fn log_cleanup_panic(payload: &(dyn std::any::Any + Send)) {
    let message = payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload");
    tracing::error!(panic = message, "a WSGI response body panicked in close()");
}

impl Iterator for Body {
    type Item = Chunk;

    fn next(&mut self) -> Option<Chunk> {
        self.chunks.as_mut()?.next_chunk()
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        self.cleanup(false);
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body")
            .field("closed", &self.chunks.is_none())
            .finish_non_exhaustive()
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Body::once((!b.is_empty()).then_some(b))
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Body::from(Bytes::from_static(s.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(b: &'static [u8]) -> Self {
        Body::from(Bytes::from_static(b))
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Body::from(Bytes::from(s))
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        Body::from(Bytes::from(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn hooks_run_once_in_order_on_drop() {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (a, b) = (log.clone(), log.clone());
        let body = Body::from("x")
            .on_close(move || a.lock().unwrap().push(1))
            .on_close(move || b.lock().unwrap().push(2));
        drop(body);
        assert_eq!(*log.lock().unwrap(), [1, 2]);
    }

    #[test]
    fn panicking_hook_is_contained() {
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let body = Body::empty()
            .on_close(|| panic!("cleanup failed"))
            .on_close(move || {
                c.fetch_add(1, Ordering::SeqCst);
            });
        body.close();
        // The first hook panicked; the second still ran, and nothing escaped.
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn single_chunk_body_knows_its_end() {
        let mut body = Body::from("abc");
        assert!(!body.is_end());
        assert_eq!(body.next().unwrap().unwrap(), "abc");
        assert!(body.is_end());
        assert!(body.next().is_none());
        assert!(Body::from("").is_end());
    }
}
