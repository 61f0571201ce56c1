//! The throwaway servers against the real binaries: data written with each server's own
//! CLI client survives `kill()` + `restart()` and `stop()` + `restart()`, a killed or
//! stopped server closes its port, two servers of a kind run side by side, and nothing is
//! left behind on drop or when the test process aborts.
//!
//! The checks common to all servers are written once, generic over the [`Server`] trait
//! (the per-server part: how to write and read a value with that server's client); each
//! `#[test]` runs one of them for one server type. The Redis-only tests come last.
//!
//! Each test starts its own servers, so they are independent and run in parallel. Where a
//! server cannot start they skip, unless `CI=true` or `WRANGLE_TEST_REQUIRE_SERVERS=1`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use wrangle_testkit::{
    MariaDbServer, PostgresServer, RedisServer, TestkitError, accepts_connections, or_skip,
};

/// Runs a client command, asserts it succeeded, returns its trimmed stdout.
fn client(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// What the shared test bodies below need of a server type: its public API (the inherent
/// methods, which no trait of the crate gathers) plus a way to store and read back a value
/// with the server's own CLI client.
trait Server: Sized + Send {
    /// Human name, e.g. `PostgreSQL`.
    const NAME: &'static str;
    /// The variable that points the tests at an external server.
    const URL_ENV: &'static str;
    /// How long after a write it is durable, i.e. survives `kill()`.
    const DURABLE_AFTER: Duration = Duration::ZERO;

    /// The URL a throwaway server on `port` must report.
    fn expected_url(port: u16) -> String;
    /// Stores `value` under the new name `key` (a table or a key), durably.
    fn write(&self, key: &str, value: &str);
    /// What `write` stored under `key`.
    fn read(&self, key: &str) -> String;
    /// How many things named `key` exist, as the client prints it (`0` or `1`).
    fn count(&self, key: &str) -> String;

    fn start() -> Result<Self, TestkitError>;
    fn url(&self) -> String;
    fn port(&self) -> u16;
    fn is_external(&self) -> bool;
    fn is_running(&mut self) -> bool;
    fn log_path(&self) -> Option<PathBuf>;
    fn stop(&mut self);
    fn kill(&mut self);
    fn restart(&mut self) -> Result<(), TestkitError>;
}

/// The public API part of an `impl Server`: each method calls the inherent one of the same
/// name (inherent methods take precedence, so this does not recurse).
macro_rules! public_api {
    () => {
        fn start() -> Result<Self, TestkitError> {
            Self::start()
        }
        fn url(&self) -> String {
            self.url()
        }
        fn port(&self) -> u16 {
            self.port()
        }
        fn is_external(&self) -> bool {
            self.is_external()
        }
        fn is_running(&mut self) -> bool {
            self.is_running()
        }
        fn log_path(&self) -> Option<PathBuf> {
            self.log_path()
        }
        fn stop(&mut self) {
            self.stop()
        }
        fn kill(&mut self) {
            self.kill()
        }
        fn restart(&mut self) -> Result<(), TestkitError> {
            self.restart()
        }
    };
}

/// `psql` through the server's URL, so the URL itself is tested too.
fn psql(pg: &PostgresServer, sql: &str) -> String {
    client(
        Command::new("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg(pg.url())
            .args(["-c", sql]),
    )
}

impl Server for PostgresServer {
    const NAME: &'static str = "PostgreSQL";
    const URL_ENV: &'static str = "WRANGLE_TEST_PG_URL";

    fn expected_url(port: u16) -> String {
        format!("postgres://wrangle@127.0.0.1:{port}/postgres")
    }
    fn write(&self, key: &str, value: &str) {
        psql(
            self,
            &format!("CREATE TABLE {key} (v text); INSERT INTO {key} VALUES ('{value}')"),
        );
    }
    fn read(&self, key: &str) -> String {
        psql(self, &format!("SELECT v FROM {key}"))
    }
    fn count(&self, key: &str) -> String {
        psql(
            self,
            &format!("SELECT count(*) FROM pg_tables WHERE tablename = '{key}'"),
        )
    }
    public_api!();
}

/// `redis-cli` through the server's URL.
fn redis_cli(redis: &RedisServer, args: &[&str]) -> String {
    client(
        Command::new("redis-cli")
            .arg("-u")
            .arg(redis.url())
            .args(args),
    )
}

impl Server for RedisServer {
    const NAME: &'static str = "Redis";
    const URL_ENV: &'static str = "WRANGLE_TEST_REDIS_URL";
    /// `appendfsync everysec`: give the AOF its fsync.
    const DURABLE_AFTER: Duration = Duration::from_millis(1500);

    fn expected_url(port: u16) -> String {
        format!("redis://127.0.0.1:{port}/")
    }
    fn write(&self, key: &str, value: &str) {
        assert_eq!(redis_cli(self, &["SET", key, value]), "OK");
    }
    fn read(&self, key: &str) -> String {
        redis_cli(self, &["GET", key])
    }
    fn count(&self, key: &str) -> String {
        redis_cli(self, &["EXISTS", key])
    }
    public_api!();
}

/// The `mariadb` client as root over TCP, in the database `wrangle` (it takes no URL).
fn mariadb(db: &MariaDbServer, sql: &str) -> String {
    let port = db.port();
    assert_eq!(db.url(), MariaDbServer::expected_url(port));
    client(
        Command::new("mariadb")
            .args(["--no-defaults", "--protocol=tcp", "-h", "127.0.0.1"])
            .arg(format!("--port={port}"))
            .args(["-u", "root", "--batch", "--skip-column-names", "wrangle"])
            .args(["-e", sql]),
    )
}

impl Server for MariaDbServer {
    const NAME: &'static str = "MariaDB";
    const URL_ENV: &'static str = "WRANGLE_TEST_MYSQL_URL";

    fn expected_url(port: u16) -> String {
        format!("mysql://root@127.0.0.1:{port}/wrangle")
    }
    fn write(&self, key: &str, value: &str) {
        mariadb(
            self,
            &format!(
                "CREATE TABLE {key} (v TEXT) ENGINE=InnoDB; INSERT INTO {key} VALUES ('{value}')"
            ),
        );
    }
    fn read(&self, key: &str) -> String {
        mariadb(self, &format!("SELECT v FROM {key}"))
    }
    fn count(&self, key: &str) -> String {
        mariadb(
            self,
            &format!("SELECT count(*) FROM information_schema.tables WHERE table_name = '{key}'"),
        )
    }
    public_api!();
}

/// Starts a server (or skips the test), timing the start.
fn start<S: Server>() -> Option<S> {
    let began = Instant::now();
    let server = or_skip(S::start())?;
    eprintln!("{} started in {:?}", S::NAME, began.elapsed());
    Some(server)
}

fn assert_private_port(port: u16) {
    assert!(
        ![5432, 3306, 6379].contains(&port),
        "a throwaway server got the shared port {port}"
    );
}

/// Polls `condition` for up to `timeout`.
fn eventually(timeout: Duration, condition: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Starts a throwaway server, or returns `None` (after saying why) to skip the test.
fn start_throwaway<S: Server>() -> Option<S> {
    let server = start::<S>()?;
    if server.is_external() {
        eprintln!("skipping: {} points at an external server", S::URL_ENV);
        return None;
    }
    Some(server)
}

/// Data written before a `kill()` (a crash) and before a `stop()` is there after each
/// `restart()`, on the same port and URL; a killed or stopped server no longer listens.
fn keeps_data_across_kill_and_restart<S: Server>() {
    let Some(mut server) = start_throwaway::<S>() else {
        return;
    };
    let port = server.port();
    assert_private_port(port);
    assert_eq!(server.url(), S::expected_url(port));
    server.write("t", "committed before the crash");
    thread::sleep(S::DURABLE_AFTER);

    server.kill();
    assert!(!server.is_running());
    assert!(!accepts_connections(port), "killed server still listens");
    let began = Instant::now();
    server
        .restart()
        .unwrap_or_else(|e| panic!("restart {} after kill: {e}", S::NAME));
    eprintln!("{} restarted after kill in {:?}", S::NAME, began.elapsed());
    assert!(server.is_running());
    assert_eq!(server.port(), port);
    assert_eq!(server.url(), S::expected_url(port));
    assert_eq!(server.read("t"), "committed before the crash");

    // A clean stop keeps even the latest write (for Redis: it flushes the AOF).
    server.write("t2", "just written");
    server.stop();
    assert!(!server.is_running());
    assert!(!accepts_connections(port), "stopped server still listens");
    server
        .restart()
        .unwrap_or_else(|e| panic!("restart {} after stop: {e}", S::NAME));
    assert_eq!(server.read("t2"), "just written");
    server.stop();
    assert!(!accepts_connections(port), "stopped server still listens");
}

#[test]
fn postgres_keeps_committed_data_across_kill_and_restart() {
    keeps_data_across_kill_and_restart::<PostgresServer>();
}

#[test]
fn redis_keeps_aof_data_across_kill_and_restart() {
    keeps_data_across_kill_and_restart::<RedisServer>();
}

#[test]
fn mariadb_keeps_committed_data_across_kill_and_restart() {
    keeps_data_across_kill_and_restart::<MariaDbServer>();
}

/// Two servers started concurrently both come up, on different private ports, and do not
/// share data.
fn two_run_side_by_side<S: Server>() {
    let (a, b) = thread::scope(|s| {
        let a = s.spawn(start_throwaway::<S>);
        let b = s.spawn(start_throwaway::<S>);
        (a.join().unwrap(), b.join().unwrap())
    });
    let (Some(a), Some(b)) = (a, b) else {
        return;
    };
    assert_ne!(a.port(), b.port());
    assert_private_port(a.port());
    assert_private_port(b.port());
    a.write("only_in_a", "1");
    assert_eq!(a.count("only_in_a"), "1");
    assert_eq!(b.count("only_in_a"), "0");
}

#[test]
fn two_postgres_servers_run_side_by_side() {
    two_run_side_by_side::<PostgresServer>();
}

#[test]
fn two_redis_servers_run_side_by_side() {
    two_run_side_by_side::<RedisServer>();
}

#[test]
fn two_mariadb_servers_run_side_by_side() {
    two_run_side_by_side::<MariaDbServer>();
}

/// Dropping a server stops it and deletes its temp dir.
fn drop_stops_and_cleans_up<S: Server>() {
    let Some(server) = start_throwaway::<S>() else {
        return;
    };
    let log = server.log_path().expect("a throwaway server has a log");
    let (port, dir) = (server.port(), log.parent().unwrap().to_owned());
    assert!(dir.is_dir());
    drop(server);
    assert!(!accepts_connections(port), "dropped server still listens");
    assert!(!dir.exists(), "{} was not deleted", dir.display());
}

#[test]
fn dropping_a_postgres_server_stops_it_and_deletes_its_dir() {
    drop_stops_and_cleans_up::<PostgresServer>();
}

#[test]
fn dropping_a_redis_server_stops_it_and_deletes_its_dir() {
    drop_stops_and_cleans_up::<RedisServer>();
}

#[test]
fn restart_on_a_port_taken_meanwhile_fails_with_the_server_log() {
    let Some(mut redis) = start_throwaway::<RedisServer>() else {
        return;
    };
    let port = redis.port();
    redis.kill();
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port)).expect("take the port");
    let err = redis.restart().expect_err("restart on a taken port");
    let message = err.to_string();
    assert!(
        matches!(err, TestkitError::Startup { port: p, .. } if p == port),
        "{message}"
    );
    assert!(message.contains("already in use"), "{message}");
    drop(squatter);
    redis
        .restart()
        .expect("restart once the port is free again");
}

/// Marks the run of this test binary that `aborting_test_process_leaves_nothing_behind`
/// starts and aborts.
const ABORT_CHILD_ENV: &str = "WRANGLE_TESTKIT_ABORT_CHILD";
/// Prefix of the child's report line: `<prefix> <port> <dir>`.
const CHILD_REPORT: &str = "aborting child started Redis:";

/// Inert in a normal run. In the child run: starts Redis, reports its port and dir, then
/// aborts, so no destructor runs.
#[test]
fn aborting_child() {
    if std::env::var_os(ABORT_CHILD_ENV).is_none() {
        return;
    }
    let redis = RedisServer::start().expect("start Redis in the child");
    let dir = redis.log_path().unwrap().parent().unwrap().to_owned();
    // On its own line: libtest has already printed `test aborting_child ... `.
    println!("\n{CHILD_REPORT} {} {}", redis.port(), dir.display());
    std::io::Write::flush(&mut std::io::stdout()).unwrap();
    std::process::abort();
}

#[test]
fn aborting_test_process_leaves_nothing_behind() {
    if std::env::var_os("WRANGLE_TEST_REDIS_URL").is_some() || RedisServer::start().is_err() {
        return; // no throwaway Redis here; the other tests report why
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "aborting_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ABORT_CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run the aborting child");
    let line = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            let (port, dir) = line.strip_prefix(CHILD_REPORT)?.trim().split_once(' ')?;
            Some((port.parse::<u16>().ok()?, PathBuf::from(dir)))
        });
    let status = child.wait().unwrap();
    let (port, dir) = line.unwrap_or_else(|| panic!("the child reported nothing ({status})"));
    assert!(!status.success(), "the child was meant to abort");
    assert!(
        eventually(Duration::from_secs(10), || !accepts_connections(port)
            && !dir.exists()),
        "after the abort, port {port} listens: {}, {} exists: {}",
        accepts_connections(port),
        dir.display(),
        dir.exists()
    );
}
