//! The threads that run WSGI calls: a pool of persistent threads fed through one bounded
//! queue.
//!
//! tokio's `spawn_blocking` would do, but it builds a task, a join handle and their wake-ups
//! for every call, and hands each call to whichever blocking thread is free. A pool of its
//! own lets a request be handed over with one allocation, one lock and, only when a thread
//! is asleep, one wake-up; and a thread that finds more work queued runs it without
//! sleeping, so under load the calls flow through threads that stay hot.
//!
//! A thread that runs out of work looks at the queue a few more times before it sleeps
//! ([`SPIN_TURNS`]), yielding the CPU between looks. A call queued while a thread is looking,
//! or is on its way back from a call that has ended, is left to that thread: no wake-up, and
//! no context switch away from the connection's worker, which keeps its CPU until it has
//! nothing left to do. Any other call queued wakes a sleeping thread (or starts one) at once:
//! a thread that is running a call is never counted on, since a blocking handler may hold it
//! for as long as it likes.
//!
//! # Calls that wait for a thread
//!
//! Once every thread is busy, calls wait in the queue, up to the adapter's
//! [`max_queued`](crate::WsgiToAsgi::max_queued) on top of one per thread (the adapter admits
//! no more: its semaphore holds that many permits). A call that waits here costs nothing on
//! the async side: no timer and no waiting task, and the connection's worker hands over every
//! request it read in one turn before the threads take them, one after the other, without a
//! wake-up across threads between two calls.
//!
//! A call queued behind busy threads carries a deadline (the adapter's slot timeout): one
//! watchdog thread per pool, started when such a call is first queued and ending after
//! [`THREAD_KEEP_ALIVE`] without one, takes a call out when its deadline passes and tells it
//! so ([`Turn::Expired`]), so that its client gets `503` on time even while every thread is
//! blocked. A call queued while a thread is free to take it needs no deadline: that thread
//! takes it next.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long a thread of the pool waits for work before it ends: 10 seconds, as tokio's
/// blocking pool. Threads come back on demand, so an idle server holds none for long, and a
/// busy one never pays for starting them. The watchdog ends after as long without a call to
/// watch.
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

/// What a job is told when it leaves the queue.
#[derive(Debug)]
pub(crate) enum Turn<'a> {
    /// A thread of the pool runs it now.
    Run(Running<'a>),
    /// Its deadline passed while every thread was busy: it must not run. Told on the
    /// watchdog's thread.
    Expired,
}

/// A job's hold on its thread: dropping it tells the pool that the job's call is over, so
/// that the thread counts as free for the next call although the job has a little left to
/// do (telling its caller). Drop it before anything that lets a new call in (the caller's
/// admission), so that the new call finds the thread free.
#[derive(Debug)]
pub(crate) struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A call handed to the pool; it is told which [`Turn`] it gets, once.
pub(crate) type Job = Box<dyn for<'a> FnOnce(Turn<'a>) + Send + 'static>;

/// Why [`ThreadPool::execute`] did not queue a job; the job was dropped unrun.
#[derive(Debug)]
pub(crate) enum Rejected {
    /// Every thread is busy and the job's deadline has passed already (a zero slot timeout).
    Busy,
    /// A thread could not be started (the system is out of threads) and none is running.
    NoThread(std::io::Error),
}

/// The pool. Dropping the last handle lets its idle threads, and its watchdog, end at once.
pub(crate) struct ThreadPool {
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<Queue>,
    /// The queue's length, written under its lock: a looking thread reads it without the
    /// lock, so that a look costs a load rather than a lock.
    queued: AtomicUsize,
    /// Threads running a job whose call is not over ([`Running`]): raised under the queue's
    /// lock when a thread takes a job, lowered without it when the call ends.
    running: AtomicUsize,
    work: Condvar,
    /// Where the watchdog waits.
    watch: Condvar,
    max_threads: usize,
}

struct Queued {
    job: Job,
    /// When the job expires, if it was queued behind busy threads with a slot timeout.
    deadline: Option<Instant>,
}

struct Queue {
    /// At most the adapter's admissions (see the module docs).
    jobs: VecDeque<Queued>,
    /// Threads alive.
    threads: usize,
    /// Threads waiting for work.
    idle: usize,
    /// Threads looking for work without sleeping ([`SPIN_TURNS`]): each will take a queued
    /// job before it sleeps, so a job they cover needs no wake-up.
    spinning: usize,
    watchdog: Watchdog,
    /// The pool's handle was dropped: idle threads end.
    closed: bool,
}

/// The watchdog thread's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watchdog {
    /// No watchdog thread.
    Absent,
    /// It waits for a job with a deadline, with no deadline of its own: a job queued with one
    /// must wake it.
    Idle,
    /// It waits until this time, the earliest deadline in the queue when it looked: a job
    /// queued with an earlier one must wake it.
    Watching(Instant),
}

fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    // A job runs outside the lock, so a panic cannot leave the queue half-changed.
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ThreadPool {
    /// A pool of at most `max_threads` threads (at least 1), started on demand, whose queue
    /// holds at most `capacity` jobs (the caller's admissions; room is made for them up
    /// front).
    pub(crate) fn new(max_threads: usize, capacity: usize) -> Self {
        let max_threads = max_threads.max(1);
        ThreadPool {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue {
                    jobs: VecDeque::with_capacity(capacity.max(max_threads)),
                    threads: 0,
                    idle: 0,
                    spinning: 0,
                    watchdog: Watchdog::Absent,
                    closed: false,
                }),
                queued: AtomicUsize::new(0),
                running: AtomicUsize::new(0),
                work: Condvar::new(),
                watch: Condvar::new(),
                max_threads,
            }),
        }
    }

    /// Runs `job` on a thread of the pool, now or once a thread is free. The caller holds
    /// one of its bounded admissions, so the queue stays within its bound.
    ///
    /// `slot_timeout` is how long the job may wait when every thread is busy: it is then
    /// given a deadline, and told [`Turn::Expired`] when the deadline passes first. `None`
    /// waits as long as it takes.
    ///
    /// # Errors
    ///
    /// [`Rejected::Busy`]: every thread is busy and `slot_timeout` is zero.
    /// [`Rejected::NoThread`]: no thread is running and none could be started.
    pub(crate) fn execute(&self, job: Job, slot_timeout: Option<Duration>) -> Result<(), Rejected> {
        let mut queue = lock(&self.shared.queue);
        // Threads not running a call take the queue's first jobs: this job is covered when
        // its place is within their number. Threads looking for work, or on their way back
        // from a call, find it without a wake-up; a sleeping one needs one.
        let place = queue.jobs.len() + 1;
        let free = queue
            .threads
            .saturating_sub(self.shared.running.load(Ordering::SeqCst));
        if place <= free.saturating_sub(queue.idle) {
            self.push(&mut queue, job, None);
            return Ok(());
        }
        if place <= free {
            self.push(&mut queue, job, None);
            drop(queue);
            self.shared.work.notify_one();
            return Ok(());
        }
        if queue.threads < self.shared.max_threads {
            self.push(&mut queue, job, None);
            queue.threads += 1;
            drop(queue);
            return self.start_thread();
        }
        // Every thread is busy: the job waits for one to finish, within its deadline (none
        // without a slot timeout, or past the clock's reach with `Duration::MAX`).
        let deadline = match slot_timeout {
            Some(timeout) if timeout.is_zero() => {
                drop(queue);
                drop(job);
                return Err(Rejected::Busy);
            }
            Some(timeout) => Instant::now().checked_add(timeout),
            None => None,
        };
        self.push(&mut queue, job, deadline);
        if let Some(deadline) = deadline {
            self.watch_until(queue, deadline);
        }
        Ok(())
    }

    /// Makes sure the watchdog looks at the queue by `deadline`: starts it, or wakes it when
    /// it waits for a later time or for nothing.
    fn watch_until(&self, mut queue: MutexGuard<'_, Queue>, deadline: Instant) {
        let absent = match queue.watchdog {
            Watchdog::Watching(until) if until <= deadline => return,
            Watchdog::Idle | Watchdog::Watching(_) => false,
            Watchdog::Absent => true,
        };
        queue.watchdog = Watchdog::Watching(deadline);
        drop(queue);
        if !absent {
            self.shared.watch.notify_one();
            return;
        }
        let shared = self.shared.clone();
        let started = std::thread::Builder::new()
            .name("asgi-wsgi-watch".into())
            .spawn(move || watch(&shared));
        if let Err(error) = started {
            // Without a watchdog the job still runs once a thread is free; only its deadline
            // is not kept.
            lock(&self.shared.queue).watchdog = Watchdog::Absent;
            tracing::warn!(%error, "could not start the WSGI pool's watchdog thread");
        }
    }

    fn push(&self, queue: &mut Queue, job: Job, deadline: Option<Instant>) {
        queue.jobs.push_back(Queued { job, deadline });
        self.shared
            .queued
            .store(queue.jobs.len(), Ordering::Relaxed);
    }

    /// Starts a thread, counted already in `threads`.
    fn start_thread(&self) -> Result<(), Rejected> {
        let shared = self.shared.clone();
        let started = std::thread::Builder::new()
            .name("asgi-wsgi".into())
            .spawn(move || work(&shared));
        let Err(error) = started else {
            return Ok(());
        };
        let mut queue = lock(&self.shared.queue);
        queue.threads -= 1;
        if queue.threads > 0 {
            // A running thread takes the job once it is free.
            return Ok(());
        }
        let jobs = std::mem::take(&mut queue.jobs);
        self.shared.queued.store(0, Ordering::Relaxed);
        drop(queue);
        // Dropped unrun, outside the lock: each tells its call so.
        drop(jobs);
        Err(Rejected::NoThread(error))
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        lock(&self.shared.queue).closed = true;
        self.shared.work.notify_all();
        self.shared.watch.notify_all();
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queue = lock(&self.shared.queue);
        f.debug_struct("ThreadPool")
            .field("max_threads", &self.shared.max_threads)
            .field("threads", &queue.threads)
            .field("idle", &queue.idle)
            .field("queued", &queue.jobs.len())
            .finish_non_exhaustive()
    }
}

