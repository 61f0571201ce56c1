//! The web dashboard in a real browser: Debian's Chromium, headless, driven by
//! playwright-core (`tests/browser/dashboard.cjs`) against `wrangle serve` with a worker
//! running. While a range job runs, its progress bar advances on the page; Retry on a dead
//! task makes it complete; scaling a worker's pool group from the page is acknowledged and
//! shown. Screenshots go to `target/dashboard-screenshots/` (the committed one of the
//! overview, `docs/dashboard.png`, is refreshed with `WRANGLE_UPDATE_SCREENSHOT=1`).
//!
//! Needs node, playwright-core (in `$WRANGLE_PLAYWRIGHT`, a directory whose
//! `node_modules` holds it) and chromium; scripts/test.sh installs them. Without them the
//! test is skipped, unless servers are required (CI), where it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Sandbox, text};

/// The directory holding `node_modules/playwright-core`, if the browser tools are here.
fn playwright() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("WRANGLE_PLAYWRIGHT")?);
    let ready = dir.join("node_modules/playwright-core").is_dir()
        && Path::new("/usr/bin/chromium").exists()
        && Command::new("node").arg("--version").output().is_ok();
    ready.then_some(dir)
}

#[test]
fn the_dashboard_shows_progress_retries_and_scales_in_chromium() {
    let Some(tools) = playwright() else {
        assert!(
            std::env::var_os("WRANGLE_TEST_REQUIRE_SERVERS").is_none(),
            "the browser test needs node, playwright-core ($WRANGLE_PLAYWRIGHT) and chromium (scripts/test.sh installs them)"
        );
        eprintln!("skipping: no playwright-core or chromium");
        return;
    };
    let mut sandbox = Sandbox::sqlite();
    sandbox.create_store();
    // The handler: job blocks take a moment (so progress is seen moving), the task of
    // kind "flaky" fails while the file `broken` exists.
    let handler = sandbox.path("handler.sh");
    let broken = sandbox.path("broken");
    std::fs::write(
        &handler,
        format!(
            "#!/bin/sh\ncase \"$WRANGLE_PAYLOAD\" in\n  *start*) sleep 0.3; echo '{{\"ok\":true}}' ;;\n  \
             *flaky*) if [ -e '{}' ]; then echo broken >&2; exit 3; fi; echo '\"fixed\"' ;;\n  \
             *) echo '\"ok\"' ;;\nesac\n",
            broken.display()
        ),
    )
    .unwrap();
    std::fs::write(&broken, "").unwrap();
    let exec = format!("sh {}", handler.display());

    let flaky = sandbox.ok(&["submit", "flaky", "{\"flaky\":true}", "--retries", "0"]);
    let flaky = flaky.trim().to_string();
    sandbox.spawn_worker("w1", &["--exec", &exec, "--pool", "*=2"]);
    sandbox.wait_for_state(flaky.parse().unwrap(), "dead", Duration::from_secs(30));
    std::fs::remove_file(&broken).unwrap();
    sandbox.ok(&[
        "job", "create", "scan", "--range", "0..1000", "--block", "10", "--kind", "scan",
    ]);

    let (mut server, port) = sandbox.serve(&["--history-every", "250ms"]);
    let base = format!("http://127.0.0.1:{port}");

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dashboard.cjs");
    let out = Command::new("node")
        .arg(&script)
        .args([&base, shots.to_str().unwrap(), &flaky, "w1", "*"])
        .env("WRANGLE_PLAYWRIGHT", &tools)
        .current_dir(&tools)
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    sandbox.stop_workers();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    eprintln!("{}", text(&out.stdout).trim());
    for name in ["jobs", "dead", "task", "workers", "overview"] {
        assert!(shots.join(format!("{name}.png")).is_file(), "no {name}.png");
    }
    if std::env::var_os("WRANGLE_UPDATE_SCREENSHOT").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/dashboard.png");
        std::fs::copy(shots.join("overview.png"), docs).unwrap();
    }
}
