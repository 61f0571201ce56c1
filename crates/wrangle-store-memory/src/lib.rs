//! The in-memory store: the reference implementation of [`Store`], and the store
//! `wrangle run` uses when no journal is asked for.
//!
//! Everything lives behind one mutex in this process, so every operation is trivially
//! atomic; it is the executable specification the SQL and Redis stores are checked
//! against by the conformance suite. Nothing survives the process.
//!
//! Tasks change only through `State::edit`, which keeps the indexes of [`index`] (claim
//! order, running tasks, counts per queue and state, finish times) in step, so claims,
//! rescues, `queue_stats` and pruning cost the same however many finished tasks are kept.

mod index;
mod logs;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use wrangle_core::job::{Job, JobTallies, NewJob, block_payload};
use wrangle_core::log::{LogAppend, LogLine, LogOwner, newest_per_owner};
use wrangle_core::notify::TopicSignals;
use wrangle_core::store::{
    ClaimRequest, ClaimedTask, Completion, CompletionStatus, Enqueued, Heartbeat, HeartbeatReply,
    JobDeletion, Listener, Outcome, PruneRequest, QueueStats, Store, StoreError, StoreInfo,
    TaskFilter, Topic,
};
use wrangle_core::task::{AttemptRecord, NewTask, Task, TaskId, TaskState};
use wrangle_core::worker::{
    CommandEnvelope, CommandId, ControlCommand, LOST_AFTER_LEASES, WorkerInfo, WorkerRecord,
};

use crate::index::TaskIndex;

#[derive(Debug, Default)]
struct State {
    next_id: TaskId,
    tasks: BTreeMap<TaskId, Task>,
    index: TaskIndex,
    unique: HashMap<String, TaskId>,
    paused: BTreeSet<String>,
    workers: BTreeMap<String, WorkerRecord>,
    next_command: CommandId,
    commands: BTreeMap<CommandId, CommandEnvelope>,
    jobs: BTreeMap<String, Job>,
    logs: logs::Logs,
    /// Maintenance duties: who holds each, until when.
    turns: HashMap<String, (String, DateTime<Utc>)>,
}

impl State {
    /// Applies `change` to task `id` (which exists), keeping every index in step.
    fn edit<R>(&mut self, id: TaskId, change: impl FnOnce(&mut Task) -> R) -> R {
        let task = self.tasks.get_mut(&id).expect("task exists");
        // The worker matters to the job's counters only.
        let before = (task.state, task.job.as_ref().and(task.worker.clone()));
        self.index.remove(task);
        let out = change(task);
        self.index.add(task);
        self.index.note_edit(before, task);
        out
    }

    fn insert_task(&mut self, task: Task) {
        self.index.add_new(&task);
        self.tasks.insert(task.id, task);
    }

    /// Removes task `id` with its unique key and log ring.
    fn remove_task(&mut self, id: TaskId) {
        self.logs.remove(&LogOwner::Task(id));
        if let Some(task) = self.tasks.remove(&id) {
            self.index.remove_deleted(&task);
            if let Some(key) = task.unique_key {
                self.unique.remove(&key);
            }
        }
    }

    /// Marks job `name` cancelled (claims make no more of its blocks).
    fn cancel_job(&mut self, name: &str) -> Result<&Job, StoreError> {
        let job = self
            .jobs
            .get_mut(name)
            .ok_or_else(|| StoreError::JobNotFound(name.to_string()))?;
        job.cancelled = true;
        Ok(job)
    }

    fn task_mut(&mut self, id: TaskId) -> Result<&mut Task, StoreError> {
        self.tasks.get_mut(&id).ok_or(StoreError::TaskNotFound(id))
    }

    /// Task `id` if `allowed` accepts its state, else `InvalidTransition` for `action`.
    fn task_allowing(
        &mut self,
        id: TaskId,
        allowed: fn(TaskState) -> bool,
        action: &'static str,
    ) -> Result<&mut Task, StoreError> {
        let task = self.task_mut(id)?;
        if !allowed(task.state) {
            return Err(StoreError::InvalidTransition {
                id,
                state: task.state,
                action,
            });
        }
        Ok(task)
    }

