//! The one error type of the crate.

use std::fmt;
use std::io;

/// Why a throwaway server could not be set up or started.
///
/// Every variant carries enough text (command line, log tail) to diagnose the failure from
/// the test output alone, because the temp dir holding the logs is deleted afterwards.
#[derive(Debug)]
#[non_exhaustive]
pub enum TestkitError {
    /// A program the server needs is not installed and could not be installed.
    MissingProgram {
        /// The program that was looked for, e.g. `initdb`.
        program: String,
        /// The Debian package that provides it.
        package: String,
        /// What was tried (installation output, or why it was not attempted).
        detail: String,
    },
    /// A helper command (`initdb`, `mariadb-install-db`, ...) failed.
    Command {
        /// The command line, as run.
        command: String,
        /// Exit status and captured output.
        detail: String,
    },
    /// The server process exited during startup or did not become ready in time.
    Startup {
        /// Which server, e.g. `PostgreSQL`.
        server: &'static str,
        /// The TCP port it was started on.
        port: u16,
        /// What went wrong.
        reason: String,
        /// The last lines the server wrote to its log during this start.
        log_tail: String,
    },
    /// An I/O operation of the harness itself failed.
    Io {
        /// What the harness was doing.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
}

impl TestkitError {
    /// Builds a closure turning an `io::Error` into [`TestkitError::Io`] with `context`.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

impl fmt::Display for TestkitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingProgram {
                program,
                package,
                detail,
            } => write!(
                f,
                "`{program}` is not installed (Debian package `{package}`): {detail}"
            ),
            Self::Command { command, detail } => write!(f, "{command} failed: {detail}"),
            Self::Startup {
                server,
                port,
                reason,
                log_tail,
            } => {
                write!(f, "{server} on 127.0.0.1:{port} did not start: {reason}")?;
                if !log_tail.is_empty() {
                    write!(f, "\n--- last lines of the {server} log ---\n{log_tail}")?;
                }
                Ok(())
            }
            Self::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for TestkitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
