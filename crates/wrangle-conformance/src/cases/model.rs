//! Model check: a long sequence of random operations (enqueue with unique keys and
//! delays, claim, complete in every way including stale, heartbeat, rescue, cancel,
//! retry, retry-dead, pause, resume, log appends, pruning, tidying, list jobs created and
//! deleted, and the clock moving) applied both to the store and to a simple model kept
//! here, comparing every task, every log ring, the queue statistics and every job's
//! tallies after every step.
//!
//! The model decides exactly which tasks a claim takes, which completions apply and
//! which heartbeat leases are lost. Where the trait leaves a choice open it reads the
//! store's answer and checks only its bounds: the `run_at` of a task made available now
//! (at most `now`), how a task out of attempts is given one more, which of several
//! expired leases a limited rescue takes, and whether a due `scheduled` or `retryable`
//! task already reads as `available`, and which of several tasks finished at the same
//! instant a limited prune deletes.
//!
//! The run is deterministic. To explore other sequences set `WRANGLE_MODEL_SEED` (a
//! number) and `WRANGLE_MODEL_STEPS`; a failure names the seed and the last operations.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use anyhow::{Context as _, Result, ensure};
use chrono::{DateTime, Utc};
use serde_json::json;
use wrangle_core::job::{BlockTally, NewJob, ids_of_payload};
use wrangle_core::log::{LogAppend, LogOwner, LogSource, NewLogLine};
use wrangle_core::store::{recent_second, recent_seconds};
use wrangle_core::{
    Completion, CompletionStatus, Enqueued, NewTask, Outcome, PruneRequest, QueueFilter, Task,
    TaskId, TaskState,
};

use crate::Handle;
use crate::ensure_eq;
use crate::support::{
    all_tasks, at, claim_from, ensure_invalid_transition, failed, get, heartbeat, lease,
    register_workers, released, set, succeeded,
};

cases![random_operations_match_model];

/// The PRNG seed, unless `WRANGLE_MODEL_SEED` names another.
const SEED: u64 = 0x5EED_2026_0001;
/// Operations per run, unless `WRANGLE_MODEL_STEPS` says otherwise.
const STEPS: usize = 600;
/// Operations shown when a step fails.
const LOG: usize = 12;
/// Queues the model uses.
const QUEUES: [&str; 2] = ["a", "b"];
/// Workers the model uses.
const WORKERS: [&str; 2] = ["w1", "w2"];
/// Lines each log ring keeps.
const LOG_KEEP: usize = 3;
/// Names of the list jobs the model creates (and deletes, and creates again).
const JOBS: [&str; 2] = ["j1", "j2"];

/// A job's tasks per (state, worker): (blocks, ids).
type JobGroups = BTreeMap<(TaskState, Option<String>), (u64, u64)>;

/// What the model keeps per job: the groups of its tasks pruned or deleted (counted as they
/// were then), and the ids completed per second (of `recent_second`).
#[derive(Debug, Default)]
struct ModelJob {
    pruned: JobGroups,
    completed: BTreeMap<i64, u64>,
}

/// What `queue_stats` must say per queue: (paused, tasks per state, oldest due run_at,
/// attempts completed and failed in the last minute).
type QueueView<'a> = BTreeMap<
    &'a str,
    (
        bool,
        BTreeMap<TaskState, u64>,
        Option<DateTime<Utc>>,
        (u64, u64),
    ),
>;

/// Random operations keep the store and the model in step.
async fn random_operations_match_model(a: Handle, b: Handle) -> Result<()> {
    let seed = setting("WRANGLE_MODEL_SEED", SEED)?;
    let steps = setting("WRANGLE_MODEL_STEPS", STEPS)?;
    register_workers(&a, &WORKERS).await?;
    let mut run = Run {
        rng: Rng(seed),
        handles: [a, b],
        now: at(0),
        tasks: BTreeMap::new(),
        keys: HashMap::new(),
        paused: BTreeSet::new(),
        rings: BTreeMap::new(),
        ended: BTreeMap::new(),
        jobs: BTreeMap::new(),
        log: Vec::new(),
    };
    for step in 0..steps {
        let outcome = async {
            run.step(step).await?;
            run.verify().await
        }
        .await;
        outcome.with_context(|| {
            format!(
                "model check (seed {seed}) failed at step {step}; the last operations were:\n  {}",
                run.log.join("\n  ")
            )
        })?;
    }
    ensure!(
        steps < 100 || run.tasks.len() > 20,
        "the run made only {} tasks",
        run.tasks.len()
    );
    Ok(())
}

