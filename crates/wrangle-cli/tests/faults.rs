//! The fault suite: real worker processes ([`fleet`]) on every store (SQLite, and
//! PostgreSQL, Redis and MariaDB each on a throwaway server from `wrangle-testkit`) while
//! faults are injected, each task's side effects counted outside wrangle and compared with
//! the store: no task lost, none completed twice, none run again after it completed.
//!
//! - the server crashed (or stopped) and restarted under 2 running workers;
//! - kill -9 storms: a random worker killed every 2 s and replaced;
//! - network faults between workers and the store ([`FaultProxy`]: stalls past the lease,
//!   resets, delays) and a slow store (every round trip slower);
//! - clock skew within the documented tolerance (a third of the lease);
//! - all of these mixed, with store crashes among them;
//! - load: many tasks through 8 workers (1,000,000 in `scripts/chaos.sh`).
//!
//! Each run appends a row to `$WRANGLE_CHAOS_REPORT` when set: `scripts/chaos.sh` runs
//! these at length (`WRANGLE_CHAOS_SECONDS`) and writes `docs/reliability.md`; CI runs the
//! short form.

mod fleet;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet::*;
use wrangle::{Store, TaskId, TaskState};
use wrangle_testkit::{
    FaultProxy, MariaDbServer, PostgresServer, RedisServer, ReliabilityRow, or_skip,
};

/// One test per store, in a module named `$name` (so `$name::postgres` and so on), each
/// calling `$run(url, store_name)`: SQLite in a temp dir, the others on a throwaway
/// server of their own.
macro_rules! on_every_store {
    ($name:ident, $run:ident) => {
        mod $name {
            use super::*;

            #[test]
            fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                $run(&sqlite_url(&dir), "SQLite");
            }

            #[test]
            fn postgres() {
                let Some(server) = or_skip(PostgresServer::start()) else {
                    return;
                };
                $run(&server.url(), "PostgreSQL");
            }

            #[test]
            fn redis() {
                let Some(server) = or_skip(RedisServer::start()) else {
                    return;
                };
                $run(&server.url(), "Redis");
            }

            #[test]
            fn mariadb() {
                let Some(server) = or_skip(MariaDbServer::start()) else {
                    return;
                };
                $run(&server.url(), "MariaDB");
            }
        }
    };
}

/// As [`on_every_store`], for the server stores only: `$run(&mut server, store_name)`.
macro_rules! on_every_server {
    ($name:ident, $run:ident) => {
        mod $name {
            use super::*;

            // With fsync on: `start()` runs with it off, which also survives a process
            // kill (the data sits in the page cache), but a crash test should run what a
            // deployment runs.
            #[test]
            fn postgres() {
                let Some(mut server) = or_skip(PostgresServer::start_durable()) else {
                    return;
                };
                $run(&mut server, "PostgreSQL");
            }

            #[test]
            fn redis() {
                let Some(mut server) = or_skip(RedisServer::start()) else {
                    return;
                };
                $run(&mut server, "Redis");
            }

            #[test]
            fn mariadb() {
                let Some(mut server) = or_skip(MariaDbServer::start()) else {
                    return;
                };
                $run(&mut server, "MariaDB");
            }
        }
    };
}

// --- 1. the server restarts under running workers -----------------------------------------

const CHAOS_TASKS: usize = 3_000;

/// How the server goes away.
#[derive(Debug, Clone, Copy)]
enum Outage {
    /// SIGKILL: a crash.
    Kill,
    /// A clean shutdown.
    Stop,
}

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
        clock_skew: chrono::TimeDelta::zero(),
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

