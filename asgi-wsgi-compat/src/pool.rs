//! The threads that run WSGI calls: a pool of persistent threads fed through one short queue.
//!
//! tokio's `spawn_blocking` would do, but it builds a task, a join handle and their wake-ups
//! for every call, and hands each call to whichever blocking thread is free. A pool of its
//! own lets a request be handed over with one allocation, one lock and, only when a thread
//! is asleep, one wake-up; and a thread that finds more work queued runs it without
//! sleeping, so under load the calls flow through threads that stay hot.
//!
//! The queue never holds more than the pool's thread limit: [`WsgiToAsgi`](crate::WsgiToAsgi)
//! admits at most that many calls at once (its semaphore), so a call is queued only while a
//! thread is on its way to it.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How long a thread of the pool waits for work before it ends: 10 seconds, as tokio's
/// blocking pool. Threads come back on demand, so an idle server holds none for long, and a
/// busy one never pays for starting them.
pub(crate) const THREAD_KEEP_ALIVE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The pool. Dropping the last handle lets its idle threads end at once.
pub(crate) struct ThreadPool {
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<Queue>,
    work: Condvar,
    max_threads: usize,
}

struct Queue {
    /// At most `max_threads` jobs (see the module docs).
    jobs: VecDeque<Job>,
    /// Threads alive.
    threads: usize,
    /// Threads waiting for work.
    idle: usize,
    /// The pool's handle was dropped: idle threads end.
    closed: bool,
}

fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    // A job runs outside the lock, so a panic cannot leave the queue half-changed.
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ThreadPool {
    /// A pool of at most `max_threads` threads (at least 1), started on demand.
    pub(crate) fn new(max_threads: usize) -> Self {
        let max_threads = max_threads.max(1);
        ThreadPool {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue {
                    jobs: VecDeque::with_capacity(max_threads),
                    threads: 0,
                    idle: 0,
                    closed: false,
                }),
                work: Condvar::new(),
                max_threads,
            }),
        }
    }

    /// Runs `job` on a thread of the pool. The caller holds one of at most `max_threads`
    /// admissions, so the queue stays within its bound.
    ///
    /// # Errors
    ///
    /// A thread could not be started (the system is out of threads) and none is running.
    pub(crate) fn execute(&self, job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        let mut queue = lock(&self.shared.queue);
        queue.jobs.push_back(Box::new(job));
        if queue.idle > queue.jobs.len() - 1 {
            // A sleeping thread takes it.
            drop(queue);
            self.shared.work.notify_one();
            return Ok(());
        }
        if queue.threads >= self.shared.max_threads {
            // Every thread is busy; the first to finish takes it.
            return Ok(());
        }
        queue.threads += 1;
        drop(queue);
        let shared = self.shared.clone();
        let started = std::thread::Builder::new()
            .name("asgi-wsgi".into())
            .spawn(move || work(&shared));
        if let Err(error) = started {
            let mut queue = lock(&self.shared.queue);
            queue.threads -= 1;
            if queue.threads == 0 {
                queue.jobs.clear();
                return Err(error);
            }
        }
        Ok(())
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        lock(&self.shared.queue).closed = true;
        self.shared.work.notify_all();
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queue = lock(&self.shared.queue);
        f.debug_struct("ThreadPool")
            .field("max_threads", &self.shared.max_threads)
            .field("threads", &queue.threads)
            .field("idle", &queue.idle)
            .finish_non_exhaustive()
    }
}

/// A thread's life: run what is queued, wait for more, end after [`THREAD_KEEP_ALIVE`]
/// without work or once the pool is dropped with nothing queued.
fn work(shared: &Shared) {
    let mut queue = lock(&shared.queue);
    loop {
        if let Some(job) = queue.jobs.pop_front() {
            drop(queue);
            // A job catches its own panics (the call's outcome carries them); one that
            // escapes still leaves this thread serving.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            queue = lock(&shared.queue);
            continue;
        }
        if queue.closed {
            break;
        }
        queue.idle += 1;
        let (guard, wait) = shared
            .work
            .wait_timeout(queue, THREAD_KEEP_ALIVE)
            .unwrap_or_else(PoisonError::into_inner);
        queue = guard;
        queue.idle -= 1;
        if wait.timed_out() && queue.jobs.is_empty() {
            break;
        }
    }
    queue.threads -= 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn runs_every_job_on_at_most_max_threads() {
        let pool = ThreadPool::new(2);
        let (tx, rx) = mpsc::sync_channel(8);
        for i in 0..8 {
            let tx = tx.clone();
            pool.execute(move || {
                tx.send((i, std::thread::current().id())).unwrap();
            })
            .unwrap();
        }
        let mut seen: Vec<_> = (0..8).map(|_| rx.recv().unwrap()).collect();
        let threads: std::collections::HashSet<_> = seen.iter().map(|(_, t)| *t).collect();
        seen.sort_by_key(|(i, _)| *i);
        assert_eq!(
            seen.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            (0..8).collect::<Vec<_>>()
        );
        assert!(threads.len() <= 2, "{} threads", threads.len());
    }

    #[test]
    fn a_panicking_job_leaves_the_thread_serving() {
        let pool = ThreadPool::new(1);
        pool.execute(|| panic!("boom")).unwrap();
        let (tx, rx) = mpsc::sync_channel(1);
        pool.execute(move || tx.send(7).unwrap()).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), 7);
    }
}
