//! `wrangle workers list|scale|reload|stop|log`: the worker registry, control commands
//! sent through the store's mailbox to a worker on any machine (each waiting for the
//! worker's acknowledgement), and a worker's own log.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use wrangle::control::{self, ControlCommand, ControlError};
use wrangle::log::LogOwner;
use wrangle::parse::{parse_duration, parse_name};
use wrangle::pool::parse_scale_target;
use wrangle::{GroupInfo, ProcessInfo, TaskId, WorkerRecord};

use super::Context;
use super::inspect::{ago, print_json};
use crate::cli::{LogViewArgs, WorkersCommand};
use crate::fail::{CliError, CliResult, EXIT_TASK_FAILED};
use crate::stdout::out;

/// A checked control command: the worker, what to send, how long to wait.
pub(crate) struct ControlPlan {
    worker: String,
    command: ControlCommand,
    wait: Duration,
}

/// A checked `workers` command.
pub(crate) enum WorkersPlan {
    List,
    Control(ControlPlan),
    Log(String, LogViewArgs),
}

/// Checks a `workers` command's arguments before the store is opened.
pub(crate) fn plan(command: &WorkersCommand) -> CliResult<WorkersPlan> {
    let (worker, command, wait) = match command {
        WorkersCommand::List => return Ok(WorkersPlan::List),
        WorkersCommand::Log { worker, view } => {
            return Ok(WorkersPlan::Log(parse_name("worker", worker)?, *view));
        }
        WorkersCommand::Scale {
            worker,
            target,
            wait,
        } => {
            let (queue, runners) = parse_scale_target(target)?;
            (worker, ControlCommand::Scale { queue, runners }, wait)
        }
        WorkersCommand::Reload {
            worker,
            runner,
            wait,
        } => {
            let command = match runner {
                Some(runner) => ControlCommand::ReloadRunner { runner: *runner },
                None => ControlCommand::Reload,
            };
            (worker, command, wait)
        }
        WorkersCommand::Stop { worker, wait } => (worker, ControlCommand::Stop, wait),
    };
    Ok(WorkersPlan::Control(ControlPlan {
        worker: parse_name("worker", worker)?,
        command,
        wait: parse_duration(wait)?,
    }))
}

/// Runs a `workers` command.
pub(crate) async fn run(context: &Context, plan: WorkersPlan) -> CliResult {
    let plan = match plan {
        WorkersPlan::List => {
            let workers = context.store.list_workers().await?;
            if context.json {
                print_json(&workers);
            } else {
                print_workers_table(&workers, Utc::now());
            }
            return Ok(0);
        }
        WorkersPlan::Log(worker, view) => {
            return super::logs::show(context, &LogOwner::Worker(worker), view).await;
        }
        WorkersPlan::Control(plan) => plan,
    };
    let ack = control::send_and_wait(&context.store, &plan.worker, plan.command, plan.wait)
        .await
        .map_err(|err| match err {
            ControlError::UnknownWorker(_) => CliError::input(err),
            other => CliError::Runtime(other.to_string()),
        })?;
    if context.json {
        print_json(&json!({
            "worker": plan.worker,
            "ok": ack.ok,
            "message": ack.message,
            "command": ack.envelope.command,
            "id": ack.envelope.id,
        }));
    } else if ack.ok {
        out!("{}: {}", plan.worker, ack.message);
    } else {
        eprintln!("wrangle: error: {} refused: {}", plan.worker, ack.message);
    }
    Ok(if ack.ok { 0 } else { EXIT_TASK_FAILED })
}

pub(crate) fn mib(bytes: u64) -> String {
    if bytes == 0 {
        "-".into()
    } else {
        format!("{}M", bytes >> 20)
    }
}

/// Task ids separated by spaces, or `-` for none.
pub(crate) fn task_list(tasks: &[TaskId]) -> String {
    if tasks.is_empty() {
        return "-".into();
    }
    tasks
        .iter()
        .map(TaskId::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One pool group of a worker, its name padded to `width`.
pub(crate) fn group_line(group: &GroupInfo, width: usize) -> String {
    format!(
        "  group {:<width$} runners {:>3}  executing {:>3}  tasks {}",
        group.name,
        group.runners,
        group.tasks.len(),
        task_list(&group.tasks)
    )
}

/// One long-lived runner process of a worker.
pub(crate) fn process_line(p: &ProcessInfo, now: DateTime<Utc>) -> String {
    format!(
        "  runner {:>3} {:<14} pid {:>7}  up {:>7}  rss {:>6}  tasks {}  restarts {}",
        p.runner,
        p.kind,
        p.pid,
        ago(p.started_at, now),
        mib(p.rss_bytes),
        p.tasks,
        p.restarts
    )
}

/// The workers table of `status` and `workers list`: one line per worker, then one per
/// pool group and runner process. EXECUTING is what its runners run now; FINISHING what it
/// holds with the outcome on its way to the store (the store still counts those running).
pub(crate) fn print_workers_table(workers: &[WorkerRecord], now: DateTime<Utc>) {
    out!(
        "{:<24} {:<16} {:>7} {:>7} {:>9} {:>9} {:>6} {:>8} {:>9}  STATE",
        "WORKER",
        "HOST",
        "PID",
        "RUNNERS",
        "EXECUTING",
        "FINISHING",
        "RSS",
        "UPTIME",
        "LAST SEEN"
    );
    for w in workers {
        let state = if w.is_lost(now) { "LOST" } else { "ok" };
        out!(
            "{:<24} {:<16} {:>7} {:>7} {:>9} {:>9} {:>6} {:>8} {:>9}  {state}",
            w.info.name,
            w.info.host,
            w.info.pid,
            w.info.runners,
            w.info.executing(),
            w.info.finishing(),
            mib(w.info.rss_bytes),
            ago(w.info.started_at, now),
            ago(w.last_seen, now),
        );
        for group in &w.info.pool {
            out!("{}", group_line(group, 18));
        }
        for p in &w.info.processes {
            out!("{}", process_line(p, now));
        }
        if let Some((min, max)) = w.info.autoscale {
            out!("  autoscale {min}..{max}");
        }
    }
    if workers.is_empty() {
        out!("(no workers registered)");
    }
}