/// How a store goes away in the crash tests.
///
/// PostgreSQL and MariaDB are killed (SIGKILL): PostgreSQL runs with its durable settings
/// there (see `on_every_server`), and InnoDB keeps its durable default
/// (`innodb_flush_log_at_trx_commit=1`), so every committed transaction survives and the
/// restart runs crash recovery.
///
/// Redis is stopped cleanly (SIGTERM), not killed: the testkit server persists with AOF
/// and `appendfsync everysec`, under which a SIGKILL may lose acknowledged writes of about
/// the last second by design (Redis may postpone the AOF write while an fsync is still
/// running). A lost write would make tasks run again or vanish for reasons that are
/// Redis's configuration, not wrangle's; a clean stop flushes and fsyncs the AOF, so
/// every acknowledged write survives and the test can demand exactly-once completion.
fn crash_of(store_name: &str) -> Outage {
    if store_name == "Redis" {
        Outage::Stop
    } else {
        Outage::Kill
    }
}

fn store_restarted_under_two_workers(server: &mut dyn Server, store_name: &str) {
    server_restart_under_running_workers(server, store_name, crash_of(store_name));
}

on_every_server!(
    store_restarted_under_two_workers_loses_and_duplicates_nothing,
    store_restarted_under_two_workers
);

// --- 2. a fault run ------------------------------------------------------------------------

/// A fault run in progress: tasks enqueued on a store, worker processes working on them
/// (`live`) and those killed so far (`dead`, whose side effects still count).
struct FaultRun {
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    store: Arc<dyn Store>,
    ids: Vec<TaskId>,
    /// Tasks completed in the store before this run's (an earlier run on the same server).
    completed_before: u64,
    spec: WorkerSpec,
    live: Vec<WorkerProcess>,
    dead: Vec<WorkerProcess>,
    started: usize,
}

/// 2 runners, batches of 10, 1 s leases and 50 ms tasks: 4 such workers run at most 160
/// tasks/s, so a run of `storm_length() × 200` tasks outlasts the faults and every fault
/// interrupts work.
const FAULT_SPEC: WorkerSpec = WorkerSpec {
    runners: 2,
    batch: 10,
    lease: Duration::from_secs(1),
    sleep: Duration::from_millis(50),
    clock_skew: chrono::TimeDelta::zero(),
};

impl FaultRun {
    /// Enqueues `tasks` tasks on the store at `url` (creating it).
    fn new(url: &str, tasks: usize, spec: WorkerSpec) -> Self {
        let rt = runtime();
        let store = rt.block_on(wrangle::connect(url)).expect("connect");
        let completed_before = rt
            .block_on(counts(&store))
            .expect("counts")
            .get(&TaskState::Completed)
            .copied()
            .unwrap_or(0);
        let ids = rt.block_on(enqueue(&store, tasks));
        FaultRun {
            completed_before,
            dir: tempfile::tempdir().unwrap(),
            rt,
            store,
            ids,
            spec,
            live: Vec::new(),
            dead: Vec::new(),
            started: 0,
        }
    }

    /// Starts a worker process on `url` (the store's, or a proxy's in front of it).
    fn start(&mut self, url: &str, spec: WorkerSpec) {
        self.started += 1;
        let name = format!("w{}", self.started);
        self.live
            .push(WorkerProcess::start(self.dir.path(), &name, url, spec));
    }

    /// Kills a live worker with SIGKILL (the `pick`th, modulo how many live) and starts
    /// another on the same URL in its place.
    fn kill_and_replace(&mut self, pick: usize) {
        let mut killed = self.live.remove(pick % self.live.len());
        if let Some(mut child) = killed.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let url = killed.url.clone();
        self.dead.push(killed);
        self.start(&url, self.spec);
    }

    /// Side effects so far.
    fn ran(&self) -> usize {
        effect_count(&self.live) + effect_count(&self.dead)
    }

