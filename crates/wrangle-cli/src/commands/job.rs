//! `wrangle job create|status|list|cancel|retry`: named range and list jobs (DScript's
//! master, without a master process: the store coordinates, see `wrangle::jobs`).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use wrangle::jobs::{self, JobKind, JobProgress, JobStatus, NewJob};
use wrangle::parse::{parse_duration, parse_name, parse_range};

use super::Context;
use super::inspect::print_json;
use super::submit::read_input;
use crate::cli::{JobCommand, JobCreateArgs};
use crate::config::Config;
use crate::fail::{CliError, CliResult, EXIT_TASK_FAILED};

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
                Some(items) => jobs::create_list(&context.store, plan.job, items).await?,
                None => jobs::create(&context.store, plan.job).await?,
            };
            if context.json {
                print_json(&job);
            } else {
                println!(
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
                    print!("{}", describe(&progress));
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
                println!("cancelled job {name} ({cancelled} unfinished blocks cancelled)");
            }
            Ok(0)
        }
        JobCommand::Retry { name } => {
            let retried = jobs::retry(&context.store, &name).await?;
            if context.json {
                print_json(&json!({"job": name, "retried": retried}));
            } else {
                println!("job {name}: {retried} dead blocks queued again");
            }
            Ok(0)
        }
    }
}

/// One line per job (`job list`, `status`).
pub(crate) fn print_jobs_table(all: &[JobProgress]) {
    println!(
        "{:<20} {:<6} {:<10} {:>7} {:>10} {:>10} {:>7} {:>8} {:>9}",
        "JOB", "TYPE", "STATUS", "FINISHED", "BLOCKS", "DONE", "FAILED", "RUNNING", "ETA"
    );
    for p in all {
        println!(
            "{:<20} {:<6} {:<10} {:>6.1}% {:>10} {:>10} {:>7} {:>8} {:>9}",
            p.job.name(),
            p.job.definition.kind.as_str(),
            p.status.as_str(),
            p.fraction_finished() * 100.0,
            p.total.blocks,
            p.done.blocks,
            p.failed.blocks,
            p.running.blocks,
            p.eta.map_or("-".to_string(), human_duration)
        );
    }
    if all.is_empty() {
        println!("(no jobs)");
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
    let bar = ProgressBar::with_draw_target(
        None,
        if show_bar {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {percent:>3}% {human_pos}/{human_len} ids {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(name.to_string());
    loop {
        let progress = jobs::progress(&context.store, name).await?;
        if context.json {
            println!(
                "{}",
                serde_json::to_string(&progress).expect("serializable")
            );
        }
        bar.set_length(progress.total.ids);
        bar.set_position(progress.finished_ids());
        bar.set_message(format!(
            "{} ids/s ETA {} | blocks: {} done, {} failed, {} running",
            human_rate(progress.rate),
            progress.eta.map_or("-".to_string(), human_duration),
            progress.done.blocks,
            progress.failed.blocks,
            progress.running.blocks
        ));
        if progress.status != JobStatus::Running {
            bar.finish_and_clear();
            if !context.json {
                print!("{}", describe(&progress));
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
        ("running", p.running),
        ("waiting", p.waiting),
        ("cancelled", p.cancelled),
        ("pruned", p.pruned),
    ] {
        if count.blocks > 0 || matches!(label, "done" | "failed" | "running" | "waiting") {
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
        human_rate(p.rate),
        p.eta.map_or("-".to_string(), human_duration)
    );
    for share in &p.workers {
        out += &format!(
            "  worker {:<24} {:>10} blocks {:>14} ids done, {} running\n",
            share.worker, share.done.blocks, share.done.ids, share.running
        );
    }
    out
}

pub(crate) fn human_rate(rate: f64) -> String {
    if rate >= 10.0 {
        format!("{rate:.0}")
    } else {
        format!("{rate:.1}")
    }
}

pub(crate) fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(human_duration(Duration::from_secs(59)), "59s");
        assert_eq!(human_duration(Duration::from_secs(125)), "2m05s");
        assert_eq!(human_duration(Duration::from_secs(7322)), "2h02m");
        assert_eq!(human_rate(4.24), "4.2");
        assert_eq!(human_rate(1234.5), "1234");
    }
}
