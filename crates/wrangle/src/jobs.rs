//! Jobs from the library: create range and list jobs, read their progress, cancel them,
//! retry their dead blocks, delete them. The CLI's `wrangle job` is a thin layer over these.
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

use chrono::Utc;
use serde_json::Value;

pub use wrangle_core::job::{
    BlockTally, Count, Job, JobKind, JobProgress, JobStatus, JobTallies, NewJob, WorkerShare,
};
use wrangle_core::{NewTask, Store, StoreError, TaskFilter, TaskState};

use crate::tasks::{Move, Progress, move_tasks};

/// Tasks enqueued per store call when a list job is created.
const LIST_CHUNK: usize = 1000;
/// Tasks deleted per store call when a job is deleted.
const DELETE_PAGE: usize = 1000;

/// Creates a range job (one record; its blocks are made by claims).
pub async fn create(store: &Arc<dyn Store>, job: NewJob) -> Result<Job, StoreError> {
    store.create_job(job, Utc::now()).await
}

/// Creates a list job: one task per item (its payload), then the job record.
///
/// Each item's task has the unique key `job:NAME:INDEX`, so creating the same job again
/// after an interruption (same definition, same items) enqueues only what is missing and
/// then creates the record; a different job of that name is [`StoreError::JobExists`].
/// `progress` hears how many items are enqueued, after every store call.
pub async fn create_list(
    store: &Arc<dyn Store>,
    job: NewJob,
    items: Vec<Value>,
    progress: Progress<'_>,
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
        progress(index as u64);
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
        cancelled += move_tasks(store, job_tasks(name, state), Move::Cancel, &|_| {}).await?;
    }
    Ok(cancelled)
}

/// Deletes a job and every task of it, whatever its state (running ones are stopped by
/// their workers at their next heartbeat), a page per store call; returns how many tasks
/// went. `progress` hears the running count. Interrupted, it stops making blocks and
/// running it again finishes the job off.
pub async fn delete(
    store: &Arc<dyn Store>,
    name: &str,
    progress: Progress<'_>,
) -> Result<u64, StoreError> {
    let mut deleted = 0;
    loop {
        let batch = store.delete_job(name, DELETE_PAGE).await?;
        deleted += batch.tasks;
        progress(deleted);
        if batch.done {
            return Ok(deleted);
        }
    }
}

/// Runs a job's dead blocks again (and only those); returns how many.
pub async fn retry(store: &Arc<dyn Store>, name: &str) -> Result<u64, StoreError> {
    if store.get_job(name).await?.is_none() {
        return Err(StoreError::JobNotFound(name.to_string()));
    }
    move_tasks(
        store,
        job_tasks(name, TaskState::Dead),
        Move::Retry,
        &|_| {},
    )
    .await
}

/// A job's tasks in one state.
fn job_tasks(name: &str, state: TaskState) -> TaskFilter {
    TaskFilter {
        state: Some(state),
        job: Some(name.to_string()),
        ..TaskFilter::default()
    }
}
