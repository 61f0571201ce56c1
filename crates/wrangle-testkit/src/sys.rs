//! Small helpers around the operating system: finding (and installing) programs, running
//! commands, picking ports, sending signals, reading logs.
//!
//! Everything goes through `std::process::Command` because the workspace forbids `unsafe`,
//! so `libc` calls such as `geteuid` or `kill` are replaced by the `id` and `kill` programs.

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::TestkitError;

/// The ports of the machine's shared servers (PostgreSQL, MySQL/MariaDB, Redis): never used.
const SHARED_PORTS: [u16; 3] = [5432, 3306, 6379];

/// Directories searched after `PATH`: server binaries live in `sbin` on Debian, which is
/// not on a normal user's `PATH`.
const EXTRA_DIRS: [&str; 4] = ["/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin"];

/// Whether this process runs as root (effective uid 0), asked once from `id -u`.
pub(crate) fn is_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| out.status.success() && out.stdout.trim_ascii() == b"0")
    })
}

/// Whether `path` is a regular file with an execute bit.
pub(crate) fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The first of `names` found on `PATH` or in the `sbin` directories.
pub(crate) fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .collect();
    names.iter().find_map(|name| {
        dirs.iter()
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate))
    })
}

/// Returns what `find` finds; if it finds nothing, installs the Debian `package` with
/// `apt-get` (only as root, at most once per package and process, one install at a time)
/// and looks again.
pub(crate) fn find_or_install<T>(
    program: &str,
    package: &str,
    find: impl Fn() -> Option<T>,
) -> Result<T, TestkitError> {
    if let Some(found) = find() {
        return Ok(found);
    }
    static ATTEMPTED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    // Holding the lock for the whole install serialises apt-get runs between test threads.
    let mut attempted = ATTEMPTED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = find() {
        return Ok(found); // another thread installed it meanwhile
    }
    let missing = |detail: String| TestkitError::MissingProgram {
        program: program.to_owned(),
        package: package.to_owned(),
        detail,
    };
    if !attempted.get_or_insert_default().insert(package.to_owned()) {
        return Err(missing(
            "installing it failed earlier in this process".into(),
        ));
    }
    if !is_root() {
        return Err(missing("not running as root, so not installing it".into()));
    }
    let Some(apt) = find_program(&["apt-get"]) else {
        return Err(missing("apt-get is not available to install it".into()));
    };
    let apt_get = |args: &[&str]| {
        let mut cmd = Command::new(&apt);
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut cmd)
    };
    let install = ["install", "-y", "-q", package];
    let installed = apt_get(&install).or_else(|_| {
        apt_get(&["update", "-q"])?;
        apt_get(&install)
    });
    match (installed, find()) {
        (_, Some(found)) => Ok(found),
        (Err(e), None) => Err(missing(format!("apt-get could not install it: {e}"))),
        (Ok(_), None) => Err(missing(format!(
            "apt-get installed `{package}` but `{program}` is still not found"
        ))),
    }
}

/// Runs `cmd` to completion, capturing its output; a non-zero exit becomes an error
/// carrying the command line and the output.
pub(crate) fn run(cmd: &mut Command) -> Result<String, TestkitError> {
    let command = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(TestkitError::io(format!("running {command}")))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(TestkitError::Command {
            command,
            detail: format!("{}\n{}", out.status, last_lines(&text, 30)),
        })
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago and that no other server of this
/// process got: bind to port 0, read the port, let it go. Never one of the shared ports.
pub(crate) fn free_port() -> Result<u16, TestkitError> {
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let handed_out = handed_out.get_or_insert_default();
    for _ in 0..64 {
        let listener =
            TcpListener::bind(("127.0.0.1", 0)).map_err(TestkitError::io("binding 127.0.0.1:0"))?;
        let port = listener
            .local_addr()
            .map_err(TestkitError::io("reading the bound port"))?
            .port();
        if !SHARED_PORTS.contains(&port) && handed_out.insert(port) {
            return Ok(port);
        }
    }
    Err(TestkitError::Io {
        context: "finding a free TCP port".into(),
        source: std::io::Error::other("the OS kept returning ports already in use"),
    })
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn accepts_connections(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// Sends `signal` (a name such as `TERM`) to `pid` with the shell's `kill`.
pub(crate) fn send_signal(pid: u32, signal: &str) {
    let _ = Command::new("sh")
        .args(["-c", r#"kill -s "$1" "$2" 2>/dev/null"#, "kill"])
        .args([signal, &pid.to_string()])
        .stdin(Stdio::null())
        .status();
}

/// The size of the file at `path`, 0 when it does not exist: remembered before a start so
/// that only what this start logged is shown on failure.
pub(crate) fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}

/// What was appended to the log at `path` since it was `offset` bytes long.
pub(crate) fn read_log_since(path: &Path, offset: u64) -> String {
    let Ok(mut file) = fs::File::open(path) else {
        return String::new();
    };
    let offset = if file_len(path) < offset { 0 } else { offset };
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(offset)).is_ok() {
        let _ = file.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The last `n` lines of `text`.
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
