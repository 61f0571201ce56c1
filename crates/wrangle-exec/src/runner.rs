//! The `runner` executor: long-lived processes that load once (a Rails app, a Python
//! model) and then run many tasks, speaking JSON lines on stdin/stdout.
//!
//! Protocol (documented for runner authors in `docs/runner-protocol.md`):
//! - wrangle -> runner, one line per task: `{"id":..,"kind":..,"payload":..,"attempt":..}`;
//! - runner -> wrangle: `{"id":..,"ok":true,"result":..}` or `{"id":..,"ok":false,"error":".."}`,
//!   optionally `{"id":..,"progress":0.4}` and `{"id":..,"output":"a line"}` before it;
//!   stdout lines that are not protocol messages are logged, stderr is the runner's own
//!   log (passed through).
//!
//! With [`RunnerSpec::output_dir`] (`wrangle worker --output DIR`), a task's output lines
//! and result go to its `.stdout` file, its error to `.stderr` and its progress reports
//! to `.progress`, as they arrive, in the same places as the exec executor's files (a
//! job's block: `DIR/JOB/START-END.*`, one `blocks.log` line per attempt).
//!
//! There is one process per runner slot. Each process may be sent up to
//! [`RunnerSpec::in_flight`] tasks before answering (pipelining), which is what makes
//! tiny tasks cheap: requests are written in bursts, replies are read in bursts, and a
//! runner that answers in order never waits for wrangle. A process that exits fails the
//! tasks it held (they are retried by the usual policy) and is started again on the next
//! task, with a growing pause if it keeps dying at once. A task that times out or is
//! cancelled stops its process's whole group (SIGTERM, then SIGKILL), because a runner
//! stuck in a task cannot be trusted with the next one.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use wrangle_core::TaskId;
use wrangle_core::store::ClaimedTask;

use crate::command::{describe_status, format_duration, signal_group};
use crate::output_dir::{self, OutputFile};
use crate::{ExecResult, Executor, Failure, OutputSink, OutputStream};

/// How to start and feed runner processes.
#[derive(Debug, Clone)]
pub struct RunnerSpec {
    /// Program and arguments of one runner process (no placeholders: it serves many tasks).
    pub argv: Vec<String>,
    /// Runner processes (one per runner slot).
    pub processes: usize,
    /// Tasks sent to one process before it has answered the first (at least 1).
    pub in_flight: usize,
    /// Time limit for tasks that carry none of their own.
    pub default_timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL when stopping a runner.
    pub kill_grace: Duration,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Where each task's output, error and progress are written (see the module docs).
    pub output_dir: Option<std::path::PathBuf>,
    /// The directory runner processes start in (default: the worker's).
    pub cwd: Option<std::path::PathBuf>,
    /// Receives each result as output (as `wrangle run` prints it) and progress reports.
    pub output: Option<Arc<dyn OutputSink>>,
    /// A process whose resident memory grows past this many bytes is replaced once its
    /// tasks are done (`--max-runner-memory`).
    pub max_memory: Option<u64>,
    /// The longest line a runner may write on stdout ([`DEFAULT_MAX_LINE_BYTES`]). A
    /// longer one is not read into memory: the process is stopped and its tasks fail.
    pub max_line_bytes: usize,
}

/// The default [`RunnerSpec::max_line_bytes`]: 16 MiB, room for any sensible result.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 << 20;

/// How much of a line that is not a protocol message goes into the log.
const LOGGED_LINE_CHARS: usize = 200;

