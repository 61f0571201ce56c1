//! End-to-end tests of the `wrangle` binary on the embedded SQLite store: real worker
//! processes, real signals, real kill -9. Each test gets its own temp dir and database.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Sandbox, shell_word, text};

#[test]
fn two_worker_processes_complete_1000_tasks_exactly_once() {
    let mut sandbox = Sandbox::default_store();
    let effects = sandbox.path("effects.txt");
    // Each run appends its task id: the side effect we count. O_APPEND writes of one
    // short line are atomic, so concurrent processes cannot interleave within a line.
    let exec = format!(
        "sh -c 'echo $WRANGLE_TASK_ID >> {}'",
        shell_word(&effects.display().to_string())
    );
    let payloads: String = (0..1000).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let out = sandbox.run_with_stdin(&["submit", "effect", "--batch", "-"], &payloads);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ids: Vec<i64> = text(&out.stdout)
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 1000);

    sandbox.spawn_worker("w1", &["--exec", &exec, "-n", "4"]);
    sandbox.spawn_worker("w2", &["--exec", &exec, "-n", "4"]);
    let started = Instant::now();
    while sandbox.count("completed") < 1000 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not all tasks completed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    sandbox.stop_workers();

    let text = std::fs::read_to_string(&effects).unwrap();
    let mut seen: Vec<i64> = text.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(seen.len(), 1000, "every task ran exactly once");
    seen.sort_unstable();
    let mut expected = ids.clone();
    expected.sort_unstable();
    assert_eq!(seen, expected);
    // Both workers took part.
    let by_worker = |name: &str| {
        let log = std::fs::read_to_string(sandbox.path(&format!("{name}.log"))).unwrap();
        log.lines()
            .find(|l| l.contains("worker stopped"))
            .map(|l| l.to_string())
            .unwrap_or_default()
    };
    for name in ["w1", "w2"] {
        let line = by_worker(name);
        assert!(line.contains("succeeded="), "{name}: {line}");
        assert!(!line.contains("succeeded=0 "), "{name} ran nothing: {line}");
    }
}