    /// An operator's retry of task `id` (see `Store::retry_task`).
    fn retry(&mut self, id: TaskId, now: DateTime<Utc>) -> Result<(), StoreError> {
        let task = self.task_allowing(id, TaskState::can_retry, "retry")?;
        if task.attempt >= task.max_attempts {
            task.max_attempts = task.attempt + 1;
        }
        self.edit(id, |task| wait(task, TaskState::Available, now));
        Ok(())
    }

    /// An operator's cancel of task `id` (see `Store::cancel_task`).
    fn cancel(&mut self, id: TaskId, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.task_allowing(id, TaskState::can_cancel, "cancel")?;
        self.edit(id, |task| {
            if task.state == TaskState::Running {
                task.attempts.push(attempt_record(task, now, "cancelled"));
            }
            task.state = TaskState::Cancelled;
            task.finished_at = Some(now);
            task.lease_until = None;
        });
        Ok(())
    }

    /// The range job a claim makes blocks from: not cancelled, blocks left, its queue
    /// passing the filter and not paused; highest priority, then oldest, then by name.
    fn job_to_advance(&self, request: &ClaimRequest) -> Option<String> {
        self.jobs
            .values()
            .filter(|job| {
                let queue = &job.definition.queue;
                job.has_blocks_to_create()
                    && request.queues.matches(queue)
                    && !self.paused.contains(queue)
            })
            // The jobs come in name order and min_by_key keeps the first of equals: that
            // is the name tie-break.
            .min_by_key(|job| (Reverse(job.definition.priority), job.created_at))
            .map(|job| job.name().to_string())
    }

    /// Advances `job`'s cursor by up to `count` blocks and adds them as tasks already
    /// running under the claim's worker.
    fn create_blocks(
        &mut self,
        job: &str,
        count: usize,
        request: &ClaimRequest,
        lease_until: DateTime<Utc>,
        claimed: &mut Vec<ClaimedTask>,
    ) {
        let job = self.jobs.get_mut(job).expect("chosen from the jobs");
        let (blocks, cursor) = job.next_blocks(count);
        job.cursor = cursor;
        let definition = job.definition.clone();
        for (start, end) in blocks {
            let id = self.next_id;
            self.next_id += 1;
            let task = Task {
                id,
                queue: definition.queue.clone(),
                kind: definition.task_kind.clone(),
                payload: block_payload(start, end),
                priority: definition.priority,
                state: TaskState::Running,
                run_at: request.now,
                attempt: 1,
                max_attempts: definition.max_attempts,
                timeout: definition.timeout,
                unique_key: None,
                job: Some(definition.name.clone()),
                result: None,
                error: None,
                worker: Some(request.worker.clone()),
                lease_until: Some(lease_until),
                created_at: request.now,
                started_at: Some(request.now),
                finished_at: None,
                attempts: Vec::new(),
            };
            claimed.push(claimed_task(&task, lease_until));
            self.insert_task(task);
        }
    }
}

/// Puts `task` into waiting state `state` until `run_at`.
fn wait(task: &mut Task, state: TaskState, run_at: DateTime<Utc>) {
    task.state = state;
    task.run_at = run_at;
    task.lease_until = None;
}

fn claimed_task(task: &Task, lease_until: DateTime<Utc>) -> ClaimedTask {
    ClaimedTask {
        id: task.id,
        queue: task.queue.clone(),
        kind: task.kind.clone(),
        payload: task.payload.clone(),
        attempt: task.attempt,
        max_attempts: task.max_attempts,
        timeout: task.timeout,
        job: task.job.clone(),
        lease_until,
    }
}

/// The in-memory store. Cheap to clone: clones share the same data.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    topics: Arc<TopicSignals>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore {
            state: Arc::new(Mutex::new(State {
                next_id: 1,
                next_command: 1,
                ..State::default()
            })),
            topics: Arc::new(TopicSignals::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied operation behind
        // that matters more than stopping everything, so poisoning is ignored.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn attempt_record(task: &Task, now: DateTime<Utc>, outcome: &str) -> AttemptRecord {
    AttemptRecord {
        attempt: task.attempt,
        worker: task.worker.clone(),
        started_at: task.started_at,
        finished_at: now,
        outcome: outcome.to_string(),
        error: None,
        retry_at: None,
    }
}

fn lease_expired_error(task: &Task) -> String {
    format!(
        "lease expired: worker {} stopped heartbeating during attempt {}",
        task.worker.as_deref().unwrap_or("?"),
        task.attempt
    )
}