impl RunnerSpec {
    /// A spec for `processes` runners of `argv`, one task in flight each, 5 s kill grace.
    pub fn new(argv: Vec<String>, processes: usize) -> Self {
        RunnerSpec {
            argv,
            processes: processes.max(1),
            in_flight: 1,
            default_timeout: None,
            kill_grace: Duration::from_secs(5),
            env: Vec::new(),
            output_dir: None,
            cwd: None,
            output: None,
            max_memory: None,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }

    /// How many tasks the executor can hold at once: the worker's runner slots.
    pub fn capacity(&self) -> usize {
        self.processes * self.in_flight.max(1)
    }
}

/// Runs tasks on a set of runner processes; see the module documentation.
#[derive(Debug)]
pub struct RunnerExecutor {
    spec: Arc<RunnerSpec>,
    /// One slot per runner; [`Executor::resize`] adds slots or retires the last ones.
    slots: std::sync::RwLock<Vec<Arc<RunnerSlot>>>,
    /// Stops every runner process when the executor is dropped.
    closing: CancellationToken,
}

impl RunnerExecutor {
    /// An executor for `spec`; processes start on first use. `spec.argv` must not be empty.
    pub fn new(spec: RunnerSpec) -> Self {
        assert!(!spec.argv.is_empty(), "a runner needs a program");
        let closing = CancellationToken::new();
        let slots = (1..=spec.processes.max(1))
            .map(|number| RunnerSlot::new(number, &spec, &closing))
            .collect();
        RunnerExecutor {
            spec: Arc::new(spec),
            slots: std::sync::RwLock::new(slots),
            closing,
        }
    }

    /// The slot with the fewest tasks in flight, with this task counted in its load. The
    /// count is taken under the slots lock: `resize` removes slots under that lock and then
    /// waits for their load to drain, so it cannot retire a slot between the pick and the
    /// count and stop its process under the task.
    fn take_least_loaded(&self) -> Arc<RunnerSlot> {
        let slots = self.slots.read().expect("slots lock");
        let slot = slots
            .iter()
            .min_by_key(|slot| slot.load.load(Ordering::Relaxed))
            .expect("at least one slot");
        slot.load.fetch_add(1, Ordering::Relaxed);
        slot.clone()
    }

