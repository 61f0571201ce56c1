//! divvy-style parallel runs inside one process: a [`ParallelJob`] produces items in
//! `dispatch` and handles one in `perform`; [`Parallel::run`] (or [`run`]) performs them on
//! N runner threads and returns a [`RunReport`].
//!
//! This module owns the in-process engine only. It never touches a store, which is what
//! makes it lean enough for millions of tiny items a second; the price is that nothing is
//! persisted, so a crash of the process loses the run (use the queue API, [`crate::Client`]
//! and [`crate::Worker`], for durable work).
//!
//! How items flow:
//! - `dispatch` runs on the calling thread. [`Dispatcher::send`] appends each item to a
//!   pending chunk; full chunks ([`Parallel::chunk_size`] items) go to a bounded queue
//!   ([`Parallel::queued_chunks`]). When the queue is full `send` blocks, so even an endless
//!   dispatch holds at most [`Parallel::max_in_flight`] items in memory.
//! - A runner that found nothing to do for [`Parallel::max_wait`] takes the pending chunk
//!   itself, so items from a slow, trickling source flow without waiting for a chunk to fill.
//! - Runners take items in batches sized to keep them busy for about a millisecond: whole
//!   chunks when items are tiny, one item at a time when they are slow, so slow items still
//!   spread over every runner.
//!
//! `perform` is a plain function called on OS threads, as divvy's forked workers are, so
//! CPU-bound work runs in parallel. Async code can block on its futures inside `perform`
//! (for instance with a current-thread Tokio runtime kept in a `thread_local!` that
//! `runner_started` fills: each runner is one thread) or use the queue API instead.
//!
//! An `Err` or a panic in `perform` is a failure of that item, counted and (the first
//! [`MAX_REPORTED_FAILURES`]) reported; the run goes on. A failing `runner_started` ends that
//! runner only. An `Err` or a panic in `dispatch` stops the run early and is reported. A
//! [`StopHandle`] stops a run from anywhere, including a Ctrl-C handler.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use wrangle::parallel::{BoxError, Dispatcher, Parallel, ParallelJob, RunnerInfo};
//!
//! struct SumOfSquares {
//!     total: AtomicU64,
//! }
//!
//! impl ParallelJob for SumOfSquares {
//!     type Item = u64;
//!
//!     fn dispatch(&self, items: &mut Dispatcher<'_, u64>) -> Result<(), BoxError> {
//!         for n in 1..=1000 {
//!             items.send(n)?; // fails once the run is stopping: `?` ends dispatch
//!         }
//!         Ok(())
//!     }
//!
//!     fn perform(&self, n: u64, _runner: &RunnerInfo) -> Result<(), BoxError> {
//!         if n == 13 {
//!             return Err("13 is unlucky".into());
//!         }
//!         self.total.fetch_add(n * n, Ordering::Relaxed);
//!         Ok(())
//!     }
//! }
//!
//! let job = SumOfSquares { total: AtomicU64::new(0) };
//! let report = Parallel::new(4).run(&job);
//! assert_eq!((report.dispatched, report.performed, report.failed), (1000, 1000, 1));
//! assert_eq!(report.failures[0].seq, 12); // sequence numbers count sends from 0
//! assert_eq!(report.failures[0].message, "13 is unlucky");
//! assert_eq!(job.total.load(Ordering::Relaxed), 333_833_500 - 13 * 13);
//! ```

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// The error type of the job's methods; `"message".into()` and `?` on most errors make one.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How many item failures a [`RunReport`] keeps (the lowest sequence numbers); the rest are
/// only counted, so a run where everything fails doesn't hold every message in memory.
pub const MAX_REPORTED_FAILURES: usize = 100;

const DEFAULT_CHUNK_SIZE: usize = 1024;
const DEFAULT_MAX_WAIT: Duration = Duration::from_millis(5);

/// How long one batch should keep a runner busy: long enough that taking a batch costs
/// nothing next to performing it, short enough that slow items spread over all runners and
/// a stop is noticed soon.
const BATCH_TARGET: Duration = Duration::from_millis(1);