    /// Waits until every task is completed (or none completes for 2 minutes), stops the workers, counts
    /// and records the row, and asserts that nothing was lost, completed twice or run
    /// again after completing. `last_fault` is when the faults ended; `ran_during` the side
    /// effects by then, which must be fewer than the tasks (the faults interrupted work).
    /// Returns the tasks and side effects for further checks.
    fn finish(
        mut self,
        fault: &str,
        store_name: &str,
        last_fault: Instant,
        ran_during: usize,
    ) -> (
        BTreeMap<TaskId, wrangle::Task>,
        BTreeMap<TaskId, Vec<Effect>>,
    ) {
        let n = self.ids.len();
        let target = self.completed_before + n as u64;
        let store = &self.store;
        self.rt.block_on(async {
            // Work that goes on is waited for, however slowly a loaded machine does it:
            // only two minutes without a single task completing end the wait (and what
            // is not completed then counts as lost). Long runs look less often, since
            // counting a million tasks is work for the store too.
            let stalled_after = Duration::from_secs(120);
            let every = Duration::from_millis((n as u64 / 1000).clamp(50, 1000));
            let (mut last_done, mut last_progress) = (0, Instant::now());
            loop {
                let done = counts(store)
                    .await
                    .ok()
                    .and_then(|c| c.get(&TaskState::Completed).copied())
                    .unwrap_or(0);
                if done >= target || last_progress.elapsed() > stalled_after {
                    return;
                }
                if done > last_done {
                    (last_done, last_progress) = (done, Instant::now());
                }
                tokio::time::sleep(every).await;
            }
        });
        let recovery = last_fault.elapsed();
        for worker in &mut self.live {
            worker.assert_alive("after the faults");
            worker.stop();
        }
        let tasks = self.rt.block_on(all_tasks(&self.store));
        let mut workers = std::mem::take(&mut self.live);
        workers.append(&mut self.dead);
        let effects = effects(&workers);
        let (lost, twice, again) = tally(&self.ids, &tasks, &effects);
        ReliabilityRow {
            fault,
            store: store_name,
            tasks: n,
            lost,
            completed_twice: twice,
            run_after_completing: again,
            recovery,
        }
        .record();
        assert!(
            ran_during < n,
            "all {n} tasks ran before the faults ended: they interrupted nothing"
        );
        let names: Vec<_> = workers.iter().map(|w| w.name.clone()).collect();
        assert_eq!(
            (lost, twice, again),
            (0, 0, 0),
            "{fault} on {store_name}: lost, completed twice, run again after completing; \
             workers {names:?}"
        );
        (tasks, effects)
    }
}

/// Calls `strike(step)` for steps 0, 1, 2, … until [`storm_length`] has passed, each at
/// least 2 s after the previous one began.
fn every_two_seconds(mut strike: impl FnMut(usize)) -> Instant {
    let length = storm_length();
    let began = Instant::now();
    let mut step = 0;
    while began.elapsed() < length {
        let due = Instant::now() + Duration::from_secs(2);
        strike(step);
        step += 1;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    Instant::now()
}

/// A pseudo-random choice per step (a fixed sequence, so runs are repeatable).
fn pick(step: usize) -> usize {
    (step * 31 + 17) % 101
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("faults.db").display())
}

// --- 3. kill -9 storms ---------------------------------------------------------------------

/// 4 worker processes work through tasks while every 2 s a random one is killed with
/// SIGKILL and a new one started in its place, for [`storm_length`]; then the last ones
/// finish the rest. The recovery time is from the last kill until every task is completed.
fn kill_storm(url: &str, store_name: &str) {
    let mut run = FaultRun::new(url, storm_length().as_secs() as usize * 200, FAULT_SPEC);
    for _ in 0..4 {
        run.start(url, FAULT_SPEC);
    }
    let last = every_two_seconds(|step| {
        std::thread::sleep(Duration::from_secs(2));
        run.kill_and_replace(pick(step));
    });
    let ran = run.ran();
    let fault = format!(
        "kill -9 storm: a worker every 2 s for {} s",
        storm_length().as_secs()
    );
    run.finish(&fault, store_name, last, ran);
}

on_every_store!(kill_9_storm_loses_and_repeats_nothing, kill_storm);

// --- 4. network faults and a slow store ------------------------------------------------------

