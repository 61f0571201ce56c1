//! `wrangle run`: a command (or a runner) over many items in the foreground, on the same
//! pipeline as the queue: items become tasks in a store (in memory, or the SQLite
//! `--journal`), one worker claims and runs them with the exec or runner executor, and
//! the outcomes come back through an [`OutcomeObserver`](wrangle::OutcomeObserver).
//!
//! - [`items`]: item sources, read on a thread into a bounded channel;
//! - [`output`]: how outputs are printed (grouped, line by line, in order, to files);
//! - [`tracker`]: counts, the window of items in flight, and the end of the run.
//!
//! The feeder only enqueues while the window has room, so an endless source runs in
//! bounded memory. Each task's payload is `{"seq": N, "item": ...}`; [`RunExecutor`]
//! unwraps it so commands see the item as `{}` and its sequence number as the task id.
//! With a journal, every item has a unique key made of its sequence number and a hash of
//! its text: rerunning enqueues nothing twice, skips what is done, and retries what failed.
//!
//! GNU parallel's run controls sit around the executor in [`RunExecutor`] (`--delay`,
//! `--dry-run`, `--joblog`, and the counts `--halt` is decided on, which the [`Tracker`]
//! acts upon).

mod items;
mod output;
mod tracker;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wrangle::exec::command::{Fill, exit_of, expand_argv, placeholder_text, shell_line};
use wrangle::exec::{Executor, OutputSink, OutputStream, RunnerExecutor, RunnerSpec};
use wrangle::halt::{Halt, parse_halt};
use wrangle::parse::{parse_duration, parse_range};
use wrangle::store::ClaimedTask;
use wrangle::{
    CommandExecutor, CommandSpec, ExecResult, MemoryStore, NewTask, QueueFilter, Registry,
    RetryPolicy, Shutdown, SqliteStore, Store, TaskState, Worker, WorkerConfig,
};

use crate::cli::RunArgs;
use crate::fail::{CliError, CliResult, EXIT_INTERRUPTED, EXIT_TASK_FAILED};
use items::{ItemSource, Shape, SourceEvent};
use output::{OutputMode, Printer};
use tracker::{RunCounts, Tracker};

/// The kind of every task of a run.
const RUN_KIND: &str = "run";
/// Most items enqueued per store round trip.
const ENQUEUE_BATCH: usize = 1000;

/// What runs each item.
#[derive(Debug, Clone)]
enum Runs {
    /// A command template; with `--shell`, `sh -c` running `script` with the item as
    /// its positional parameters.
    Command {
        argv: Vec<String>,
        script: Option<String>,
    },
    Runner {
        argv: Vec<String>,
        in_flight: usize,
    },
}

/// The environment variable `--shell`'s script travels in: the command line is a fixed
/// `eval` of it, so no item is ever spliced into the script's text.
const SHELL_SCRIPT_VAR: &str = "WRANGLE_SHELL_SCRIPT";

impl Runs {
    /// The command line an item makes, as `--dry-run` and `--joblog` show it (a
    /// `--shell` script shown as itself, not as the `eval` that runs it).
    fn shown(&self, item: &ClaimedTask) -> Vec<std::ffi::OsString> {
        let fill = Fill {
            task: item,
            slot: 1,
        };
        match self {
            Runs::Command {
                script: Some(script),
                ..
            } => ["sh", "-c", script.as_str(), "wrangle"]
                .map(std::ffi::OsString::from)
                .into_iter()
                .chain(expand_argv(&["{}"], fill))
                .collect(),
            Runs::Command { argv, .. } => expand_argv(argv, fill),
            Runs::Runner { .. } => vec![item.payload.to_string().into()],
        }
    }
}

