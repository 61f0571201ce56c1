//! Errors as the user sees them: one line on stderr, then an exit code. Bad input (a
//! malformed payload, duration, URL, config) exits 2 and nothing has been enqueued; other
//! failures exit 1.

use std::fmt;

use wrangle::{ConnectError, InputError, StoreError};

/// Exit codes: 0 success, 1 a task failed, 2 bad input, 130 interrupted.
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

    /// Prints the message on one line (a path or URL it quotes may hold a newline) and
    /// returns the exit code.
    pub(crate) fn report(&self) -> i32 {
        eprintln!(
            "wrangle: error: {}",
            wrangle::parse::one_line(self.to_string())
        );
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
            // A path or URL that names no store is most often a typo: bad input.
            ConnectError::Store(StoreError::NoStore(at)) => CliError::Input(format!(
                "no wrangle store at {at}: it is created by wrangle submit, wrangle worker or wrangle job create (or give --store URL of an existing one)"
            )),
            ConnectError::Store(e) => CliError::Runtime(e.to_string()),
        }
    }
}

impl From<wrangle::WorkerError> for CliError {
    fn from(err: wrangle::WorkerError) -> Self {
        match err {
            wrangle::WorkerError::Config(e) => e.into(),
            wrangle::WorkerError::Store(e) => e.into(),
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

/// A command-line parsing error as one line: what is wrong, clap's suggestion folded in
/// ("did you mean"), and where to read more, e.g. `unexpected argument '--keep-ordr' found
/// (did you mean '--keep-order'?; see wrangle run --help)`. `command` is the command path
/// the user typed (`wrangle tasks list`).
pub(crate) fn usage_error_line(err: &clap::Error, command: &str) -> String {
    if let Some(line) = gnu_parallel_only(err, command) {
        return line;
    }
    let rendered = err.render().to_string();
    let mut what = Vec::new();
    let mut hints = Vec::new();
    for line in rendered.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(tip) = line.strip_prefix("tip: ") {
            let suggestion = [
                ("a similar argument exists: ", "did you mean "),
                ("a similar subcommand exists: ", "did you mean "),
                ("some similar subcommands exist: ", "did you mean one of "),
                ("some similar arguments exist: ", "did you mean one of "),
            ]
            .iter()
            .find_map(|(clap, ours)| tip.strip_prefix(clap).map(|rest| format!("{ours}{rest}?")));
            hints.push(suggestion.unwrap_or_else(|| tip.to_string()));
        } else if !line.starts_with("Usage: ") && !line.starts_with("For more information") {
            what.push(line.strip_prefix("error: ").unwrap_or(line).to_string());
        }
    }
    // clap's "to pass '--x' as a value, use '-- --x'" only adds noise next to a suggestion.
    if hints.len() > 1 {
        hints.retain(|h| !h.starts_with("to pass "));
    }
    let message = if what.is_empty() {
        "invalid arguments".to_string()
    } else {
        what.join(" ")
    };
    hints.push(format!("see {command} --help"));
    format!("{message} ({})", hints.join("; "))
}

/// GNU parallel options that `wrangle run` does not take, and what to do instead.
const GNU_PARALLEL_ONLY: &[(&[&str], &str)] = &[
    (
        &["--pipe", "--pipepart", "--block-size", "--cat", "--fifo"],
        "it runs a command per item, not per block of stdin: split the input into files first (split -l N) and run over them",
    ),
    (
        &["-X", "-m", "--xargs"],
        "give several items to one command with -N N ({} is all of them)",
    ),
    (
        &[
            "-S",
            "--sshlogin",
            "--slf",
            "--sshloginfile",
            "--transfer",
            "--return",
            "--cleanup",
        ],
        "for many machines, submit the items to a shared store (wrangle submit) and start wrangle worker on each",
    ),
    (
        &["--results", "--files"],
        "--output DIR keeps each item's stdout and stderr in DIR",
    ),
    (
        &["--resume", "--resume-failed", "--retry-failed"],
        "--journal FILE makes a run resumable",
    ),
    (
        &["-q", "--quote"],
        "wrangle never hands a command to a shell, so leave -q out; --shell runs a script",
    ),
    (
        &["-u", "--ungroup"],
        "--line-buffer prints output as it comes",
    ),
    (&["--eta", "--bar"], "--progress shows a bar with an ETA"),
    (
        &[
            "--header",
            "--env",
            "--tmux",
            "--semaphore",
            "--load",
            "--memfree",
            "--nice",
            "--shebang",
        ],
        "see wrangle run --help for what it offers",
    ),
];

/// The one line for a GNU parallel option `wrangle run` does not take, if that is the error.
fn gnu_parallel_only(err: &clap::Error, command: &str) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    if command != "wrangle run" || err.kind() != clap::error::ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(given)) = err.get(ContextKind::InvalidArg) else {
        return None;
    };
    let option = given.split('=').next().unwrap_or(given);
    let (_, instead) = GNU_PARALLEL_ONLY
        .iter()
        .find(|(options, _)| options.contains(&option))?;
    Some(format!(
        "GNU parallel's {option} is not supported by wrangle run: {instead}"
    ))
}

/// The command path in `args` (without the program name): the subcommand names as far as
/// they go, e.g. `wrangle tasks list` for `--json tasks list --stat dead`.
pub(crate) fn command_path(mut command: &clap::Command, args: &[String]) -> String {
    let mut path = vec!["wrangle".to_string()];
    for arg in args {
        if arg == "--" {
            break;
        }
        if let Some(sub) = command.find_subcommand(arg) {
            path.push(sub.get_name().to_string());
            command = sub;
        }
    }
    path.join(" ")
}
