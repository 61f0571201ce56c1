//! The `Store` trait: the one seam between wrangle's engine and every backend.
//!
//! Operations are domain operations (claim a batch, complete a batch, rescue expired
//! leases), not SQL, so that Redis can implement them with scripts as well as SQL stores
//! with statements. Every hot-path operation takes a batch, so a worker pays one round
//! trip per batch, not per task. Time always comes in as `now` so the conformance suite
//! can drive a fake clock.
//!
//! Rules every implementation keeps (the conformance suite checks them):
//! - A task is claimed by at most one worker at a time; a claim returns waiting tasks
//!   whose `run_at` has passed, highest priority first, then oldest `run_at`, then lowest id,
//!   and skips paused queues.
//! - A completion applies only if the task is still `running` under the same worker and
//!   attempt; otherwise it is reported [`CompletionStatus::Stale`] and changes nothing (the
//!   lease expired and the task was rescued, or it was cancelled). So a completed task is
//!   never completed twice and never runs again.
//! - Completions in one batch apply in request order, as if sent one by one; a repeat of
//!   a task already completed earlier in the batch is therefore stale.
//! - A task made available "now" (released, rescued, retried) gets `run_at = now`.
//! - `rescue_expired` returns `running` tasks whose lease ended to `available` (or `dead`
//!   on their last attempt). Leases, not PIDs, decide whether a worker is alive.
//! - Wake-ups go through [`Store::listen`], so a store with notifications never polls.
//! - A claim that finds fewer due tasks than its limit makes the rest from range jobs (see
//!   [`crate::job`]): it takes the highest-priority (then oldest, then first by name) job
//!   that is not cancelled, has blocks left and whose queue passes the filter and is not
//!   paused, advances its cursor atomically and returns the new blocks already running
//!   (attempt 1), after the due tasks. When that job runs out, it goes on to the next one
//!   in that order while the limit allows.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::connect::ConnectFailure;
use crate::job::{Job, JobTallies, NewJob};
use crate::log::{LogAppend, LogLine, LogOwner};
use crate::task::{NewTask, Task, TaskId, TaskState};
use crate::worker::{CommandEnvelope, CommandId, ControlCommand, WorkerInfo, WorkerRecord};

/// What can go wrong talking to a store.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// No task with this id.
    #[error("task {0} not found")]
    TaskNotFound(TaskId),
    /// No job with this name.
    #[error("job '{0}' not found")]
    JobNotFound(String),
    /// A job with this name exists already.
    #[error("job '{0}' exists already")]
    JobExists(String),
    /// No command with this id.
    #[error("command {0} not found")]
    CommandNotFound(CommandId),
    /// The operation is not allowed in the task's current state.
    #[error("task {id} is {state}: cannot {action} it")]
    InvalidTransition {
        /// The task.
        id: TaskId,
        /// Its state.
        state: TaskState,
        /// What was attempted.
        action: &'static str,
    },
    /// The request itself is malformed (empty names, zero limits).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The store cannot be reached or timed out; retrying later may work.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Connecting to the store's server failed (see [`ConnectFailure`] for the wording).
    #[error("{0}")]
    Connect(ConnectFailure),
    /// There is no wrangle store where the URL points, and it was opened with
    /// [`Open::Existing`](crate::connect::Open::Existing), which creates nothing. Holds
    /// where it was looked for (a file, or the server, database and schema or prefix).
    #[error("no wrangle store at {0} ({hint})", hint = crate::connect::NO_STORE_HINT)]
    NoStore(String),
    /// Any other backend failure.
    #[error("store error: {0}")]
    Backend(String),
}

impl StoreError {
    /// Whether retrying the same operation later may succeed (a connection problem).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Connect(failure) => failure.cause.is_transient(),
            _ => false,
        }
    }
}

/// Which queues a claim takes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueFilter {
    /// Every queue (`*`).
    All,
    /// Only these queues.
    Only(Vec<String>),
}

impl QueueFilter {
    /// Whether `queue` passes the filter.
    pub fn matches(&self, queue: &str) -> bool {
        match self {
            QueueFilter::All => true,
            QueueFilter::Only(queues) => queues.iter().any(|q| q == queue),
        }
    }