/// A validated `wrangle run`.
#[derive(Debug)]
pub(crate) struct RunPlan {
    source: ItemSource,
    runs: Runs,
    jobs: usize,
    max_attempts: u32,
    timeout: Option<Duration>,
    backoff: Duration,
    output: OutputMode,
    tag: bool,
    journal: Option<PathBuf>,
    progress: bool,
    shape: Shape,
    halt: Option<Halt>,
    /// `--halt` as given, for the summary.
    halt_spec: Option<String>,
    delay: Option<Duration>,
    dry_run: bool,
    joblog: Option<PathBuf>,
}

/// Checks the command line; nothing runs yet.
pub(crate) fn plan(args: &RunArgs) -> CliResult<RunPlan> {
    let (command, listed) = match args.command.iter().position(|a| items::is_separator(a)) {
        Some(at) => (&args.command[..at], Some(&args.command[at..])),
        None => (&args.command[..], None),
    };
    // Items may be any bytes (file names often are not UTF-8); the command is text.
    let mut command = command
        .iter()
        .map(|arg| {
            arg.to_str().map(String::from).ok_or_else(|| {
                CliError::input(format!(
                    "the command's argument {} is not UTF-8 (items may be any bytes: put it after :::)",
                    arg.to_string_lossy()
                ))
            })
        })
        .collect::<CliResult<Vec<String>>>()?;
    let shape = Shape {
        null: args.null,
        colsep: args
            .colsep
            .as_deref()
            .map(|colsep| {
                regex::bytes::Regex::new(colsep).map_err(|err| {
                    CliError::input(format!(
                        "--colsep '{colsep}' is not a regular expression: {}",
                        err.to_string().lines().last().unwrap_or_default()
                    ))
                })
            })
            .transpose()?,
        group: args.max_args,
    };
    let mut arguments = args.max_args.unwrap_or(1);
    let source = match (listed, &args.items, &args.range, &args.dispatch) {
        (Some(_), Some(_), _, _) | (Some(_), _, Some(_), _) | (Some(_), _, _, Some(_)) => {
            return Err(CliError::input(
                "give items one way: ::: ITEMS, --items, --range or --dispatch",
            ));
        }
        (Some(listed), ..) => {
            let (source, width) = items::input_sources(listed)?;
            if width > 1 {
                arguments = width;
            }
            source
        }
        (None, Some(file), ..) => ItemSource::File(file.clone()),
        (None, None, Some(range), _) => {
            let (start, end) = parse_range(range)?;
            let block = args.block.unwrap_or(1);
            if block == 0 {
                return Err(CliError::input("--block must be at least 1"));
            }
            ItemSource::Range { start, end, block }
        }
        (None, None, None, Some(dispatch)) => {
            ItemSource::Dispatch(super::split_command("--dispatch", dispatch)?)
        }
        (None, None, None, None) => ItemSource::Stdin,
    };
    if shape.colsep.is_some() {
        // Columns are only known as lines are read; a missing one is empty.
        arguments = usize::MAX;
    }
    let runs = match (&args.runner, &args.shell, command.is_empty()) {
        (Some(_), _, false) | (_, Some(_), false) => {
            return Err(CliError::input(format!(
                "give either a COMMAND or {}, not both",
                if args.runner.is_some() {
                    "--runner"
                } else {
                    "--shell"
                }
            )));
        }
        (Some(runner), _, true) => {
            if args.runner_in_flight == 0 {
                return Err(CliError::input("--runner-in-flight must be at least 1"));
            }
            Runs::Runner {
                argv: super::split_command("--runner", runner)?,
                in_flight: args.runner_in_flight,
            }
        }
        (None, Some(script), true) => Runs::Command {
            argv: [
                "sh",
                "-c",
                &format!("eval \"${SHELL_SCRIPT_VAR}\""),
                "wrangle",
                "{}",
            ]
            .map(String::from)
            .to_vec(),
            script: Some(script.clone()),
        },
        (None, None, true) => {
            return Err(CliError::input(
                "nothing to run: give a COMMAND (e.g. wrangle run -- echo {}), --shell SCRIPT or \
                 --runner CMD (items that are shell commands themselves: --shell 'eval \"$1\"')",
            ));
        }
        (None, None, false) => {
            refuse_shell_syntax(&command[0])?;
            let highest = wrangle::placeholder::check_template(&command)?;
            if highest > arguments {
                return Err(CliError::input(format!(
                    "{{{highest}}} names argument {highest}, but each item has {arguments} \
                     (one per input source, or -N)"
                )));
            }
            if !wrangle::placeholder::has_placeholder(&command) && args.max_args != Some(0) {
                // The item's values as arguments of their own, as GNU parallel appends
                // them (`{}` of a tuple is one argument per value).
                command.push("{}".into());
            }
            Runs::Command {
                argv: command,
                script: None,
            }
        }
    };
    let jobs = match args.jobs {
        Some(0) => return Err(CliError::input("-n/--jobs must be at least 1")),
        Some(jobs) => jobs,
        None => std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    let output = match (&args.output, args.line_buffer, args.keep_order) {
        (Some(dir), ..) => OutputMode::Files(dir.clone()),
        (None, true, _) => OutputMode::LineBuffer,
        (None, false, true) => OutputMode::KeepOrder,
        (None, false, false) => OutputMode::Grouped,
    };
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let delay = args.delay.as_deref().map(parse_seconds).transpose()?;
    Ok(RunPlan {
        source,
        runs,
        jobs,
        max_attempts: args.retries.saturating_add(1),
        timeout: args.timeout.as_deref().map(parse_seconds).transpose()?,
        backoff: parse_duration(&args.backoff)?,
        output,
        tag: args.tag,
        journal: args.journal.clone(),
        progress: (args.progress || interactive) && !args.no_progress && !args.dry_run,
        shape,
        halt: args.halt.as_deref().map(parse_halt).transpose()?.flatten(),
        halt_spec: args.halt.clone(),
        delay: delay.filter(|d| !d.is_zero()),
        dry_run: args.dry_run,
        joblog: args.joblog.clone(),
    })
}

/// A duration as `wrangle run` takes it: `30s`, `1m`, or a plain number of seconds
/// (`0.5`), as GNU parallel writes `--delay` and `--timeout`.
fn parse_seconds(text: &str) -> CliResult<Duration> {
    match text.trim().parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && (0.0..=1e9).contains(&seconds) => {
            Ok(Duration::from_secs_f64(seconds))
        }
        _ => Ok(parse_duration(text)?),
    }
}

