//! A fleet of worker processes on one store, and what the multi-process tests
//! (`stores.rs`) and the fault suite (`faults.rs`) count with it.
//!
//! The worker processes are the test binary run again in a worker mode (the ignored test
//! [`worker_process`], selected with `fleet::worker_process --exact --ignored`): a
//! `wrangle` library worker with a Rust handler that appends `ID ATTEMPT WORKER` to its
//! own file, so side effects are counted exactly, outside wrangle, without forking a
//! process per task.
// Each test file uses a different subset.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use wrangle::{NewTask, Store, TaskFilter, TaskId, TaskState, Topic};
use wrangle_testkit::{MariaDbServer, PostgresServer, RedisServer};

/// Set (to the worker's settings as JSON) in the environment of a worker process.
pub const WORKER_ENV: &str = "WRANGLE_STORES_TEST_WORKER";
/// The line a worker process prints its report on when it stops.
pub const REPORT_PREFIX: &str = "WORKER-REPORT ";
/// What the worker processes log when the store fails under them (crates/wrangle-worker:
/// the claimer, the completer and the heartbeat respectively).
pub const OUTAGE_WARNINGS: [&str; 3] = [
    "claim failed; retrying",
    "store unavailable; outcomes kept, retrying",
    "heartbeat failed; will keep trying",
];

// --- the worker process ------------------------------------------------------------------

/// Entry point of the worker processes the tests start (this binary, run again with
/// `fleet::worker_process --exact --ignored` and [`WORKER_ENV`] set). Runs a `wrangle` worker on
/// the store until SIGTERM, with one handler, kind `effect`: sleep `sleep_ms`, then append
/// `ID ATTEMPT WORKER` to the `effects` file. Prints its report when it stops.
#[test]
#[ignore = "entry point of the worker processes the other tests start"]
pub fn worker_process() {
    let Ok(settings) = std::env::var(WORKER_ENV) else {
        eprintln!("{WORKER_ENV} is not set: nothing to do (this is not a test on its own)");
        return;
    };
    let settings: Value = serde_json::from_str(&settings).expect("worker settings");
    let text = |key: &str| settings[key].as_str().expect(key).to_string();
    let number = |key: &str| settings[key].as_u64().expect(key);
    let clock_skew = settings["clock_skew_ms"].as_i64().expect("clock_skew_ms");
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,sqlx=warn"))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let shutdown = wrangle::Shutdown::new();
        // Installed before anything else, so an early SIGTERM is never fatal.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        let graceful = shutdown.graceful.clone();
        tokio::spawn(async move {
            term.recv().await;
            graceful.cancel();
        });

        let name = text("name");
        let effects = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(text("effects"))
            .expect("effects file");
        let effects = Arc::new(Mutex::new(effects));
        let sleep = Duration::from_millis(number("sleep_ms"));
        let mut registry = wrangle::Registry::new();
        let me = name.clone();
        registry.handle("effect", move |ctx, _payload| {
            let effects = effects.clone();
            let line = format!("{} {} {}\n", ctx.task.id, ctx.task.attempt, me);
            async move {
                if !sleep.is_zero() {
                    tokio::time::sleep(sleep).await;
                }
                // One unbuffered write per line: it is in the file before the outcome is
                // even handed to the completer.
                effects
                    .lock()
                    .expect("effects lock")
                    .write_all(line.as_bytes())
                    .map_err(|e| format!("writing the side effect: {e}"))?;
                Ok::<_, String>(Value::Null)
            }
        });
        let mut config = wrangle::WorkerConfig::new();
        config.name = name;
        config.runners = number("runners") as usize;
        config.batch_size = number("batch") as usize;
        config.lease = Duration::from_millis(number("lease_ms"));
        config.clock_skew = chrono::TimeDelta::milliseconds(clock_skew);
        // As `wrangle worker` does: a store that cannot be reached yet (down, or a network
        // fault) is waited for.
        let store = wrangle::connect_waiting(&text("url"), wrangle::Open::Create, &shutdown, |err, pause| {
            tracing::warn!(error = %err, retry_in = ?pause, "store unavailable; waiting for it");
        })
        .await
        .expect("connect")
        .expect("not stopped while connecting");
        let report = wrangle::Worker::new(store, registry, config)
            .run(shutdown)
            .await
            .expect("worker");
        println!(
            "{REPORT_PREFIX}{}",
            json!({
                "succeeded": report.succeeded,
                "failed": report.failed,
                "released": report.released,
                "stale": report.stale,
            })
        );
    });
}