/// The number in environment variable `name`, or `default` when it is not set.
fn setting<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={value:?} is not a number")),
        Err(_) => Ok(default),
    }
}

/// A small deterministic PRNG (SplitMix64), so a failing sequence replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// One of `items` (not empty).
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// What the model knows about a task.
#[derive(Debug, Clone)]
struct Expected {
    queue: String,
    priority: i32,
    state: TaskState,
    run_at: DateTime<Utc>,
    attempt: u32,
    max_attempts: u32,
    worker: Option<String>,
    lease_until: Option<DateTime<Utc>>,
    /// Its job and the ids it stands for.
    job: Option<String>,
    ids: u64,
}

impl Expected {
    /// Whether a claim at `now` may take it (pause and queue filters aside).
    fn due(&self, now: DateTime<Utc>) -> bool {
        self.state.is_waiting() && self.run_at <= now
    }

    /// Whether the store may report it as `available` rather than its model state (a
    /// scheduled or retryable task whose `run_at` has passed).
    fn may_read_available(&self, now: DateTime<Utc>) -> bool {
        matches!(self.state, TaskState::Scheduled | TaskState::Retryable) && self.run_at <= now
    }

    /// Whether `worker` holds this task's attempt `attempt`.
    fn held_by(&self, worker: &str, attempt: u32) -> bool {
        self.state == TaskState::Running
            && self.worker.as_deref() == Some(worker)
            && self.attempt == attempt
    }
}

/// One model-check run: the store's two handles, the model, and the clock.
struct Run {
    rng: Rng,
    handles: [Handle; 2],
    now: DateTime<Utc>,
    tasks: BTreeMap<TaskId, Expected>,
    keys: HashMap<String, TaskId>,
    paused: BTreeSet<String>,
    /// Each log ring: the seq of its last line ever, and its kept `(seq, text)` lines.
    rings: BTreeMap<LogOwner, (u64, VecDeque<(u64, String)>)>,
    /// Attempts that ended, per (queue, failed, second of `recent_second`): what the last
    /// minute's figures of `queue_stats` count, pruned tasks included.
    ended: BTreeMap<(String, bool, i64), u64>,
    jobs: BTreeMap<String, ModelJob>,
    log: Vec<String>,
}

impl Run {
    /// A random one of the two handles.
    fn handle(&mut self) -> Handle {
        let i = self.rng.below(2);
        self.handles[i].clone()
    }

    /// Records an operation for the failure message.
    fn note(&mut self, step: usize, what: String) {
        if self.log.len() == LOG {
            self.log.remove(0);
        }
        self.log
            .push(format!("{step}: {what} (now = {})", self.now));
    }

    /// Counts an attempt of `queue` that ended now, failed or completed.
    fn attempt_ended(&mut self, queue: String, failed: bool) {
        let second = recent_second(self.now.timestamp_millis());
        *self.ended.entry((queue, failed, second)).or_default() += 1;
    }

    /// Ids of tasks matching `keep`.
    fn ids(&self, keep: impl Fn(&Expected) -> bool) -> Vec<TaskId> {
        self.tasks
            .iter()
            .filter(|(_, t)| keep(t))
            .map(|(id, _)| *id)
            .collect()
    }

    /// The model's task `id`.
    fn task(&mut self, id: TaskId) -> Result<&mut Expected> {
        self.tasks
            .get_mut(&id)
            .with_context(|| format!("task {id} is not in the model"))
    }

    async fn step(&mut self, step: usize) -> Result<()> {
        match self.rng.below(27) {
            0..=2 => self.enqueue(step).await,
            3..=6 => self.claim(step).await,
            7..=10 => self.complete(step).await,
            11..=12 => self.heartbeat(step).await,
            13..=14 => self.rescue(step).await,
            15 => self.cancel(step).await,
            16 => self.retry(step).await,
            17 => self.retry_dead(step).await,
            18 => self.toggle_pause(step).await,
            19 => self.append_log(step).await,
            20 => self.prune(step).await,
            21 => {
                self.note(step, "tidy".to_string());
                Ok(self.handle().tidy().await?)
            }
            22 => self.create_job(step).await,
            23 => self.delete_job(step).await,
            _ => {
                let secs = self.rng.range(1, 12);
                self.note(step, format!("advance the clock {secs} s"));
                self.now += chrono::Duration::seconds(secs);
                Ok(())
            }
        }
    }

