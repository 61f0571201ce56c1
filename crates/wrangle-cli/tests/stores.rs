//! Multi-process tests of the shared stores (PostgreSQL, Redis, MariaDB), each against its
//! own throwaway server from `wrangle-testkit`:
//!
//! - 4 worker processes drain 20,000 tasks: none lost, none completed twice, every side
//!   effect exactly once;
//! - `wrangle submit --wait` round trip through the real binary, with a real
//!   `wrangle worker --exec` process, both given the store by `--store URL`, also with
//!   the worker started while the server is down.
//!
//! The worker processes of the first are a [`fleet`]. Faults (kill -9, store crashes,
//! network faults, clock skew) are `faults.rs`.
//!
//! Without servers (no binaries, no root to install them) the tests skip, except under
//! `CI=true` or `WRANGLE_TEST_REQUIRE_SERVERS=1`, where they fail.

mod fleet;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fleet::*;
use serde_json::Value;
use wrangle_testkit::{MariaDbServer, PostgresServer, RedisServer, or_skip};

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
        clock_skew: chrono::TimeDelta::zero(),
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

// --- 2. the CLI round trip ---------------------------------------------------------------

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
