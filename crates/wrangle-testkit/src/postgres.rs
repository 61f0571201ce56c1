//! Throwaway PostgreSQL servers: where the binaries are, `initdb`, the `postgres` command
//! line (run as the `postgres` user under root), the `pg_isready` check and the URL. The
//! lifecycle is in `managed`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::TestkitError;
use crate::managed::{Backend, Flavor, Managed, server_methods};
use crate::sys;

/// The superuser created by `initdb`; it logs in without a password (`trust`).
const USER: &str = "wrangle";
/// The system account that runs the server when the tests run as root, which PostgreSQL
/// refuses.
const OS_USER: &str = "postgres";

/// A throwaway PostgreSQL server on 127.0.0.1, in its own temp dir, on a free port.
///
/// Created by `initdb` from the newest `/usr/lib/postgresql/*/bin` (or from `PATH`), with
/// a passwordless superuser `wrangle`, encoding UTF8 and the `C` locale. Every other role
/// logs in with its password (SCRAM), so a test can create one to check authentication.
/// When the tests run as root the server runs as the `postgres` system user. It listens on
/// TCP only (no Unix socket), so it never touches `/var/run/postgresql` or the shared
/// server on port 5432.
///
/// Dropping it shuts the server down (immediate mode) and deletes its data.
#[derive(Debug)]
pub struct PostgresServer {
    backend: Backend<Postgres>,
}

impl PostgresServer {
    /// Starts a fresh server with `fsync=off`: fast, and safe for tests because `kill()`
    /// only kills the process; committed data still survives it (it sits in the OS page
    /// cache), only an OS crash would lose it.
    ///
    /// If `WRANGLE_TEST_PG_URL` is set, nothing is started: the server at that URL is
    /// used instead, and the lifecycle methods (`stop`, `kill`, `restart`) panic.
    pub fn start() -> Result<Self, TestkitError> {
        Self::start_with(false)
    }

    /// Like [`start`](Self::start) but with PostgreSQL's durable defaults (`fsync=on`),
    /// for benchmarks that must measure what a real deployment pays per commit.
    pub fn start_durable() -> Result<Self, TestkitError> {
        Self::start_with(true)
    }

    /// Like [`start`](Self::start), with TLS on (`ssl=on`) under a certificate for
    /// `localhost` and `127.0.0.1` signed by a certificate authority made for this server
    /// alone ([`ca_file`](Self::ca_file)). Clients may still connect without TLS.
    ///
    /// Always a throwaway server: `WRANGLE_TEST_PG_URL` is not used.
    pub fn start_tls() -> Result<Self, TestkitError> {
        let flavor = Postgres::locate(false, true)?;
        let server = Managed::start(flavor, "wrangle-testkit-pg-", Postgres::init)?;
        Ok(Self {
            backend: Backend::Managed(server),
        })
    }

    fn start_with(fsync: bool) -> Result<Self, TestkitError> {
        let backend = Backend::external_or(|| {
            let flavor = Postgres::locate(fsync, false)?;
            Managed::start(flavor, "wrangle-testkit-pg-", Postgres::init)
        })?;
        Ok(Self { backend })
    }

    server_methods! {
        /// The connection URL, `postgres://wrangle@127.0.0.1:PORT/postgres`.
        url;
        /// Whether this is an external server given by `WRANGLE_TEST_PG_URL` (on which the
        /// lifecycle methods panic) rather than a throwaway one.
        is_external;
        /// Shuts the server down cleanly (fast mode: sessions are disconnected, then a
        /// checkpoint) and returns once the process has exited. The data stays for
        /// [`restart`](Self::restart). Does nothing if it is not running.
        stop;
        /// Kills the postmaster with SIGKILL, simulating a crash, and returns once it is gone;
        /// its backends exit on their own right after. The next
        /// [`restart`](Self::restart) runs crash recovery. Does nothing if it is not running.
        kill;
        /// Starts the server again on the same port with the same data, stopping it first if it
        /// is running, and waits until it accepts connections.
        restart;
    }
}

/// Where the PostgreSQL programs are and how to run them.
#[derive(Debug)]
pub(crate) struct Postgres {
    initdb: PathBuf,
    postgres: PathBuf,
    pg_isready: PathBuf,
    /// `Some(setpriv)` when running as root: commands are run as the `postgres` user.
    setpriv: Option<PathBuf>,
    fsync: bool,
    tls: bool,
}

/// Client authentication: the superuser `wrangle` is trusted (the tests' own URL has no
/// password); every other role needs its password, for tests of failed logins.
const PG_HBA: &str = "\
host all wrangle 127.0.0.1/32 trust
host all wrangle ::1/128 trust
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
";