#[async_trait]
impl Store for MemoryStore {
    fn info(&self) -> StoreInfo {
        StoreInfo {
            name: "memory",
            native_notifications: true,
        }
    }

    async fn enqueue_batch(
        &self,
        tasks: Vec<NewTask>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        let mut state = self.lock();
        let mut results = Vec::with_capacity(tasks.len());
        let mut inserted_any = false;
        for new in tasks {
            if let Some(key) = &new.unique_key
                && let Some(&existing) = state.unique.get(key)
            {
                results.push(Enqueued {
                    id: existing,
                    duplicate: true,
                });
                continue;
            }
            let id = state.next_id;
            state.next_id += 1;
            let initial = new.initial_state(now);
            let run_at = new.initial_run_at(now);
            let max_attempts = new.stored_max_attempts();
            let task = Task {
                id,
                queue: new.queue,
                kind: new.kind,
                payload: new.payload,
                priority: new.priority,
                state: initial,
                run_at,
                attempt: 0,
                max_attempts,
                timeout: new.timeout,
                unique_key: new.unique_key,
                job: new.job,
                result: None,
                error: None,
                worker: None,
                lease_until: None,
                created_at: now,
                started_at: None,
                finished_at: None,
                attempts: Vec::new(),
            };
            if let Some(key) = &task.unique_key {
                state.unique.insert(key.clone(), id);
            }
            state.insert_task(task);
            inserted_any = true;
            results.push(Enqueued {
                id,
                duplicate: false,
            });
        }
        drop(state);
        if inserted_any {
            self.topics.notify(Topic::Tasks);
        }
        Ok(results)
    }

    async fn claim_batch(&self, request: ClaimRequest) -> Result<Vec<ClaimedTask>, StoreError> {
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        let lease_until = request.now
            + chrono::Duration::from_std(request.lease)
                .map_err(|_| StoreError::InvalidRequest("lease too long".into()))?;
        let mut state = self.lock();
        let picked: Vec<TaskId> = state
            .index
            .waiting
            .iter()
            .filter(|(_, run_at, id)| {
                let queue = &state.tasks[id].queue;
                *run_at <= request.now
                    && request.queues.matches(queue)
                    && !state.paused.contains(queue)
            })
            .take(request.limit)
            .map(|(_, _, id)| *id)
            .collect();
        let mut claimed = Vec::with_capacity(picked.len());
        for id in picked {
            claimed.push(state.edit(id, |task| {
                task.state = TaskState::Running;
                task.attempt += 1;
                task.worker = Some(request.worker.clone());
                task.lease_until = Some(lease_until);
                task.started_at = Some(request.now);
                claimed_task(task, lease_until)
            }));
        }
        while claimed.len() < request.limit
            && let Some(job) = state.job_to_advance(&request)
        {
            let count = request.limit - claimed.len();
            state.create_blocks(&job, count, &request, lease_until, &mut claimed);
        }
        Ok(claimed)
    }

    async fn complete_batch(
        &self,
        completions: &[Completion],
        now: DateTime<Utc>,
    ) -> Result<Vec<CompletionStatus>, StoreError> {
        let mut state = self.lock();
        let mut statuses = Vec::with_capacity(completions.len());
        let mut released_any = false;
        for completion in completions {
            let holds = state.tasks.get(&completion.id).is_some_and(|task| {
                task.state == TaskState::Running
                    && task.attempt == completion.attempt
                    && task.worker.as_deref() == Some(completion.worker.as_str())
            });
            if !holds {
                statuses.push(CompletionStatus::Stale);
                continue;
            }
            let new_state = state.edit(completion.id, |task| match &completion.outcome {
                Outcome::Succeeded { result } => {
                    task.attempts.push(attempt_record(task, now, "completed"));
                    task.result = Some(result.clone());
                    task.error = None;
                    task.state = TaskState::Completed;
                    task.finished_at = Some(now);
                    task.lease_until = None;
                    TaskState::Completed
                }
                Outcome::Failed { error, retry_at } => {
                    let mut record = attempt_record(task, now, "failed");
                    record.error = Some(error.clone());
                    task.error = Some(error.clone());
                    task.finished_at = Some(now);
                    match retry_at.filter(|_| task.attempt < task.max_attempts) {
                        Some(at) => {
                            record.retry_at = Some(at);
                            task.attempts.push(record);
                            wait(task, TaskState::Retryable, at.max(now));
                            TaskState::Retryable
                        }
                        None => {
                            task.attempts.push(record);
                            task.state = TaskState::Dead;
                            task.lease_until = None;
                            TaskState::Dead
                        }
                    }
                }
                Outcome::Released { reason } => {
                    let mut record = attempt_record(task, now, "released");
                    record.error = Some(reason.clone());
                    task.attempts.push(record);
                    task.attempt -= 1;
                    wait(task, TaskState::Available, now);
                    released_any = true;
                    TaskState::Available
                }
            });
            statuses.push(CompletionStatus::Applied(new_state));
        }
        drop(state);
        self.topics.notify(Topic::Outcomes);
        if released_any {
            self.topics.notify(Topic::Tasks);
        }
        Ok(statuses)
    }

