//! The lifecycle shared by all three servers: a temp dir, a server child process on a port,
//! start/stop/kill/restart, a watchdog that cleans up if the test process dies without
//! running destructors, the choice between that and an external server
//! (`WRANGLE_TEST_*_URL`), and the public methods every server type has
//! (`server_methods!`). The server files hold only what differs: a `Flavor`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::TestkitError;
use crate::sys;

/// How long a server may take to accept connections (including crash recovery).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a graceful `stop()` may take before the server is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);
/// How long the quick shutdown in `Drop` may take before the server is killed.
const DROP_GRACE: Duration = Duration::from_secs(5);
/// Name of the file, in the temp dir, holding the pid of the running server for the
/// watchdog.
const PID_FILE: &str = "testkit-server.pid";

/// What differs between the servers: how to launch one and how to tell it is ready.
pub(crate) trait Flavor {
    /// Human name, used in messages (`PostgreSQL`).
    const NAME: &'static str;
    /// Environment variable pointing the tests at an existing server instead.
    const URL_ENV: &'static str;
    /// Port assumed for an external URL without one.
    const DEFAULT_PORT: u16;
    /// Signal for a graceful but prompt shutdown (`stop()`).
    const STOP_SIGNAL: &'static str;
    /// Signal for the quick shutdown when dropped (data is thrown away anyway).
    const DROP_SIGNAL: &'static str;
    /// The server's log file, in the temp dir.
    const LOG_FILE: &'static str;
    /// Whether the server logs to stdout and stderr, which then go to `LOG_FILE`; if not, it
    /// is told to write `LOG_FILE` itself and its output is discarded.
    const LOGS_TO_STDERR: bool;

    /// The connection URL of a throwaway server on `port`.
    fn url(&self, port: u16) -> String;
    /// Whether the server speaks TLS with the files of `crate::tls` in its temp dir.
    fn tls(&self) -> bool;
    /// The command line running the server on `port` with its files in `dir`, in the
    /// foreground, so that the server's pid is the child's pid.
    fn server_command(&self, dir: &Path, port: u16) -> Command;
    /// Whether the server on `port`, with its files in `dir`, answers requests (not merely
    /// accepts TCP).
    fn is_ready(&self, dir: &Path, port: u16) -> bool;
    /// Whether a start failed, judging by what it logged, only because remains of the
    /// previous server process are still going away (`restart()` then tries again).
    fn leftovers_in_the_way(_log: &str) -> bool {
        false
    }
}

/// A server of flavor `F` owned by this process, living in its own temp dir.
#[derive(Debug)]
pub(crate) struct Managed<F: Flavor> {
    flavor: F,
    port: u16,
    child: Option<Child>,
    watchdog: Option<Watchdog>,
    /// Declared last: removed only after `Drop` has stopped the server.
    dir: TempDir,
}

/// Why a single launch failed, and whether another port might work.
struct LaunchError {
    error: TestkitError,
    port_in_use: bool,
    /// See `Flavor::leftovers_in_the_way`.
    leftovers: bool,
}

impl From<TestkitError> for LaunchError {
    fn from(error: TestkitError) -> Self {
        Self {
            error,
            port_in_use: false,
            leftovers: false,
        }
    }
}

