//! Multi-process and chaos tests of the shared stores (PostgreSQL, Redis, MariaDB), each
//! against its own throwaway server from `wrangle-testkit`:
//!
//! - 4 worker processes drain 20,000 tasks: none lost, none completed twice, every side
//!   effect exactly once;
//! - the server is crashed (or stopped) and restarted under 2 running worker processes:
//!   the workers stay up, log the outage, reconnect, and every task still completes
//!   exactly once in the store;
//! - `wrangle submit --wait` round trip through the real binary, with a real
//!   `wrangle worker --exec` process, both given the store by `--store URL`.
//!
//! The worker processes of the first two are this test binary run again in a worker mode
//! (the ignored test [`worker_process`], selected with `--exact --ignored`): a `wrangle`
//! library worker with a Rust handler that appends `ID ATTEMPT WORKER` to its own file,
//! so the side effects can be counted exactly without forking a process per task.
//!
//! Without servers (no binaries, no root to install them) the tests skip, except under
//! `CI=true` or `WRANGLE_TEST_REQUIRE_SERVERS=1`, where they fail.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use wrangle::{NewTask, Store, TaskFilter, TaskId, TaskState, Topic};
use wrangle_testkit::{MariaDbServer, PostgresServer, RedisServer, or_skip};

/// Set (to the worker's settings as JSON) in the environment of a worker process.
const WORKER_ENV: &str = "WRANGLE_STORES_TEST_WORKER";
/// The line a worker process prints its report on when it stops.
const REPORT_PREFIX: &str = "WORKER-REPORT ";
/// What the worker processes log when the store fails under them (crates/wrangle-worker:
/// the claimer, the completer and the heartbeat respectively).
const OUTAGE_WARNINGS: [&str; 3] = [
    "claim failed; retrying",
    "store unavailable; outcomes kept, retrying",
    "heartbeat failed; will keep trying",
];

// --- the worker process ------------------------------------------------------------------

