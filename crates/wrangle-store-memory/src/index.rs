//! The memory store's indexes over its tasks, each derived from the tasks' fields alone:
//! waiting tasks in claim order, running tasks, tasks per queue and state, tasks by finish
//! time, tasks per job; and counters derived from the changes: attempts completed and failed
//! per queue and second, and per job its tasks per (state, worker) and ids completed per
//! second, which pruning does not decrement. The store changes a task only through
//! `State::edit`, which takes the task out of every index before the change and puts it
//! back after, so no index can drift from the tasks whatever the change did. This module
//! owns the indexes, not the tasks.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use wrangle_core::job::{BlockTally, JobTallies, ids_of_payload};
use wrangle_core::store::{recent_second, recent_seconds};
use wrangle_core::task::{Task, TaskId, TaskState};

/// Claim order key: priority descending, then `run_at`, then id.
pub(crate) type WaitingKey = (Reverse<i32>, DateTime<Utc>, TaskId);

#[derive(Debug, Default)]
pub(crate) struct TaskIndex {
    /// Scheduled, available and retryable tasks in claim order: a claim walks it from the
    /// front and stops after `limit` matches instead of sorting the table.
    pub(crate) waiting: BTreeSet<WaitingKey>,
    /// Running tasks: the rescue looks only at these.
    pub(crate) running: HashSet<TaskId>,
    /// Tasks per queue and state: `queue_stats` reads these instead of every task.
    counts: BTreeMap<String, BTreeMap<TaskState, u64>>,
    /// Tasks that have a finish time, by that time: pruning walks only the oldest.
    finished: BTreeSet<(DateTime<Utc>, TaskId)>,
    /// Per queue: (second, failed) -> attempts that ended so in that second (see
    /// `recent_second`); seconds more than two minutes older than the newest are dropped.
    recent: HashMap<String, BTreeMap<(i64, bool), u64>>,
    /// Per job: the ids of its tasks (so deleting a job reads only its own), and its
    /// counters.
    job_tasks: HashMap<String, BTreeSet<TaskId>>,
    jobs: HashMap<String, JobCounts>,
}

/// A group of a job's tasks: those in one state, last held by one worker.
pub(crate) type JobKey = (TaskState, Option<String>);

/// One job's counters: (blocks, ids) per (state, worker), and ids completed per second.
#[derive(Debug, Default)]
struct JobCounts {
    tallies: BTreeMap<JobKey, (u64, u64)>,
    completed: BTreeMap<i64, u64>,
}

impl TaskIndex {
    pub(crate) fn waiting_key(task: &Task) -> WaitingKey {
        (Reverse(task.priority), task.run_at, task.id)
    }

    /// Lists `task` in every index its fields put it in.
    pub(crate) fn add(&mut self, task: &Task) {
        if task.state.is_waiting() {
            self.waiting.insert(Self::waiting_key(task));
        }
        if task.state == TaskState::Running {
            self.running.insert(task.id);
        }
        match self.counts.get_mut(task.queue.as_str()) {
            Some(states) => *states.entry(task.state).or_default() += 1,
            None => {
                self.counts
                    .insert(task.queue.clone(), BTreeMap::from([(task.state, 1)]));
            }
        }
        if let Some(finished) = task.finished_at {
            self.finished.insert((finished, task.id));
        }
    }

    /// Takes `task`, as it was last added, out of every index.
    pub(crate) fn remove(&mut self, task: &Task) {
        self.waiting.remove(&Self::waiting_key(task));
        self.running.remove(&task.id);
        if let Some(states) = self.counts.get_mut(task.queue.as_str()) {
            if let Some(n) = states.get_mut(&task.state) {
                *n -= 1;
                if *n == 0 {
                    states.remove(&task.state);
                }
            }
            if states.is_empty() {
                self.counts.remove(task.queue.as_str());
            }
        }
        if let Some(finished) = task.finished_at {
            self.finished.remove(&(finished, task.id));
        }
    }

    /// Lists a new task with its job's tasks, and counts it.
    pub(crate) fn add_new(&mut self, task: &Task) {
        self.add(task);
        if let Some(job) = &task.job {
            self.job_tasks
                .entry(job.clone())
                .or_default()
                .insert(task.id);
            let ids = ids_of_payload(&task.payload);
            self.count_job(job, (task.state, task.worker.clone()), ids, true);
        }
    }

    /// Takes a deleted task out of every index; its job's counters keep it.
    pub(crate) fn remove_deleted(&mut self, task: &Task) {
        self.remove(task);
        if let Some(job) = &task.job
            && let Some(ids) = self.job_tasks.get_mut(job)
        {
            ids.remove(&task.id);
            if ids.is_empty() {
                self.job_tasks.remove(job);
            }
        }
    }