impl<F: Flavor> Managed<F> {
    /// Creates the temp dir, arms the watchdog, runs `init` (e.g. `initdb`) in the dir, then
    /// starts the server on a free port, trying other ports if the chosen one got taken.
    pub(crate) fn start(
        flavor: F,
        prefix: &str,
        init: impl FnOnce(&F, &Path) -> Result<(), TestkitError>,
    ) -> Result<Self, TestkitError> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .map_err(TestkitError::io("creating a temp dir"))?;
        let watchdog = Watchdog::arm(dir.path())?;
        let mut server = Self {
            flavor,
            port: 0,
            child: None,
            watchdog: Some(watchdog),
            dir,
        };
        init(&server.flavor, server.dir.path())?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let port = sys::free_port()?;
            match server.launch(port) {
                Ok(()) => return Ok(server),
                Err(e) if e.port_in_use && attempts < 3 => continue,
                Err(e) => return Err(e.error),
            }
        }
    }

    /// The flavor, for server-specific follow-up steps.
    pub(crate) fn flavor(&self) -> &F {
        &self.flavor
    }

    /// The port the server listens (or listened) on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The temp dir holding data and logs.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the server process is alive.
    pub(crate) fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Graceful shutdown; the server is killed if it does not exit within the grace period.
    pub(crate) fn stop(&mut self) {
        self.halt(F::STOP_SIGNAL, STOP_GRACE);
    }

    /// SIGKILL, as in a crash: no shutdown work at all. Returns once the process is gone.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.forget_pid();
        }
    }

    /// Stops the server if it runs, then starts it again on the same port and data dir.
    pub(crate) fn restart(&mut self) -> Result<(), TestkitError> {
        self.stop();
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.launch(self.port) {
                Ok(()) => return Ok(()),
                // The port cannot change (clients hold the URL): wait for it to be released,
                // or for the remains of a killed server to be gone.
                Err(e) if (e.port_in_use && attempts < 5) || (e.leftovers && attempts < 20) => {
                    sleep(Duration::from_millis(250));
                }
                Err(e) => return Err(e.error),
            }
        }
    }

    /// One start on `port`: spawn, then wait until ready, the process exits, or time out.
    fn launch(&mut self, port: u16) -> Result<(), LaunchError> {
        if sys::accepts_connections(port) {
            // Someone else listens there: spawning would only fail, and the readiness
            // check could even mistake that other server for ours.
            return Err(LaunchError {
                error: TestkitError::Startup {
                    server: F::NAME,
                    port,
                    reason: "the port is already in use by another process".into(),
                    log_tail: String::new(),
                },
                port_in_use: true,
                leftovers: false,
            });
        }
        let log = self.dir.path().join(F::LOG_FILE);
        let log_start = sys::file_len(&log);
        let mut child = self.spawn(port, &log)?;
        if let Err(e) = fs::write(self.dir.path().join(PID_FILE), child.id().to_string()) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(TestkitError::io("writing the watchdog's pid file")(e).into());
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut pause = Duration::from_millis(10);
        let failure = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break format!("the server exited during startup ({status})");
            }
            // Still alive after answering: the answer came from our server.
            if self.flavor.is_ready(self.dir.path(), port) && matches!(child.try_wait(), Ok(None)) {
                self.port = port;
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break format!("not ready after {}s, killed it", READY_TIMEOUT.as_secs());
            }
            sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        };
        self.forget_pid();
        let logged = sys::read_log_since(&log, log_start);
        Err(LaunchError {
            port_in_use: logged.contains("already in use"),
            leftovers: F::leftovers_in_the_way(&logged),
            error: TestkitError::Startup {
                server: F::NAME,
                port,
                reason: failure,
                log_tail: sys::last_lines(&logged, 25),
            },
        })
    }

    /// Launches the server on `port` without waiting for it, in the temp dir, with stdin
    /// closed and its output appended to `log` or discarded (see `Flavor::LOGS_TO_STDERR`).
    fn spawn(&self, port: u16, log: &Path) -> Result<Child, TestkitError> {
        let dir = self.dir.path();
        let (stdout, stderr) = if F::LOGS_TO_STDERR {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .map_err(TestkitError::io(format!("opening {}", log.display())))?;
            let copy = file
                .try_clone()
                .map_err(TestkitError::io("duplicating the log handle"))?;
            (Stdio::from(file), Stdio::from(copy))
        } else {
            (Stdio::null(), Stdio::null())
        };
        let mut cmd = self.flavor.server_command(dir, port);
        let program = Path::new(cmd.get_program()).display().to_string();
        cmd.current_dir(dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(TestkitError::io(format!("starting {program}")))
    }

    /// Sends `signal`, waits up to `grace` for the exit, then kills.
    fn halt(&mut self, signal: &str, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            sys::send_signal(child.id(), signal);
            let deadline = Instant::now() + grace;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                sleep(Duration::from_millis(20));
            }
            let _ = child.kill(); // no-op error if it already exited
        }
        let _ = child.wait();
        self.forget_pid();
    }

    /// The server is gone: the watchdog must not signal that pid any more.
    fn forget_pid(&self) {
        let _ = fs::remove_file(self.dir.path().join(PID_FILE));
    }
}