    /// The queue names, empty for `All` (the form [`WorkerInfo::queues`] uses).
    pub fn names(&self) -> Vec<String> {
        match self {
            QueueFilter::All => Vec::new(),
            QueueFilter::Only(queues) => queues.clone(),
        }
    }
}

/// A request to claim up to `limit` tasks.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    /// The claiming worker's name.
    pub worker: String,
    /// Queues to take from.
    pub queues: QueueFilter,
    /// Most tasks to return.
    pub limit: usize,
    /// How long the claimed tasks are leased for; heartbeats extend it.
    pub lease: Duration,
    /// Current time.
    pub now: DateTime<Utc>,
}

/// A task handed to a worker by a claim: what the handler needs to run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimedTask {
    /// Identifier.
    pub id: TaskId,
    /// Queue.
    pub queue: String,
    /// Handler name.
    pub kind: String,
    /// Arguments.
    pub payload: Value,
    /// This attempt's number (1 for the first).
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Per-attempt time limit.
    #[serde(with = "crate::task::duration_ms")]
    pub timeout: Option<Duration>,
    /// Parent job.
    pub job: Option<String>,
    /// When the lease ends unless extended.
    pub lease_until: DateTime<Utc>,
}

impl ClaimedTask {
    /// The completion of this attempt by `worker` with `outcome`.
    pub fn completion(&self, worker: &str, outcome: Outcome) -> Completion {
        Completion {
            id: self.id,
            attempt: self.attempt,
            worker: worker.to_string(),
            outcome,
        }
    }
}

/// How one attempt ended, as a worker reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Success, with the handler's result.
    Succeeded {
        /// The result (JSON, or a JSON string for plain text output).
        result: Value,
    },
    /// Failure. With `retry_at` and attempts left the task becomes `retryable`,
    /// otherwise `dead`.
    Failed {
        /// What went wrong (message and stderr tail).
        error: String,
        /// When to try again, from the retry policy; `None` means do not retry.
        retry_at: Option<DateTime<Utc>>,
    },
    /// Handed back unfinished (graceful shutdown): `available` again at once, and the
    /// attempt does not count against `max_attempts`.
    Released {
        /// Why it was handed back.
        reason: String,
    },
}

/// One task's completion in a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The task.
    pub id: TaskId,
    /// The attempt that ended (must match the store's, or the completion is stale).
    pub attempt: u32,
    /// The worker that ran it (must match the lease holder).
    pub worker: String,
    /// How it ended.
    pub outcome: Outcome,
}

/// What a completion did, in the order of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionStatus {
    /// Recorded; the task is now in this state.
    Applied(TaskState),
    /// Ignored: the task was no longer running under this worker and attempt.
    Stale,
}

/// The result of enqueueing one task.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enqueued {
    /// The new task's id, or the existing task's for a duplicate unique key.
    pub id: TaskId,
    /// True when the unique key already existed and nothing was inserted.
    pub duplicate: bool,
}

/// Matches the rows one enqueue statement inserted back to the request, for stores whose
/// insert skips conflicting unique keys and returns `(id, unique_key)` per inserted row.
///
/// Inserted ids increase in request order, so the new tasks take them in turn. A task is
/// a duplicate when its key was not inserted by the statement, or was inserted for an
/// earlier task of the same batch; duplicates come back with `id: 0` for the caller to
/// fill in from the key's holder.
pub fn match_inserted(
    tasks: &[NewTask],
    mut inserted: Vec<(TaskId, Option<String>)>,
) -> Result<Vec<Enqueued>, StoreError> {
    inserted.sort_unstable_by_key(|(id, _)| *id);
    let inserted_keys: std::collections::HashSet<&str> =
        inserted.iter().filter_map(|(_, k)| k.as_deref()).collect();
    let mut first_of_key = std::collections::HashSet::new();
    let mut next_inserted = inserted.iter();
    tasks
        .iter()
        .map(|task| {
            let is_new = match task.unique_key.as_deref() {
                None => true,
                Some(key) => inserted_keys.contains(key) && first_of_key.insert(key),
            };
            if !is_new {
                return Ok(Enqueued {
                    id: 0,
                    duplicate: true,
                });
            }
            let (id, _) = next_inserted
                .next()
                .ok_or_else(|| StoreError::Backend("enqueue lost track of ids".into()))?;
            Ok(Enqueued {
                id: *id,
                duplicate: false,
            })
        })
        .collect()
}

