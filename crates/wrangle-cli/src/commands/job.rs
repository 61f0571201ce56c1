//! `wrangle job create|status|list|cancel|retry`: named range and list jobs (DScript's
//! master, without a master process: the store coordinates, see `wrangle::jobs`).

use std::time::Duration;

use serde_json::{Value, json};
use wrangle::jobs::{self, JobKind, JobProgress, JobStatus, NewJob};
use wrangle::parse::{parse_duration, parse_name, parse_range};

use super::Context;
use super::inspect::print_json;
use super::submit::read_input;
use crate::cli::{JobCommand, JobCreateArgs};
use crate::config::Config;
use crate::fail::{CliError, CliResult, EXIT_TASK_FAILED};
use crate::progress;
use crate::stdout::{out, outp};

/// A checked `job create`: the definition and, for a list job, its items.
pub(crate) struct CreatePlan {
    job: NewJob,
    items: Option<Vec<Value>>,
}

/// Checks everything `job create` was given (and reads the items) before the store is opened.
pub(crate) fn plan_create(args: &JobCreateArgs, config: &Config) -> CliResult<CreatePlan> {
    let name = parse_name("job name", &args.name)?;
    let kind = parse_name("kind", &args.kind)?;
    let queue = parse_name("queue", &args.queue)?;
    let kind_config = config.kinds.get(&kind);
    let retries = args
        .retries
        .or_else(|| kind_config.and_then(|k| k.retries))
        .unwrap_or(wrangle::DEFAULT_RETRIES);
    let timeout = match &args.timeout {
        Some(t) => Some(parse_duration(t)?),
        None => kind_config.map(|k| k.timeout(&kind)).transpose()?.flatten(),
    };
    let (job, items) = match (&args.range, &args.items) {
        (Some(range), _) => {
            let (start, end) = parse_range(range)?;
            if args.block < 1 {
                return Err(CliError::input(format!(
                    "--block must be at least 1, not {}",
                    args.block
                )));
            }
            (NewJob::range(name, kind, start, end, args.block), None)
        }
        (None, Some(source)) => {
            let text = read_input(&source.to_string_lossy())?;
            let items: Vec<Value> = text
                .lines()
                .filter(|line| !line.trim().is_empty())
                .map(|line| Value::String(line.to_string()))
                .collect();
            (NewJob::list(name, kind, items.len() as u64), Some(items))
        }
        (None, None) => return Err(CliError::input("job create needs --range or --items")),
    };
    let mut job = job.queue(queue).priority(args.priority).retries(retries);
    job.timeout = timeout;
    job.validate()?;
    Ok(CreatePlan { job, items })
}

/// Runs a `wrangle job` subcommand.
pub(crate) async fn run(
    context: &Context,
    command: JobCommand,
    create: Option<CreatePlan>,
) -> CliResult {
    match command {
        JobCommand::Create(_) => {
            let plan = create.expect("planned before the store was opened");
            let job = match plan.items {
                Some(items) => {
                    let bar = progress::on_terminal(Some(items.len() as u64), "items");
                    let report = |enqueued| {
                        if let Some(bar) = &bar {
                            bar.set_position(enqueued);
                        }
                    };
                    let job = jobs::create_list(&context.store, plan.job, items, &report).await;
                    if let Some(bar) = bar {
                        bar.finish_and_clear();
                    }
                    job?
                }
                None => jobs::create(&context.store, plan.job).await?,
            };
            if context.json {
                print_json(&job);
            } else {
                out!(
                    "created job {} ({} blocks, {} ids)",
                    job.name(),
                    job.total_blocks(),
                    job.total_ids()
                );
            }
            Ok(0)
        }
        JobCommand::Status {
            name,
            follow,
            interval,
            progress,
            no_progress,
        } => {
            let interval = parse_duration(&interval)?;
            if follow {
                let bar = progress
                    || (!no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr()));
                follow_job(context, &name, interval, bar).await
            } else {
                let progress = jobs::progress(&context.store, &name).await?;
                if context.json {
                    print_json(&progress);
                } else {
                    outp!("{}", describe(&progress));
                }
                Ok(0)
            }
        }
        JobCommand::List => {
            let all = jobs::all_progress(&context.store).await?;
            if context.json {
                print_json(&all);
            } else {
                print_jobs_table(&all);
            }
            Ok(0)
        }
        JobCommand::Cancel { name } => {
            let cancelled = jobs::cancel(&context.store, &name).await?;
            if context.json {
                print_json(&json!({"job": name, "cancelled_tasks": cancelled}));
            } else {
                out!("cancelled job {name} ({cancelled} unfinished blocks cancelled)");
            }
            Ok(0)
        }
        JobCommand::Delete { name } => {
            let bar = progress::on_terminal(None, "tasks deleted");
            let report = |deleted| {
                if let Some(bar) = &bar {
                    bar.set_position(deleted);
                }
            };
            let deleted = jobs::delete(&context.store, &name, &report).await;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            let deleted = deleted?;
            if context.json {
                print_json(&json!({"job": name, "deleted_tasks": deleted}));
            } else {
                out!("deleted job {name} and its {deleted} tasks");
            }
            Ok(0)
        }
        JobCommand::Retry { name } => {
            let retried = jobs::retry(&context.store, &name).await?;
            if context.json {
                print_json(&json!({"job": name, "retried": retried}));
            } else {
                out!("job {name}: {retried} dead blocks queued again");
            }
            Ok(0)
        }
    }
}

