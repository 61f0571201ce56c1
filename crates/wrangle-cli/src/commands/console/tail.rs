//! `tail`: task events (started, completed, failed, dead, ...) as they happen, from any
//! worker on any machine; `tail WORKER`: that worker's own log (see `commands::logs`).
//!
//! Stores keep no event log, only each task's current state and its finished attempts, so
//! events are derived: [`events_of`] turns one task into every event its record proves
//! happened, and [`EventTracker`] remembers which of those were already printed, keyed by
//! (task, attempt, run of that attempt, start or end), so each is printed once however
//! often the task is looked at. A task that started and finished between two looks still
//! shows both lines. Looks happen when the store notifies an outcome or new work, and at
//! least every [`POLL_INTERVAL`] (claims notify nothing, and starts matter).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Local, Utc};
use serde::Serialize;
use wrangle::store::Listener;
use wrangle::{Store, StoreError, Task, TaskFilter, TaskId, TaskState, Topic};

use super::super::Context;
use super::Interrupts;
use crate::fail::CliResult;
use crate::stdout::out;

/// Lines of a worker's log `tail WORKER` starts with.
const TAIL_WORKER_LINES: usize = 20;
/// Longest time between two looks at the store when nothing is notified.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Newest tasks looked at each time: enough for several hundred events per look.
const RECENT_WINDOW: usize = 300;
/// Running tasks looked at each time, so that old long tasks' ends are seen too.
const RUNNING_WINDOW: usize = 500;
/// Tasks seen running that dropped out of both windows (they just ended) fetched one by
/// one per look, at most.
const MAX_FETCHED_ONE_BY_ONE: usize = 100;

/// What happened to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum EventKind {
    Started,
    Completed,
    /// Failed, will be retried.
    Failed,
    /// Failed (or lost) on its last attempt: final.
    Dead,
    /// Its worker stopped heartbeating; it will run again.
    Expired,
    /// Handed back unfinished by a worker shutting down; it will run again.
    Released,
    Cancelled,
}

impl EventKind {
    fn as_str(self) -> &'static str {
        match self {
            EventKind::Started => "started",
            EventKind::Completed => "completed",
            EventKind::Failed => "failed",
            EventKind::Dead => "dead",
            EventKind::Expired => "expired",
            EventKind::Released => "released",
            EventKind::Cancelled => "cancelled",
        }
    }

    fn from_outcome(outcome: &str) -> EventKind {
        match outcome {
            "completed" => EventKind::Completed,
            "lease expired" => EventKind::Expired,
            "released" => EventKind::Released,
            "cancelled" => EventKind::Cancelled,
            _ => EventKind::Failed,
        }
    }
}

/// Whether an event begins or ends a run of an attempt: the part of the identity of an
/// event that does not change when the task moves on. (A failure printed as `dead` stays
/// the same event if an operator later retries the task and it becomes a plain failure
/// of an earlier attempt.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Edge {
    Start,
    End,
}

/// (attempt, run of that attempt, edge). A released attempt does not count, so its
/// number is used again by the next run: the run tells them apart.
type EventKey = (u32, u32, Edge);

/// One line of `tail`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct TaskEvent {
    pub(super) at: DateTime<Utc>,
    pub(super) event: EventKind,
    pub(super) task: TaskId,
    pub(super) attempt: u32,
    pub(super) kind: String,
    pub(super) queue: String,
    pub(super) worker: Option<String>,
    /// How long the attempt ran, for ends of attempts that started.
    pub(super) seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) error: Option<String>,
    #[serde(skip)]
    key: EventKey,
}

impl TaskEvent {
    /// `12:00:01 completed 42 kind=x queue=a worker=w1 (1.2s)`, in local time.
    pub(super) fn line(&self) -> String {
        let mut line = format!(
            "{} {} {} kind={} queue={} worker={}",
            self.at.with_timezone(&Local).format("%H:%M:%S"),
            self.event.as_str(),
            self.task,
            self.kind,
            self.queue,
            self.worker.as_deref().unwrap_or("-")
        );
        match self.event {
            EventKind::Started if self.attempt > 1 => line += &format!(" attempt {}", self.attempt),
            EventKind::Started => {}
            EventKind::Completed | EventKind::Cancelled | EventKind::Released => {
                if let Some(seconds) = self.seconds {
                    line += &format!(" ({seconds:.1}s)");
                }
                if let Some(error) = &self.error {
                    line += &format!(": {}", first_line(error));
                }
            }
            EventKind::Failed | EventKind::Dead | EventKind::Expired => {
                line += &format!(" attempt {}", self.attempt);
                if let Some(seconds) = self.seconds {
                    line += &format!(" ({seconds:.1}s)");
                }
                line += &format!(
                    ": {}",
                    first_line(self.error.as_deref().unwrap_or("no error given"))
                );
            }
        }
        line
    }
}

