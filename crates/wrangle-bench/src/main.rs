//! Queue throughput benchmark on the SQLite store (run it with `bench/queue.sh`).
//!
//! In one run it measures, on a fresh database file:
//! 1. the baseline: claim + complete one task per transaction (what a naive queue does);
//! 2. enqueue of N no-op tasks in batches;
//! 3. end to end claim + run + complete of those N tasks by 1, then 2 worker processes
//!    running a no-op Rust handler with batching on;
//!
//! and prints tasks/s, the ratio to the baseline, and store round trips per task (every
//! call through the `Store` trait, counted by `CountingStore` in the worker processes).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use wrangle::store::{ClaimRequest, CountingStore, Outcome};
use wrangle::{
    NewTask, QueueFilter, Registry, Shutdown, SqliteOptions, SqliteStore, Store, Worker,
    WorkerConfig,
};

/// `--synchronous normal` trades power-loss durability for speed; the default is full.
fn full_sync(args: &[String]) -> bool {
    !args
        .windows(2)
        .any(|w| w[0] == "--synchronous" && w[1] == "normal")
}

async fn open(path: &Path, full_sync: bool) -> SqliteStore {
    let options = SqliteOptions {
        full_sync,
        ..SqliteOptions::default()
    };
    SqliteStore::open_with(path, options)
        .await
        .expect("open store")
}

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("worker") {
        return worker_process(
            Path::new(&args[2]),
            arg(&args, "--runners", 2 * arg(&args, "--batch", 100)),
            arg(&args, "--batch", 100),
            full_sync(&args),
        )
        .await;
    }
    let tasks = arg(&args, "--tasks", 100_000);
    let baseline_tasks = arg(&args, "--baseline-tasks", 5_000);
    let batch = arg(&args, "--batch", 1000);
    let dir = tempfile::tempdir().expect("temp dir");

    let full = full_sync(&args);
    let sync_name = if full { "full" } else { "normal" };
    println!(
        "wrangle queue benchmark: SQLite store (WAL, synchronous={sync_name}), no-op Rust handler"
    );
    println!(
        "{tasks} tasks, claim batch {batch}, {} CPUs\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let baseline = baseline(
        &open(&dir.path().join("baseline.db"), full).await,
        baseline_tasks,
    )
    .await;
    let mut rows = vec![row(
        "baseline: claim+complete, 1 task per transaction",
        baseline,
        baseline,
        None,
    )];

    for processes in [1usize, 2] {
        let db = dir.path().join(format!("e2e-{processes}.db"));
        let store = open(&db, full).await;
        let enqueue_rate = enqueue(&store, tasks).await;
        if processes == 1 {
            rows.push(row(
                "enqueue, batches of 1000",
                enqueue_rate,
                baseline,
                None,
            ));
        }
        let (rate, round_trips) = end_to_end(&db, tasks, processes, batch, full).await;
        rows.push(row(
            &format!("claim+run+complete, {processes} worker process(es)"),
            rate,
            baseline,
            Some(round_trips),
        ));
    }
    println!(
        "{:<52} {:>12} {:>12} {:>16}",
        "measure", "tasks/s", "vs baseline", "round trips/task"
    );
    for r in rows {
        println!("{r}");
    }
}

fn row(name: &str, rate: f64, baseline: f64, round_trips: Option<f64>) -> String {
    format!(
        "{:<52} {:>12.0} {:>11.2}x {:>16}",
        name,
        rate,
        rate / baseline,
        round_trips.map_or("-".into(), |r| format!("{r:.4}"))
    )
}

fn noop_tasks(n: usize) -> Vec<NewTask> {
    (0..n)
        .map(|i| NewTask::new("noop", json!({"i": i})))
        .collect()
}

async fn enqueue(store: &SqliteStore, n: usize) -> f64 {
    let started = Instant::now();
    for chunk in noop_tasks(n).chunks(1000) {
        store
            .enqueue_batch(chunk.to_vec(), Utc::now())
            .await
            .expect("enqueue");
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Claim one, complete one, each in its own transaction: the per-task cost batching removes.
async fn baseline(store: &SqliteStore, n: usize) -> f64 {
    for chunk in noop_tasks(n).chunks(1000) {
        store
            .enqueue_batch(chunk.to_vec(), Utc::now())
            .await
            .expect("enqueue");
    }
    let started = Instant::now();
    loop {
        let claimed = store
            .claim_batch(ClaimRequest {
                worker: "baseline".into(),
                queues: QueueFilter::All,
                limit: 1,
                lease: Duration::from_secs(60),
                now: Utc::now(),
            })
            .await
            .expect("claim");
        let Some(task) = claimed.into_iter().next() else {
            break;
        };
        store
            .complete_batch(
                &[task.completion(
                    "baseline",
                    Outcome::Succeeded {
                        result: Value::Null,
                    },
                )],
                Utc::now(),
            )
            .await
            .expect("complete");
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Tasks not yet finished, read through the small partial indexes so that watching the
/// run does not slow it down (a full count over the table would).
async fn unfinished(db: &sqlx::SqlitePool) -> i64 {
    sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM tasks INDEXED BY tasks_due
                 WHERE state IN ('scheduled', 'available', 'retryable'))
              + (SELECT count(*) FROM tasks INDEXED BY tasks_lease WHERE state = 'running')",
    )
    .fetch_one(db)
    .await
    .expect("count unfinished")
}

/// Runs `processes` worker processes until all `n` tasks are completed.
async fn end_to_end(
    db: &Path,
    n: usize,
    processes: usize,
    batch: usize,
    full_sync: bool,
) -> (f64, f64) {
    let exe: PathBuf = std::env::current_exe().expect("own path");
    let started = Instant::now();
    let children: Vec<_> = (0..processes)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "worker",
                    db.to_str().expect("utf-8 path"),
                    "--batch",
                    &batch.to_string(),
                ])
                .args(["--synchronous", if full_sync { "full" } else { "normal" }])
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn worker")
        })
        .collect();
    let watcher = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("watch");
    while unfinished(&watcher).await > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut calls = 0u64;
    for child in children {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let out = child.wait_with_output().expect("worker exit");
        let report: Value = serde_json::from_slice(&out.stdout).expect("worker report");
        calls += report["calls"].as_u64().unwrap_or(0);
    }
    (n as f64 / elapsed, calls as f64 / n as f64)
}

/// A worker process: no-op handler, counts its store calls, prints them on SIGTERM.
async fn worker_process(db: &Path, runners: usize, batch: usize, full_sync: bool) {
    let store = Arc::new(CountingStore::new(Arc::new(open(db, full_sync).await)));
    let mut registry = Registry::new();
    registry.handle("noop", |_ctx, _payload| async {
        Ok::<_, String>(Value::Null)
    });
    let mut config = WorkerConfig::new();
    config.runners = runners;
    config.batch_size = batch;
    let shutdown = Shutdown::new();
    let graceful = shutdown.graceful.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal");
        term.recv().await;
        graceful.cancel();
    });
    let report = Worker::new(store.clone(), registry, config)
        .run(shutdown)
        .await
        .expect("worker");
    println!(
        "{}",
        json!({"calls": store.calls(), "succeeded": report.succeeded})
    );
}
