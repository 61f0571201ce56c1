//! Small helpers the cases share: the fake clock, task builders, one-line store calls that
//! check what every call must return, and assertions with clear messages.
//!
//! Every time in the suite is a whole number of seconds after [`t0`], so no store is asked
//! to keep sub-second precision it may not have.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use chrono::{DateTime, TimeZone as _, Utc};
use serde_json::{Value, json};
use wrangle_core::{
    ClaimRequest, ClaimedTask, Completion, CompletionStatus, Heartbeat, HeartbeatReply, NewTask,
    Outcome, QueueFilter, StoreError, Task, TaskFilter, TaskId, TaskState, WorkerInfo,
};

use crate::{Handle, Store};

/// Fails the case unless `$actual == $expected`, naming what was compared and both values.
#[macro_export]
macro_rules! ensure_eq {
    ($actual:expr, $expected:expr, $($what:tt)+) => {
        match (&$actual, &$expected) {
            (actual, expected) => $crate::anyhow::ensure!(
                actual == expected,
                "{}:\n  expected {:?}\n       got {:?}",
                format_args!($($what)+),
                expected,
                actual
            ),
        }
    };
}

/// The lease every claim in the suite asks for.
pub const LEASE: Duration = Duration::from_secs(30);

/// The fake clock's origin: every `now` in the suite is [`at`] some offset from it.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date")
}

/// The fake clock: `secs` seconds after [`t0`] (negative for before).
pub fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(secs)
}

/// A task of `kind` on the default queue with a small payload naming it.
pub fn task(kind: &str) -> NewTask {
    NewTask::new(kind, json!({ "kind": kind }))
}

/// `n` tasks of `kind` numbered in their payloads.
pub fn tasks(kind: &str, n: usize) -> Vec<NewTask> {
    (0..n)
        .map(|i| NewTask::new(kind, json!({ "i": i })))
        .collect()
}

/// Enqueues `tasks` at `now`, checking that all are new; returns their ids.
pub async fn enqueue(
    store: &Handle,
    tasks: Vec<NewTask>,
    now: DateTime<Utc>,
) -> Result<Vec<TaskId>> {
    let n = tasks.len();
    let enqueued = store
        .enqueue_batch(tasks, now)
        .await
        .context("enqueue_batch")?;
    ensure_eq!(
        enqueued.len(),
        n,
        "enqueue_batch returns one result per task"
    );
    ensure!(
        enqueued.iter().all(|e| !e.duplicate),
        "tasks without unique keys were reported duplicate: {enqueued:?}"
    );
    Ok(enqueued.into_iter().map(|e| e.id).collect())
}

/// Enqueues one new task at `now`; returns its id.
pub async fn enqueue_one(store: &Handle, task: NewTask, now: DateTime<Utc>) -> Result<TaskId> {
    Ok(enqueue(store, vec![task], now).await?[0])
}

/// A claim by `worker` of up to `limit` tasks from `queues` at `now`, leased for [`LEASE`].
pub fn claim_request(
    worker: &str,
    queues: QueueFilter,
    limit: usize,
    now: DateTime<Utc>,
) -> ClaimRequest {
    ClaimRequest {
        worker: worker.to_string(),
        queues,
        limit,
        lease: LEASE,
        now,
    }
}

/// Claims up to `limit` tasks from every queue for `worker` at `now`.
pub async fn claim(
    store: &Handle,
    worker: &str,
    limit: usize,
    now: DateTime<Utc>,
) -> Result<Vec<ClaimedTask>> {
    claim_from(store, worker, QueueFilter::All, limit, now).await
}

/// Claims up to `limit` tasks from `queues` for `worker` at `now`, checking the limit.
pub async fn claim_from(
    store: &Handle,
    worker: &str,
    queues: QueueFilter,
    limit: usize,
    now: DateTime<Utc>,
) -> Result<Vec<ClaimedTask>> {
    let claimed = store
        .claim_batch(claim_request(worker, queues, limit, now))
        .await
        .context("claim_batch")?;
    ensure!(
        claimed.len() <= limit,
        "claim with limit {limit} returned {} tasks",
        claimed.len()
    );
    Ok(claimed)
}

/// The ids of up to `limit` tasks `worker` claims at `now`, in the order returned.
pub async fn claim_ids(
    store: &Handle,
    worker: &str,
    limit: usize,
    now: DateTime<Utc>,
) -> Result<Vec<TaskId>> {
    Ok(ids_of(&claim(store, worker, limit, now).await?))
}

/// Claims exactly one task for `worker` at `now` (limit 1), failing if none is due.
pub async fn claim_one(store: &Handle, worker: &str, now: DateTime<Utc>) -> Result<ClaimedTask> {
    claim(store, worker, 1, now)
        .await?
        .pop()
        .with_context(|| format!("expected a task to claim at {now}, found none"))
}

