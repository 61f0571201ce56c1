//! Throwaway Redis servers: where `redis-server` is, its command line (AOF persistence),
//! the `PING` check and the URL. The lifecycle is in `managed`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::TestkitError;
use crate::managed::{Backend, Flavor, Managed, server_methods};
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
        let backend = Backend::external_or(|| Redis::locate(false)?.start())?;
        Ok(Self { backend })
    }

    /// Like [`start`](Self::start), but speaking only TLS (`--tls-port`, no plain port;
    /// clients need no certificate of their own) under a certificate for `localhost` and
    /// `127.0.0.1` signed by a certificate authority made for this server alone
    /// ([`ca_file`](Self::ca_file)). Its URL is `rediss://127.0.0.1:PORT/`.
    ///
    /// Always a throwaway server: `WRANGLE_TEST_REDIS_URL` is not used.
    pub fn start_tls() -> Result<Self, TestkitError> {
        Ok(Self {
            backend: Backend::Managed(Redis::locate(true)?.start()?),
        })
    }

    server_methods! {
        /// The connection URL, `redis://127.0.0.1:PORT/` (`rediss://` with TLS).
        url;
        /// Whether this is an external server given by `WRANGLE_TEST_REDIS_URL` (on which the
        /// lifecycle methods panic) rather than a throwaway one.
        is_external;
        /// Shuts the server down cleanly (SIGTERM: the AOF is flushed and fsynced) and returns
        /// once the process has exited. The data stays for [`restart`](Self::restart). Does
        /// nothing if it is not running.
        stop;
        /// Kills the server with SIGKILL, simulating a crash, and returns once it is gone.
        /// Writes of about the last second may be lost (`appendfsync everysec`). Does nothing
        /// if it is not running.
        kill;
        /// Starts the server again on the same port with the same data (replaying the AOF),
        /// stopping it first if it is running, and waits until it answers `PING`.
        restart;
    }
}

/// How to run `redis-server`.
#[derive(Debug)]
pub(crate) struct Redis {
    server_bin: PathBuf,
    /// `redis-cli`, which checks a TLS server's readiness (`Some` with TLS).
    cli_bin: Option<PathBuf>,
}

impl Redis {
    fn locate(tls: bool) -> Result<Self, TestkitError> {
        let server_bin = sys::find_or_install("redis-server", "redis-server", || {
            sys::find_program(&["redis-server"])
        })?;
        let cli_bin = if tls {
            Some(sys::find_or_install("redis-cli", "redis-tools", || {
                sys::find_program(&["redis-cli"])
            })?)
        } else {
            None
        };
        Ok(Self {
            server_bin,
            cli_bin,
        })
    }

    fn start(self) -> Result<Managed<Self>, TestkitError> {
        let tls = self.tls();
        Managed::start(self, "wrangle-testkit-redis-", |_, dir| {
            if tls {
                crate::tls::generate(dir)
            } else {
                Ok(())
            }
        })
    }
}

impl Flavor for Redis {
    const NAME: &'static str = "Redis";
    const URL_ENV: &'static str = "WRANGLE_TEST_REDIS_URL";
    const DEFAULT_PORT: u16 = 6379;
    /// Graceful shutdown, flushing the AOF.
    const STOP_SIGNAL: &'static str = "TERM";
    const DROP_SIGNAL: &'static str = "KILL";
    const LOG_FILE: &'static str = "redis.log";
    const LOGS_TO_STDERR: bool = false;

    fn url(&self, port: u16) -> String {
        let scheme = if self.tls() { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{port}/")
    }

    fn tls(&self) -> bool {
        self.cli_bin.is_some()
    }

    fn server_command(&self, dir: &Path, port: u16) -> Command {
        let mut cmd = Command::new(&self.server_bin);
        if self.tls() {
            cmd.args(["--port", "0", "--tls-port", &port.to_string()])
                .arg("--tls-cert-file")
                .arg(crate::tls::cert_file(dir))
                .arg("--tls-key-file")
                .arg(crate::tls::key_file(dir))
                .arg("--tls-ca-cert-file")
                .arg(crate::tls::ca_file(dir))
                .args(["--tls-auth-clients", "no"]);
        } else {
            cmd.args(["--port", &port.to_string()]);
        }
        cmd.args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(dir)
            .args(["--appendonly", "yes"])
            .args(["--appendfsync", "everysec"])
            .args(["--save", ""])
            .args(["--daemonize", "no"])
            .arg("--logfile")
            .arg(dir.join(Self::LOG_FILE));
        cmd
    }

    /// Answers `PING` with `+PONG` (while loading the AOF it answers `-LOADING`); through
    /// `redis-cli` over TLS for a TLS server.
    fn is_ready(&self, dir: &Path, port: u16) -> bool {
        if let Some(cli) = &self.cli_bin {
            return Command::new(cli)
                .args(["--tls", "-h", "127.0.0.1", "-p", &port.to_string()])
                .arg("--cacert")
                .arg(crate::tls::ca_file(dir))
                .arg("PING")
                .stdin(std::process::Stdio::null())
                .output()
                .is_ok_and(|out| out.status.success() && out.stdout.trim_ascii() == b"PONG");
        }
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