    async fn heartbeat(&self, beat: Heartbeat) -> Result<HeartbeatReply, StoreError> {
        let mut state = self.lock();
        let worker = beat.worker.name.clone();
        let mut lost = Vec::new();
        for (id, attempt) in beat.leases {
            match state.tasks.get_mut(&id) {
                Some(task)
                    if task.state == TaskState::Running
                        && task.attempt == attempt
                        && task.worker.as_deref() == Some(worker.as_str()) =>
                {
                    task.lease_until = Some(beat.lease_until);
                }
                _ => lost.push(id),
            }
        }
        state.workers.insert(
            worker.clone(),
            WorkerRecord {
                info: beat.worker,
                last_seen: beat.now,
            },
        );
        let commands_waiting = state
            .commands
            .values()
            .any(|c| c.worker == worker && c.acked_at.is_none());
        Ok(HeartbeatReply {
            lost,
            commands_waiting,
        })
    }

    async fn rescue_expired(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<TaskId>, StoreError> {
        let mut state = self.lock();
        let mut expired: Vec<TaskId> = state
            .index
            .running
            .iter()
            .copied()
            .filter(|id| state.tasks[id].lease_until.is_some_and(|until| until < now))
            .collect();
        expired.sort_unstable();
        expired.truncate(limit);
        for &id in &expired {
            state.edit(id, |task| {
                let error = lease_expired_error(task);
                let mut record = attempt_record(task, now, "lease expired");
                record.error = Some(error.clone());
                task.attempts.push(record);
                task.error = Some(error);
                task.finished_at = Some(now);
                if task.attempt < task.max_attempts {
                    wait(task, TaskState::Available, now);
                } else {
                    task.state = TaskState::Dead;
                    task.lease_until = None;
                }
            });
        }
        drop(state);
        if !expired.is_empty() {
            self.topics.notify(Topic::Tasks);
            self.topics.notify(Topic::Outcomes);
        }
        Ok(expired)
    }

    async fn get_task(&self, id: TaskId) -> Result<Option<Task>, StoreError> {
        Ok(self.lock().tasks.get(&id).cloned())
    }

    async fn list_tasks(&self, filter: TaskFilter) -> Result<Vec<Task>, StoreError> {
        let state = self.lock();
        let upper = filter.before_id.unwrap_or(TaskId::MAX);
        Ok(state
            .tasks
            .range(..upper)
            .rev()
            .map(|(_, task)| task)
            .filter(|task| filter.state.is_none_or(|s| task.state == s))
            .filter(|task| filter.queue.as_ref().is_none_or(|q| &task.queue == q))
            .filter(|task| {
                filter
                    .job
                    .as_ref()
                    .is_none_or(|j| task.job.as_ref() == Some(j))
            })
            .take(filter.limit)
            .cloned()
            .collect())
    }

    async fn retry_task(&self, id: TaskId, now: DateTime<Utc>) -> Result<Task, StoreError> {
        let mut state = self.lock();
        state.retry(id, now)?;
        let task = state.tasks[&id].clone();
        drop(state);
        self.topics.notify(Topic::Tasks);
        Ok(task)
    }

    async fn retry_tasks(&self, ids: &[TaskId], now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let retried = ids
            .iter()
            .filter(|&&id| state.retry(id, now).is_ok())
            .count();
        drop(state);
        if retried > 0 {
            self.topics.notify(Topic::Tasks);
        }
        Ok(retried as u64)
    }

    async fn retry_dead(
        &self,
        queue: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let dead: Vec<TaskId> = state
            .tasks
            .values()
            .filter(|t| t.state == TaskState::Dead)
            .filter(|t| queue.as_ref().is_none_or(|q| &t.queue == q))
            .map(|t| t.id)
            .collect();
        for &id in &dead {
            state.edit(id, |task| {
                if task.attempt >= task.max_attempts {
                    task.max_attempts = task.attempt + 1;
                }
                wait(task, TaskState::Available, now);
            });
        }
        drop(state);
        if !dead.is_empty() {
            self.topics.notify(Topic::Tasks);
        }
        Ok(dead.len() as u64)
    }

    async fn cancel_task(&self, id: TaskId, now: DateTime<Utc>) -> Result<Task, StoreError> {
        let mut state = self.lock();
        state.cancel(id, now)?;
        let task = state.tasks[&id].clone();
        drop(state);
        self.topics.notify(Topic::Outcomes);
        Ok(task)
    }

    async fn cancel_tasks(&self, ids: &[TaskId], now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let cancelled = ids
            .iter()
            .filter(|&&id| state.cancel(id, now).is_ok())
            .count();
        drop(state);
        if cancelled > 0 {
            self.topics.notify(Topic::Outcomes);
        }
        Ok(cancelled as u64)
    }

    async fn prune_finished(&self, request: PruneRequest) -> Result<u64, StoreError> {
        request.check()?;
        let mut state = self.lock();
        let doomed: Vec<TaskId> = state
            .index
            .finished_before(request.finished_before)
            .filter(|id| state.tasks[id].state == request.state)
            .take(request.limit)
            .collect();
        for &id in &doomed {
            state.remove_task(id);
        }
        Ok(doomed.len() as u64)
    }

    async fn create_job(&self, job: NewJob, now: DateTime<Utc>) -> Result<Job, StoreError> {
        job.validate()?;
        let mut state = self.lock();
        if state.jobs.contains_key(&job.name) {
            return Err(StoreError::JobExists(job.name));
        }
        let job = job.into_job(now);
        state.jobs.insert(job.name().to_string(), job.clone());
        drop(state);
        if job.has_blocks_to_create() {
            self.topics.notify(Topic::Tasks);
        }
        Ok(job)
    }

    async fn get_job(&self, name: &str) -> Result<Option<Job>, StoreError> {
        Ok(self.lock().jobs.get(name).cloned())
    }

    async fn list_jobs(&self) -> Result<Vec<Job>, StoreError> {
        Ok(self.lock().jobs.values().cloned().collect())
    }

    async fn delete_job(&self, name: &str, limit: usize) -> Result<JobDeletion, StoreError> {
        let mut state = self.lock();
        state.cancel_job(name)?;
        let doomed: Vec<TaskId> = state.index.job_tasks(name).take(limit).collect();
        for &id in &doomed {
            state.remove_task(id);
        }
        let done = doomed.len() < limit;
        if done {
            state.jobs.remove(name);
            state.index.forget_job(name);
        }
        Ok(JobDeletion {
            tasks: doomed.len() as u64,
            done,
        })
    }

    async fn cancel_job(&self, name: &str) -> Result<Job, StoreError> {
        self.lock().cancel_job(name).cloned()
    }

    async fn job_tallies(&self, name: &str, now: DateTime<Utc>) -> Result<JobTallies, StoreError> {
        let state = self.lock();
        if !state.jobs.contains_key(name) {
            return Err(StoreError::JobNotFound(name.to_string()));
        }
        Ok(state.index.job_tallies(name, now))
    }

    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<(), StoreError> {
        let mut state = self.lock();
        if paused {
            state.paused.insert(queue.to_string());
        } else {
            state.paused.remove(queue);
        }
        drop(state);
        if !paused {
            self.topics.notify(Topic::Tasks);
        }
        Ok(())
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<Vec<QueueStats>, StoreError> {
        let state = self.lock();
        let mut stats: BTreeMap<String, QueueStats> = BTreeMap::new();
        for queue in &state.paused {
            stats.insert(queue.clone(), QueueStats::empty(queue, true));
        }
        fn entry<'a>(
            stats: &'a mut BTreeMap<String, QueueStats>,
            queue: &str,
        ) -> &'a mut QueueStats {
            stats
                .entry(queue.to_string())
                .or_insert_with(|| QueueStats::empty(queue, false))
        }
        for (queue, task_state, n) in state.index.counts() {
            entry(&mut stats, queue).counts.insert(task_state, n);
        }
        // The oldest due per queue: the waiting set is in claim order, not time order, so
        // this walks the waiting tasks (never the finished ones).
        for (_, run_at, id) in &state.index.waiting {
            if *run_at <= now {
                let oldest = &mut entry(&mut stats, &state.tasks[id].queue).oldest_due_at;
                *oldest = Some(oldest.map_or(*run_at, |o| o.min(*run_at)));
            }
        }
        // The last minute's outcomes, for the queues listed because they have tasks.
        for entry in stats.values_mut().filter(|e| !e.counts.is_empty()) {
            (entry.completed_last_minute, entry.failed_last_minute) =
                state.index.recent(&entry.queue, now);
        }
        Ok(stats.into_values().collect())
    }