/// The longest anyone sleeps without looking at the stop flag: [`StopHandle::stop`] only
/// sets an atomic flag (so it is safe in a signal handler) and wakes no one.
const STOP_POLL: Duration = Duration::from_millis(10);

/// A job run in parallel: `dispatch` produces items, `perform` handles one.
///
/// The job is shared by reference between the dispatching thread and every runner, hence
/// `Sync`; per-runner state (a connection, say) can live in a `thread_local!` set up in
/// [`runner_started`](ParallelJob::runner_started), since each runner is one thread.
pub trait ParallelJob: Sync {
    /// One unit of work.
    type Item: Send;

    /// Produces the items by calling [`Dispatcher::send`]; runs on the thread that called
    /// [`Parallel::run`]. Return when `send` fails (the run is stopping; `?` does it).
    /// Returning `Err` stops the run early: runners finish the batch they hold, items not
    /// yet taken are dropped, and the error is in [`RunReport::dispatch_error`].
    fn dispatch(&self, items: &mut Dispatcher<'_, Self::Item>) -> Result<(), BoxError>;

    /// Handles one item on a runner thread. `Err` or a panic makes it a failure of this
    /// item only.
    fn perform(&self, item: Self::Item, runner: &RunnerInfo) -> Result<(), BoxError>;

    /// Called once on each runner's thread before it performs anything (divvy's
    /// `after_fork`). `Err` or a panic ends this runner, reported in
    /// [`RunReport::runner_failures`]; the others carry on.
    fn runner_started(&self, _runner: &RunnerInfo) -> Result<(), BoxError> {
        Ok(())
    }

    /// Called once on each runner's thread after its last item, for runners whose
    /// `runner_started` succeeded. A panic here is reported as a runner failure.
    fn runner_stopped(&self, _runner: &RunnerInfo) {}
}

/// Which runner is calling: numbers go from 1 to [`runners`](RunnerInfo::runners).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerInfo {
    number: usize,
    runners: usize,
}

impl RunnerInfo {
    /// This runner's number, 1..=N.
    pub fn number(&self) -> usize {
        self.number
    }

    /// How many runners the run has (N).
    pub fn runners(&self) -> usize {
        self.runners
    }
}

/// [`Dispatcher::send`]'s error: the run is stopping (stop handle, an error ending the run,
/// or no runner left), so dispatch should return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the parallel run is stopping")
    }
}

impl std::error::Error for Stopped {}

/// Stops a run: `send` fails from then on and runners stop after the batch they hold.
///
/// [`stop`](StopHandle::stop) only stores to an atomic flag, so it may be called from any
/// thread, including a signal handler; everyone notices within about 10 ms. A stopped handle
/// stays stopped, so later runs of the same [`Parallel`] stop at once.
#[derive(Debug, Clone, Default)]
pub struct StopHandle {
    stopped: Arc<AtomicBool>,
}

impl StopHandle {
    /// Asks the run to stop.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// Whether [`stop`](StopHandle::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }
}

/// One item whose `perform` failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemFailure {
    /// The item's sequence number: how many items were sent before it.
    pub seq: u64,
    /// The runner that performed it.
    pub runner: usize,
    /// The error's message, or `panicked: ` and the panic message.
    pub message: String,
}

impl fmt::Display for ItemFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "item {} (runner {}): {}",
            self.seq, self.runner, self.message
        )
    }
}

/// A runner that ended abnormally: its start hook failed, or its stop hook panicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerFailure {
    /// The runner's number.
    pub runner: usize,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for RunnerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "runner {}: {}", self.runner, self.message)
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Items `dispatch` sent successfully.
    pub dispatched: u64,
    /// Items `perform` was called on, failed ones included. Less than `dispatched` when the
    /// run stopped early.
    pub performed: u64,
    /// Items whose `perform` returned `Err` or panicked.
    pub failed: u64,
    /// The whole run, from starting the runners to the last one ending.
    pub elapsed: Duration,
    /// The failed items with the lowest sequence numbers, at most
    /// [`MAX_REPORTED_FAILURES`], in sequence order.
    pub failures: Vec<ItemFailure>,
    /// Runners that ended abnormally, by number.
    pub runner_failures: Vec<RunnerFailure>,
    /// Why `dispatch` ended the run early, if it returned `Err` or panicked.
    pub dispatch_error: Option<String>,
    /// Whether the [`StopHandle`] was used.
    pub stopped: bool,
}

