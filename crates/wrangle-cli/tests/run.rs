//! End-to-end tests of `wrangle run`, the foreground parallel runner: real commands, real
//! runner processes (Python, Ruby, shell), real signals and kill -9.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// divvy's README: the SHA-1 codes of tickets 0 to 9.
const TICKET_CODES: [&str; 10] = [
    "b6589fc6ab0dc82cf12099d1c2d40ab994e8410c",
    "356a192b7913b04c54574d18c28d46e6395428ab",
    "da4b9237bacccdf19c0760cab7aec4a8359010b0",
    "77de68daecd823babbb58edb1c8e14d7106e83bb",
    "1b6453892473a467d07372d45eb05abc2031647a",
    "ac3478d69a3c81fa62e60f5c3696165a4e5e6ac4",
    "c1dfd96eea8cc2b62785275bca38ac261256e278",
    "902ba3cda1883801594b6e1b452790cc53948fda",
    "fe5dbbcea5ce7e2988b8c69bcfdfde8904aabc1f",
    "0ade7c2cf97f75d009975f4d720d1fa6c19f4897",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `wrangle` started in the repository root (so `examples/...` paths work).
fn wrangle(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wrangle"));
    command
        .current_dir(repo_root())
        .env_remove("WRANGLE_STORE")
        .args(args);
    command
}

fn run_with_input(args: &[&str], input: &str) -> Output {
    let mut child = wrangle(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    // Written on a thread: wrangle reads stdin only as fast as it runs items.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn run(args: &[&str]) -> Output {
    run_with_input(args, "")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn lines(out: &Output) -> Vec<String> {
    text(&out.stdout).lines().map(str::to_string).collect()
}

fn numbers(n: u64) -> String {
    (1..=n).map(|i| format!("{i}\n")).collect()
}

fn expected_tickets() -> Vec<String> {
    TICKET_CODES
        .iter()
        .enumerate()
        .map(|(ticket, code)| format!("{ticket:>6} {code}"))
        .collect()
}

fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A running `wrangle run` whose stdout lines are collected as they come.
struct LiveRun {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl LiveRun {
    fn start(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                sink.lock().unwrap().push(line.unwrap());
            }
        });
        LiveRun {
            child,
            lines,
            reader: Some(reader),
        }
    }

    fn wait_for_lines(&self, count: usize, limit: Duration) {
        let started = Instant::now();
        while self.lines.lock().unwrap().len() < count {
            assert!(
                started.elapsed() < limit,
                "fewer than {count} lines after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn interrupt(&self) {
        signal(self.child.id(), "INT");
    }

    /// Waits for the exit; returns the exit code, all stdout lines and stderr.
    fn finish(mut self) -> (Option<i32>, Vec<String>, String) {
        let mut stderr = String::new();
        std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        let status = self.child.wait().unwrap();
        self.reader.take().unwrap().join().unwrap();
        let lines = std::mem::take(&mut *self.lines.lock().unwrap());
        (status.code(), lines, stderr)
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn ten_thousand_items_give_ten_thousand_whole_lines() {
    let out = run_with_input(&["run", "-n", "4", "--", "echo", "{}"], &numbers(10_000));
    assert_exit(&out, 0);
    let mut seen: Vec<u64> = lines(&out)
        .iter()
        .map(|line| {
            line.parse()
                .unwrap_or_else(|_| panic!("torn line {line:?}"))
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..=10_000).collect::<Vec<u64>>());
    assert!(
        text(&out.stderr).contains("10000 done, 0 failed"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_dance_party_prints_divvys_ticket_codes() {
    let args = [
        "run",
        "-n",
        "5",
        "--range",
        "0..10",
        "--",
        "examples/dance-party/ticket-code.sh",
        "{}",
    ];
    let out = run(&args);
    assert_exit(&out, 0);
    let got: BTreeSet<String> = lines(&out).into_iter().collect();
    assert_eq!(got, expected_tickets().into_iter().collect());

    let mut ordered = args.to_vec();
    ordered.insert(1, "--keep-order");
    let out = run(&ordered);
    assert_exit(&out, 0);
    assert_eq!(lines(&out), expected_tickets());
}

#[test]
fn the_example_runners_in_python_ruby_and_shell_agree_with_divvy() {
    let input: String = (0..10).map(|i| format!("{i}\n")).collect();
    for runner in [
        "python3 examples/runners/runner.py",
        "ruby examples/runners/runner.rb",
        "sh examples/runners/runner.sh",
    ] {
        let out = run_with_input(
            &["run", "-n", "2", "--keep-order", "--runner", runner],
            &input,
        );
        assert_exit(&out, 0);
        assert_eq!(lines(&out), expected_tickets(), "{runner}");
        let ready = text(&out.stderr).matches("ready (pid").count();
        assert!(
            (1..=2).contains(&ready),
            "{runner} started {ready} processes"
        );
    }
}

#[test]
fn a_python_runner_loads_once_and_handles_100000_items() {
    let out = run_with_input(
        &[
            "run",
            "-n",
            "2",
            "--runner",
            "python3 examples/runners/runner.py",
        ],
        &numbers(100_000),
    );
    assert_exit(&out, 0);
    let got = lines(&out);
    assert_eq!(got.len(), 100_000);
    let tickets: BTreeSet<u64> = got
        .iter()
        .map(|line| line.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(tickets.len(), 100_000, "every item exactly once");
    // Loaded once per runner slot: two processes for 100,000 items.
    assert_eq!(
        text(&out.stderr).matches("ready (pid").count(),
        2,
        "{}",
        text(&out.stderr)
    );
}

/// A runner that records its pid at start and takes a little time per item.
const SLOW_RUNNER: &str = r#"
import json, os, sys, time
open(os.path.join(os.environ["PID_DIR"], str(os.getpid())), "w").close()
for line in sys.stdin:
    task = json.loads(line)
    time.sleep(0.005)
    print(json.dumps({"id": task["id"], "ok": True, "result": task["payload"]}), flush=True)
"#;

#[test]
fn a_runner_killed_mid_run_is_restarted_and_its_items_retried() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    std::fs::create_dir(&pids).unwrap();
    let script = dir.path().join("runner.py");
    std::fs::write(&script, SLOW_RUNNER).unwrap();
    let runner = format!("python3 {}", script.display());
    let items = dir.path().join("items");
    std::fs::write(&items, numbers(400)).unwrap();
    let mut command = wrangle(&[
        "run",
        "-n",
        "2",
        "--retries",
        "3",
        "--backoff",
        "10ms",
        "--items",
        items.to_str().unwrap(),
        "--runner",
        &runner,
        "--runner-in-flight",
        "4",
    ]);
    command.env("PID_DIR", &pids);
    let live = LiveRun::start(command);
    live.wait_for_lines(50, Duration::from_secs(60));
    let victim: u32 = std::fs::read_dir(&pids)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    signal(victim, "KILL");
    let (code, got, stderr) = live.finish();
    assert_eq!(code, Some(0), "{stderr}");
    let mut items: Vec<u64> = got.iter().map(|l| l.parse().unwrap()).collect();
    items.sort_unstable();
    assert_eq!(
        items,
        (1..=400).collect::<Vec<u64>>(),
        "every item printed exactly once"
    );
    assert!(
        std::fs::read_dir(&pids).unwrap().count() >= 3,
        "the killed runner was started again"
    );
    assert!(stderr.contains("retried"), "{stderr}");
    assert!(
        !stderr.contains(" 0 retried"),
        "the killed runner's items were retried: {stderr}"
    );
}

#[test]
fn an_interrupted_run_resumes_from_its_journal() {
    let dir = tempfile::tempdir().unwrap();
    let items = dir.path().join("items.txt");
    std::fs::write(&items, numbers(300)).unwrap();
    let journal = dir.path().join("journal.db");
    let args = [
        "run",
        "-n",
        "2",
        "--journal",
        journal.to_str().unwrap(),
        "--items",
        items.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "sleep 0.02; echo \"$1\"",
        "_",
        "{}",
    ];
    let live = LiveRun::start(wrangle(&args));
    live.wait_for_lines(40, Duration::from_secs(60));
    live.interrupt();
    let (code, first, stderr) = live.finish();
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        first.len() < 300,
        "interrupted before the end: {}",
        first.len()
    );

    let out = run(&args);
    assert_exit(&out, 0);
    let second = lines(&out);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{} skipped", first.len())),
        "{stderr}"
    );
    let mut all: Vec<u64> = first
        .iter()
        .chain(&second)
        .map(|l| l.parse().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=300).collect::<Vec<u64>>(),
        "every item exactly once over both runs"
    );

    // A third run finds everything done and runs nothing.
    let out = run(&args);
    assert_exit(&out, 0);
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("0 done, 0 failed, 0 retried, 300 skipped"),
        "{}",
        text(&out.stderr)
    );
}

/// Resident memory of a process, in KiB (0 when it cannot be read).
fn rss_kib(pid: u32) -> u64 {
    wrangle::exec::rss_bytes(pid) / 1024
}

#[test]
fn an_endless_dispatch_runs_in_flat_memory() {
    let mut command = wrangle(&[
        "run",
        "-n",
        "2",
        "--dispatch",
        "yes 7",
        "--runner",
        "python3 examples/runners/runner.py",
    ]);
    command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let child = command.spawn().unwrap();
    // The allocator's footprint moves by several MiB from one moment to the next at
    // 20,000 items/s (more when the other tests of this file load both cores: 11 MiB was
    // seen between windows 6 s apart), so compare the peaks of two windows 12 s apart,
    // not two single samples: a leak of even 64 bytes per item would add ~15 MiB.
    let peak = |from: u64, to: u64, started: std::time::Instant| {
        let mut peak = 0;
        while started.elapsed() < Duration::from_secs(to) {
            if started.elapsed() >= Duration::from_secs(from) {
                peak = peak.max(rss_kib(child.id()));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        peak
    };
    let started = std::time::Instant::now();
    let early = peak(2, 4, started);
    assert!(early > 0, "the run's memory could not be read");
    let late = peak(14, 16, started);
    signal(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let stderr = text(&out.stderr);
    let done: u64 = stderr
        .lines()
        .filter_map(|line| line.strip_prefix("wrangle run: interrupted: "))
        .find_map(|summary| summary.split_once(" done,").map(|(done, _)| done))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary: {stderr}"));
    assert!(done > 20_000, "the run made progress: {done} items");
    assert!(
        late < early + 12 * 1024,
        "peak memory grew from {early} KiB to {late} KiB over {done} items"
    );
}

/// GNU parallel's input sources and placeholders: several `:::` lists combined (the last
/// varying fastest), `:::+` paired with the list before (as long as the shorter), `::::`
/// files, `{N}`, the path forms `{.}` `{/}` `{//}` `{/.}` (also after `{N`), and braces
/// that are no placeholder (`${X}` for a shell, awk's `{print}`) passed as written.
#[test]
fn input_sources_and_placeholders_as_gnu_parallel_spells_them() {
    let ok = |args: &[&str]| {
        let out = run(args);
        assert_exit(&out, 0);
        lines(&out)
    };
    assert_eq!(
        ok(&["run", "-k", "echo", ":::", "a", "b", ":::", "1", "2"]),
        ["a 1", "a 2", "b 1", "b 2"]
    );
    assert_eq!(
        ok(&[
            "run", "-k", "echo", "{2}-{1}", ":::", "a", "b", "c", ":::+", "1", "2"
        ]),
        ["1-a", "2-b"]
    );
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files.txt");
    std::fs::write(&files, "dir/sub/a.tar.gz\nb.txt\n").unwrap();
    let files = files.to_str().unwrap();
    assert_eq!(
        ok(&["run", "-k", "echo", "{.}|{/}|{//}|{/.}", "::::", files]),
        ["dir/sub/a.tar|a.tar.gz|dir/sub|a.tar", "b|b.txt|.|b"]
    );
    assert_eq!(
        ok(&[
            "run", "-k", "echo", "{1/.}", "{2}", ":::", "x/y.z", ":::", "p", "q"
        ]),
        ["y p", "y q"]
    );
    assert_eq!(
        ok(&["run", "-k", "echo", ":::", "n", "::::", files]),
        ["n dir/sub/a.tar.gz", "n b.txt"]
    );
    // Not placeholders: the shell and awk get their braces.
    assert_eq!(
        ok(&[
            "run",
            "-k",
            "sh",
            "-c",
            "X=$1; echo ${X}x",
            "sh",
            ":::",
            "v"
        ]),
        ["vx"]
    );
    assert_eq!(
        ok(&["run", "-k", "awk", "BEGIN { print ARGV[1] }", ":::", "w"]),
        ["w"]
    );
    let out = run(&["run", "echo", "{fiel}", ":::", "a"]);
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("unknown placeholder {fiel}"));
}

/// GNU parallel's run controls beyond what the compatibility table compares
/// (tests/gnu_parallel.rs): job slots stay within -n, --dry-run runs nothing, --shell
/// never reads an item as shell code, --delay spaces starts, --halt now stops running
/// items, --joblog records exit values and signals.
#[test]
fn run_controls_as_gnu_parallel_has_them() {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().to_str().unwrap();
    let ok = |args: &[&str]| {
        let out = run(args);
        assert_exit(&out, 0);
        lines(&out)
    };
    // {%}: three at a time hold slots 1 to 3; no two running items share one.
    let items: Vec<String> = (1..=12).map(|i| i.to_string()).collect();
    let mut args = vec!["run", "-n", "3", "sh", "-c", "echo {%}; sleep 0.05", ":::"];
    args.extend(items.iter().map(String::as_str));
    let slots: BTreeSet<String> = ok(&args).into_iter().collect();
    assert!(
        !slots.is_empty() && slots.iter().all(|s| ["1", "2", "3"].contains(&s.as_str())),
        "{slots:?}"
    );
    // --dry-run prints the commands, quoted, and runs none of them.
    let touched = format!("{at}/touched");
    assert_eq!(
        ok(&[
            "run",
            "--dry-run",
            "-k",
            "touch",
            "{}",
            ":::",
            &touched,
            "a b"
        ]),
        [format!("touch {touched}"), "touch 'a b'".to_string()]
    );
    assert!(!Path::new(&touched).exists());
    // --shell: the item is $1, never part of the script.
    let pwned = format!("{at}/pwned");
    let hostile = format!("$(touch {pwned}); echo no");
    assert_eq!(
        ok(&[
            "run",
            "--shell",
            r#"printf '%s|%s\n' "$1" "$2""#,
            ":::",
            &hostile,
            ":::",
            "two"
        ]),
        [format!("{hostile}|two")]
    );
    assert!(!Path::new(&pwned).exists());
    // --delay: four starts take at least three gaps, however many may run at once.
    let started = Instant::now();
    ok(&[
        "run", "-n", "4", "--delay", "0.2", "true", ":::", "1", "2", "3", "4",
    ]);
    assert!(started.elapsed() >= Duration::from_millis(600));
    // --halt now: the failure stops the long item at once and starts nothing new.
    let started = Instant::now();
    let out = run(&[
        "run",
        "-n",
        "2",
        "--halt",
        "now,fail=1",
        "sh",
        "-c",
        "sleep {}; exit 3",
        ":::",
        "30",
        "0",
    ]);
    assert_exit(&out, 1);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        text(&out.stderr).contains("halted (--halt now,fail=1)"),
        "{}",
        text(&out.stderr)
    );
    // --joblog: one line per attempt in GNU parallel's columns.
    let joblog = format!("{at}/joblog");
    let out = run(&[
        "run",
        "-k",
        "--timeout",
        "1",
        "--joblog",
        &joblog,
        "sh",
        "-c",
        "sleep {}; exit {}",
        ":::",
        "0",
        "3",
        "0.x",
    ]);
    assert_exit(&out, 1);
    let log = std::fs::read_to_string(&joblog).unwrap();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&joblog).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the joblog is its owner's alone");
    let mut rows: Vec<Vec<&str>> = log.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(
        rows.remove(0),
        [
            "Seq",
            "Host",
            "Starttime",
            "JobRuntime",
            "Send",
            "Receive",
            "Exitval",
            "Signal",
            "Command"
        ]
    );
    rows.sort_by_key(|row| row[0].to_string());
    let summary: Vec<(&str, &str, &str, &str)> =
        rows.iter().map(|r| (r[0], r[6], r[7], r[8])).collect();
    assert_eq!(
        summary,
        [
            ("1", "0", "0", "sh -c 'sleep 0; exit 0'"),
            ("2", "-1", "15", "sh -c 'sleep 3; exit 3'"),
            ("3", "2", "0", "sh -c 'sleep 0.x; exit 0.x'"),
        ]
    );
    assert!(
        rows.iter()
            .all(|r| r[2].parse::<f64>().unwrap() > 1e9 && r[1] == ":")
    );
}

#[test]
fn bad_input_gets_one_line_and_exit_2() {
    let cases: &[&[&str]] = &[
        &["run", "--range", "5..1", "--", "echo"],
        &["run", "--range", "0..10", "--block", "0", "--", "echo"],
        &["run", "--range", "x", "--", "echo"],
        &["run", "-n", "0", "--", "echo", "{}"],
        &["run"],
        &["run", "echo", ":::"],
        &["run", "echo", ":::", "a", ":::"],
        &["run", "echo", ":::+", "a"],
        &["run", "echo", "::::", "/nonexistent/items"],
        &["run", "echo", "{fiel}", ":::", "a"],
        &["run", "echo", "{%x}", ":::", "a"],
        &["run", "echo", "{0}", ":::", "a"],
        &["run", "echo", "{3}", ":::", "a", ":::", "b"],
        &["run", "--timeout", "5x", "--", "echo", "{}"],
        &["run", "--items", "/nonexistent/items", "--", "echo", "{}"],
        &["run", "--dispatch", "/nonexistent/cmd", "--", "echo", "{}"],
        &["run", "--runner", "python3 x.py", "--", "echo", "{}"],
        &["run", "--items", "a", "--range", "0..2", "--", "echo"],
        &["run", "--line-buffer", "--keep-order", "--", "echo"],
        &["run", "--dispatch", "'unclosed", "--", "echo"],
        &["run", "--colsep", "[", "echo", ":::", "a"],
        &["run", "--halt", "later,fail=1", "echo", ":::", "a"],
        &["run", "--delay", "soon", "echo", ":::", "a"],
        &["run", "-N", "2", "echo", "{3}", ":::", "a"],
        &["run", "echo {} | wc", ":::", "a"],
        &["run", "--shell", "echo", "echo", ":::", "a"],
        &["run", "--pipe", "wc"],
        &[
            "run",
            "--joblog",
            "/nonexistent/dir/log",
            "echo",
            ":::",
            "a",
        ],
    ];
    for args in cases {
        let out = run(args);
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("wrangle: error: "), "{args:?}: {stderr}");
    }
}

#[test]
fn failures_retries_timeouts_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    // Fails the first attempt of each item, succeeds on the second.
    let flaky = "if [ -e \"$1.seen\" ]; then echo \"ok $WRANGLE_ATTEMPT\"; else touch \"$1.seen\"; exit 1; fi";
    let a = dir.path().join("a");
    let out = run(&[
        "run",
        "--retries",
        "1",
        "--backoff",
        "10ms",
        "--",
        "sh",
        "-c",
        flaky,
        "_",
        "{}",
        ":::",
        a.to_str().unwrap(),
    ]);
    assert_exit(&out, 0);
    assert_eq!(lines(&out), ["ok 2"]);
    assert!(
        text(&out.stderr).contains("1 done, 0 failed, 1 retried"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&[
        "run",
        "--",
        "sh",
        "-c",
        "echo partial; echo oops >&2; exit 3",
        "_",
        ":::",
        "x",
        "y",
    ]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("item 1 (x) failed after 1 attempt: exit code 3: oops"),
        "{stderr}"
    );
    assert!(stderr.contains("0 done, 2 failed"), "{stderr}");
    assert_eq!(
        lines(&out),
        ["partial", "partial"],
        "a failed item's output is still shown"
    );

    let started = Instant::now();
    let out = run(&[
        "run",
        "--timeout",
        "300ms",
        "--",
        "sleep",
        "{}",
        ":::",
        "30",
    ]);
    assert_exit(&out, 1);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        text(&out.stderr).contains("timed out after 300ms"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn output_modes_tag_line_buffer_and_files() {
    let both = "echo \"out $1\"; echo \"err $1\" >&2";
    let out = run(&[
        "run", "--tag", "-k", "--", "sh", "-c", both, "_", "{}", ":::", "a", "b",
    ]);
    assert_exit(&out, 0);
    assert_eq!(lines(&out), ["a\tout a", "b\tout b"]);
    assert!(text(&out.stderr).contains("a\terr a\n"));

    // Lines come whole while items are still running.
    let slow = "echo \"start $1\"; sleep 0.3; printf 'end %s' \"$1\"";
    let out = run(&[
        "run",
        "-n",
        "2",
        "--line-buffer",
        "--",
        "sh",
        "-c",
        slow,
        "_",
        "{}",
        ":::",
        "a",
        "b",
    ]);
    assert_exit(&out, 0);
    let got = lines(&out);
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(got[..2].iter().all(|l| l.starts_with("start ")), "{got:?}");
    assert!(got[2..].iter().all(|l| l.starts_with("end ")), "{got:?}");

    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let out = run(&[
        "run",
        "--output",
        results.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        both,
        "_",
        "{}",
        ":::",
        "a",
        "b",
    ]);
    assert_exit(&out, 0);
    assert!(out.stdout.is_empty());
    let read = |name: &str| std::fs::read_to_string(results.join(name)).unwrap();
    assert_eq!(read("1.stdout"), "out a\n");
    assert_eq!(read("1.stderr"), "err a\n");
    assert_eq!(read("2.stdout"), "out b\n");
}

#[test]
fn items_reach_the_command_without_a_shell() {
    let nasty = "$(touch pwned); `rm -rf x` 'quoted' \"double\"";
    let out = run_with_input(&["run", "--", "printf", "%s\\n"], &format!("{nasty}\n"));
    assert_exit(&out, 0);
    assert_eq!(lines(&out), [nasty]);
    assert!(!repo_root().join("pwned").exists());
}

#[test]
fn a_second_ctrl_c_stops_running_items_at_once() {
    let live = LiveRun::start(wrangle(&[
        "run",
        "--line-buffer",
        "-n",
        "2",
        "--",
        "sh",
        "-c",
        "echo started; exec sleep 60",
        "_",
        ":::",
        "a",
        "b",
    ]));
    live.wait_for_lines(2, Duration::from_secs(30));
    let started = Instant::now();
    live.interrupt();
    std::thread::sleep(Duration::from_millis(300));
    live.interrupt();
    let (code, _, stderr) = live.finish();
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "running items were killed, not awaited"
    );
}

/// A terminal gets a bar with a total, a rate and an ETA: for a range, and for an
/// `--items` file, whose lines are counted on the side.
#[test]
fn a_terminal_gets_a_progress_bar_with_rate_and_eta() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("items.txt"), numbers(20)).unwrap();
    for items in ["--range 0..20", "--items items.txt"] {
        // `script` gives wrangle a pseudo-terminal, as a user's shell would.
        let command = format!(
            "{} run -n 2 {items} -- sh -c 'sleep 0.1' _ {{}}",
            env!("CARGO_BIN_EXE_wrangle")
        );
        let out = Command::new("script")
            .args(["-qfec", &command, "/dev/null"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let screen = text(&out.stdout);
        assert!(screen.contains("/20 items"), "{items}: {screen}");
        assert!(screen.contains("ETA"), "{items}: {screen}");
        assert!(screen.contains("20 done, 0 failed"), "{items}: {screen}");
    }
}
