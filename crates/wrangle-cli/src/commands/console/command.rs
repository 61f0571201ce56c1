//! The console's command language: the table of commands (for `help`, completion and usage
//! errors), parsing one line into a [`ConsoleCommand`], and running it. Most commands go
//! through the same functions as their one-shot `wrangle` subcommands, so both print alike
//! (and honour `--json` alike); `status WORKER` and `pool WORKER` are the console's own.

use std::time::Duration;

use chrono::Utc;
use wrangle::TaskId;
use wrangle::WorkerRecord;
use wrangle::parse::{parse_duration, parse_name};

use super::super::Context;
use super::super::inspect::{ago, print_json};
use super::super::workers::{group_line, mib, process_line, task_list};
use super::super::{inspect, job, workers};
use crate::cli::{JobCommand, QueuesCommand, TasksCommand, WorkersCommand};
use crate::fail::{CliError, CliResult};

/// What an argument of a command names, so that Tab can offer the right names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ArgumentKind {
    Worker,
    /// A pool group of the worker named by the previous argument (`scale WORKER QUEUE=N`).
    GroupOfWorker,
    Queue,
    Job,
    /// Anything else (an id, a number, a duration): nothing to complete.
    Other,
}

/// One console command as `help` lists it.
pub(super) struct CommandSpec {
    pub(super) name: &'static str,
    pub(super) usage: &'static str,
    pub(super) about: &'static str,
    pub(super) arguments: &'static [ArgumentKind],
}

use crate::stdout::outp;
use ArgumentKind::{GroupOfWorker, Job, Other, Queue, Worker};

/// Every command, in the order `help` shows them.
pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "status",
        usage: "[WORKER]",
        about: "queues, workers, jobs; or one worker in detail",
        arguments: &[Worker],
    },
    CommandSpec {
        name: "workers",
        usage: "",
        about: "workers with their pool groups and runner processes",
        arguments: &[],
    },
    CommandSpec {
        name: "jobs",
        usage: "",
        about: "every job with its progress",
        arguments: &[],
    },
    CommandSpec {
        name: "job",
        usage: "NAME",
        about: "a job's progress: done, failed, running, rate, ETA",
        arguments: &[Job],
    },
    CommandSpec {
        name: "task",
        usage: "ID",
        about: "one task with every attempt (worker, times, error)",
        arguments: &[Other],
    },
    CommandSpec {
        name: "scale",
        usage: "WORKER [QUEUE=]N",
        about: "set a worker's (or one pool group's) runners",
        arguments: &[Worker, GroupOfWorker],
    },
    CommandSpec {
        name: "pool",
        usage: "WORKER",
        about: "a worker's pool groups, their runners and tasks",
        arguments: &[Worker],
    },
    CommandSpec {
        name: "pstree",
        usage: "",
        about: "every worker on every machine with its runner processes",
        arguments: &[],
    },
    CommandSpec {
        name: "start",
        usage: "[WORKER OPTIONS...]",
        about: "start a wrangle worker on this machine (e.g. start --name w2 -n 4); its log goes to .wrangle/logs",
        arguments: &[],
    },
    CommandSpec {
        name: "reload",
        usage: "WORKER [RUNNER]",
        about: "restart a worker's runner processes gracefully (or only runner RUNNER's)",
        arguments: &[Worker],
    },
    CommandSpec {
        name: "stop",
        usage: "WORKER",
        about: "stop a worker gracefully (running tasks finish)",
        arguments: &[Worker],
    },
    CommandSpec {
        name: "pause",
        usage: "QUEUE",
        about: "stop workers claiming from QUEUE",
        arguments: &[Queue],
    },
    CommandSpec {
        name: "resume",
        usage: "QUEUE",
        about: "let workers claim from QUEUE again",
        arguments: &[Queue],
    },
    CommandSpec {
        name: "retry",
        usage: "ID",
        about: "run a dead, cancelled or waiting task again now",
        arguments: &[Other],
    },
    CommandSpec {
        name: "cancel",
        usage: "ID",
        about: "cancel an unfinished task (a running one is stopped)",
        arguments: &[Other],
    },
    CommandSpec {
        name: "tail",
        usage: "[WORKER] [DURATION]",
        about: "follow task events, or a worker's own log, until Ctrl-C (or for DURATION)",
        arguments: &[Worker, Other],
    },
    CommandSpec {
        name: "help",
        usage: "",
        about: "this list",
        arguments: &[],
    },
    CommandSpec {
        name: "exit",
        usage: "",
        about: "leave the console (also Ctrl-D)",
        arguments: &[],
    },
    CommandSpec {
        name: "quit",
        usage: "",
        about: "same as exit",
        arguments: &[],
    },
];