/// How a worker process runs.
#[derive(Debug, Clone, Copy)]
pub struct WorkerSpec {
    pub runners: usize,
    pub batch: usize,
    pub lease: Duration,
    /// How long each task takes.
    pub sleep: Duration,
    /// Added to the worker's clock (`WorkerConfig::clock_skew`, which only tests can set).
    pub clock_skew: chrono::TimeDelta,
}

/// A running worker process, killed if the test ends without stopping it.
pub struct WorkerProcess {
    pub name: String,
    /// The store it works on.
    pub url: String,
    pub child: Option<Child>,
    pub log: PathBuf,
    pub effects: PathBuf,
}

impl WorkerProcess {
    pub fn start(dir: &Path, name: &str, url: &str, spec: WorkerSpec) -> Self {
        let log = dir.join(format!("{name}.log"));
        let effects = dir.join(format!("{name}.effects"));
        let settings = json!({
            "name": name,
            "url": url,
            "effects": effects.to_str().expect("utf-8 path"),
            "runners": spec.runners,
            "batch": spec.batch,
            "lease_ms": spec.lease.as_millis() as u64,
            "sleep_ms": spec.sleep.as_millis() as u64,
            "clock_skew_ms": spec.clock_skew.num_milliseconds(),
        });
        let child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "fleet::worker_process",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(WORKER_ENV, settings.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start a worker process");
        WorkerProcess {
            name: name.to_string(),
            url: url.to_string(),
            child: Some(child),
            log,
            effects,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics unless the process is still running.
    pub fn assert_alive(&mut self, when: &str) {
        let child = self.child.as_mut().expect("not stopped yet");
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!(
                "worker {} exited {when} ({status}); its log:\n{}",
                self.name,
                self.log()
            );
        }
    }

    /// Stops the process with SIGTERM (graceful) and returns its report.
    pub fn stop(&mut self) -> Value {
        let child = self.child.take().expect("not stopped yet");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM");
        let out = child.wait_with_output().expect("wait for the worker");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "worker {} exited with {}; stdout:\n{stdout}\nlog:\n{}",
            self.name,
            out.status,
            self.log()
        );
        let report = stdout
            .lines()
            .find_map(|l| l.strip_prefix(REPORT_PREFIX))
            .unwrap_or_else(|| panic!("worker {} printed no report: {stdout}", self.name));
        serde_json::from_str(report).expect("report JSON")
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One run of the `effect` handler, as written to an effects file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Effect {
    pub attempt: u32,
    pub worker: String,
}

/// Every side effect of `workers`, by task.
pub fn effects(workers: &[WorkerProcess]) -> BTreeMap<TaskId, Vec<Effect>> {
    let mut by_task = BTreeMap::<TaskId, Vec<Effect>>::new();
    for worker in workers {
        let text = std::fs::read_to_string(&worker.effects).unwrap_or_default();
        for line in text.lines() {
            let mut parts = line.split(' ');
            let (Some(id), Some(attempt), Some(name), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                panic!(
                    "malformed effect line {line:?} in {}",
                    worker.effects.display()
                );
            };
            by_task
                .entry(id.parse().expect("task id"))
                .or_default()
                .push(Effect {
                    attempt: attempt.parse().expect("attempt"),
                    worker: name.to_string(),
                });
        }
    }
    by_task
}

pub fn effect_count(workers: &[WorkerProcess]) -> usize {
    workers
        .iter()
        .map(|w| {
            std::fs::read_to_string(&w.effects)
                .unwrap_or_default()
                .lines()
                .count()
        })
        .sum()
}

// --- the store, from the test process ------------------------------------------------------

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Enqueues `n` tasks of kind `effect` in batches of 1000; returns their ids.
pub async fn enqueue(store: &Arc<dyn Store>, n: usize) -> Vec<TaskId> {
    let client = wrangle::Client::new(store.clone());
    let mut ids = Vec::with_capacity(n);
    for start in (0..n).step_by(1000) {
        let batch: Vec<NewTask> = (start..n.min(start + 1000))
            .map(|i| NewTask::new("effect", json!({ "i": i })))
            .collect();
        let enqueued = client.submit_batch(batch).await.expect("submit_batch");
        assert!(enqueued.iter().all(|e| !e.duplicate));
        ids.extend(enqueued.iter().map(|e| e.id));
    }
    let distinct: BTreeSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), n, "every task got its own id");
    ids
}

/// Tasks per state, over every queue.
pub async fn counts(
    store: &Arc<dyn Store>,
) -> Result<BTreeMap<TaskState, u64>, wrangle::StoreError> {
    let mut total = BTreeMap::new();
    for queue in store.queue_stats(Utc::now()).await? {
        for (state, n) in queue.counts {
            *total.entry(state).or_default() += n;
        }
    }
    Ok(total)
}

/// Waits until at least `target` tasks are completed, woken by the store's outcome
/// notifications (re-checking at most every 100 ms, at least every 500 ms). Store errors
/// (a server just restarted) are retried until `limit`; on timeout it panics with the
/// counts and the workers' logs.
pub async fn wait_completed(
    store: &Arc<dyn Store>,
    target: u64,
    limit: Duration,
    workers: &[WorkerProcess],
) -> BTreeMap<TaskState, u64> {
    let started = Instant::now();
    let mut listener = None;
    loop {
        if listener.is_none() {
            listener = store.listen(Topic::Outcomes).await.ok();
        }
        let last = match counts(store).await {
            Ok(counts) => {
                if counts.get(&TaskState::Completed).copied().unwrap_or(0) >= target {
                    return counts;
                }
                Ok(counts)
            }
            Err(err) => Err(err),
        };
        if started.elapsed() > limit {
            let logs: String = workers
                .iter()
                .map(|w| format!("--- {} ---\n{}\n", w.name, tail(&w.log(), 40)))
                .collect();
            panic!("{target} tasks not completed within {limit:?}: last counts {last:?}\n{logs}");
        }
        let check_again = tokio::time::sleep(Duration::from_millis(100));
        match listener.as_mut() {
            Some(l) => {
                if l.wait(Duration::from_millis(500)).await.is_err() {
                    listener = None;
                }
            }
            None => tokio::time::sleep(Duration::from_millis(500)).await,
        }
        check_again.await;
    }
}

/// Waits until every one of `workers` has registered with the store (so each is in its
/// claim loop before the first task arrives). Polled: registrations have no notification.
pub async fn wait_registered(store: &Arc<dyn Store>, workers: &mut [WorkerProcess]) {
    let started = Instant::now();
    loop {
        let registered: BTreeSet<String> = store
            .list_workers()
            .await
            .expect("list_workers")
            .into_iter()
            .map(|w| w.info.name)
            .collect();
        if workers.iter().all(|w| registered.contains(&w.name)) {
            return;
        }
        for worker in workers.iter_mut() {
            worker.assert_alive("before registering");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "workers never registered; registered: {registered:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Every task in the store (paging through `list_tasks`), by id.
pub async fn all_tasks(store: &Arc<dyn Store>) -> BTreeMap<TaskId, wrangle::Task> {
    let mut tasks = BTreeMap::new();
    let mut before_id = None;
    loop {
        let page = store
            .list_tasks(TaskFilter {
                before_id,
                limit: 1000,
                ..TaskFilter::default()
            })
            .await
            .expect("list_tasks");
        let Some(last) = page.last() else { break };
        before_id = Some(last.id);
        for task in page {
            assert!(
                tasks.insert(task.id, task).is_none(),
                "list_tasks returned a task twice"
            );
        }
    }
    tasks
}

/// Asserts that exactly the tasks `ids` exist, each `completed` with exactly one
/// `completed` attempt, which is its last; returns the (attempt, worker) that completed
/// each task.
pub fn assert_completed_once(
    tasks: &BTreeMap<TaskId, wrangle::Task>,
    ids: &[TaskId],
) -> BTreeMap<TaskId, Effect> {
    let expected: BTreeSet<TaskId> = ids.iter().copied().collect();
    let found: BTreeSet<TaskId> = tasks.keys().copied().collect();
    assert_eq!(
        found, expected,
        "the store holds exactly the enqueued tasks"
    );
    let mut completed_by = BTreeMap::new();
    for task in tasks.values() {
        assert_eq!(task.state, TaskState::Completed, "{task:?}");
        let completions: Vec<_> = task
            .attempts
            .iter()
            .filter(|a| a.outcome == "completed")
            .collect();
        assert_eq!(completions.len(), 1, "completed exactly once: {task:?}");
        let last = task.attempts.last().expect("attempts");
        assert_eq!(last.outcome, "completed", "{task:?}");
        assert_eq!(last.attempt, task.attempt, "{task:?}");
        completed_by.insert(
            task.id,
            Effect {
                attempt: last.attempt,
                worker: last.worker.clone().expect("completed attempt has a worker"),
            },
        );
    }
    completed_by
}

// --- the server, from the test process ---------------------------------------------------

/// The server lifecycle the chaos test drives, for any of the three servers.
pub trait Server {
    fn url(&self) -> String;
    fn port(&self) -> u16;
    fn is_external(&self) -> bool;
    fn kill(&mut self);
    fn stop(&mut self);
    fn restart(&mut self);
}

macro_rules! server {
    ($type:ty) => {
        impl Server for $type {
            fn url(&self) -> String {
                <$type>::url(self)
            }
            fn port(&self) -> u16 {
                <$type>::port(self)
            }
            fn is_external(&self) -> bool {
                <$type>::is_external(self)
            }
            fn kill(&mut self) {
                <$type>::kill(self)
            }
            fn stop(&mut self) {
                <$type>::stop(self)
            }
            fn restart(&mut self) {
                <$type>::restart(self).expect("restart the server");
            }
        }
    };
}
server!(PostgresServer);
server!(RedisServer);
server!(MariaDbServer);

// --- the reliability table ---------------------------------------------------------------

/// How long a storm lasts: `WRANGLE_CHAOS_SECONDS` (`scripts/chaos.sh` runs minutes), 8 s
/// by default (the short form CI runs).
pub fn storm_length() -> Duration {
    Duration::from_secs(
        std::env::var("WRANGLE_CHAOS_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(8),
    )
}

/// Counts, over the tasks `ids`: those not completed (lost), those completed more than
/// once (in the store, or by side effects of the completed attempt), and side effects of
/// attempts after the completed one (run again after completing).
pub fn tally(
    ids: &[TaskId],
    tasks: &BTreeMap<TaskId, wrangle::Task>,
    effects: &BTreeMap<TaskId, Vec<Effect>>,
) -> (usize, usize, usize) {
    let (mut lost, mut twice, mut again) = (0, 0, 0);
    for id in ids {
        let Some(task) = tasks.get(id).filter(|t| t.state == TaskState::Completed) else {
            lost += 1;
            continue;
        };
        let completions: Vec<_> = task
            .attempts
            .iter()
            .filter(|a| a.outcome == "completed")
            .collect();
        let Some(done) = completions.first().map(|a| a.attempt) else {
            lost += 1;
            continue;
        };
        let runs = effects.get(id).map_or(&[][..], Vec::as_slice);
        if completions.len() != 1 || runs.iter().filter(|r| r.attempt == done).count() != 1 {
            twice += 1;
        }
        again += runs.iter().filter(|r| r.attempt > done).count();
    }
    (lost, twice, again)
}
