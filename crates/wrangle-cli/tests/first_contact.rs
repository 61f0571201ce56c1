//! The first ten minutes of a new user, end to end on the real binary: mistaken command
//! lines are one-line usage errors that touch nothing, commands that only look never
//! create a store, listings end quietly in a pipe that closes, counts say what they mean,
//! and Ctrl-C on `wrangle run` says what happens next and how to resume.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::tmux::{self, Capture, Tmux};
use common::{Sandbox, shell_word, text};

/// `wrangle ARGS…` in `dir`, with no store in the environment and nothing on stdin.
fn wrangle_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wrangle"))
        .args(args)
        .current_dir(dir)
        .env_remove("WRANGLE_STORE")
        .env("WRANGLE_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Every entry of `dir`, recursively (what a command left behind).
fn entries(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        found.push(path.display().to_string());
        if path.is_dir() {
            found.extend(entries(&path));
        }
    }
    found
}

/// Each mistaken command line, with a word its error must contain (the suggestion or the
/// mistake named), run in an empty directory: exit 2, one line, nothing created.
#[test]
fn mistaken_command_lines_are_one_line_usage_errors_that_create_nothing() {
    let cases: &[(&[&str], &str)] = &[
        // Misspelled subcommands and options get a suggestion.
        (&["stauts"], "did you mean"),
        (&["tasks", "lst"], "did you mean 'list'"),
        (
            &["run", "--keep-ordr", "echo", ":::", "a"],
            "did you mean '--keep-order'",
        ),
        (&["submit", "k", "{}", "--wiat"], "did you mean '--wait'"),
        (
            &["tasks", "list", "--stat", "dead"],
            "did you mean '--state'",
        ),
        (&["workers", "scael", "w", "2"], "did you mean 'scale'"),
        // Unknown options of `wrangle run` are errors, never the command to run.
        (&["run", "--bogus", "echo", ":::", "a"], "'--bogus'"),
        (&["run", "-x", "echo", ":::", "a"], "'-x'"),
        // Options in the wrong place, or that the command does not use.
        (&["status", "--state", "dead"], "'--state'"),
        (&["run", "--store", "x.db", "echo", ":::", "a"], "'--store'"),
        (
            &["--store", "x.db", "run", "echo", ":::", "a"],
            "does not use a store",
        ),
        (&["top", "--json"], "'--json'"),
        (&["console", "status"], "'status'"),
        // Misspelled placeholders are errors, never passed to the command.
        (
            &["run", "echo", "{fiel}", ":::", "a"],
            "unknown placeholder {fiel}",
        ),
        (
            &["worker", "--exec", "echo {/x}"],
            "unknown placeholder {/x}",
        ),
        (&["completions", "tcsh"], "'tcsh'"),
        // Missing values and arguments.
        (&["submit"], "<KIND>"),
        (&["tasks", "show"], "<ID>"),
        (&["tasks", "list", "--limit"], "--limit"),
        (&["run", "--runner"], "--runner"),
        (&["job", "create", "j", "--range", "0..10"], "--kind"),
        (&["workers", "scale", "w"], "<TARGET>"),
        (&["queues", "pause"], "<QUEUE>"),
        // Malformed values.
        (&["run", "-n", "x", "echo", ":::", "a"], "'x'"),
        (&["run", "-n0", "echo", ":::", "a"], "at least 1"),
        (
            &["run", "--timeout", "soon", "echo", ":::", "a"],
            "invalid duration 'soon'",
        ),
        (&["run", "--range", "10..1", "echo"], "invalid range"),
        (&["run", "echo", ":::"], "at least one item"),
        (&["submit", "k", "{bad"], "invalid payload JSON"),
        (
            &["submit", "k", "{}", "--delay", "99999999999d"],
            "at most 100 years",
        ),
        (&["submit", "k", "{}", "--priority", "high"], "'high'"),
        (&["tasks", "show", "abc"], "'abc'"),
        (
            &["worker", "--exec", "true", "-n", "1000000000"],
            "runners must be 1 to 1024",
        ),
        (
            &["worker", "--exec", "true", "--lease", "1000000000d"],
            "at most 100 years",
        ),
        (
            &["worker", "--exec", "true", "--lease", "2d"],
            "lease must be",
        ),
        (
            &["worker", "--exec", "true", "--batch-size", "0"],
            "batch size",
        ),
        (&["worker", "--pool", "a=x", "--exec", "true"], "a=x"),
        (&["worker"], "nothing to run"),
        (
            &["job", "create", "j", "--range", "a..b", "--kind", "k"],
            "invalid range",
        ),
        (
            &["--store", "nosuch://x", "status"],
            "unsupported store scheme",
        ),
    ];
    assert!(cases.len() >= 25);
    for (args, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let out = wrangle_in(dir.path(), args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err:?}");
        assert!(err.starts_with("wrangle: error: "), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: no {expected:?} in {err}");
        assert!(text(&out.stdout).is_empty(), "{args:?} printed on stdout");
        assert_eq!(
            entries(dir.path()),
            Vec::<String>::new(),
            "{args:?} wrote files"
        );
    }
    // Bare `wrangle` shows the usage (with its commands) and exits 2.
    let dir = tempfile::tempdir().unwrap();
    let bare = wrangle_in(dir.path(), &[]);
    assert_eq!(bare.status.code(), Some(2));
    let usage = text(&bare.stderr);
    assert!(usage.contains("Usage: wrangle <COMMAND>"), "{usage}");
    assert!(
        usage.contains("status") && !usage.contains("error"),
        "{usage}"
    );
    // `run --help` offers no store option, which run would ignore.
    let help = text(&wrangle_in(dir.path(), &["run", "--help"]).stdout);
    assert!(
        help.contains("--keep-order") && !help.contains("--store"),
        "{help}"
    );
    assert!(text(&wrangle_in(dir.path(), &["status", "--help"]).stdout).contains("--store"));
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn commands_that_only_look_never_create_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("nonexistent/dir/x.db");
    let elsewhere = format!("sqlite://{}", elsewhere.display());
    let looking: &[&[&str]] = &[
        &["status"],
        &["status", "--json"],
        &["tasks", "list"],
        &["tasks", "show", "1"],
        &["tasks", "retry", "--dead"],
        &["tasks", "cancel", "1"],
        &["workers", "list"],
        &["workers", "scale", "w", "2"],
        &["job", "list"],
        &["job", "status", "j"],
        &["job", "cancel", "j"],
        &["queues", "pause", "q"],
        &["console"],
    ];
    for args in looking {
        for store in [None, Some("missing.db"), Some(elsewhere.as_str())] {
            let mut all: Vec<&str> = args.to_vec();
            if let Some(store) = store {
                all.extend(["--store", store]);
            }
            let out = wrangle_in(dir.path(), &all);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{all:?}: {err}");
            assert!(
                err.starts_with("wrangle: error: no wrangle store at ")
                    && err.contains("wrangle worker"),
                "{all:?}: {err}"
            );
            assert_eq!(entries(dir.path()), Vec::<String>::new(), "{all:?} created");
        }
    }
    // The commands that put work in a store create it.
    let out = wrangle_in(dir.path(), &["submit", "k", "{}"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(dir.path().join(".wrangle/wrangle.db").exists());
    assert!(wrangle_in(dir.path(), &["status"]).status.success());
}

/// `wrangle … | head -1` for every command that lists things: exit 0, no panic, no
/// "Broken pipe" (run with `set -o pipefail`, so wrangle's exit code counts).
#[test]
fn listing_commands_piped_into_head_end_quietly() {
    let sandbox = Sandbox::sqlite();
    let items: String = (0..3000).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let out = sandbox.run_with_stdin(&["submit", "k", "--batch", "-"], &items);
    assert!(out.status.success(), "{}", text(&out.stderr));
    sandbox.ok(&["job", "create", "j", "--range", "0..1000", "--kind", "k"]);
    let listings: &[&[&str]] = &[
        &["tasks", "list", "--limit", "3000"],
        &["tasks", "list", "--limit", "3000", "--json"],
        &["tasks", "show", "1"],
        &["status"],
        &["status", "--json"],
        &["workers", "list"],
        &["job", "list"],
        &["job", "status", "j"],
        &["submit", "k", "--batch", "items.txt"],
    ];
    std::fs::write(sandbox.path("items.txt"), &items).unwrap();
    for args in listings {
        let line = format!(
            "set -o pipefail; {} | head -n 1",
            sandbox.shell_command(args)
        );
        let out = Command::new("bash")
            .args(["-c", &line])
            .current_dir(sandbox.dir.path())
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {err}", out.status);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{err}"
        );
        assert_eq!(text(&out.stdout).lines().count(), 1, "{args:?}");
    }
    // `wrangle run` stops starting items once its output has nowhere to go.
    let ran = sandbox.path("ran.txt");
    let line = format!(
        "set -o pipefail; {} run -n 2 --items {} -- sh -c 'echo \"$1\"; echo \"$1\" >> {}' sh | head -n 1",
        shell_word(env!("CARGO_BIN_EXE_wrangle")),
        shell_word(sandbox.path("numbers.txt").to_str().unwrap()),
        shell_word(ran.to_str().unwrap())
    );
    let numbers: String = (1..=20000).map(|i| format!("{i}\n")).collect();
    std::fs::write(sandbox.path("numbers.txt"), numbers).unwrap();
    let out = Command::new("bash").args(["-c", &line]).output().unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{:?} {err}", out.status);
    assert!(err.is_empty(), "a closed pipe is not worth a word: {err}");
    let started = std::fs::read_to_string(&ran).unwrap().lines().count();
    assert!(
        started < 5000,
        "{started} of 20000 items ran after head exited"
    );
}

/// A fast-failing workload on 4 runners: tasks end as soon as they start, so the store
/// holds many as leased while their outcomes are written in batches. Whatever the views
/// show as executing never exceeds the 4 runners, and the rest is labelled as leased.
#[test]
fn executing_counts_never_exceed_the_runners_and_finishing_tasks_are_labelled() {
    let mut sandbox = Sandbox::sqlite();
    let items: String = (0..4000).map(|i| format!("{i}\n")).collect();
    assert!(
        sandbox
            .run_with_stdin(&["submit", "k", "--batch", "-", "--retries", "0"], &items)
            .status
            .success()
    );
    sandbox.spawn_worker(
        "w1",
        &[
            "-n",
            "4",
            "--exec",
            "false",
            "--lease",
            "900ms",
            "--backoff",
            "10ms",
        ],
    );
    let mut looked = 0;
    let mut saw_work = false;
    sandbox.wait_until("the tasks all ended", Duration::from_secs(120), || {
        looked += 1;
        let status = sandbox.json(&["status"]);
        let executing = status["executing"].as_u64().unwrap();
        assert!(
            executing <= 4,
            "status says {executing} executing on 4 runners"
        );
        let workers = sandbox.json(&["workers", "list"]);
        for worker in workers.as_array().unwrap() {
            let groups = worker["info"]["pool"].as_array().unwrap();
            let busy: usize = groups
                .iter()
                .map(|g| g["tasks"].as_array().unwrap().len())
                .sum();
            assert!(busy <= 4, "workers list says {busy} executing: {worker}");
            saw_work |= busy > 0;
        }
        let human = sandbox.ok(&["status"]);
        let line = human
            .lines()
            .find(|l| l.starts_with("executing now: "))
            .unwrap_or_else(|| panic!("no executing line in\n{human}"));
        let shown: u64 = line["executing now: ".len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(shown <= 4, "{line}");
        assert!(line.contains("leased, outcome being written:"), "{line}");
        assert!(
            human.contains("LEASED") && !human.contains("RUNNING"),
            "{human}"
        );
        let header = sandbox.ok(&["workers", "list"]);
        assert!(header.contains("EXECUTING") && header.contains("FINISHING"));
        sandbox.count("dead") == 4000 && looked > 3
    });
    assert!(saw_work, "no look caught the worker running anything");
}

/// Ctrl-C on a real terminal (tmux): the first says what happens next and lets the
/// running items finish, the second stops them; the summary says the run was interrupted
/// and how to resume it; the exit code is 130.
#[test]
fn ctrl_c_once_and_twice_says_what_happens_and_how_to_resume() {
    if !tmux::installed_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::start(
        dir.path(),
        (100, 40),
        Capture::History,
        Duration::from_secs(30),
        &["env", "PS1=$ ", "TERM=xterm-256color", "sh"],
    );
    let wrangle = shell_word(env!("CARGO_BIN_EXE_wrangle"));
    // Once: the two running items finish, nothing else starts.
    tmux.type_line(&format!(
        "{wrangle} run -n 2 --journal j.db -- sh -c 'sleep 2' sh ::: 1 2 3 4 5 6; echo FIRST-EXIT=$?"
    ));
    tmux.wait_for("the progress bar", |s| s.contains("0/6 items"));
    tmux.press(&["C-c"]);
    let screen = tmux.wait_for("the run's end", |s| {
        s.lines().any(|l| l.starts_with("FIRST-EXIT="))
    });
    assert!(
        screen.contains(
            "wrangle run: interrupted: no new items start; running ones finish (Ctrl-C again to stop them now)"
        ),
        "{screen}"
    );
    assert!(
        screen.contains("wrangle run: interrupted: 2 done, 0 failed"),
        "{screen}"
    );
    assert!(
        screen.contains("to resume, run the same command again with --journal j.db"),
        "{screen}"
    );
    assert!(screen.contains("FIRST-EXIT=130"), "{screen}");

    // Twice: the running items are stopped at once; the journal resumes what is left.
    tmux.type_line(&format!(
        "{wrangle} run -n 2 -- sh -c 'sleep 30' sh ::: 1 2 3; echo SECOND-EXIT=$?"
    ));
    tmux.wait_for("the second run's bar", |s| s.contains("0/3 items"));
    tmux.press(&["C-c"]);
    tmux.wait_for("the first interrupt's line", |s| {
        s.contains("Ctrl-C again to stop them now")
    });
    tmux.press(&["C-c"]);
    let screen = tmux.wait_for("the second run's end", |s| {
        s.lines().any(|l| l.starts_with("SECOND-EXIT="))
    });
    // What the second run printed (after the first run's end).
    let screen = &screen[screen.find("\nFIRST-EXIT=130").unwrap()..];
    assert!(
        screen.contains("wrangle run: interrupted again: stopping running items now"),
        "{screen}"
    );
    assert!(
        screen.contains("wrangle run: interrupted: 0 done, 0 failed"),
        "{screen}"
    );
    assert!(
        screen.contains("this run kept no journal; give --journal FILE to make a run resumable"),
        "{screen}"
    );
    assert!(screen.contains("SECOND-EXIT=130"), "{screen}");
    assert!(!screen.contains("WARN"), "no log-style lines: {screen}");
}