    async fn run_on_runner(
        &self,
        task: &ClaimedTask,
        cancel: CancellationToken,
        taker: &mut NoteTaker,
    ) -> ExecResult {
        let slot = self.take_least_loaded();
        let _load = LoadGuard(&slot.load);
        let _permit = tokio::select! {
            permit = slot.permits.acquire() => permit.expect("the semaphore is never closed"),
            _ = cancel.cancelled() => return Err(Failure("cancelled".into())),
        };
        let process = slot.process(&self.spec).await?;
        let (reply_tx, reply_rx) = oneshot::channel();
        // No channel when nothing would take the notes down (a worker without --output):
        // a task on the hot path allocates nothing for them.
        let (notes_tx, mut notes) = if taker.wants_notes() {
            let (sender, receiver) = mpsc::channel(NOTES_BUFFERED);
            (Some(sender), Some(receiver))
        } else {
            (None, None)
        };
        process.pending.lock().expect("pending lock").insert(
            task.id,
            PendingTask {
                reply: reply_tx,
                notes: notes_tx,
            },
        );
        let mut request = json!({
            "id": task.id,
            "kind": task.kind,
            "payload": task.payload,
            "attempt": task.attempt,
        });
        // A job's block also carries its job and bounds at the top level, as DScript's
        // `run(start_id, end_id, output)` had them.
        if let Some(job) = &task.job {
            request["job"] = json!(job);
            if let Some((start, end)) = wrangle_core::job::block_bounds(&task.payload) {
                request["start"] = json!(start);
                request["end"] = json!(end);
            }
        }
        if process.requests.send(format!("{request}\n")).is_err() {
            process
                .pending
                .lock()
                .expect("pending lock")
                .remove(&task.id);
            return Err(Failure(format!("runner {} is not running", slot.number)));
        }
        let timeout = task.timeout.or(self.spec.default_timeout);
        let deadline = async {
            match timeout {
                Some(limit) => tokio::time::sleep(limit).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(deadline);
        let mut reply_rx = reply_rx;
        let ended_unanswered = || {
            Err(Failure(format!(
                "runner {} exited before answering",
                slot.number
            )))
        };
        let stopped = loop {
            tokio::select! {
                biased;
                reply = &mut reply_rx => {
                    // The runner's notes came before its answer: store them first.
                    while let Some(Ok(note)) = notes.as_mut().map(mpsc::Receiver::try_recv) {
                        taker.take(task, note).await;
                    }
                    slot.recycle_if_too_big(&process, &self.spec).await;
                    return reply.unwrap_or_else(|_| ended_unanswered());
                }
                Some(note) = next_note(&mut notes) => taker.take(task, note).await,
                // The process ended after the supervisor failed the tasks it knew of, but
                // before this one was registered: nobody else will answer it.
                _ = process.exited.cancelled() => {
                    let unanswered = process.pending.lock().expect("pending lock").remove(&task.id).is_some();
                    return if unanswered { ended_unanswered() } else { reply_rx.await.unwrap_or_else(|_| ended_unanswered()) };
                }
                _ = &mut deadline => break format!("timed out after {}", format_duration(timeout.unwrap_or_default())),
                _ = cancel.cancelled() => break "cancelled".to_string(),
            }
        };
        process
            .pending
            .lock()
            .expect("pending lock")
            .remove(&task.id);
        tracing::warn!(runner = slot.number, task = task.id, reason = %stopped, "stopping the runner");
        process.stop(self.spec.kill_grace).await;
        Err(Failure(stopped))
    }
}

impl Drop for RunnerExecutor {
    fn drop(&mut self) {
        self.closing.cancel();
    }
}

#[async_trait]
impl Executor for RunnerExecutor {
    fn resize(&self, runners: usize) {
        let runners = runners.max(1);
        let mut slots = self.slots.write().expect("slots lock");
        while slots.len() < runners {
            let number = slots.len() + 1;
            slots.push(RunnerSlot::new(number, &self.spec, &self.closing));
        }
        for retired in slots.split_off(runners) {
            // No new task reaches it; its process ends once its tasks are answered.
            tokio::spawn(async move {
                while retired.load.load(Ordering::Relaxed) > 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                tracing::info!(runner = retired.number, "runner retired");
                retired.closing.cancel();
            });
        }
    }

    async fn replace_runner(&self, number: usize) -> bool {
        let slot = self
            .slots
            .read()
            .expect("slots lock")
            .iter()
            .find(|slot| slot.number == number)
            .cloned();
        match slot {
            Some(slot) => slot.replace(&self.spec).await,
            None => false,
        }
    }

    fn processes(&self) -> Vec<wrangle_core::worker::ProcessInfo> {
        let slots = self.slots.read().expect("slots lock").clone();
        slots
            .iter()
            .filter_map(|slot| {
                let process = slot.process.try_lock().ok()?;
                let current = process.current.as_ref()?;
                if current.exited.is_cancelled() {
                    return None;
                }
                let pid = current.pid?;
                Some(wrangle_core::worker::ProcessInfo {
                    kind: String::new(),
                    runner: slot.number as u32,
                    pid,
                    started_at: current.started_at,
                    tasks: slot.load.load(Ordering::Relaxed) as u32,
                    rss_bytes: crate::rss_bytes(pid),
                    restarts: process.restarts,
                })
            })
            .collect()
    }

    async fn execute(&self, task: &ClaimedTask, cancel: CancellationToken) -> ExecResult {
        let mut taker = NoteTaker::new(&self.spec, task).await;
        let result = self.run_on_runner(task, cancel, &mut taker).await;
        taker.finish(task, &result).await;
        if let Some(base) = &self.spec.output_dir {
            output_dir::log_block_outcome(base, task, &result).await;
        }
        result
    }
}

/// Decrements a slot's load when a task leaves it, however it leaves.
struct LoadGuard<'a>(&'a AtomicUsize);

impl Drop for LoadGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One runner slot: its process (started lazily, restarted after it dies) and how many
/// tasks it may hold.
#[derive(Debug)]
struct RunnerSlot {
    /// 1-based, passed to the process as `WRANGLE_RUNNER`.
    number: usize,
    permits: Semaphore,
    load: AtomicUsize,
    process: tokio::sync::Mutex<SlotProcess>,
    /// Stops this slot's process: when the executor is dropped or the slot retired.
    closing: CancellationToken,
}

/// The slot's current process and its restart history.
#[derive(Debug, Default)]
struct SlotProcess {
    current: Option<Arc<RunningRunner>>,
    /// Processes started after the first.
    restarts: u32,
    /// Pause before the next start, grown while processes die right after starting.
    restart_pause: Duration,
    last_start: Option<Instant>,
}

/// Processes living shorter than this count as crashing at start (their restarts back off).
const HEALTHY_LIFETIME: Duration = Duration::from_secs(1);
const MAX_RESTART_PAUSE: Duration = Duration::from_secs(5);

/// What a runner said about a task before answering it.
#[derive(Debug, Clone, PartialEq)]
enum Note {
    /// A line of the task's output (DScript's `output.puts`).
    Output(String),
    /// How far the task has got (0.0 to 1.0).
    Progress(f64),
}

/// A task sent to a runner and not answered yet.
#[derive(Debug)]
struct PendingTask {
    reply: oneshot::Sender<ExecResult>,
    /// Its notes, to the attempt that writes them down (none when nothing would);
    /// bounded, so a runner that writes notes faster than they are stored waits.
    notes: Option<mpsc::Sender<Note>>,
}

/// Notes waiting per task before the runner is made to wait.
const NOTES_BUFFERED: usize = 256;

type Pending = Arc<Mutex<HashMap<TaskId, PendingTask>>>;

/// A started runner process.
#[derive(Debug)]
struct RunningRunner {
    pid: Option<u32>,
    started_at: chrono::DateTime<chrono::Utc>,
    /// Cancelled to stop this process alone (recycled for its memory).
    retire: CancellationToken,
    /// Request lines for the writer.
    requests: mpsc::UnboundedSender<String>,
    /// Tasks sent and not answered, by id.
    pending: Pending,
    /// Cancelled when the process has exited.
    exited: CancellationToken,
}

impl RunningRunner {
    /// Takes no new task (the slot starts a new process for the next one) and stops once
    /// the tasks it holds are answered.
    fn retire_after_current(self: &Arc<Self>, grace: Duration) {
        self.retire.cancel();
        let process = self.clone();
        tokio::spawn(async move {
            while !process.pending.lock().expect("pending lock").is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            process.stop(grace).await;
        });
    }

