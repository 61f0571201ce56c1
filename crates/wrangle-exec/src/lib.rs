//! How one wrangle task runs, apart from the worker loop that claims and completes it.
//!
//! - [`Executor`]: runs one claimed task to an [`ExecResult`]. Implementations:
//!   [`command::CommandExecutor`] (the `exec` executor: one process per task, argv only)
//!   [`runner::RunnerExecutor`] (long-lived processes speaking JSON lines, many tasks
//!   each) and [`handler::FnHandler`] (a Rust `async fn` registered by kind).
//! - [`Registry`]: which executor runs which kind, with an optional fallback for every
//!   other kind (`wrangle worker --exec CMD`).
//!
//! Executors honour the task's timeout and a cancellation token themselves, because only
//! they know how to stop their work properly (a whole process group, for commands).

pub mod command;
pub mod handler;
mod output_dir;
pub mod runner;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use wrangle_core::TaskId;
use wrangle_core::store::ClaimedTask;
pub use wrangle_core::worker::ProcessInfo;

pub use command::{CommandExecutor, CommandSpec};
pub use handler::{FnHandler, TaskContext};
pub use runner::{RunnerExecutor, RunnerSpec};

/// Why an attempt failed: one message, with the stderr tail for commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure(message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        Failure(message.to_string())
    }
}

/// The result of one attempt: the task's result, or why it failed.
pub type ExecResult = Result<Value, Failure>;

/// Runs claimed tasks.
#[async_trait]
pub trait Executor: Send + Sync + fmt::Debug + 'static {
    /// Runs `task` once. Stops early (and fails) when `cancel` fires or the task's
    /// timeout passes.
    async fn execute(&self, task: &ClaimedTask, cancel: CancellationToken) -> ExecResult;

    /// The worker now has `runners` runners (its pool was scaled): an executor keeping a
    /// process per runner grows or shrinks its set, letting removed processes finish their
    /// tasks first. The default does nothing.
    fn resize(&self, _runners: usize) {}

    /// Its long-lived processes, for `status WORKER` (`kind` left empty: the registry
    /// fills it in). The default has none.
    fn processes(&self) -> Vec<ProcessInfo> {
        Vec::new()
    }

    /// Replaces runner `number`'s process once its current tasks are done; false when
    /// there is no such process. The default has no processes.
    async fn replace_runner(&self, _number: usize) -> bool {
        false
    }
}

/// Resident memory of process `pid` in bytes, from `/proc/PID/status` (0 where unknown).
pub fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(0)
}

/// Which of a command's output streams a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Receives tasks' output while they run, for a caller that shows it (`wrangle run`
/// prints it grouped, line by line, tagged or in input order).
///
/// Chunks of one stream arrive in order; chunks of different tasks and of a task's two
/// streams interleave. `attempt_ended` comes after the attempt's last chunk.
pub trait OutputSink: Send + Sync + fmt::Debug {
    /// A chunk of `task`'s output, as read.
    fn output(&self, task: &ClaimedTask, stream: OutputStream, bytes: &[u8]);
    /// The attempt ended with `result`.
    fn attempt_ended(&self, task: &ClaimedTask, result: &ExecResult);
    /// A runner reported how far task `id` has got (0.0 to 1.0).
    fn progress(&self, _id: TaskId, _fraction: f64) {}
    /// Whether a runner task's result text comes as its last output line, as `wrangle
    /// run` prints it. The default says yes.
    fn wants_result_text(&self) -> bool {
        true
    }
}

/// Which executor runs each kind.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    by_kind: HashMap<String, Arc<dyn Executor>>,
    fallback: Option<Arc<dyn Executor>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Runs tasks of `kind` with `executor`.
    pub fn insert(&mut self, kind: impl Into<String>, executor: Arc<dyn Executor>) -> &mut Self {
        self.by_kind.insert(kind.into(), executor);
        self
    }

    /// Runs tasks of `kind` with a Rust async function; see [`FnHandler`].
    pub fn handle<F, Fut, E>(&mut self, kind: impl Into<String>, function: F) -> &mut Self
    where
        F: Fn(TaskContext, Value) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Value, E>> + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        self.insert(kind, Arc::new(FnHandler::new(function)))
    }

    /// Runs every kind without its own executor with `executor`.
    pub fn fallback(&mut self, executor: Arc<dyn Executor>) -> &mut Self {
        self.fallback = Some(executor);
        self
    }

    /// The executor for `kind`, if any.
    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Executor>> {
        self.by_kind.get(kind).or(self.fallback.as_ref())
    }

    /// The kinds with their own executor, sorted.
    pub fn kinds(&self) -> Vec<&str> {
        let mut kinds: Vec<&str> = self.by_kind.keys().map(String::as_str).collect();
        kinds.sort_unstable();
        kinds
    }

    /// Every distinct executor (by kind, then the fallback), with the kind it serves.
    fn executors(&self) -> Vec<(&str, &Arc<dyn Executor>)> {
        let mut all: Vec<(&str, &Arc<dyn Executor>)> = Vec::new();
        let mut kinds: Vec<(&String, &Arc<dyn Executor>)> = self.by_kind.iter().collect();
        kinds.sort_unstable_by_key(|(kind, _)| kind.as_str());
        let named = kinds.into_iter().map(|(kind, e)| (kind.as_str(), e));
        for (kind, executor) in named.chain(self.fallback.iter().map(|e| ("*", e))) {
            if !all.iter().any(|(_, seen)| Arc::ptr_eq(seen, executor)) {
                all.push((kind, executor));
            }
        }
        all
    }

    /// Tells every executor the worker now has `runners` runners.
    pub fn resize(&self, runners: usize) {
        for (_, executor) in self.executors() {
            executor.resize(runners);
        }
    }

    /// Replaces runner `number`'s process in every executor that has one (after its
    /// current tasks); returns how many were replaced.
    pub async fn replace_runner(&self, number: usize) -> usize {
        let mut replaced = 0;
        for (_, executor) in self.executors() {
            replaced += usize::from(executor.replace_runner(number).await);
        }
        replaced
    }

    /// Every executor's long-lived processes, labelled with their kind.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        let mut all = Vec::new();
        for (kind, executor) in self.executors() {
            all.extend(executor.processes().into_iter().map(|mut p| {
                p.kind = kind.to_string();
                p
            }));
        }
        all
    }

    /// Whether no executor at all is registered.
    pub fn is_empty(&self) -> bool {
        self.by_kind.is_empty() && self.fallback.is_none()
    }
}
