//! Jobs: named groups of tasks with one progress view (DScript's range runs).
//!
//! A *range job* covers ids `start..end` (end exclusive) in blocks of `block` ids, one task
//! per block. Its blocks are not stored when the job is created: the job keeps a `cursor`
//! (the start of the next block to hand out), and a claim that finds fewer due tasks than
//! it asked for advances the cursor of an eligible job and creates the blocks it takes,
//! already running under the claiming worker. So a job over 10^12 ids costs one record to
//! create, and the store holds only blocks that were handed out. A block that fails is an
//! ordinary task from then on: it is retried, rescued and dead-lettered like any other, and
//! due tasks are always claimed before new blocks are made.
//!
//! A *list job* has one task per item. Its tasks are enqueued by the caller (tagged with the
//! job's name) before its record is created with its cursor already at the end, so claims
//! never make blocks for it.
//!
//! Progress is computed here, from the job record and the per-(state, worker) tallies a
//! store aggregates from the job's tasks ([`BlockTally`]), so every store reports the same
//! numbers.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::store::{ClaimedTask, StoreError};
use crate::task::{DEFAULT_QUEUE, DEFAULT_RETRIES, TaskId, TaskState};

/// Whether a job's blocks come from a range of ids or from a list of items.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Ids `start..end` in blocks, created lazily by claims.
    Range,
    /// One task per item, enqueued when the job was created.
    List,
}

impl JobKind {
    /// The lowercase name stores keep.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Range => "range",
            JobKind::List => "list",
        }
    }

    /// Reads a stored name back.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "range" => Ok(JobKind::Range),
            "list" => Ok(JobKind::List),
            other => Err(StoreError::Backend(format!("unknown job kind '{other}'"))),
        }
    }
}

/// A job to create. Build it with [`NewJob::range`] or [`NewJob::list`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// Unique name.
    pub name: String,
    /// Range or list.
    pub kind: JobKind,
    /// Queue its blocks go to.
    pub queue: String,
    /// Handler of its blocks.
    pub task_kind: String,
    /// Priority of its blocks.
    pub priority: i32,
    /// Attempts each block gets.
    pub max_attempts: u32,
    /// Per-attempt time limit of each block.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>))]
    #[serde(with = "crate::task::duration_ms")]
    pub timeout: Option<Duration>,
    /// First id (0 for a list job).
    pub start: i64,
    /// One past the last id (the item count for a list job).
    pub end: i64,
    /// Ids per block (1 for a list job).
    pub block: i64,
}

impl NewJob {
    /// A range job over `start..end` in blocks of `block` ids.
    pub fn range(
        name: impl Into<String>,
        task_kind: impl Into<String>,
        start: i64,
        end: i64,
        block: i64,
    ) -> Self {
        NewJob {
            name: name.into(),
            kind: JobKind::Range,
            queue: DEFAULT_QUEUE.to_string(),
            task_kind: task_kind.into(),
            priority: 0,
            max_attempts: DEFAULT_RETRIES + 1,
            timeout: None,
            start,
            end,
            block,
        }
    }

    /// A list job of `items` tasks (enqueued separately, see the module documentation).
    pub fn list(name: impl Into<String>, task_kind: impl Into<String>, items: u64) -> Self {
        NewJob {
            kind: JobKind::List,
            ..NewJob::range(name, task_kind, 0, items as i64, 1)
        }
    }

    /// Puts its blocks on `queue`.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// Gives each block `retries` attempts after the first.
    pub fn retries(mut self, retries: u32) -> Self {
        self.max_attempts = retries.saturating_add(1);
        self
    }

    /// Limits each attempt to `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the blocks' priority.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Checks the definition; stores call this before creating anything.
    pub fn validate(&self) -> Result<(), StoreError> {
        let invalid = |why: String| Err(StoreError::InvalidRequest(why));
        if self.name.trim().is_empty() {
            return invalid("a job needs a name".into());
        }
        if self.task_kind.is_empty() || self.queue.is_empty() {
            return invalid("a job needs a kind and a queue".into());
        }
        if self.block < 1 {
            return invalid(format!("block size must be at least 1, not {}", self.block));
        }
        if self.end < self.start {
            return invalid(format!(
                "range {}..{} ends before it starts",
                self.start, self.end
            ));
        }
        if self.end.checked_sub(self.start).is_none() {
            return invalid(format!("range {}..{} is too large", self.start, self.end));
        }
        Ok(())
    }

