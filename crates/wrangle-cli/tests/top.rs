//! End-to-end tests of `wrangle top`, the full-screen dashboard, driven in a real terminal:
//! tmux runs it (each test on its own tmux server, socket in the test's temp dir, killed
//! when the test ends, pass or fail), `send-keys` types and `capture-pane` reads the screen, against real
//! `wrangle worker` processes on the embedded SQLite store.
//!
//! - in 80x24 it shows the workers, queues and jobs panes with a running worker and its
//!   queues, and updates while the worker drains a job;
//! - its keys act on the store: `p` pauses and resumes the selected queue, `+`/`-` scale
//!   the selected worker's pool group (checked with `--json status` and `workers list`),
//!   `q` quits and gives the shell its prompt back;
//! - a 40x10 terminal, resized down to 20x5 and up to 100x30, never makes it panic;
//! - without a terminal it exits 2 with one line, before opening the store.
//!
//! tmux is required when `CI` or `WRANGLE_TEST_REQUIRE_SERVERS` is set; elsewhere the
//! terminal tests are skipped without it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long the screen or the store may take to show what a test waits for.
const DEADLINE: Duration = Duration::from_secs(20);
/// The shell prompt inside tmux, to see that the shell has the terminal back.
const PROMPT: &str = "top-test$ ";