/// Enqueues one task and claims it back: whether a store opened some new way (over TLS,
/// with other credentials) works at all. For store tests outside the suite.
pub async fn round_trip(store: &dyn Store) -> Result<()> {
    let enqueued = store
        .enqueue_batch(vec![task("round-trip")], t0())
        .await
        .context("enqueue_batch")?;
    let claimed = store
        .claim_batch(claim_request("round-trip", QueueFilter::All, 10, t0()))
        .await
        .context("claim_batch")?;
    ensure_eq!(
        ids_of(&claimed),
        vec![enqueued[0].id],
        "the task claimed back"
    );
    Ok(())
}

/// Fails unless a claim at `now` finds nothing.
pub async fn ensure_nothing_claimable(store: &Handle, now: DateTime<Utc>) -> Result<()> {
    let claimed = claim_ids(store, "nobody", 100, now).await?;
    ensure!(
        claimed.is_empty(),
        "expected nothing claimable at {now}, claimed {claimed:?}"
    );
    Ok(())
}

/// The ids of claimed tasks, in order.
pub fn ids_of(claimed: &[ClaimedTask]) -> Vec<TaskId> {
    claimed.iter().map(|c| c.id).collect()
}

/// The claimed task `id` among `claimed`, failing if it is not there.
pub fn by_id(claimed: &[ClaimedTask], id: TaskId) -> Result<&ClaimedTask> {
    claimed
        .iter()
        .find(|c| c.id == id)
        .with_context(|| format!("task {id} was not among the claimed {claimed:?}"))
}

/// `ids` as a sorted set (for comparisons where order is not specified).
pub fn set(ids: impl IntoIterator<Item = TaskId>) -> BTreeSet<TaskId> {
    ids.into_iter().collect()
}

/// The completion of `claimed`'s attempt by `worker` with `outcome`.
pub fn completion(claimed: &ClaimedTask, worker: &str, outcome: Outcome) -> Completion {
    claimed.completion(worker, outcome)
}

/// A success with `result`.
pub fn succeeded(result: Value) -> Outcome {
    Outcome::Succeeded { result }
}

/// A failure with `error`, retried at `retry_at` if given.
pub fn failed(error: &str, retry_at: Option<DateTime<Utc>>) -> Outcome {
    Outcome::Failed {
        error: error.to_string(),
        retry_at,
    }
}

/// A graceful hand-back.
pub fn released() -> Outcome {
    Outcome::Released {
        reason: "shutting down".to_string(),
    }
}

/// Completes one attempt at `now`; returns its status.
pub async fn complete(
    store: &Handle,
    completion: Completion,
    now: DateTime<Utc>,
) -> Result<CompletionStatus> {
    let statuses = store
        .complete_batch(&[completion], now)
        .await
        .context("complete_batch")?;
    ensure_eq!(
        statuses.len(),
        1,
        "complete_batch returns one status per completion"
    );
    Ok(statuses[0])
}

/// Completes one attempt at `now`, failing unless the task is then in `state`.
pub async fn complete_as(
    store: &Handle,
    completion: Completion,
    now: DateTime<Utc>,
    state: TaskState,
) -> Result<()> {
    let id = completion.id;
    let status = complete(store, completion, now).await?;
    ensure_eq!(
        status,
        CompletionStatus::Applied(state),
        "completion of task {id}"
    );
    Ok(())
}

/// Completes a claimed task successfully at `now` with result `{"ok": id}`.
pub async fn succeed(
    store: &Handle,
    claimed: &ClaimedTask,
    worker: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let outcome = succeeded(json!({ "ok": claimed.id }));
    complete_as(
        store,
        completion(claimed, worker, outcome),
        now,
        TaskState::Completed,
    )
    .await
}

/// Fails unless the completion is reported stale and leaves the task exactly as it was.
pub async fn ensure_stale(
    store: &Handle,
    completion: Completion,
    now: DateTime<Utc>,
) -> Result<()> {
    let id = completion.id;
    let before = get(store, id).await?;
    let what = format!("{completion:?}");
    let status = complete(store, completion, now).await?;
    ensure_eq!(
        status,
        CompletionStatus::Stale,
        "completion {what} of a {} task",
        before.state
    );
    let after = get(store, id).await?;
    ensure_eq!(after, before, "task {id} after the stale completion {what}");
    Ok(())
}

/// The task `id`, failing if the store does not know it.
pub async fn get(store: &Handle, id: TaskId) -> Result<Task> {
    store
        .get_task(id)
        .await
        .with_context(|| format!("get_task({id})"))?
        .with_context(|| format!("task {id} not found"))
}

/// Fails unless task `id` is in `state`.
pub async fn ensure_state(store: &Handle, id: TaskId, state: TaskState) -> Result<Task> {
    let task = get(store, id).await?;
    ensure_eq!(task.state, state, "state of task {id}");
    Ok(task)
}

/// The ids `list_tasks` returns for `filter`, in order.
pub async fn list_ids(store: &Handle, filter: TaskFilter) -> Result<Vec<TaskId>> {
    let what = format!("{filter:?}");
    let tasks = store
        .list_tasks(filter)
        .await
        .with_context(|| format!("list_tasks({what})"))?;
    Ok(tasks.into_iter().map(|t| t.id).collect())
}