    async fn register_worker(
        &self,
        info: WorkerInfo,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.lock().workers.insert(
            info.name.clone(),
            WorkerRecord {
                info,
                last_seen: now,
            },
        );
        Ok(())
    }

    async fn deregister_worker(&self, name: &str) -> Result<(), StoreError> {
        let mut state = self.lock();
        state.workers.remove(name);
        state.logs.remove(&LogOwner::Worker(name.to_string()));
        Ok(())
    }

    async fn list_workers(&self) -> Result<Vec<WorkerRecord>, StoreError> {
        Ok(self.lock().workers.values().cloned().collect())
    }

    async fn prune_lost_workers(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let mut state = self.lock();
        let gone: Vec<String> = state
            .workers
            .values()
            .filter(|w| w.silent_for_leases(now, LOST_AFTER_LEASES))
            .map(|w| w.info.name.clone())
            .collect();
        for name in &gone {
            state.workers.remove(name);
            state.logs.remove(&LogOwner::Worker(name.clone()));
        }
        Ok(gone)
    }

    async fn send_command(
        &self,
        worker: &str,
        command: ControlCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandId, StoreError> {
        let mut state = self.lock();
        let id = state.next_command;
        state.next_command += 1;
        state.commands.insert(
            id,
            CommandEnvelope {
                id,
                worker: worker.to_string(),
                command,
                sent_at: now,
                acked_at: None,
                reply: None,
            },
        );
        drop(state);
        self.topics.notify(Topic::Commands);
        Ok(id)
    }

    async fn pending_commands(&self, worker: &str) -> Result<Vec<CommandEnvelope>, StoreError> {
        Ok(self
            .lock()
            .commands
            .values()
            .filter(|c| c.worker == worker && c.acked_at.is_none())
            .cloned()
            .collect())
    }

    async fn ack_command(
        &self,
        id: CommandId,
        reply: Value,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let command = state
            .commands
            .get_mut(&id)
            .ok_or(StoreError::CommandNotFound(id))?;
        command.acked_at = Some(now);
        command.reply = Some(reply);
        drop(state);
        self.topics.notify(Topic::Commands);
        Ok(())
    }

    async fn get_command(&self, id: CommandId) -> Result<Option<CommandEnvelope>, StoreError> {
        Ok(self.lock().commands.get(&id).cloned())
    }

    async fn listen(&self, topic: Topic) -> Result<Box<dyn Listener>, StoreError> {
        Ok(self.topics.listener(topic))
    }

    async fn take_turn(
        &self,
        duty: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let free = state
            .turns
            .get(duty)
            .is_none_or(|(current, end)| current == holder || *end <= now);
        if free {
            state
                .turns
                .insert(duty.to_string(), (holder.to_string(), until));
        }
        Ok(free)
    }

    async fn append_logs(&self, appends: &[LogAppend], keep: usize) -> Result<(), StoreError> {
        let appends = newest_per_owner(appends, keep);
        if appends.is_empty() {
            return Ok(());
        }
        self.lock().logs.append(appends, keep);
        self.topics.notify(Topic::Logs);
        Ok(())
    }

    async fn read_log(
        &self,
        owner: &LogOwner,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LogLine>, StoreError> {
        Ok(self.lock().logs.read(owner, after, limit))
    }
}
