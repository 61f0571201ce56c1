//! The README's tour, run as written: the commands between `<!-- tour:begin -->` and
//! `<!-- tour:end -->` are taken from README.md itself and run in order by bash (`set -e`,
//! as a careful user would), from the repository root, with the `wrangle` under test first
//! on the `PATH`. So the README cannot drift from what wrangle does.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::text;

/// The shell code of the README's tour.
fn tour(readme: &str) -> String {
    let begin = readme
        .find("<!-- tour:begin -->")
        .expect("README.md has a tour:begin marker");
    let end = readme[begin..]
        .find("<!-- tour:end -->")
        .expect("README.md has a tour:end marker")
        + begin;
    let mut code = String::new();
    let mut in_block = false;
    for line in readme[begin..end].lines() {
        if line.starts_with("```") {
            in_block = !in_block;
        } else if in_block {
            code.push_str(line);
            code.push('\n');
        }
    }
    assert!(!code.trim().is_empty(), "the tour has no code");
    code
}

#[test]
fn the_readme_tour_runs_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let code = tour(&readme);
    let tmp = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_wrangle")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    // A background worker the tour did not stop (because a command failed) goes with it.
    let script = format!("set -e\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{code}");
    let started = Instant::now();
    let mut child = Command::new("bash")
        .args(["-c", &script])
        .current_dir(&root)
        .env("PATH", path)
        .env("TMPDIR", tmp.path())
        .env_remove("WRANGLE_STORE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the tour hangs"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "the tour failed ({:?}):\n{stdout}\n{stderr}",
        out.status
    );
    for expected in [
        "item 5",
        "ALPHA\nBETA\nGAMMA\n",
        "fetched elena",
        "5 skipped (done in an earlier run)",
        "thumbs/cat.jpg.txt",
        "report for monday: all good",
        "no such photo: photos/dog.jpg",
        "exit code 1",
        "1 dead task(s) will run again",
        "job backfill: completed",
        "0-5000.stdout",
        "box-1: group mail: 1 -> 3 runners",
        "queue mail resumed",
        "group mail    runners   3",
        "box-1: stopping",
    ] {
        assert!(
            stdout.contains(expected) || stderr.contains(expected),
            "the tour printed no {expected:?}:\n{stdout}\n{stderr}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}
