//! Throwaway MariaDB servers: where the binaries are, `mariadb-install-db`, the `mariadbd`
//! command line (with its own tmpdir), the `mariadb-admin ping` check, the `wrangle`
//! database and the URL. The lifecycle is in `managed`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::TestkitError;
use crate::managed::{Backend, Flavor, Managed, server_methods};
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
        let backend = Backend::external_or(|| MariaDb::locate(false)?.start())?;
        Ok(Self { backend })
    }

    /// Like [`start`](Self::start), with TLS on (`--ssl-cert`, `--ssl-key`) under a
    /// certificate for `localhost` and `127.0.0.1` signed by a certificate authority made
    /// for this server alone ([`ca_file`](Self::ca_file)). Clients may still connect
    /// without TLS.
    ///
    /// Always a throwaway server: `WRANGLE_TEST_MYSQL_URL` is not used.
    pub fn start_tls() -> Result<Self, TestkitError> {
        Ok(Self {
            backend: Backend::Managed(MariaDb::locate(true)?.start()?),
        })
    }

    server_methods! {
        /// The connection URL, `mysql://root@127.0.0.1:PORT/wrangle`.
        url;
        /// Whether this is an external server given by `WRANGLE_TEST_MYSQL_URL` (on which the
        /// lifecycle methods panic) rather than a throwaway one.
        is_external;
        /// Shuts the server down cleanly (SIGTERM) and returns once the process has exited.
        /// The data stays for [`restart`](Self::restart). Does nothing if it is not running.
        stop;
        /// Kills the server with SIGKILL, simulating a crash, and returns once it is gone. The
        /// next [`restart`](Self::restart) runs InnoDB crash recovery. Does nothing if it is not
        /// running.
        kill;
        /// Starts the server again on the same port with the same data, stopping it first if it
        /// is running, and waits until it answers a ping.
        restart;
    }
}

/// Where the MariaDB programs are.
#[derive(Debug)]
pub(crate) struct MariaDb {
    server_bin: PathBuf,
    install_db: PathBuf,
    admin: PathBuf,
    tls: bool,
}

impl MariaDb {
    fn locate(tls: bool) -> Result<Self, TestkitError> {
        let find = |names: &'static [&'static str]| {
            sys::find_or_install(names[0], "mariadb-server", || sys::find_program(names))
        };
        Ok(Self {
            server_bin: find(&["mariadbd", "mysqld"])?,
            install_db: find(&["mariadb-install-db", "mysql_install_db"])?,
            admin: find(&["mariadb-admin", "mysqladmin"])?,
            tls,
        })
    }

    /// Starts a fresh server and creates the database `wrangle`.
    fn start(self) -> Result<Managed<Self>, TestkitError> {
        let server = Managed::start(self, "wrangle-testkit-mariadb-", MariaDb::init)?;
        // Also proves that root gets in over TCP without a password.
        sys::run(
            server
                .flavor()
                .admin(server.port())
                .args(["create", DATABASE]),
        )?;
        Ok(server)
    }

    /// `--user=root` where needed: mariadbd refuses to run as root unless told so.
    fn user_arg() -> Option<&'static str> {
        sys::is_root().then_some("--user=root")
    }

    /// `--datadir` and `--tmpdir` in the temp dir `dir`. The server's own tmpdir matters:
    /// every mariadbd deletes all `#sql*` files in its tmpdir when it starts, so with a
    /// shared `/tmp` one server starting wipes the temporary tables of another one being
    /// set up by `mariadb-install-db` at that moment, which then fails.
    fn dir_args(dir: &Path) -> [String; 2] {
        [
            format!("--datadir={}", dir.join("data").display()),
            format!("--tmpdir={}", dir.join("tmp").display()),
        ]
    }

    fn init(&self, dir: &Path) -> Result<(), TestkitError> {
        let tmp = dir.join("tmp");
        fs::create_dir(&tmp).map_err(TestkitError::io(format!("creating {}", tmp.display())))?;
        let mut cmd = Command::new(&self.install_db);
        cmd.arg("--no-defaults")
            .args(Self::dir_args(dir))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .arg("--skip-name-resolve")
            .args(Self::user_arg())
            .current_dir(dir);
        sys::run(&mut cmd)?;
        if self.tls {
            crate::tls::generate(dir)?;
        }
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
    const LOG_FILE: &'static str = "mariadb.log";
    const LOGS_TO_STDERR: bool = false;

    fn url(&self, port: u16) -> String {
        format!("mysql://root@127.0.0.1:{port}/{DATABASE}")
    }

    fn tls(&self) -> bool {
        self.tls
    }

    fn server_command(&self, dir: &Path, port: u16) -> Command {
        let mut cmd = Command::new(&self.server_bin);
        cmd.arg("--no-defaults")
            .args(Self::dir_args(dir))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", dir.join("mariadb.sock").display()))
            .arg(format!("--pid-file={}", dir.join("mariadb.pid").display()))
            .arg(format!(
                "--log-error={}",
                dir.join(Self::LOG_FILE).display()
            ))
            .arg("--skip-name-resolve")
            .args(Self::user_arg());
        if self.tls {
            cmd.arg(format!(
                "--ssl-cert={}",
                crate::tls::cert_file(dir).display()
            ))
            .arg(format!("--ssl-key={}", crate::tls::key_file(dir).display()))
            .arg(format!("--ssl-ca={}", crate::tls::ca_file(dir).display()));
        }
        cmd
    }

    fn is_ready(&self, _dir: &Path, port: u16) -> bool {
        self.admin(port)
            .arg("ping")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }
}