/// A program name that holds shell syntax (`'gzip -dc {} > {.}'`, GNU parallel's habit)
/// cannot be a program: say how to run it instead of failing on every item.
fn refuse_shell_syntax(program: &str) -> CliResult<()> {
    let shell_syntax = |c: char| c.is_whitespace() || "|&;<>()`$\"'*?".contains(c);
    if program.contains(shell_syntax) {
        return Err(CliError::input(format!(
            "'{}' is not a program: wrangle runs commands without a shell; for pipes and \
             redirections use --shell 'SCRIPT' (the item is \"$1\")",
            wrangle::parse::shorten(program, 60)
        )));
    }
    Ok(())
}

/// Runs the plan to the end (or Ctrl-C); returns the exit code.
pub(crate) async fn run(plan: RunPlan, json: bool) -> CliResult {
    let started = Instant::now();
    let total = plan.source.known_total(&plan.shape);
    let items = plan.source.start(&plan.shape)?;
    let store: Arc<dyn Store> = match &plan.journal {
        Some(path) => Arc::new(SqliteStore::open(path).await?),
        None => Arc::new(MemoryStore::new()),
    };
    let bar = plan
        .progress
        .then(|| crate::progress::counting(total, "items"));
    // A regular --items file: count its lines on the side, so the bar gets its ETA.
    if let (Some(bar), None, Some(path)) = (&bar, total, plan.source.countable_file()) {
        let (bar, path, shape) = (bar.clone(), path.to_path_buf(), plan.shape.clone());
        tokio::task::spawn_blocking(move || {
            if let Ok(lines) = items::count_lines(&path, shape.separator()) {
                crate::progress::set_total(&bar, shape.items_of(lines), "items");
            }
        });
    }
    let printer = Arc::new(Printer::new(plan.output.clone(), plan.tag, bar.clone()));
    let (inner, runners): (Arc<dyn Executor>, usize) = match &plan.runs {
        Runs::Command { argv, script } => {
            let mut spec = CommandSpec::new(argv.clone());
            if let Some(script) = script {
                spec.env.push((SHELL_SCRIPT_VAR.into(), script.clone()));
            }
            spec.default_timeout = plan.timeout;
            spec.payload_on_stdin = false;
            // Output reaches the printer as it is produced; the result is not needed.
            spec.max_result_bytes = 0;
            spec.output = Some(printer.clone());
            (Arc::new(CommandExecutor::new(spec)), plan.jobs)
        }
        Runs::Runner { argv, in_flight } => {
            let mut spec = RunnerSpec::new(argv.clone(), plan.jobs);
            spec.in_flight = *in_flight;
            spec.default_timeout = plan.timeout;
            spec.output = Some(printer.clone());
            let capacity = spec.capacity();
            (Arc::new(RunnerExecutor::new(spec)), capacity)
        }
    };
    // Room for every runner's work plus a claim batch's worth of look-ahead.
    let window = (runners * 4).max(ENQUEUE_BATCH);
    let shutdown = Shutdown::new();
    let tracker = Arc::new(Tracker::new(
        window,
        bar.clone(),
        plan.halt.map(|halt| (halt, shutdown.clone())),
    ));
    let joblog = match &plan.joblog {
        Some(path) => Some(JobLog::open(path)?),
        None => None,
    };
    let mut registry = Registry::new();
    registry.insert(
        RUN_KIND,
        Arc::new(RunExecutor {
            inner,
            tracker: tracker.clone(),
            runs: plan.runs.clone(),
            dry_run: plan.dry_run.then(|| printer.clone()),
            delay: plan
                .delay
                .map(|delay| (delay, tokio::sync::Mutex::new(None))),
            joblog,
        }),
    );
    let mut config = WorkerConfig::new();
    config.name = format!("run-{}", std::process::id());
    config.queues = QueueFilter::All;
    config.runners = runners;
    config.batch_size = runners.clamp(1, ENQUEUE_BATCH);
    config.lease = Duration::from_secs(10);
    // A journal remembers what is done however old; the in-memory store has its own pruner.
    config.retention = None;
    // Ctrl-C once lets running items finish, however long they take.
    config.shutdown_timeout = Duration::from_secs(365 * 24 * 3600);
    config.retry_policy = RetryPolicy::exponential(plan.backoff);

    let interrupted = super::watch_signals(shutdown.clone(), announce_interrupts(bar.clone()))?;
    let worker = Worker::new(store.clone(), registry, config).with_observer(tracker.clone());
    let worker = tokio::spawn(worker.run(shutdown.clone()));
    let pruner = plan
        .journal
        .is_none()
        .then(|| tokio::spawn(prune_finished(store.clone())));

    // Output with nowhere to go stops the run like a first Ctrl-C: no new items start.
    let stop_starting = shutdown.graceful.clone();
    let closed = printer.stdout_closed().clone();
    tokio::spawn(async move {
        closed.cancelled().await;
        stop_starting.cancel();
    });
    let fed = feed(items, &store, &tracker, &printer, &plan, &shutdown.graceful).await;
    let source_error = match fed {
        Ok(count) => {
            tracker.source_done(count);
            None
        }
        Err(FeedError::Source(message)) => {
            tracker.source_done(0);
            Some(message)
        }
        Err(FeedError::Store(err)) => return Err(err.into()),
    };
    if source_error.is_none() {
        tokio::select! {
            _ = tracker.all_ended() => {}
            _ = shutdown.graceful.cancelled() => {}
            _ = printer.stdout_closed().cancelled() => {}
        }
    }
    shutdown.graceful.cancel();
    worker
        .await
        .map_err(|e| CliError::Runtime(format!("the worker crashed: {e}")))??;
    if let Some(pruner) = pruner {
        pruner.abort();
    }
    printer.finish();
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    if let Some(message) = &source_error {
        eprintln!("wrangle: error: {message}");
    }
    if printer.stdout_closed().is_cancelled() && !interrupted.is_cancelled() {
        // Whoever read our output has all they wanted (`| head`): end quietly, as ripgrep.
        return Ok(0);
    }
    let counts = tracker.counts();
    let ending = if interrupted.is_cancelled() {
        Ending::Interrupted {
            journal: plan.journal.as_deref(),
        }
    } else if tracker.halted() {
        Ending::Halted {
            spec: plan.halt_spec.as_deref().unwrap_or_default(),
        }
    } else {
        Ending::Finished
    };
    print_summary(counts, started.elapsed(), json, ending);
    Ok(if interrupted.is_cancelled() {
        EXIT_INTERRUPTED
    } else if counts.failed > 0 || source_error.is_some() {
        EXIT_TASK_FAILED
    } else {
        0
    })
}

