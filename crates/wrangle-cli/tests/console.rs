//! End-to-end tests of `wrangle console` on the embedded SQLite store: the interactive
//! shell driven in a real terminal (tmux: send-keys to type, capture-pane to read the
//! screen) against real worker processes, and the scripted mode reading a pipe.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Generous: a loaded 2-core machine builds and runs other tests at the same time.
const PATIENCE: Duration = Duration::from_secs(20);

/// A temp dir with its own store, and the workers started in it (stopped on drop).
struct Sandbox {
    dir: tempfile::TempDir,
    workers: Vec<Child>,
}

impl Sandbox {
    fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
            workers: Vec::new(),
        }
    }

    fn store_url(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("w.db").display())
    }

    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wrangle"));
        command
            .current_dir(self.dir.path())
            .env_remove("WRANGLE_STORE")
            .env("WRANGLE_LOG", "info")
            .args(["--store", &self.store_url()]);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(&[&["--json"], args].concat());
        assert!(
            out.status.success(),
            "wrangle {args:?}: {}",
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Enqueues a task and returns its id.
    fn submit(&self, kind: &str, payload: &str, queue: &str) -> i64 {
        let out = self.run(&["submit", kind, payload, "-q", queue, "--retries", "0"]);
        assert!(out.status.success(), "submit: {}", text(&out.stderr));
        text(&out.stdout).trim().parse().unwrap()
    }

    /// `printf SCRIPT | wrangle console`.
    fn console_script(&self, script: &str) -> Output {
        let mut child = self
            .command()
            .arg("console")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Starts a worker logging to `NAME.log` and waits until it is registered.
    fn spawn_worker(&mut self, name: &str, args: &[&str]) {
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        let child = self
            .command()
            .args(["worker", "--name", name])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.workers.push(child);
        let started = Instant::now();
        while !self
            .json(&["workers", "list"])
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["info"]["name"] == name)
        {
            assert!(
                started.elapsed() < PATIENCE,
                "worker {name} never registered"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for child in &mut self.workers {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An 80x24 terminal running `wrangle console` in tmux, on a server of its own (its own
/// socket), killed on drop even when the test fails.
struct Terminal {
    socket: String,
}

impl Terminal {
    fn start(sandbox: &Sandbox, test: &str) -> Terminal {
        let socket = format!("wrangle-console-{}-{test}", std::process::id());
        let console = format!(
            "cd '{}' && env -u WRANGLE_STORE WRANGLE_LOG=warn '{}' --store '{}' console; \
             echo \"[console exited $?]\"; sleep 3600",
            sandbox.dir.path().display(),
            env!("CARGO_BIN_EXE_wrangle"),
            sandbox.store_url()
        );
        let terminal = Terminal { socket };
        let started = terminal
            .tmux()
            .args(["-f", "/dev/null", "new-session", "-d", "-s", "console"])
            .args(["-x", "80", "-y", "24", &console])
            .status()
            .unwrap();
        assert!(started.success(), "tmux new-session failed");
        terminal.wait_for("the first prompt", |screen| {
            screen.lines().any(|l| l.starts_with("wrangle>"))
        });
        terminal
    }

    fn tmux(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket]);
        command
    }

    /// Presses keys by their tmux names (`Tab`, `Enter`, `C-c`).
    fn press(&self, keys: &[&str]) {
        let status = self
            .tmux()
            .args(["send-keys", "-t", "console"])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Types `text` as it is (no key names).
    fn type_text(&self, text: &str) {
        let status = self
            .tmux()
            .args(["send-keys", "-t", "console", "-l", text])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The whole screen and its scrollback, wrapped lines joined, trailing blanks dropped,
    /// so that the cursor's line is the last.
    fn screen(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-J", "-S", "-", "-t", "console"])
            .output()
            .unwrap();
        let screen = text(&out.stdout)
            .lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n");
        // The rows below the cursor are blank.
        screen.trim_end().to_string()
    }

    /// Polls the screen until `done` holds; fails with the screen after [`PATIENCE`].
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types `line`, presses Enter and returns what the command printed once the next
    /// prompt shows.
    fn run(&self, line: &str) -> String {
        let before = self.screen().matches("wrangle>").count();
        self.type_text(line);
        self.press(&["Enter"]);
        let screen = self.wait_for(&format!("the output of '{line}'"), |screen| {
            screen.matches("wrangle>").count() > before
        });
        output_of_last(&screen, line).expect("the command line is on the screen")
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self
            .tmux()
            .arg("kill-server")
            .stderr(Stdio::null())
            .status();
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

/// `group a  runners 3  busy 3 ...` of `status WORKER` as (runners, busy).
fn group_line(output: &str, group: &str) -> Option<(u32, u32)> {
    output.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["group", name, "runners", runners, "busy", busy, ..] if *name == group => {
                Some((runners.parse().ok()?, busy.parse().ok()?))
            }
            _ => None,
        }
    })
}

#[test]
fn console_in_a_terminal_shows_status_scales_a_worker_and_tails_task_events() {
    let mut sandbox = Sandbox::new();
    // A short lease: heartbeats (which carry what `status` shows) every second.
    let worker = ["--pool", "a=1:b=1", "--exec", "sleep {}", "--lease", "3s"];
    sandbox.spawn_worker("w1", &worker);
    let terminal = Terminal::start(&sandbox, "scale-tail");

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
            let running = sandbox.json(&["status"])["queues"]
                .as_array()
                .unwrap()
                .iter()
                .find(|q| q["queue"] == "a")
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
    terminal.type_text("tail");
    terminal.press(&["Enter"]);
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

    terminal.type_text("exit");
    terminal.press(&["Enter"]);
    terminal.wait_for("the console to exit", |screen| {
        screen.contains("[console exited 0]")
    });
}

#[test]
fn tab_completes_commands_and_worker_names_fetched_when_tab_is_pressed() {
    let mut sandbox = Sandbox::new();
    let terminal = Terminal::start(&sandbox, "complete");
    // Started after the console: the names come from the store at each Tab press.
    sandbox.spawn_worker("warehouse-7", &["-q", "a", "-n", "1", "--exec", "true"]);
    sandbox.spawn_worker("zeta-2", &["-q", "a", "-n", "1", "--exec", "true"]);

    terminal.type_text("sta");
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

#[test]
fn piped_commands_run_in_order_and_exit_0() {
    let sandbox = Sandbox::new();
    let out = sandbox.console_script("status\npause a\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("QUEUE"), "{stdout}");
    assert!(stdout.contains("queue a paused"), "{stdout}");
    assert!(
        !stdout.contains("wrangle>"),
        "no prompt in a pipe: {stdout}"
    );
    let paused = |sandbox: &Sandbox| {
        sandbox.json(&["status"])["queues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["queue"] == "a" && q["paused"] == true)
    };
    assert!(paused(&sandbox), "the pause reached the store");

    let out = sandbox.console_script("status\npause a\nresume a\n");
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
    let sandbox = Sandbox::new();
    let out = sandbox.console_script("frobnicate\nretry abc\npause a\n");
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
    let out = sandbox.console_script("status nobody\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("error: no worker named 'nobody'"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn piped_tail_follows_until_sigterm_then_runs_the_next_command() {
    let mut sandbox = Sandbox::new();
    sandbox.spawn_worker("w1", &["-q", "b", "-n", "2", "--exec", "sleep {}"]);
    let before = sandbox.submit("old", "0", "b");
    let started = Instant::now();
    while sandbox.json(&["tasks", "show", &before.to_string()])["state"] != "completed" {
        assert!(
            started.elapsed() < PATIENCE,
            "task {before} never completed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut console = sandbox
        .command()
        .arg("console")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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