    /// Adds a task of `job` standing for `task_ids` ids to (or, `add` false, takes it
    /// from) the job's counters of (state, worker) `key`.
    fn count_job(&mut self, job: &str, key: JobKey, task_ids: u64, add: bool) {
        let counts = self.jobs.entry(job.to_string()).or_default();
        let (blocks, ids) = counts.tallies.entry(key.clone()).or_default();
        if add {
            *blocks += 1;
            *ids += task_ids;
        } else {
            *blocks -= 1;
            *ids -= task_ids;
            if *blocks == 0 {
                counts.tallies.remove(&key);
            }
        }
    }

    /// Ids of job `name`'s tasks that still exist, oldest first.
    pub(crate) fn job_tasks(&self, name: &str) -> impl Iterator<Item = TaskId> + '_ {
        self.job_tasks.get(name).into_iter().flatten().copied()
    }

    /// Drops job `name`'s counters (its record is going).
    pub(crate) fn forget_job(&mut self, name: &str) {
        self.jobs.remove(name);
    }

    /// Job `name`'s counters at `now`.
    pub(crate) fn job_tallies(&self, name: &str, now: DateTime<Utc>) -> JobTallies {
        let Some(counts) = self.jobs.get(name) else {
            return JobTallies::default();
        };
        let (first, last) = recent_seconds(now);
        JobTallies {
            blocks: counts
                .tallies
                .iter()
                .map(|((state, worker), (blocks, ids))| BlockTally {
                    state: *state,
                    worker: worker.clone(),
                    blocks: *blocks,
                    ids: *ids,
                })
                .collect(),
            ids_completed_last_minute: counts
                .completed
                .range(first + 1..=last)
                .map(|(_, n)| n)
                .sum(),
        }
    }

    /// Counts the change of `task`, (state, worker) `before` the edit (the worker only
    /// for a task of a job): its job's counters move it, and an attempt that ended (a
    /// running task that completed, or failed: retryable or dead) is counted for its queue
    /// and, completed, its job.
    pub(crate) fn note_edit(&mut self, before: JobKey, task: &Task) {
        if let Some(job) = &task.job
            && (before.0 != task.state || before.1 != task.worker)
        {
            let ids = ids_of_payload(&task.payload);
            self.count_job(job, before.clone(), ids, false);
            self.count_job(job, (task.state, task.worker.clone()), ids, true);
        }
        let failed = match task.state {
            TaskState::Completed => false,
            TaskState::Retryable | TaskState::Dead => true,
            _ => return,
        };
        let Some(finished) = task.finished_at.filter(|_| before.0 == TaskState::Running) else {
            return;
        };
        let second = recent_second(finished.timestamp_millis());
        if let Some(job) = task.job.as_ref().filter(|_| !failed)
            && let Some(counts) = self.jobs.get_mut(job)
        {
            *counts.completed.entry(second).or_default() += ids_of_payload(&task.payload);
            if counts.completed.len() > 240 {
                counts.completed = counts.completed.split_off(&(second - 120));
            }
        }
        let buckets = self.recent.entry(task.queue.clone()).or_default();
        *buckets.entry((second, failed)).or_default() += 1;
        if buckets.len() > 240 {
            *buckets = buckets.split_off(&(second - 120, false));
        }
    }

    /// Attempts of `queue` (completed, failed) in the minute before `now`.
    pub(crate) fn recent(&self, queue: &str, now: DateTime<Utc>) -> (u64, u64) {
        let (first, last) = recent_seconds(now);
        let Some(buckets) = self.recent.get(queue) else {
            return (0, 0);
        };
        buckets.range((first + 1, false)..=(last, true)).fold(
            (0, 0),
            |(done, failed), ((_, f), n)| {
                if *f {
                    (done, failed + n)
                } else {
                    (done + n, failed)
                }
            },
        )
    }

    /// Tasks per queue and state (states with no task left out).
    pub(crate) fn counts(&self) -> impl Iterator<Item = (&str, TaskState, u64)> {
        self.counts.iter().flat_map(|(queue, states)| {
            states
                .iter()
                .map(move |(state, n)| (queue.as_str(), *state, *n))
        })
    }

    /// Tasks that finished before `before`, oldest first.
    pub(crate) fn finished_before(
        &self,
        before: DateTime<Utc>,
    ) -> impl Iterator<Item = TaskId> + '_ {
        self.finished
            .iter()
            .take_while(move |(finished, _)| *finished < before)
            .map(|(_, id)| *id)
    }
}
