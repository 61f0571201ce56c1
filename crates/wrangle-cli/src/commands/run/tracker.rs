//! Accounting for one `wrangle run`: which items are still outstanding, the window that
//! bounds how many are in the store at once, the counts for the summary, the progress
//! bar, the moment the last item ends, and `--halt` (stopping the run when the counts
//! meet its condition).
//!
//! The feeder [`Tracker::track`]s each task it enqueued; the worker reports outcomes
//! through [`OutcomeObserver`]. The two race (a task can end before its feeder has
//! tracked it), so both sides go through one lock and whoever comes second settles it.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::ProgressBar;
use tokio::sync::{Notify, Semaphore};
use wrangle::halt::{Halt, HaltWhen};
use wrangle::store::{Completion, CompletionStatus, Outcome};
use wrangle::{OutcomeObserver, Shutdown, TaskId, TaskState};

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RunCounts {
    /// Items that succeeded.
    pub(crate) done: u64,
    /// Items that failed their last attempt.
    pub(crate) failed: u64,
    /// Failed attempts that were retried.
    pub(crate) retried: u64,
    /// Items skipped because the journal says an earlier run did them.
    pub(crate) skipped: u64,
}

#[derive(Debug, Default)]
struct Outstanding {
    /// Enqueued and not yet ended.
    tasks: HashSet<TaskId>,
    /// Ended before the feeder tracked them.
    ended_early: HashSet<TaskId>,
    /// Items whose attempt failed, by task id: sequence number and text, for the message
    /// if the item fails for good.
    failed_items: HashMap<TaskId, (u64, String)>,
    /// The source has no more items.
    source_done: bool,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Tracker {
    /// Free places for items in the store; the feeder takes one per item.
    pub(crate) window: Semaphore,
    outstanding: Mutex<Outstanding>,
    done: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    skipped: AtomicU64,
    finished: Notify,
    bar: Option<ProgressBar>,
    /// `--halt`, and the run's shutdown it pulls.
    halt: Option<(Halt, Shutdown)>,
    /// Items that succeeded and failed for good, counted for `--halt` as attempts end.
    ended_for_halt: Mutex<(u64, u64)>,
    halted: std::sync::atomic::AtomicBool,
}

impl Tracker {
    pub(crate) fn new(
        window: usize,
        bar: Option<ProgressBar>,
        halt: Option<(Halt, Shutdown)>,
    ) -> Self {
        Tracker {
            window: Semaphore::new(window),
            outstanding: Mutex::default(),
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            finished: Notify::new(),
            bar,
            halt,
            ended_for_halt: Mutex::default(),
            halted: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether `--halt` stopped the run.
    pub(crate) fn halted(&self) -> bool {
        self.halted.load(Ordering::Relaxed)
    }

    /// An item's last attempt ended (it succeeded, or failed with no retry left): stops
    /// the run when the counts meet `--halt`'s condition, so that nothing new starts, and
    /// with `now` running items are stopped too. Called by the executor before it returns,
    /// that is before the worker can start the next item, which the outcome (recorded
    /// after) would be too late for.
    pub(crate) fn last_attempt_ended(&self, succeeded: bool) {
        let Some((halt, shutdown)) = &self.halt else {
            return;
        };
        let (done, failed) = {
            let mut ended = self
                .ended_for_halt
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if succeeded {
                ended.0 += 1;
            } else {
                ended.1 += 1;
            }
            *ended
        };
        if halt.reached(done, failed) && !self.halted.swap(true, Ordering::Relaxed) {
            shutdown.graceful.cancel();
            if halt.when == HaltWhen::Now {
                shutdown.immediate.cancel();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Outstanding> {
        self.outstanding.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The feeder enqueued task `id` (its window place is taken).
    pub(crate) fn track(&self, id: TaskId) {
        let mut outstanding = self.lock();
        if outstanding.ended_early.remove(&id) {
            self.window.add_permits(1);
        } else {
            outstanding.tasks.insert(id);
        }
    }

    /// Task `id` was found completed when the feeder enqueued its item again (a rerun
    /// with a journal). Returns true when an earlier run did it (the item is skipped),
    /// false when this run's worker already claimed and finished it before the feeder
    /// got there (it was counted and printed as done). Either way its window place is free.
    pub(crate) fn found_completed(&self, id: TaskId) -> bool {
        let ran_now = self.lock().ended_early.remove(&id);
        self.window.add_permits(1);
        if !ran_now {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            if let Some(bar) = &self.bar {
                bar.inc(1);
            }
        }
        !ran_now
    }

    /// An attempt of task `id` (item `seq`) failed: remember the item for a failure message.
    pub(crate) fn attempt_failed(&self, id: TaskId, seq: u64, item: String) {
        self.lock().failed_items.insert(id, (seq, item));
    }

    /// The source is exhausted after `total` items.
    pub(crate) fn source_done(&self, total: u64) {
        if let Some(bar) = &self.bar {
            crate::progress::set_total(bar, total, "items");
        }
        let mut outstanding = self.lock();
        outstanding.source_done = true;
        if outstanding.tasks.is_empty() {
            self.finished.notify_one();
        }
    }

    /// Waits until the source is exhausted and every tracked item has ended.
    pub(crate) async fn all_ended(&self) {
        loop {
            let notified = self.finished.notified();
            {
                let outstanding = self.lock();
                if outstanding.source_done && outstanding.tasks.is_empty() {
                    return;
                }
            }
            notified.await;
        }
    }

    pub(crate) fn counts(&self) -> RunCounts {
        // `--halt now` stops the worker at once, possibly before it has recorded the
        // very outcomes that met the condition: the items counted as their last attempt
        // ended are at least as many, and they are what happened.
        let (ended_done, ended_failed) = *self
            .ended_for_halt
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        RunCounts {
            done: self.done.load(Ordering::Relaxed).max(ended_done),
            failed: self.failed.load(Ordering::Relaxed).max(ended_failed),
            retried: self.retried.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
        }
    }

    /// Task `id` ended for good; returns its item if an attempt of it failed in this run.
    fn ended(&self, id: TaskId) -> Option<(u64, String)> {
        let mut outstanding = self.lock();
        if outstanding.tasks.remove(&id) {
            self.window.add_permits(1);
            if outstanding.source_done && outstanding.tasks.is_empty() {
                self.finished.notify_one();
            }
        } else {
            outstanding.ended_early.insert(id);
        }
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        outstanding.failed_items.remove(&id)
    }
}

impl OutcomeObserver for Tracker {
    fn recorded(&self, completion: &Completion, status: CompletionStatus) {
        let CompletionStatus::Applied(state) = status else {
            return;
        };
        match state {
            TaskState::Completed => {
                self.done.fetch_add(1, Ordering::Relaxed);
                self.ended(completion.id);
            }
            TaskState::Dead | TaskState::Cancelled => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let item = self.ended(completion.id);
                if let (Some((seq, text)), Outcome::Failed { error, .. }) =
                    (item, &completion.outcome)
                {
                    let message = format!(
                        "wrangle: item {seq} ({}) failed after {} attempt{}: {error}",
                        wrangle::parse::shorten(&text, 59),
                        completion.attempt,
                        if completion.attempt == 1 { "" } else { "s" }
                    );
                    match &self.bar {
                        Some(bar) => bar.suspend(|| eprintln!("{message}")),
                        None => eprintln!("{message}"),
                    }
                }
            }
            TaskState::Retryable => {
                self.retried.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}