/// Entry point of the worker processes the tests start (this binary, run again with
/// `worker_process --exact --ignored` and [`WORKER_ENV`] set). Runs a `wrangle` worker on
/// the store until SIGTERM, with one handler, kind `effect`: sleep `sleep_ms`, then append
/// `ID ATTEMPT WORKER` to the `effects` file. Prints its report when it stops.
#[test]
#[ignore = "entry point of the worker processes the other tests start"]
fn worker_process() {
    let Ok(settings) = std::env::var(WORKER_ENV) else {
        eprintln!("{WORKER_ENV} is not set: nothing to do (this is not a test on its own)");
        return;
    };
    let settings: Value = serde_json::from_str(&settings).expect("worker settings");
    let text = |key: &str| settings[key].as_str().expect(key).to_string();
    let number = |key: &str| settings[key].as_u64().expect(key);
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
        let store = wrangle::connect(&text("url")).await.expect("connect");
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
struct WorkerSpec {
    runners: usize,
    batch: usize,
    lease: Duration,
    /// How long each task takes.
    sleep: Duration,
}

/// A running worker process, killed if the test ends without stopping it.
struct WorkerProcess {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    effects: PathBuf,
}

impl WorkerProcess {
    fn start(dir: &Path, name: &str, url: &str, spec: WorkerSpec) -> Self {
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
        });
        let child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["worker_process", "--exact", "--ignored", "--nocapture"])
            .env(WORKER_ENV, settings.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start a worker process");
        WorkerProcess {
            name: name.to_string(),
            child: Some(child),
            log,
            effects,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics unless the process is still running.
    fn assert_alive(&mut self, when: &str) {
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
    fn stop(&mut self) -> Value {
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
struct Effect {
    attempt: u32,
    worker: String,
}

/// Every side effect of `workers`, by task.
fn effects(workers: &[WorkerProcess]) -> BTreeMap<TaskId, Vec<Effect>> {
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

fn effect_count(workers: &[WorkerProcess]) -> usize {
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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Enqueues `n` tasks of kind `effect` in batches of 1000; returns their ids.
async fn enqueue(store: &Arc<dyn Store>, n: usize) -> Vec<TaskId> {
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
async fn counts(store: &Arc<dyn Store>) -> Result<BTreeMap<TaskState, u64>, wrangle::StoreError> {
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
async fn wait_completed(
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
async fn wait_registered(store: &Arc<dyn Store>, workers: &mut [WorkerProcess]) {
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

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Every task in the store (paging through `list_tasks`), by id.
async fn all_tasks(store: &Arc<dyn Store>) -> BTreeMap<TaskId, wrangle::Task> {
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
fn assert_completed_once(
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

// --- 1. four worker processes, 20,000 tasks ------------------------------------------------

const MANY: usize = 20_000;

/// 4 worker processes on one store while 20,000 tasks are enqueued in batches of 1000:
/// every task completed exactly once in the store, every side effect exactly once, and
/// every process did part of the work.
fn four_workers_complete_20000_tasks_exactly_once(url: &str) {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    // Connecting here first creates the schema, before the workers race to.
    let store = rt.block_on(wrangle::connect(url)).expect("connect");
    let spec = WorkerSpec {
        runners: 200,
        batch: 100,
        lease: Duration::from_secs(30),
        sleep: Duration::ZERO,
    };
    let mut workers: Vec<WorkerProcess> = (1..=4)
        .map(|i| WorkerProcess::start(dir.path(), &format!("w{i}"), url, spec))
        .collect();
    rt.block_on(wait_registered(&store, &mut workers));
    let ids = rt.block_on(enqueue(&store, MANY));
    let counts = rt.block_on(wait_completed(
        &store,
        MANY as u64,
        Duration::from_secs(150),
        &workers,
    ));
    let drained = started.elapsed();
    assert_eq!(
        counts.values().sum::<u64>(),
        MANY as u64,
        "nothing but completed tasks: {counts:?}"
    );
    let mut succeeded = 0;
    for worker in &mut workers {
        worker.assert_alive("before being stopped");
        let report = worker.stop();
        let ran = report["succeeded"].as_u64().unwrap();
        assert!(ran > 0, "worker {} ran nothing: {report}", worker.name);
        assert_eq!(report["stale"], 0, "{}: {report}", worker.name);
        assert_eq!(report["failed"], 0, "{}: {report}", worker.name);
        succeeded += ran;
    }
    assert_eq!(succeeded, MANY as u64, "the workers' reports add up");

    let tasks = rt.block_on(all_tasks(&store));
    let completed_by = assert_completed_once(&tasks, &ids);
    let effects = effects(&workers);
    assert_eq!(effects.len(), MANY, "every task's side effect happened");
    for (id, runs) in &effects {
        assert_eq!(runs.len(), 1, "task {id} ran more than once: {runs:?}");
        assert_eq!(runs[0], completed_by[id], "task {id}: the recorded run");
    }
    for task in tasks.values() {
        assert_eq!(task.attempt, 1, "no task needed a second attempt: {task:?}");
    }
    eprintln!(
        "{MANY} tasks drained by 4 processes in {drained:?} ({:.0}/s), test took {:?}",
        MANY as f64 / drained.as_secs_f64(),
        started.elapsed()
    );
}

#[test]
fn postgres_four_worker_processes_complete_20000_tasks_exactly_once() {
    let Some(server) = or_skip(PostgresServer::start()) else {
        return;
    };
    four_workers_complete_20000_tasks_exactly_once(&server.url());
}

#[test]
fn redis_four_worker_processes_complete_20000_tasks_exactly_once() {
    let Some(server) = or_skip(RedisServer::start()) else {
        return;
    };
    four_workers_complete_20000_tasks_exactly_once(&server.url());
}

#[test]
fn mariadb_four_worker_processes_complete_20000_tasks_exactly_once() {
    let Some(server) = or_skip(MariaDbServer::start()) else {
        return;
    };
    four_workers_complete_20000_tasks_exactly_once(&server.url());
}

// --- 2. the server restarts under running workers -----------------------------------------

const CHAOS_TASKS: usize = 3_000;

/// How the server goes away.
#[derive(Debug, Clone, Copy)]
enum Outage {
    /// SIGKILL: a crash.
    Kill,
    /// A clean shutdown.
    Stop,
}

/// The server lifecycle the chaos test drives, for any of the three servers.
trait Server {
    fn url(&self) -> String;
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

/// 2 worker processes run 3,000 tasks of 2 ms each (4 at a time per process, leases of
/// 3 s); when 600 are completed the server goes away (`outage`) for 1.5 s and is restarted.
///
/// Expected: both workers stay up, log the outage, reconnect and finish; every task is
/// completed exactly once in the store, and every side effect of a task is either the
/// attempt the store recorded as completed (exactly once) or an attempt the store recorded
/// as ended otherwise (its lease expired during the outage and it was rescued, so its
/// completion was refused as stale): at least once, never lost.
fn server_restart_under_running_workers(server: &mut dyn Server, store_name: &str, outage: Outage) {
    if server.is_external() {
        eprintln!("skipping: an external server cannot be restarted by the test");
        return;
    }
    let started = Instant::now();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let store = rt.block_on(wrangle::connect(&url)).expect("connect");
    let ids = rt.block_on(enqueue(&store, CHAOS_TASKS));
    let spec = WorkerSpec {
        runners: 4,
        batch: 100,
        // Short, so that a claim whose reply the crash swallowed is rescued within seconds.
        lease: Duration::from_secs(3),
        sleep: Duration::from_millis(2),
    };
    let mut workers: Vec<WorkerProcess> = ["a", "b"]
        .iter()
        .map(|name| WorkerProcess::start(dir.path(), name, &url, spec))
        .collect();
    rt.block_on(wait_completed(
        &store,
        600,
        Duration::from_secs(60),
        &workers,
    ));

    match outage {
        Outage::Kill => server.kill(),
        Outage::Stop => server.stop(),
    }
    let down_at = Instant::now();
    let ran_before = effect_count(&workers);
    assert!(
        ran_before < CHAOS_TASKS,
        "all tasks ran before the outage: the test did not interrupt anything"
    );
    // The outage itself: the workers meet a dead server for this long.
    std::thread::sleep(Duration::from_millis(1500));
    for worker in &mut workers {
        worker.assert_alive("while the server was down");
    }
    server.restart();
    let outage_took = down_at.elapsed();

    rt.block_on(wait_completed(
        &store,
        CHAOS_TASKS as u64,
        Duration::from_secs(90),
        &workers,
    ));
    let recovery = down_at.elapsed();
    let mut stale = 0;
    let mut logged = Vec::new();
    for worker in &mut workers {
        worker.assert_alive("after the restart");
        let log = worker.log();
        let warnings: Vec<&str> = OUTAGE_WARNINGS
            .into_iter()
            .filter(|w| log.contains(w))
            .collect();
        assert!(
            !warnings.is_empty(),
            "worker {} did not log the outage; its log:\n{log}",
            worker.name
        );
        logged.push(format!("{}: {warnings:?}", worker.name));
        let report = worker.stop();
        stale += report["stale"].as_u64().unwrap();
    }

    let tasks = rt.block_on(all_tasks(&store));
    let effects = effects(&workers);
    let (lost, completed_twice, run_after_completing) = tally(&ids, &tasks, &effects);
    ReliabilityRow {
        fault: match outage {
            Outage::Kill => "store killed (SIGKILL) and restarted, 1.5 s down",
            Outage::Stop => "store stopped and restarted, 1.5 s down",
        },
        store: store_name,
        tasks: CHAOS_TASKS,
        lost,
        completed_twice,
        run_after_completing,
        recovery,
    }
    .record();
    let completed_by = assert_completed_once(&tasks, &ids);
    let mut repeats = 0;
    for (id, task) in &tasks {
        let runs = effects
            .get(id)
            .unwrap_or_else(|| panic!("task {id} completed but never ran: {task:?}"));
        let done = &completed_by[id];
        assert_eq!(
            runs.iter().filter(|r| *r == done).count(),
            1,
            "task {id}: the completed attempt ran exactly once: {runs:?} {task:?}"
        );
        for run in runs.iter().filter(|r| *r != done) {
            repeats += 1;
            let record = task
                .attempts
                .iter()
                .find(|a| a.attempt == run.attempt && a.worker.as_deref() == Some(&run.worker))
                .unwrap_or_else(|| {
                    panic!(
                        "task {id}: {run:?} ran again but the store has no such attempt: {task:?}"
                    )
                });
            assert_ne!(record.outcome, "completed", "task {id}: {task:?}");
        }
    }
    // Attempts that ended other than completed: leases that expired during the outage
    // (also claims whose reply the crash swallowed, which never ran).
    let interrupted = tasks
        .values()
        .flat_map(|t| &t.attempts)
        .filter(|a| a.outcome != "completed")
        .count();
    let unknown: Vec<_> = effects
        .keys()
        .filter(|id| !tasks.contains_key(id))
        .collect();
    assert!(
        unknown.is_empty(),
        "side effects of unknown tasks {unknown:?}"
    );
    eprintln!(
        "{outage:?}: server down and back in {outage_took:?}, {ran_before} tasks had run \
         before; {interrupted} interrupted attempts, {repeats} repeated side effects, \
         {stale} stale completions; logged {}; \
         test took {:?}",
        logged.join(", "),
        started.elapsed()
    );
}

/// Crash (SIGKILL) with PostgreSQL's durable settings (`start_durable`: fsync on). The
/// plain `start()` runs with fsync off, which also survives a process kill (the data sits
/// in the page cache), but a crash test should run what a deployment runs.
#[test]
fn postgres_killed_and_restarted_under_two_workers_loses_and_duplicates_nothing() {
    let Some(mut server) = or_skip(PostgresServer::start_durable()) else {
        return;
    };
    server_restart_under_running_workers(&mut server, "PostgreSQL", Outage::Kill);
}

/// Redis is stopped cleanly (SIGTERM), not killed: the testkit server persists with AOF
/// and `appendfsync everysec`, under which a SIGKILL may lose acknowledged writes of about
/// the last second by design (Redis may postpone the AOF write while an fsync is still
/// running). A lost write would make tasks run again or vanish for reasons that are
/// Redis's configuration, not wrangle's; a clean stop flushes and fsyncs the AOF, so
/// every acknowledged write survives and the test can demand exactly-once completion.
#[test]
fn redis_stopped_and_restarted_under_two_workers_loses_and_duplicates_nothing() {
    let Some(mut server) = or_skip(RedisServer::start()) else {
        return;
    };
    server_restart_under_running_workers(&mut server, "Redis", Outage::Stop);
}

/// Crash (SIGKILL): InnoDB keeps its durable default (`innodb_flush_log_at_trx_commit=1`),
/// so every committed transaction survives and the restart runs crash recovery.
#[test]
fn mariadb_killed_and_restarted_under_two_workers_loses_and_duplicates_nothing() {
    let Some(mut server) = or_skip(MariaDbServer::start()) else {
        return;
    };
    server_restart_under_running_workers(&mut server, "MariaDB", Outage::Kill);
}

// --- 3. the CLI round trip ---------------------------------------------------------------

/// Runs `command` to its end, failing the test if it takes longer than `limit`.
fn output_within(mut command: Command, limit: Duration) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wrangle");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wrangle output"),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("{command:?} did not finish within {limit:?}");
        }
    }
}

/// `wrangle --store URL submit greet '{}' --wait` while `wrangle --store URL worker --exec
/// 'echo hi'` runs: the result comes back through the store, and the store shows the task
/// completed by that worker. With `down`, the server is stopped before the worker starts:
/// the worker says it waits for the store, stays up, and starts working when the server
/// is back.
fn cli_submit_wait_round_trip(server: &mut dyn Server, down: bool) {
    let started = Instant::now();
    let url = &server.url();
    if down {
        if server.is_external() {
            eprintln!("skipping: an external server cannot be stopped by the test");
            return;
        }
        server.stop();
    }
    let dir = tempfile::tempdir().unwrap();
    let wrangle = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wrangle"));
        command
            .current_dir(dir.path())
            .env_remove("WRANGLE_STORE")
            .env("WRANGLE_LOG", "info")
            .arg("--store")
            .arg(url)
            .args(args);
        command
    };
    let log_path = dir.path().join("worker.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut worker = WorkerGuard(
        wrangle(&["worker", "--name", "cli-worker", "--exec", "echo hi"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start wrangle worker"),
    );

    let worker_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    if down {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !worker_log().contains("store unavailable; waiting for it") {
            assert!(
                Instant::now() < deadline,
                "the worker did not say it waits:\n{}",
                worker_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_secs(2));
        assert!(
            worker.0.try_wait().unwrap().is_none(),
            "a worker started without its store exited:\n{}",
            worker_log()
        );
        server.restart();
    }
    let out = output_within(
        wrangle(&["submit", "greet", "{}", "--wait", "--wait-timeout", "60s"]),
        Duration::from_secs(90),
    );
    assert!(
        out.status.success(),
        "submit --wait failed: {}\nworker log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        worker_log()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hi");

    let out = output_within(
        wrangle(&["--json", "tasks", "list"]),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tasks: Value = serde_json::from_slice(&out.stdout).expect("tasks JSON");
    let tasks = tasks.as_array().expect("a list");
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["state"], "completed", "{tasks:?}");
    assert_eq!(tasks[0]["kind"], "greet", "{tasks:?}");
    assert_eq!(tasks[0]["worker"], "cli-worker", "{tasks:?}");

    let child = &mut worker.0;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "worker exit {status}:\n{}", worker_log());
    let log = worker_log();
    assert!(log.contains("worker stopped"), "{log}");
    assert!(log.contains("succeeded=1"), "{log}");
    eprintln!("CLI round trip took {:?}", started.elapsed());
}

/// Kills the child if the test fails before stopping it.
struct WorkerGuard(Child);

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn postgres_cli_submit_wait_round_trip_with_a_worker_process() {
    let Some(mut server) = or_skip(PostgresServer::start()) else {
        return;
    };
    cli_submit_wait_round_trip(&mut server, false);
}

#[test]
fn redis_cli_submit_wait_round_trip_with_a_worker_process() {
    let Some(mut server) = or_skip(RedisServer::start()) else {
        return;
    };
    cli_submit_wait_round_trip(&mut server, false);
}

#[test]
fn mariadb_cli_submit_wait_round_trip_with_a_worker_process() {
    let Some(mut server) = or_skip(MariaDbServer::start()) else {
        return;
    };
    cli_submit_wait_round_trip(&mut server, false);
}

#[test]
fn postgres_a_worker_started_while_the_server_is_down_begins_when_it_comes_up() {
    let Some(mut server) = or_skip(PostgresServer::start()) else {
        return;
    };
    cli_submit_wait_round_trip(&mut server, true);
}

#[test]
fn redis_a_worker_started_while_the_server_is_down_begins_when_it_comes_up() {
    let Some(mut server) = or_skip(RedisServer::start()) else {
        return;
    };
    cli_submit_wait_round_trip(&mut server, true);
}

// --- 4. kill -9 storms ---------------------------------------------------------------------

/// How long a storm lasts: `WRANGLE_CHAOS_SECONDS` (`scripts/chaos.sh` runs minutes), 8 s
/// by default (the short form CI runs).
fn storm_length() -> Duration {
    Duration::from_secs(
        std::env::var("WRANGLE_CHAOS_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(8),
    )
}

/// One row of the reliability table, appended to `$WRANGLE_CHAOS_REPORT` when it is set
/// (`scripts/chaos.sh` turns the rows into `docs/reliability.md`).
struct ReliabilityRow<'a> {
    fault: &'a str,
    store: &'a str,
    tasks: usize,
    lost: usize,
    completed_twice: usize,
    run_after_completing: usize,
    recovery: Duration,
}

impl ReliabilityRow<'_> {
    fn record(&self) {
        let line = format!(
            "| {} | {} | {} | {} | {} | {} | {:.1} s |\n",
            self.fault,
            self.store,
            self.tasks,
            self.lost,
            self.completed_twice,
            self.run_after_completing,
            self.recovery.as_secs_f64()
        );
        eprint!("reliability: {line}");
        if let Ok(path) = std::env::var("WRANGLE_CHAOS_REPORT") {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut file| file.write_all(line.as_bytes()))
                .expect("append to WRANGLE_CHAOS_REPORT");
        }
    }
}

/// Counts, over the tasks `ids`: those not completed (lost), those completed more than
/// once (in the store, or by side effects of the completed attempt), and side effects of
/// attempts after the completed one (run again after completing).
fn tally(
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

/// 4 worker processes (2 runners each, 1 s leases, 50 ms tasks) work through tasks while
/// every 2 s a random one is killed with SIGKILL and a new one started in its place, for
/// [`storm_length`]; then the last ones finish the rest. Counted outside wrangle (each
/// task's side effects) and in the store: no task lost, none completed twice, none run
/// again after its completed attempt. The recovery time is from the last kill until
/// every task is completed.
fn kill_storm(url: &str, store_name: &str) {
    let length = storm_length();
    // More than the workers can run during the storm (160 tasks/s at most), so it
    // always interrupts work.
    let tasks_n = length.as_secs() as usize * 200;
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let store = rt.block_on(wrangle::connect(url)).expect("connect");
    let ids = rt.block_on(enqueue(&store, tasks_n));
    let spec = WorkerSpec {
        runners: 2,
        batch: 10,
        lease: Duration::from_secs(1),
        sleep: Duration::from_millis(50),
    };
    let mut started = 0;
    let mut start = |workers: &mut Vec<WorkerProcess>| {
        started += 1;
        workers.push(WorkerProcess::start(
            dir.path(),
            &format!("w{started}"),
            url,
            spec,
        ));
    };
    let mut live = Vec::new();
    for _ in 0..4 {
        start(&mut live);
    }
    let mut dead: Vec<WorkerProcess> = Vec::new();
    let storm_began = Instant::now();
    let mut victim = 7usize;
    while storm_began.elapsed() < length {
        std::thread::sleep(Duration::from_secs(2));
        victim = (victim * 31 + 17) % 101;
        let mut killed = live.remove(victim % live.len());
        if let Some(child) = killed.child.as_mut() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
        killed.child = None;
        dead.push(killed);
        start(&mut live);
    }
    let last_kill = Instant::now();
    let ran_during_storm = effect_count(&live) + effect_count(&dead);
    let all: Vec<_> = live
        .iter()
        .chain(dead.iter())
        .map(|w| w.name.clone())
        .collect();
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let done = counts(&store)
                .await
                .ok()
                .and_then(|c| c.get(&TaskState::Completed).copied())
                .unwrap_or(0);
            if done >= tasks_n as u64 || Instant::now() > deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let recovery = last_kill.elapsed();
    for worker in &mut live {
        worker.assert_alive("after the storm");
        worker.stop();
    }
    let tasks = rt.block_on(all_tasks(&store));
    let mut workers = live;
    workers.append(&mut dead);
    let effects = effects(&workers);
    let (lost, twice, again) = tally(&ids, &tasks, &effects);
    ReliabilityRow {
        fault: &format!(
            "kill -9 storm: a worker every 2 s for {} s",
            length.as_secs()
        ),
        store: store_name,
        tasks: tasks_n,
        lost,
        completed_twice: twice,
        run_after_completing: again,
        recovery,
    }
    .record();
    assert!(
        ran_during_storm < tasks_n,
        "all {tasks_n} tasks ran before the storm ended: it interrupted nothing"
    );
    assert_eq!(
        (lost, twice, again),
        (0, 0, 0),
        "lost, completed twice, run again after completing; workers {all:?}"
    );
}

#[test]
fn sqlite_kill_9_storm_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    kill_storm(
        &format!("sqlite://{}", dir.path().join("storm.db").display()),
        "SQLite",
    );
}

#[test]
fn postgres_kill_9_storm_loses_and_repeats_nothing() {
    let Some(server) = or_skip(PostgresServer::start()) else {
        return;
    };
    kill_storm(&server.url(), "PostgreSQL");
}

#[test]
fn redis_kill_9_storm_loses_and_repeats_nothing() {
    let Some(server) = or_skip(RedisServer::start()) else {
        return;
    };
    kill_storm(&server.url(), "Redis");
}

#[test]
fn mariadb_kill_9_storm_loses_and_repeats_nothing() {
    let Some(server) = or_skip(MariaDbServer::start()) else {
        return;
    };
    kill_storm(&server.url(), "MariaDB");
}