    /// The job record a store keeps for this definition, created at `now`: a range job's
    /// cursor at its start, a list job's at its end (its tasks exist already).
    pub fn into_job(self, now: DateTime<Utc>) -> Job {
        let cursor = match self.kind {
            JobKind::Range => self.start,
            JobKind::List => self.end,
        };
        Job {
            cursor,
            cancelled: false,
            created_at: now,
            definition: self,
        }
    }
}

/// A job as a store keeps it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// What was asked for.
    #[serde(flatten)]
    pub definition: NewJob,
    /// Start of the next block a claim will create (`end` once every block exists).
    pub cursor: i64,
    /// Cancelled jobs create no more blocks.
    pub cancelled: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl Job {
    /// The job's name.
    pub fn name(&self) -> &str {
        &self.definition.name
    }

    /// Ids in the job.
    pub fn total_ids(&self) -> u64 {
        (self.definition.end - self.definition.start) as u64
    }

    /// Blocks in the job.
    pub fn total_blocks(&self) -> u64 {
        self.total_ids().div_ceil(self.definition.block as u64)
    }

    /// Blocks handed out (created) so far.
    pub fn created_blocks(&self) -> u64 {
        ((self.cursor - self.definition.start) as u64).div_ceil(self.definition.block as u64)
    }

    /// Whether a claim may still create blocks of this job.
    pub fn has_blocks_to_create(&self) -> bool {
        !self.cancelled && self.cursor < self.definition.end
    }

    /// The next `count` (at most) blocks from the cursor, as `(start, end)` pairs, and the
    /// cursor after them. Claims call this to create blocks.
    pub fn next_blocks(&self, count: usize) -> (Vec<(i64, i64)>, i64) {
        let mut blocks = Vec::new();
        let mut cursor = self.cursor;
        while blocks.len() < count && cursor < self.definition.end && !self.cancelled {
            let end = cursor
                .saturating_add(self.definition.block)
                .min(self.definition.end);
            blocks.push((cursor, end));
            cursor = end;
        }
        (blocks, cursor)
    }
}

impl Job {
    /// The claimed task a store returns for a new block `start..end` of this job, created
    /// with `id` and leased until `lease_until` (attempt 1; the job's queue, kind, attempts
    /// and timeout).
    pub fn claimed_block(
        &self,
        id: TaskId,
        (start, end): (i64, i64),
        lease_until: DateTime<Utc>,
    ) -> ClaimedTask {
        let definition = &self.definition;
        ClaimedTask {
            id,
            queue: definition.queue.clone(),
            kind: definition.task_kind.clone(),
            payload: block_payload(start, end),
            attempt: 1,
            max_attempts: definition.max_attempts,
            timeout: definition.timeout,
            job: Some(definition.name.clone()),
            lease_until,
        }
    }
}

/// The payload of a range block: what handlers see as `{start}`, `{end}`,
/// `WRANGLE_START` and `WRANGLE_END`.
pub fn block_payload(start: i64, end: i64) -> Value {
    json!({ "start": start, "end": end })
}

/// The `(start, end)` of a range block's payload (both integers), if it is one.
pub fn block_bounds(payload: &Value) -> Option<(i64, i64)> {
    Some((
        payload.get("start")?.as_i64()?,
        payload.get("end")?.as_i64()?,
    ))
}

/// How many ids a task of a job stands for: `end - start` of a range block, 1 for an item.
pub fn ids_of_payload(payload: &Value) -> u64 {
    match block_bounds(payload) {
        // i128: `end - start` of a huge range overflows i64 (but always fits in u64).
        Some((start, end)) if end >= start => (end as i128 - start as i128) as u64,
        _ => 1,
    }
}

