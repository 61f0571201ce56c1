//! The worker loop: claim a batch, run each task on its executor, record outcomes in
//! batches, keep leases alive, and hand unfinished work back on shutdown.
//!
//! Three concurrent parts share one [`held::HeldTasks`] table (what this worker holds):
//! - the claimer ([`Worker::run`]'s loop) claims as many tasks as there are free runner
//!   slots (up to the batch size), and sleeps on the store's `Tasks` notification when
//!   the queues are empty;
//! - the [`completer`] collects finished attempts and records them with one
//!   `complete_batch` per burst;
//! - the [`heartbeat`] extends the leases of everything held, refreshes the worker's
//!   registration, rescues other workers' expired leases, and reads the mailbox.
//!
//! A runner slot is freed as soon as its attempt ends, before the outcome is written, so
//! claiming and completing overlap; the lease stays in the heartbeat until the outcome is
//! recorded, so a slow store never lets a finished task's lease lapse.

mod completer;
mod heartbeat;
mod held;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use wrangle_core::RetryPolicy;
use wrangle_core::store::{
    ClaimRequest, ClaimedTask, Completion, CompletionStatus, Outcome, QueueFilter, Store,
    StoreError, Topic,
};
use wrangle_core::worker::WorkerInfo;
use wrangle_exec::{ExecResult, Failure, Registry};

use completer::Finished;
use held::HeldTasks;

/// How a worker behaves. `WorkerConfig::new` gives sensible defaults.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Unique worker name (default `HOST-PID`).
    pub name: String,
    /// Queues to claim from.
    pub queues: QueueFilter,
    /// Runner slots: tasks running at once.
    pub runners: usize,
    /// Most tasks claimed in one round trip.
    pub batch_size: usize,
    /// Lease length; heartbeats renew it every third of it.
    pub lease: Duration,
    /// How long a graceful shutdown waits for running tasks before handing them back.
    pub shutdown_timeout: Duration,
    /// Backoff between failed attempts.
    pub retry_policy: RetryPolicy,
    /// Longest sleep while idle, so delayed and retryable tasks that become due are
    /// picked up even though nothing notifies about the passage of time.
    pub idle_recheck: Duration,
}

impl WorkerConfig {
    /// Defaults: every queue, one runner per CPU, batches of 100, 30 s leases.
    pub fn new() -> Self {
        WorkerConfig {
            name: format!("{}-{}", hostname(), std::process::id()),
            queues: QueueFilter::All,
            runners: std::thread::available_parallelism().map_or(2, |n| n.get()),
            batch_size: 100,
            lease: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(30),
            retry_policy: RetryPolicy::default(),
            idle_recheck: Duration::from_millis(250),
        }
    }

    fn info(&self, tasks: Vec<i64>, started_at: DateTime<Utc>) -> WorkerInfo {
        WorkerInfo {
            name: self.name.clone(),
            host: hostname(),
            pid: std::process::id(),
            queues: self.queues.names(),
            runners: self.runners as u32,
            tasks,
            started_at,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// This machine's host name.
fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig::new()
    }
}

/// Tells a running worker to stop: `graceful` stops claiming and lets running tasks end
/// (within the shutdown timeout); `immediate` stops them now and hands them back.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Stop claiming, finish running tasks.
    pub graceful: CancellationToken,
    /// Stop running tasks now.
    pub immediate: CancellationToken,
}

impl Shutdown {
    /// A fresh pair of untriggered tokens.
    pub fn new() -> Self {
        Shutdown::default()
    }
}

/// What a worker did, returned when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Attempts that succeeded.
    pub succeeded: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Tasks handed back unfinished at shutdown.
    pub released: u64,
    /// Completions the store refused because the lease had been lost.
    pub stale: u64,
}

/// Told about every outcome the store recorded, in the order recorded: what a caller
/// running its own items (`wrangle run`) counts and reports.
pub trait OutcomeObserver: Send + Sync + 'static {
    /// `completion` was written; `status` says what became of the task.
    fn recorded(&self, completion: &Completion, status: CompletionStatus);
}

/// A worker bound to a store and a registry of executors.
pub struct Worker {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    config: WorkerConfig,
    observer: Option<Arc<dyn OutcomeObserver>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("store", &self.store)
            .field("registry", &self.registry)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// First and longest pause after a store error.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

impl Worker {
    /// A worker that runs tasks from `store` with `registry`.
    pub fn new(store: Arc<dyn Store>, registry: Registry, config: WorkerConfig) -> Self {
        Worker {
            store,
            registry: Arc::new(registry),
            config,
            observer: None,
        }
    }

