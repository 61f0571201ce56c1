//! Jobs from the library: create range and list jobs, read their progress, cancel them,
//! retry their dead blocks. The CLI's `wrangle job` is a thin layer over these.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use wrangle::jobs::{self, NewJob};
//! let store = wrangle::connect("sqlite://.wrangle/wrangle.db").await?;
//! // One record, however large the range: blocks are created as workers claim them.
//! jobs::create(&store, NewJob::range("backfill", "scan", 0, 11_000_000, 1000)).await?;
//! let progress = jobs::progress(&store, "backfill").await?;
//! println!("{:.1}% done", progress.fraction_finished() * 100.0);
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

pub use wrangle_core::job::{
    BlockTally, Count, Job, JobKind, JobProgress, JobStatus, NewJob, WorkerShare,
};
use wrangle_core::{NewTask, Store, StoreError, TaskFilter, TaskState};

/// Tasks enqueued per store call when a list job is created.
const LIST_CHUNK: usize = 1000;
/// Tasks read per store call when a job's tasks are walked.
const PAGE: usize = 1000;
/// Times a page of task moves is sent again after a transient failure.
const TRANSIENT_TRIES: u64 = 5;

/// Creates a range job (one record; its blocks are made by claims).
pub async fn create(store: &Arc<dyn Store>, job: NewJob) -> Result<Job, StoreError> {
    store.create_job(job, Utc::now()).await
}

/// Creates a list job: one task per item (its payload), then the job record.
///
/// Each item's task has the unique key `job:NAME:INDEX`, so creating the same job again
/// after an interruption (same definition, same items) enqueues only what is missing and
/// then creates the record; a different job of that name is [`StoreError::JobExists`].
pub async fn create_list(
    store: &Arc<dyn Store>,
    job: NewJob,
    items: Vec<Value>,
) -> Result<Job, StoreError> {
    let job = NewJob {
        kind: JobKind::List,
        start: 0,
        end: items.len() as i64,
        block: 1,
        ..job
    };
    job.validate()?;
    if let Some(existing) = store.get_job(&job.name).await? {
        if existing.definition == job {
            return Ok(existing);
        }
        return Err(StoreError::JobExists(job.name));
    }
    let mut index = 0usize;
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let chunk: Vec<NewTask> = items
            .by_ref()
            .take(LIST_CHUNK)
            .map(|item| {
                let task = item_task(&job, index, item);
                index += 1;
                task
            })
            .collect();
        store.enqueue_batch(chunk, Utc::now()).await?;
    }
    store.create_job(job, Utc::now()).await
}

fn item_task(job: &NewJob, index: usize, item: Value) -> NewTask {
    let mut task = NewTask::new(&job.task_kind, item)
        .queue(&job.queue)
        .priority(job.priority)
        .job(&job.name)
        .unique_key(format!("job:{}:{index}", job.name));
    task.max_attempts = job.max_attempts;
    task.timeout = job.timeout;
    task
}

/// A job's progress now.
pub async fn progress(store: &Arc<dyn Store>, name: &str) -> Result<JobProgress, StoreError> {
    let job = store
        .get_job(name)
        .await?
        .ok_or_else(|| StoreError::JobNotFound(name.to_string()))?;
    progress_of(store, job).await
}

/// Every job's progress now, by name (one store call per job, plus one).
pub async fn all_progress(store: &Arc<dyn Store>) -> Result<Vec<JobProgress>, StoreError> {
    let mut all = Vec::new();
    for job in store.list_jobs().await? {
        all.push(progress_of(store, job).await?);
    }
    Ok(all)
}

/// The progress of `job`, whose record the caller has read already.
async fn progress_of(store: &Arc<dyn Store>, job: Job) -> Result<JobProgress, StoreError> {
    let now = Utc::now();
    let tallies = store.job_tallies(job.name(), now).await?;
    Ok(JobProgress::compute(job, &tallies, now))
}

/// Cancels a job: no more blocks are made, and its unfinished tasks are cancelled (running
/// ones are stopped by their workers at their next heartbeat). Returns how many tasks
/// were cancelled.
pub async fn cancel(store: &Arc<dyn Store>, name: &str) -> Result<u64, StoreError> {
    store.cancel_job(name).await?;
    let mut cancelled = 0;
    // Only the unfinished tasks are read: a big job's finished ones stay in the store.
    for state in TaskState::ALL.into_iter().filter(|s| s.can_cancel()) {
        cancelled += move_job_tasks(store, name, state, Move::Cancel).await?;
    }
    Ok(cancelled)
}

/// Runs a job's dead blocks again (and only those); returns how many.
pub async fn retry(store: &Arc<dyn Store>, name: &str) -> Result<u64, StoreError> {
    if store.get_job(name).await?.is_none() {
        return Err(StoreError::JobNotFound(name.to_string()));
    }
    move_job_tasks(store, name, TaskState::Dead, Move::Retry).await
}

/// What an operator does to a job's tasks.
#[derive(Clone, Copy)]
enum Move {
    Cancel,
    Retry,
}

/// Cancels or retries every task of job `name` in `state`, newest first, a page of ids
/// per store call (tasks that moved meanwhile are skipped by the store); returns how many
/// moved. Listing by state with `before_id` is unaffected by the moves: the moved tasks
/// leave the state, and the next page starts below the last id seen.
async fn move_job_tasks(
    store: &Arc<dyn Store>,
    name: &str,
    state: TaskState,
    operation: Move,
) -> Result<u64, StoreError> {
    let mut moved = 0;
    let mut before_id = None;
    loop {
        let page = store
            .list_tasks(TaskFilter {
                state: Some(state),
                job: Some(name.to_string()),
                before_id,
                limit: PAGE,
                ..TaskFilter::default()
            })
            .await?;
        let ids: Vec<_> = page.iter().map(|task| task.id).collect();
        let Some(&last) = ids.last() else {
            return Ok(moved);
        };
        let mut tries = 0;
        moved += loop {
            let outcome = match operation {
                Move::Cancel => store.cancel_tasks(&ids, Utc::now()).await,
                Move::Retry => store.retry_tasks(&ids, Utc::now()).await,
            };
            match outcome {
                Ok(n) => break n,
                // A deadlock with a worker's completion batch over the same rows, or a
                // brief outage: moving a page is idempotent, so it is simply sent again.
                Err(err) if err.is_transient() && tries < TRANSIENT_TRIES => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100 * tries)).await;
                }
                Err(err) => return Err(err),
            }
        };
        if ids.len() < PAGE {
            return Ok(moved);
        }
        before_id = Some(last);
    }
}