/// The first non-blank line of an error (its reason; stderr details follow), cut to fit.
fn first_line(error: &str) -> String {
    let line = error
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    wrangle::parse::shorten(line, 120)
}

fn seconds_between(start: Option<DateTime<Utc>>, end: DateTime<Utc>) -> Option<f64> {
    start.map(|s| (end - s).num_milliseconds().max(0) as f64 / 1000.0)
}

/// Every event `task`'s record proves happened, oldest first.
pub(super) fn events_of(task: &Task) -> Vec<TaskEvent> {
    let event = |at, event, attempt, worker: Option<&String>, key| TaskEvent {
        at,
        event,
        task: task.id,
        attempt,
        kind: task.kind.clone(),
        queue: task.queue.clone(),
        worker: worker.cloned(),
        seconds: None,
        error: None,
        key,
    };
    let mut events = Vec::new();
    let mut runs_of_attempt: HashMap<u32, u32> = HashMap::new();
    let last = task.attempts.len().checked_sub(1);
    for (index, record) in task.attempts.iter().enumerate() {
        let run = runs_of_attempt.entry(record.attempt).or_insert(0);
        let key = |edge| (record.attempt, *run, edge);
        if let Some(started_at) = record.started_at {
            events.push(event(
                started_at,
                EventKind::Started,
                record.attempt,
                record.worker.as_ref(),
                key(Edge::Start),
            ));
        }
        let mut kind = EventKind::from_outcome(&record.outcome);
        let final_failure = task.state == TaskState::Dead && Some(index) == last;
        if final_failure && kind != EventKind::Cancelled {
            kind = EventKind::Dead;
        }
        let mut end = event(
            record.finished_at,
            kind,
            record.attempt,
            record.worker.as_ref(),
            key(Edge::End),
        );
        end.seconds = seconds_between(record.started_at, record.finished_at);
        end.error = match (kind, &record.error) {
            (_, Some(error)) => Some(error.clone()),
            (EventKind::Expired, None) => Some("lease expired: its worker went silent".into()),
            (EventKind::Dead, None) => Some(record.outcome.clone()),
            _ => None,
        };
        events.push(end);
        *run += 1;
    }
    let run = runs_of_attempt.get(&task.attempt).copied().unwrap_or(0);
    match task.state {
        TaskState::Running => {
            if let Some(started_at) = task.started_at {
                events.push(event(
                    started_at,
                    EventKind::Started,
                    task.attempt,
                    task.worker.as_ref(),
                    (task.attempt, run, Edge::Start),
                ));
            }
        }
        // Cancelled before it ran this attempt: no attempt record tells it.
        TaskState::Cancelled
            if task
                .attempts
                .last()
                .is_none_or(|record| record.outcome != "cancelled") =>
        {
            events.push(event(
                task.finished_at.unwrap_or(task.created_at),
                EventKind::Cancelled,
                task.attempt,
                None,
                (task.attempt, run, Edge::End),
            ));
        }
        _ => {}
    }
    events
}

/// What `tail` already printed, and which tasks it saw running (to look at them again
/// when newer tasks push them out of the recent window).
#[derive(Debug, Default)]
pub(super) struct EventTracker {
    printed: HashMap<TaskId, HashSet<EventKey>>,
    seen_running: BTreeSet<TaskId>,
}

impl EventTracker {
    /// Records every event of `tasks` and returns those not returned before, in time order.
    pub(super) fn update(&mut self, tasks: &[Task]) -> Vec<TaskEvent> {
        let mut fresh = Vec::new();
        for task in tasks {
            let printed = self.printed.entry(task.id).or_default();
            fresh.extend(
                events_of(task)
                    .into_iter()
                    .filter(|event| printed.insert(event.key)),
            );
            if task.state == TaskState::Running {
                self.seen_running.insert(task.id);
            } else {
                self.seen_running.remove(&task.id);
            }
        }
        // Forget tasks no longer looked at, so that a long tail runs in flat memory: they
        // left the recent window for good (ids only grow) and are not running.
        let looked_at: HashSet<TaskId> = tasks.iter().map(|t| t.id).collect();
        let seen_running = &self.seen_running;
        self.printed
            .retain(|id, _| looked_at.contains(id) || seen_running.contains(id));
        fresh.sort_by_key(|e| (e.at, e.task, e.event));
        fresh
    }

    /// Tasks seen running that `looked_at` does not include: they ended (or vanished)
    /// outside the windows and must be fetched one by one.
    fn missing_running(&self, looked_at: &[Task]) -> Vec<TaskId> {
        let present: HashSet<TaskId> = looked_at.iter().map(|t| t.id).collect();
        self.seen_running
            .iter()
            .rev()
            .filter(|id| !present.contains(id))
            .take(MAX_FETCHED_ONE_BY_ONE)
            .copied()
            .collect()
    }