enum FeedError {
    /// The item source broke off (unreadable input, failed dispatch command).
    Source(String),
    Store(wrangle::StoreError),
}

/// Enqueues items as the window allows until the source ends or the run is stopped;
/// returns how many items the source gave.
async fn feed(
    mut items: tokio::sync::mpsc::Receiver<SourceEvent>,
    store: &Arc<dyn Store>,
    tracker: &Tracker,
    printer: &Printer,
    plan: &RunPlan,
    stop: &CancellationToken,
) -> Result<u64, FeedError> {
    let mut seq = 0u64;
    let mut batch: Vec<SourceEvent> = Vec::with_capacity(ENQUEUE_BATCH);
    loop {
        let received = tokio::select! {
            received = items.recv_many(&mut batch, ENQUEUE_BATCH) => received,
            _ = stop.cancelled() => return Ok(seq),
        };
        if received == 0 {
            return Ok(seq);
        }
        let mut tasks = Vec::with_capacity(batch.len());
        let mut broke_off = None;
        for event in batch.drain(..) {
            match event {
                Ok(item) => {
                    seq += 1;
                    tasks.push(new_task(seq, item, plan));
                }
                Err(message) => broke_off = Some(message),
            }
        }
        let permits = tokio::select! {
            permits = tracker.window.acquire_many(tasks.len() as u32) => permits.expect("the window is never closed"),
            _ = stop.cancelled() => return Ok(seq),
        };
        permits.forget();
        let first_seq = seq + 1 - tasks.len() as u64;
        let enqueued = store
            .enqueue_batch(tasks, Utc::now())
            .await
            .map_err(FeedError::Store)?;
        for (offset, task) in enqueued.into_iter().enumerate() {
            if !task.duplicate {
                tracker.track(task.id);
                continue;
            }
            // In the journal already: done (skip it), failed or cancelled (run it again),
            // or unfinished (it runs once claimed, or once its dead runner's lease ends).
            let existing = store.get_task(task.id).await.map_err(FeedError::Store)?;
            match existing.map(|t| t.state) {
                Some(TaskState::Completed) => {
                    if tracker.found_completed(task.id) {
                        printer.skip(first_seq + offset as u64);
                    }
                }
                Some(TaskState::Dead | TaskState::Cancelled) => {
                    store
                        .retry_task(task.id, Utc::now())
                        .await
                        .map_err(FeedError::Store)?;
                    tracker.track(task.id);
                }
                _ => tracker.track(task.id),
            }
        }
        if let Some(message) = broke_off {
            return Err(FeedError::Source(message));
        }
    }
}

