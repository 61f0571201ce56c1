//! The memory store's indexes over its tasks, each derived from the tasks' fields alone:
//! waiting tasks in claim order, running tasks, tasks per queue and state, tasks by finish
//! time; and one derived from the changes: attempts completed and failed per queue and
//! second. The store changes a task only through `State::edit`, which takes the task out
//! of every index before the change and puts it back after, so no index can drift from the
//! tasks whatever the change did. This module owns the indexes, not the tasks.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
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

    /// Counts the attempt that `task`, `before` in that state, just ended, if it did: a
    /// running task that completed, or failed (retryable or dead).
    pub(crate) fn note_ended(&mut self, before: TaskState, task: &Task) {
        let failed = match task.state {
            TaskState::Completed => false,
            TaskState::Retryable | TaskState::Dead => true,
            _ => return,
        };
        let Some(finished) = task.finished_at.filter(|_| before == TaskState::Running) else {
            return;
        };
        let second = recent_second(finished.timestamp_millis());
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
