//! End-to-end tests of `wrangle console` on the embedded SQLite store: the interactive
//! shell driven in a real terminal (tmux: send-keys to type, capture-pane to read the
//! screen) against real worker processes, and the scripted mode reading a pipe.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::Output;
use std::time::{Duration, Instant};

use common::tmux::{Capture, Tmux};
use common::{Sandbox, text, wait_for};

/// Generous: a loaded 2-core machine builds and runs other tests at the same time.
const PATIENCE: Duration = Duration::from_secs(20);

/// `printf SCRIPT | wrangle console`.
fn console_script(sandbox: &Sandbox, script: &str) -> Output {
    sandbox.run_with_stdin(&["console"], script)
}

/// An 80x24 terminal running `wrangle console` on the sandbox's store, once it shows its
/// first prompt. When the console exits, the terminal shows `[console exited CODE]`.
fn start_console(sandbox: &Sandbox) -> Tmux {
    let console = format!(
        "env -u WRANGLE_STORE WRANGLE_LOG=warn {}; echo \"[console exited $?]\"; sleep 3600",
        sandbox.shell_command(&["console"])
    );
    let dir = sandbox.dir.path();
    let terminal = Tmux::start(dir, (80, 24), Capture::History, PATIENCE, &[&console]);
    terminal.wait_for("the first prompt", |screen| {
        screen.lines().any(|l| l.starts_with("wrangle>"))
    });
    terminal
}

/// The console's commands typed in a terminal.
trait ConsoleTerminal {
    /// Types `line`, presses Enter and returns what the command printed once the next
    /// prompt shows.
    fn run(&self, line: &str) -> String;
}

impl ConsoleTerminal for Tmux {
    fn run(&self, line: &str) -> String {
        let before = self.screen().matches("wrangle>").count();
        self.type_line(line);
        let screen = self.wait_for(&format!("the output of '{line}'"), |screen| {
            screen.matches("wrangle>").count() > before
        });
        output_of_last(&screen, line).expect("the command line is on the screen")
    }
}

/// What follows the last prompt line holding exactly `line`, up to the next prompt.
fn output_of_last(screen: &str, line: &str) -> Option<String> {
    let command_line = format!("wrangle> {line}");
    let lines: Vec<&str> = screen.lines().collect();
    let at = lines.iter().rposition(|l| l.trim_end() == command_line)?;
    Some(
        lines[at + 1..]
            .iter()
            .take_while(|l| !l.starts_with("wrangle>"))
            .copied()
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// `group a  runners 3  executing 3 ...` of `status WORKER` as (runners, executing).
fn group_line(output: &str, group: &str) -> Option<(u32, u32)> {
    output.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["group", name, "runners", runners, "executing", busy, ..] if *name == group => {
                Some((runners.parse().ok()?, busy.parse().ok()?))
            }
            _ => None,
        }
    })
}