/// A worker's heartbeat: refreshes its registration and extends its tasks' leases.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    /// Who is beating, with its current state.
    pub worker: WorkerInfo,
    /// Tasks it holds, with their attempts.
    pub leases: Vec<(TaskId, u32)>,
    /// New end of those leases.
    pub lease_until: DateTime<Utc>,
    /// Current time.
    pub now: DateTime<Utc>,
}

/// The store's answer to a heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatReply {
    /// Tasks from the heartbeat that the worker no longer holds (cancelled, or rescued
    /// after its lease expired): the worker should stop running them.
    pub lost: Vec<TaskId>,
    /// Whether unacknowledged commands wait in the worker's mailbox.
    pub commands_waiting: bool,
}

/// Filter for listing tasks, newest first.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    /// Only tasks in this state.
    pub state: Option<TaskState>,
    /// Only tasks on this queue.
    pub queue: Option<String>,
    /// Only tasks of this job.
    pub job: Option<String>,
    /// Only tasks with a smaller id (paging).
    pub before_id: Option<TaskId>,
    /// Most tasks to return.
    pub limit: usize,
}

/// One queue's numbers for `wrangle status`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    /// The queue.
    pub queue: String,
    /// Whether claims skip it.
    pub paused: bool,
    /// Tasks per state (states with no task are absent).
    pub counts: BTreeMap<TaskState, u64>,
    /// `run_at` of the oldest task that is due but not yet claimed.
    pub oldest_due_at: Option<DateTime<Utc>>,
    /// Attempts that completed in the minute before `now`, counted per whole second (see
    /// [`recent_seconds`]): exact when `now` falls on a whole second, else the window
    /// starts up to a second early.
    pub completed_last_minute: u64,
    /// Attempts that failed (the task became retryable or dead, a lost lease with no
    /// attempt left included) in the minute before `now`, counted as
    /// `completed_last_minute`. A failure since retried still counts; pruning forgets none.
    pub failed_last_minute: u64,
}

/// Adds a store's counter of the last minute's attempts of `queue` that ended with
/// `outcome` ("completed" or "failed") to its entry in `stats`, if the queue is listed for
/// its tasks: a queue whose tasks were all pruned is not listed for its outcomes alone, on
/// any store.
pub fn add_recent_outcomes(
    stats: &mut BTreeMap<String, QueueStats>,
    queue: &str,
    outcome: &str,
    attempts: u64,
) {
    if let Some(entry) = stats.get_mut(queue).filter(|e| !e.counts.is_empty()) {
        if outcome == "completed" {
            entry.completed_last_minute += attempts;
        } else {
            entry.failed_last_minute += attempts;
        }
    }
}

/// The second whose counter holds an attempt that ended at `at_ms` (milliseconds since the
/// epoch): the attempts of second S ended in `(S-1, S]` seconds. Every store counts the
/// last minute's outcomes in these buckets as the attempts end, so reading them costs the
/// same whatever the throughput.
pub fn recent_second(at_ms: i64) -> i64 {
    at_ms.div_euclid(1000) + i64::from(at_ms.rem_euclid(1000) != 0)
}

/// The seconds `(first, last]` whose counters make up "the minute before `now`".
pub fn recent_seconds(now: DateTime<Utc>) -> (i64, i64) {
    let last = recent_second(now.timestamp_millis());
    (last - 60, last)
}

impl QueueStats {
    /// A queue with nothing counted yet.
    pub fn empty(queue: &str, paused: bool) -> Self {
        QueueStats {
            queue: queue.to_string(),
            paused,
            counts: BTreeMap::new(),
            oldest_due_at: None,
            completed_last_minute: 0,
            failed_last_minute: 0,
        }
    }
}

/// What one [`Store::delete_job`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobDeletion {
    /// Tasks it deleted.
    pub tasks: u64,
    /// Whether the job is gone (its record removed, no task left).
    pub done: bool,
}

