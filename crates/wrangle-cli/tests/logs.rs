//! End-to-end tests of logs kept in the store, through the real binary and real worker
//! processes on the embedded SQLite store: `tasks log ID --follow` shows a running task's
//! output (exec and runner kinds) from another process as it is written and ends with the
//! task; `workers log NAME --follow` and the console's `tail WORKER` show a worker's own
//! log lines from another process; `--log-lines` bounds what is kept.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{Sandbox, text, wait_for};

/// Generous: a loaded 2-core machine builds and runs other tests at the same time.
const PATIENCE: Duration = Duration::from_secs(30);

/// The lines `child` writes to stdout, as they come.
fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    received
}

/// The next line from `lines` that satisfies `wanted`, failing after [`PATIENCE`].
#[track_caller]
fn next_line_where(
    lines: &mpsc::Receiver<String>,
    what: &str,
    wanted: impl Fn(&str) -> bool,
) -> String {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if wanted(&line) => return line,
            Ok(_) => continue,
            Err(_) => panic!("no line {what} within {PATIENCE:?}"),
        }
    }
}

/// `wrangle tasks log ID --follow`, with its stdout and stderr piped.
fn follow_task(sandbox: &Sandbox, id: i64) -> Child {
    sandbox
        .command(&["tasks", "log", &id.to_string(), "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a follower to exit by itself; its exit code and stderr.
fn ends_by_itself(mut follower: Child) -> (i32, String) {
    let status = wait_for("the follower to end with its task", PATIENCE, || {
        follower.try_wait().unwrap()
    });
    let mut stderr = String::new();
    std::io::Read::read_to_string(follower.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    (status.code().unwrap_or(-1), stderr)
}

/// An exec task's lines reach a follower in another process while the task still runs;
/// the follower ends with the task, stdout on stdout and stderr and the attempt's outcome
/// on stderr; afterwards `tasks log` shows what the store kept, and `--json` says where
/// each line came from.
#[test]
fn a_running_exec_tasks_output_is_followed_live_and_kept_afterwards() {
    let mut sandbox = Sandbox::sqlite();
    std::fs::write(
        sandbox.path("task.sh"),
        "echo first\nsleep 2\necho oops >&2\necho last\n",
    )
    .unwrap();
    sandbox.spawn_worker("w1", &["--exec", "sh task.sh"]);
    let id = sandbox.submit("slow", "{}", "default");
    sandbox.wait_for_state(id, "running", PATIENCE);
    let mut follower = follow_task(&sandbox, id);
    let lines = stdout_lines(&mut follower);
    next_line_where(&lines, "'first'", |l| l == "first");
    assert_eq!(
        sandbox.task(id)["state"],
        "running",
        "the first line arrived while the task was running"
    );
    assert_eq!(next_line_where(&lines, "after 'first'", |_| true), "last");
    let (code, stderr) = ends_by_itself(follower);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("oops"), "{stderr}");
    assert!(stderr.contains("wrangle: attempt 1 succeeded"), "{stderr}");
    assert_eq!(sandbox.task(id)["state"], "completed");

    let kept = sandbox.run(&["tasks", "log", &id.to_string()]);
    assert_eq!(text(&kept.stdout), "first\nlast\n");
    let json = sandbox.ok(&["--json", "tasks", "log", &id.to_string()]);
    let sources: Vec<(String, String)> = json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| {
            (
                v["source"].as_str().unwrap().into(),
                v["text"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        sources,
        [
            ("stdout".into(), "first".into()),
            ("stderr".into(), "oops".into()),
            ("stdout".into(), "last".into()),
            ("log".into(), "attempt 1 succeeded".into()),
        ]
    );
}

/// A runner kind's `output` messages reach a follower while the task runs (DScript's
/// long blocks).
#[test]
fn a_runner_tasks_output_messages_are_followed_live() {
    let mut sandbox = Sandbox::sqlite();
    std::fs::write(
        sandbox.path("runner.py"),
        r#"import json, sys, time
for line in sys.stdin:
    request = json.loads(line)
    print(json.dumps({"id": request["id"], "output": "block started"}), flush=True)
    time.sleep(2)
    print(json.dumps({"id": request["id"], "output": "block done"}), flush=True)
    print(json.dumps({"id": request["id"], "ok": True, "result": None}), flush=True)
"#,
    )
    .unwrap();
    std::fs::write(
        sandbox.path("wrangle.toml"),
        "[kinds.k]\nrunner = [\"python3\", \"runner.py\"]\n",
    )
    .unwrap();
    sandbox.spawn_worker("rw", &[]);
    let id = sandbox.submit("k", "{}", "default");
    sandbox.wait_for_state(id, "running", PATIENCE);
    let mut follower = follow_task(&sandbox, id);
    let lines = stdout_lines(&mut follower);
    next_line_where(&lines, "'block started'", |l| l == "block started");
    assert_eq!(sandbox.task(id)["state"], "running");
    next_line_where(&lines, "'block done'", |l| l == "block done");
    let (code, stderr) = ends_by_itself(follower);
    assert_eq!(code, 0, "{stderr}");
}

/// `--log-lines N` keeps a task's newest N lines (its outcome line among them); `0` keeps
/// none.
#[test]
fn log_lines_bounds_what_the_store_keeps() {
    let mut sandbox = Sandbox::sqlite();
    sandbox.spawn_worker(
        "w5",
        &["--exec", "seq 1 100", "--log-lines", "5", "-q", "five"],
    );
    sandbox.spawn_worker(
        "w0",
        &["--exec", "seq 1 100", "--log-lines", "0", "-q", "none"],
    );
    let five = sandbox.submit("k", "{}", "five");
    let none = sandbox.submit("k", "{}", "none");
    sandbox.wait_for_state(five, "completed", PATIENCE);
    sandbox.wait_for_state(none, "completed", PATIENCE);
    // The last lines are sent within a moment of the attempt's end.
    wait_for("the kept lines", PATIENCE, || {
        let out = sandbox.run(&["tasks", "log", &five.to_string()]);
        (text(&out.stderr).contains("attempt 1 succeeded")).then_some(())
    });
    let out = sandbox.run(&["tasks", "log", &five.to_string()]);
    assert_eq!(text(&out.stdout), "97\n98\n99\n100\n");
    let out = sandbox.run(&["tasks", "log", &none.to_string()]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "", "--log-lines 0 keeps nothing");
}

/// A worker's own log lines are shown from another process, and followed: a line the
/// worker logs later (its reload) reaches a follower started before it. The console's
/// `tail WORKER` shows them too. An unknown worker is bad input.
#[test]
fn a_workers_own_log_is_followed_from_another_process() {
    let mut sandbox = Sandbox::sqlite();
    sandbox.spawn_worker("box-1", &["--exec", "true"]);
    sandbox.wait_for_worker("box-1", PATIENCE);
    wait_for("the worker's first lines in the store", PATIENCE, || {
        let out = sandbox.run(&["workers", "log", "box-1"]);
        text(&out.stdout).contains("worker started").then_some(())
    });

    let mut follower = sandbox
        .command(&["workers", "log", "box-1", "--follow", "--last", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stdout_lines(&mut follower);
    next_line_where(&lines, "(the newest kept)", |_| true);
    sandbox.ok(&["workers", "reload", "box-1"]);
    let line = next_line_where(&lines, "about the reload", |l| {
        l.contains("control: reloaded")
    });
    assert!(line.contains("INFO"), "{line}");
    let _ = follower.kill();
    let _ = follower.wait();

    let console = sandbox.run_with_stdin(&["console"], "tail box-1 1s\n");
    let shown = text(&console.stdout);
    assert!(shown.contains("control: reloaded"), "{shown}");

    let error = sandbox.usage_error(&["workers", "log", "nobody"]);
    assert!(error.contains("no worker named 'nobody'"), "{error}");
}