/// A thread's life: run what is queued, wait for more, end after [`THREAD_KEEP_ALIVE`]
/// without work or once the pool is dropped with nothing queued.
fn work(shared: &Shared) {
    let mut queue = lock(&shared.queue);
    loop {
        if let Some(queued) = queue.jobs.pop_front() {
            shared.queued.store(queue.jobs.len(), Ordering::Relaxed);
            shared.running.fetch_add(1, Ordering::SeqCst);
            drop(queue);
            // A job catches its own panics (the call's outcome carries them); one that
            // escapes still leaves this thread serving, and its `Running` drops as it
            // unwinds.
            let job = queued.job;
            let running = Running(&shared.running);
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                job(Turn::Run(running));
            }));
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

/// The watchdog's life: take out the jobs whose deadline passed and tell them so; wait for
/// the next deadline, or for a job with one; end after [`THREAD_KEEP_ALIVE`] without any, or
/// once the pool is dropped.
fn watch(shared: &Shared) {
    let mut queue = lock(&shared.queue);
    loop {
        if queue.closed {
            break;
        }
        // The earliest deadline in the queue, and where its job is: one pass.
        let now = Instant::now();
        let earliest = (queue.jobs.iter().enumerate())
            .filter_map(|(at, queued)| Some((queued.deadline?, at)))
            .min();
        match earliest {
            Some((deadline, at)) if deadline <= now => {
                let expired = queue.jobs.remove(at);
                shared.queued.store(queue.jobs.len(), Ordering::Relaxed);
                drop(queue);
                if let Some(expired) = expired {
                    let job = expired.job;
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        job(Turn::Expired);
                    }));
                }
                queue = lock(&shared.queue);
                continue;
            }
            Some((deadline, _)) => {
                queue.watchdog = Watchdog::Watching(deadline);
                queue = shared
                    .watch
                    .wait_timeout(queue, deadline.saturating_duration_since(now))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                continue;
            }
            None => {}
        }
        queue.watchdog = Watchdog::Idle;
        let (guard, wait) = shared
            .watch
            .wait_timeout(queue, THREAD_KEEP_ALIVE)
            .unwrap_or_else(PoisonError::into_inner);
        queue = guard;
        if wait.timed_out() && queue.watchdog == Watchdog::Idle {
            break;
        }
    }
    queue.watchdog = Watchdog::Absent;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    const PATIENCE: Duration = Duration::from_secs(10);

    /// A job that runs `f` when it gets a thread, and does nothing when it expires.
    fn job(f: impl FnOnce() + Send + 'static) -> Job {
        Box::new(move |turn| {
            if let Turn::Run(_running) = turn {
                f();
            }
        })
    }

    /// A job that reports the turn it got: `"run"` or `"expired"`.
    fn reporting(tx: mpsc::SyncSender<(&'static str, &'static str)>, name: &'static str) -> Job {
        Box::new(move |turn| {
            let got = match turn {
                Turn::Run(_) => "run",
                Turn::Expired => "expired",
            };
            tx.send((name, got)).unwrap();
        })
    }

    /// A pool of one thread, held by a job until the returned sender is used or dropped.
    fn blocked_pool(capacity: usize) -> (ThreadPool, mpsc::SyncSender<()>) {
        let pool = ThreadPool::new(1, capacity);
        let (entered_tx, entered_rx) = mpsc::sync_channel(1);
        let (release_tx, release_rx) = mpsc::sync_channel::<()>(1);
        pool.execute(
            job(move || {
                entered_tx.send(()).unwrap();
                let _ = release_rx.recv_timeout(Duration::from_secs(30));
            }),
            None,
        )
        .unwrap();
        entered_rx.recv_timeout(PATIENCE).unwrap();
        (pool, release_tx)
    }

    #[test]
    fn runs_every_job_on_at_most_max_threads() {
        let pool = ThreadPool::new(2, 8);
        let (tx, rx) = mpsc::sync_channel(8);
        for i in 0..8 {
            let tx = tx.clone();
            pool.execute(
                job(move || tx.send((i, std::thread::current().id())).unwrap()),
                None,
            )
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
        let pool = ThreadPool::new(2, 4);
        // A first job leaves a thread looking for work.
        let (tx, rx) = mpsc::sync_channel(4);
        let first = tx.clone();
        pool.execute(job(move || first.send("first").unwrap()), None)
            .unwrap();
        assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), "first");
        // The looking thread takes a job that blocks; the next one must still run.
        let (release_tx, release_rx) = mpsc::sync_channel::<()>(1);
        pool.execute(
            job(move || {
                let _ = release_rx.recv_timeout(Duration::from_secs(30));
            }),
            None,
        )
        .unwrap();
        let second = tx.clone();
        pool.execute(job(move || second.send("second").unwrap()), None)
            .unwrap();
        assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), "second");
        release_tx.send(()).unwrap();
    }

    #[test]
    fn jobs_queued_behind_a_busy_thread_run_in_order_once_it_is_free() {
        let (pool, release) = blocked_pool(4);
        let (tx, rx) = mpsc::sync_channel(4);
        for name in ["a", "b", "c"] {
            pool.execute(reporting(tx.clone(), name), Some(PATIENCE))
                .unwrap();
        }
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        release.send(()).unwrap();
        let got: Vec<_> = (0..3).map(|_| rx.recv_timeout(PATIENCE).unwrap()).collect();
        assert_eq!(got, [("a", "run"), ("b", "run"), ("c", "run")]);
    }

    #[test]
    fn a_job_queued_behind_busy_threads_expires_at_its_deadline() {
        const SLOT: Duration = Duration::from_millis(200);
        let (pool, release) = blocked_pool(4);
        let (tx, rx) = mpsc::sync_channel(4);
        let queued = Instant::now();
        pool.execute(reporting(tx.clone(), "late"), Some(SLOT))
            .unwrap();
        assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), ("late", "expired"));
        let waited = queued.elapsed();
        assert!(waited >= SLOT, "expired after {waited:?}");
        // The thread, once free, serves the next job; the expired one never ran.
        release.send(()).unwrap();
        pool.execute(reporting(tx, "next"), Some(SLOT)).unwrap();
        assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), ("next", "run"));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn an_earlier_deadline_queued_later_expires_first() {
        let (pool, release) = blocked_pool(4);
        let (tx, rx) = mpsc::sync_channel(4);
        pool.execute(
            reporting(tx.clone(), "patient"),
            Some(Duration::from_secs(30)),
        )
        .unwrap();
        pool.execute(reporting(tx, "hasty"), Some(Duration::from_millis(100)))
            .unwrap();
        assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), ("hasty", "expired"));
        release.send(()).unwrap();
        assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), ("patient", "run"));
    }

    #[test]
    fn a_zero_slot_timeout_is_refused_at_once_when_every_thread_is_busy() {
        let (pool, release) = blocked_pool(4);
        let (tx, rx) = mpsc::sync_channel(4);
        let refused = pool.execute(reporting(tx, "now"), Some(Duration::ZERO));
        assert!(matches!(refused, Err(Rejected::Busy)), "{refused:?}");
        // Dropped unrun: it never reports.
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        release.send(()).unwrap();
    }

    #[test]
    fn a_job_without_a_slot_timeout_waits_as_long_as_it_takes() {
        let (pool, release) = blocked_pool(4);
        let (tx, rx) = mpsc::sync_channel(4);
        pool.execute(reporting(tx, "waits"), None).unwrap();
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
        release.send(()).unwrap();
        assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), ("waits", "run"));
    }

    #[test]
    fn a_slot_timeout_beyond_the_clock_waits_as_long_as_it_takes() {
        let (pool, release) = blocked_pool(4);
        let (tx, rx) = mpsc::sync_channel(4);
        pool.execute(reporting(tx, "patient"), Some(Duration::MAX))
            .unwrap();
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        release.send(()).unwrap();
        assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), ("patient", "run"));
    }

    #[test]
    fn an_idle_pool_stops_looking_and_sleeps() {
        let pool = ThreadPool::new(2, 2);
        let (tx, rx) = mpsc::sync_channel(1);
        pool.execute(job(move || tx.send(()).unwrap()), None)
            .unwrap();
        rx.recv_timeout(PATIENCE).unwrap();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let queue = lock(&pool.shared.queue);
            if queue.spinning == 0 && queue.idle == queue.threads {
                break;
            }
            drop(queue);
            assert!(Instant::now() < deadline, "a thread still looks for work");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_panicking_job_leaves_the_thread_serving() {
        let pool = ThreadPool::new(1, 2);
        pool.execute(job(|| panic!("boom")), None).unwrap();
        let (tx, rx) = mpsc::sync_channel(1);
        pool.execute(job(move || tx.send(7).unwrap()), None)
            .unwrap();
        assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), 7);
    }
}
