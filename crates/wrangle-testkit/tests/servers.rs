//! The throwaway servers against the real binaries: data written with each server's own
//! CLI client survives `kill()` + `restart()`, `stop()` closes the port, two servers of a
//! kind run side by side, and nothing is left behind on drop or when the test process
//! aborts.
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

/// `psql` through the server's URL, so the URL itself is tested too.
fn psql(pg: &PostgresServer, sql: &str) -> String {
    client(
        Command::new("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg(pg.url())
            .args(["-c", sql]),
    )
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

/// The `mariadb` client as root over TCP, in the database `wrangle` (it takes no URL).
fn mariadb(db: &MariaDbServer, sql: &str) -> String {
    let port = db.port();
    assert_eq!(db.url(), format!("mysql://root@127.0.0.1:{port}/wrangle"));
    client(
        Command::new("mariadb")
            .args(["--no-defaults", "--protocol=tcp", "-h", "127.0.0.1"])
            .arg(format!("--port={port}"))
            .args(["-u", "root", "--batch", "--skip-column-names", "wrangle"])
            .args(["-e", sql]),
    )
}

/// Starts a server (or skips the test), timing the start.
fn start<T>(name: &str, start: fn() -> Result<T, TestkitError>) -> Option<T> {
    let began = Instant::now();
    let server = or_skip(start())?;
    eprintln!("{name} started in {:?}", began.elapsed());
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

#[test]
fn postgres_keeps_committed_data_across_kill_and_restart() {
    let Some(mut pg) = start("PostgreSQL", PostgresServer::start) else {
        return;
    };
    if pg.is_external() {
        eprintln!("skipping: WRANGLE_TEST_PG_URL points at an external server");
        return;
    }
    let port = pg.port();
    assert_private_port(port);
    assert_eq!(
        pg.url(),
        format!("postgres://wrangle@127.0.0.1:{port}/postgres")
    );
    psql(
        &pg,
        "CREATE TABLE t (v text); INSERT INTO t VALUES ('committed before the crash')",
    );

    pg.kill();
    assert!(!pg.is_running());
    assert!(!accepts_connections(port), "killed server still listens");
    let began = Instant::now();
    pg.restart().expect("restart PostgreSQL after kill");
    eprintln!("PostgreSQL restarted after kill in {:?}", began.elapsed());
    assert_eq!(pg.port(), port);
    assert_eq!(psql(&pg, "SELECT v FROM t"), "committed before the crash");

    pg.stop();
    assert!(!accepts_connections(port), "stopped server still listens");
}

#[test]
fn redis_keeps_aof_data_across_kill_and_restart() {
    let Some(mut redis) = start("Redis", RedisServer::start) else {
        return;
    };
    if redis.is_external() {
        eprintln!("skipping: WRANGLE_TEST_REDIS_URL points at an external server");
        return;
    }
    let port = redis.port();
    assert_private_port(port);
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{port}/"));
    assert_eq!(
        redis_cli(&redis, &["SET", "k", "written before the crash"]),
        "OK"
    );
    // appendfsync everysec: give the AOF its fsync before crashing.
    thread::sleep(Duration::from_millis(1500));

    redis.kill();
    assert!(!accepts_connections(port), "killed server still listens");
    let began = Instant::now();
    redis.restart().expect("restart Redis after kill");
    eprintln!("Redis restarted after kill in {:?}", began.elapsed());
    assert_eq!(redis.port(), port);
    assert_eq!(redis_cli(&redis, &["GET", "k"]), "written before the crash");

    // A clean stop flushes the AOF: even the latest write survives it.
    assert_eq!(redis_cli(&redis, &["SET", "k2", "just written"]), "OK");
    redis.stop();
    assert!(!accepts_connections(port), "stopped server still listens");
    redis.restart().expect("restart Redis after stop");
    assert_eq!(redis_cli(&redis, &["GET", "k2"]), "just written");
    redis.stop();
    assert!(!accepts_connections(port), "stopped server still listens");
}

#[test]
fn mariadb_keeps_committed_data_across_kill_and_restart() {
    let Some(mut db) = start("MariaDB", MariaDbServer::start) else {
        return;
    };
    if db.is_external() {
        eprintln!("skipping: WRANGLE_TEST_MYSQL_URL points at an external server");
        return;
    }
    let port = db.port();
    assert_private_port(port);
    mariadb(
        &db,
        "CREATE TABLE t (v TEXT) ENGINE=InnoDB; INSERT INTO t VALUES ('committed before the crash')",
    );

    db.kill();
    assert!(!accepts_connections(port), "killed server still listens");
    let began = Instant::now();
    db.restart().expect("restart MariaDB after kill");
    eprintln!("MariaDB restarted after kill in {:?}", began.elapsed());
    assert_eq!(db.port(), port);
    assert_eq!(
        mariadb(&db, "SELECT v FROM t"),
        "committed before the crash"
    );

    db.stop();
    assert!(!accepts_connections(port), "stopped server still listens");
}

/// Starts two servers concurrently; both must come up, on different private ports.
fn start_two<T: Send>(name: &str, start_one: fn() -> Result<T, TestkitError>) -> Option<(T, T)> {
    let (a, b) = thread::scope(|s| {
        let a = s.spawn(|| start(name, start_one));
        let b = s.spawn(|| start(name, start_one));
        (a.join().unwrap(), b.join().unwrap())
    });
    Some((a?, b?))
}

#[test]
fn two_postgres_servers_run_side_by_side() {
    let Some((a, b)) = start_two("PostgreSQL", PostgresServer::start) else {
        return;
    };
    if a.is_external() {
        return;
    }
    assert_ne!(a.port(), b.port());
    assert_private_port(a.port());
    assert_private_port(b.port());
    psql(&a, "CREATE TABLE only_in_a ()");
    assert_eq!(
        psql(
            &b,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"
        ),
        "0"
    );
}

#[test]
fn two_redis_servers_run_side_by_side() {
    let Some((a, b)) = start_two("Redis", RedisServer::start) else {
        return;
    };
    if a.is_external() {
        return;
    }
    assert_ne!(a.port(), b.port());
    assert_private_port(a.port());
    assert_private_port(b.port());
    assert_eq!(redis_cli(&a, &["SET", "only_in_a", "1"]), "OK");
    assert_eq!(redis_cli(&b, &["EXISTS", "only_in_a"]), "0");
}

#[test]
fn two_mariadb_servers_run_side_by_side() {
    let Some((a, b)) = start_two("MariaDB", MariaDbServer::start) else {
        return;
    };
    if a.is_external() {
        return;
    }
    assert_ne!(a.port(), b.port());
    assert_private_port(a.port());
    assert_private_port(b.port());
    mariadb(&a, "CREATE TABLE only_in_a (x INT)");
    assert_eq!(
        mariadb(
            &b,
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'only_in_a'"
        ),
        "0"
    );
}

#[test]
fn dropping_a_postgres_server_stops_it_and_deletes_its_dir() {
    let Some(pg) = start("PostgreSQL", PostgresServer::start) else {
        return;
    };
    let Some(log) = pg.log_path() else {
        return; // external
    };
    let (port, dir) = (pg.port(), log.parent().unwrap().to_owned());
    assert!(dir.is_dir());
    drop(pg);
    assert!(!accepts_connections(port), "dropped server still listens");
    assert!(!dir.exists(), "{} was not deleted", dir.display());
}

#[test]
fn dropping_a_redis_server_stops_it_and_deletes_its_dir() {
    let Some(redis) = start("Redis", RedisServer::start) else {
        return;
    };
    let Some(log) = redis.log_path() else {
        return; // external
    };
    let (port, dir) = (redis.port(), log.parent().unwrap().to_owned());
    drop(redis);
    assert!(!accepts_connections(port), "dropped server still listens");
    assert!(!dir.exists(), "{} was not deleted", dir.display());
}

#[test]
fn restart_on_a_port_taken_meanwhile_fails_with_the_server_log() {
    let Some(mut redis) = start("Redis", RedisServer::start) else {
        return;
    };
    if redis.is_external() {
        return;
    }
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