    /// Appends 1 to 4 lines to the ring of a random task or worker, in one or two
    /// entries of one call.
    async fn append_log(&mut self, step: usize) -> Result<()> {
        let ids = self.ids(|_| true);
        let owner = if ids.is_empty() || self.rng.chance(30) {
            LogOwner::Worker(self.rng.pick(&WORKERS).to_string())
        } else {
            LogOwner::Task(ids[self.rng.below(ids.len())])
        };
        let texts: Vec<String> = (0..1 + self.rng.below(4))
            .map(|i| format!("line {step}.{i}"))
            .collect();
        let line = |text: &String| NewLogLine::new(self.now, LogSource::Stdout, text);
        let split = self.rng.below(texts.len() + 1);
        let appends = [
            LogAppend {
                owner: owner.clone(),
                lines: texts[..split].iter().map(line).collect(),
            },
            LogAppend {
                owner: owner.clone(),
                lines: texts[split..].iter().map(line).collect(),
            },
        ];
        self.note(step, format!("append {texts:?} to {owner:?}"));
        self.handle().append_logs(&appends, LOG_KEEP).await?;
        // An append numbers only the lines it keeps (at most LOG_KEEP of one call).
        let (last, lines) = self.rings.entry(owner).or_default();
        let cut = texts.len().saturating_sub(LOG_KEEP);
        for text in texts.into_iter().skip(cut) {
            *last += 1;
            lines.push_back((*last, text));
        }
        let excess = lines.len().saturating_sub(LOG_KEEP);
        lines.drain(..excess);
        Ok(())
    }

    async fn enqueue(&mut self, step: usize) -> Result<()> {
        let mut batch = Vec::new();
        for _ in 0..1 + self.rng.below(3) {
            let mut new = NewTask::new("model", json!({ "step": step }))
                .queue(self.rng.pick(&QUEUES))
                .priority(self.rng.range(-1, 1) as i32);
            new.max_attempts = 1 + self.rng.below(3) as u32;
            if self.rng.chance(50) {
                new.run_at = Some(self.now + chrono::Duration::seconds(self.rng.range(-5, 20)));
            }
            if self.rng.chance(30) {
                new.unique_key = Some(format!("k{}", self.rng.below(6)));
            }
            let jobs: Vec<&str> = self.jobs.keys().map(String::as_str).collect();
            if !jobs.is_empty() && self.rng.chance(40) {
                new.job = Some(self.rng.pick(&jobs).to_string());
                if self.rng.chance(50) {
                    let start = self.rng.range(-5, 5);
                    new.payload = json!({ "start": start, "end": start + self.rng.range(0, 9) });
                }
            }
            batch.push(new);
        }
        self.note(step, format!("enqueue {batch:?}"));
        let store = self.handle();
        let results = store.enqueue_batch(batch.clone(), self.now).await?;
        ensure_eq!(results.len(), batch.len(), "enqueue results");
        let mut newest = self
            .tasks
            .keys()
            .next_back()
            .copied()
            .unwrap_or(TaskId::MIN);
        for (new, result) in batch.into_iter().zip(results) {
            if let Some(&id) = new.unique_key.as_ref().and_then(|k| self.keys.get(k)) {
                ensure_eq!(
                    result,
                    Enqueued {
                        id,
                        duplicate: true
                    },
                    "result for key {:?}",
                    new.unique_key
                );
                continue;
            }
            ensure!(
                !result.duplicate && result.id > newest,
                "a new task got {result:?} after id {newest}"
            );
            newest = result.id;
            if let Some(key) = &new.unique_key {
                self.keys.insert(key.clone(), result.id);
            }
            let stored = get(&store, result.id).await?;
            match new.run_at {
                Some(run_at) if run_at > self.now => {
                    ensure_eq!(stored.run_at, run_at, "run_at of a delayed task")
                }
                _ => ensure!(
                    stored.run_at <= self.now,
                    "a due task's run_at is {}",
                    stored.run_at
                ),
            }
            let expected = Expected {
                queue: new.queue.clone(),
                priority: new.priority,
                state: new.initial_state(self.now),
                run_at: stored.run_at,
                attempt: 0,
                max_attempts: new.max_attempts,
                worker: None,
                lease_until: None,
                ids: ids_of_payload(&new.payload),
                job: new.job,
            };
            self.tasks.insert(result.id, expected);
        }
        Ok(())
    }