/// What [`Store::prune_finished`] deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneRequest {
    /// Tasks in this final state (completed, dead or cancelled).
    pub state: TaskState,
    /// That finished before this.
    pub finished_before: DateTime<Utc>,
    /// At most this many (a small batch never holds up claims for long).
    pub limit: usize,
}

impl PruneRequest {
    /// One request per final state: everything finished before `finished_before`, up to
    /// `limit` per state.
    pub fn every_final_state(finished_before: DateTime<Utc>, limit: usize) -> [PruneRequest; 3] {
        [TaskState::Completed, TaskState::Dead, TaskState::Cancelled].map(|state| PruneRequest {
            state,
            finished_before,
            limit,
        })
    }

    /// Refuses a state that is not final: waiting, running and retryable tasks are never
    /// pruned.
    pub fn check(&self) -> Result<(), StoreError> {
        if self.state.is_final() {
            Ok(())
        } else {
            Err(StoreError::InvalidRequest(format!(
                "only completed, dead or cancelled tasks are pruned, not {}",
                self.state
            )))
        }
    }
}

/// Notification topics for [`Store::listen`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Tasks may have become claimable (enqueued, retried, released, rescued, resumed).
    Tasks,
    /// A task's attempt ended (completed, failed, dead, cancelled).
    Outcomes,
    /// A control command was sent or acknowledged.
    Commands,
    /// Lines were appended to a log ring.
    Logs,
}

/// A subscription to one topic. Created before the work it guards (for example before a
/// claim that found nothing), so no notification in between is lost.
#[async_trait]
pub trait Listener: Send {
    /// Waits until the topic was notified since this listener was created or since the
    /// previous `wait` returned, or until `timeout` passes; returns whether it was
    /// notified. Spurious wake-ups are allowed: callers re-check the store.
    async fn wait(&mut self, timeout: Duration) -> Result<bool, StoreError>;
}

/// What a store is and can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreInfo {
    /// Backend name (`sqlite`, `memory`, …).
    pub name: &'static str,
    /// Whether wake-ups cross process boundaries without polling.
    pub native_notifications: bool,
}

