//! End-to-end tests of retention through the real binary and real worker processes on
//! the embedded SQLite store: finished tasks past their kept time are pruned within one
//! pruning interval while workers run, one worker of the store at a time prunes, no
//! waiting, running or retryable task is ever pruned, `tasks prune` sweeps by hand, and
//! bad settings are one line naming the key.

mod common;

use std::time::Duration;

use common::{Sandbox, text, wait_for};

/// Generous: a loaded 2-core machine builds and runs other tests at the same time.
const PATIENCE: Duration = Duration::from_secs(30);

/// Ids of the tasks in `state`.
fn ids_in(sandbox: &Sandbox, state: &str) -> Vec<i64> {
    let listed = sandbox.json(&["tasks", "list", "--state", state, "--limit", "100000"]);
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect()
}

/// Two workers keep completed tasks 1 s and prune every 300 ms. While tasks keep
/// flowing, completed ones disappear within a second or so of their time, and only one
/// of the workers ever prunes; tasks waiting for later, waiting for a retry, running, and
/// dead (kept forever here) are all still there at the end.
#[test]
fn finished_tasks_go_within_an_interval_and_nothing_unfinished_is_pruned() {
    let mut sandbox = Sandbox::sqlite();
    std::fs::write(
        sandbox.path("task.sh"),
        "case \"$WRANGLE_PAYLOAD\" in\n  *slow*) sleep 30 ;;\n  *fail*) exit 1 ;;\nesac\n",
    )
    .unwrap();
    let retention = [
        "--exec",
        "sh task.sh",
        "-n",
        "3",
        "--keep-completed",
        "1s",
        "--keep-dead",
        "forever",
        "--prune-every",
        "300ms",
        "--backoff",
        "1h",
    ];
    sandbox.spawn_worker("p1", &retention);
    sandbox.spawn_worker("p2", &retention);

    let slow = sandbox.submit("k", r#""slow""#, "default");
    let later = sandbox.ok(&["submit", "k", r#""later""#, "--delay", "1h"]);
    let retrying = sandbox.ok(&["submit", "k", r#""fail""#, "--retries", "3"]);
    let dead = sandbox.ok(&["submit", "k", r#""fail""#, "--retries", "0"]);
    let keep: Vec<i64> = [later, retrying, dead]
        .iter()
        .map(|id| id.trim().parse().unwrap())
        .chain([slow])
        .collect();
    // Tasks flow for a while; each batch completes and is pruned behind the next.
    let mut done = Vec::new();
    for round in 0..5 {
        let batch: String = (0..40)
            .map(|i| format!("{{\"n\": {}}}\n", round * 40 + i))
            .collect();
        let out = sandbox.run_with_stdin(&["submit", "k", "--batch", "-"], &batch);
        assert!(out.status.success(), "{}", text(&out.stderr));
        done.extend(
            text(&out.stdout)
                .lines()
                .map(|l| l.trim().parse::<i64>().unwrap()),
        );
        std::thread::sleep(Duration::from_millis(400));
    }
    // Once the last ones have run, every completed task is gone within its kept second
    // plus an interval (and slack for a loaded machine).
    wait_for("every task to have run", PATIENCE, || {
        (ids_in(&sandbox, "available").is_empty() && ids_in(&sandbox, "running") == [slow])
            .then_some(())
    });
    wait_for(
        "every completed task to be pruned",
        Duration::from_millis(1000 + 300 + 5000),
        || ids_in(&sandbox, "completed").is_empty().then_some(()),
    );
    for id in &done {
        assert!(
            sandbox
                .run(&["tasks", "show", &id.to_string()])
                .status
                .code()
                != Some(0),
            "completed task {id} still there"
        );
    }
    assert_eq!(sandbox.task(keep[0])["state"], "scheduled");
    assert_eq!(sandbox.task(keep[1])["state"], "retryable");
    assert_eq!(sandbox.task(keep[2])["state"], "dead");
    assert_eq!(sandbox.task(keep[3])["state"], "running");

    let logs: Vec<String> = ["p1", "p2"]
        .iter()
        .map(|name| std::fs::read_to_string(sandbox.path(&format!("{name}.log"))).unwrap())
        .collect();
    let pruning: Vec<bool> = logs
        .iter()
        .map(|log| log.contains("pruned finished tasks past their retention"))
        .collect();
    assert_eq!(
        pruning.iter().filter(|p| **p).count(),
        1,
        "exactly one worker prunes while both run:\n{}",
        sandbox.worker_logs()
    );
}

/// `--keep-completed-max 5`: of 30 completed tasks the 5 newest stay, within an interval,
/// while the age limit alone (a day) would keep them all; dead tasks are not touched.
#[test]
fn completed_tasks_beyond_the_count_limit_go_oldest_first() {
    let mut sandbox = Sandbox::sqlite();
    std::fs::write(
        sandbox.path("task.sh"),
        "case \"$WRANGLE_PAYLOAD\" in\n  *fail*) exit 1 ;;\nesac\n",
    )
    .unwrap();
    let dead = sandbox.ok(&["submit", "k", r#""fail""#, "--retries", "0"]);
    let batch: String = (0..30).map(|i| format!("{{\"n\": {i}}}\n")).collect();
    let out = sandbox.run_with_stdin(&["submit", "k", "--batch", "-"], &batch);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ids: Vec<i64> = text(&out.stdout)
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    sandbox.spawn_worker(
        "p1",
        &[
            "--exec",
            "sh task.sh",
            "-n",
            "1",
            "--keep-completed-max",
            "5",
            "--prune-every",
            "300ms",
        ],
    );
    wait_for("the oldest completed tasks to be pruned", PATIENCE, || {
        (ids_in(&sandbox, "available").is_empty()
            && ids_in(&sandbox, "running").is_empty()
            && ids_in(&sandbox, "completed").len() == 5)
            .then_some(())
    });
    // The newest five: tasks ran in id order on one runner, so they finished last.
    let mut kept = ids_in(&sandbox, "completed");
    kept.sort_unstable();
    assert_eq!(kept, ids[25..]);
    assert_eq!(sandbox.task(dead.trim().parse().unwrap())["state"], "dead");
}

/// `tasks prune` deletes finished tasks now, by state and age, a job's tasks excepted.
#[test]
fn tasks_prune_sweeps_by_state_and_age() {
    let mut sandbox = Sandbox::sqlite();
    sandbox.spawn_worker(
        "w",
        &[
            "--exec",
            "sh -c 'exit $0' {}",
            "--keep-completed",
            "forever",
        ],
    );
    let ok: Vec<i64> = (0..3)
        .map(|_| sandbox.submit("k", "0", "default"))
        .collect();
    let dead = sandbox.ok(&["submit", "k", "1", "--retries", "0"]);
    let dead: i64 = dead.trim().parse().unwrap();
    sandbox.wait_for_state(dead, "dead", PATIENCE);
    for id in &ok {
        sandbox.wait_for_state(*id, "completed", PATIENCE);
    }
    let none = sandbox.json(&["tasks", "prune", "--older-than", "1h"]);
    assert_eq!(none["pruned"], 0, "nothing is an hour old");
    let completed = sandbox.ok(&["tasks", "prune", "--state", "completed"]);
    assert_eq!(completed.trim(), "3 finished task(s) pruned");
    assert_eq!(sandbox.task(dead)["state"], "dead", "another state is kept");
    assert_eq!(sandbox.json(&["tasks", "prune"])["pruned"], 1);
}

/// Bad retention settings are one line naming the flag or key, exit 2, before any store
/// is touched.
#[test]
fn bad_retention_settings_are_one_line_naming_the_key() {
    let sandbox = Sandbox::sqlite();
    let error = sandbox.usage_error(&["worker", "--exec", "true", "--keep-dead=-1d"]);
    assert!(error.contains("--keep-dead"), "{error}");
    let error = sandbox.usage_error(&["worker", "--exec", "true", "--prune-every", "0s"]);
    assert!(error.contains("--prune-every"), "{error}");
    std::fs::write(
        sandbox.path("wrangle.toml"),
        "[retention]\ncompleted = \"soon\"\n",
    )
    .unwrap();
    let error = sandbox.usage_error(&["worker", "--exec", "true"]);
    assert!(error.contains("[retention] completed"), "{error}");
    std::fs::write(sandbox.path("wrangle.toml"), "[retention]\nkept = \"1d\"\n").unwrap();
    let error = sandbox.usage_error(&["worker", "--exec", "true"]);
    assert!(error.contains("kept"), "{error}");
    std::fs::remove_file(sandbox.path("wrangle.toml")).unwrap();
    let error = sandbox.usage_error(&["tasks", "prune", "--state", "running"]);
    assert!(
        error.contains("only completed, dead or cancelled"),
        "{error}"
    );
    let error = sandbox.usage_error(&["tasks", "prune", "--older-than", "yesterday"]);
    assert!(error.contains("--older-than"), "{error}");
    assert!(!sandbox.path("w.db").exists(), "bad input touched no store");
}