fn new_task(seq: u64, item: Value, plan: &RunPlan) -> NewTask {
    let mut task = NewTask::new(RUN_KIND, json!({"seq": seq, "item": item}));
    task.max_attempts = plan.max_attempts;
    if plan.journal.is_some() {
        task.unique_key = Some(format!(
            "{seq}:{:016x}",
            fnv1a(item_of(&task.payload).to_string().as_bytes())
        ));
    }
    task
}

fn item_of(payload: &Value) -> &Value {
    payload.get("item").unwrap_or(payload)
}

/// 64-bit FNV-1a: a stable hash of an item's text for its journal key (not security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Drops finished tasks from the in-memory store so an endless run stays small.
async fn prune_finished(store: Arc<dyn Store>) {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for request in wrangle::store::PruneRequest::every_final_state(Utc::now(), 100_000) {
            if let Err(err) = store.prune_finished(request).await {
                tracing::warn!(error = %err, "pruning finished items failed");
            }
        }
    }
}

/// What `wrangle run` says on Ctrl-C: one line on stderr, above the progress bar.
fn announce_interrupts(bar: Option<indicatif::ProgressBar>) -> super::OnInterrupt {
    Box::new(move |interrupts| {
        let line = match interrupts {
            0 => "wrangle run: terminated: no new items start; running ones finish",
            1 => {
                "wrangle run: interrupted: no new items start; running ones finish (Ctrl-C again to stop them now)"
            }
            _ => "wrangle run: interrupted again: stopping running items now",
        };
        match &bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    })
}

