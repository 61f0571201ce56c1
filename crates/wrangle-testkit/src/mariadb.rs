//! Throwaway MariaDB servers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::TestkitError;
use crate::managed::{Backend, Flavor, Managed};
use crate::sys;

/// The database created at the first start.
const DATABASE: &str = "wrangle";

/// A throwaway MariaDB server on 127.0.0.1, in its own temp dir, on a free port.
///
/// Created by `mariadb-install-db` with a passwordless `root` (native password
/// authentication, so it logs in over TCP) and the database `wrangle`. It is started with
/// `--no-defaults`, so nothing of `/etc/mysql` applies, and its own Unix socket in the temp
/// dir, so the shared server on port 3306 is never touched. InnoDB keeps its durable
/// defaults (`innodb_flush_log_at_trx_commit=1`): committed data survives
/// [`kill`](Self::kill).
///
/// Setting up the data dir takes a few seconds (most of it loading the help tables).
/// Dropping it kills the server and deletes its data.
#[derive(Debug)]
pub struct MariaDbServer {
    backend: Backend<MariaDb>,
}

impl MariaDbServer {
    /// Starts a fresh server and creates the database `wrangle`.
    ///
    /// If `WRANGLE_TEST_MYSQL_URL` is set, nothing is started: the server at that URL is
    /// used instead, and the lifecycle methods (`stop`, `kill`, `restart`) panic.
    pub fn start() -> Result<Self, TestkitError> {
        if let Some(backend) = Backend::from_env() {
            return Ok(Self { backend });
        }
        let flavor = MariaDb::locate()?;
        let server = Managed::start(flavor, "wrangle-testkit-mariadb-", MariaDb::init)?;
        // Also proves that root gets in over TCP without a password.
        sys::run(
            server
                .flavor()
                .admin(server.port())
                .args(["create", DATABASE]),
        )?;
        Ok(Self {
            backend: Backend::Managed(server),
        })
    }

    /// The connection URL, `mysql://root@127.0.0.1:PORT/wrangle`.
    pub fn url(&self) -> String {
        self.backend.url()
    }

    /// The TCP port on 127.0.0.1. It stays the same across [`restart`](Self::restart).
    pub fn port(&self) -> u16 {
        self.backend.port()
    }

    /// Whether this is an external server given by `WRANGLE_TEST_MYSQL_URL` (on which the
    /// lifecycle methods panic) rather than a throwaway one.
    pub fn is_external(&self) -> bool {
        self.backend.is_external()
    }

    /// Whether the server process is alive (always `true` for an external server).
    pub fn is_running(&mut self) -> bool {
        self.backend.is_running()
    }

    /// The server's error log, for diagnosing a failed test (`None` for an external server).
    pub fn log_path(&self) -> Option<PathBuf> {
        self.backend.log_path()
    }

    /// Shuts the server down cleanly (SIGTERM) and returns once the process has exited.
    /// The data stays for [`restart`](Self::restart). Does nothing if it is not running.
    ///
    /// # Panics
    /// For an external server.
    #[track_caller]
    pub fn stop(&mut self) {
        self.backend.managed("stop").stop();
    }

    /// Kills the server with SIGKILL, simulating a crash, and returns once it is gone. The
    /// next [`restart`](Self::restart) runs InnoDB crash recovery. Does nothing if it is not
    /// running.
    ///
    /// # Panics
    /// For an external server.
    #[track_caller]
    pub fn kill(&mut self) {
        self.backend.managed("kill").kill();
    }

    /// Starts the server again on the same port with the same data, stopping it first if it
    /// is running, and waits until it answers a ping.
    ///
    /// # Panics
    /// For an external server.
    #[track_caller]
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.backend.managed("restart").restart()
    }
}

/// Where the MariaDB programs are.
#[derive(Debug)]
pub(crate) struct MariaDb {
    server_bin: PathBuf,
    install_db: PathBuf,
    admin: PathBuf,
}

impl MariaDb {
    fn locate() -> Result<Self, TestkitError> {
        let find = |names: &'static [&'static str]| {
            sys::find_or_install(names[0], "mariadb-server", || sys::find_program(names))
        };
        Ok(Self {
            server_bin: find(&["mariadbd", "mysqld"])?,
            install_db: find(&["mariadb-install-db", "mysql_install_db"])?,
            admin: find(&["mariadb-admin", "mysqladmin"])?,
        })
    }

    /// `--user=root` where needed: mariadbd refuses to run as root unless told so.
    fn user_arg() -> Option<&'static str> {
        sys::is_root().then_some("--user=root")
    }

    fn init(&self, dir: &Path) -> Result<(), TestkitError> {
        let mut cmd = Command::new(&self.install_db);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .arg("--skip-name-resolve")
            .args(Self::user_arg())
            .current_dir(dir);
        sys::run(&mut cmd)?;
        Ok(())
    }

    /// `mariadb-admin` as root over TCP to the server on `port`; append the subcommand.
    fn admin(&self, port: u16) -> Command {
        let mut cmd = Command::new(&self.admin);
        cmd.args(["--no-defaults", "--protocol=tcp", "--host=127.0.0.1"])
            .arg(format!("--port={port}"))
            .args(["--user=root", "--connect-timeout=1"]);
        cmd
    }
}

impl Flavor for MariaDb {
    const NAME: &'static str = "MariaDB";
    const URL_ENV: &'static str = "WRANGLE_TEST_MYSQL_URL";
    const DEFAULT_PORT: u16 = 3306;
    const STOP_SIGNAL: &'static str = "TERM";
    const DROP_SIGNAL: &'static str = "KILL";

    fn url(port: u16) -> String {
        format!("mysql://root@127.0.0.1:{port}/{DATABASE}")
    }

    fn log_path(dir: &Path) -> PathBuf {
        dir.join("mariadb.log")
    }

    fn spawn(&self, dir: &Path, port: u16) -> Result<Child, TestkitError> {
        Command::new(&self.server_bin)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", dir.join("mariadb.sock").display()))
            .arg(format!("--pid-file={}", dir.join("mariadb.pid").display()))
            .arg(format!("--log-error={}", Self::log_path(dir).display()))
            .arg("--skip-name-resolve")
            .args(Self::user_arg())
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

    fn is_ready(&self, port: u16) -> bool {
        self.admin(port)
            .arg("ping")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }
}
