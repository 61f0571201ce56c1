//! wrangle's test harness (dev-only, never published): throwaway database servers.
//!
//! The PostgreSQL, Redis and MariaDB stores are tested against real servers. Those tests
//! must not share state with each other or with the machine's own servers (the shared
//! instances on ports 5432, 3306 and 6379 are never touched), and the chaos tests kill and
//! restart servers in the middle of a run. So each test gets its own server, started here
//! from the binaries installed on the machine:
//!
//! - in a fresh temp dir (data, log, socket), deleted when the server is dropped;
//! - on a free TCP port on 127.0.0.1, chosen by the OS;
//! - as a child process of the test, with [`PostgresServer::kill`] (SIGKILL, a crash),
//!   `stop` (clean shutdown) and `restart` (same port, same data) for chaos tests.
//!
//! Dropping a server stops it, also when the test panics. If the test process dies without
//! running destructors (abort, SIGKILL, a server kept in a `static`), a small watchdog
//! process notices and kills the server and deletes its temp dir.
//!
//! Missing binaries are installed with `apt-get` when running as root (Debian packages
//! `postgresql`, `redis-server`, `mariadb-server`). Where that is impossible, `start()`
//! returns an error, and [`or_skip`] decides: skip the test on a developer machine, fail it
//! in CI (see [`require_servers`]).
//!
//! Each server also starts with TLS on (`start_tls`), under a certificate signed by a
//! certificate authority made for that server alone with the `openssl` program
//! ([`PostgresServer::ca_file`]); and [`closed_port`] and [`SilentPort`] stand in for a
//! server that is down and one that never answers, for tests of connection errors.
//! [`SmallDisk`] is a tmpfs of a few megabytes, for disk-full tests; [`fuzz`] feeds parsers
//! random mutations of valid input; [`FaultProxy`] sits between clients and a server and
//! stalls, resets or delays their connections on command; [`ReliabilityRow`] is a line of
//! the fault suite's table.
//!
//! A developer can point the tests at an existing server instead with
//! `WRANGLE_TEST_PG_URL`, `WRANGLE_TEST_REDIS_URL` or `WRANGLE_TEST_MYSQL_URL`. Nothing is
//! started then, and the lifecycle methods (`stop`, `kill`, `restart`) panic, since this
//! crate does not own that process: chaos tests check `is_external()` and skip.
//!
//! Everything here is blocking and uses only `std` (plus `tempfile`); the programs `id`,
//! `kill`, `chown` and `setpriv` stand in for libc calls because `unsafe` is forbidden.
//!
//! ```no_run
//! use wrangle_testkit::{PostgresServer, or_skip};
//!
//! let Some(mut pg) = or_skip(PostgresServer::start()) else { return };
//! let url = pg.url(); // postgres://wrangle@127.0.0.1:PORT/postgres
//! // ... use the store, then crash the server and bring it back:
//! pg.kill();
//! pg.restart().expect("restart PostgreSQL");
//! ```

mod disk;
mod error;
pub mod fuzz;
mod managed;
mod mariadb;
mod postgres;
mod proxy;
mod redis;
mod reliability;
mod sys;
mod tls;

use std::net::TcpListener;

pub use disk::SmallDisk;
pub use error::TestkitError;
pub use mariadb::MariaDbServer;
pub use postgres::PostgresServer;
pub use proxy::FaultProxy;
pub use redis::RedisServer;
pub use reliability::ReliabilityRow;
pub use sys::accepts_connections;

/// A TCP port on 127.0.0.1 that nothing listens on (it was free a moment ago, and no other
/// caller in this process gets it): connecting there is refused.
pub fn closed_port() -> Result<u16, TestkitError> {
    sys::free_port()
}

/// A port on 127.0.0.1 where connections are accepted (by the kernel, into the listen
/// backlog) but nothing is ever read or written: a server that hangs, or a firewall that
/// lets the handshake through. A client waiting for its greeting times out. Closed when
/// dropped.
#[derive(Debug)]
pub struct SilentPort {
    listener: TcpListener,
}

impl SilentPort {
    /// Binds a free port and never accepts on it.
    pub fn bind() -> Result<Self, TestkitError> {
        let listener =
            TcpListener::bind(("127.0.0.1", 0)).map_err(TestkitError::io("binding 127.0.0.1:0"))?;
        Ok(Self { listener })
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|addr| addr.port())
            .expect("a bound listener has an address")
    }
}

/// Whether servers are required, i.e. a server that cannot start must fail the test instead
/// of skipping it: true when `CI` or `WRANGLE_TEST_REQUIRE_SERVERS` is `true` or `1`.
pub fn require_servers() -> bool {
    ["CI", "WRANGLE_TEST_REQUIRE_SERVERS"].iter().any(|name| {
        std::env::var(name).is_ok_and(|value| {
            let value = value.trim();
            value == "1" || value.eq_ignore_ascii_case("true")
        })
    })
}

/// Turns the result of a `start()` into "run or skip": the server if it started; otherwise
/// `None` after printing why the test is skipped, or a panic with the reason when
/// [`require_servers`] is true, so that CI never passes by silently skipping.
///
/// ```no_run
/// # use wrangle_testkit::{RedisServer, or_skip};
/// let Some(redis) = or_skip(RedisServer::start()) else { return };
/// ```
#[track_caller]
pub fn or_skip<T>(started: Result<T, TestkitError>) -> Option<T> {
    match started {
        Ok(server) => Some(server),
        Err(e) if require_servers() => panic!(
            "a test server is required (CI / WRANGLE_TEST_REQUIRE_SERVERS) but could not \
             start: {e}"
        ),
        Err(e) => {
            eprintln!("skipping: test server unavailable: {e}");
            None
        }
    }
}