    fn forget(&mut self, id: TaskId) {
        self.seen_running.remove(&id);
        self.printed.remove(&id);
    }
}

/// The newest tasks, every running one (up to a bound), and the ones seen running before
/// that are in neither.
async fn look(store: &dyn Store, tracker: &mut EventTracker) -> Result<Vec<Task>, StoreError> {
    let newest = |state, limit| TaskFilter {
        state,
        queue: None,
        job: None,
        before_id: None,
        limit,
    };
    let mut tasks = store.list_tasks(newest(None, RECENT_WINDOW)).await?;
    let oldest_recent = tasks.last().map_or(TaskId::MAX, |t| t.id);
    let running = store
        .list_tasks(newest(Some(TaskState::Running), RUNNING_WINDOW))
        .await?;
    tasks.extend(running.into_iter().filter(|t| t.id < oldest_recent));
    for id in tracker.missing_running(&tasks) {
        match store.get_task(id).await? {
            Some(task) => tasks.push(task),
            None => tracker.forget(id),
        }
    }
    Ok(tasks)
}

/// Waits for either listener to be notified, or `timeout`.
async fn notified(
    outcomes: &mut Box<dyn Listener>,
    work: &mut Box<dyn Listener>,
    timeout: Duration,
) -> Result<(), StoreError> {
    tokio::select! {
        woke = outcomes.wait(timeout) => woke.map(drop),
        woke = work.wait(timeout) => woke.map(drop),
    }
}