/// One line per job (`job list`, `status`).
pub(crate) fn print_jobs_table(all: &[JobProgress]) {
    out!(
        "{:<20} {:<6} {:<10} {:>7} {:>10} {:>10} {:>7} {:>8} {:>9}",
        "JOB",
        "TYPE",
        "STATUS",
        "FINISHED",
        "BLOCKS",
        "DONE",
        "FAILED",
        "RUNNING",
        "ETA"
    );
    for p in all {
        out!(
            "{:<20} {:<6} {:<10} {:>6.1}% {:>10} {:>10} {:>7} {:>8} {:>9}",
            p.job.name(),
            p.job.definition.kind.as_str(),
            p.status.as_str(),
            p.fraction_finished() * 100.0,
            p.total.blocks,
            p.done.blocks,
            p.failed.blocks,
            p.running.blocks,
            p.eta.map_or("-".to_string(), progress::clock)
        );
    }
    if all.is_empty() {
        out!("(no jobs)");
    }
}

/// `job status --follow`: a bar (or JSON lines) until the job ends; exit 0 only if every
/// block completed.
async fn follow_job(
    context: &Context,
    name: &str,
    interval: Duration,
    show_bar: bool,
) -> CliResult {
    let bar = progress::reported(name, show_bar);
    loop {
        let progress = jobs::progress(&context.store, name).await?;
        if context.json {
            out!(
                "{}",
                serde_json::to_string(&progress).expect("serializable")
            );
        }
        bar.set_length(progress.total.ids);
        bar.set_position(progress.finished_ids());
        // Short enough for an 80-column line: ids, rate, ETA, and failures if any.
        let mut message = format!(
            "{}/{} ids",
            compact(progress.finished_ids()),
            compact(progress.total.ids)
        );
        if progress.rate > 0.0 {
            message += &format!("  {}/s", progress::whole(progress.rate));
        }
        if let Some(eta) = progress.eta {
            message += &format!("  ETA {}", progress::clock(eta));
        }
        if progress.failed.blocks > 0 {
            message += &format!("  {} failed", progress.failed.blocks);
        }
        bar.set_message(message);
        if progress.status != JobStatus::Running {
            bar.finish_and_clear();
            if !context.json {
                outp!("{}", describe(&progress));
            }
            return Ok(if progress.status == JobStatus::Completed {
                0
            } else {
                EXIT_TASK_FAILED
            });
        }
        tokio::time::sleep(interval).await;
    }
}

/// A count in at most 6 characters: `950`, `12.3k`, `4.95M`, `1.2G`.
fn compact(n: u64) -> String {
    match n {
        0..10_000 => n.to_string(),
        10_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2}M", n as f64 / 1e6),
        _ => format!("{:.1}G", n as f64 / 1e9),
    }
}

/// The human report of `job status`.
fn describe(p: &JobProgress) -> String {
    let d = &p.job.definition;
    let what = match d.kind {
        JobKind::Range => format!("range {}..{} in blocks of {}", d.start, d.end, d.block),
        JobKind::List => format!("list of {} items", d.end),
    };
    let percent = |ids: u64| {
        if p.total.ids == 0 {
            100.0
        } else {
            ids as f64 * 100.0 / p.total.ids as f64
        }
    };
    let mut out = format!(
        "job {}: {} ({what}, kind {}, queue {})\n",
        d.name,
        p.status.as_str(),
        d.task_kind,
        d.queue
    );
    for (label, count) in [
        ("done", p.done),
        ("failed", p.failed),
        ("leased", p.running),
        ("waiting", p.waiting),
        ("cancelled", p.cancelled),
    ] {
        if count.blocks > 0 || matches!(label, "done" | "failed" | "leased" | "waiting") {
            out += &format!(
                "  {label:<10} {:>12} blocks {:>16} ids {:>6.1}%\n",
                count.blocks,
                count.ids,
                percent(count.ids)
            );
        }
    }
    out += &format!(
        "  {:<10} {:>12} blocks {:>16} ids\n",
        "total", p.total.blocks, p.total.ids
    );
    out += &format!(
        "  rate {} ids/s over the last minute, ETA {}\n",
        progress::whole(p.rate),
        p.eta.map_or("-".to_string(), progress::clock)
    );
    for share in &p.workers {
        out += &format!(
            "  worker {:<24} {:>10} blocks {:>14} ids done, {} running\n",
            share.worker, share.done.blocks, share.done.ids, share.running
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_fit_six_characters() {
        assert_eq!(compact(9_999), "9999");
        assert_eq!(compact(12_345), "12.3k");
        assert_eq!(compact(4_950_000), "4.95M");
        assert_eq!(compact(11_000_000_000), "11.0G");
    }
}