/// Every task in the store, newest first.
pub async fn all_tasks(store: &Handle) -> Result<Vec<Task>> {
    let filter = TaskFilter {
        limit: 100_000,
        ..TaskFilter::default()
    };
    store.list_tasks(filter).await.context("list_tasks(all)")
}

/// A worker's self-description, as a worker named `name` would send it.
pub fn worker_info(name: &str) -> WorkerInfo {
    WorkerInfo {
        name: name.to_string(),
        host: "host-1".to_string(),
        pid: 4242,
        queues: vec!["default".to_string()],
        runners: 2,
        tasks: Vec::new(),
        started_at: t0(),
        version: "0.1.0".to_string(),
        ..WorkerInfo::default()
    }
}

/// Registers workers named `names` at the start of the clock.
pub async fn register_workers(store: &Handle, names: &[&str]) -> Result<()> {
    for name in names {
        store
            .register_worker(worker_info(name), t0())
            .await
            .with_context(|| format!("register_worker({name})"))?;
    }
    Ok(())
}

/// `worker`'s heartbeat at `now` for `leases`, extending them to `now + LEASE`.
pub async fn heartbeat(
    store: &Handle,
    worker: &str,
    leases: Vec<(TaskId, u32)>,
    now: DateTime<Utc>,
) -> Result<HeartbeatReply> {
    let mut info = worker_info(worker);
    info.tasks = leases.iter().map(|(id, _)| *id).collect();
    let beat = Heartbeat {
        worker: info,
        leases,
        lease_until: now + lease(),
        now,
    };
    store.heartbeat(beat).await.context("heartbeat")
}

/// [`LEASE`] as a chrono duration, for time arithmetic.
pub fn lease() -> chrono::Duration {
    chrono::Duration::from_std(LEASE).expect("a small duration")
}

/// Fails unless `result` is [`StoreError::InvalidTransition`] for task `id` in `state`.
pub fn ensure_invalid_transition<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    id: TaskId,
    state: TaskState,
    action: &str,
) -> Result<()> {
    match result {
        Err(StoreError::InvalidTransition {
            id: got,
            state: got_state,
            ..
        }) if got == id && got_state == state => Ok(()),
        other => bail!(
            "{action} of task {id} in state {state}: expected InvalidTransition {{ id: {id}, state: {state} }}, got {other:?}"
        ),
    }
}

/// Fails unless `result` is [`StoreError::TaskNotFound`] for `id`.
pub fn ensure_task_not_found<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    id: TaskId,
    action: &str,
) -> Result<()> {
    match result {
        Err(StoreError::TaskNotFound(got)) if got == id => Ok(()),
        other => bail!("{action} of unknown task {id}: expected TaskNotFound({id}), got {other:?}"),
    }
}

/// The worker [`task_in_state`] claims with.
pub const SETUP_WORKER: &str = "setup";

/// Enqueues `new` at `now` and drives it into `state` at `now`: claimed by
/// [`SETUP_WORKER`] for `running`, then succeeded (`completed`), failed with a retry in an
/// hour (`retryable`) or without one (`dead`); cancelled for `cancelled`; delayed by an
/// hour (unless it has a later `run_at`) for `scheduled`. Returns its id.
///
/// The task must be the one a claim from its queue takes next: create available tasks on
/// the same queue after the ones that need a claim.
pub async fn task_in_state(
    store: &Handle,
    new: NewTask,
    state: TaskState,
    now: DateTime<Utc>,
) -> Result<TaskId> {
    let later = now + chrono::Duration::hours(1);
    let new = match (state, new.run_at) {
        (TaskState::Scheduled, run_at) if run_at.is_none_or(|at| at <= now) => new.run_at(later),
        _ => new,
    };
    let queue = new.queue.clone();
    let id = enqueue_one(store, new, now).await?;
    let outcome = match state {
        TaskState::Scheduled | TaskState::Available => return Ok(id),
        TaskState::Cancelled => {
            store.cancel_task(id, now).await.context("cancel_task")?;
            return Ok(id);
        }
        TaskState::Running => None,
        TaskState::Completed => Some(succeeded(json!({ "ok": id }))),
        TaskState::Retryable => Some(failed("setup failure", Some(later))),
        TaskState::Dead => Some(failed("setup failure", None)),
    };
    let claimed = claim_from(store, SETUP_WORKER, QueueFilter::Only(vec![queue]), 1, now).await?;
    ensure!(
        ids_of(&claimed) == [id],
        "setup: claiming task {id} to make it {state} took {:?} instead",
        ids_of(&claimed)
    );
    if let Some(outcome) = outcome {
        complete_as(
            store,
            completion(&claimed[0], SETUP_WORKER, outcome),
            now,
            state,
        )
        .await?;
    }
    Ok(id)
}
