//! Errors as the user sees them: one line on stderr, then an exit code. Bad input (a
//! malformed payload, duration, URL, config) exits 2 and nothing has been enqueued; other
//! failures exit 1.

use std::fmt;

use wrangle::{ConnectError, InputError, StoreError};

/// Exit codes of SPEC.md: 0 success, 1 a task failed, 2 bad input, 130 interrupted.
pub(crate) const EXIT_TASK_FAILED: i32 = 1;
pub(crate) const EXIT_BAD_INPUT: i32 = 2;
pub(crate) const EXIT_INTERRUPTED: i32 = 130;

/// A failure of the command itself.
#[derive(Debug)]
pub(crate) enum CliError {
    /// Malformed input: exit 2.
    Input(String),
    /// Anything else: exit 1.
    Runtime(String),
}

impl CliError {
    pub(crate) fn input(message: impl fmt::Display) -> Self {
        CliError::Input(message.to_string())
    }

    /// Prints the one-line message and returns the exit code.
    pub(crate) fn report(&self) -> i32 {
        eprintln!("wrangle: error: {self}");
        match self {
            CliError::Input(_) => EXIT_BAD_INPUT,
            CliError::Runtime(_) => EXIT_TASK_FAILED,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Input(message) | CliError::Runtime(message) => f.write_str(message),
        }
    }
}

impl From<InputError> for CliError {
    fn from(err: InputError) -> Self {
        CliError::Input(err.to_string())
    }
}

impl From<StoreError> for CliError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::InvalidRequest(_)
            | StoreError::TaskNotFound(_)
            | StoreError::CommandNotFound(_)
            | StoreError::JobNotFound(_)
            | StoreError::JobExists(_)
            | StoreError::InvalidTransition { .. } => CliError::Input(err.to_string()),
            _ => CliError::Runtime(err.to_string()),
        }
    }
}

impl From<ConnectError> for CliError {
    fn from(err: ConnectError) -> Self {
        match err {
            ConnectError::Url(e) => e.into(),
            ConnectError::Store(e) => CliError::Runtime(e.to_string()),
        }
    }
}

impl From<wrangle::WaitError> for CliError {
    fn from(err: wrangle::WaitError) -> Self {
        match err {
            wrangle::WaitError::Store(e) => e.into(),
            other => CliError::Runtime(other.to_string()),
        }
    }
}

pub(crate) type CliResult<T = i32> = Result<T, CliError>;