impl RunReport {
    /// Whether every dispatched item was performed without failure and nothing else went
    /// wrong.
    pub fn is_success(&self) -> bool {
        self.performed == self.dispatched
            && self.failed == 0
            && self.runner_failures.is_empty()
            && self.dispatch_error.is_none()
            && !self.stopped
    }
}

/// Runs [`ParallelJob`]s with N runners: `Parallel::new(n).run(&job)`.
#[derive(Debug)]
pub struct Parallel {
    runners: usize,
    chunk_size: usize,
    queued_chunks: usize,
    max_wait: Duration,
    stop: StopHandle,
}

impl Parallel {
    /// `runners` runner threads (at least one), chunks of 1024 items, two queued chunks per
    /// runner, and a 5 ms wait before a runner takes a chunk that is still filling.
    pub fn new(runners: usize) -> Self {
        let runners = runners.max(1);
        Parallel {
            runners,
            chunk_size: DEFAULT_CHUNK_SIZE,
            queued_chunks: 2 * runners,
            max_wait: DEFAULT_MAX_WAIT,
            stop: StopHandle::default(),
        }
    }

    /// How many items (at least one) dispatch gathers before handing them to the runners.
    pub fn chunk_size(mut self, items: usize) -> Self {
        self.chunk_size = items.max(1);
        self
    }

    /// How many full chunks (at least one) may wait for a runner before `send` blocks.
    pub fn queued_chunks(mut self, chunks: usize) -> Self {
        self.queued_chunks = chunks.max(1);
        self
    }

    /// How long an idle runner waits before taking the chunk dispatch is still filling.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// A handle that stops this `Parallel`'s runs; get it before running.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// The most items that can be sent but not yet performed at any moment: the queued
    /// chunks, the chunk being filled, and one chunk held by each runner.
    pub fn max_in_flight(&self) -> usize {
        (self.queued_chunks + 1 + self.runners) * self.chunk_size
    }

    /// Runs `job`: `dispatch` on this thread, `perform` on the runners, until dispatch has
    /// ended and every item sent is performed, or the run is stopped.
    pub fn run<J: ParallelJob>(&self, job: &J) -> RunReport {
        let started = Instant::now();
        let engine = Engine::new(self);
        let (dispatch_error, outcomes) = thread::scope(|scope| {
            let engine = &engine;
            let mut runners = Vec::with_capacity(self.runners);
            let mut outcomes = Vec::with_capacity(self.runners);
            for number in 1..=self.runners {
                let info = RunnerInfo {
                    number,
                    runners: self.runners,
                };
                let spawned = thread::Builder::new()
                    .name(format!("wrangle-runner-{number}"))
                    .spawn_scoped(scope, move || run_runner(job, engine, info));
                match spawned {
                    Ok(runner) => runners.push((number, runner)),
                    Err(error) => {
                        engine.runner_ended();
                        outcomes.push(RunnerOutcome::failed(
                            number,
                            format!("could not start its thread: {error}"),
                        ));
                    }
                }
            }
            let dispatch_error = engine.dispatch(job);
            for (number, runner) in runners {
                // Everything the runner calls is behind catch_unwind, so this is a bug
                // in the engine; still report it rather than crash the run.
                outcomes.push(runner.join().unwrap_or_else(|panic| {
                    RunnerOutcome::failed(
                        number,
                        format!("runner thread panicked: {}", panic_message(panic)),
                    )
                }));
            }
            (dispatch_error, outcomes)
        });

        let mut report = RunReport {
            dispatched: lock(&engine.pending).next_seq,
            performed: 0,
            failed: 0,
            elapsed: started.elapsed(),
            failures: Vec::new(),
            runner_failures: Vec::new(),
            dispatch_error,
            stopped: self.stop.is_stopped(),
        };
        for outcome in outcomes {
            report.performed += outcome.performed;
            report.failed += outcome.failed;
            report.failures.extend(outcome.failures);
            report.runner_failures.extend(outcome.failure);
        }
        // Each runner takes items in sequence order and keeps its first failures, so the
        // lowest sequence numbers overall are among those kept.
        report.failures.sort_by_key(|failure| failure.seq);
        report.failures.truncate(MAX_REPORTED_FAILURES);
        report.runner_failures.sort_by_key(|failure| failure.runner);
        report
    }
}

