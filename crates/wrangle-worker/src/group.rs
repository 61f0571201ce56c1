//! A pool group: runners claiming from the same queues, and its claim loop.
//!
//! A group's capacity is a target count of runners, not a semaphore: the claim loop takes
//! `target - running` tasks at most, so lowering the target stops claims until enough
//! running tasks have finished (the runners being removed finish their tasks first), and
//! raising it lets the loop claim at once. Only the loop itself increases `running`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tracing::Instrument as _;

use tokio::sync::{Notify, mpsc};
use wrangle_core::TaskId;
use wrangle_core::pool::PoolGroup;
use wrangle_core::store::{ClaimRequest, QueueFilter, Topic};
use wrangle_core::worker::GroupInfo;
use wrangle_exec::Failure;

use crate::completer::Finished;
use crate::{RETRY_FIRST, RETRY_MAX, Shared, run_attempt};

/// One pool group of a running worker.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) name: String,
    pub(crate) queues: QueueFilter,
    target: AtomicUsize,
    /// Busy runners. Not `tasks.len()`: after a lease lapsed this worker may claim the new
    /// attempt of a task whose old attempt it still runs, and the set holds the id once.
    running: AtomicUsize,
    /// Woken when a runner frees up or the target changes.
    changed: Notify,
    tasks: Mutex<BTreeSet<TaskId>>,
}

impl Group {
    pub(crate) fn new(group: &PoolGroup) -> Arc<Self> {
        Arc::new(Group {
            name: group.name.clone(),
            queues: group.queues.clone(),
            target: AtomicUsize::new(group.runners as usize),
            running: AtomicUsize::new(0),
            changed: Notify::new(),
            tasks: Mutex::new(BTreeSet::new()),
        })
    }

    /// Runners it should have.
    pub(crate) fn target(&self) -> usize {
        self.target.load(Ordering::SeqCst)
    }

    /// Runners busy with a task (more than the target while removed ones finish).
    pub(crate) fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    fn free(&self) -> usize {
        self.target().saturating_sub(self.running())
    }

    /// Sets the runner count; returns the previous one.
    pub(crate) fn set_target(&self, runners: usize) -> usize {
        let previous = self.target.swap(runners, Ordering::SeqCst);
        self.changed.notify_waiters();
        previous
    }

    /// What `status WORKER` shows of it.
    pub(crate) fn info(&self) -> GroupInfo {
        GroupInfo {
            name: self.name.clone(),
            runners: self.target() as u32,
            tasks: self
                .tasks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .copied()
                .collect(),
        }
    }

    /// Waits until `ready()` holds, re-checking whenever runners or the target change.
    async fn wait_until(&self, ready: impl Fn(&Self) -> bool) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if ready(self) {
                return;
            }
            notified.await;
        }
    }

    /// Waits until none of its runners is busy.
    pub(crate) async fn wait_idle(&self) {
        self.wait_until(|g| g.running() == 0).await;
    }

    fn started(&self, id: TaskId) {
        self.running.fetch_add(1, Ordering::SeqCst);
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id);
    }

    fn ended(&self, id: TaskId) {
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }
}

/// The group's claim loop: wait for a free runner, linger briefly for more so a burst of
/// short tasks is claimed in one round trip, claim, start each task; sleep on the store's
/// `Tasks` notification when its queues are drained. Ends when `stop_claiming` fires.
pub(crate) async fn claim_loop(
    group: Arc<Group>,
    shared: Arc<Shared>,
    finished_tx: mpsc::UnboundedSender<Finished>,
) {
    let stop_claiming = &shared.loops.stop_claiming;
    let abort_all = &shared.loops.abort_all;
    let config = &shared.config;
    let store = &shared.store;
    let mut listener = loop {
        match store.listen(Topic::Tasks).await {
            Ok(listener) => break listener,
            Err(err) => {
                tracing::warn!(error = %err, group = %group.name, "cannot listen for new tasks; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(RETRY_MAX) => {}
                    _ = stop_claiming.cancelled() => return,
                }
            }
        }
    };
    let mut store_backoff = RETRY_FIRST;
    while !stop_claiming.is_cancelled() {
        tokio::select! {
            _ = group.wait_until(|g| g.free() > 0) => {}
            _ = stop_claiming.cancelled() => break,
        }
        let linger_target = config.batch_size.min(group.target()).div_ceil(2).max(1);
        if group.free() < linger_target {
            tokio::select! {
                _ = group.wait_until(|g| g.free() >= linger_target) => {}
                _ = tokio::time::sleep(Duration::from_millis(2)) => {}
                _ = stop_claiming.cancelled() => break,
            }
        }
        let want = group.free().min(config.batch_size);
        if want == 0 {
            continue;
        }
        // A select above may have woken for a free runner as the shutdown began: once
        // told to stop claiming, claim nothing more (`wrangle run --halt` relies on it).
        if stop_claiming.is_cancelled() {
            break;
        }
        let request = ClaimRequest {
            worker: config.name.clone(),
            queues: group.queues.clone(),
            limit: want,
            lease: config.lease,
            now: config.now(),
        };
        let claimed = match store.claim_batch(request).await {
            Ok(claimed) => {
                store_backoff = RETRY_FIRST;
                claimed
            }
            Err(err) => {
                tracing::warn!(error = %err, retry_in = ?store_backoff, "claim failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(store_backoff) => {}
                    _ = stop_claiming.cancelled() => break,
                }
                store_backoff = (store_backoff * 2).min(RETRY_MAX);
                continue;
            }
        };
        let got = claimed.len();
        for task in claimed {
            group.started(task.id);
            let cancel = abort_all.child_token();
            shared.held.insert(task.id, task.attempt, cancel.clone());
            let executor = shared.executor(&task.kind);
            let finished_tx = finished_tx.clone();
            let group = group.clone();
            let shared = shared.clone();
            let span = tracing::info_span!(
                "attempt",
                task = task.id,
                kind = %task.kind,
                queue = %task.queue,
                attempt = task.attempt
            );
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let result = match executor {
                    Some(executor) => {
                        run_attempt(executor, &task, cancel.clone())
                            .instrument(span)
                            .await
                    }
                    None => Err(Failure(format!(
                        "no handler for kind '{}' on this worker",
                        task.kind
                    ))),
                };
                if let Some(metrics) = &shared.metrics {
                    let outcome = match (&result, cancel.is_cancelled()) {
                        (_, true) => "cancelled",
                        (Ok(_), false) => "succeeded",
                        (Err(_), false) => "failed",
                    };
                    metrics.attempt(&task.queue, &task.kind, outcome, started.elapsed());
                }
                shared.held.finishing(task.id);
                group.ended(task.id);
                let _ = finished_tx.send(Finished {
                    task,
                    result,
                    cancelled: cancel.is_cancelled(),
                });
            });
        }
        if got < want {
            // The queues are drained: sleep until something is enqueued (or a delayed
            // task may have become due).
            tokio::select! {
                woke = listener.wait(config.idle_recheck) => {
                    if let Err(err) = woke {
                        tracing::warn!(error = %err, "listening for new tasks failed");
                        tokio::time::sleep(config.idle_recheck).await;
                    }
                }
                _ = stop_claiming.cancelled() => break,
            }
        }
    }
}