    /// Stops the process group: SIGTERM, then SIGKILL after `grace`.
    async fn stop(&self, grace: Duration) {
        signal_group(self.pid, Signal::SIGTERM);
        if tokio::time::timeout(grace, self.exited.cancelled())
            .await
            .is_err()
        {
            signal_group(self.pid, Signal::SIGKILL);
            self.exited.cancelled().await;
        }
    }
}

impl RunnerSlot {
    fn new(number: usize, spec: &RunnerSpec, closing: &CancellationToken) -> Arc<Self> {
        Arc::new(RunnerSlot {
            number,
            permits: Semaphore::new(spec.in_flight.max(1)),
            load: AtomicUsize::new(0),
            process: tokio::sync::Mutex::new(SlotProcess::default()),
            closing: closing.child_token(),
        })
    }

    /// The slot's live process, started (again) if needed.
    async fn process(&self, spec: &Arc<RunnerSpec>) -> Result<Arc<RunningRunner>, Failure> {
        let mut slot = self.process.lock().await;
        if let Some(current) = &slot.current
            && !current.exited.is_cancelled()
            && !current.retire.is_cancelled()
        {
            return Ok(current.clone());
        }
        let recycled = slot
            .current
            .as_ref()
            .is_some_and(|current| current.retire.is_cancelled());
        if let Some(started) = slot.last_start {
            slot.restarts += 1;
            // Replaced on purpose (recycled): the new one starts at once. Exited: back off.
            if !recycled {
                slot.restart_pause = if started.elapsed() < HEALTHY_LIFETIME {
                    (slot.restart_pause * 2).clamp(Duration::from_millis(100), MAX_RESTART_PAUSE)
                } else {
                    Duration::ZERO
                };
                tracing::warn!(runner = self.number, pause = ?slot.restart_pause, "runner exited; starting it again");
                tokio::time::sleep(slot.restart_pause).await;
            }
        }
        slot.last_start = Some(Instant::now());
        let runner = Arc::new(self.start(spec)?);
        slot.current = Some(runner.clone());
        Ok(runner)
    }