    /// Reports every recorded outcome to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn OutcomeObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Runs until `shutdown` fires (or a `stop` command arrives), then hands back what it
    /// could not finish and deregisters.
    pub async fn run(self, shutdown: Shutdown) -> Result<WorkerReport, StoreError> {
        let config = Arc::new(self.config);
        let store = self.store;
        let held = Arc::new(HeldTasks::default());
        // Cancels every running attempt; fired by an immediate shutdown or when a graceful
        // one runs out of time.
        let abort_all = CancellationToken::new();
        let stop_claiming = shutdown.graceful.clone();

        let started_at = Utc::now();
        store
            .register_worker(config.info(Vec::new(), started_at), started_at)
            .await?;
        let mut listener = store.listen(Topic::Tasks).await?;

        let (finished_tx, finished_rx) = mpsc::unbounded_channel::<Finished>();
        let completer = tokio::spawn(completer::run(
            store.clone(),
            config.clone(),
            held.clone(),
            finished_rx,
            self.observer.clone(),
        ));
        let heartbeat_stop = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat::run(
            store.clone(),
            config.clone(),
            held.clone(),
            stop_claiming.clone(),
            heartbeat_stop.clone(),
            started_at,
        ));
        {
            let immediate = shutdown.immediate.clone();
            let abort_all = abort_all.clone();
            let stop_claiming = stop_claiming.clone();
            let worker_done = heartbeat_stop.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = immediate.cancelled() => {
                        stop_claiming.cancel();
                        abort_all.cancel();
                    }
                    // The worker ended first: nothing left to stop.
                    _ = worker_done.cancelled() => {}
                }
            });
        }

        let slots = Arc::new(Semaphore::new(config.runners));
        let mut store_backoff = RETRY_FIRST;
        let linger_target = config.batch_size.min(config.runners).div_ceil(2).max(1);
        while !stop_claiming.is_cancelled() {
            // Wait for a free slot, then linger briefly for more so a burst of short tasks
            // is claimed in one round trip instead of one by one.
            tokio::select! {
                permit = slots.acquire() => drop(permit),
                _ = stop_claiming.cancelled() => break,
            }
            if slots.available_permits() < linger_target {
                tokio::select! {
                    permits = slots.acquire_many(linger_target as u32) => drop(permits),
                    _ = tokio::time::sleep(Duration::from_millis(2)) => {}
                    _ = stop_claiming.cancelled() => break,
                }
            }
            let want = slots.available_permits().min(config.batch_size);
            let request = ClaimRequest {
                worker: config.name.clone(),
                queues: config.queues.clone(),
                limit: want,
                lease: config.lease,
                now: Utc::now(),
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
                let permit = slots
                    .clone()
                    .try_acquire_owned()
                    .expect("claimed no more tasks than free slots");
                let cancel = abort_all.child_token();
                held.insert(task.id, task.attempt, cancel.clone());
                let executor = self.registry.get(&task.kind).cloned();
                let finished_tx = finished_tx.clone();
                tokio::spawn(async move {
                    let result = match executor {
                        Some(executor) => run_attempt(executor, &task, cancel.clone()).await,
                        None => Err(Failure(format!(
                            "no handler for kind '{}' on this worker",
                            task.kind
                        ))),
                    };
                    drop(permit);
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

        // Graceful: give running tasks the shutdown timeout, then cancel them (they are
        // handed back, not counted as failures).
        let all = config.runners as u32;
        tokio::select! {
            permits = slots.acquire_many(all) => drop(permits),
            _ = tokio::time::sleep(config.shutdown_timeout) => {
                tracing::warn!("shutdown timeout reached; handing back running tasks");
            }
            _ = abort_all.cancelled() => {}
        }
        abort_all.cancel();
        let _ = slots.acquire_many(all).await;
        drop(finished_tx);
        let report = completer.await.unwrap_or_default();
        heartbeat_stop.cancel();
        let _ = heartbeat.await;
        if let Err(err) = store.deregister_worker(&config.name).await {
            tracing::warn!(error = %err, "could not deregister worker");
        }
        Ok(report)
    }
}

/// Runs one attempt on its own tokio task so that a panicking handler fails the attempt
/// instead of the worker.
async fn run_attempt(
    executor: Arc<dyn wrangle_exec::Executor>,
    task: &ClaimedTask,
    cancel: CancellationToken,
) -> ExecResult {
    let owned = task.clone();
    let attempt = tokio::spawn(async move { executor.execute(&owned, cancel).await });
    match attempt.await {
        Ok(result) => result,
        Err(err) if err.is_panic() => {
            let panic = err.into_panic();
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Failure(format!("handler panicked: {message}")))
        }
        Err(_) => Err(Failure("cancelled".into())),
    }
}

/// The outcome to record for an attempt that ended with `result`.
fn outcome_for(
    task: &ClaimedTask,
    result: ExecResult,
    cancelled: bool,
    policy: &RetryPolicy,
) -> Outcome {
    match result {
        Ok(result) => Outcome::Succeeded { result },
        Err(_) if cancelled => Outcome::Released {
            reason: "worker shut down before the task finished".into(),
        },
        Err(Failure(error)) => Outcome::Failed {
            error,
            retry_at: policy.next_run_at(task.id, task.attempt, task.max_attempts, Utc::now()),
        },
    }
}
