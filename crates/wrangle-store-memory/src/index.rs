//! The memory store's indexes over its tasks, each derived from the tasks' fields alone:
//! waiting tasks in claim order, running tasks, tasks per queue and state, tasks by finish
//! time. The store changes a task only through `State::edit`, which takes the task out of
//! every index before the change and puts it back after, so no index can drift from the
//! tasks whatever the change did. This module owns the indexes, not the tasks.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Utc};
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
    /// Tasks that have a finish time, by that time: the last minute's figures and pruning
    /// walk only the range they need.
    finished: BTreeSet<(DateTime<Utc>, TaskId)>,
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

    /// Tasks per queue and state (states with no task left out).
    pub(crate) fn counts(&self) -> impl Iterator<Item = (&str, TaskState, u64)> {
        self.counts.iter().flat_map(|(queue, states)| {
            states
                .iter()
                .map(move |(state, n)| (queue.as_str(), *state, *n))
        })
    }

    /// Tasks that finished in `(after, until]`, oldest first.
    pub(crate) fn finished_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Iterator<Item = TaskId> + '_ {
        self.finished
            .range((after, TaskId::MAX)..)
            .take_while(move |(finished, _)| *finished <= until)
            .map(|(_, id)| *id)
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