/// A temp dir with its own SQLite store, and the workers started in it.
struct Sandbox {
    dir: tempfile::TempDir,
    store: String,
    workers: Vec<Child>,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = format!("sqlite://{}", dir.path().join("w.db").display());
        Sandbox {
            dir,
            store,
            workers: Vec::new(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wrangle"));
        command
            .current_dir(self.dir.path())
            .env_remove("WRANGLE_STORE")
            .env("WRANGLE_LOG", "info")
            .args(["--store", &self.store])
            .args(args)
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "wrangle {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// Starts `wrangle worker --name NAME ARGS…`, logging to NAME.log.
    fn spawn_worker(&mut self, name: &str, args: &[&str]) {
        let log = std::fs::File::create(self.path(&format!("{name}.log"))).unwrap();
        let child = self
            .command(&["worker", "--name", name])
            .args(args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.workers.push(child);
    }

    /// Waits until worker `name` is registered (so `top` shows it from its first frame).
    fn wait_for_worker(&self, name: &str) {
        self.wait_until(&format!("worker {name} registered"), || {
            let workers = self.json(&["workers", "list"]);
            workers
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w["info"]["name"] == name)
        });
    }

    /// Polls `check` until it holds; panics with the worker logs after [`DEADLINE`].
    fn wait_until(&self, what: &str, mut check: impl FnMut() -> bool) {
        let started = Instant::now();
        while !check() {
            assert!(
                started.elapsed() < DEADLINE,
                "{what}: not within {DEADLINE:?}\n{}",
                self.worker_logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn worker_logs(&self) -> String {
        let mut logs = String::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "log") {
                logs += &format!("--- {}\n", path.display());
                logs += &std::fs::read_to_string(&path).unwrap_or_default();
            }
        }
        logs
    }

    /// The shell command line that runs `wrangle top` on this store, then prints its
    /// exit code as `EXITED-N`.
    fn top_command(&self, args: &[&str]) -> String {
        let mut words = vec![
            quote(env!("CARGO_BIN_EXE_wrangle")),
            "--store".into(),
            quote(&self.store),
            "top".into(),
        ];
        words.extend(args.iter().map(|a| quote(a)));
        format!("{}; echo EXITED-$?", words.join(" "))
    }

    /// Whether queue `queue` is paused, per `wrangle --json status`.
    fn queue_paused(&self, queue: &str) -> bool {
        let status = self.json(&["status"]);
        status["queues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["queue"] == queue)
            .unwrap_or_else(|| panic!("no queue {queue} in {status}"))["paused"]
            .as_bool()
            .unwrap()
    }

    /// A pool group's runners, per `wrangle --json workers list`.
    fn group_runners(&self, worker: &str, group: &str) -> u64 {
        let workers = self.json(&["workers", "list"]);
        let record = workers
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["info"]["name"] == worker)
            .unwrap_or_else(|| panic!("no worker {worker} in {workers}"))
            .clone();
        record["info"]["pool"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == group)
            .unwrap_or_else(|| panic!("no group {group} in {record}"))["runners"]
            .as_u64()
            .unwrap()
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

/// `text` as one shell word.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A tmux server of its own running a shell in a fixed-size window; killed on drop. Its
/// socket is in the test's temp dir, so nothing is left behind in tmux's shared one.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// A `sh` with a known prompt in a `width`x`height` window, in `dir`; `None` (test
    /// skipped) when tmux is missing and not required.
    fn start(dir: &Path, width: u16, height: u16) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            assert!(
                !wrangle_testkit::require_servers(),
                "tmux is required (CI / WRANGLE_TEST_REQUIRE_SERVERS) but not installed"
            );
            eprintln!("skipping: tmux is not installed");
            return None;
        }
        let tmux = Tmux {
            socket: dir.join("tmux.sock"),
        };
        let (width, height) = (width.to_string(), height.to_string());
        let dir = dir.to_str().unwrap();
        // No user config: the test must see the same terminal on every machine.
        tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            &width,
            "-y",
            &height,
            "-c",
            dir,
            "env",
            &format!("PS1={PROMPT}"),
            "TERM=xterm-256color",
            "sh",
        ]);
        Some(tmux)
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types a line into the shell.
    fn type_line(&self, line: &str) {
        self.run(&["send-keys", "-t", "top", "-l", line]);
        self.run(&["send-keys", "-t", "top", "Enter"]);
    }

    /// Presses keys by tmux name (`Tab`, `Down`, `C-c`, `p`, `+`).
    fn press(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "top"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "top"])
    }

    /// Polls the screen until `check` holds on it; panics with the last screen (and the
    /// sandbox's worker logs) after [`DEADLINE`]. Returns that screen.
    fn wait_for(
        &self,
        sandbox: &Sandbox,
        what: &str,
        mut check: impl FnMut(&str) -> bool,
    ) -> String {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "{what}: not on screen within {DEADLINE:?}:\n{screen}\n{}",
                sandbox.worker_logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn resize(&self, width: u16, height: u16) {
        self.run(&[
            "resize-window",
            "-t",
            "top",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
        ]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The job's percentage on the screen (`nums   33.3% ───`), if its row shows.
fn job_percent(screen: &str, job: &str) -> Option<f64> {
    let line = screen.lines().find(|l| l.contains(job))?;
    let before = line.split('%').next()?;
    before.split_whitespace().last()?.parse().ok()
}

/// The first screen line whose text (after the pane border and selection mark) starts
/// with `start`, as its words.
fn row<'a>(screen: &'a str, start: &str) -> Option<Vec<&'a str>> {
    screen
        .lines()
        .find(|line| line.trim_start_matches(['│', '>', ' ']).starts_with(start))
        .map(|line| {
            line.split(|c: char| c.is_whitespace() || c == '│')
                .filter(|w| !w.is_empty() && *w != ">")
                .collect()
        })
}

#[test]
fn top_renders_in_80x24_and_updates_while_a_worker_drains_a_job() {
    let mut sandbox = Sandbox::new();
    // 30 blocks of 0.3 s on one runner: about 9 s of visible progress.
    sandbox.ok(&[
        "job", "create", "nums", "--range", "0..30", "--block", "1", "--kind", "tick", "-q", "a",
    ]);
    sandbox.ok(&["submit", "tock", "{}", "-q", "b"]);
    sandbox.spawn_worker("w1", &["--pool", "a=1:b=1", "--exec", "sleep 0.3"]);
    sandbox.wait_for_worker("w1");
    let Some(tmux) = Tmux::start(sandbox.dir.path(), 80, 24) else {
        return;
    };
    tmux.type_line(&sandbox.top_command(&["--interval", "200ms"]));

    let first = tmux.wait_for(
        &sandbox,
        "panes, worker w1, queues a and b, job nums",
        |s| {
            s.contains("workers (1)")
                && s.contains("queues (2)")
                && s.contains("jobs (1)")
                && row(s, "w1").is_some()
                && row(s, "a ").is_some()
                && row(s, "b ").is_some()
                && job_percent(s, "nums").is_some()
        },
    );
    let lines: Vec<&str> = first.lines().collect();
    assert!(
        lines.len() <= 24 && lines.iter().all(|l| l.chars().count() <= 80),
        "drawn outside 80x24:\n{first}"
    );
    assert!(
        lines[0].starts_with("wrangle top"),
        "summary line first:\n{first}"
    );
    let keys = lines.last().unwrap();
    assert!(keys.contains("q quit"), "keys in the footer:\n{first}");
    // The worker row: name, host, 2 runners (groups a and b), then each group's row.
    let w1 = row(&first, "w1").unwrap();
    assert_eq!(w1[2], "2", "{w1:?} in\n{first}");
    let group_a = row(&first, "└ a").expect("group a's row");
    assert_eq!(group_a[2..4], ["group", "1"], "{group_a:?}");

    // It updates: the job's percentage moves while the worker drains it.
    let before = job_percent(&first, "nums").unwrap();
    let later = tmux.wait_for(&sandbox, "job nums progressing", |s| {
        job_percent(s, "nums").is_some_and(|p| p > before)
    });
    // Queue a's completed-in-the-last-minute count follows (last column).
    tmux.wait_for(&sandbox, "queue a's DONE/M above 0", |s| {
        row(s, "a ").is_some_and(|r| r.last().unwrap().parse::<u64>().unwrap_or(0) > 0)
    });
    assert!(job_percent(&later, "nums").unwrap() <= 100.0);

    tmux.press(&["q"]);
    tmux.wait_for(&sandbox, "top exited 0", |s| s.contains("EXITED-0"));
}

#[test]
fn top_keys_pause_and_resume_queues_scale_a_worker_and_quit() {
    let mut sandbox = Sandbox::new();
    for queue in ["a", "b"] {
        sandbox.ok(&["submit", "tick", "{}", "-q", queue]);
    }
    sandbox.spawn_worker("w1", &["--pool", "a=1:b=1", "--exec", "true"]);
    sandbox.wait_for_worker("w1");
    let Some(tmux) = Tmux::start(sandbox.dir.path(), 80, 24) else {
        return;
    };
    tmux.type_line(&sandbox.top_command(&["--interval", "300ms"]));
    tmux.wait_for(&sandbox, "worker w1 and queues a and b", |s| {
        row(s, "w1").is_some() && row(s, "a ").is_some() && row(s, "b ").is_some()
    });

    // Tab to the queues pane: its first queue (a) is selected. p pauses it, p resumes it.
    tmux.press(&["Tab", "p"]);
    sandbox.wait_until("queue a paused", || sandbox.queue_paused("a"));
    assert!(!sandbox.queue_paused("b"), "only the selected queue");
    tmux.wait_for(&sandbox, "queue a shown paused", |s| {
        row(s, "a ").is_some_and(|r| r.get(1) == Some(&"paused"))
    });
    tmux.press(&["p"]);
    sandbox.wait_until("queue a resumed", || !sandbox.queue_paused("a"));
    tmux.wait_for(&sandbox, "queue a shown resumed", |s| {
        row(s, "a ").is_some_and(|r| r.get(1) != Some(&"paused"))
    });
    // Down selects queue b.
    tmux.press(&["Down", "p"]);
    sandbox.wait_until("queue b paused", || sandbox.queue_paused("b"));
    assert!(!sandbox.queue_paused("a"));
    tmux.wait_for(&sandbox, "the footer says so", |s| {
        s.contains("queue b paused for every worker")
    });
    tmux.press(&["p"]);
    sandbox.wait_until("queue b resumed", || !sandbox.queue_paused("b"));

    // Back to the workers pane: + on the worker row scales its first group (a).
    tmux.press(&["Tab", "+"]);
    sandbox.wait_until("group a at 2 runners", || {
        sandbox.group_runners("w1", "a") == 2
    });
    assert_eq!(sandbox.group_runners("w1", "b"), 1);
    tmux.wait_for(
        &sandbox,
        "the worker's acknowledgement in the footer",
        |s| s.contains("w1: group a: 1 -> 2 runners"),
    );
    tmux.wait_for(&sandbox, "w1 shown with 3 runners", |s| {
        row(s, "w1").is_some_and(|r| r[2] == "3")
    });
    // Down twice selects group b's row: + and - act on that group.
    tmux.press(&["Down", "Down", "+"]);
    sandbox.wait_until("group b at 2 runners", || {
        sandbox.group_runners("w1", "b") == 2
    });
    tmux.press(&["-"]);
    sandbox.wait_until("group b back at 1 runner", || {
        sandbox.group_runners("w1", "b") == 1
    });
    assert_eq!(sandbox.group_runners("w1", "a"), 2);

    // q: the dashboard ends with exit 0, the shell has the terminal and its prompt back.
    tmux.press(&["q"]);
    let screen = tmux.wait_for(&sandbox, "top exited 0", |s| s.contains("EXITED-0"));
    assert!(
        screen.trim_end().ends_with(PROMPT.trim_end()),
        "the prompt is back:\n{screen}"
    );
    assert!(
        !screen.contains("workers ("),
        "the dashboard's screen is gone:\n{screen}"
    );
}

#[test]
fn top_fits_a_tiny_terminal_and_survives_resizing() {
    let mut sandbox = Sandbox::new();
    sandbox.ok(&[
        "job", "create", "nums", "--range", "0..5", "--block", "1", "--kind", "tick",
    ]);
    sandbox.spawn_worker("w1", &["--exec", "true", "-n", "1"]);
    sandbox.wait_for_worker("w1");
    let Some(tmux) = Tmux::start(sandbox.dir.path(), 40, 10) else {
        return;
    };
    tmux.type_line(&sandbox.top_command(&["--interval", "200ms"]));
    let screen = tmux.wait_for(&sandbox, "the tables in 40x10", |s| {
        s.contains("workers (1)") && s.contains("queues (")
    });
    assert!(
        screen.lines().all(|l| l.chars().count() <= 40),
        "drawn outside 40x10:\n{screen}"
    );
    tmux.resize(20, 5);
    tmux.wait_for(&sandbox, "a redraw at 20x5", |s| {
        s.lines()
            .next()
            .is_some_and(|l| l.starts_with("wrangle top"))
            && s.lines().count() <= 5
    });
    tmux.resize(100, 30);
    tmux.wait_for(&sandbox, "the jobs pane back at 100x30", |s| {
        s.contains("jobs (1)") && job_percent(s, "nums").is_some()
    });
    // Ctrl-C quits like q (and a panic would have ended it with 101 long before).
    tmux.press(&["C-c"]);
    tmux.wait_for(&sandbox, "top exited 0", |s| s.contains("EXITED-0"));
}

#[test]
fn top_without_a_terminal_exits_2_before_opening_the_store() {
    let sandbox = Sandbox::new();
    for args in [
        &["top"][..],
        &["--json", "top"],
        &["top", "--interval", "10ms"],
        &["top", "--interval", "soon"],
    ] {
        let out = sandbox
            .command(args)
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
        assert!(stderr.starts_with("wrangle: error: "), "{stderr}");
    }
    let out = sandbox
        .command(&["top"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs a terminal"),
        "{out:?}"
    );
    assert!(!sandbox.path("w.db").exists(), "no store was opened");
}

#[test]
fn top_help_has_examples_and_keys() {
    let help = Sandbox::new().ok(&["top", "--help"]);
    for expected in [
        "Examples:",
        "wrangle top --interval 250ms",
        "--interval <DUR>",
        "Keys:",
    ] {
        assert!(help.contains(expected), "no {expected:?} in\n{help}");
    }
}