/// Runs `job` with `runners` runners and default settings; see [`Parallel`].
pub fn run<J: ParallelJob>(job: &J, runners: usize) -> RunReport {
    Parallel::new(runners).run(job)
}

/// Hands items from `dispatch` to the runners.
pub struct Dispatcher<'run, T> {
    engine: &'run Engine<T>,
}

impl<T> Dispatcher<'_, T> {
    /// Queues `item` for a runner. Blocks while the queue is full; fails once the run is
    /// stopping, and dispatch should then return.
    pub fn send(&mut self, item: T) -> Result<(), Stopped> {
        let engine = self.engine;
        if engine.halted() {
            return Err(Stopped);
        }
        let mut pending = lock(&engine.pending);
        // A full chunk is queued on the next send rather than right away, so that when
        // queueing fails it is this item that is refused: every `Ok` was a sent item.
        if pending.items.len() >= engine.chunk_size {
            let chunk = pending.take(engine.chunk_size);
            drop(pending);
            engine.enqueue(chunk)?;
            pending = lock(&engine.pending);
        }
        pending.push(item);
        Ok(())
    }
}

impl<T> fmt::Debug for Dispatcher<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher").finish_non_exhaustive()
    }
}

/// Consecutive items, starting at sequence number `first_seq`.
struct Chunk<T> {
    first_seq: u64,
    items: VecDeque<T>,
}

/// The chunk dispatch is filling. Only the dispatching thread adds to it; an idle runner
/// may take it when it has waited too long.
struct Pending<T> {
    next_seq: u64,
    items: Vec<T>,
    oldest_since: Instant,
}

impl<T> Pending<T> {
    fn push(&mut self, item: T) {
        if self.items.is_empty() {
            self.oldest_since = Instant::now();
        }
        self.items.push(item);
        self.next_seq += 1;
    }

    /// Takes the items as a chunk, leaving room for `refill` more.
    fn take(&mut self, refill: usize) -> Chunk<T> {
        let items = mem::replace(&mut self.items, Vec::with_capacity(refill));
        Chunk {
            first_seq: self.next_seq - items.len() as u64,
            items: VecDeque::from(items),
        }
    }
}

/// The full chunks waiting for runners, and what tells runners and dispatch to stop
/// waiting for each other.
struct Queue<T> {
    chunks: VecDeque<Chunk<T>>,
    dispatch_ended: bool,
    runners_alive: usize,
}

/// The state one run's dispatcher and runners share.
struct Engine<T> {
    chunk_size: usize,
    queued_chunks: usize,
    max_wait: Duration,
    stop: StopHandle,
    /// Set when dispatch failed: the run stops as if stopped, but the caller's stop handle
    /// stays untouched.
    dispatch_failed: AtomicBool,
    /// Lock order: `queue` before `pending`. Dispatch never holds both.
    queue: Mutex<Queue<T>>,
    chunk_ready: Condvar,
    space_free: Condvar,
    pending: Mutex<Pending<T>>,
}

impl<T> Engine<T> {
    fn new(settings: &Parallel) -> Self {
        Engine {
            chunk_size: settings.chunk_size,
            queued_chunks: settings.queued_chunks,
            max_wait: settings.max_wait,
            stop: settings.stop.clone(),
            dispatch_failed: AtomicBool::new(false),
            queue: Mutex::new(Queue {
                chunks: VecDeque::with_capacity(settings.queued_chunks + 1),
                dispatch_ended: false,
                runners_alive: settings.runners,
            }),
            chunk_ready: Condvar::new(),
            space_free: Condvar::new(),
            pending: Mutex::new(Pending {
                next_seq: 0,
                items: Vec::with_capacity(settings.chunk_size),
                oldest_since: Instant::now(),
            }),
        }
    }

