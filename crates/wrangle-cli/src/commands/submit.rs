//! `wrangle submit`: validate everything first, then enqueue (one task or a batch, all or
//! nothing), then optionally wait for the outcome. On a terminal, a batch shows a bar
//! while its payloads are checked and a spinner while it is enqueued, and `--wait` a
//! spinner with the task's state.

use std::io::Read;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use wrangle::parse::{parse_duration, parse_name, parse_payload, parse_size, parse_time};
use wrangle::{Client, NewTask, TaskState};

use super::Context;
use crate::cli::SubmitArgs;
use crate::config::Config;
use crate::fail::{CliError, CliResult, EXIT_TASK_FAILED};
use crate::progress;
use crate::stdout::out;

/// A validated submission.
pub(crate) struct SubmitPlan {
    tasks: Vec<NewTask>,
    wait: Option<Option<Duration>>,
    max_payload: usize,
}

/// The text of FILE, or of stdin for `-`; an unreadable file is bad input.
pub(crate) fn read_input(source: &str) -> CliResult<String> {
    let mut text = String::new();
    let result = if source == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::File::open(source).and_then(|mut f| f.read_to_string(&mut text).map(|_| ()))
    };
    result.map_err(|err| CliError::input(format!("cannot read {source}: {err}")))?;
    Ok(text)
}

/// Checks every argument and builds the tasks; nothing touches the store yet.
pub(crate) fn plan(args: &SubmitArgs, config: &Config) -> CliResult<SubmitPlan> {
    let kind = parse_name("kind", &args.kind)?;
    let queue = parse_name("queue", &args.queue)?;
    let kind_config = config.kinds.get(&kind);
    let now = Utc::now();
    let run_at = match (&args.delay, &args.at) {
        (Some(delay), _) => {
            let delay = chrono::Duration::from_std(parse_duration(delay)?)
                .map_err(|_| CliError::input("--delay is too long"))?;
            Some(now + delay)
        }
        (None, Some(at)) => Some(parse_time(at)?),
        (None, None) => None,
    };
    let timeout = match &args.timeout {
        Some(t) => Some(parse_duration(t)?),
        None => kind_config.map(|k| k.timeout(&kind)).transpose()?.flatten(),
    };
    let retries = args
        .retries
        .or_else(|| kind_config.and_then(|k| k.retries))
        .unwrap_or(wrangle::DEFAULT_RETRIES);
    let wait = match (&args.wait, &args.wait_timeout) {
        (false, _) => None,
        (true, None) => Some(None),
        (true, Some(t)) => Some(Some(parse_duration(t)?)),
    };
    let template = |payload: Value| {
        let mut task = NewTask::new(kind.clone(), payload)
            .queue(queue.clone())
            .priority(args.priority)
            .retries(retries);
        task.run_at = run_at;
        task.timeout = timeout;
        task
    };
    let tasks = match &args.batch {
        Some(source) => {
            let text = read_input(source)?;
            let bar = progress::on_terminal(Some(text.lines().count() as u64), "payloads");
            let mut tasks = Vec::new();
            for (index, line) in text.lines().enumerate() {
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
                if line.trim().is_empty() {
                    continue;
                }
                let payload = parse_payload(line)
                    .map_err(|e| CliError::input(format!("{source} line {}: {e}", index + 1)))?;
                tasks.push(template(payload));
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            if tasks.is_empty() {
                return Err(CliError::input(format!("{source} holds no payloads")));
            }
            tasks
        }
        None => {
            let payload = match args.payload.as_deref() {
                Some("-") => parse_payload(&read_input("-")?)?,
                Some(text) => parse_payload(text)?,
                None => Value::Null,
            };
            let mut task = template(payload);
            if let Some(key) = &args.unique {
                if key.is_empty() {
                    return Err(CliError::input("--unique needs a non-empty key"));
                }
                task = task.unique_key(key.clone());
            }
            vec![task]
        }
    };
    let max_payload = usize::try_from(parse_size(&args.max_payload)?).unwrap_or(usize::MAX);
    for (index, task) in tasks.iter().enumerate() {
        task.check_payload_size(max_payload)
            .map_err(|err| match &args.batch {
                Some(source) => CliError::input(format!("{source} payload {}: {err}", index + 1)),
                None => err.into(),
            })?;
    }
    Ok(SubmitPlan {
        tasks,
        wait,
        max_payload,
    })
}

/// Enqueues, prints the id(s), and with `--wait` prints the outcome.
pub(crate) async fn run(context: &Context, plan: SubmitPlan) -> CliResult {
    let client = Client::new(context.store.clone()).max_payload(plan.max_payload);
    // A batch is one store call (all or nothing), so there is no count to show while
    // it runs: a spinner says what is going on.
    let spinner = (plan.tasks.len() > 1).then(|| {
        progress::spinner_on_terminal(format!(
            "enqueueing {} tasks (one transaction)",
            progress::whole(plan.tasks.len() as f64)
        ))
    });
    let enqueued = client.submit_batch(plan.tasks).await;
    if let Some(spinner) = spinner.flatten() {
        spinner.finish_and_clear();
    }
    let enqueued = enqueued?;
    let Some(wait_timeout) = plan.wait else {
        if context.json {
            out!(
                "{}",
                serde_json::to_string(&enqueued).expect("serializable")
            );
        } else {
            for e in &enqueued {
                out!("{}", e.id);
            }
        }
        return Ok(0);
    };
    let id = enqueued[0].id;
    let spinner = progress::spinner_on_terminal(format!("task {id}: waiting"));
    let task = client
        .wait_watching(id, wait_timeout, |task| {
            if let Some(spinner) = &spinner {
                spinner.set_message(format!(
                    "task {id}: {} (attempt {} of {})",
                    task.state, task.attempt, task.max_attempts
                ));
            }
        })
        .await;
    if let Some(spinner) = spinner {
        spinner.finish_and_clear();
    }
    let task = task?;
    let code = if task.state == TaskState::Completed {
        0
    } else {
        EXIT_TASK_FAILED
    };
    if context.json {
        out!(
            "{}",
            json!({"id": id, "state": task.state, "result": task.result, "error": task.error})
        );
        return Ok(code);
    }
    match task.state {
        TaskState::Completed => match task.result {
            Some(Value::String(text)) => out!("{text}"),
            Some(Value::Null) | None => {}
            Some(other) => out!("{other}"),
        },
        TaskState::Cancelled => eprintln!("wrangle: task {id} was cancelled"),
        _ => eprintln!(
            "wrangle: task {id} failed after {} attempt(s): {}",
            task.attempt,
            task.error.as_deref().unwrap_or("unknown error")
        ),
    }
    Ok(code)
}
