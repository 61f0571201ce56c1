//! End-to-end tests of live control (issue 6) through the real binary and real worker
//! processes: pools scaled from another shell with graceful retirement, queue pause on
//! every store, reload of a changed runner script without failing a task, autoscaling
//! with its logged reasons, TTIN/TTOU, lost workers, crash-looping and oversized runners.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Sandbox, signal, text, wait_for};
use serde_json::Value;
use wrangle_testkit::{MariaDbServer, PostgresServer, RedisServer, or_skip};

/// Group `group` of worker `name`: (runners, tasks running).
fn group(sandbox: &Sandbox, name: &str, group: &str) -> Option<(u64, usize)> {
    let found = sandbox.pool_group(name, group)?;
    Some((found["runners"].as_u64()?, found["tasks"].as_array()?.len()))
}

/// `count` tasks of kind `k` on `queue`, with no retries.
fn submit(sandbox: &Sandbox, queue: &str, count: usize) -> Vec<i64> {
    (0..count)
        .map(|_| sandbox.submit("k", "{}", queue))
        .collect()
}

#[test]
fn a_pool_scaled_from_another_shell_serves_3_runners_within_2s_and_retires_gracefully() {
    let mut sandbox = Sandbox::sqlite();
    sandbox.spawn_worker(
        "pw",
        &["--pool", "a=1:b=1", "--exec", "sleep 3", "--lease", "5s"],
    );
    wait_for("the worker to register", Duration::from_secs(20), || {
        group(&sandbox, "pw", "a")
    });
    let ids = submit(&sandbox, "a", 12);
    wait_for("one task of a running", Duration::from_secs(20), || {
        (group(&sandbox, "pw", "a")? == (1, 1)).then_some(())
    });

    let out = sandbox.ok(&["workers", "scale", "pw", "a=3"]);
    assert!(out.contains("group a: 1 -> 3 runners"), "{out}");
    let scaled = Instant::now();
    wait_for("three runners busy on a", Duration::from_secs(2), || {
        (group(&sandbox, "pw", "a")? == (3, 3)).then_some(())
    });
    eprintln!(
        "3 runners serve a {:?} after the scale command",
        scaled.elapsed()
    );
    assert_eq!(
        group(&sandbox, "pw", "b").unwrap().0,
        1,
        "group b untouched"
    );

    // Back to 1: the two removed runners finish their tasks first.
    let running: Vec<i64> = sandbox.worker("pw").unwrap()["info"]["pool"][0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect();
    assert_eq!(running.len(), 3);
    let out = sandbox.ok(&["workers", "scale", "pw", "a=1"]);
    assert!(
        out.contains("2 removed runners finish their tasks first"),
        "{out}"
    );
    for id in &running {
        let done = wait_for("a running task to finish", Duration::from_secs(20), || {
            let t = sandbox.task(*id);
            (t["state"] != "running").then_some(t)
        });
        assert_eq!(done["state"], "completed", "{done}");
        assert_eq!(done["attempts"].as_array().unwrap().len(), 1, "{done}");
    }
    // From then on one task of a at a time.
    for _ in 0..10 {
        let (runners, busy) = group(&sandbox, "pw", "a").unwrap();
        assert_eq!(runners, 1);
        assert!(busy <= 1, "{busy} tasks of a after scaling to 1");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(ids.iter().all(|id| sandbox.task(*id)["state"] != "dead"));
}

/// `queues pause` on one store: a running worker claims nothing from the queue a second
/// after the command returned; `resume` lets it drain the queue.
fn pause_stops_claims_within_a_second(url: &str) {
    let mut sandbox = Sandbox::on(url);
    let started = sandbox.path("started");
    let exec = format!("sh -c 'echo $WRANGLE_TASK_ID >> {}'", started.display());
    sandbox.spawn_worker("pz", &["-q", "a", "-n", "2", "--exec", &exec]);
    let warm = submit(&sandbox, "a", 3);
    wait_for(
        "the first tasks to complete",
        Duration::from_secs(30),
        || {
            warm.iter()
                .all(|id| sandbox.task(*id)["state"] == "completed")
                .then_some(())
        },
    );
    sandbox.ok(&["queues", "pause", "a"]);
    let paused_at = Instant::now();
    let held = submit(&sandbox, "a", 10);
    std::thread::sleep(Duration::from_millis(1500));
    let ran = std::fs::read_to_string(&started).unwrap_or_default();
    for id in &held {
        assert!(
            !ran.lines().any(|l| l == id.to_string()),
            "task {id} started {:?} after the pause",
            paused_at.elapsed()
        );
        assert_eq!(sandbox.task(*id)["state"], "available");
    }
    sandbox.ok(&["queues", "resume", "a"]);
    wait_for(
        "the held tasks to run after resume",
        Duration::from_secs(30),
        || {
            held.iter()
                .all(|id| sandbox.task(*id)["state"] == "completed")
                .then_some(())
        },
    );
}

#[test]
fn sqlite_pause_stops_claims_within_a_second() {
    let sandbox = Sandbox::sqlite();
    pause_stops_claims_within_a_second(sandbox.store());
}

#[test]
fn postgres_pause_stops_claims_within_a_second() {
    let Some(server) = or_skip(PostgresServer::start()) else {
        return;
    };
    pause_stops_claims_within_a_second(&server.url());
}

#[test]
fn redis_pause_stops_claims_within_a_second() {
    let Some(server) = or_skip(RedisServer::start()) else {
        return;
    };
    pause_stops_claims_within_a_second(&server.url());
}

#[test]
fn mariadb_pause_stops_claims_within_a_second() {
    let Some(server) = or_skip(MariaDbServer::start()) else {
        return;
    };
    pause_stops_claims_within_a_second(&server.url());
}

/// A runner script answering every task with its version after a short pause.
fn runner_script(version: &str) -> String {
    format!(
        r#"import json, sys, time
for line in sys.stdin:
    request = json.loads(line)
    time.sleep(0.05)
    print(json.dumps({{"id": request["id"], "ok": True, "result": "{version}"}}), flush=True)
"#
    )
}

/// A sandbox whose worker `name` runs kind `k` on two processes of [`runner_script`] v1.
fn runner_worker(name: &str) -> Sandbox {
    let mut sandbox = Sandbox::sqlite();
    std::fs::write(sandbox.path("runner.py"), runner_script("v1")).unwrap();
    std::fs::write(
        sandbox.path("wrangle.toml"),
        "[kinds.k]\nrunner = [\"python3\", \"runner.py\"]\n",
    )
    .unwrap();
    sandbox.spawn_worker(name, &["-n", "2"]);
    sandbox
}

#[test]
fn reload_runs_later_tasks_on_the_changed_script_and_fails_none() {
    let sandbox = runner_worker("rw");
    let before = submit(&sandbox, "default", 30);
    sandbox.wait_for_state(before[5], "completed", Duration::from_secs(30));
    std::fs::write(sandbox.path("runner.py"), runner_script("v2")).unwrap();
    let out = sandbox.ok(&["workers", "reload", "rw"]);
    assert!(out.contains("reloaded"), "{out}");
    let after = submit(&sandbox, "default", 20);
    // SIGHUP reloads too (the script is unchanged by then: still v2).
    signal(&sandbox.workers[0], nix::sys::signal::Signal::SIGHUP);
    let later = submit(&sandbox, "default", 10);
    let all: Vec<i64> = before.iter().chain(&after).chain(&later).copied().collect();
    wait_for("every task to finish", Duration::from_secs(60), || {
        all.iter()
            .all(|id| {
                sandbox.task(*id)["state"] != "available" && sandbox.task(*id)["state"] != "running"
            })
            .then_some(())
    });
    for id in &all {
        let t = sandbox.task(*id);
        assert_eq!(
            t["state"], "completed",
            "no task fails because of a reload: {t}"
        );
        assert_eq!(t["attempts"].as_array().unwrap().len(), 1, "{t}");
    }
    for id in after.iter().chain(&later) {
        assert_eq!(
            sandbox.task(*id)["result"],
            "v2",
            "task {id} after the reload"
        );
    }
    assert_eq!(sandbox.task(before[0])["result"], "v1");
    let logs = sandbox.worker_logs();
    assert!(logs.matches("control: reloaded").count() >= 2, "{logs}");
}

/// resque-pool-dynamic's habit: edit `[pool]`, send HUP. Groups are added, resized and
/// removed as edited (a removed group's running tasks finish), the reply in the log says
/// what changed, a group the file left alone keeps a hand-made scale, and no task fails.
#[test]
fn an_edited_pool_and_hup_add_resize_and_remove_groups_and_fail_nothing() {
    let mut sandbox = Sandbox::sqlite();
    let file = sandbox.path("wrangle.toml");
    let config = |pool: &str| {
        std::fs::write(
            &file,
            format!("[kinds.k]\nexec = [\"sleep\", \"1\"]\n[pool]\n{pool}"),
        )
        .unwrap();
    };
    config("a = 1\nb = 2\n");
    sandbox.spawn_worker("hw", &["--lease", "5s"]);
    wait_for("the worker to register", Duration::from_secs(20), || {
        group(&sandbox, "hw", "b")
    });
    let ids: Vec<i64> = ["a", "b", "c"]
        .iter()
        .flat_map(|queue| submit(&sandbox, queue, 8))
        .collect();
    wait_for("b busy", Duration::from_secs(20), || {
        (group(&sandbox, "hw", "b")?.1 > 0).then_some(())
    });

    config("a = 3\nc = 1\n");
    signal(&sandbox.workers[0], nix::sys::signal::Signal::SIGHUP);
    wait_for("the pool as edited", Duration::from_secs(10), || {
        let (a, b, c) = (
            group(&sandbox, "hw", "a")?.0,
            group(&sandbox, "hw", "b").map_or(0, |g| g.0),
            group(&sandbox, "hw", "c")?.0,
        );
        (a, b, c).eq(&(3, 0, 1)).then_some(())
    });
    let served: Vec<i64> = ids[..8].iter().chain(&ids[16..]).copied().collect();
    wait_for("a's and c's tasks", Duration::from_secs(60), || {
        served
            .iter()
            .all(|id| sandbox.task(*id)["state"] == "completed")
            .then_some(())
    });
    // A group scaled by hand keeps its runners when a reload finds the file unchanged.
    sandbox.ok(&["workers", "scale", "hw", "c=2"]);
    sandbox.ok(&["workers", "reload", "hw"]);
    assert_eq!(group(&sandbox, "hw", "c").map(|g| g.0), Some(2));
    let logs = sandbox.worker_logs();
    for change in [
        "group a: 1 -> 3 runners",
        "added group c with 1 runners",
        "group b removed",
    ] {
        assert!(logs.contains(change), "{change}: {logs}");
    }
    for id in &ids {
        let t = sandbox.task(*id);
        assert!(
            t["state"] == "completed" || t["state"] == "available",
            "no task fails or is stuck because of a reload: {t}"
        );
        assert!(t["attempts"].as_array().unwrap().len() <= 1, "{t}");
    }
}

/// The pid of each runner process of worker `name`, by runner number.
fn runner_pids(sandbox: &Sandbox, name: &str) -> std::collections::BTreeMap<u64, u64> {
    sandbox
        .worker(name)
        .map(|w| w["info"]["processes"].clone())
        .and_then(|p| p.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|p| (p["runner"].as_u64().unwrap(), p["pid"].as_u64().unwrap()))
        .collect()
}

/// DScript reloaded the script on one runner: `workers reload NAME --runner 2` replaces
/// runner 2's process after its current tasks and leaves runner 1's alone; no task fails;
/// a runner with no process is a clear refusal.
#[test]
fn reload_of_one_runner_replaces_only_its_process() {
    let sandbox = runner_worker("rw");
    let first = submit(&sandbox, "default", 20);
    let before = wait_for("two runner processes", Duration::from_secs(30), || {
        let pids = runner_pids(&sandbox, "rw");
        (pids.len() == 2).then_some(pids)
    });
    let out = sandbox.ok(&["workers", "reload", "rw", "--runner", "2"]);
    assert!(out.contains("runner 2: 1 process(es) replaced"), "{out}");
    let second = submit(&sandbox, "default", 20);
    let after = wait_for("runner 2's new process", Duration::from_secs(30), || {
        let pids = runner_pids(&sandbox, "rw");
        (pids.get(&2).is_some_and(|pid| Some(pid) != before.get(&2))).then_some(pids)
    });
    assert_eq!(after.get(&1), before.get(&1), "runner 1 kept its process");
    for id in first.iter().chain(&second) {
        let t = sandbox.wait_for_state(*id, "completed", Duration::from_secs(30));
        assert_eq!(t["attempts"].as_array().unwrap().len(), 1, "{t}");
    }
    let refused = sandbox.run(&["workers", "reload", "rw", "--runner", "9"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("runner 9 has no process running"),
        "{}",
        text(&refused.stderr)
    );
    sandbox.usage_error(&["workers", "reload", "rw", "--runner", "0"]);
}

#[test]
fn autoscale_grows_with_a_backlog_then_shrinks_to_1_and_logs_why() {
    let mut sandbox = Sandbox::sqlite();
    sandbox.spawn_worker(
        "aw",
        &[
            "-q",
            "s",
            "-n",
            "1",
            "--exec",
            "sleep 1",
            "--autoscale",
            "1..8",
            "--autoscale-interval",
            "200ms",
            "--autoscale-max-load",
            "1000",
        ],
    );
    sandbox.wait_for_worker("aw", Duration::from_secs(20));
    let ids = submit(&sandbox, "s", 40);
    let mut most = 0;
    wait_for("the backlog to drain", Duration::from_secs(90), || {
        most = most.max(group(&sandbox, "aw", "s").map_or(0, |g| g.0));
        ids.iter()
            .all(|id| sandbox.task(*id)["state"] == "completed")
            .then_some(())
    });
    assert!(most >= 4, "the worker grew only to {most} runners");
    wait_for(
        "the worker to shrink back to 1",
        Duration::from_secs(60),
        || (group(&sandbox, "aw", "s")?.0 == 1).then_some(()),
    );
    let logs = sandbox.worker_logs();
    assert!(
        logs.contains("autoscale:") && logs.contains("tasks waiting"),
        "{logs}"
    );
    assert!(logs.contains("autoscale: idle"), "{logs}");
    eprintln!("autoscale peaked at {most} runners");
}

#[test]
fn ttin_and_ttou_add_and_remove_a_runner() {
    let mut sandbox = Sandbox::sqlite();
    sandbox.spawn_worker("sw", &["-n", "1", "--exec", "true"]);
    sandbox.wait_for_worker("sw", Duration::from_secs(20));
    for _ in 0..2 {
        signal(&sandbox.workers[0], nix::sys::signal::Signal::SIGTTIN);
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for("3 runners", Duration::from_secs(5), || {
        (sandbox.worker("sw")?["info"]["runners"] == 3).then_some(())
    });
    signal(&sandbox.workers[0], nix::sys::signal::Signal::SIGTTOU);
    wait_for("2 runners", Duration::from_secs(5), || {
        (sandbox.worker("sw")?["info"]["runners"] == 2).then_some(())
    });
}

#[test]
fn a_killed_worker_is_shown_lost_then_pruned() {
    let mut sandbox = Sandbox::sqlite();
    sandbox.spawn_worker("victim", &["-n", "1", "--exec", "true", "--lease", "1s"]);
    sandbox.spawn_worker("survivor", &["-n", "1", "--exec", "true", "--lease", "1s"]);
    wait_for("both workers registered", Duration::from_secs(20), || {
        (sandbox.worker("victim").is_some() && sandbox.worker("survivor").is_some()).then_some(())
    });
    signal(&sandbox.workers[0], nix::sys::signal::Signal::SIGKILL);
    let _ = sandbox.workers[0].wait();
    wait_for("victim shown lost", Duration::from_secs(10), || {
        let table = sandbox.ok(&["workers", "list"]);
        table
            .lines()
            .any(|l| l.starts_with("victim") && l.ends_with("LOST"))
            .then_some(())
    });
    wait_for("victim pruned", Duration::from_secs(20), || {
        sandbox.worker("victim").is_none().then_some(())
    });
    assert!(sandbox.worker("survivor").is_some());
    assert!(
        sandbox
            .worker_logs()
            .contains("removed lost workers from the registry")
    );
}

#[test]
fn a_crash_looping_runner_backs_off_and_is_reported() {
    let mut sandbox = Sandbox::sqlite();
    std::fs::write(
        sandbox.path("crash.sh"),
        "#!/bin/sh\necho start >> starts\nexit 1\n",
    )
    .unwrap();
    std::fs::write(
        sandbox.path("wrangle.toml"),
        "[kinds.k]\nrunner = [\"sh\", \"crash.sh\"]\n",
    )
    .unwrap();
    sandbox.spawn_worker("cw", &["-n", "1", "--backoff", "10ms"]);
    let ids: Vec<i64> = (0..5)
        .map(|_| {
            sandbox
                .ok(&["submit", "k", "{}", "--retries", "100"])
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_secs(4));
    let starts = std::fs::read_to_string(sandbox.path("starts"))
        .unwrap_or_default()
        .lines()
        .count();
    // 100, 200, 400, 800, 1600 ms pauses: about 6 starts in 4 s, not hundreds.
    assert!((2..=12).contains(&starts), "{starts} runner starts in 4 s");
    let logs = sandbox.worker_logs();
    assert!(logs.contains("runner exited; starting it again"), "{logs}");
    assert!(
        ids.iter()
            .all(|id| sandbox.task(*id)["state"] != "completed")
    );
}

#[test]
fn a_runner_past_max_runner_memory_is_replaced_after_its_task() {
    let mut sandbox = Sandbox::sqlite();
    // Each task keeps 40 MiB more alive; the limit is 100 MiB.
    std::fs::write(
        sandbox.path("hog.py"),
        r#"import json, os, sys
kept = []
for line in sys.stdin:
    request = json.loads(line)
    kept.append(bytearray(40 << 20))
    print(json.dumps({"id": request["id"], "ok": True, "result": os.getpid()}), flush=True)
"#,
    )
    .unwrap();
    std::fs::write(
        sandbox.path("wrangle.toml"),
        "[kinds.k]\nrunner = [\"python3\", \"hog.py\"]\n",
    )
    .unwrap();
    sandbox.spawn_worker("mw", &["-n", "1", "--max-runner-memory", "100M"]);
    let ids = submit(&sandbox, "default", 8);
    let results: Vec<Value> = ids
        .iter()
        .map(|id| {
            wait_for("a task to finish", Duration::from_secs(60), || {
                let t = sandbox.task(*id);
                (t["state"] != "available" && t["state"] != "running").then_some(t)
            })
        })
        .collect();
    for t in &results {
        assert_eq!(t["state"], "completed", "{t}");
    }
    let pids: BTreeSet<String> = results.iter().map(|t| t["result"].to_string()).collect();
    assert!(pids.len() >= 2, "the runner was never replaced: {pids:?}");
    let logs = sandbox.worker_logs();
    assert!(logs.contains("grew past --max-runner-memory"), "{logs}");
}