    async fn claim(&mut self, step: usize) -> Result<()> {
        let worker = self.rng.pick(&WORKERS);
        let filter = if self.rng.chance(70) {
            QueueFilter::All
        } else {
            QueueFilter::Only(vec![self.rng.pick(&QUEUES).to_string()])
        };
        let limit = 1 + self.rng.below(4);
        self.note(step, format!("{worker} claims {limit} from {filter:?}"));
        let now = self.now;
        let mut due: Vec<_> = self
            .tasks
            .iter()
            .filter(|(_, t)| {
                t.due(now) && !self.paused.contains(&t.queue) && filter.matches(&t.queue)
            })
            .collect();
        due.sort_by_key(|(id, t)| (Reverse(t.priority), t.run_at, **id));
        let expected = set(due.into_iter().take(limit).map(|(id, _)| *id));
        let store = self.handle();
        let claimed = claim_from(&store, worker, filter, limit, now).await?;
        ensure_eq!(set(claimed.iter().map(|c| c.id)), expected, "claimed tasks");
        for c in claimed {
            let t = self.task(c.id)?;
            ensure_eq!(c.attempt, t.attempt + 1, "attempt of claimed task {}", c.id);
            ensure_eq!(
                c.lease_until,
                now + lease(),
                "lease of claimed task {}",
                c.id
            );
            t.state = TaskState::Running;
            t.attempt = c.attempt;
            t.worker = Some(worker.to_string());
            t.lease_until = Some(c.lease_until);
        }
        Ok(())
    }

    async fn complete(&mut self, step: usize) -> Result<()> {
        let all = self.ids(|_| true);
        let running = self.ids(|t| t.state == TaskState::Running);
        if all.is_empty() {
            return Ok(());
        }
        let mut batch = Vec::new();
        for _ in 0..1 + self.rng.below(3) {
            let (id, worker, attempt) = if !running.is_empty() && self.rng.chance(75) {
                let id = self.rng.pick(&running);
                let t = &self.tasks[&id];
                (id, t.worker.clone().unwrap_or_default(), t.attempt)
            } else {
                let id = self.rng.pick(&all);
                let attempt =
                    (i64::from(self.tasks[&id].attempt) + self.rng.range(-1, 1)).max(0) as u32;
                (id, self.rng.pick(&WORKERS).to_string(), attempt)
            };
            let outcome = match self.rng.below(100) {
                0..40 => succeeded(json!({ "id": id })),
                40..75 => {
                    let retry_at = self
                        .rng
                        .chance(70)
                        .then(|| self.now + chrono::Duration::seconds(self.rng.range(1, 30)));
                    failed("model failure", retry_at)
                }
                _ => released(),
            };
            batch.push(Completion {
                id,
                attempt,
                worker,
                outcome,
            });
        }
        self.note(step, format!("complete {batch:?}"));
        let store = self.handle();
        let statuses = store.complete_batch(&batch, self.now).await?;
        let mut expected = Vec::new();
        let mut released_ids = Vec::new();
        let mut ended = Vec::new();
        let mut completed_ids = Vec::new();
        for c in batch {
            let t = self.task(c.id)?;
            if !t.held_by(&c.worker, c.attempt) {
                expected.push(CompletionStatus::Stale);
                continue;
            }
            if !matches!(c.outcome, Outcome::Released { .. }) {
                let failed = !matches!(c.outcome, Outcome::Succeeded { .. });
                ended.push((t.queue.clone(), failed));
                if let Some(job) = t.job.clone().filter(|_| !failed) {
                    completed_ids.push((job, t.ids));
                }
            }
            t.state = match c.outcome {
                Outcome::Succeeded { .. } => TaskState::Completed,
                Outcome::Failed {
                    retry_at: Some(retry_at),
                    ..
                } if t.attempt < t.max_attempts => {
                    t.run_at = retry_at;
                    TaskState::Retryable
                }
                Outcome::Failed { .. } => TaskState::Dead,
                Outcome::Released { .. } => {
                    t.attempt -= 1;
                    released_ids.push(c.id);
                    TaskState::Available
                }
            };
            expected.push(CompletionStatus::Applied(t.state));
        }
        ensure_eq!(statuses, expected, "completion statuses");
        for (queue, failed) in ended {
            self.attempt_ended(queue, failed);
        }
        let second = recent_second(self.now.timestamp_millis());
        for (job, ids) in completed_ids {
            let job = self.jobs.get_mut(&job).context("a job in the model")?;
            *job.completed.entry(second).or_default() += ids;
        }
        for id in released_ids {
            let stored = get(&store, id).await?;
            self.made_available(id, &stored)?;
        }
        Ok(())
    }