/// A store's aggregate of a job's tasks: those in one state, last held by one worker.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockTally {
    /// Their state.
    pub state: TaskState,
    /// The worker that holds or last held them (`None` for never-claimed tasks).
    pub worker: Option<String>,
    /// How many tasks.
    pub blocks: u64,
    /// How many ids they cover.
    pub ids: u64,
}

/// What a store counts for one job (see `Store::job_tallies`): counters kept by the moves
/// of its tasks, so reading them costs the same for a job of ten blocks or ten million.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTallies {
    /// Its tasks per (state, worker), in any order, no empty group. A task deleted by
    /// pruning stays counted as it was when it was deleted, so progress stays exact.
    pub blocks: Vec<BlockTally>,
    /// Ids of its tasks that completed in the last minute: the attempts that ended in the
    /// seconds of `recent_seconds(now)`, whatever happened to the tasks since.
    pub ids_completed_last_minute: u64,
}

/// Where a job stands as a whole.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Blocks remain to run.
    Running,
    /// Every block completed.
    Completed,
    /// Nothing left to run, but some blocks are dead (or were cancelled).
    Failed,
    /// Cancelled by an operator.
    Cancelled,
}

impl JobStatus {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }
}

/// Blocks and ids in one bucket of a job's progress.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    /// Blocks (tasks).
    pub blocks: u64,
    /// Ids they cover.
    pub ids: u64,
}

impl Count {
    fn add(&mut self, blocks: u64, ids: u64) {
        self.blocks += blocks;
        self.ids += ids;
    }
}

/// One worker's share of a job's completed work.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerShare {
    /// The worker.
    pub worker: String,
    /// Blocks and ids it completed.
    pub done: Count,
    /// Blocks it is running now.
    pub running: u64,
}

/// A job's progress, as `wrangle job status` shows it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobProgress {
    /// The job.
    pub job: Job,
    /// Overall status.
    pub status: JobStatus,
    /// Everything in the job.
    pub total: Count,
    /// Completed blocks.
    pub done: Count,
    /// Dead blocks (failed with no attempts left).
    pub failed: Count,
    /// Blocks running now.
    pub running: Count,
    /// Blocks waiting: due, delayed or waiting for a retry, plus those not created yet.
    pub waiting: Count,
    /// Cancelled blocks.
    pub cancelled: Count,
    /// Ids completed per second over the last minute (or since creation, if younger).
    pub rate: f64,
    /// Time left at that rate, while the job runs and the rate is above zero.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>))]
    #[serde(with = "crate::task::duration_ms")]
    pub eta: Option<Duration>,
    /// Per-worker shares, most done first.
    pub workers: Vec<WorkerShare>,
}