#[test]
fn submit_wait_prints_the_result_or_fails_with_the_error() {
    let mut sandbox = Sandbox::default_store();
    let exec =
        "sh -c 'if [ \"$WRANGLE_KIND\" = fail ]; then echo broken pipe dream >&2; exit 4; fi; cat'";
    sandbox.spawn_worker("w", &["--exec", exec, "--backoff", "50ms"]);
    let out = sandbox.run(&["submit", "echo", r#"{"x":1}"#, "--wait"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), r#"{"x":1}"#);

    let out = sandbox.run(&["submit", "fail", "{}", "--wait", "--retries", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("failed after 2 attempt(s)"), "{err}");
    assert!(err.contains("exit code 4: broken pipe dream"), "{err}");
}

#[test]
fn a_task_failing_twice_completes_on_attempt_3_with_visible_backoff() {
    let mut sandbox = Sandbox::default_store();
    let exec = "sh -c 'test $WRANGLE_ATTEMPT -ge 3 || { echo attempt $WRANGLE_ATTEMPT failed >&2; exit 1; }; echo done'";
    sandbox.spawn_worker("w", &["--exec", exec, "--backoff", "200ms"]);
    let out = sandbox.run(&["submit", "flaky", "{}", "--retries", "3", "--wait"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "done");
    let id = 1;
    let task = sandbox.task(id);
    assert_eq!(task["state"], "completed");
    assert_eq!(task["attempt"], 3);
    let attempts = task["attempts"].as_array().unwrap();
    let outcomes: Vec<&str> = attempts
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["failed", "failed", "completed"]);
    // The backoff: each retry was scheduled after the failure, and the next attempt did
    // not start before it.
    for pair in attempts.windows(2) {
        let retry_at =
            chrono::DateTime::parse_from_rfc3339(pair[0]["retry_at"].as_str().unwrap()).unwrap();
        let failed_at =
            chrono::DateTime::parse_from_rfc3339(pair[0]["finished_at"].as_str().unwrap()).unwrap();
        let next_start =
            chrono::DateTime::parse_from_rfc3339(pair[1]["started_at"].as_str().unwrap()).unwrap();
        assert!(
            retry_at - failed_at >= chrono::Duration::milliseconds(150),
            "backoff recorded"
        );
        assert!(
            next_start >= retry_at,
            "next attempt waited for the backoff"
        );
    }
    let human = text(&sandbox.run(&["tasks", "show", "1"]).stdout);
    assert!(human.contains("backoff"), "{human}");
    assert!(human.contains("attempt 1 failed"), "{human}");
}

#[test]
fn a_delayed_task_does_not_start_before_its_delay() {
    let mut sandbox = Sandbox::default_store();
    sandbox.spawn_worker("w", &["--exec", "true"]);
    let submitted = chrono::Utc::now();
    let out = sandbox.run(&["submit", "later", "{}", "--delay", "2s", "--wait"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let task = sandbox.task(1);
    let started =
        chrono::DateTime::parse_from_rfc3339(task["started_at"].as_str().unwrap()).unwrap();
    assert!(
        started.with_timezone(&chrono::Utc) - submitted >= chrono::Duration::seconds(2),
        "started {started}, submitted {submitted}"
    );
    assert_eq!(task["state"], "completed");
}

#[test]
fn kill_9_mid_task_reruns_it_elsewhere_after_the_lease_expires() {
    let mut sandbox = Sandbox::default_store();
    let marks = sandbox.path("marks.txt");
    let exec = format!(
        "sh -c 'echo start $WRANGLE_ATTEMPT >> {0}; sleep 2; echo end $WRANGLE_ATTEMPT >> {0}; echo finished'",
        shell_word(&marks.display().to_string())
    );
    let victim = sandbox.spawn_worker("victim", &["--exec", &exec, "--lease", "1s"]);
    let out = sandbox.run(&["submit", "long", "{}"]);
    assert!(out.status.success());
    sandbox.wait_for_state(1, "running", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    sandbox.workers[victim].kill().unwrap(); // SIGKILL: no chance to hand anything back
    sandbox.workers[victim].wait().unwrap();

    sandbox.spawn_worker("rescuer", &["--exec", &exec, "--lease", "1s"]);
    let task = sandbox.wait_for_state(1, "completed", Duration::from_secs(20));
    assert_eq!(task["result"], "finished");
    assert_eq!(task["attempt"], 2);
    let attempts = task["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{task}");
    assert_eq!(attempts[0]["outcome"], "lease expired");
    assert_eq!(attempts[0]["worker"], "victim");
    assert_eq!(attempts[1]["outcome"], "completed");
    assert_eq!(attempts[1]["worker"], "rescuer");
    // The killed worker's own child may still finish its side effect (an orphan is not
    // killed with its parent); what matters is that attempt 2 ran and was recorded.
    let marks = std::fs::read_to_string(&marks).unwrap();
    for line in ["start 1", "start 2", "end 2"] {
        assert!(
            marks.lines().any(|l| l == line),
            "{line} missing from {marks:?}"
        );
    }
}

#[test]
fn malformed_input_gets_one_line_exit_2_and_enqueues_nothing() {
    let sandbox = Sandbox::default_store();
    let cases: &[&[&str]] = &[
        &["submit", "k", "{bad"],
        &["submit", "k", "{}", "--delay", "5x"],
        &["--store", "foo://", "submit", "k", "{}"],
        &["--store", "sqlite://x.db?bogus=1", "submit", "k", "{}"],
        &["submit", "k", "{}", "--at", "tomorrow"],
        &["submit", "k", "{}", "--timeout", "soon"],
        &["submit", "bad kind", "{}"],
        &["tasks", "list", "--state", "finished"],
        &["worker", "--exec", "true", "--lease", "-1s"],
        &["worker"],
    ];
    for args in cases {
        sandbox.usage_error(args);
    }
    // A batch with one bad line enqueues none of the good ones.
    let out = sandbox.run_with_stdin(&["submit", "k", "--batch", "-"], "{\"a\":1}\n{bad\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("line 2"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !sandbox.path(".wrangle/wrangle.db").exists(),
        "bad input never even created the store"
    );
    // Looking creates nothing either: there is no store yet.
    let err = sandbox.usage_error(&["tasks", "list"]);
    assert!(
        err.contains("no wrangle store at .wrangle/wrangle.db"),
        "{err}"
    );
    assert!(!sandbox.path(".wrangle").exists());
    assert!(!sandbox.path("x.db").exists());
    // Store options in the URL reach the store.
    let out = sandbox.run(&[
        "--store",
        "sqlite://fast.db?synchronous=normal",
        "submit",
        "k",
        "{}",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(sandbox.path("fast.db").exists());
}

#[test]
fn sigterm_hands_unfinished_tasks_back_without_burning_an_attempt() {
    let mut sandbox = Sandbox::default_store();
    let worker = sandbox.spawn_worker("w", &["--exec", "sleep 30", "--shutdown-timeout", "300ms"]);
    sandbox.run(&["submit", "slow", "{}"]);
    sandbox.wait_for_state(1, "running", Duration::from_secs(10));
    let pid = nix::unistd::Pid::from_raw(sandbox.workers[worker].id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = sandbox.workers[worker].wait().unwrap();
    assert!(status.success(), "graceful exit: {status:?}");
    let task = sandbox.task(1);
    assert_eq!(task["state"], "available");
    assert_eq!(task["attempt"], 0, "the handed-back attempt does not count");
    assert_eq!(task["attempts"][0]["outcome"], "released");
}

#[test]
fn unique_keys_make_submit_idempotent_and_cancel_and_retry_work() {
    let sandbox = Sandbox::default_store();
    let first = text(
        &sandbox
            .run(&["submit", "mail", "{}", "--unique", "k1"])
            .stdout,
    );
    let second = text(
        &sandbox
            .run(&["submit", "mail", "{}", "--unique", "k1"])
            .stdout,
    );
    assert_eq!(first, second);
    let out = sandbox.run(&["tasks", "cancel", first.trim()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(sandbox.task(1)["state"], "cancelled");
    let out = sandbox.run(&["tasks", "cancel", "1"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "cancelling a cancelled task is refused"
    );
    assert!(sandbox.run(&["tasks", "retry", "1"]).status.success());
    assert_eq!(sandbox.task(1)["state"], "available");
    assert_eq!(sandbox.run(&["tasks", "show", "99"]).status.code(), Some(2));
}

/// Every command, as listed by the manual pages wrangle writes (one per command, made
/// from the same definitions as --help): each page renders with `man`, and each
/// command's --help has examples.
#[test]
fn every_command_has_a_man_page_and_help_with_an_example() {
    let sandbox = Sandbox::default_store();
    sandbox.ok(&["man", "--dir", "pages"]);
    let mut pages: Vec<String> = std::fs::read_dir(sandbox.path("pages"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for expected in [
        "wrangle.1",
        "wrangle-run.1",
        "wrangle-job-create.1",
        "wrangle-man.1",
    ] {
        assert!(
            pages.iter().any(|p| p == expected),
            "{expected} in {pages:?}"
        );
    }
    assert!(pages.len() >= 25, "{pages:?}");
    for page in &pages {
        let name = page.strip_suffix(".1").expect("section 1 pages");
        let mut args: Vec<&str> = name.split('-').skip(1).collect();
        args.push("--help");
        let help = sandbox.ok(&args);
        assert!(help.contains("Example"), "{args:?} has no example:\n{help}");

        let rendered = Command::new("man")
            .args(["-l", "-P", "cat"])
            .arg(sandbox.path("pages").join(page))
            .env("MANWIDTH", "80")
            .output()
            .expect("man (Debian package man-db)");
        let rendered = text(&rendered.stdout);
        assert!(
            rendered.contains("NAME") && rendered.contains(name),
            "{page}:\n{rendered}"
        );
    }
    // One page on stdout, as `wrangle man job create | man -l -` reads it.
    let page = sandbox.ok(&["man", "job", "create"]);
    assert!(page.contains(".TH wrangle-job-create 1"), "{page}");
    sandbox.usage_error(&["man", "job", "bogus"]);
}

/// The bash completion script loads and completes commands and options.
#[test]
fn completions_load_in_bash_and_complete_commands() {
    let sandbox = Sandbox::default_store();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = sandbox.ok(&["completions", shell]);
        assert!(
            script.contains("wrangle") && script.contains("submit"),
            "{shell}"
        );
    }
    std::fs::write(
        sandbox.path("wrangle.bash"),
        sandbox.ok(&["completions", "bash"]),
    )
    .unwrap();
    // Load it, show the registration, then ask for the completions of `wrangle jo` and
    // `wrangle job create --ki`, as bash does on Tab.
    let script = r#"
        source ./wrangle.bash
        complete -p wrangle
        COMP_WORDS=(wrangle jo); COMP_CWORD=1; _wrangle wrangle jo wrangle
        echo "commands: ${COMPREPLY[*]}"
        COMP_WORDS=(wrangle job create --ki); COMP_CWORD=4; _wrangle wrangle --ki create
        echo "options: ${COMPREPLY[*]}"
    "#;
    let out = Command::new("bash")
        .args(["--norc", "-c", script])
        .current_dir(sandbox.dir.path())
        .output()
        .unwrap();
    let printed = text(&out.stdout);
    assert!(out.status.success(), "{printed}{}", text(&out.stderr));
    assert!(
        printed.contains("-F _wrangle") && printed.contains(" wrangle\n"),
        "{printed}"
    );
    assert!(printed.contains("commands: job"), "{printed}");
    assert!(printed.contains("options: --kind"), "{printed}");
    sandbox.usage_error(&["completions", "tcsh"]);
}

#[test]
fn workers_killed_again_and_again_lose_no_task_and_complete_none_twice() {
    let mut sandbox = Sandbox::default_store();
    let effects = sandbox.path("effects.txt");
    let exec = format!(
        "sh -c 'sleep 0.05; echo $WRANGLE_TASK_ID $WRANGLE_ATTEMPT >> {}'",
        shell_word(&effects.display().to_string())
    );
    let payloads: String = (0..400).map(|i| format!("{i}\n")).collect();
    let out = sandbox.run_with_stdin(
        &["submit", "chaos", "--batch", "-", "--retries", "20"],
        &payloads,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let worker_args = ["--exec", exec.as_str(), "-n", "3", "--lease", "600ms"];
    for name in ["a", "b", "c"] {
        sandbox.spawn_worker(name, &worker_args);
    }
    // Kill -9 a worker every 300 ms and start a fresh one in its place.
    let started = Instant::now();
    let mut round = 0;
    while sandbox.count("completed") < 400 {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "tasks were lost"
        );
        std::thread::sleep(Duration::from_millis(300));
        if round < 15 {
            let victim = round % sandbox.workers.len();
            sandbox.workers[victim].kill().unwrap();
            sandbox.workers[victim].wait().unwrap();
            let name = format!("respawn{round}");
            sandbox.workers[victim] = sandbox.start_worker(&name, &worker_args);
        }
        round += 1;
    }
    sandbox.stop_workers();

    let tasks = sandbox.json(&["tasks", "list", "--limit", "1000"]);
    let tasks = tasks.as_array().unwrap();
    assert_eq!(tasks.len(), 400);
    let mut rescued = 0;
    for task in tasks {
        assert_eq!(task["state"], "completed", "{task}");
        let attempts = task["attempts"].as_array().unwrap();
        let completions = attempts
            .iter()
            .filter(|a| a["outcome"] == "completed")
            .count();
        assert_eq!(completions, 1, "completed exactly once: {task}");
        assert_eq!(attempts.last().unwrap()["outcome"], "completed");
        rescued += attempts
            .iter()
            .filter(|a| a["outcome"] == "lease expired")
            .count();
    }
    assert!(rescued > 0, "the kills did interrupt running tasks");
    // Every task's side effect happened; a repeat is only ever an interrupted attempt.
    let text = std::fs::read_to_string(&effects).unwrap();
    let mut by_task = std::collections::BTreeMap::<i64, Vec<i64>>::new();
    for line in text.lines() {
        let (id, attempt) = line.split_once(' ').unwrap();
        by_task
            .entry(id.parse().unwrap())
            .or_default()
            .push(attempt.parse().unwrap());
    }
    assert_eq!(by_task.len(), 400, "no task lost");
    for task in tasks {
        let id = task["id"].as_i64().unwrap();
        let final_attempt = task["attempt"].as_i64().unwrap();
        assert!(
            by_task[&id].contains(&final_attempt),
            "task {id}: the recorded attempt ran"
        );
    }
}

#[test]
fn processes_opening_a_new_store_at_once_all_succeed() {
    for round in 0..10 {
        let sandbox = Sandbox::default_store();
        let children: Vec<Child> = (0..12)
            .map(|i| {
                sandbox
                    .command(&["submit", "k", &i.to_string()])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}", text(&out.stderr));
        }
        assert_eq!(
            sandbox.json(&["tasks", "list"]).as_array().unwrap().len(),
            12
        );
    }
}