/// One parsed console line.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ConsoleCommand {
    Status(Option<String>),
    Workers,
    Jobs,
    Job(String),
    Task(TaskId),
    Scale {
        worker: String,
        target: String,
    },
    Pool(String),
    Pstree,
    /// Start a worker here with these options.
    Start(Vec<String>),
    Reload {
        worker: String,
        /// Only this runner's process.
        runner: Option<u32>,
    },
    Stop(String),
    Pause(String),
    Resume(String),
    Retry(TaskId),
    Cancel(TaskId),
    /// Follow events until interrupted, or for this long.
    Tail(Option<Duration>),
    /// Follow a worker's own log until interrupted, or for this long.
    TailWorker(String, Option<Duration>),
    Help,
    Exit,
}

/// Parses one line; `Ok(None)` for a blank line or a `#` comment. Words are split with
/// shell quoting rules. The error is the message of the `error:` line.
pub(super) fn parse(line: &str) -> Result<Option<ConsoleCommand>, String> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let words = shell_words::split(trimmed).map_err(|e| format!("cannot read '{trimmed}': {e}"))?;
    let Some((name, arguments)) = words.split_first() else {
        return Ok(None);
    };
    let spec = COMMANDS
        .iter()
        .find(|spec| spec.name == name)
        .ok_or_else(|| format!("unknown command '{name}' (type help for the list)"))?;
    let usage = || {
        format!("usage: {} {}", spec.name, spec.usage)
            .trim_end()
            .to_string()
    };
    let one = |arguments: &[String]| match arguments {
        [only] => Ok(only.clone()),
        _ => Err(usage()),
    };
    let none = |arguments: &[String]| {
        if arguments.is_empty() {
            Ok(())
        } else {
            Err(usage())
        }
    };
    let command =
        match spec.name {
            "status" => match arguments {
                [] => ConsoleCommand::Status(None),
                [worker] => ConsoleCommand::Status(Some(worker.clone())),
                _ => return Err(usage()),
            },
            "workers" => none(arguments).map(|()| ConsoleCommand::Workers)?,
            "jobs" => none(arguments).map(|()| ConsoleCommand::Jobs)?,
            "job" => ConsoleCommand::Job(one(arguments)?),
            "task" => ConsoleCommand::Task(task_id(&one(arguments)?)?),
            "scale" => match arguments {
                [worker, target] => ConsoleCommand::Scale {
                    worker: worker.clone(),
                    target: target.clone(),
                },
                _ => return Err(usage()),
            },
            "pool" => ConsoleCommand::Pool(one(arguments)?),
            "pstree" => none(arguments).map(|()| ConsoleCommand::Pstree)?,
            "start" => ConsoleCommand::Start(arguments.to_vec()),
            "reload" => {
                match arguments {
                    [worker] => ConsoleCommand::Reload {
                        worker: worker.clone(),
                        runner: None,
                    },
                    [worker, runner] => ConsoleCommand::Reload {
                        worker: worker.clone(),
                        runner: Some(runner.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                            format!("a runner is a number from 1, not '{runner}'")
                        })?),
                    },
                    _ => return Err(usage()),
                }
            }
            "stop" => ConsoleCommand::Stop(one(arguments)?),
            "pause" => ConsoleCommand::Pause(one(arguments)?),
            "resume" => ConsoleCommand::Resume(one(arguments)?),
            "retry" => ConsoleCommand::Retry(task_id(&one(arguments)?)?),
            "cancel" => ConsoleCommand::Cancel(task_id(&one(arguments)?)?),
            // One word: a duration if it reads as one, else a worker's name.
            "tail" => match arguments {
                [] => ConsoleCommand::Tail(None),
                [word] => match parse_duration(word) {
                    Ok(duration) => ConsoleCommand::Tail(Some(duration)),
                    Err(_) => ConsoleCommand::TailWorker(
                        parse_name("worker", word).map_err(|e| e.to_string())?,
                        None,
                    ),
                },
                [worker, duration] => ConsoleCommand::TailWorker(
                    parse_name("worker", worker).map_err(|e| e.to_string())?,
                    Some(parse_duration(duration).map_err(|e| e.to_string())?),
                ),
                _ => return Err(usage()),
            },
            "help" => none(arguments).map(|()| ConsoleCommand::Help)?,
            "exit" | "quit" => none(arguments).map(|()| ConsoleCommand::Exit)?,
            other => unreachable!("command '{other}' is in COMMANDS but not parsed"),
        };
    Ok(Some(command))
}