    /// Replaces the process once its tasks are answered if it has grown past the spec's
    /// memory limit (`--max-runner-memory`); the next task starts a new one.
    async fn recycle_if_too_big(&self, process: &Arc<RunningRunner>, spec: &RunnerSpec) {
        let (Some(limit), Some(pid)) = (spec.max_memory, process.pid) else {
            return;
        };
        let rss = crate::rss_bytes(pid);
        if rss <= limit || process.retire.is_cancelled() {
            return;
        }
        tracing::warn!(
            runner = self.number,
            pid,
            rss_mib = rss >> 20,
            limit_mib = limit >> 20,
            "runner grew past --max-runner-memory; replacing it after its current tasks"
        );
        process.retire_after_current(spec.kill_grace);
    }

    /// Replaces the slot's process after its current tasks (the next task starts a new
    /// one at once); false when it has none running.
    async fn replace(&self, spec: &RunnerSpec) -> bool {
        let slot = self.process.lock().await;
        match &slot.current {
            Some(current) if !current.exited.is_cancelled() && !current.retire.is_cancelled() => {
                tracing::info!(
                    runner = self.number,
                    pid = current.pid,
                    "replacing the runner after its current tasks"
                );
                current.retire_after_current(spec.kill_grace);
                true
            }
            _ => false,
        }
    }

    fn start(&self, spec: &Arc<RunnerSpec>) -> Result<RunningRunner, Failure> {
        let closing = &self.closing;
        let program = &spec.argv[0];
        let mut command = Command::new(program);
        command
            .args(&spec.argv[1..])
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .env("WRANGLE_RUNNER", self.number.to_string());
        for (name, value) in &spec.env {
            command.env(name, value);
        }
        if let Some(dir) = &spec.cwd {
            command.current_dir(dir);
        }
        let mut child = command
            .spawn()
            .map_err(|err| Failure(format!("cannot start runner '{program}': {err}")))?;
        let pid = child.id();
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (requests, request_rx) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        let exited = CancellationToken::new();
        tokio::spawn(write_requests(stdin, request_rx));
        let number = self.number;
        let mut reader = tokio::spawn(read_replies(
            stdout,
            pending.clone(),
            spec.output.clone(),
            number,
            spec.max_line_bytes,
        ));
        {
            let pending = pending.clone();
            let exited = exited.clone();
            let closing = closing.clone();
            let grace = spec.kill_grace;
            tokio::spawn(async move {
                // Why the runner could no longer answer although it was still running.
                let mut broke = None;
                let status = tokio::select! {
                    status = child.wait() => status,
                    ended = &mut reader => {
                        // Its stdout ended or broke the protocol: whatever it still
                        // runs can never be answered. An exit on its way is awaited.
                        let reason = ended.ok().flatten();
                        match tokio::time::timeout(Duration::from_millis(500), child.wait()).await {
                            Ok(status) if reason.is_none() => status,
                            _ => {
                                broke = Some(reason.unwrap_or_else(|| "closed its stdout".into()));
                                terminate(&mut child, pid, grace).await
                            }
                        }
                    }
                    _ = closing.cancelled() => {
                        // The executor is gone: ask the runner to end (stdin closes with
                        // the writer), then insist.
                        terminate(&mut child, pid, grace).await
                    }
                };
                // Replies already written are still delivered before the rest fail; a
                // process it forked may hold stdout open, so that wait is bounded.
                if !reader.is_finished() {
                    signal_group(pid, Signal::SIGKILL);
                    if tokio::time::timeout(Duration::from_secs(1), &mut reader)
                        .await
                        .is_err()
                    {
                        reader.abort();
                    }
                }
                let how = match (broke, status) {
                    (Some(reason), _) => reason,
                    (None, Ok(status)) => format!("exited ({})", describe_status(status)),
                    (None, Err(err)) => format!("exited ({err})"),
                };
                let orphans: Vec<_> = pending.lock().expect("pending lock").drain().collect();
                if !orphans.is_empty() {
                    tracing::warn!(runner = number, tasks = orphans.len(), %how, "runner exited while running tasks");
                }
                for (_, task) in orphans {
                    let _ = task.reply.send(Err(Failure(format!(
                        "runner {number} {how} before answering"
                    ))));
                }
                exited.cancel();
            });
        }
        Ok(RunningRunner {
            pid,
            started_at: chrono::Utc::now(),
            retire: CancellationToken::new(),
            requests,
            pending,
            exited,
        })
    }
}

/// Stops a runner's process group: SIGTERM, then SIGKILL after `grace`; its exit status.
async fn terminate(
    child: &mut tokio::process::Child,
    pid: Option<u32>,
    grace: Duration,
) -> std::io::Result<std::process::ExitStatus> {
    signal_group(pid, Signal::SIGTERM);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            signal_group(pid, Signal::SIGKILL);
            child.wait().await
        }
    }
}

