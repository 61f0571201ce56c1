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

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::Sandbox;
use common::tmux::{self, Capture, Tmux};

/// How long the screen or the store may take to show what a test waits for.
const DEADLINE: Duration = Duration::from_secs(20);
/// The shell prompt inside tmux, to see that the shell has the terminal back.
const PROMPT: &str = "top-test$ ";

/// What the tests of `top` ask of a sandbox.
trait TopSandbox {
    /// The shell command line that runs `wrangle top` on this store, then prints its
    /// exit code as `EXITED-N`.
    fn top_command(&self, args: &[&str]) -> String;
    /// Whether queue `queue` is paused, per `wrangle --json status`.
    fn queue_paused(&self, queue: &str) -> bool;
    /// A pool group's runners, per `wrangle --json workers list`.
    fn group_runners(&self, worker: &str, group: &str) -> u64;
}

impl TopSandbox for Sandbox {
    fn top_command(&self, args: &[&str]) -> String {
        let mut all = vec!["top"];
        all.extend_from_slice(args);
        format!("{}; echo EXITED-$?", self.shell_command(&all))
    }

    fn queue_paused(&self, queue: &str) -> bool {
        self.queue(queue)
            .unwrap_or_else(|| panic!("no queue {queue} in {}", self.json(&["status"])))["paused"]
            .as_bool()
            .unwrap()
    }

    fn group_runners(&self, worker: &str, group: &str) -> u64 {
        self.pool_group(worker, group).unwrap_or_else(|| {
            panic!(
                "no group {group} of worker {worker} in {}",
                self.json(&["workers", "list"])
            )
        })["runners"]
            .as_u64()
            .unwrap()
    }
}

/// A `sh` with a known prompt in a `width`x`height` terminal, in the sandbox's dir; `None`
/// (test skipped) when tmux is missing and not required.
fn shell(sandbox: &Sandbox, width: u16, height: u16) -> Option<Tmux> {
    if !tmux::installed_or_skip() {
        return None;
    }
    let prompt = format!("PS1={PROMPT}");
    let shell = ["env", &prompt, "TERM=xterm-256color", "sh"];
    let dir = sandbox.dir.path();
    Some(Tmux::start(
        dir,
        (width, height),
        Capture::Pane,
        DEADLINE,
        &shell,
    ))
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
    let mut sandbox = Sandbox::sqlite();
    // 30 blocks of 0.3 s on one runner: about 9 s of visible progress.
    sandbox.ok(&[
        "job", "create", "nums", "--range", "0..30", "--block", "1", "--kind", "tick", "-q", "a",
    ]);
    sandbox.ok(&["submit", "tock", "{}", "-q", "b"]);
    sandbox.spawn_worker("w1", &["--pool", "a=1:b=1", "--exec", "sleep 0.3"]);
    sandbox.wait_for_worker("w1", DEADLINE);
    let Some(tmux) = shell(&sandbox, 80, 24) else {
        return;
    };
    tmux.type_line(&sandbox.top_command(&["--interval", "200ms"]));

    let first = tmux.wait_for("panes, worker w1, queues a and b, job nums", |s| {
        s.contains("workers (1)")
            && s.contains("queues (2)")
            && s.contains("jobs (1)")
            && row(s, "w1").is_some()
            && row(s, "a ").is_some()
            && row(s, "b ").is_some()
            && job_percent(s, "nums").is_some()
    });
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
    let later = tmux.wait_for("job nums progressing", |s| {
        job_percent(s, "nums").is_some_and(|p| p > before)
    });
    // Queue a's completed-in-the-last-minute count follows (last column).
    tmux.wait_for("queue a's DONE/M above 0", |s| {
        row(s, "a ").is_some_and(|r| r.last().unwrap().parse::<u64>().unwrap_or(0) > 0)
    });
    assert!(job_percent(&later, "nums").unwrap() <= 100.0);

    tmux.press(&["q"]);
    tmux.wait_for("top exited 0", |s| s.contains("EXITED-0"));
}