/// The store seam. See the module documentation for the rules.
#[async_trait]
pub trait Store: Send + Sync + Debug + 'static {
    /// What this store is.
    fn info(&self) -> StoreInfo;

    // --- tasks: the hot path -------------------------------------------------------------

    /// Inserts `tasks` all or nothing, in order. A task whose unique key already exists
    /// (or repeats earlier in the batch) is not inserted; its result names the existing id.
    async fn enqueue_batch(
        &self,
        tasks: Vec<NewTask>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>, StoreError>;

    /// Claims up to `limit` due tasks: they become `running` under `worker`, their attempt
    /// increases by one and they are leased until `now + lease`.
    async fn claim_batch(&self, request: ClaimRequest) -> Result<Vec<ClaimedTask>, StoreError>;

    /// Records how attempts ended; one status per completion, in order.
    async fn complete_batch(
        &self,
        completions: &[Completion],
        now: DateTime<Utc>,
    ) -> Result<Vec<CompletionStatus>, StoreError>;

    /// Refreshes a worker's registration and extends its leases in one round trip.
    async fn heartbeat(&self, beat: Heartbeat) -> Result<HeartbeatReply, StoreError>;

    /// Returns up to `limit` running tasks whose lease ended before `now` to `available`,
    /// or to `dead` when it was their last attempt. Returns the ids it moved.
    async fn rescue_expired(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<TaskId>, StoreError>;

    // --- tasks: inspection and operator actions ------------------------------------------

    /// One task with its attempt history.
    async fn get_task(&self, id: TaskId) -> Result<Option<Task>, StoreError>;

    /// Tasks matching `filter`, newest first.
    async fn list_tasks(&self, filter: TaskFilter) -> Result<Vec<Task>, StoreError>;

    /// Makes a scheduled, retryable, dead or cancelled task `available` now. A task out of
    /// attempts gets one more.
    async fn retry_task(&self, id: TaskId, now: DateTime<Utc>) -> Result<Task, StoreError>;

    /// Retries every dead task (of one queue, or all); returns how many.
    async fn retry_dead(
        &self,
        queue: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Cancels a task that is not final. A running task's worker learns it at its next
    /// heartbeat and stops it.
    async fn cancel_task(&self, id: TaskId, now: DateTime<Utc>) -> Result<Task, StoreError>;

    /// Cancels every task of `ids` that is not final, as [`cancel_task`](Store::cancel_task)
    /// does one, in one call (a job's thousands of tasks need not cost a round trip each);
    /// unknown and final ones are skipped. Returns how many were cancelled.
    async fn cancel_tasks(&self, ids: &[TaskId], now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Retries every task of `ids` that [`retry_task`](Store::retry_task) would, in one
    /// call; the others (unknown, waiting for nothing, running, completed) are skipped.
    /// Returns how many were retried.
    async fn retry_tasks(&self, ids: &[TaskId], now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Deletes up to `request.limit` tasks in `request.state` (completed, dead or
    /// cancelled) that finished before `request.finished_before`, oldest first, with their
    /// log rings; a job's tasks are kept (its progress is counted from them). Returns how
    /// many.
    async fn prune_finished(&self, request: PruneRequest) -> Result<u64, StoreError>;

    /// Takes or renews the turn at maintenance duty `duty` (the pruner) for `holder` until
    /// `until`, if nobody else holds it at `now` (never held, held by `holder`, or held
    /// until `now` or earlier); returns whether `holder` holds it. So of many workers
    /// doing a duty in turns, one at a time does it.
    async fn take_turn(
        &self,
        duty: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Compacts what the store keeps for its own bookkeeping: the SQL servers' stores fold
    /// their per-connection counter rows into one, so that reading the counters stays
    /// O(queues x states). Called by the holder of the pruner's turn once per interval;
    /// cheap when there is nothing to fold, and it never waits for a writer. Stores with
    /// nothing to compact keep this default.
    async fn tidy(&self) -> Result<(), StoreError> {
        Ok(())
    }

    // --- jobs ----------------------------------------------------------------------------

    /// Creates a job record (after [`NewJob::validate`]); a list job's tasks must exist
    /// already. Fails with [`StoreError::JobExists`] when the name is taken.
    async fn create_job(&self, job: NewJob, now: DateTime<Utc>) -> Result<Job, StoreError>;

    /// One job's record.
    async fn get_job(&self, name: &str) -> Result<Option<Job>, StoreError>;

    /// Every job, sorted by name.
    async fn list_jobs(&self) -> Result<Vec<Job>, StoreError>;

    /// Deletes job `name` a batch at a time: each call stops claims making its blocks (as
    /// [`cancel_job`](Store::cancel_job)) and deletes up to `limit` of its tasks, whatever
    /// their state (a running one's completion is then stale), with their log rings; the
    /// call that finds no task left removes the job's record. Fails with
    /// [`StoreError::JobNotFound`] for an unknown job.
    async fn delete_job(&self, name: &str, limit: usize) -> Result<JobDeletion, StoreError>;

    /// Marks a job cancelled so that claims create no more of its blocks, and returns it.
    /// Its existing tasks are left alone (the caller cancels them as tasks).
    async fn cancel_job(&self, name: &str) -> Result<Job, StoreError>;

    /// The job's counters: its tasks per (state, worker) and the ids completed in the
    /// minute before `now` (see [`JobTallies`]). They are kept by the moves of the tasks
    /// (in the same statement or script), read without walking the tasks, and not
    /// decremented when pruning deletes a finished task of the job; they go with the job's
    /// record ([`delete_job`](Store::delete_job)). Fails with [`StoreError::JobNotFound`]
    /// for an unknown job.
    async fn job_tallies(&self, name: &str, now: DateTime<Utc>) -> Result<JobTallies, StoreError>;

    // --- queues --------------------------------------------------------------------------

    /// Pauses (claims skip it) or resumes a queue.
    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<(), StoreError>;

    /// Numbers for every queue that has tasks or a pause setting, sorted by name.
    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<Vec<QueueStats>, StoreError>;

    // --- workers and their mailboxes ------------------------------------------------------

    /// Registers (or re-registers) a worker.
    async fn register_worker(&self, info: WorkerInfo, now: DateTime<Utc>)
    -> Result<(), StoreError>;

    /// Removes a worker from the registry (its clean exit), with its log ring.
    async fn deregister_worker(&self, name: &str) -> Result<(), StoreError>;

    /// Registered workers, sorted by name.
    async fn list_workers(&self) -> Result<Vec<WorkerRecord>, StoreError>;

    /// Removes the workers silent at `now` for more than
    /// [`LOST_AFTER_LEASES`](crate::worker::LOST_AFTER_LEASES) of their
    /// own leases (each judged by its own `lease_ms`; one that did not say its lease is
    /// kept) with their log rings, and returns their names, sorted. One round trip that
    /// sends no worker's record.
    async fn prune_lost_workers(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError>;

    /// Puts a command in a worker's mailbox.
    async fn send_command(
        &self,
        worker: &str,
        command: ControlCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandId, StoreError>;

    /// Unacknowledged commands for `worker`, oldest first.
    async fn pending_commands(&self, worker: &str) -> Result<Vec<CommandEnvelope>, StoreError>;

    /// Acknowledges a command with the worker's reply.
    async fn ack_command(
        &self,
        id: CommandId,
        reply: Value,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// A command and its acknowledgement, if any.
    async fn get_command(&self, id: CommandId) -> Result<Option<CommandEnvelope>, StoreError>;

    // --- wake-ups -------------------------------------------------------------------------

    /// Subscribes to `topic`.
    async fn listen(&self, topic: Topic) -> Result<Box<dyn Listener>, StoreError>;

    /// Appends lines to their owners' log rings in one round trip, keeping each owner's
    /// newest `keep` lines (see [`crate::log`]), and notifies [`Topic::Logs`]. Lines get
    /// the next sequence numbers of their owner, in order.
    async fn append_logs(&self, appends: &[LogAppend], keep: usize) -> Result<(), StoreError>;

    /// Up to `limit` kept lines of `owner` with a sequence number above `after`, oldest
    /// first (none for an owner with no ring).
    async fn read_log(
        &self,
        owner: &LogOwner,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LogLine>, StoreError>;
}

/// Told about every call made through an [`ObservedStore`]: which, how long it took, and
/// its error if it failed (a worker's metrics count round trips, errors and latency).
pub trait StoreObserver: Send + Sync + 'static {
    /// Call `call` took `took`; `error` is its failure, if any.
    fn observed(&self, call: &'static str, took: Duration, error: Option<&StoreError>);
}

/// Wraps a store, counts the calls made through it (the round trips per task that decide
/// how far a store scales), tells an optional [`StoreObserver`] of each, and runs each in
/// a `store` tracing span named by the call (exportable to OpenTelemetry by whatever
/// subscriber the program installs). Listener waits are not calls (they are
/// notifications, or a store's own background polling).
pub struct ObservedStore {
    inner: Arc<dyn Store>,
    calls: AtomicU64,
    observer: Option<Arc<dyn StoreObserver>>,
}

/// The name benchmarks and tests know the counting wrapper by.
pub type CountingStore = ObservedStore;

impl Debug for ObservedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservedStore")
            .field("inner", &self.inner)
            .field("calls", &self.calls)
            .finish_non_exhaustive()
    }
}

impl ObservedStore {
    /// Counts calls to `inner`.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        ObservedStore {
            inner,
            calls: AtomicU64::new(0),
            observer: None,
        }
    }

    /// Counts calls to `inner` and tells `observer` of each.
    pub fn observed(inner: Arc<dyn Store>, observer: Arc<dyn StoreObserver>) -> Self {
        ObservedStore {
            observer: Some(observer),
            ..ObservedStore::new(inner)
        }
    }

    /// Calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Runs `call` (named `name`) in its span, counted and observed.
    async fn call<T>(
        &self,
        name: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        use tracing::Instrument as _;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let result = call
            .instrument(tracing::debug_span!("store", call = name))
            .await;
        if let Some(observer) = &self.observer {
            observer.observed(name, started.elapsed(), result.as_ref().err());
        }
        result
    }
}

#[async_trait]
impl Store for ObservedStore {
    fn info(&self) -> StoreInfo {
        self.inner.info()
    }
    async fn enqueue_batch(
        &self,
        tasks: Vec<NewTask>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        self.call("enqueue_batch", self.inner.enqueue_batch(tasks, now))
            .await
    }
    async fn claim_batch(&self, request: ClaimRequest) -> Result<Vec<ClaimedTask>, StoreError> {
        self.call("claim_batch", self.inner.claim_batch(request))
            .await
    }
    async fn complete_batch(
        &self,
        completions: &[Completion],
        now: DateTime<Utc>,
    ) -> Result<Vec<CompletionStatus>, StoreError> {
        self.call(
            "complete_batch",
            self.inner.complete_batch(completions, now),
        )
        .await
    }
    async fn heartbeat(&self, beat: Heartbeat) -> Result<HeartbeatReply, StoreError> {
        self.call("heartbeat", self.inner.heartbeat(beat)).await
    }
    async fn rescue_expired(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<TaskId>, StoreError> {
        self.call("rescue_expired", self.inner.rescue_expired(now, limit))
            .await
    }
    async fn get_task(&self, id: TaskId) -> Result<Option<Task>, StoreError> {
        self.call("get_task", self.inner.get_task(id)).await
    }
    async fn list_tasks(&self, filter: TaskFilter) -> Result<Vec<Task>, StoreError> {
        self.call("list_tasks", self.inner.list_tasks(filter)).await
    }
    async fn retry_task(&self, id: TaskId, now: DateTime<Utc>) -> Result<Task, StoreError> {
        self.call("retry_task", self.inner.retry_task(id, now))
            .await
    }
    async fn retry_dead(
        &self,
        queue: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.call("retry_dead", self.inner.retry_dead(queue, now))
            .await
    }
    async fn cancel_task(&self, id: TaskId, now: DateTime<Utc>) -> Result<Task, StoreError> {
        self.call("cancel_task", self.inner.cancel_task(id, now))
            .await
    }
    async fn cancel_tasks(&self, ids: &[TaskId], now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.call("cancel_tasks", self.inner.cancel_tasks(ids, now))
            .await
    }
    async fn retry_tasks(&self, ids: &[TaskId], now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.call("retry_tasks", self.inner.retry_tasks(ids, now))
            .await
    }
    async fn prune_finished(&self, request: PruneRequest) -> Result<u64, StoreError> {
        self.call("prune_finished", self.inner.prune_finished(request))
            .await
    }
    async fn take_turn(
        &self,
        duty: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.call("take_turn", self.inner.take_turn(duty, holder, until, now))
            .await
    }
    async fn tidy(&self) -> Result<(), StoreError> {
        self.call("tidy", self.inner.tidy()).await
    }
    async fn create_job(&self, job: NewJob, now: DateTime<Utc>) -> Result<Job, StoreError> {
        self.call("create_job", self.inner.create_job(job, now))
            .await
    }
    async fn get_job(&self, name: &str) -> Result<Option<Job>, StoreError> {
        self.call("get_job", self.inner.get_job(name)).await
    }
    async fn list_jobs(&self) -> Result<Vec<Job>, StoreError> {
        self.call("list_jobs", self.inner.list_jobs()).await
    }
    async fn delete_job(&self, name: &str, limit: usize) -> Result<JobDeletion, StoreError> {
        self.call("delete_job", self.inner.delete_job(name, limit))
            .await
    }
    async fn cancel_job(&self, name: &str) -> Result<Job, StoreError> {
        self.call("cancel_job", self.inner.cancel_job(name)).await
    }
    async fn job_tallies(&self, name: &str, now: DateTime<Utc>) -> Result<JobTallies, StoreError> {
        self.call("job_tallies", self.inner.job_tallies(name, now))
            .await
    }
    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<(), StoreError> {
        self.call(
            "set_queue_paused",
            self.inner.set_queue_paused(queue, paused),
        )
        .await
    }
    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<Vec<QueueStats>, StoreError> {
        self.call("queue_stats", self.inner.queue_stats(now)).await
    }
    async fn register_worker(
        &self,
        info: WorkerInfo,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.call("register_worker", self.inner.register_worker(info, now))
            .await
    }
    async fn deregister_worker(&self, name: &str) -> Result<(), StoreError> {
        self.call("deregister_worker", self.inner.deregister_worker(name))
            .await
    }
    async fn list_workers(&self) -> Result<Vec<WorkerRecord>, StoreError> {
        self.call("list_workers", self.inner.list_workers()).await
    }
    async fn prune_lost_workers(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        self.call("prune_lost_workers", self.inner.prune_lost_workers(now))
            .await
    }
    async fn send_command(
        &self,
        worker: &str,
        command: ControlCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandId, StoreError> {
        self.call(
            "send_command",
            self.inner.send_command(worker, command, now),
        )
        .await
    }
    async fn pending_commands(&self, worker: &str) -> Result<Vec<CommandEnvelope>, StoreError> {
        self.call("pending_commands", self.inner.pending_commands(worker))
            .await
    }
    async fn ack_command(
        &self,
        id: CommandId,
        reply: Value,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.call("ack_command", self.inner.ack_command(id, reply, now))
            .await
    }
    async fn get_command(&self, id: CommandId) -> Result<Option<CommandEnvelope>, StoreError> {
        self.call("get_command", self.inner.get_command(id)).await
    }
    async fn append_logs(&self, appends: &[LogAppend], keep: usize) -> Result<(), StoreError> {
        self.call("append_logs", self.inner.append_logs(appends, keep))
            .await
    }
    async fn read_log(
        &self,
        owner: &LogOwner,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LogLine>, StoreError> {
        self.call("read_log", self.inner.read_log(owner, after, limit))
            .await
    }
    async fn listen(&self, topic: Topic) -> Result<Box<dyn Listener>, StoreError> {
        self.call("listen", self.inner.listen(topic)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_counts_in_the_second_that_ends_at_or_after_it() {
        assert_eq!(recent_second(0), 0);
        assert_eq!(recent_second(1), 1);
        assert_eq!(recent_second(1000), 1);
        assert_eq!(recent_second(1001), 2);
        assert_eq!(recent_second(-1), 0);
        assert_eq!(recent_second(-1000), -1);
        let now = DateTime::from_timestamp_millis(120_000).unwrap();
        assert_eq!(recent_seconds(now), (60, 120));
        let now = DateTime::from_timestamp_millis(120_001).unwrap();
        assert_eq!(recent_seconds(now), (61, 121));
    }

    #[test]
    fn queue_filter_matches() {
        assert!(QueueFilter::All.matches("x"));
        let only = QueueFilter::Only(vec!["a".into(), "b".into()]);
        assert!(only.matches("a") && only.matches("b") && !only.matches("c"));
        assert!(QueueFilter::All.names().is_empty());
        assert_eq!(only.names(), ["a", "b"]);
    }

    #[test]
    fn only_connection_problems_are_transient() {
        assert!(StoreError::Unavailable("down".into()).is_transient());
        assert!(!StoreError::TaskNotFound(1).is_transient());
        assert!(!StoreError::Backend("x".into()).is_transient());
    }

    #[test]
    fn errors_read_as_one_line() {
        let e = StoreError::InvalidTransition {
            id: 7,
            state: TaskState::Completed,
            action: "cancel",
        };
        assert_eq!(e.to_string(), "task 7 is completed: cannot cancel it");
    }

    #[test]
    fn inserted_rows_are_matched_back_to_the_request() {
        let keyed = |key: &str| NewTask::new("k", Value::Null).unique_key(key);
        let tasks = [
            keyed("a"),
            NewTask::new("k", Value::Null),
            keyed("a"),    // repeats a key inserted earlier in the batch
            keyed("held"), // its key already belonged to another task
        ];
        // Rows may come back in any order; ids increase in request order.
        let inserted = vec![(8, None), (7, Some("a".to_string()))];
        let results = match_inserted(&tasks, inserted).unwrap();
        let got: Vec<(TaskId, bool)> = results.iter().map(|e| (e.id, e.duplicate)).collect();
        assert_eq!(got, [(7, false), (8, false), (0, true), (0, true)]);
        assert!(
            match_inserted(&tasks, vec![(7, Some("a".into()))]).is_err(),
            "an id is missing"
        );
    }
}
