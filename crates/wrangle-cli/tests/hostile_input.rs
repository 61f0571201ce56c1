//! Input that is not what a careful user types, through the real binary: items that are
//! not UTF-8 or hold NUL bytes, payloads over the limit, and the files wrangle creates,
//! which are readable by their owner alone.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{Sandbox, text};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn items_reach_the_command_byte_for_byte() {
    let sandbox = Sandbox::default_store();
    // A file name in Latin-1, a line with a NUL byte, and plain text; od shows the
    // bytes each command received.
    let input: &[u8] = b"caf\xe9.txt\nplain\n";
    let mut child = sandbox
        .command(&[
            "run",
            "-n1",
            "--keep-order",
            "sh",
            "-c",
            "printf %s \"$1\" | od -An -tx1 | tr -d ' \\n'; echo",
            "sh",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "636166e92e747874\n706c61696e\n");

    // The same through ::: (argv is bytes too).
    use std::os::unix::ffi::OsStrExt;
    let out = sandbox
        .command(&["run", "-n1", "printf", "%s|"])
        .arg(":::")
        .arg(std::ffi::OsStr::from_bytes(b"\xff\xfe"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout, b"\xff\xfe|");

    // A NUL cannot be in an argument: that item fails with a clear error, the others run.
    let mut child = sandbox
        .command(&["run", "-n1", "echo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a\x00b\nok\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(text(&out.stdout), "ok\n");
    assert!(stderr.contains("nul byte"), "{stderr}");
}

#[test]
fn the_store_and_output_files_are_owner_only() {
    let mut sandbox = Sandbox::default_store();
    let id = sandbox.submit("greet", "\"hi\"", "default");
    sandbox.spawn_worker("w1", &["--exec", "echo hello", "--output", "out/logs"]);
    sandbox.wait_for_state(id, "completed", Duration::from_secs(30));
    let dir = sandbox.path(".wrangle");
    assert_eq!(mode(&dir), 0o700);
    for file in ["wrangle.db", "wrangle.db-wal", "wrangle.db-shm"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    sandbox.stop_workers();
    assert_eq!(mode(&sandbox.path("out")), 0o700);
    assert_eq!(mode(&sandbox.path("out/logs")), 0o700);
    assert_eq!(mode(&sandbox.path(&format!("out/logs/{id}.stdout"))), 0o600);

    // wrangle run --output and --journal.
    let out = sandbox.run(&[
        "run",
        "--output",
        "run-out",
        "--journal",
        "journal/run.db",
        "echo",
        ":::",
        "x",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&sandbox.path("run-out")), 0o700);
    assert_eq!(mode(&sandbox.path("run-out/1.stdout")), 0o600);
    assert_eq!(mode(&sandbox.path("journal")), 0o700);
    assert_eq!(mode(&sandbox.path("journal/run.db")), 0o600);

    // A directory the user made keeps the permissions the user gave it.
    std::fs::create_dir(sandbox.path("shared")).unwrap();
    std::fs::set_permissions(sandbox.path("shared"), PermissionsExt::from_mode(0o755)).unwrap();
    let out = sandbox.run(&["run", "--output", "shared", "echo", ":::", "y"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&sandbox.path("shared")), 0o755);
}

#[test]
fn a_1_mib_payload_runs_under_exec_and_payloads_over_the_limit_are_refused() {
    let mut sandbox = Sandbox::default_store();
    // Too big for an environment variable (128 KiB), so it arrives on stdin only.
    let payload = format!("\"{}\"", "x".repeat(1 << 20));
    sandbox.spawn_worker(
        "w1",
        &[
            "--exec",
            "sh -c 'wc -c | tr -d \" \"; echo ${WRANGLE_PAYLOAD:+in-env}'",
        ],
    );
    let out = sandbox.run_with_stdin(
        &["submit", "big", "-", "--wait", "--wait-timeout", "60s"],
        &payload,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), ((1 << 20) + 3).to_string());

    // Over the default limit (8 MiB): refused before anything is stored.
    let huge = format!("\"{}\"", "y".repeat(9 << 20));
    let out = sandbox.run_with_stdin(&["submit", "big", "-"], &huge);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("over the limit of 8388608 bytes"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    // A raised limit lets it through.
    let out = sandbox.run_with_stdin(&["submit", "big", "-", "--max-payload", "16M"], &huge);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
