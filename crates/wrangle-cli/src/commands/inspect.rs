//! Inspection and operator actions: `status`, `tasks list|show|retry|cancel`,
//! `queues pause|resume`. Human tables by default, `--json` for scripts.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use wrangle::parse::{parse_duration, parse_name};
use wrangle::{Task, TaskFilter, TaskState};

use super::Context;
use crate::cli::{QueuesCommand, TasksCommand};
use crate::fail::{CliError, CliResult};
use crate::progress;
use crate::stdout::out;

pub(crate) fn print_json(value: &impl serde::Serialize) {
    out!(
        "{}",
        serde_json::to_string_pretty(value).expect("serializable")
    );
}

fn clock(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

pub(crate) fn ago(time: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - time).num_milliseconds().max(0) as f64 / 1000.0;
    if secs < 120.0 {
        format!("{secs:.1}s")
    } else if secs < 7200.0 {
        format!("{:.0}m", secs / 60.0)
    } else {
        format!("{:.1}h", secs / 3600.0)
    }
}

/// `wrangle status`.
pub(crate) async fn status(context: &Context) -> CliResult {
    let now = Utc::now();
    let queues = context.store.queue_stats(now).await?;
    let workers = context.store.list_workers().await?;
    let jobs = wrangle::jobs::all_progress(&context.store).await?;
    // What the live workers report running now, against what the store holds as claimed:
    // the difference is outcomes on their way to the store (or tasks of lost workers).
    let live = workers.iter().filter(|w| !w.is_lost(now));
    let executing: usize = live.clone().map(|w| w.info.executing()).sum();
    let leased: u64 = queues
        .iter()
        .map(|q| q.counts.get(&TaskState::Running).copied().unwrap_or(0))
        .sum();
    if context.json {
        print_json(&json!({
            "queues": queues,
            "workers": workers,
            "jobs": jobs,
            "executing": executing,
            "leased": leased,
        }));
        return Ok(0);
    }
    out!(
        "{:<16} {:>6} {:>9} {:>9} {:>6} {:>9} {:>9} {:>6} {:>9} {:>8} {:>8} {:>10}",
        "QUEUE",
        "PAUSED",
        "SCHEDULED",
        "AVAILABLE",
        "LEASED",
        "RETRYABLE",
        "COMPLETED",
        "DEAD",
        "CANCELLED",
        "OLDEST",
        "DONE/MIN",
        "FAILED/MIN"
    );
    for q in &queues {
        let count = |s: TaskState| q.counts.get(&s).copied().unwrap_or(0);
        out!(
            "{:<16} {:>6} {:>9} {:>9} {:>6} {:>9} {:>9} {:>6} {:>9} {:>8} {:>8} {:>10}",
            q.queue,
            if q.paused { "yes" } else { "no" },
            count(TaskState::Scheduled),
            count(TaskState::Available),
            count(TaskState::Running),
            count(TaskState::Retryable),
            count(TaskState::Completed),
            count(TaskState::Dead),
            count(TaskState::Cancelled),
            q.oldest_due_at.map_or("-".into(), |t| ago(t, now)),
            q.completed_last_minute,
            q.failed_last_minute
        );
    }
    if queues.is_empty() {
        out!("(no queues yet)");
    }
    let finishing = leased.saturating_sub(executing as u64);
    let workers_live = live.count();
    out!(
        "executing now: {executing} on {workers_live} live worker{}; leased, outcome being written: {finishing}",
        if workers_live == 1 { "" } else { "s" }
    );
    out!();
    super::workers::print_workers_table(&workers, now);
    if !jobs.is_empty() {
        out!();
        super::job::print_jobs_table(&jobs);
    }
    Ok(0)
}

/// Checks `tasks` arguments before the store is opened; returns the parsed state filter.
pub(crate) fn validate_tasks(command: &TasksCommand) -> CliResult<Option<TaskState>> {
    match command {
        TasksCommand::List { state, queue, .. } => {
            if let Some(queue) = queue {
                parse_name("queue", queue)?;
            }
            Ok(state.as_deref().map(str::parse).transpose()?)
        }
        TasksCommand::Prune { older_than, state } => {
            parse_duration(older_than)
                .map_err(|e| CliError::input(format!("--older-than: {e}")))?;
            let state: Option<TaskState> = state.as_deref().map(str::parse).transpose()?;
            if let Some(state) = state
                && !state.is_final()
            {
                return Err(CliError::input(format!(
                    "--state {state}: only completed, dead or cancelled tasks are pruned"
                )));
            }
            Ok(state)
        }
        _ => Ok(None),
    }
}

fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    wrangle::parse::shorten(&flat, max)
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `wrangle tasks …`.
pub(crate) async fn tasks(
    context: &Context,
    command: TasksCommand,
    state: Option<TaskState>,
) -> CliResult {
    let store = &context.store;
    let now = Utc::now();
    match command {
        TasksCommand::List {
            queue, job, limit, ..
        } => {
            let tasks = store
                .list_tasks(TaskFilter {
                    state,
                    queue,
                    job,
                    before_id: None,
                    limit,
                })
                .await?;
            if context.json {
                print_json(&tasks);
                return Ok(0);
            }
            out!(
                "{:>8} {:<12} {:<16} {:<16} {:>7}  {:<23}  DETAIL",
                "ID",
                "STATE",
                "QUEUE",
                "KIND",
                "ATTEMPT",
                "CREATED"
            );
            for t in &tasks {
                let detail = match t.state {
                    TaskState::Completed => t.result.as_ref().map(value_text).unwrap_or_default(),
                    TaskState::Scheduled | TaskState::Retryable => {
                        format!("runs at {}", clock(t.run_at))
                    }
                    TaskState::Running => format!("on {}", t.worker.as_deref().unwrap_or("?")),
                    _ => t.error.clone().unwrap_or_default(),
                };
                out!(
                    "{:>8} {:<12} {:<16} {:<16} {:>3}/{:<3}  {:<23}  {}",
                    t.id,
                    t.state.as_str(),
                    t.queue,
                    t.kind,
                    t.attempt,
                    t.max_attempts,
                    clock(t.created_at),
                    one_line(&detail, 60)
                );
            }
            Ok(0)
        }
        TasksCommand::Show { id } => {
            let task = store
                .get_task(id)
                .await?
                .ok_or(wrangle::StoreError::TaskNotFound(id))?;
            if context.json {
                print_json(&task);
            } else {
                print_task(&task);
            }
            Ok(0)
        }
        TasksCommand::Retry { id: Some(id), .. } => {
            let task = store.retry_task(id, now).await?;
            report_change(context, &task, "will run again");
            Ok(0)
        }
        TasksCommand::Retry {
            id: None, queue, ..
        } => {
            let queue = queue.as_deref();
            let total = wrangle::tasks::dead_count(store, queue).await?;
            let bar = progress::on_terminal(Some(total), "tasks");
            let report = |moved| {
                if let Some(bar) = &bar {
                    bar.set_position(moved);
                }
            };
            let moved = wrangle::tasks::retry_dead(store, queue, &report).await;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            let moved = moved?;
            if context.json {
                print_json(&json!({"retried": moved}));
            } else {
                out!("{moved} dead task(s) will run again");
            }
            Ok(0)
        }
        TasksCommand::Cancel { id } => {
            let task = store.cancel_task(id, now).await?;
            report_change(context, &task, "cancelled");
            Ok(0)
        }
        TasksCommand::Prune { older_than, .. } => {
            let age = chrono::Duration::from_std(parse_duration(&older_than)?)
                .map_err(|_| CliError::input(format!("--older-than {older_than} is too long")))?;
            let before = now.checked_sub_signed(age).unwrap_or(now);
            let states = match state {
                Some(state) => vec![state],
                None => vec![TaskState::Completed, TaskState::Dead, TaskState::Cancelled],
            };
            let bar = progress::on_terminal(None, "tasks pruned");
            let report = |pruned| {
                if let Some(bar) = &bar {
                    bar.set_position(pruned);
                }
            };
            let pruned = wrangle::tasks::prune(store, &states, before, &report).await;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            let pruned = pruned?;
            if context.json {
                print_json(&json!({"pruned": pruned}));
            } else {
                out!("{pruned} finished task(s) pruned");
            }
            Ok(0)
        }
        TasksCommand::Log { id, view } => {
            super::logs::show(context, &wrangle::log::LogOwner::Task(id), view).await
        }
    }
}

fn report_change(context: &Context, task: &Task, what: &str) {
    if context.json {
        print_json(task);
    } else {
        out!("task {} {what} (now {})", task.id, task.state);
    }
}

fn print_task(t: &Task) {
    out!("task {}  kind {}  queue {}", t.id, t.kind, t.queue);
    out!("  state      {}", t.state);
    out!("  attempt    {} of {}", t.attempt, t.max_attempts);
    out!("  priority   {}", t.priority);
    out!("  payload    {}", t.payload);
    if let Some(key) = &t.unique_key {
        out!("  unique     {key}");
    }
    if let Some(job) = &t.job {
        out!("  job        {job}");
    }
    if let Some(timeout) = t.timeout {
        out!("  timeout    {}", humantime::format_duration(timeout));
    }
    out!("  created    {}", clock(t.created_at));
    out!("  run at     {}", clock(t.run_at));
    if let Some(worker) = &t.worker {
        out!("  worker     {worker}");
    }
    if let Some(until) = t.lease_until {
        out!("  lease      until {}", clock(until));
    }
    if let Some(result) = &t.result {
        out!("  result     {}", value_text(result));
    }
    if let Some(error) = &t.error {
        out!("  error      {}", one_line(error, 200));
    }
    if t.attempts.is_empty() {
        return;
    }
    out!("  attempts:");
    for a in &t.attempts {
        let took = a
            .started_at
            .map(|s| {
                format!(
                    " ({:.3}s)",
                    (a.finished_at - s).num_milliseconds() as f64 / 1000.0
                )
            })
            .unwrap_or_default();
        out!(
            "    #{} {:<13} on {:<20} started {}  ended {}{took}",
            a.attempt,
            a.outcome,
            a.worker.as_deref().unwrap_or("?"),
            a.started_at.map_or("-".into(), clock),
            clock(a.finished_at),
        );
        if let Some(error) = &a.error {
            out!("       error: {}", one_line(error, 200));
        }
        if let Some(retry_at) = a.retry_at {
            let backoff = (retry_at - a.finished_at).num_milliseconds() as f64 / 1000.0;
            out!(
                "       retry at {} (backoff {backoff:.3}s)",
                clock(retry_at)
            );
        }
    }
}

/// `wrangle queues …`.
pub(crate) async fn queues(context: &Context, command: QueuesCommand) -> CliResult {
    let (queue, paused) = match command {
        QueuesCommand::Pause { queue } => (queue, true),
        QueuesCommand::Resume { queue } => (queue, false),
    };
    let queue = parse_name("queue", &queue)?;
    context.store.set_queue_paused(&queue, paused).await?;
    if context.json {
        print_json(&json!({"queue": queue, "paused": paused}));
    } else {
        out!(
            "queue {queue} {}",
            if paused { "paused" } else { "resumed" }
        );
    }
    Ok(0)
}