impl JobProgress {
    /// Computes a job's progress from its record and its tasks' tallies at `now`.
    pub fn compute(job: Job, tallies: &JobTallies, now: DateTime<Utc>) -> Self {
        let mut progress = JobProgress {
            status: JobStatus::Running,
            total: Count {
                blocks: job.total_blocks(),
                ids: job.total_ids(),
            },
            done: Count::default(),
            failed: Count::default(),
            running: Count::default(),
            waiting: Count::default(),
            cancelled: Count::default(),
            rate: 0.0,
            eta: None,
            workers: Vec::new(),
            job,
        };
        let mut shares: BTreeMap<String, WorkerShare> = BTreeMap::new();
        for tally in &tallies.blocks {
            let bucket = match tally.state {
                TaskState::Completed => &mut progress.done,
                TaskState::Dead => &mut progress.failed,
                TaskState::Running => &mut progress.running,
                TaskState::Cancelled => &mut progress.cancelled,
                TaskState::Scheduled | TaskState::Available | TaskState::Retryable => {
                    &mut progress.waiting
                }
            };
            bucket.add(tally.blocks, tally.ids);
            if let Some(worker) = &tally.worker
                && matches!(tally.state, TaskState::Completed | TaskState::Running)
            {
                let share = shares.entry(worker.clone()).or_insert_with(|| WorkerShare {
                    worker: worker.clone(),
                    done: Count::default(),
                    running: 0,
                });
                if tally.state == TaskState::Completed {
                    share.done.add(tally.blocks, tally.ids);
                } else {
                    share.running += tally.blocks;
                }
            }
        }
        // Blocks the cursor has not reached yet are waiting (every block it passed is a
        // task, counted above even once pruned).
        let created = Count {
            blocks: progress.job.created_blocks(),
            ids: (progress.job.cursor - progress.job.definition.start) as u64,
        };
        progress.waiting.add(
            progress.total.blocks.saturating_sub(created.blocks),
            progress.total.ids.saturating_sub(created.ids),
        );

        let age = (now - progress.job.created_at)
            .to_std()
            .unwrap_or_default()
            .as_secs_f64();
        let window = age.clamp(1.0, 60.0);
        progress.rate = tallies.ids_completed_last_minute as f64 / window;
        let unfinished = progress.running.blocks + progress.waiting.blocks;
        progress.status = if progress.job.cancelled {
            JobStatus::Cancelled
        } else if unfinished > 0 {
            JobStatus::Running
        } else if progress.failed.blocks + progress.cancelled.blocks > 0 {
            JobStatus::Failed
        } else {
            JobStatus::Completed
        };
        if progress.status == JobStatus::Running && progress.rate > 0.0 {
            let left = progress.running.ids + progress.waiting.ids;
            progress.eta = Some(Duration::from_secs_f64(left as f64 / progress.rate));
        }
        let mut workers: Vec<WorkerShare> = shares.into_values().collect();
        workers.sort_by(|a, b| {
            b.done
                .ids
                .cmp(&a.done.ids)
                .then_with(|| a.worker.cmp(&b.worker))
        });
        progress.workers = workers;
        progress
    }

    /// Ids finished: completed, dead or cancelled.
    pub fn finished_ids(&self) -> u64 {
        self.done.ids + self.failed.ids + self.cancelled.ids
    }