    fn halted(&self) -> bool {
        self.stop.is_stopped() || self.dispatch_failed.load(Ordering::Relaxed)
    }

    /// Runs `dispatch`, then flushes what it left pending and tells the runners no more is
    /// coming. Returns the dispatch error to report, if any.
    fn dispatch<J: ParallelJob<Item = T>>(&self, job: &J) -> Option<String> {
        let mut dispatcher = Dispatcher { engine: self };
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| job.dispatch(&mut dispatcher)));
        let error = match outcome {
            Ok(Ok(())) => None,
            // `send` failed and dispatch passed that on with `?`: the run is stopping for
            // another reason, which is reported on its own.
            Ok(Err(error)) if error.is::<Stopped>() => None,
            Ok(Err(error)) => Some(error.to_string()),
            Err(panic) => Some(format!("dispatch panicked: {}", panic_message(panic))),
        };
        if error.is_some() {
            self.dispatch_failed.store(true, Ordering::Relaxed);
        } else {
            let rest = {
                let mut pending = lock(&self.pending);
                // Nothing follows, so the emptied chunk needs no room.
                (!pending.items.is_empty()).then(|| pending.take(0))
            };
            if let Some(chunk) = rest {
                // If the run is stopping these items are dropped, which the report's
                // dispatched and performed counts show.
                let _ = self.enqueue(chunk);
            }
        }
        lock(&self.queue).dispatch_ended = true;
        self.chunk_ready.notify_all();
        error
    }

    /// Puts a full chunk in the queue, waiting while it is full.
    fn enqueue(&self, chunk: Chunk<T>) -> Result<(), Stopped> {
        let mut queue = lock(&self.queue);
        loop {
            if self.halted() || queue.runners_alive == 0 {
                return Err(Stopped);
            }
            if queue.chunks.len() < self.queued_chunks {
                queue.chunks.push_back(chunk);
                drop(queue);
                self.chunk_ready.notify_one();
                return Ok(());
            }
            queue = self
                .space_free
                .wait_timeout(queue, STOP_POLL)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The next batch of at most `max_items` items for a runner; `None` when the runner
    /// should stop.
    fn next_batch(&self, max_items: usize) -> Option<Chunk<T>> {
        let mut queue = lock(&self.queue);
        loop {
            if self.halted() {
                return None;
            }
            let queued = queue.chunks.len();
            if let Some(batch) = take_batch(&mut queue.chunks, max_items) {
                let freed_space = queue.chunks.len() < queued;
                let more_left = !queue.chunks.is_empty();
                drop(queue);
                if freed_space {
                    self.space_free.notify_one();
                }
                // Chunks are announced one wake-up each; pass it on so idle runners share
                // what is left instead of sleeping through it.
                if more_left {
                    self.chunk_ready.notify_one();
                }
                return Some(batch);
            }
            if queue.dispatch_ended {
                return None;
            }
            queue = self
                .chunk_ready
                .wait_timeout(queue, self.max_wait.min(STOP_POLL))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            if queue.chunks.is_empty()
                && let Some(chunk) = self.take_stale_pending()
            {
                queue.chunks.push_back(chunk);
            }
        }
    }

    /// The chunk dispatch is filling, if its oldest item has waited `max_wait`: dispatch is
    /// slow (or blocked in its source) and runners are idle.
    fn take_stale_pending(&self) -> Option<Chunk<T>> {
        let mut pending = lock(&self.pending);
        let stale = !pending.items.is_empty() && pending.oldest_since.elapsed() >= self.max_wait;
        stale.then(|| pending.take(self.chunk_size))
    }

    fn runner_ended(&self) {
        lock(&self.queue).runners_alive -= 1;
        // A dispatch blocked on a full queue must not wait for runners that are gone.
        self.space_free.notify_one();
    }
}

/// Takes up to `max_items` from the front chunk: all of it when it fits, so tiny items move
/// a chunk at a time without copying.
fn take_batch<T>(chunks: &mut VecDeque<Chunk<T>>, max_items: usize) -> Option<Chunk<T>> {
    let front = chunks.front_mut()?;
    if front.items.len() <= max_items {
        return chunks.pop_front();
    }
    let batch = Chunk {
        first_seq: front.first_seq,
        items: front.items.drain(..max_items).collect(),
    };
    front.first_seq += max_items as u64;
    Some(batch)
}

/// How many items to take next so the batch lasts about [`BATCH_TARGET`], judging by how
/// long the last `count` items took.
fn batch_size(took: Duration, count: usize, chunk_size: usize) -> usize {
    let per_item = (took.as_nanos() / count.max(1) as u128).max(1);
    let fits = BATCH_TARGET.as_nanos() / per_item;
    usize::try_from(fits)
        .unwrap_or(usize::MAX)
        .clamp(1, chunk_size)
}

/// What one runner did.
#[derive(Default)]
struct RunnerOutcome {
    performed: u64,
    failed: u64,
    failures: Vec<ItemFailure>,
    failure: Option<RunnerFailure>,
}

impl RunnerOutcome {
    fn failed(runner: usize, message: String) -> Self {
        RunnerOutcome {
            failure: Some(RunnerFailure { runner, message }),
            ..RunnerOutcome::default()
        }
    }
}

/// Counts the runner out however its thread ends, so dispatch never waits for it.
struct RunnerAlive<'run, T>(&'run Engine<T>);