#[test]
fn top_keys_pause_and_resume_queues_scale_a_worker_and_quit() {
    let mut sandbox = Sandbox::sqlite();
    for queue in ["a", "b"] {
        sandbox.ok(&["submit", "tick", "{}", "-q", queue]);
    }
    sandbox.spawn_worker("w1", &["--pool", "a=1:b=1", "--exec", "true"]);
    sandbox.wait_for_worker("w1", DEADLINE);
    let Some(tmux) = shell(&sandbox, 80, 24) else {
        return;
    };
    tmux.type_line(&sandbox.top_command(&["--interval", "300ms"]));
    tmux.wait_for("worker w1 and queues a and b", |s| {
        row(s, "w1").is_some() && row(s, "a ").is_some() && row(s, "b ").is_some()
    });

    // Tab to the queues pane: its first queue (a) is selected. p pauses it, p resumes it.
    tmux.press(&["Tab", "p"]);
    sandbox.wait_until("queue a paused", DEADLINE, || sandbox.queue_paused("a"));
    assert!(!sandbox.queue_paused("b"), "only the selected queue");
    tmux.wait_for("queue a shown paused", |s| {
        row(s, "a ").is_some_and(|r| r.get(1) == Some(&"paused"))
    });
    tmux.press(&["p"]);
    sandbox.wait_until("queue a resumed", DEADLINE, || !sandbox.queue_paused("a"));
    tmux.wait_for("queue a shown resumed", |s| {
        row(s, "a ").is_some_and(|r| r.get(1) != Some(&"paused"))
    });
    // Down selects queue b.
    tmux.press(&["Down", "p"]);
    sandbox.wait_until("queue b paused", DEADLINE, || sandbox.queue_paused("b"));
    assert!(!sandbox.queue_paused("a"));
    tmux.wait_for("the footer says so", |s| {
        s.contains("queue b paused for every worker")
    });
    tmux.press(&["p"]);
    sandbox.wait_until("queue b resumed", DEADLINE, || !sandbox.queue_paused("b"));

    // Back to the workers pane: + on the worker row scales its first group (a).
    tmux.press(&["Tab", "+"]);
    sandbox.wait_until("group a at 2 runners", DEADLINE, || {
        sandbox.group_runners("w1", "a") == 2
    });
    assert_eq!(sandbox.group_runners("w1", "b"), 1);
    tmux.wait_for("the worker's acknowledgement in the footer", |s| {
        s.contains("w1: group a: 1 -> 2 runners")
    });
    tmux.wait_for("w1 shown with 3 runners", |s| {
        row(s, "w1").is_some_and(|r| r[2] == "3")
    });
    // Down twice selects group b's row: + and - act on that group.
    tmux.press(&["Down", "Down", "+"]);
    sandbox.wait_until("group b at 2 runners", DEADLINE, || {
        sandbox.group_runners("w1", "b") == 2
    });
    tmux.press(&["-"]);
    sandbox.wait_until("group b back at 1 runner", DEADLINE, || {
        sandbox.group_runners("w1", "b") == 1
    });
    assert_eq!(sandbox.group_runners("w1", "a"), 2);

    // q: the dashboard ends with exit 0, the shell has the terminal and its prompt back.
    tmux.press(&["q"]);
    let screen = tmux.wait_for("top exited 0", |s| s.contains("EXITED-0"));
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
    let mut sandbox = Sandbox::sqlite();
    sandbox.ok(&[
        "job", "create", "nums", "--range", "0..5", "--block", "1", "--kind", "tick",
    ]);
    sandbox.spawn_worker("w1", &["--exec", "true", "-n", "1"]);
    sandbox.wait_for_worker("w1", DEADLINE);
    let Some(tmux) = shell(&sandbox, 40, 10) else {
        return;
    };
    tmux.type_line(&sandbox.top_command(&["--interval", "200ms"]));
    let screen = tmux.wait_for("the tables in 40x10", |s| {
        s.contains("workers (1)") && s.contains("queues (")
    });
    assert!(
        screen.lines().all(|l| l.chars().count() <= 40),
        "drawn outside 40x10:\n{screen}"
    );
    tmux.resize(20, 5);
    tmux.wait_for("a redraw at 20x5", |s| {
        s.lines()
            .next()
            .is_some_and(|l| l.starts_with("wrangle top"))
            && s.lines().count() <= 5
    });
    tmux.resize(100, 30);
    tmux.wait_for("the jobs pane back at 100x30", |s| {
        s.contains("jobs (1)") && job_percent(s, "nums").is_some()
    });
    // Ctrl-C quits like q (and a panic would have ended it with 101 long before).
    tmux.press(&["C-c"]);
    tmux.wait_for("top exited 0", |s| s.contains("EXITED-0"));
}

#[test]
fn top_without_a_terminal_exits_2_before_opening_the_store() {
    let sandbox = Sandbox::sqlite();
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
    let help = Sandbox::sqlite().ok(&["top", "--help"]);
    for expected in [
        "Examples:",
        "wrangle top --interval 250ms",
        "--interval <DUR>",
        "Keys:",
    ] {
        assert!(help.contains(expected), "no {expected:?} in\n{help}");
    }
}
