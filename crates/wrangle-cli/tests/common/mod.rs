//! Shared by the end-to-end test files: a sandbox (temp dir + store URL) that runs the real
//! `wrangle` binary against its store, starts worker processes and cleans them up, and
//! ([`tmux`]) a terminal driven through tmux.
// Each test file uses a different subset.
#![allow(dead_code)]

pub mod tmux;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A temp dir and a store, with helpers to run `wrangle` against them.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    /// Passed as `--store`; `None` leaves wrangle its default (SQLite under the temp dir).
    store_url: Option<String>,
    pub workers: Vec<Child>,
}

impl Sandbox {
    /// wrangle's default store (`.wrangle/wrangle.db` in a new temp dir), no `--store`.
    pub fn default_store() -> Self {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
            store_url: None,
            workers: Vec::new(),
        }
    }

    /// An SQLite store named by URL in a new temp dir.
    pub fn sqlite() -> Self {
        let mut sandbox = Sandbox::default_store();
        sandbox.store_url = Some(format!("sqlite://{}", sandbox.path("w.db").display()));
        sandbox
    }

    /// A server's store.
    pub fn on(url: &str) -> Self {
        let mut sandbox = Sandbox::default_store();
        sandbox.store_url = Some(url.to_string());
        sandbox
    }

    /// The store's URL (not for `default_store` sandboxes).
    pub fn store(&self) -> &str {
        self.store_url
            .as_deref()
            .expect("a sandbox with a store URL")
    }

    /// Creates the (empty) store, as `submit` or `worker` would on first use, for tests
    /// of commands that only open a store that exists.
    pub fn create_store(&self) {
        let url = self
            .store_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.path(".wrangle/wrangle.db").display()));
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async { wrangle::connect(&url).await.expect("create the store") });
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wrangle"));
        command
            .current_dir(self.dir.path())
            .env_remove("WRANGLE_STORE")
            .env("WRANGLE_LOG", "info")
            .args(self.store_url.iter().flat_map(|url| ["--store", url]))
            .args(args)
            .stdin(Stdio::null());
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs a command that must be refused as bad input: exit code 2 and one line on
    /// stderr starting `wrangle: error: `. Returns that line.
    pub fn usage_error(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line, got {err:?}"
        );
        assert!(err.starts_with("wrangle: error: "), "{args:?}: {err}");
        err
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "wrangle {args:?} failed: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// Starts `wrangle ARGS…` with its stdin, stdout and stderr piped.
    pub fn spawn_piped(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs `wrangle ARGS…` with `stdin` written to it (then closed).
    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self.spawn_piped(args);
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// The command line that runs `wrangle --store STORE ARGS…` in a shell, every word quoted.
    pub fn shell_command(&self, args: &[&str]) -> String {
        let mut words = vec![
            shell_word(env!("CARGO_BIN_EXE_wrangle")),
            "--store".into(),
            shell_word(self.store()),
        ];
        words.extend(args.iter().map(|a| shell_word(a)));
        words.join(" ")
    }

    /// Enqueues a task of `kind` on `queue`, with no retries; its id.
    pub fn submit(&self, kind: &str, payload: &str, queue: &str) -> i64 {
        self.ok(&["submit", kind, payload, "-q", queue, "--retries", "0"])
            .trim()
            .parse()
            .unwrap()
    }

    /// Task `id` as `--json tasks show` gives it.
    pub fn task(&self, id: i64) -> Value {
        self.json(&["tasks", "show", &id.to_string()])
    }

    /// Waits until task `id` reaches `state`; the task then.
    #[track_caller]
    pub fn wait_for_state(&self, id: i64, state: &str, limit: Duration) -> Value {
        wait_for(&format!("task {id} {state}"), limit, || {
            let task = self.task(id);
            (task["state"] == state).then_some(task)
        })
    }

    /// Tasks in `state` over every queue, from `--json status`.
    pub fn count(&self, state: &str) -> u64 {
        self.json(&["status"])["queues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["counts"][state].as_u64().unwrap_or(0))
            .sum()
    }

    /// Queue `name`'s entry in `--json status`, if it has one.
    pub fn queue(&self, name: &str) -> Option<Value> {
        self.json(&["status"])["queues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["queue"] == name)
            .cloned()
    }

    /// The named worker's record in `--json workers list`, if it is registered.
    pub fn worker(&self, name: &str) -> Option<Value> {
        self.json(&["workers", "list"])
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["info"]["name"] == name)
            .cloned()
    }

    /// Pool group `group` of worker `worker`, from its record.
    pub fn pool_group(&self, worker: &str, group: &str) -> Option<Value> {
        self.worker(worker)?["info"]["pool"]
            .as_array()?
            .iter()
            .find(|g| g["name"] == group)
            .cloned()
    }

    /// Starts `wrangle worker --name NAME ARGS…` and keeps it (stopped when the sandbox
    /// is dropped); its index in `workers`.
    pub fn spawn_worker(&mut self, name: &str, args: &[&str]) -> usize {
        let mut child = self.start_worker(name, args);
        // Commands that only look never create a store, so the test's next `status` or
        // `workers list` needs the store the worker creates when it starts.
        poll(Duration::from_secs(20), Duration::from_millis(20), || {
            let exited = child.try_wait().ok().flatten().is_some();
            (exited || self.run(&["status"]).status.success()).then_some(())
        });
        self.workers.push(child);
        self.workers.len() - 1
    }

    /// Starts `wrangle worker --name NAME ARGS…`, logging to NAME.log.
    pub fn start_worker(&self, name: &str, args: &[&str]) -> Child {
        let log = std::fs::File::create(self.path(&format!("{name}.log"))).unwrap();
        self.command(&["worker", "--name", name])
            .args(args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    pub fn worker_logs(&self) -> String {
        logs_in(self.dir.path())
    }

    /// Polls `check` every 100 ms until it holds; fails with the worker logs after `limit`.
    #[track_caller]
    pub fn wait_until(&self, what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
        let held = poll(limit, Duration::from_millis(100), || check().then_some(()));
        assert!(
            held.is_some(),
            "{what}: not within {limit:?}\n{}",
            self.worker_logs()
        );
    }

    /// Waits until worker `name` is registered in the store.
    #[track_caller]
    pub fn wait_for_worker(&self, name: &str, limit: Duration) {
        self.wait_until(&format!("worker {name} registered"), limit, || {
            self.worker(name).is_some()
        });
    }

    /// `job status NAME --follow` until it exits (or `limit` passes); its exit code.
    pub fn follow(&self, name: &str, limit: Duration) -> i32 {
        let mut child = self
            .command(&["job", "status", name, "--follow", "--interval", "100ms"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                panic!(
                    "job {name} did not end within {limit:?}: {}\n{}",
                    self.json(&["job", "status", name]),
                    self.worker_logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop_workers(&mut self) {
        for child in &mut self.workers {
            signal(child, nix::sys::signal::Signal::SIGTERM);
        }
        for child in &mut self.workers {
            let _ = child.wait();
        }
        self.workers.clear();
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

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sandbox {
    /// Starts `wrangle serve --bind 127.0.0.1:PORT` with `args` on a free port, and waits
    /// until it listens; returns the process and the port.
    pub fn serve(&self, args: &[&str]) -> (Child, u16) {
        let port = free_port();
        let bind = format!("127.0.0.1:{port}");
        let server = self
            .command(&["serve", "--bind", &bind])
            .args(args)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "serve did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        (server, port)
    }
}

pub fn signal(child: &Child, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal);
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `text` as one shell word.
pub fn shell_word(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The `*.log` files in `dir` (the workers' logs), each under a `--- PATH` line.
pub fn logs_in(dir: &Path) -> String {
    let mut logs = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "log") {
            logs += &format!("--- {}\n", path.display());
            logs += &std::fs::read_to_string(&path).unwrap_or_default();
        }
    }
    logs
}

/// Calls `check` every `every` until it returns `Some`; `None` once `limit` has passed.
pub fn poll<T>(
    limit: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if started.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// Polls `check` every 50 ms until it returns `Some`, failing with `what` after `limit`.
#[track_caller]
pub fn wait_for<T>(what: &str, limit: Duration, check: impl FnMut() -> Option<T>) -> T {
    match poll(limit, Duration::from_millis(50), check) {
        Some(value) => value,
        None => panic!("timed out after {limit:?} waiting for {what}"),
    }
}