/// How a run ended, for its summary.
enum Ending<'a> {
    Finished,
    /// `--halt`'s condition was met: no new items started.
    Halted {
        spec: &'a str,
    },
    Interrupted {
        journal: Option<&'a std::path::Path>,
    },
}

fn print_summary(counts: RunCounts, elapsed: Duration, json: bool, ending: Ending<'_>) {
    let ran = counts.done + counts.failed;
    let rate = ran as f64 / elapsed.as_secs_f64().max(1e-9);
    let interrupted = matches!(ending, Ending::Interrupted { .. });
    let halted = matches!(ending, Ending::Halted { .. });
    if json {
        eprintln!(
            "{}",
            json!({
                "done": counts.done, "failed": counts.failed, "retried": counts.retried,
                "skipped": counts.skipped, "elapsed_s": elapsed.as_secs_f64(), "per_s": rate.round(),
                "interrupted": interrupted, "halted": halted,
            })
        );
        return;
    }
    let skipped = if counts.skipped > 0 {
        format!(", {} skipped (done in an earlier run)", counts.skipped)
    } else {
        String::new()
    };
    let how = match ending {
        Ending::Interrupted { .. } => "interrupted: ".to_string(),
        Ending::Halted { spec } => format!("halted (--halt {spec}), no new items started: "),
        Ending::Finished => String::new(),
    };
    eprintln!(
        "wrangle run: {how}{} done, {} failed, {} retried{skipped} in {:.2}s ({}/s)",
        counts.done,
        counts.failed,
        counts.retried,
        elapsed.as_secs_f64(),
        crate::progress::whole(rate)
    );
    if let Ending::Interrupted { journal } = ending {
        match journal {
            Some(path) => eprintln!(
                "wrangle run: to resume, run the same command again with --journal {}: done items are skipped, failed ones retried",
                path.display()
            ),
            None => eprintln!(
                "wrangle run: this run kept no journal; give --journal FILE to make a run resumable"
            ),
        }
    }
}

/// Runs an item on the real executor as the user sees it: the task id is the item's
/// sequence number and the payload is the item itself. Around it: `--delay` between
/// starts, `--dry-run` (print the command instead), `--joblog` (a line per attempt).
#[derive(Debug)]
struct RunExecutor {
    inner: Arc<dyn Executor>,
    tracker: Arc<Tracker>,
    runs: Runs,
    /// `--dry-run`: where the command lines go instead of running.
    dry_run: Option<Arc<Printer>>,
    /// `--delay`: the gap, and when the last item started.
    delay: Option<(Duration, tokio::sync::Mutex<Option<Instant>>)>,
    joblog: Option<JobLog>,
}