impl<T> Drop for RunnerAlive<'_, T> {
    fn drop(&mut self) {
        self.0.runner_ended();
    }
}

fn run_runner<J: ParallelJob>(
    job: &J,
    engine: &Engine<J::Item>,
    info: RunnerInfo,
) -> RunnerOutcome {
    let _alive = RunnerAlive(engine);
    let start = panic::catch_unwind(AssertUnwindSafe(|| job.runner_started(&info)));
    let start_error = match start {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(format!("runner_started failed: {error}")),
        Err(panic) => Some(format!("runner_started panicked: {}", panic_message(panic))),
    };
    if let Some(message) = start_error {
        return RunnerOutcome::failed(info.number, message);
    }

    let mut outcome = RunnerOutcome::default();
    // One item first: how long it takes sizes the following batches.
    let mut max_items = 1;
    while let Some(batch) = engine.next_batch(max_items) {
        let started = Instant::now();
        let count = batch.items.len();
        for (seq, item) in (batch.first_seq..).zip(batch.items) {
            let performed = panic::catch_unwind(AssertUnwindSafe(|| job.perform(item, &info)));
            outcome.performed += 1;
            let message = match performed {
                Ok(Ok(())) => continue,
                Ok(Err(error)) => error.to_string(),
                Err(panic) => format!("panicked: {}", panic_message(panic)),
            };
            outcome.failed += 1;
            if outcome.failures.len() < MAX_REPORTED_FAILURES {
                outcome.failures.push(ItemFailure {
                    seq,
                    runner: info.number,
                    message,
                });
            }
        }
        max_items = batch_size(started.elapsed(), count, engine.chunk_size);
    }

    let stop = panic::catch_unwind(AssertUnwindSafe(|| job.runner_stopped(&info)));
    if let Err(panic) = stop {
        outcome.failure = Some(RunnerFailure {
            runner: info.number,
            message: format!("runner_stopped panicked: {}", panic_message(panic)),
        });
    }
    outcome
}

fn panic_message(panic: Box<dyn Any + Send>) -> String {
    match panic.downcast::<String>() {
        Ok(message) => *message,
        Err(panic) => match panic.downcast_ref::<&str>() {
            Some(message) => (*message).to_string(),
            None => "a panic without a message".to_string(),
        },
    }
}

/// Locks `mutex` even if poisoned: user code runs outside every lock, so a poisoned lock
/// can only come from a panic between consistent states.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
