//! The threads that run WSGI calls: a pool of persistent threads fed through one short queue.
//!
//! tokio's `spawn_blocking` would do, but it builds a task, a join handle and their wake-ups
//! for every call, and hands each call to whichever blocking thread is free. A pool of its
//! own lets a request be handed over with one allocation, one lock and, only when a thread
//! is asleep, one wake-up; and a thread that finds more work queued runs it without
//! sleeping, so under load the calls flow through threads that stay hot.
//!
//! A thread that runs out of work looks at the queue a few more times before it sleeps
//! ([`SPIN_TURNS`]), yielding the CPU between looks. A call queued while a thread is looking
//! is left to that thread: no wake-up, and no context switch away from the connection's
//! worker, which keeps its CPU until it has nothing left to do. Any other call queued wakes
//! a sleeping thread (or starts one) at once, as before: a thread that is running a call is
//! never counted on, since a blocking handler may hold it for as long as it likes.
//!
//! The queue never holds more than the pool's thread limit: [`WsgiToAsgi`](crate::WsgiToAsgi)
//! admits at most that many calls at once (its semaphore), so a call is queued only while a
//! thread is on its way to it.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How long a thread of the pool waits for work before it ends: 10 seconds, as tokio's
/// blocking pool. Threads come back on demand, so an idle server holds none for long, and a
/// busy one never pays for starting them.
pub(crate) const THREAD_KEEP_ALIVE: Duration = Duration::from_secs(10);

/// How many times a thread that ran out of work gives up the CPU
/// ([`std::thread::yield_now`]) and looks at the queue again before it goes to sleep: 16.
///
/// A call handed to a sleeping thread costs a wake-up (a futex call) and, when the
/// connection's worker and the pool share a CPU, the woken thread takes that CPU from the
/// worker at once: two context switches for every request. A thread that is still looking
/// takes the next call without either, and once the worker has nothing left to do it runs
/// the calls queued meanwhile one after the other. Yielding leaves the CPU to anything else
/// that wants it, so looking costs only CPU time nobody else wanted; and it is bounded: an
/// idle pool looks 16 times, a few microseconds, and then sleeps. At most
/// [`MAX_SPINNING`] threads look at once. A tuning constant, not a setting: change it here;
/// 0 turns looking off (every call to an idle pool then wakes a thread). In the load
/// benchmark, with the server on one CPU, looking halves the context switches per WSGI
/// request and raises its throughput by about a quarter; 64 or 256 turns measure no better,
/// and cost more instructions per request.
pub(crate) const SPIN_TURNS: u32 = 16;

/// How many threads look for work ([`SPIN_TURNS`]) at once: 1. One is enough to take a
/// call without a wake-up; more would only take turns at yielding to each other (2
/// measured no better). A tuning constant: change it here.
pub(crate) const MAX_SPINNING: usize = 1;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The pool. Dropping the last handle lets its idle threads end at once.
pub(crate) struct ThreadPool {
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<Queue>,
    /// The queue's length, written under its lock: a looking thread reads it without the
    /// lock, so that a look costs a load rather than a lock.
    queued: AtomicUsize,
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
    /// Threads looking for work without sleeping ([`SPIN_TURNS`]): each will take a queued
    /// job before it sleeps, so a job they cover needs no wake-up.
    spinning: usize,
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
                    spinning: 0,
                    closed: false,
                }),
                queued: AtomicUsize::new(0),
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
        self.shared
            .queued
            .store(queue.jobs.len(), Ordering::Relaxed);
        // Jobs not yet covered by a looking thread; each needs a sleeping thread woken.
        let uncovered = queue.jobs.len().saturating_sub(queue.spinning);
        if uncovered == 0 {
            // A looking thread takes it, without a wake-up.
            return Ok(());
        }
        if queue.idle >= uncovered {
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
                self.shared.queued.store(0, Ordering::Relaxed);
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
            shared.queued.store(queue.jobs.len(), Ordering::Relaxed);
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
        if SPIN_TURNS > 0 && queue.spinning < MAX_SPINNING {
            queue.spinning += 1;
            drop(queue);
            queue = spin(shared);
            queue.spinning -= 1;
            if !queue.jobs.is_empty() {
                continue;
            }
            if queue.closed {
                break;
            }
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

/// Looks for work [`SPIN_TURNS`] times, yielding the CPU between looks; returns the queue
/// locked, once a job is queued or after the last turn. The caller counts itself in
/// `spinning` meanwhile, so the jobs it covers are queued without a wake-up. A look reads
/// the queue's length without the lock; a closed pool is seen after the last turn.
fn spin(shared: &Shared) -> MutexGuard<'_, Queue> {
    for _ in 0..SPIN_TURNS {
        std::thread::yield_now();
        if shared.queued.load(Ordering::Relaxed) > 0 {
            break;
        }
    }
    // The queue decides: a job pushed after the last look is found here, or its push saw
    // this thread gone from `spinning` and woke a sleeper.
    lock(&shared.queue)
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
    fn a_job_queued_while_a_thread_looks_is_not_held_up_by_a_blocking_one() {
        let pool = ThreadPool::new(2);
        // A first job leaves a thread looking for work.
        let (tx, rx) = mpsc::sync_channel(4);
        let first = tx.clone();
        pool.execute(move || first.send("first").unwrap()).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "first");
        // The looking thread takes a job that blocks; the next one must still run.
        let (release_tx, release_rx) = mpsc::sync_channel::<()>(1);
        pool.execute(move || {
            let _ = release_rx.recv_timeout(Duration::from_secs(30));
        })
        .unwrap();
        let second = tx.clone();
        pool.execute(move || second.send("second").unwrap())
            .unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "second");
        release_tx.send(()).unwrap();
    }

    #[test]
    fn an_idle_pool_stops_looking_and_sleeps() {
        let pool = ThreadPool::new(2);
        let (tx, rx) = mpsc::sync_channel(1);
        pool.execute(move || tx.send(()).unwrap()).unwrap();
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let queue = lock(&pool.shared.queue);
            if queue.spinning == 0 && queue.idle == queue.threads {
                break;
            }
            drop(queue);
            assert!(
                std::time::Instant::now() < deadline,
                "a thread still looks for work"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
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