impl Postgres {
    fn locate(fsync: bool, tls: bool) -> Result<Self, TestkitError> {
        let [initdb, postgres, pg_isready] =
            sys::find_or_install("initdb", "postgresql", find_binaries)?;
        let setpriv = if sys::is_root() {
            let setpriv =
                sys::find_or_install("setpriv", "util-linux", || sys::find_program(&["setpriv"]))?;
            sys::run(Command::new("id").args(["-u", OS_USER])).map_err(|e| {
                TestkitError::Command {
                    command: format!("looking up the `{OS_USER}` user"),
                    detail: format!(
                        "PostgreSQL refuses to run as root and there is no `{OS_USER}` \
                         user to run it as: {e}"
                    ),
                }
            })?;
            Some(setpriv)
        } else {
            None
        };
        Ok(Self {
            initdb,
            postgres,
            pg_isready,
            setpriv,
            fsync,
            tls,
        })
    }

    /// A command running `program` as the `postgres` user if we are root.
    fn command(&self, program: &Path, dir: &Path) -> Command {
        let mut cmd = match &self.setpriv {
            Some(setpriv) => {
                let mut cmd = Command::new(setpriv);
                cmd.args([
                    format!("--reuid={OS_USER}"),
                    format!("--regid={OS_USER}"),
                    "--init-groups".to_owned(),
                    "--".to_owned(),
                ])
                .arg(program);
                cmd
            }
            None => Command::new(program),
        };
        // The test's working directory may not be readable by the `postgres` user.
        cmd.current_dir(dir);
        cmd
    }

    fn init(&self, dir: &Path) -> Result<(), TestkitError> {
        if self.setpriv.is_some() {
            sys::run(Command::new("chown").arg(format!("{OS_USER}:")).arg(dir))?;
        }
        let mut initdb = self.command(&self.initdb, dir);
        initdb
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-A", "trust", "-U", USER, "-E", "UTF8", "--locale=C"])
            .arg("--no-sync");
        sys::run(&mut initdb)?;
        let hba = dir.join("data").join("pg_hba.conf");
        fs::write(&hba, PG_HBA).map_err(TestkitError::io(format!("writing {}", hba.display())))?;
        if self.tls {
            crate::tls::generate(dir)?;
        }
        if self.setpriv.is_some() {
            // Written by root above; the server (and PostgreSQL's key check) want them its own.
            let mut chown = Command::new("chown");
            chown.arg("-R").arg(format!("{OS_USER}:")).arg(&hba);
            if self.tls {
                chown.arg(dir.join("tls"));
            }
            sys::run(&mut chown)?;
        }
        Ok(())
    }
}

impl Flavor for Postgres {
    const NAME: &'static str = "PostgreSQL";
    const URL_ENV: &'static str = "WRANGLE_TEST_PG_URL";
    const DEFAULT_PORT: u16 = 5432;
    /// Fast shutdown: disconnect sessions, checkpoint, exit.
    const STOP_SIGNAL: &'static str = "INT";
    /// Immediate shutdown: the postmaster takes its backends down and exits at once.
    const DROP_SIGNAL: &'static str = "QUIT";
    const LOG_FILE: &'static str = "postgres.log";
    const LOGS_TO_STDERR: bool = true;

    fn url(&self, port: u16) -> String {
        format!("postgres://{USER}@127.0.0.1:{port}/postgres")
    }

    fn tls(&self) -> bool {
        self.tls
    }

    fn server_command(&self, dir: &Path, port: u16) -> Command {
        let mut cmd = self.command(&self.postgres, dir);
        cmd.arg("-D")
            .arg(dir.join("data"))
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            // No Unix socket: nothing is created next to the shared server's socket.
            .args(["-c", "unix_socket_directories="]);
        if !self.fsync {
            cmd.args(["-c", "fsync=off"]);
        }
        if self.tls {
            cmd.args(["-c", "ssl=on"])
                .arg("-c")
                .arg(format!(
                    "ssl_cert_file={}",
                    crate::tls::cert_file(dir).display()
                ))
                .arg("-c")
                .arg(format!(
                    "ssl_key_file={}",
                    crate::tls::key_file(dir).display()
                ));
        }
        cmd
    }

    fn is_ready(&self, _dir: &Path, port: u16) -> bool {
        Command::new(&self.pg_isready)
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-U", USER, "-d", "postgres", "-t", "1"])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Right after `kill()` the postmaster's children may still hold its shared memory for
    /// a moment, and a new postmaster refuses to start until they have exited.
    fn leftovers_in_the_way(log: &str) -> bool {
        log.contains("pre-existing shared memory block")
    }
}

/// `initdb`, `postgres` and `pg_isready` of the newest `/usr/lib/postgresql/<version>`, or
/// else from `PATH`.
fn find_binaries() -> Option<[PathBuf; 3]> {
    const NAMES: [&str; 3] = ["initdb", "postgres", "pg_isready"];
    let newest = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: Vec<u32> = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<_>>()?;
            let bin = entry.path().join("bin");
            NAMES
                .iter()
                .all(|name| sys::is_executable(&bin.join(name)))
                .then_some((version, bin))
        })
        .max();
    match newest {
        Some((_, bin)) => Some(NAMES.map(|name| bin.join(name))),
        None => Some([
            sys::find_program(&[NAMES[0]])?,
            sys::find_program(&[NAMES[1]])?,
            sys::find_program(&[NAMES[2]])?,
        ]),
    }
}