impl<F: Flavor> Drop for Managed<F> {
    fn drop(&mut self) {
        self.halt(F::DROP_SIGNAL, DROP_GRACE);
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.disarm();
        }
        // `self.dir` is dropped next and deletes the data.
    }
}

/// A `sh` process that waits on a pipe from this process. The pipe closes when this
/// process ends in any way (panic with abort, SIGKILL, a server kept in a `static` whose
/// destructor never runs); the watchdog then kills the server whose pid is in the pid file
/// and deletes the temp dir. A normal drop disarms it first.
#[derive(Debug)]
struct Watchdog {
    process: Child,
    pipe: ChildStdin,
}

/// `$1` is the temp dir. Signals are ignored so that Ctrl-C on the test run does not take
/// the watchdog down before the test process itself.
const WATCHDOG_SCRIPT: &str = r#"
trap '' HUP INT QUIT TERM PIPE
IFS= read -r line
[ "$line" = disarm ] && exit 0
pid=$(cat "$1/testkit-server.pid" 2>/dev/null)
if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null; sleep 1; fi
rm -rf "$1"
"#;

impl Watchdog {
    fn arm(dir: &Path) -> Result<Self, TestkitError> {
        let mut process = Command::new("sh")
            .args(["-c", WATCHDOG_SCRIPT, "wrangle-testkit-watchdog"])
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(TestkitError::io("starting the cleanup watchdog (sh)"))?;
        let pipe = process.stdin.take().expect("stdin was piped");
        Ok(Self { process, pipe })
    }

    fn disarm(mut self) {
        let _ = self.pipe.write_all(b"disarm\n");
        drop(self.pipe);
        let _ = self.process.wait();
    }
}

/// Either a throwaway server of this process, or an existing one named by `F::URL_ENV`.
#[derive(Debug)]
pub(crate) enum Backend<F: Flavor> {
    Managed(Managed<F>),
    External(String),
}

impl<F: Flavor> Backend<F> {
    /// The external server named by `F::URL_ENV` if that variable is set and not empty
    /// (then `start` is not called), else the throwaway server that `start` starts.
    pub(crate) fn external_or(
        start: impl FnOnce() -> Result<Managed<F>, TestkitError>,
    ) -> Result<Self, TestkitError> {
        match std::env::var(F::URL_ENV) {
            Ok(url) if !url.trim().is_empty() => Ok(Self::External(url.trim().to_owned())),
            _ => start().map(Self::Managed),
        }
    }

    pub(crate) fn url(&self) -> String {
        match self {
            Self::Managed(server) => server.flavor().url(server.port()),
            Self::External(url) => url.clone(),
        }
    }

    pub(crate) fn port(&self) -> u16 {
        match self {
            Self::Managed(server) => server.port(),
            Self::External(url) => url_port(url).unwrap_or(F::DEFAULT_PORT),
        }
    }

    pub(crate) fn is_external(&self) -> bool {
        matches!(self, Self::External(_))
    }

    pub(crate) fn log_path(&self) -> Option<PathBuf> {
        match self {
            Self::Managed(server) => Some(server.dir().join(F::LOG_FILE)),
            Self::External(_) => None,
        }
    }

    /// The CA certificate of a throwaway server started with TLS.
    pub(crate) fn ca_file(&self) -> Option<PathBuf> {
        match self {
            Self::Managed(server) if server.flavor().tls() => {
                Some(crate::tls::ca_file(server.dir()))
            }
            _ => None,
        }
    }

