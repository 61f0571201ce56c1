//! Records finished attempts in batches: waits for one, takes every other one already
//! waiting, and writes them all with one `complete_batch`. Under load this batches by
//! itself; when idle, a single outcome is written at once.
//!
//! A store outage does not lose outcomes: the batch is retried with backoff until it is
//! written. Leases stay held (and heartbeated) meanwhile, so nothing is rescued behind the
//! worker's back while it waits.

use std::sync::Arc;

use tokio::sync::mpsc;
use wrangle_core::store::{ClaimedTask, Completion, CompletionStatus, Outcome, Store};
use wrangle_exec::ExecResult;

use crate::held::HeldTasks;
use crate::{OutcomeObserver, RETRY_FIRST, RETRY_MAX, WorkerConfig, WorkerReport, outcome_for};

/// Most outcomes written in one round trip.
const MAX_BATCH: usize = 1000;

/// One attempt that ended.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) task: ClaimedTask,
    pub(crate) result: ExecResult,
    /// The attempt was cancelled (shutdown, or the lease was lost).
    pub(crate) cancelled: bool,
}

pub(crate) async fn run(
    store: Arc<dyn Store>,
    config: Arc<WorkerConfig>,
    held: Arc<HeldTasks>,
    mut finished: mpsc::UnboundedReceiver<Finished>,
    observer: Option<Arc<dyn OutcomeObserver>>,
) -> WorkerReport {
    let mut report = WorkerReport::default();
    let mut buffer = Vec::with_capacity(MAX_BATCH);
    while finished.recv_many(&mut buffer, MAX_BATCH).await > 0 {
        let mut completions = Vec::with_capacity(buffer.len());
        let mut dropped = Vec::new();
        for done in buffer.drain(..) {
            if held.is_lost(done.task.id) {
                // Cancelled or rescued elsewhere: the store no longer expects this outcome.
                dropped.push(done.task.id);
                continue;
            }
            if let Err(err) = &done.result
                && !done.cancelled
            {
                tracing::info!(task = done.task.id, kind = %done.task.kind, attempt = done.task.attempt, error = %err, "attempt failed");
            }
            completions.push(Completion {
                id: done.task.id,
                attempt: done.task.attempt,
                worker: config.name.clone(),
                outcome: outcome_for(
                    &done.task,
                    done.result,
                    done.cancelled,
                    &config.retry_policy,
                    config.now(),
                ),
            });
        }
        held.remove_all(dropped);
        if completions.is_empty() {
            continue;
        }
        let mut backoff = RETRY_FIRST;
        // Whether the store answered (so a stale status is its word, worth a warning).
        let mut answered = true;
        let statuses = loop {
            match store.complete_batch(&completions, config.now()).await {
                Ok(statuses) => break statuses,
                Err(err) if err.is_transient() => {
                    tracing::warn!(error = %err, retry_in = ?backoff, pending = completions.len(), "store unavailable; outcomes kept, retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RETRY_MAX);
                }
                Err(err) => {
                    // Not a connection problem: retrying will not help. The leases lapse
                    // and the tasks run again elsewhere (at least once, never lost).
                    tracing::error!(error = %err, "recording outcomes failed; the tasks will be retried after their leases expire");
                    answered = false;
                    break vec![CompletionStatus::Stale; completions.len()];
                }
            }
        };
        for (status, completion) in statuses.iter().zip(&completions) {
            if let Some(observer) = &observer {
                observer.recorded(completion, *status);
            }
            match (status, &completion.outcome) {
                (CompletionStatus::Stale, _) => {
                    if answered {
                        tracing::warn!(
                            task = completion.id,
                            attempt = completion.attempt,
                            "outcome not recorded: the task was taken from this worker meanwhile (cancelled, or its lease expired and it was rescued)"
                        );
                    }
                    report.stale += 1;
                }
                (_, Outcome::Succeeded { .. }) => report.succeeded += 1,
                (_, Outcome::Failed { .. }) => report.failed += 1,
                (_, Outcome::Released { .. }) => report.released += 1,
            }
        }
        held.remove_all(completions.iter().map(|c| c.id));
    }
    report
}
