//! One Cargo feature per store: a library user who needs PostgreSQL builds the `wrangle`
//! crate with only that feature, compiles no other store's driver, connects, and gets a
//! clear error for a URL of a store left out.
//!
//! The build runs in a target directory of its own (next to this test's), so it neither
//! waits for nor disturbs the build that runs this test; CI keeps it between runs.

use std::path::PathBuf;
use std::process::Command;

use wrangle_testkit::{PostgresServer, or_skip};

/// `target/feature-builds`, next to the `debug` directory this test binary runs from.
fn feature_target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/debug/deps/features-HASH
    let target = exe
        .ancestors()
        .nth(3)
        .expect("the test runs from a cargo target directory");
    target.join("feature-builds")
}

fn cargo() -> Command {
    let mut cargo = Command::new(env!("CARGO"));
    cargo.current_dir(env!("CARGO_MANIFEST_DIR"));
    cargo
}

#[test]
fn a_postgres_only_build_compiles_no_other_store_and_connects() {
    // The dependency graph of that build: PostgreSQL's store and driver, no other one.
    let tree = cargo()
        .args([
            "tree",
            "-p",
            "wrangle",
            "--no-default-features",
            "--features",
            "postgres",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--locked",
        ])
        .output()
        .expect("cargo tree");
    assert!(
        tree.status.success(),
        "{}",
        String::from_utf8_lossy(&tree.stderr)
    );
    let tree = String::from_utf8_lossy(&tree.stdout);
    assert!(tree.contains("wrangle-store-postgres"), "{tree}");
    for absent in [
        "wrangle-store-redis",
        "wrangle-store-mysql",
        "wrangle-store-sqlite",
        "redis ",
        "sqlx-mysql",
        "sqlx-sqlite",
        "libsqlite3-sys",
    ] {
        assert!(
            !tree.contains(absent),
            "{absent} is in a postgres-only build:\n{tree}"
        );
    }

    let Some(pg) = or_skip(PostgresServer::start()) else {
        return;
    };
    let target = feature_target_dir();
    let build = cargo()
        .args([
            "build",
            "-p",
            "wrangle",
            "--no-default-features",
            "--features",
            "postgres",
            "--example",
            "connect",
            "--locked",
        ])
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("cargo build");
    assert!(build.success(), "the postgres-only build failed");
    let example = target.join("debug/examples/connect");

    let connected = Command::new(&example).arg(pg.url()).output().unwrap();
    let stdout = String::from_utf8_lossy(&connected.stdout);
    assert!(
        connected.status.success() && stdout.starts_with("postgres: task 1 is available"),
        "{stdout}{}",
        String::from_utf8_lossy(&connected.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}/x.db", dir.path().display());
    let refused = Command::new(&example).arg(&sqlite).output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the sqlite store is not compiled into this build")
            && stderr.contains("\"sqlite\" feature"),
        "{stderr}"
    );
    assert!(!dir.path().join("x.db").exists());
}