fn task_id(text: &str) -> Result<TaskId, String> {
    text.parse()
        .map_err(|_| format!("a task id is a number, not '{text}'"))
}

/// Runs every command but `tail`, `start` and `exit` (the console loop handles those); returns
/// the exit code of its one-shot equivalent.
pub(super) async fn execute(context: &Context, command: ConsoleCommand) -> CliResult {
    match command {
        ConsoleCommand::Status(None) => inspect::status(context).await,
        ConsoleCommand::Status(Some(name)) => {
            let worker = find_worker(context, &name).await?;
            if context.json {
                print_json(&worker);
            } else {
                outp!("{}", describe_worker(&worker, Utc::now()));
            }
            Ok(0)
        }
        ConsoleCommand::Workers => workers::run(context, workers::WorkersPlan::List).await,
        ConsoleCommand::Jobs => job::run(context, JobCommand::List, None).await,
        ConsoleCommand::Job(name) => {
            let status = JobCommand::Status {
                name,
                follow: false,
                interval: "1s".into(),
                progress: false,
                no_progress: true,
            };
            job::run(context, status, None).await
        }
        ConsoleCommand::Task(id) => inspect::tasks(context, TasksCommand::Show { id }, None).await,
        ConsoleCommand::Scale { worker, target } => {
            control(
                context,
                WorkersCommand::Scale {
                    worker,
                    target,
                    wait: crate::cli::ACK_WAIT.into(),
                },
            )
            .await
        }
        ConsoleCommand::Pool(name) => {
            let worker = find_worker(context, &name).await?;
            if context.json {
                print_json(&worker.info.pool);
            } else {
                outp!("{}", describe_groups(&worker));
            }
            Ok(0)
        }
        ConsoleCommand::Reload { worker, runner } => {
            let wait = crate::cli::ACK_WAIT.into();
            control(
                context,
                WorkersCommand::Reload {
                    worker,
                    runner,
                    wait,
                },
            )
            .await
        }
        ConsoleCommand::Stop(worker) => {
            let wait = crate::cli::ACK_WAIT.into();
            control(context, WorkersCommand::Stop { worker, wait }).await
        }
        ConsoleCommand::Pause(queue) => {
            inspect::queues(context, QueuesCommand::Pause { queue }).await
        }
        ConsoleCommand::Resume(queue) => {
            inspect::queues(context, QueuesCommand::Resume { queue }).await
        }
        ConsoleCommand::Retry(id) => {
            let retry = TasksCommand::Retry {
                id: Some(id),
                dead: false,
                queue: None,
            };
            inspect::tasks(context, retry, None).await
        }
        ConsoleCommand::Cancel(id) => {
            inspect::tasks(context, TasksCommand::Cancel { id }, None).await
        }
        ConsoleCommand::Help => {
            outp!("{}", help());
            Ok(0)
        }
        ConsoleCommand::Pstree => super::processes::pstree(context).await,
        ConsoleCommand::Tail(_)
        | ConsoleCommand::TailWorker(..)
        | ConsoleCommand::Start(_)
        | ConsoleCommand::Exit => {
            unreachable!("the console loop runs tail, start and exit itself")
        }
    }
}

async fn control(context: &Context, command: WorkersCommand) -> CliResult {
    let plan = workers::plan(&command)?;
    workers::run(context, plan).await
}