/// 4 worker processes, 2 of them reaching the store through a [`FaultProxy`], which in
/// turn every 2 s: stalls their connections for 2.5 s (past the 1 s lease, so the other
/// two rescue their tasks, and the cut-off workers come back to find them gone), resets
/// every connection (RST), and delays each reply by 100 ms.
fn network_faults(server: &mut dyn Server, store_name: &str) {
    let (proxy, run) = half_behind_a_proxy(server);
    let last = every_two_seconds(|step| strike_network(&proxy, step));
    let ran = run.ran();
    let fault = format!(
        "network: 2 of 4 workers' connections stalled 2.5 s, reset, delayed 100 ms, in turn for {} s",
        storm_length().as_secs()
    );
    run.finish(&fault, store_name, last, ran);
}

/// A fault run of 4 workers on `server`, 2 of them reaching it through a new proxy.
fn half_behind_a_proxy(server: &dyn Server) -> (FaultProxy, FaultRun) {
    let url = server.url();
    let proxy = FaultProxy::start(server.port()).expect("proxy");
    let cut = proxy.url_for(&url);
    let mut run = FaultRun::new(&url, storm_length().as_secs() as usize * 200, FAULT_SPEC);
    for url in [&cut, &cut, &url, &url] {
        run.start(url, FAULT_SPEC);
    }
    (proxy, run)
}

/// Strikes network fault number `which` (modulo 3) on `proxy` and lifts it again: a
/// stall of 2.5 s, a reset, or replies delayed 100 ms for 2 s.
fn strike_network(proxy: &FaultProxy, which: usize) {
    match which % 3 {
        0 => {
            proxy.stall();
            std::thread::sleep(Duration::from_millis(2500));
            proxy.heal();
        }
        1 => {
            proxy.reset();
        }
        _ => {
            proxy.delay(Duration::from_millis(100));
            std::thread::sleep(Duration::from_secs(2));
            proxy.heal();
        }
    }
}

/// Every worker reaches the store through a proxy that holds each reply 20 ms, for
/// [`storm_length`]; then the delay is lifted and the rest runs at full speed.
fn slow_store(server: &mut dyn Server, store_name: &str) {
    let url = server.url();
    let proxy = FaultProxy::start(server.port()).expect("proxy");
    let slow = proxy.url_for(&url);
    proxy.delay(Duration::from_millis(20));
    let mut run = FaultRun::new(&url, storm_length().as_secs() as usize * 200, FAULT_SPEC);
    for _ in 0..4 {
        run.start(&slow, FAULT_SPEC);
    }
    std::thread::sleep(storm_length());
    proxy.heal();
    let ran = run.ran();
    let fault = format!(
        "slow store: every round trip 20 ms slower for {} s",
        storm_length().as_secs()
    );
    run.finish(&fault, store_name, Instant::now(), ran);
}

/// Both on one server: the slow store's tasks come after the network faults' ones.
fn network_faults_and_a_slow_store(server: &mut dyn Server, store_name: &str) {
    network_faults(server, store_name);
    slow_store(server, store_name);
}

on_every_server!(
    network_faults_lose_and_repeat_nothing,
    network_faults_and_a_slow_store
);

// --- 5. clock skew -------------------------------------------------------------------------