    pub(crate) fn is_running(&mut self) -> bool {
        match self {
            Self::Managed(server) => server.is_running(),
            Self::External(_) => true,
        }
    }

    /// The managed server, for the lifecycle operations; panics for an external one,
    /// whose process this crate does not own.
    #[track_caller]
    pub(crate) fn managed(&mut self, operation: &str) -> &mut Managed<F> {
        match self {
            Self::Managed(server) => server,
            Self::External(url) => panic!(
                "wrangle-testkit: {operation}() needs a throwaway {} server, but {} points \
                 at the external server {url}; unset it to run this test",
                F::NAME,
                F::URL_ENV
            ),
        }
    }
}

/// Defines, inside the `impl` block of a server type holding a `backend: Backend<_>` field,
/// the public methods all three server types have: `url`, `port`, `is_external`,
/// `is_running`, `log_path`, `ca_file`, `stop`, `kill` and `restart`. The docs of those whose meaning
/// differs between servers (URL format, variable name, what a stop or kill does) are given
/// by the caller, in this order; stop, kill and restart also get a "Panics" section.
macro_rules! server_methods {
    (
        $(#[$url:meta])* url;
        $(#[$is_external:meta])* is_external;
        $(#[$stop:meta])* stop;
        $(#[$kill:meta])* kill;
        $(#[$restart:meta])* restart;
    ) => {
        $(#[$url])*
        pub fn url(&self) -> String {
            self.backend.url()
        }

        /// The TCP port on 127.0.0.1. It stays the same across [`restart`](Self::restart).
        pub fn port(&self) -> u16 {
            self.backend.port()
        }

        $(#[$is_external])*
        pub fn is_external(&self) -> bool {
            self.backend.is_external()
        }

        /// Whether the server process is alive (always `true` for an external server).
        pub fn is_running(&mut self) -> bool {
            self.backend.is_running()
        }

        /// The server's log, for diagnosing a failed test (`None` for an external server).
        pub fn log_path(&self) -> Option<std::path::PathBuf> {
            self.backend.log_path()
        }

        /// The certificate of the authority that signed this server's certificate (PEM),
        /// which a client must be given to verify the server: `Some` only for a server
        /// started with `start_tls`. Each such server has its own authority, trusted
        /// nowhere else.
        pub fn ca_file(&self) -> Option<std::path::PathBuf> {
            self.backend.ca_file()
        }

        $(#[$stop])*
        ///
        /// # Panics
        /// For an external server.
        #[track_caller]
        pub fn stop(&mut self) {
            self.backend.managed("stop").stop();
        }

        $(#[$kill])*
        ///
        /// # Panics
        /// For an external server.
        #[track_caller]
        pub fn kill(&mut self) {
            self.backend.managed("kill").kill();
        }

        $(#[$restart])*
        ///
        /// # Panics
        /// For an external server.
        #[track_caller]
        pub fn restart(&mut self) -> Result<(), $crate::TestkitError> {
            self.backend.managed("restart").restart()
        }
    };
}
pub(crate) use server_methods;

/// The explicit port of a URL such as `scheme://user:pw@host:port/path`, if any.
pub(crate) fn url_port(url: &str) -> Option<u16> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = host_port.rsplit_once(':')?;
    if host.starts_with('[') && !host.ends_with(']') {
        return None; // a colon inside an IPv6 literal without a port
    }
    port.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::url_port;

    #[test]
    fn url_port_finds_explicit_ports_only() {
        assert_eq!(url_port("postgres://u:p@db.example:6543/x"), Some(6543));
        assert_eq!(url_port("redis://127.0.0.1:7000/"), Some(7000));
        assert_eq!(url_port("mysql://root@[::1]:3307/wrangle"), Some(3307));
        assert_eq!(url_port("mysql://root@[::1]/wrangle"), None);
        assert_eq!(url_port("postgres://localhost/x"), None);
        assert_eq!(url_port("postgres://u:secret@localhost/x"), None);
    }
}