/// Prints task events from now on until interrupted, or for `limit`. Events that happened
/// before it started are not printed.
/// `tail WORKER`: the worker's newest log lines, then new ones until Ctrl-C or `limit`.
pub(super) async fn follow_worker(
    context: &Context,
    worker: String,
    limit: Option<Duration>,
    interrupts: &mut Interrupts,
) -> CliResult {
    let view = crate::cli::LogViewArgs {
        follow: true,
        last: Some(TAIL_WORKER_LINES),
    };
    let owner = wrangle::log::LogOwner::Worker(worker);
    let until_deadline = async {
        match limit {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        shown = crate::commands::logs::show(context, &owner, view) => shown,
        _ = interrupts.next() => Ok(0),
        _ = until_deadline => Ok(0),
    }
}

pub(super) async fn follow(
    context: &Context,
    limit: Option<Duration>,
    interrupts: &mut Interrupts,
) -> CliResult {
    let store = context.store.as_ref();
    // Subscribe before the first look, so nothing happening in between is missed.
    let mut outcomes = store.listen(Topic::Outcomes).await?;
    let mut work = store.listen(Topic::Tasks).await?;
    let mut tracker = EventTracker::default();
    let before = look(store, &mut tracker).await?;
    tracker.update(&before);
    if !context.json {
        match limit {
            Some(limit) => out!(
                "following task events for {} (Ctrl-C to stop)",
                humantime::format_duration(limit)
            ),
            None => out!("following task events (Ctrl-C to stop)"),
        }
    }
    let deadline = limit.map(|limit| tokio::time::Instant::now() + limit);
    let until_deadline = async {
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(until_deadline);
    loop {
        tokio::select! {
            _ = interrupts.next() => break,
            _ = &mut until_deadline => break,
            woke = notified(&mut outcomes, &mut work, POLL_INTERVAL) => woke?,
        }
        let tasks = look(store, &mut tracker).await?;
        for event in tracker.update(&tasks) {
            if context.json {
                out!("{}", serde_json::to_string(&event).expect("serializable"));
            } else {
                out!("{}", event.line());
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, second).unwrap()
    }

    fn task(id: TaskId) -> Task {
        Task {
            id,
            queue: "a".into(),
            kind: "x".into(),
            payload: json!(null),
            priority: 0,
            state: TaskState::Available,
            run_at: at(0),
            attempt: 0,
            max_attempts: 2,
            timeout: None,
            unique_key: None,
            job: None,
            result: None,
            error: None,
            worker: None,
            lease_until: None,
            created_at: at(0),
            started_at: None,
            finished_at: None,
            attempts: Vec::new(),
        }
    }

    fn running(mut t: Task, attempt: u32, second: u32) -> Task {
        t.state = TaskState::Running;
        t.attempt = attempt;
        t.worker = Some("w1".into());
        t.started_at = Some(at(second));
        t
    }

    fn ended(
        mut t: Task,
        state: TaskState,
        outcome: &str,
        second: u32,
        error: Option<&str>,
    ) -> Task {
        // The attempt record's type is not re-exported by `wrangle`: build it from JSON.
        let record = json!({
            "attempt": t.attempt,
            "worker": t.worker,
            "started_at": t.started_at,
            "finished_at": at(second),
            "outcome": outcome,
            "error": error,
        });
        t.attempts.push(serde_json::from_value(record).unwrap());
        t.state = state;
        t.finished_at = Some(at(second));
        t
    }

    fn lines(events: &[TaskEvent]) -> Vec<String> {
        // Drop the local-time prefix: it depends on the machine's time zone.
        events
            .iter()
            .map(|e| e.line().split_once(' ').unwrap().1.to_string())
            .collect()
    }

    #[test]
    fn each_event_is_reported_once_as_the_task_moves_on() {
        let mut tracker = EventTracker::default();
        assert!(tracker.update(&[task(7)]).is_empty());
        let first = running(task(7), 1, 1);
        assert_eq!(
            lines(&tracker.update(std::slice::from_ref(&first))),
            ["started 7 kind=x queue=a worker=w1"]
        );
        assert!(
            tracker.update(std::slice::from_ref(&first)).is_empty(),
            "no repeats"
        );
        let failed = ended(
            first,
            TaskState::Retryable,
            "failed",
            3,
            Some("exit code 1: boom\nTry --help"),
        );
        assert_eq!(
            lines(&tracker.update(std::slice::from_ref(&failed))),
            ["failed 7 kind=x queue=a worker=w1 attempt 1 (2.0s): exit code 1: boom"]
        );
        // The second attempt starts and fails for good between two looks: both lines.
        let dead = ended(
            running(failed, 2, 5),
            TaskState::Dead,
            "failed",
            6,
            Some("bang"),
        );
        assert_eq!(
            lines(&tracker.update(std::slice::from_ref(&dead))),
            [
                "started 7 kind=x queue=a worker=w1 attempt 2",
                "dead 7 kind=x queue=a worker=w1 attempt 2 (1.0s): bang"
            ]
        );
        // An operator's retry turns the dead attempt into a plain failure of the record:
        // the same event, not printed again; only the new attempt is news.
        let mut retried = dead;
        retried.state = TaskState::Available;
        let third = running(retried, 3, 9);
        let done = ended(third, TaskState::Completed, "completed", 10, None);
        assert_eq!(
            lines(&tracker.update(std::slice::from_ref(&done))),
            [
                "started 7 kind=x queue=a worker=w1 attempt 3",
                "completed 7 kind=x queue=a worker=w1 (1.0s)"
            ]
        );
        assert!(tracker.update(&[done]).is_empty());
    }

    #[test]
    fn a_released_attempt_runs_again_under_the_same_number_and_both_runs_show() {
        let mut tracker = EventTracker::default();
        let first_run = running(task(3), 1, 1);
        tracker.update(std::slice::from_ref(&first_run));
        let mut released = ended(
            first_run,
            TaskState::Available,
            "released",
            2,
            Some("shutdown"),
        );
        released.attempt = 0;
        assert_eq!(
            lines(&tracker.update(std::slice::from_ref(&released))),
            ["released 3 kind=x queue=a worker=w1 (1.0s): shutdown"]
        );
        let again = running(released, 1, 4);
        assert_eq!(
            lines(&tracker.update(&[again])),
            ["started 3 kind=x queue=a worker=w1"]
        );
    }

    #[test]
    fn events_of_several_tasks_come_out_in_time_order() {
        let mut tracker = EventTracker::default();
        let early = ended(
            running(task(1), 1, 1),
            TaskState::Completed,
            "completed",
            4,
            None,
        );
        let late = running(task(2), 1, 2);
        let mut cancelled = task(4);
        cancelled.state = TaskState::Cancelled;
        cancelled.finished_at = Some(at(3));
        let events = tracker.update(&[late, cancelled, early]);
        assert_eq!(
            lines(&events),
            [
                "started 1 kind=x queue=a worker=w1",
                "started 2 kind=x queue=a worker=w1",
                "cancelled 4 kind=x queue=a worker=-",
                "completed 1 kind=x queue=a worker=w1 (3.0s)"
            ]
        );
    }

    #[test]
    fn a_running_task_out_of_the_window_is_fetched_until_it_ends_then_forgotten() {
        let mut tracker = EventTracker::default();
        tracker.update(&[running(task(1), 1, 1), task(2)]);
        assert_eq!(tracker.missing_running(&[task(2)]), vec![1]);
        let done = ended(
            running(task(1), 1, 1),
            TaskState::Completed,
            "completed",
            2,
            None,
        );
        assert_eq!(tracker.update(&[done, task(2)]).len(), 1);
        assert!(tracker.missing_running(&[task(2)]).is_empty());
        tracker.update(&[task(2)]);
        assert!(!tracker.printed.contains_key(&1), "memory stays flat");
    }
}