/// Leases are compared with other machines' clocks: a worker whose clock is ahead sees
/// everyone's leases end early, one whose clock is behind writes leases that end early for
/// everyone else. Heartbeats renew a lease every third of it, so clocks that differ by
/// less than a third of the lease (the documented tolerance) never make a healthy
/// worker's lease look expired, even with one heartbeat late.
///
/// 4 worker processes with 3 s leases, one clock 0.9 s ahead and one 0.9 s behind, run
/// the tasks with no other fault: no task may be rescued from a healthy worker, so each
/// ran exactly once, in its first attempt.
fn clock_skew(url: &str, store_name: &str) {
    let lease = Duration::from_secs(3);
    let skew = chrono::TimeDelta::milliseconds(900);
    let spec = WorkerSpec {
        lease,
        ..FAULT_SPEC
    };
    let mut run = FaultRun::new(url, storm_length().as_secs() as usize * 200, spec);
    for clock_skew in [
        skew,
        -skew,
        chrono::TimeDelta::zero(),
        chrono::TimeDelta::zero(),
    ] {
        run.start(url, WorkerSpec { clock_skew, ..spec });
    }
    std::thread::sleep(storm_length());
    let ran = run.ran();
    let fault = format!(
        "clock skew: 2 of 4 workers 0.9 s ahead and behind (3 s lease) for {} s",
        storm_length().as_secs()
    );
    let (tasks, effects) = run.finish(&fault, store_name, Instant::now(), ran);
    let rescued: Vec<_> = tasks.values().filter(|t| t.attempt != 1).collect();
    assert!(
        rescued.is_empty(),
        "{store_name}: tasks taken from healthy workers under clock skew: {rescued:?}"
    );
    let repeated: Vec<_> = effects.iter().filter(|(_, runs)| runs.len() != 1).collect();
    assert!(repeated.is_empty(), "{store_name}: ran twice: {repeated:?}");
}

on_every_store!(
    clock_skew_within_a_third_of_the_lease_takes_no_task_from_a_healthy_worker,
    clock_skew
);

// --- 6. every fault at once ------------------------------------------------------------------

/// 4 worker processes, 2 behind a [`FaultProxy`], while every 2 s one fault strikes, in a
/// fixed pseudo-random order: a worker killed with SIGKILL and replaced, the proxied
/// connections stalled for 2.5 s, reset or delayed 100 ms, or the server crashed (or
/// stopped) and restarted after 1 s.
fn mixed_faults(server: &mut dyn Server, store_name: &str) {
    let outage = crash_of(store_name);
    let (proxy, mut run) = half_behind_a_proxy(server);
    let last = every_two_seconds(|step| match pick(step) % 5 {
        0 => run.kill_and_replace(pick(step + 1)),
        network @ 1..=3 => strike_network(&proxy, network - 1),
        _ => {
            match outage {
                Outage::Kill => server.kill(),
                Outage::Stop => server.stop(),
            }
            std::thread::sleep(Duration::from_secs(1));
            server.restart();
        }
    });
    let ran = run.ran();
    let fault = format!(
        "mixed: kill -9, stall, reset, delay, store {}, one every 2 s for {} s",
        match outage {
            Outage::Kill => "crash",
            Outage::Stop => "restart",
        },
        storm_length().as_secs()
    );
    run.finish(&fault, store_name, last, ran);
}

on_every_server!(mixed_faults_lose_and_repeat_nothing, mixed_faults);

// --- 7. load ----------------------------------------------------------------------------------

/// How many tasks the load run pushes through: `WRANGLE_LOAD_TASKS` (`scripts/chaos.sh`
/// runs 1,000,000), 10,000 by default (the short form CI runs).
fn load_tasks() -> usize {
    std::env::var("WRANGLE_LOAD_TASKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000)
}

/// 8 worker processes (4 runners each, batches of 100, no-op tasks) drain the load with
/// no fault: every task completed exactly once, every side effect exactly once.
fn load(url: &str, store_name: &str) {
    let spec = WorkerSpec {
        runners: 4,
        batch: 100,
        lease: Duration::from_secs(30),
        sleep: Duration::ZERO,
        clock_skew: chrono::TimeDelta::zero(),
    };
    let n = load_tasks();
    let mut run = FaultRun::new(url, n, spec);
    let began = Instant::now();
    for _ in 0..8 {
        run.start(url, spec);
    }
    let (_, effects) = run.finish(
        &format!("load: {n} tasks, 8 workers, no fault"),
        store_name,
        began,
        0,
    );
    eprintln!(
        "{store_name}: {n} tasks in {:?} ({:.0}/s)",
        began.elapsed(),
        n as f64 / began.elapsed().as_secs_f64()
    );
    assert!(effects.values().all(|runs| runs.len() == 1));
}

on_every_store!(load_with_8_workers_completes_every_task_once, load);