#[test]
fn console_in_a_terminal_shows_status_scales_a_worker_and_tails_task_events() {
    let mut sandbox = Sandbox::sqlite();
    // A short lease: heartbeats (which carry what `status` shows) every second.
    let worker = ["--pool", "a=1:b=1", "--exec", "sleep {}", "--lease", "3s"];
    sandbox.spawn_worker("w1", &worker);
    sandbox.wait_for_worker("w1", PATIENCE);
    let terminal = start_console(&sandbox);

    let status = terminal.run("status");
    assert!(status.contains("QUEUE"), "{status}");
    let worker_line = status.lines().find(|l| l.starts_with("w1 ")).unwrap();
    assert!(worker_line.ends_with("ok"), "{status}");
    assert_eq!(group_line(&status, "a"), Some((1, 0)), "{status}");
    assert_eq!(group_line(&status, "b"), Some((1, 0)), "{status}");

    // Six slow tasks on a: one runner serves them one at a time until the scale.
    for _ in 0..6 {
        sandbox.submit("slow", "6", "a");
    }
    let scaled = terminal.run("scale w1 a=3");
    assert!(
        scaled.contains("w1:") && scaled.contains("3 runners"),
        "{scaled}"
    );
    assert!(!scaled.contains("error"), "{scaled}");

    // Within a few seconds three runners of group a run three tasks of a at once.
    let started = Instant::now();
    loop {
        let detail = terminal.run("status w1");
        assert!(detail.contains("worker w1 on"), "{detail}");
        assert!(detail.contains("group b"), "{detail}");
        if group_line(&detail, "a") == Some((3, 3)) {
            let running = sandbox
                .queue("a")
                .map(|q| q["counts"]["running"].as_u64().unwrap_or(0))
                .unwrap();
            assert!(running >= 3, "status w1 said 3 busy, the store {running}");
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "group a never ran 3 tasks at once:\n{detail}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let pool = terminal.run("pool w1");
    assert_eq!(group_line(&pool, "a").map(|(runners, _)| runners), Some(3));

    // tail: tasks submitted from another shell show up as they start and complete.
    terminal.type_line("tail");
    terminal.wait_for("tail to start", |screen| {
        output_of_last(screen, "tail").is_some_and(|out| out.contains("following task events"))
    });
    let quick: Vec<i64> = (0..2)
        .map(|_| sandbox.submit("quick", "0.2", "b"))
        .collect();
    let followed = terminal.wait_for("the quick tasks' events", |screen| {
        let out = output_of_last(screen, "tail").unwrap_or_default();
        quick.iter().all(|id| {
            out.contains(&format!(" started {id} kind=quick queue=b worker=w1"))
                && out.contains(&format!(" completed {id} kind=quick queue=b worker=w1 ("))
        })
    });
    let events = output_of_last(&followed, "tail").unwrap();
    for id in &quick {
        let started = format!(" started {id} kind=quick");
        assert_eq!(events.matches(&started).count(), 1, "once only:\n{events}");
    }
    // Every event line starts with a clock time.
    for line in events.lines().skip(1) {
        let clock = line.split_whitespace().next().unwrap_or("");
        assert!(
            clock.len() == 8 && clock.matches(':').count() == 2,
            "{events}"
        );
    }

    // Ctrl-C ends tail, not the console: the prompt is back and takes commands.
    terminal.press(&["C-c"]);
    terminal.wait_for("the prompt after tail", |screen| {
        let lines: Vec<&str> = screen.lines().collect();
        let tail = lines.iter().rposition(|l| *l == "wrangle> tail").unwrap();
        lines[tail + 1..].iter().any(|l| l.starts_with("wrangle>"))
    });
    let help = terminal.run("help");
    for command in ["status [WORKER]", "scale WORKER [QUEUE=]N", "tail", "exit"] {
        assert!(help.contains(command), "{help}");
    }
    assert!(!terminal.screen().contains("[console exited"));

    terminal.type_line("exit");
    terminal.wait_for("the console to exit", |screen| {
        screen.contains("[console exited 0]")
    });
}

#[test]
fn tab_completes_commands_and_worker_names_fetched_when_tab_is_pressed() {
    let mut sandbox = Sandbox::sqlite();
    sandbox.create_store();
    let terminal = start_console(&sandbox);
    // Started after the console: the names come from the store at each Tab press.
    sandbox.spawn_worker("warehouse-7", &["-q", "a", "-n", "1", "--exec", "true"]);
    sandbox.wait_for_worker("warehouse-7", PATIENCE);
    sandbox.spawn_worker("zeta-2", &["-q", "a", "-n", "1", "--exec", "true"]);
    sandbox.wait_for_worker("zeta-2", PATIENCE);

    terminal.type_text("stat");
    terminal.press(&["Tab"]);
    terminal.wait_for("the command name completed", |screen| {
        screen.lines().last() == Some("wrangle> status")
    });
    terminal.type_text("w");
    terminal.press(&["Tab"]);
    terminal.wait_for("the worker name completed", |screen| {
        screen.lines().last() == Some("wrangle> status warehouse-7")
    });
    terminal.press(&["Enter"]);
    let screen = terminal.wait_for("status of warehouse-7", |screen| {
        output_of_last(screen, "status warehouse-7")
            .is_some_and(|out| out.contains("worker warehouse-7 on"))
    });
    let detail = output_of_last(&screen, "status warehouse-7").unwrap();
    assert!(detail.contains("group a"), "{detail}");

    // A bad line is one error and the prompt again.
    let bad = terminal.run("scale warehouse-7 lots");
    assert_eq!(bad.lines().count(), 1, "{bad}");
    assert!(bad.starts_with("error: "), "{bad}");
    let unknown = terminal.run("frobnicate");
    assert_eq!(
        unknown,
        "error: unknown command 'frobnicate' (type help for the list)"
    );

    terminal.press(&["C-d"]);
    terminal.wait_for("the console to exit on Ctrl-D", |screen| {
        screen.contains("[console exited 0]")
    });
    let history =
        std::fs::read_to_string(sandbox.dir.path().join(".wrangle/console_history")).unwrap();
    assert!(
        history.lines().any(|l| l == "status warehouse-7"),
        "{history}"
    );
}

/// resque-pool-dynamic's shell started workers and showed the process tree: `start`
/// runs a worker on this machine against the console's store (detached: it outlives the
/// console; its log in a file), bad worker options are one error line, and `pstree`
/// shows the worker with its runner process, from what the worker reports.
#[test]
fn start_runs_a_local_worker_and_pstree_shows_its_runner_process() {
    let sandbox = Sandbox::sqlite();
    sandbox.create_store();
    std::fs::write(
        sandbox.path("runner.py"),
        r#"import json, sys
for line in sys.stdin:
    print(json.dumps({"id": json.loads(line)["id"], "ok": True}), flush=True)
"#,
    )
    .unwrap();
    std::fs::write(
        sandbox.path("wrangle.toml"),
        "[kinds.k]\nrunner = [\"python3\", \"runner.py\"]\n",
    )
    .unwrap();
    let out = console_script(&sandbox, "start --name cw -n 1 --lease 3s\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("started wrangle worker cw (pid")
            && stdout.contains(".wrangle/logs/worker-"),
        "{stdout}"
    );
    // The console has exited; the worker it started runs the task.
    let id = sandbox.submit("k", "{}", "default");
    sandbox.wait_for_state(id, "completed", PATIENCE);
    let tree = wait_for("the runner process in pstree", PATIENCE, || {
        let tree = text(&console_script(&sandbox, "pstree\n").stdout);
        tree.contains("runner 1 k (pid").then_some(tree)
    });
    assert!(tree.contains("└─ cw (pid"), "{tree}");

    let out = console_script(&sandbox, "start --lease forever\n");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("the worker exited at once") && stderr.contains("invalid duration"),
        "{stderr}"
    );
    sandbox.ok(&["workers", "stop", "cw"]);
}

#[test]
fn piped_commands_run_in_order_and_exit_0() {
    let sandbox = Sandbox::sqlite();
    sandbox.create_store();
    let out = console_script(&sandbox, "status\npause a\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("QUEUE"), "{stdout}");
    assert!(stdout.contains("queue a paused"), "{stdout}");
    assert!(
        !stdout.contains("wrangle>"),
        "no prompt in a pipe: {stdout}"
    );
    let paused = |sandbox: &Sandbox| sandbox.queue("a").is_some_and(|q| q["paused"] == true);
    assert!(paused(&sandbox), "the pause reached the store");

    let out = console_script(&sandbox, "status\npause a\nresume a\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let pause = stdout.find("queue a paused").unwrap();
    let resume = stdout.find("queue a resumed").unwrap();
    assert!(pause < resume, "{stdout}");
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
    assert!(!paused(&sandbox));
}

#[test]
fn a_bad_piped_command_prints_one_error_line_runs_the_rest_and_exits_1() {
    let sandbox = Sandbox::sqlite();
    sandbox.create_store();
    let out = console_script(&sandbox, "frobnicate\nretry abc\npause a\n");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            "error: unknown command 'frobnicate' (type help for the list)",
            "error: a task id is a number, not 'abc'"
        ]
    );
    assert!(text(&out.stdout).contains("queue a paused"));

    // A command the store refuses fails the script too.
    let out = console_script(&sandbox, "status nobody\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("error: no worker named 'nobody'"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn piped_tail_follows_until_sigterm_then_runs_the_next_command() {
    let mut sandbox = Sandbox::sqlite();
    sandbox.spawn_worker("w1", &["-q", "b", "-n", "2", "--exec", "sleep {}"]);
    sandbox.wait_for_worker("w1", PATIENCE);
    let before = sandbox.submit("old", "0", "b");
    sandbox.wait_until(&format!("task {before} completed"), PATIENCE, || {
        sandbox.task(before)["state"] == "completed"
    });
    let mut console = sandbox.spawn_piped(&["console"]);
    console
        .stdin
        .take()
        .unwrap()
        .write_all(b"tail\npause b\n")
        .unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    let stdout = console.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = lines.send(line.unwrap());
        }
    });
    let next_line = || {
        received
            .recv_timeout(PATIENCE)
            .expect("console printed nothing")
    };
    assert_eq!(next_line(), "following task events (Ctrl-C to stop)");
    let id = sandbox.submit("quick", "0.1", "b");
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.contains(&format!(" completed {id} kind=quick")))
    {
        seen.push(next_line());
    }
    assert!(
        seen.iter()
            .any(|l| l.contains(&format!(" started {id} kind=quick queue=b worker=w1"))),
        "{seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|l| l.contains(&format!(" {before} kind=old"))),
        "events before tail started are not printed: {seen:?}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(console.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let mut rest = Vec::new();
    while let Ok(line) = received.recv_timeout(PATIENCE) {
        rest.push(line);
    }
    let out = console.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(rest.last().map(String::as_str), Some("queue b paused"));
}