    /// Fraction of ids finished, 0.0 to 1.0.
    pub fn fraction_finished(&self) -> f64 {
        if self.total.ids == 0 {
            return 1.0;
        }
        self.finished_ids() as f64 / self.total.ids as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    fn tally(state: TaskState, worker: Option<&str>, blocks: u64, ids: u64) -> BlockTally {
        BlockTally {
            state,
            worker: worker.map(str::to_string),
            blocks,
            ids,
        }
    }

    #[test]
    fn definitions_are_checked() {
        assert!(NewJob::range("j", "k", 0, 10, 3).validate().is_ok());
        assert!(NewJob::range("j", "k", 5, 5, 3).validate().is_ok(), "empty");
        for bad in [
            NewJob::range("", "k", 0, 10, 3),
            NewJob::range("j", "", 0, 10, 3),
            NewJob::range("j", "k", 0, 10, 0),
            NewJob::range("j", "k", 10, 0, 1),
            NewJob::range("j", "k", i64::MIN, i64::MAX, 1),
        ] {
            assert!(
                matches!(bad.validate(), Err(StoreError::InvalidRequest(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn blocks_partition_the_range_exactly() {
        for (start, end, block) in [
            (0, 10, 3),
            (0, 9, 3),
            (-5, 5, 4),
            (7, 8, 100),
            (0, 0, 1),
            (i64::MAX - 10, i64::MAX, 4),
        ] {
            let mut job = NewJob::range("j", "k", start, end, block).into_job(at(0));
            let mut covered = Vec::new();
            let mut made = 0;
            loop {
                let (blocks, cursor) = job.next_blocks(2);
                if blocks.is_empty() {
                    break;
                }
                assert!(blocks.len() <= 2);
                made += blocks.len() as u64;
                covered.extend(blocks);
                job.cursor = cursor;
                assert_eq!(job.created_blocks(), made);
            }
            assert_eq!(made, job.total_blocks(), "{start}..{end}/{block}");
            let mut expected = start;
            for (s, e) in covered {
                assert_eq!(s, expected);
                assert!(e > s && e - s <= block);
                expected = e;
            }
            assert_eq!(expected, end);
            assert!(!job.has_blocks_to_create());
        }
    }

    #[test]
    fn cancelled_and_list_jobs_create_no_blocks() {
        let mut job = NewJob::range("j", "k", 0, 10, 1).into_job(at(0));
        job.cancelled = true;
        assert!(job.next_blocks(5).0.is_empty());
        let list = NewJob::list("l", "k", 4).into_job(at(0));
        assert_eq!((list.cursor, list.total_blocks()), (4, 4));
        assert!(list.next_blocks(5).0.is_empty());
    }

    #[test]
    fn payload_ids_are_the_block_length_or_one() {
        assert_eq!(ids_of_payload(&block_payload(10, 25)), 15);
        assert_eq!(ids_of_payload(&json!("item")), 1);
        assert_eq!(ids_of_payload(&json!({"start": 5})), 1);
        assert_eq!(
            ids_of_payload(&block_payload(i64::MIN, i64::MAX)),
            u64::MAX,
            "no overflow"
        );
    }

    #[test]
    fn progress_adds_up_with_lazy_blocks() {
        // 0..1000 in blocks of 100 (10 blocks); the cursor has handed out 5 of them.
        let mut job = NewJob::range("j", "k", 0, 1000, 100).into_job(at(0));
        job.cursor = 500;
        let tallies = JobTallies {
            blocks: vec![
                tally(TaskState::Completed, Some("a"), 2, 200),
                tally(TaskState::Completed, Some("b"), 1, 100),
                tally(TaskState::Running, Some("b"), 1, 100),
                tally(TaskState::Dead, Some("a"), 1, 100),
            ],
            ids_completed_last_minute: 120,
        };
        let p = JobProgress::compute(job, &tallies, at(30));
        assert_eq!(p.status, JobStatus::Running);
        assert_eq!(
            p.total,
            Count {
                blocks: 10,
                ids: 1000
            }
        );
        assert_eq!(
            p.done,
            Count {
                blocks: 3,
                ids: 300
            }
        );
        assert_eq!(p.failed.blocks, 1);
        assert_eq!(p.running.blocks, 1);
        assert_eq!(
            p.waiting,
            Count {
                blocks: 5,
                ids: 500
            },
            "not created yet"
        );
        assert!((p.rate - 4.0).abs() < 1e-9, "120 ids over 30 s");
        assert_eq!(p.eta, Some(Duration::from_secs(150)), "600 ids left at 4/s");
        assert_eq!(p.workers[0].worker, "a");
        assert_eq!(p.workers[0].done.ids, 200);
        assert_eq!((p.workers[1].done.ids, p.workers[1].running), (100, 1));
        assert!((p.fraction_finished() - 0.4).abs() < 1e-9);
    }

    #[test]
    fn status_is_completed_failed_or_cancelled_once_nothing_is_left() {
        let mut job = NewJob::range("j", "k", 0, 200, 100).into_job(at(0));
        job.cursor = 200;
        let all_done = JobTallies {
            blocks: vec![tally(TaskState::Completed, Some("a"), 2, 200)],
            ids_completed_last_minute: 0,
        };
        let p = JobProgress::compute(job.clone(), &all_done, at(90));
        assert_eq!((p.status, p.eta, p.rate), (JobStatus::Completed, None, 0.0));
        let one_dead = JobTallies {
            blocks: vec![
                tally(TaskState::Completed, Some("a"), 1, 100),
                tally(TaskState::Dead, Some("a"), 1, 100),
            ],
            ids_completed_last_minute: 0,
        };
        let p = JobProgress::compute(job.clone(), &one_dead, at(90));
        assert_eq!(p.status, JobStatus::Failed);
        job.cancelled = true;
        let p = JobProgress::compute(job, &one_dead, at(90));
        assert_eq!(p.status, JobStatus::Cancelled);
    }
}
