//! Throwaway Redis servers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::TestkitError;
use crate::managed::{Backend, Flavor, Managed};
use crate::sys;

/// A throwaway Redis server on 127.0.0.1, in its own temp dir, on a free port.
///
/// Persistence is the append-only file with `appendfsync everysec` (RDB snapshots off), so
/// a [`restart`](Self::restart) after [`kill`](Self::kill) keeps everything written more
/// than about a second before the kill, as a production Redis with AOF would.
///
/// Dropping it kills the server and deletes its data.
#[derive(Debug)]
pub struct RedisServer {
    backend: Backend<Redis>,
}

impl RedisServer {
    /// Starts a fresh server with AOF persistence (`appendonly yes`,
    /// `appendfsync everysec`, no RDB snapshots).
    ///
    /// If `WRANGLE_TEST_REDIS_URL` is set, nothing is started: the server at that URL is
    /// used instead, and the lifecycle methods (`stop`, `kill`, `restart`) panic.
    pub fn start() -> Result<Self, TestkitError> {
        if let Some(backend) = Backend::from_env() {
            return Ok(Self { backend });
        }
        let server_bin = sys::find_or_install("redis-server", "redis-server", || {
            sys::find_program(&["redis-server"])
        })?;
        let server = Managed::start(
            Redis { server_bin },
            "wrangle-testkit-redis-",
            |_, _| Ok(()),
        )?;
        Ok(Self {
            backend: Backend::Managed(server),
        })
    }

    /// The connection URL, `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        self.backend.url()
    }

    /// The TCP port on 127.0.0.1. It stays the same across [`restart`](Self::restart).
    pub fn port(&self) -> u16 {
        self.backend.port()
    }

    /// Whether this is an external server given by `WRANGLE_TEST_REDIS_URL` (on which the
    /// lifecycle methods panic) rather than a throwaway one.
    pub fn is_external(&self) -> bool {
        self.backend.is_external()
    }

    /// Whether the server process is alive (always `true` for an external server).
    pub fn is_running(&mut self) -> bool {
        self.backend.is_running()
    }

    /// The server log, for diagnosing a failed test (`None` for an external server).
    pub fn log_path(&self) -> Option<PathBuf> {
        self.backend.log_path()
    }

    /// Shuts the server down cleanly (SIGTERM: the AOF is flushed and fsynced) and returns
    /// once the process has exited. The data stays for [`restart`](Self::restart). Does
    /// nothing if it is not running.
    ///
    /// # Panics
    /// For an external server.
    #[track_caller]
    pub fn stop(&mut self) {
        self.backend.managed("stop").stop();
    }

    /// Kills the server with SIGKILL, simulating a crash, and returns once it is gone.
    /// Writes of about the last second may be lost (`appendfsync everysec`). Does nothing
    /// if it is not running.
    ///
    /// # Panics
    /// For an external server.
    #[track_caller]
    pub fn kill(&mut self) {
        self.backend.managed("kill").kill();
    }

    /// Starts the server again on the same port with the same data (replaying the AOF),
    /// stopping it first if it is running, and waits until it answers `PING`.
    ///
    /// # Panics
    /// For an external server.
    #[track_caller]
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.backend.managed("restart").restart()
    }
}

/// How to run `redis-server`.
#[derive(Debug)]
pub(crate) struct Redis {
    server_bin: PathBuf,
}

impl Flavor for Redis {
    const NAME: &'static str = "Redis";
    const URL_ENV: &'static str = "WRANGLE_TEST_REDIS_URL";
    const DEFAULT_PORT: u16 = 6379;
    /// Graceful shutdown, flushing the AOF.
    const STOP_SIGNAL: &'static str = "TERM";
    const DROP_SIGNAL: &'static str = "KILL";

    fn url(port: u16) -> String {
        format!("redis://127.0.0.1:{port}/")
    }

    fn log_path(dir: &Path) -> PathBuf {
        dir.join("redis.log")
    }

    fn spawn(&self, dir: &Path, port: u16) -> Result<Child, TestkitError> {
        Command::new(&self.server_bin)
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(dir)
            .args(["--appendonly", "yes"])
            .args(["--appendfsync", "everysec"])
            .args(["--save", ""])
            .args(["--daemonize", "no"])
            .arg("--logfile")
            .arg(Self::log_path(dir))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(TestkitError::io(format!(
                "starting {}",
                self.server_bin.display()
            )))
    }

    /// Answers `PING` with `+PONG` (while loading the AOF it answers `-LOADING`).
    fn is_ready(&self, port: u16) -> bool {
        let ping = || -> std::io::Result<bool> {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let mut conn = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
            conn.set_read_timeout(Some(Duration::from_secs(1)))?;
            conn.write_all(b"PING\r\n")?;
            let mut reply = [0u8; 7];
            conn.read_exact(&mut reply)?;
            Ok(&reply == b"+PONG\r\n")
        };
        ping().unwrap_or(false)
    }
}