#[async_trait]
impl Executor for RunExecutor {
    async fn execute(&self, task: &ClaimedTask, cancel: CancellationToken) -> ExecResult {
        let Some(seq) = task.payload.get("seq").and_then(Value::as_u64) else {
            return self.inner.execute(task, cancel).await;
        };
        // Built field by field: cloning the task would copy the payload only to replace it.
        let item = ClaimedTask {
            id: seq as i64,
            queue: task.queue.clone(),
            kind: task.kind.clone(),
            payload: item_of(&task.payload).clone(),
            attempt: task.attempt,
            max_attempts: task.max_attempts,
            timeout: task.timeout,
            job: task.job.clone(),
            lease_until: task.lease_until,
        };
        if let Some(printer) = &self.dry_run {
            let line = format!("{}\n", shell_line(&self.runs.shown(&item)));
            printer.output(&item, OutputStream::Stdout, line.as_bytes());
            let result = Ok(Value::Null);
            printer.attempt_ended(&item, &result);
            return result;
        }
        if let Some((delay, last_start)) = &self.delay {
            // Starts queue up on the lock, each at least `delay` after the one before.
            let mut last_start = last_start.lock().await;
            if let Some(last) = *last_start {
                tokio::select! {
                    _ = tokio::time::sleep_until((last + *delay).into()) => {}
                    _ = cancel.cancelled() => return Err(wrangle::exec::Failure("cancelled".into())),
                }
            }
            *last_start = Some(Instant::now());
        }
        let started = std::time::SystemTime::now();
        let result = self.inner.execute(&item, cancel).await;
        if result.is_ok() || task.attempt >= task.max_attempts {
            self.tracker.last_attempt_ended(result.is_ok());
        }
        if let Some(joblog) = &self.joblog {
            joblog.record(seq, started, &result, &self.runs.shown(&item));
        }
        // Only a failure message shows the item's text: successes skip building it (the
        // outcome is recorded after this returns, so the text is there in time).
        if result.is_err() {
            self.tracker
                .attempt_failed(task.id, seq, placeholder_text(&item.payload));
        }
        result
    }
}

/// `--joblog FILE`: a header, then a line per attempt as GNU parallel writes them (Seq,
/// Host `:` for this machine, Starttime and JobRuntime in seconds, Send and Receive 0
/// (no files are transferred), Exitval, Signal, Command), flushed as each attempt ends.
#[derive(Debug)]
struct JobLog {
    file: std::sync::Mutex<std::fs::File>,
}

impl JobLog {
    fn open(path: &std::path::Path) -> CliResult<Self> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let cannot = |err: std::io::Error| {
            CliError::input(format!("cannot write --joblog {}: {err}", path.display()))
        };
        // Owner-only, as every file wrangle writes: command lines may hold private items.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(cannot)?;
        file.write_all(
            b"Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n",
        )
        .map_err(cannot)?;
        Ok(JobLog {
            file: std::sync::Mutex::new(file),
        })
    }

    fn record(
        &self,
        seq: u64,
        started: std::time::SystemTime,
        result: &ExecResult,
        command: &[std::ffi::OsString],
    ) {
        use std::io::Write;
        let start = started
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let runtime = started.elapsed().unwrap_or_default().as_secs_f64();
        let (exitval, signal) = match result {
            Ok(_) => (0, 0),
            Err(failure) => exit_of(failure),
        };
        // One line per attempt: a newline inside a quoted argument is written as `\n`.
        let line = format!(
            "{seq}\t:\t{start:.3}\t{runtime:10.3}\t0\t0\t{exitval}\t{signal}\t{}\n",
            shell_line(command).replace('\n', "\\n")
        );
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(err) = file.write_all(line.as_bytes()) {
            tracing::warn!(error = %err, "writing the joblog failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