/// The `help` text: one line per command.
pub(super) fn help() -> String {
    let width = COMMANDS
        .iter()
        .map(|spec| spec.name.len() + 1 + spec.usage.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for spec in COMMANDS {
        let synopsis = format!("{} {}", spec.name, spec.usage);
        out += &format!("  {:<width$}  {}\n", synopsis.trim_end(), spec.about);
    }
    out += "Tab completes commands and names; Ctrl-C stops tail or a waiting command.\n";
    out
}

async fn find_worker(context: &Context, name: &str) -> CliResult<WorkerRecord> {
    let all = context.store.list_workers().await?;
    let names: Vec<&str> = all.iter().map(|w| w.info.name.as_str()).collect();
    let known = if names.is_empty() {
        "no workers are registered".to_string()
    } else {
        format!("workers: {}", names.join(", "))
    };
    all.iter()
        .find(|w| w.info.name == name)
        .cloned()
        .ok_or_else(|| CliError::input(format!("no worker named '{name}' ({known})")))
}

/// `pool WORKER`: one line per pool group.
fn describe_groups(worker: &WorkerRecord) -> String {
    let width = worker
        .info
        .pool
        .iter()
        .map(|g| g.name.len())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut out = String::new();
    for group in &worker.info.pool {
        out += &group_line(group, width);
        out.push('\n');
    }
    if worker.info.pool.is_empty() {
        out += "  (no pool groups reported)\n";
    }
    out
}

/// `status WORKER`: everything the worker's last heartbeat said about it.
pub(super) fn describe_worker(worker: &WorkerRecord, now: chrono::DateTime<Utc>) -> String {
    let info = &worker.info;
    let health = if worker.is_lost(now) {
        "LOST (no heartbeat for a whole lease: its tasks are being rescued)"
    } else {
        "ok"
    };
    let queues = if info.queues.is_empty() {
        "every queue".to_string()
    } else {
        info.queues.join(",")
    };
    let mut out = format!(
        "worker {} on {} pid {}: {health}, last seen {} ago\n",
        info.name,
        info.host,
        info.pid,
        ago(worker.last_seen, now)
    );
    out += &format!(
        "  up {}  version {}  rss {}  lease {}  queues {queues}\n",
        ago(info.started_at, now),
        info.version,
        mib(info.rss_bytes),
        if info.lease_ms == 0 {
            "-".to_string()
        } else {
            humantime::format_duration(Duration::from_millis(info.lease_ms)).to_string()
        },
    );
    out += &format!(
        "  runners {}  executing {}  finishing {}  tasks {}\n",
        info.runners,
        info.executing(),
        info.finishing(),
        task_list(&info.tasks)
    );
    if let Some((min, max)) = info.autoscale {
        out += &format!("  autoscale {min}..{max}\n");
    }
    out += &describe_groups(worker);
    if info.processes.is_empty() {
        out += "  no long-lived runner processes (each task runs its own command)\n";
    }
    for p in &info.processes {
        out += &process_line(p, now);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_into_commands_with_their_arguments() {
        assert_eq!(parse("  ").unwrap(), None);
        assert_eq!(parse("# a comment").unwrap(), None);
        assert_eq!(parse("status").unwrap(), Some(ConsoleCommand::Status(None)));
        assert_eq!(
            parse("status w1").unwrap(),
            Some(ConsoleCommand::Status(Some("w1".into())))
        );
        assert_eq!(
            parse("scale w1 a=3").unwrap(),
            Some(ConsoleCommand::Scale {
                worker: "w1".into(),
                target: "a=3".into()
            })
        );
        assert_eq!(
            parse("pause 'a'").unwrap(),
            Some(ConsoleCommand::Pause("a".into()))
        );
        assert_eq!(
            parse("tail 1m").unwrap(),
            Some(ConsoleCommand::Tail(Some(Duration::from_secs(60))))
        );
        assert_eq!(parse("quit").unwrap(), Some(ConsoleCommand::Exit));
        assert_eq!(parse("retry 42").unwrap(), Some(ConsoleCommand::Retry(42)));
        assert_eq!(
            parse("reload w1 2").unwrap(),
            Some(ConsoleCommand::Reload {
                worker: "w1".into(),
                runner: Some(2)
            })
        );
    }

    #[test]
    fn bad_lines_say_what_is_wrong_in_one_line() {
        assert_eq!(
            parse("frobnicate").unwrap_err(),
            "unknown command 'frobnicate' (type help for the list)"
        );
        assert_eq!(
            parse("scale w1").unwrap_err(),
            "usage: scale WORKER [QUEUE=]N"
        );
        assert_eq!(parse("jobs now").unwrap_err(), "usage: jobs");
        assert_eq!(
            parse("cancel x").unwrap_err(),
            "a task id is a number, not 'x'"
        );
        assert_eq!(
            parse("tail box-1").unwrap(),
            Some(ConsoleCommand::TailWorker("box-1".into(), None))
        );
        assert_eq!(
            parse("tail box-1 10s").unwrap(),
            Some(ConsoleCommand::TailWorker(
                "box-1".into(),
                Some(Duration::from_secs(10))
            ))
        );
        assert!(parse("tail box-1 soon").is_err());
        assert_eq!(
            parse("reload w1 zero").unwrap_err(),
            "a runner is a number from 1, not 'zero'"
        );
        assert!(parse("pause 'a").unwrap_err().starts_with("cannot read"));
        for error in [
            parse("frobnicate"),
            parse("scale"),
            parse("retry 1 2"),
            parse("tail w 1s 2s"),
        ] {
            assert!(!error.unwrap_err().contains('\n'));
        }
    }

    #[test]
    fn help_lists_every_command_on_its_own_line() {
        let text = help();
        for spec in COMMANDS {
            assert!(
                text.lines()
                    .any(|line| line.trim_start().starts_with(spec.name)
                        && line.contains(spec.about)),
                "{} missing from help:\n{text}",
                spec.name
            );
        }
    }
}