/// Writes request lines, many per write when they queue up.
async fn write_requests(mut stdin: ChildStdin, mut requests: mpsc::UnboundedReceiver<String>) {
    let mut lines = Vec::new();
    let mut buffer = String::new();
    while requests.recv_many(&mut lines, 256).await > 0 {
        buffer.clear();
        for line in lines.drain(..) {
            buffer.push_str(&line);
        }
        if stdin.write_all(buffer.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
            // The runner closed stdin or died: the supervisor fails what it held.
            return;
        }
    }
}

/// One line a runner wrote on stdout.
#[derive(Debug, PartialEq)]
enum RunnerMessage {
    /// A task's final answer.
    Reply(TaskId, ExecResult),
    /// How far a task has got (0.0 to 1.0).
    Progress(TaskId, f64),
    /// A line of a task's output.
    Output(TaskId, String),
    /// Anything else: logged.
    Other,
}

fn parse_message(line: &str) -> RunnerMessage {
    let Ok(Value::Object(message)) = serde_json::from_str::<Value>(line) else {
        return RunnerMessage::Other;
    };
    let Some(id) = message.get("id").and_then(Value::as_i64) else {
        return RunnerMessage::Other;
    };
    if let Some(ok) = message.get("ok").and_then(Value::as_bool) {
        let result = if ok {
            Ok(message.get("result").cloned().unwrap_or(Value::Null))
        } else {
            let error = match message.get("error") {
                Some(Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
                None => "the runner reported a failure without an error message".into(),
            };
            Err(Failure(error))
        };
        return RunnerMessage::Reply(id, result);
    }
    if let Some(progress) = message.get("progress").and_then(Value::as_f64) {
        return RunnerMessage::Progress(id, progress);
    }
    match message.get("output") {
        Some(Value::String(text)) => RunnerMessage::Output(id, text.clone()),
        _ => RunnerMessage::Other,
    }
}

/// Reads replies and hands each to the task waiting for it, until stdout ends. Returns
/// why it stopped early when the runner broke the protocol (a line over `max_line`
/// bytes), `None` at the end of stdout.
async fn read_replies(
    stdout: ChildStdout,
    pending: Pending,
    output: Option<Arc<dyn OutputSink>>,
    number: usize,
    max_line: usize,
) -> Option<String> {
    let mut stdout = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = Vec::new();
    loop {
        match read_line(&mut stdout, &mut line, max_line).await {
            Line::Read => {}
            Line::End => return None,
            Line::TooLong => {
                tracing::error!(
                    runner = number,
                    limit = max_line,
                    "runner wrote a line longer than the limit; stopping it"
                );
                return Some(format!(
                    "wrote a line over {} MiB (the runner line limit)",
                    max_line >> 20
                ));
            }
        }
        // Runners may write anything; bytes that are not UTF-8 just make a line that is
        // not a protocol message.
        let text = String::from_utf8_lossy(&line);
        match parse_message(&text) {
            RunnerMessage::Reply(id, result) => {
                let waiting = pending.lock().expect("pending lock").remove(&id);
                match waiting {
                    Some(task) => {
                        let _ = task.reply.send(result);
                    }
                    None => {
                        tracing::warn!(
                            runner = number,
                            task = id,
                            "reply for a task the runner was not running"
                        )
                    }
                }
            }
            RunnerMessage::Progress(id, progress) => {
                tracing::debug!(runner = number, task = id, progress, "progress");
                if let Some(sink) = &output {
                    sink.progress(id, progress);
                }
                pass_note(&pending, id, Note::Progress(progress)).await;
            }
            RunnerMessage::Output(id, text) => {
                if !pass_note(&pending, id, Note::Output(text)).await {
                    tracing::warn!(
                        runner = number,
                        task = id,
                        "output for a task the runner was not running"
                    );
                }
            }
            RunnerMessage::Other => {
                let shown: String = text.chars().take(LOGGED_LINE_CHARS).collect();
                tracing::info!(runner = number, line = %shown, "runner wrote a line that is not a protocol message")
            }
        }
    }
}

/// Hands a note to the attempt of task `id`; false when no attempt is waiting for it.
async fn pass_note(pending: &Pending, id: TaskId, note: Note) -> bool {
    let notes = pending
        .lock()
        .expect("pending lock")
        .get(&id)
        .map(|task| task.notes.clone());
    match notes {
        // An attempt that has stopped listening (timed out) just drops it.
        Some(Some(notes)) => {
            let _ = notes.send(note).await;
            true
        }
        Some(None) => true,
        None => false,
    }
}

/// The next note of an attempt that takes notes; never, for one that does not.
async fn next_note(notes: &mut Option<mpsc::Receiver<Note>>) -> Option<Note> {
    match notes {
        Some(notes) => notes.recv().await,
        None => std::future::pending().await,
    }
}

/// Writes down one attempt's notes and outcome as they arrive: into its `--output` files
/// and to the output sink (`wrangle run`'s printer, a worker's log shipper).
#[derive(Debug)]
struct NoteTaker {
    /// `.stdout`, `.stderr` and `.progress`, with `--output`.
    files: Option<[OutputFile; 3]>,
    sink: Option<Arc<dyn OutputSink>>,
}

impl NoteTaker {
    async fn new(spec: &RunnerSpec, task: &ClaimedTask) -> Self {
        let files = match &spec.output_dir {
            Some(base) => {
                output_dir::attempt_files(base, task, ["stdout", "stderr", "progress"]).await
            }
            None => None,
        };
        NoteTaker {
            files,
            sink: spec.output.clone(),
        }
    }

    /// Whether notes go anywhere: to `--output` files or to a sink.
    fn wants_notes(&self) -> bool {
        self.files.is_some() || self.sink.is_some()
    }

    async fn take(&mut self, task: &ClaimedTask, note: Note) {
        match note {
            Note::Output(text) => self.output_line(task, &text, false).await,
            Note::Progress(fraction) => {
                if let Some([_, _, progress]) = &mut self.files {
                    let line = format!(
                        "{} {fraction}\n",
                        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ")
                    );
                    progress.write(line.as_bytes()).await;
                }
            }
        }
    }

    /// A line of output, or (`is_result`) the result's text, which a sink may not want.
    async fn output_line(&mut self, task: &ClaimedTask, text: &str, is_result: bool) {
        let line = format!("{text}\n");
        if let Some([stdout, _, _]) = &mut self.files {
            stdout.write(line.as_bytes()).await;
        }
        if let Some(sink) = &self.sink
            && (!is_result || sink.wants_result_text())
        {
            sink.output(task, OutputStream::Stdout, line.as_bytes());
        }
    }

    /// The attempt ended: its result joins the output, its error goes to `.stderr`, the
    /// files are flushed, and the sink hears the outcome.
    async fn finish(mut self, task: &ClaimedTask, result: &ExecResult) {
        match result {
            Ok(value) => {
                let text = crate::command::item_text(value);
                if !text.is_empty() {
                    self.output_line(task, &text, true).await;
                }
            }
            Err(Failure(error)) => {
                if let Some([_, stderr, _]) = &mut self.files {
                    stderr.write(format!("{error}\n").as_bytes()).await;
                }
            }
        }
        if let Some(files) = &mut self.files {
            for file in files {
                file.flush().await;
            }
        }
        if let Some(sink) = &self.sink {
            sink.attempt_ended(task, result);
        }
    }
}

/// What [`read_line`] found.
#[derive(Debug, PartialEq)]
enum Line {
    /// A line (without its ending) is in the buffer.
    Read,
    /// The stream ended (or failed) with no more lines.
    End,
    /// The line is longer than the limit; it was not kept.
    TooLong,
}

/// Reads the next line into `line` (without `\n`), never holding more than `limit` bytes
/// of it: a runner writing an endless line cannot grow the worker's memory.
async fn read_line(
    input: &mut (impl tokio::io::AsyncBufRead + Unpin),
    line: &mut Vec<u8>,
    limit: usize,
) -> Line {
    line.clear();
    loop {
        let available = match input.fill_buf().await {
            Ok(available) => available,
            Err(_) => return Line::End,
        };
        if available.is_empty() {
            return if line.is_empty() {
                Line::End
            } else {
                Line::Read
            };
        }
        let (take, complete) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (at, true),
            None => (available.len(), false),
        };
        if line.len() + take > limit {
            return Line::TooLong;
        }
        line.extend_from_slice(&available[..take]);
        input.consume(take + usize::from(complete));
        if complete {
            return Line::Read;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_messages_parse() {
        assert_eq!(
            parse_message(r#"{"id":3,"ok":true,"result":{"a":1}}"#),
            RunnerMessage::Reply(3, Ok(json!({"a": 1})))
        );
        assert_eq!(
            parse_message(r#"{"id":3,"ok":true}"#),
            RunnerMessage::Reply(3, Ok(Value::Null))
        );
        assert_eq!(
            parse_message(r#"{"id":4,"ok":false,"error":"boom"}"#),
            RunnerMessage::Reply(4, Err(Failure("boom".into())))
        );
        assert_eq!(
            parse_message(r#"{"id":5,"progress":0.5}"#),
            RunnerMessage::Progress(5, 0.5)
        );
        assert_eq!(
            parse_message(r#"{"id":6,"output":"id 7 email a@b"}"#),
            RunnerMessage::Output(6, "id 7 email a@b".into())
        );
        for other in [
            r#"{"id":6,"output":7}"#,
            "hello",
            "{}",
            r#"{"id":"x","ok":true}"#,
            r#"{"id":1}"#,
            "[1]",
        ] {
            assert_eq!(parse_message(other), RunnerMessage::Other, "{other}");
        }
    }

    #[test]
    fn random_runner_lines_never_panic() {
        let examples = [
            r#"{"id":3,"ok":true,"result":{"a":1}}"#,
            r#"{"id":4,"ok":false,"error":"boom"}"#,
            r#"{"id":5,"progress":0.5}"#,
            r#"{"id":6,"output":"a line"}"#,
            r#"{"id":-1,"ok":"yes","error":{"x":[1]}}"#,
        ];
        wrangle_testkit::fuzz::check(
            "runner line",
            &examples,
            |line| match parse_message(line) {
                RunnerMessage::Reply(_, Err(Failure(error))) => Err(error),
                _ => Ok(()),
            },
            // A runner's own error text is passed on as it is.
            |_| String::new(),
        );
    }

    #[tokio::test]
    async fn lines_are_read_within_the_limit() {
        let input: &[u8] = b"short\n\xff\xfe\nexactly10!\nthis one is too long\nlast";
        let mut input = BufReader::with_capacity(4, input);
        let mut line = Vec::new();
        let mut read = Vec::new();
        loop {
            match read_line(&mut input, &mut line, 10).await {
                Line::Read => read.push(line.clone()),
                other => {
                    read.push(format!("{other:?}").into_bytes());
                    break;
                }
            }
        }
        let expected: Vec<&[u8]> = vec![b"short", b"\xff\xfe", b"exactly10!", b"TooLong"];
        assert_eq!(read, expected);
        let mut tail = BufReader::new(&b"last"[..]);
        assert_eq!(read_line(&mut tail, &mut line, 10).await, Line::Read);
        assert_eq!(line, b"last");
        assert_eq!(read_line(&mut tail, &mut line, 10).await, Line::End);
    }
}