    async fn heartbeat(&mut self, step: usize) -> Result<()> {
        let worker = self.rng.pick(&WORKERS);
        let mut leases: Vec<(TaskId, u32)> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.state == TaskState::Running && t.worker.as_deref() == Some(worker))
            .map(|(id, t)| (*id, t.attempt))
            .collect();
        let held = set(leases.iter().map(|(id, _)| *id));
        let others = self
            .ids(|t| t.attempt >= 1 && !matches!(t.state, TaskState::Completed | TaskState::Dead));
        let others: Vec<_> = others.into_iter().filter(|id| !held.contains(id)).collect();
        for _ in 0..self.rng.below(3) {
            if others.is_empty() {
                break;
            }
            let id = self.rng.pick(&others);
            let attempt = self.tasks[&id].attempt;
            let attempt = if attempt > 1 && self.rng.chance(50) {
                attempt - 1
            } else {
                attempt
            };
            if !leases.iter().any(|(l, _)| *l == id) {
                leases.push((id, attempt));
            }
        }
        let lost = set(leases
            .iter()
            .filter(|(id, attempt)| !self.tasks[id].held_by(worker, *attempt))
            .map(|(id, _)| *id));
        self.note(step, format!("{worker} heartbeats {leases:?}"));
        let store = self.handle();
        let reply = heartbeat(&store, worker, leases, self.now).await?;
        ensure_eq!(set(reply.lost.iter().copied()), lost, "lost tasks");
        let until = self.now + lease();
        for id in held {
            self.task(id)?.lease_until = Some(until);
        }
        Ok(())
    }

    async fn rescue(&mut self, step: usize) -> Result<()> {
        let limit = 1 + self.rng.below(4);
        let now = self.now;
        let expired = |strict: bool| {
            set(self.ids(|t| {
                t.state == TaskState::Running
                    && t.lease_until
                        .is_some_and(|l| l < now || (!strict && l == now))
            }))
        };
        let (must, may) = (expired(true), expired(false));
        self.note(step, format!("rescue {limit}"));
        let store = self.handle();
        let rescued = store.rescue_expired(now, limit).await?;
        let unique = set(rescued.iter().copied());
        ensure!(
            unique.len() == rescued.len() && unique.is_subset(&may) && rescued.len() <= limit,
            "rescued {rescued:?} with limit {limit}; expired leases: {may:?}"
        );
        ensure!(
            rescued.len() >= limit.min(must.len()),
            "rescued {rescued:?} with limit {limit}, but these leases ended before now: {must:?}"
        );
        for id in rescued {
            let t = self.task(id)?;
            if t.attempt < t.max_attempts {
                t.state = TaskState::Available;
                let stored = get(&store, id).await?;
                self.made_available(id, &stored)?;
            } else {
                t.state = TaskState::Dead;
                let queue = t.queue.clone();
                self.attempt_ended(queue, true);
            }
        }
        Ok(())
    }

    async fn cancel(&mut self, step: usize) -> Result<()> {
        let all = self.ids(|_| true);
        if all.is_empty() {
            return Ok(());
        }
        let id = self.rng.pick(&all);
        self.note(step, format!("cancel {id}"));
        let store = self.handle();
        let result = store.cancel_task(id, self.now).await;
        let t = self.task(id)?;
        if t.state.is_final() {
            return ensure_invalid_transition(result, id, t.state, "cancel");
        }
        ensure_eq!(
            result?.state,
            TaskState::Cancelled,
            "state returned by cancel"
        );
        t.state = TaskState::Cancelled;
        Ok(())
    }

    async fn retry(&mut self, step: usize) -> Result<()> {
        let now = self.now;
        // A due scheduled or retryable task may read as available, which cannot be retried.
        let candidates = self.ids(|t| !t.may_read_available(now));
        if candidates.is_empty() {
            return Ok(());
        }
        let id = self.rng.pick(&candidates);
        self.note(step, format!("retry {id}"));
        let store = self.handle();
        let result = store.retry_task(id, now).await;
        let state = self.tasks[&id].state;
        if !state.can_retry() {
            return ensure_invalid_transition(result, id, state, "retry");
        }
        self.made_available(id, &result?)
    }

    async fn retry_dead(&mut self, step: usize) -> Result<()> {
        let queue = self
            .rng
            .chance(50)
            .then(|| self.rng.pick(&QUEUES).to_string());
        let dead = self
            .ids(|t| t.state == TaskState::Dead && queue.as_ref().is_none_or(|q| *q == t.queue));
        self.note(step, format!("retry dead tasks of {queue:?}"));
        let store = self.handle();
        ensure_eq!(
            store.retry_dead(queue, self.now).await?,
            dead.len() as u64,
            "tasks retried"
        );
        for id in dead {
            let stored = get(&store, id).await?;
            self.made_available(id, &stored)?;
        }
        Ok(())
    }

    /// Prunes a few tasks of one final state that finished before a random instant: the
    /// store deletes as many as the limit allows, oldest first (any of several that
    /// finished at the same instant), with their log rings and unique keys.
    async fn prune(&mut self, step: usize) -> Result<()> {
        let state = self
            .rng
            .pick(&[TaskState::Completed, TaskState::Dead, TaskState::Cancelled]);
        let request = PruneRequest {
            state,
            finished_before: self.now - chrono::Duration::seconds(self.rng.range(0, 30)),
            limit: 1 + self.rng.below(3),
        };
        self.note(step, format!("prune {request:?}"));
        let store = self.handle();
        let before = all_tasks(&store).await?;
        let mut eligible: Vec<&Task> = before
            .iter()
            .filter(|t| {
                t.state == state && t.finished_at.is_some_and(|f| f < request.finished_before)
            })
            .collect();
        eligible.sort_by_key(|t| t.finished_at);
        let pruned = store.prune_finished(request).await?;
        ensure_eq!(
            pruned,
            eligible.len().min(request.limit) as u64,
            "tasks pruned"
        );
        let kept = set(all_tasks(&store).await?.iter().map(|t| t.id));
        let gone: Vec<&Task> = before.iter().filter(|t| !kept.contains(&t.id)).collect();
        ensure_eq!(gone.len() as u64, pruned, "tasks gone after pruning");
        let newest_gone = gone.iter().map(|t| t.finished_at).max().flatten();
        for task in &gone {
            ensure!(
                eligible.iter().any(|e| e.id == task.id),
                "prune {request:?} deleted task {} ({:?}, finished {:?})",
                task.id,
                task.state,
                task.finished_at
            );
        }
        for task in eligible.iter().filter(|t| kept.contains(&t.id)) {
            ensure!(
                task.finished_at >= newest_gone,
                "prune kept task {} finished at {:?} but deleted one finished later",
                task.id,
                task.finished_at
            );
        }
        self.forget(gone.into_iter().cloned().collect())
    }

    /// Forgets tasks the store deleted, with their unique keys and log rings; their jobs'
    /// counters keep them as they were.
    fn forget(&mut self, gone: Vec<Task>) -> Result<()> {
        for task in gone {
            if let Some(job) = &task.job {
                let groups = &mut self.jobs.get_mut(job).context("a job in the model")?.pruned;
                let group = groups.entry((task.state, task.worker.clone())).or_default();
                group.0 += 1;
                group.1 += ids_of_payload(&task.payload);
            }
            self.tasks.remove(&task.id);
            self.keys.retain(|_, id| *id != task.id);
            self.rings.remove(&LogOwner::Task(task.id));
        }
        Ok(())
    }

    /// Creates a list job under a name no job has now (its tasks are enqueued later).
    async fn create_job(&mut self, step: usize) -> Result<()> {
        let free: Vec<&str> = JOBS
            .into_iter()
            .filter(|name| !self.jobs.contains_key(*name))
            .collect();
        if free.is_empty() {
            return Ok(());
        }
        let name = self.rng.pick(&free);
        self.note(step, format!("create job {name}"));
        let job = NewJob::list(name, "model", 0).queue(self.rng.pick(&QUEUES));
        self.handle().create_job(job, self.now).await?;
        self.jobs.insert(name.to_string(), ModelJob::default());
        Ok(())
    }

    /// Deletes a batch of a job's tasks (any of them, whatever their state); the call that
    /// finds fewer than its limit removes the job with its counters. Deleted tasks stay
    /// counted until then.
    async fn delete_job(&mut self, step: usize) -> Result<()> {
        let jobs: Vec<String> = self.jobs.keys().cloned().collect();
        if jobs.is_empty() {
            return Ok(());
        }
        let name = jobs[self.rng.below(jobs.len())].clone();
        let limit = 1 + self.rng.below(3);
        self.note(step, format!("delete job {name}, {limit} tasks"));
        let of_job = self.ids(|t| t.job.as_deref() == Some(name.as_str()));
        let store = self.handle();
        let before = all_tasks(&store).await?;
        let deletion = store.delete_job(&name, limit).await?;
        ensure_eq!(
            (deletion.tasks, deletion.done),
            (of_job.len().min(limit) as u64, of_job.len() < limit),
            "(tasks deleted, job gone)"
        );
        let kept = set(all_tasks(&store).await?.iter().map(|t| t.id));
        let gone: Vec<Task> = before
            .into_iter()
            .filter(|t| !kept.contains(&t.id))
            .collect();
        ensure!(
            gone.iter().all(|t| t.job.as_deref() == Some(name.as_str())),
            "deleting job {name} deleted another task: {gone:?}"
        );
        self.forget(gone)?;
        if deletion.done {
            self.jobs.remove(&name);
        }
        Ok(())
    }

    async fn toggle_pause(&mut self, step: usize) -> Result<()> {
        let queue = self.rng.pick(&QUEUES).to_string();
        let pause = !self.paused.contains(&queue);
        self.note(
            step,
            format!("{} queue {queue}", if pause { "pause" } else { "resume" }),
        );
        self.handle().set_queue_paused(&queue, pause).await?;
        if pause {
            self.paused.insert(queue);
        } else {
            self.paused.remove(&queue);
        }
        Ok(())
    }

    /// Updates the model for task `id` made available now by a release, rescue or
    /// retry, from what the store says: its state, a `run_at` no later than now, and for
    /// a retry of a task out of attempts exactly one more attempt.
    fn made_available(&mut self, id: TaskId, stored: &Task) -> Result<()> {
        let now = self.now;
        let t = self.task(id)?;
        ensure_eq!(
            stored.state,
            TaskState::Available,
            "state of task {id} made available"
        );
        ensure!(
            stored.run_at <= now,
            "task {id} made available now is due only at {}",
            stored.run_at
        );
        if t.state != TaskState::Available && t.attempt >= t.max_attempts {
            ensure_eq!(
                i64::from(stored.max_attempts) - i64::from(stored.attempt),
                1,
                "attempts left to task {id} retried out of attempts ({stored:?})"
            );
        } else {
            ensure_eq!(
                (stored.attempt, stored.max_attempts),
                (t.attempt, t.max_attempts),
                "(attempt, max_attempts) of task {id}"
            );
        }
        t.state = TaskState::Available;
        t.run_at = stored.run_at;
        t.attempt = stored.attempt;
        t.max_attempts = stored.max_attempts;
        Ok(())
    }

    /// Compares every stored task (read through a random handle) with the model.
    async fn verify(&mut self) -> Result<()> {
        let store = self.handle();
        let listed = all_tasks(&store).await?;
        let ids: Vec<_> = listed.iter().map(|t| t.id).collect();
        ensure!(
            ids.windows(2).all(|w| w[0] > w[1]),
            "list_tasks is not newest first: {ids:?}"
        );
        ensure_eq!(set(ids), set(self.tasks.keys().copied()), "stored task ids");
        self.verify_queue_stats(&listed).await?;
        self.verify_job_tallies(&listed).await?;
        for (owner, (_, expected)) in &self.rings {
            let read = store.read_log(owner, 0, 100).await?;
            let read: Vec<(u64, String)> = read.into_iter().map(|l| (l.seq, l.text)).collect();
            ensure_eq!(read, Vec::from(expected.clone()), "log ring of {owner:?}");
        }
        for task in listed {
            let e = &self.tasks[&task.id];
            let id = task.id;
            let state_ok = task.state == e.state
                || (task.state == TaskState::Available && e.may_read_available(self.now));
            ensure!(
                state_ok,
                "task {id} is {} but the model says {} ({e:?})",
                task.state,
                e.state
            );
            ensure_eq!(
                (
                    task.attempt,
                    task.max_attempts,
                    task.queue.as_str(),
                    task.priority
                ),
                (e.attempt, e.max_attempts, e.queue.as_str(), e.priority),
                "(attempt, max_attempts, queue, priority) of task {id}"
            );
            if e.state.is_waiting() {
                ensure_eq!(task.run_at, e.run_at, "run_at of waiting task {id}");
            }
            if e.state == TaskState::Running {
                ensure_eq!(
                    (task.worker.as_ref(), task.lease_until),
                    (e.worker.as_ref(), e.lease_until),
                    "(worker, lease_until) of running task {id}"
                );
            }
        }
        Ok(())
    }

    /// Every job's tallies count its tasks as `list_tasks` reads them plus those pruned, and
    /// the ids its tasks completed in the last minute.
    async fn verify_job_tallies(&mut self, listed: &[Task]) -> Result<()> {
        let store = self.handle();
        let (first, last) = recent_seconds(self.now);
        for (name, job) in &self.jobs {
            let mut expected = job.pruned.clone();
            for task in listed
                .iter()
                .filter(|t| t.job.as_deref() == Some(name.as_str()))
            {
                let group = expected
                    .entry((task.state, task.worker.clone()))
                    .or_default();
                group.0 += 1;
                group.1 += ids_of_payload(&task.payload);
            }
            let completed: u64 = job.completed.range(first + 1..=last).map(|(_, n)| n).sum();
            let tallies = store.job_tallies(name, self.now).await?;
            let got: JobGroups = tallies
                .blocks
                .iter()
                .map(
                    |BlockTally {
                         state,
                         worker,
                         blocks,
                         ids,
                     }| ((*state, worker.clone()), (*blocks, *ids)),
                )
                .collect();
            ensure_eq!(
                got.len(),
                tallies.blocks.len(),
                "groups of job {name} (one per state and worker)"
            );
            ensure_eq!(
                (got, tallies.ids_completed_last_minute),
                (expected, completed),
                "tallies of job {name}: (blocks, ids) per (state, worker), ids completed in the last minute"
            );
        }
        Ok(())
    }

    /// `queue_stats` agrees with the tasks: every queue with a task or a pause is listed,
    /// counted per state as `list_tasks` reads them, with the model's oldest due `run_at`.
    async fn verify_queue_stats(&mut self, listed: &[Task]) -> Result<()> {
        let stats = self.handle().queue_stats(self.now).await?;
        let mut expected: QueueView = self
            .paused
            .iter()
            .map(|queue| (queue.as_str(), (true, BTreeMap::new(), None, (0, 0))))
            .collect();
        for task in listed {
            let entry = expected.entry(task.queue.as_str()).or_insert((
                false,
                BTreeMap::new(),
                None,
                (0, 0),
            ));
            *entry.1.entry(task.state).or_default() += 1;
            if self.tasks[&task.id].due(self.now) {
                let run_at = self.tasks[&task.id].run_at;
                entry.2 = Some(entry.2.map_or(run_at, |oldest| oldest.min(run_at)));
            }
        }
        // The last minute's outcomes, for the queues listed for their tasks.
        let (first, last) = recent_seconds(self.now);
        for ((queue, failed, second), n) in &self.ended {
            if let Some(entry) = expected.get_mut(queue.as_str())
                && !entry.1.is_empty()
                && *second > first
                && *second <= last
            {
                if *failed {
                    entry.3.1 += n;
                } else {
                    entry.3.0 += n;
                }
            }
        }
        let got: QueueView = stats
            .iter()
            .map(|q| {
                (
                    q.queue.as_str(),
                    (
                        q.paused,
                        q.counts.clone(),
                        q.oldest_due_at,
                        (q.completed_last_minute, q.failed_last_minute),
                    ),
                )
            })
            .collect();
        ensure_eq!(
            got,
            expected,
            "queue_stats (paused, counts, oldest_due_at, (completed, failed) in the last minute) per queue"
        );
        Ok(())
    }
}
