//! The `exec` executor: one process per task, started from an argv template.
//!
//! No shell is involved: the task reaches the command through placeholders substituted
//! inside argv elements (`{}`, `{.}`, `{/}`, `{//}`, `{/.}`, `{N}`, `{id}`, `{attempt}`,
//! `{#}`, `{%}`, `{start}`, `{end}`, `{job}`; see [`wrangle_core::placeholder`]),
//! environment variables (`WRANGLE_TASK_ID`, `WRANGLE_KIND`, `WRANGLE_ATTEMPT`, `WRANGLE_SLOT`,
//! `WRANGLE_PAYLOAD`, `WRANGLE_START`, `WRANGLE_END`, `WRANGLE_JOB`, `WRANGLE_QUEUE`) and
//! the payload JSON on stdin. `WRANGLE_PAYLOAD` is left out when the payload is too long
//! for an environment string ([`MAX_ENV_STRING_BYTES`], 128 KiB on Linux); stdin has it. Exit status 0 is success and stdout (up to
//! [`CommandSpec::max_result_bytes`]) is the result, parsed as JSON when it is JSON. On
//! failure the error carries the tail of stderr.
//!
//! Each process leads its own process group, so a timeout or a cancel stops everything it
//! started: SIGTERM to the group, then SIGKILL after [`CommandSpec::kill_grace`].

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;
use wrangle_core::job::block_bounds;
use wrangle_core::placeholder::{Field, Part, Piece, Placeholder, parse_template, path_part};
use wrangle_core::store::ClaimedTask;

use crate::output_dir::{self, OutputFile};
use crate::{ExecResult, Executor, Failure, OutputSink, OutputStream};

/// How much of stderr's end is kept for the error message.
const STDERR_TAIL_BYTES: usize = 4096;

/// The longest `NAME=value` string Linux accepts in a new process's environment or argv
/// (`MAX_ARG_STRLEN`, 32 pages). A payload longer than that is not put in
/// `WRANGLE_PAYLOAD` (the process could not start); it is on stdin as always.
pub const MAX_ENV_STRING_BYTES: usize = 32 * 4096;

/// How to run a command for a task.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    /// Program and arguments, with placeholders.
    pub argv: Vec<String>,
    /// Time limit for tasks that carry none of their own.
    pub default_timeout: Option<Duration>,
    /// Where to write each task's full stdout and stderr (`ID.stdout`, `ID.stderr`).
    pub output_dir: Option<PathBuf>,
    /// Largest result kept from stdout; the rest is read and dropped.
    pub max_result_bytes: usize,
    /// Time between SIGTERM and SIGKILL when stopping a task.
    pub kill_grace: Duration,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// The directory the command runs in (default: the worker's).
    pub cwd: Option<PathBuf>,
    /// Whether the payload JSON is written to the command's stdin (otherwise stdin is
    /// empty, as for `wrangle run`, whose items travel in argv).
    pub payload_on_stdin: bool,
    /// Receives the output as it is produced (`wrangle run` prints it from there).
    pub output: Option<Arc<dyn OutputSink>>,
}

impl CommandSpec {
    /// A spec running `argv` with the defaults (1 MiB results, 5 s kill grace).
    pub fn new(argv: Vec<String>) -> Self {
        CommandSpec {
            argv,
            default_timeout: None,
            output_dir: None,
            max_result_bytes: 1 << 20,
            kill_grace: Duration::from_secs(5),
            env: Vec::new(),
            cwd: None,
            payload_on_stdin: true,
            output: None,
        }
    }
}

/// Runs each task as a process; see the module documentation.
#[derive(Debug, Clone)]
pub struct CommandExecutor {
    spec: CommandSpec,
    /// The program found in `PATH` once, when it names no directory: searching `PATH`
    /// at every spawn costs a failed `execve` per earlier directory, which dominates
    /// tiny commands.
    program: Option<PathBuf>,
    /// Job slots in use (`{%}`): index `i` is slot `i + 1`.
    slots: Arc<std::sync::Mutex<Vec<bool>>>,
}

impl CommandExecutor {
    /// An executor for `spec`. `spec.argv` must not be empty.
    pub fn new(spec: CommandSpec) -> Self {
        assert!(!spec.argv.is_empty(), "a command needs a program");
        let program = find_in_path(&spec.argv[0]);
        CommandExecutor {
            spec,
            program,
            slots: Arc::default(),
        }
    }
}

/// A job slot taken for one attempt; free again when dropped.
struct SlotGuard {
    slots: Arc<std::sync::Mutex<Vec<bool>>>,
    index: usize,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots[self.index] = false;
    }
}

/// Where `PATH` lookup finds `program`, if it is a plain name (no `/`, no placeholder).
fn find_in_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if program.contains('/') || program.contains('{') || program.is_empty() {
        return None;
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// The key of the payload object that carries an item which is not UTF-8 text (a file
/// name read from `find -print`, say), as hex: `{"$bytes_hex": "ff7a"}`. JSON strings
/// hold only text, and `wrangle run` passes items to commands byte for byte.
pub const BYTES_KEY: &str = "$bytes_hex";

/// The payload for an item read as bytes: a JSON string when it is UTF-8, else the
/// [`BYTES_KEY`] object.
pub fn item_payload(bytes: Vec<u8>) -> Value {
    match String::from_utf8(bytes) {
        Ok(text) => Value::String(text),
        Err(err) => {
            let hex: String = err
                .as_bytes()
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            serde_json::json!({ BYTES_KEY: hex })
        }
    }
}

/// The bytes of an item made by [`item_payload`] from invalid UTF-8, if `payload` is one.
pub fn payload_bytes(payload: &Value) -> Option<Vec<u8>> {
    let object = payload.as_object().filter(|o| o.len() == 1)?;
    let hex = object.get(BYTES_KEY)?.as_str()?;
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(hex.get(at..at + 2)?, 16).ok())
        .collect()
}

/// The text `{}` stands for: a string payload as is, anything else as compact JSON; an
/// item of bytes that are not UTF-8 with U+FFFD in their place (for display; commands
/// get the bytes themselves from [`substitute`]).
pub fn item_text(payload: &Value) -> String {
    if let Some(bytes) = payload_bytes(payload) {
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    if let Some(args) = tuple_args(payload) {
        return args.iter().map(item_text).collect::<Vec<_>>().join(" ");
    }
    match payload {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The text `{}` stands for: a range block `{"start":S,"end":E}` is `S` when it holds one
/// id and `S..E` otherwise; any other payload is its [`item_text`].
pub fn placeholder_text(payload: &Value) -> String {
    match (payload.as_object().map(|o| o.len()), block_bounds(payload)) {
        (Some(2), Some((start, end))) if end == start + 1 => start.to_string(),
        (Some(2), Some((start, end))) => format!("{start}..{end}"),
        _ => item_text(payload),
    }
}

fn field_text(payload: &Value, field: &str) -> Option<String> {
    payload.get(field).map(item_text)
}

/// What the placeholders of one attempt are filled from.
#[derive(Debug, Clone, Copy)]
pub struct Fill<'a> {
    /// The task.
    pub task: &'a ClaimedTask,
    /// The job slot it runs in (`{%}`, `WRANGLE_SLOT`), from 1.
    pub slot: usize,
}

/// The command line a template makes for one attempt: [`substitute`] on every element.
pub fn expand_argv<S: AsRef<str>>(argv: &[S], fill: Fill<'_>) -> Vec<OsString> {
    argv.iter()
        .flat_map(|arg| substitute(arg.as_ref(), fill))
        .collect()
}

/// Replaces the placeholders in one argv element (the grammar is
/// [`wrangle_core::placeholder`]; an element with a misspelled one, which front ends
/// refuse up front, is passed as written). An item of bytes that are not UTF-8
/// ([`item_payload`]) is put in as those bytes.
///
/// Usually one element makes one argument. `{}` of a tuple (several input sources,
/// `--colsep`, `-N`) makes one argument per value, as GNU parallel does: `x{}y` of
/// `(a, b)` is `xa` and `by`, and an element that is only `{}` of an empty tuple makes none.
pub fn substitute(arg: &str, fill: Fill<'_>) -> Vec<OsString> {
    let payload = &fill.task.payload;
    if !arg.contains('{') {
        return vec![arg.into()];
    }
    let Ok(pieces) = parse_template(arg) else {
        return vec![arg.into()];
    };
    let mut words: Vec<Vec<u8>> = vec![Vec::with_capacity(arg.len() + 16)];
    let mut emptied = false;
    for piece in &pieces {
        let current = words.last_mut().expect("there is always a word");
        let &Piece::Slot(Placeholder { field, part }) = piece else {
            if let Piece::Text(text) = piece {
                current.extend_from_slice(text.as_bytes());
            }
            continue;
        };
        let value = match field {
            Field::Item => match tuple_args(payload) {
                Some(args) => {
                    // Each value its own argument; the text around joins the first and last.
                    for (i, value) in args.iter().enumerate() {
                        if i > 0 {
                            words.push(Vec::new());
                        }
                        let word = words.last_mut().expect("just pushed");
                        word.extend_from_slice(&path_part(&item_bytes(value), part));
                    }
                    emptied |= args.is_empty();
                    continue;
                }
                None => Some(item_bytes(payload)),
            },
            Field::Arg(n) => Some(arg_bytes(payload, n)),
            Field::Id => Some(fill.task.id.to_string().into_bytes()),
            Field::Attempt => Some(fill.task.attempt.to_string().into_bytes()),
            Field::Start => field_text(payload, "start").map(String::into_bytes),
            Field::End => field_text(payload, "end").map(String::into_bytes),
            Field::Job => Some(fill.task.job.clone().unwrap_or_default().into_bytes()),
            Field::JobSlot => Some(fill.slot.to_string().into_bytes()),
        };
        match value {
            Some(value) => current.extend_from_slice(&path_part(&value, part)),
            // `{start}` of a payload that is no range block stays as written.
            None => current.extend_from_slice(placeholder_source(field, part).as_bytes()),
        }
    }
    if emptied && pieces.len() == 1 {
        return Vec::new();
    }
    words.into_iter().map(OsString::from_vec).collect()
}

/// A command line as a shell would read it back, quoted as GNU parallel's `--dry-run`
/// and `--joblog` print it: words of letters, digits and `-_+./` as they are, others in
/// single quotes (a `'` itself as `"'"`). For showing a command, never for running one.
pub fn shell_line<S: AsRef<std::ffi::OsStr>>(argv: &[S]) -> String {
    argv.iter()
        .map(|word| shell_quote(&word.as_ref().to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_+./".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        return word.to_string();
    }
    if word.is_empty() {
        return "''".to_string();
    }
    word.split('\'')
        .map(|part| {
            if part.is_empty() {
                String::new()
            } else {
                format!("'{part}'")
            }
        })
        .collect::<Vec<_>>()
        .join("\"'\"")
}

/// What `{}` stands for, as bytes: an item's own bytes, a tuple's arguments joined by
/// spaces, else [`placeholder_text`].
fn item_bytes(payload: &Value) -> Vec<u8> {
    if let Some(args) = tuple_args(payload) {
        return args.iter().map(item_bytes).collect::<Vec<_>>().join(&b' ');
    }
    payload_bytes(payload).unwrap_or_else(|| placeholder_text(payload).into_bytes())
}

/// What `{N}` stands for: the Nth argument of a tuple or element of a JSON array; `{1}`
/// of anything else is the item; past the end, nothing.
fn arg_bytes(payload: &Value, n: usize) -> Vec<u8> {
    let elements = tuple_args(payload).or_else(|| payload.as_array());
    match elements {
        Some(elements) => elements.get(n - 1).map(item_bytes).unwrap_or_default(),
        None if n == 1 => item_bytes(payload),
        None => Vec::new(),
    }
}

/// The key of the payload object that carries a tuple: one argument from each of
/// `wrangle run`'s input sources (`::: a b ::: 1 2`), `{"$args": ["a", "1"]}`; each
/// argument a string or a [`BYTES_KEY`] object.
pub const ARGS_KEY: &str = "$args";

/// The payload of a tuple of arguments read as bytes.
pub fn tuple_payload(args: Vec<Vec<u8>>) -> Value {
    let args: Vec<Value> = args.into_iter().map(item_payload).collect();
    serde_json::json!({ ARGS_KEY: args })
}

/// The arguments of a [`tuple_payload`], if `payload` is one.
fn tuple_args(payload: &Value) -> Option<&Vec<Value>> {
    let object = payload.as_object().filter(|o| o.len() == 1)?;
    object.get(ARGS_KEY)?.as_array()
}

/// A placeholder as it was written.
fn placeholder_source(field: Field, part: Part) -> String {
    let name = match field {
        Field::JobSlot => "%".into(),
        Field::Item => String::new(),
        Field::Arg(n) => n.to_string(),
        Field::Id => "id".into(),
        Field::Attempt => "attempt".into(),
        Field::Start => "start".into(),
        Field::End => "end".into(),
        Field::Job => "job".into(),
    };
    let modifier = match part {
        Part::Whole => "",
        Part::NoExtension => ".",
        Part::Basename => "/",
        Part::Dirname => "//",
        Part::BasenameNoExtension => "/.",
    };
    format!("{{{name}{modifier}}}")
}

/// Formats a duration for messages: `2s`, `1500ms`.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Which part of a stream to keep.
#[derive(Clone, Copy)]
enum Keep {
    /// The first N bytes (a result).
    Head(usize),
    /// The last N bytes (an error's stderr tail).
    Tail(usize),
}

/// Where a stream's bytes go besides the kept part: a file and/or a sink.
struct Tee<'a> {
    file: Option<OutputFile>,
    sink: Option<(&'a dyn OutputSink, &'a ClaimedTask, OutputStream)>,
}

/// Reads a stream to its end (copying everything to `tee`) and keeps the part `keep`
/// names. Returns the kept bytes and whether anything was dropped.
async fn read_stream(
    mut stream: impl AsyncRead + Unpin,
    keep: Keep,
    mut tee: Tee<'_>,
) -> (Vec<u8>, bool) {
    let mut kept = VecDeque::new();
    let mut dropped = false;
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(file) = tee.file.as_mut() {
                    file.write(&chunk[..n]).await;
                }
                if let Some((sink, task, stream)) = tee.sink {
                    sink.output(task, stream, &chunk[..n]);
                }
                match keep {
                    Keep::Head(limit) => {
                        let room = limit.saturating_sub(kept.len());
                        kept.extend(&chunk[..n.min(room)]);
                        dropped |= n > room;
                    }
                    Keep::Tail(limit) => {
                        kept.extend(&chunk[..n]);
                        let excess = kept.len().saturating_sub(limit);
                        kept.drain(..excess);
                        dropped |= excess > 0;
                    }
                }
            }
        }
    }
    // tokio's File finishes writes in the background; flush so the file is whole
    // when the task's outcome is reported.
    if let Some(file) = tee.file.as_mut() {
        file.flush().await;
    }
    (kept.into(), dropped)
}

/// Turns a successful command's stdout into the task result.
fn stdout_result(bytes: Vec<u8>, truncated: bool) -> Value {
    let text = String::from_utf8_lossy(&bytes);
    let trimmed = text.trim_end_matches(['\n', '\r']);
    if trimmed.is_empty() {
        return Value::Null;
    }
    if !truncated && let Ok(json) = serde_json::from_str::<Value>(trimmed) {
        return json;
    }
    Value::String(trimmed.to_string())
}

fn stderr_suffix(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// Signals the whole process group led by `pid`.
pub(crate) fn signal_group(pid: Option<u32>, signal: Signal) {
    if let Some(pid) = pid {
        let _ = killpg(Pid::from_raw(pid as i32), signal);
    }
}

impl CommandExecutor {
    /// Takes the lowest free job slot until the guard drops.
    fn take_slot(&self) -> SlotGuard {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let index = match slots.iter().position(|used| !used) {
            Some(index) => index,
            None => {
                slots.push(false);
                slots.len() - 1
            }
        };
        slots[index] = true;
        SlotGuard {
            slots: self.slots.clone(),
            index,
        }
    }

    fn command_for(&self, task: &ClaimedTask, slot: usize) -> Result<Command, Failure> {
        let argv = expand_argv(&self.spec.argv, Fill { task, slot });
        if argv.is_empty() {
            return Err(Failure(
                "the command line is empty once its placeholders are filled in".into(),
            ));
        }
        let mut command = match &self.program {
            Some(program) => Command::new(program),
            None => Command::new(&argv[0]),
        };
        command
            .arg0(&argv[0])
            .args(&argv[1..])
            .process_group(0)
            .stdin(if self.spec.payload_on_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .env("WRANGLE_TASK_ID", task.id.to_string())
            .env("WRANGLE_KIND", &task.kind)
            .env("WRANGLE_QUEUE", &task.queue)
            .env("WRANGLE_ATTEMPT", task.attempt.to_string())
            .env("WRANGLE_SLOT", slot.to_string())
            .env("WRANGLE_JOB", task.job.clone().unwrap_or_default());
        let payload = task.payload.to_string();
        // `WRANGLE_PAYLOAD=` and the terminating NUL count towards the limit too.
        if "WRANGLE_PAYLOAD=".len() + payload.len() < MAX_ENV_STRING_BYTES {
            command.env("WRANGLE_PAYLOAD", payload);
        }
        for (name, field) in [("WRANGLE_START", "start"), ("WRANGLE_END", "end")] {
            if let Some(value) = field_text(&task.payload, field) {
                command.env(name, value);
            }
        }
        for (name, value) in &self.spec.env {
            command.env(name, value);
        }
        if let Some(dir) = &self.spec.cwd {
            command.current_dir(dir);
        }
        Ok(command)
    }
}

#[async_trait]
impl Executor for CommandExecutor {
    async fn execute(&self, task: &ClaimedTask, cancel: CancellationToken) -> ExecResult {
        let result = self.run_process(task, cancel).await;
        if let Some(sink) = &self.spec.output {
            sink.attempt_ended(task, &result);
        }
        if let Some(base) = &self.spec.output_dir {
            output_dir::log_block_outcome(base, task, &result).await;
        }
        result
    }
}

impl CommandExecutor {
    async fn run_process(&self, task: &ClaimedTask, cancel: CancellationToken) -> ExecResult {
        let program = self.spec.argv[0].clone();
        let slot = self.take_slot();
        let mut child = self
            .command_for(task, slot.index + 1)?
            .spawn()
            .map_err(|err| Failure(format!("cannot run '{program}': {err}")))?;
        // The command may never read stdin; a closed pipe is not an error.
        let feed = child.stdin.take().map(|mut stdin| {
            let payload = format!("{}\n", task.payload);
            tokio::spawn(async move {
                let _ = stdin.write_all(payload.as_bytes()).await;
            })
        });
        let (stdout_file, stderr_file) = match &self.spec.output_dir {
            Some(base) => match output_dir::attempt_files(base, task, ["stdout", "stderr"]).await {
                Some([stdout, stderr]) => (Some(stdout), Some(stderr)),
                None => (None, None),
            },
            None => (None, None),
        };
        let sink = self.spec.output.as_deref();
        let stdout = read_stream(
            child.stdout.take().expect("stdout is piped"),
            Keep::Head(self.spec.max_result_bytes),
            Tee {
                file: stdout_file,
                sink: sink.map(|sink| (sink, task, OutputStream::Stdout)),
            },
        );
        let stderr = read_stream(
            child.stderr.take().expect("stderr is piped"),
            Keep::Tail(STDERR_TAIL_BYTES),
            Tee {
                file: stderr_file,
                sink: sink.map(|sink| (sink, task, OutputStream::Stderr)),
            },
        );
        let timeout = task.timeout.or(self.spec.default_timeout);
        let deadline = async {
            match timeout {
                Some(limit) => tokio::time::sleep(limit).await,
                None => std::future::pending().await,
            }
        };
        let pid = child.id();
        let mut run = Box::pin(async { tokio::join!(child.wait(), stdout, stderr) });
        let stopped = tokio::select! {
            (status, (out, truncated), (err, _)) = &mut run => {
                if let Some(feed) = &feed {
                    feed.abort();
                }
                let status = status.map_err(|e| Failure(format!("waiting for '{program}': {e}")))?;
                return if status.success() {
                    Ok(stdout_result(out, truncated))
                } else {
                    Err(Failure(format!("{}{}", describe_status(status), stderr_suffix(&err))))
                };
            }
            _ = deadline => format!("timed out after {}", format_duration(timeout.unwrap_or_default())),
            _ = cancel.cancelled() => "cancelled".to_string(),
        };
        if let Some(feed) = &feed {
            feed.abort();
        }
        drop(run);
        signal_group(pid, Signal::SIGTERM);
        if tokio::time::timeout(self.spec.kill_grace, child.wait())
            .await
            .is_err()
        {
            signal_group(pid, Signal::SIGKILL);
            let _ = child.wait().await;
        }
        // Stragglers that ignored SIGTERM after the leader exited.
        signal_group(pid, Signal::SIGKILL);
        Err(Failure(stopped))
    }
}

/// How a process ended, for messages: `exit code 3`, `killed by signal 9`.
pub(crate) fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => "ended abnormally".to_string(),
    }
}

/// The exit value and signal of a failed attempt, read back from its message as this
/// module wrote it ([`describe_status`]), the way GNU parallel's joblog records them:
/// `(code, 0)` for an exit code, `(-1, signal)` for a killed process (a timeout or a
/// cancel is SIGTERM, which the executor sends), `(-1, 0)` when it never ran.
pub fn exit_of(failure: &Failure) -> (i32, i32) {
    let message = failure.0.as_str();
    let number = |prefix: &str| {
        let rest = message.strip_prefix(prefix)?;
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '-');
        rest[..digits.unwrap_or(rest.len())].parse::<i32>().ok()
    };
    if let Some(code) = number("exit code ") {
        (code, 0)
    } else if let Some(signal) = number("killed by signal ") {
        (-1, signal)
    } else if message.starts_with("timed out") || message == "cancelled" {
        (-1, Signal::SIGTERM as i32)
    } else {
        (-1, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use serde_json::json;

    fn task(payload: Value) -> ClaimedTask {
        ClaimedTask {
            id: 42,
            queue: "default".into(),
            kind: "k".into(),
            payload,
            attempt: 2,
            max_attempts: 3,
            timeout: None,
            job: Some("nightly".into()),
            lease_until: Utc::now(),
        }
    }

    fn execute(spec: CommandSpec, task: &ClaimedTask) -> ExecResult {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(CommandExecutor::new(spec).execute(task, CancellationToken::new()))
    }

    fn run(argv: &[&str], task: &ClaimedTask) -> ExecResult {
        execute(
            CommandSpec::new(argv.iter().map(|s| s.to_string()).collect()),
            task,
        )
    }

    /// One argv element filled in, as one argument (the elements tested make one).
    fn substitute(arg: &str, task: &ClaimedTask) -> OsString {
        let mut words = super::substitute(arg, Fill { task, slot: 3 });
        assert_eq!(words.len(), 1, "{arg}: {words:?}");
        words.remove(0)
    }

    #[test]
    fn placeholders() {
        use std::os::unix::ffi::OsStrExt;
        let t = task(json!({"start": 10, "end": 20}));
        assert_eq!(substitute("{start}-{end}", &t), "10-20");
        assert_eq!(
            substitute("id={id} #{#} a{attempt} {job}", &t),
            "id=42 #42 a2 nightly"
        );
        assert_eq!(substitute("{}", &t), "10..20");
        assert_eq!(substitute("{}", &task(json!({"start": 7, "end": 8}))), "7");
        assert_eq!(
            substitute("{}", &task(json!({"start": 1, "end": 2, "x": 0}))),
            r#"{"end":2,"start":1,"x":0}"#
        );
        assert_eq!(substitute("{unknown} {", &t), "{unknown} {");
        assert_eq!(substitute("${HOME} {print $1}", &t), "${HOME} {print $1}");
        let file = task(json!("dir/a.tar.gz"));
        assert_eq!(
            substitute("{.}|{/}|{//}|{/.}|{1/}", &file),
            "dir/a.tar|a.tar.gz|dir|a.tar|a.tar.gz"
        );
        let tuple = task(tuple_payload(vec![b"x/a.txt".to_vec(), b"\xff".to_vec()]));
        assert_eq!(substitute("{1/.}-{2}-{3}", &tuple).as_bytes(), b"a-\xff-");
        assert_eq!(substitute("slot{%}", &tuple), "slot3");
        assert_eq!(item_text(&tuple.payload), "x/a.txt \u{fffd}");
        assert_eq!(substitute("{2}", &task(json!(["a", "b"]))), "b");
        assert_eq!(substitute("f_{}.txt", &task(json!("x y"))), "f_x y.txt");
        assert_eq!(substitute("{start}", &task(json!(5))), "{start}");
    }

    #[test]
    fn a_tuple_fills_one_argument_per_value_as_gnu_parallel_does() {
        let fill = |arg: &str, args: &[&str]| {
            let t = task(tuple_payload(
                args.iter().map(|a| a.as_bytes().to_vec()).collect(),
            ));
            super::substitute(arg, Fill { task: &t, slot: 1 })
        };
        assert_eq!(fill("{}", &["a", "b c"]), ["a", "b c"]);
        assert_eq!(fill("x{}y", &["a", "b"]), ["xa", "by"]);
        assert_eq!(fill("{/.}", &["d/a.txt", "e/b.gz"]), ["a", "b"]);
        assert_eq!(fill("{}", &[]), Vec::<OsString>::new());
        assert_eq!(fill("x{}", &[]), ["x"]);
        let t = task(tuple_payload(vec![b"1".to_vec(), b"2".to_vec()]));
        assert_eq!(
            expand_argv(&["echo", "{}", "{2}"], Fill { task: &t, slot: 1 }),
            ["echo", "1", "2", "2"]
        );
    }

    #[test]
    fn command_lines_are_shown_quoted_as_gnu_parallel_shows_them() {
        assert_eq!(
            shell_line(&["echo", "a b", "c'd", "a/b.c", "", "'", "a+b", "x$y", "é"]),
            r#"echo 'a b' 'c'"'"'d' a/b.c '' "'" a+b 'x$y' 'é'"#
        );
        assert_eq!(shell_line(&["a'b'"]), r#"'a'"'"'b'"'""#);
    }

    #[test]
    fn exit_values_are_read_back_from_failures() {
        let failed = |argv: &[&str]| run(argv, &task(json!(1))).unwrap_err();
        assert_eq!(
            exit_of(&failed(&["sh", "-c", "echo oops >&2; exit 3"])),
            (3, 0)
        );
        assert_eq!(exit_of(&failed(&["sh", "-c", "kill -9 $$"])), (-1, 9));
        assert_eq!(exit_of(&failed(&["/nonexistent/program"])), (-1, 0));
        assert_eq!(exit_of(&Failure("timed out after 2s".into())), (-1, 15));
    }

    #[test]
    fn concurrent_attempts_get_the_lowest_free_job_slots() {
        let executor = CommandExecutor::new(CommandSpec::new(vec!["true".into()]));
        let first = executor.take_slot();
        let second = executor.take_slot();
        assert_eq!((first.index, second.index), (0, 1));
        drop(first);
        assert_eq!(executor.take_slot().index, 0);
        drop(second);
        let again = [executor.take_slot(), executor.take_slot()];
        assert_eq!(again.map(|s| s.index), [0, 1]);
    }

    #[test]
    fn items_that_are_not_utf8_reach_the_command_byte_for_byte() {
        use std::os::unix::ffi::OsStrExt;
        let bytes = b"caf\xe9 \xff.txt".to_vec();
        let payload = item_payload(bytes.clone());
        assert_eq!(payload, json!({BYTES_KEY: "636166e920ff2e747874"}));
        assert_eq!(payload_bytes(&payload), Some(bytes.clone()));
        assert_eq!(item_payload(b"plain".to_vec()), json!("plain"));
        let t = task(payload);
        assert_eq!(substitute("<{}>", &t).as_bytes(), b"<caf\xe9 \xff.txt>");
        assert_eq!(item_text(&t.payload), "caf\u{fffd} \u{fffd}.txt");
        // The command gets the bytes: od shows them.
        let out = run(
            &[
                "sh",
                "-c",
                "printf %s \"$1\" | od -An -tx1 | tr -d ' \\n'",
                "sh",
                "{}",
            ],
            &t,
        );
        assert_eq!(out, Ok(json!("636166e920ff2e747874")));
        // Objects that only look similar are ordinary payloads.
        for other in [
            json!({BYTES_KEY: "f"}),
            json!({BYTES_KEY: "zz"}),
            json!({BYTES_KEY: "ff", "x": 1}),
        ] {
            assert_eq!(payload_bytes(&other), None, "{other}");
        }
    }

    #[test]
    fn plain_program_names_are_looked_up_in_path_once() {
        let sh = find_in_path("sh").expect("sh is in PATH");
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        for unresolved in ["./sh", "/bin/sh", "{}", "", "no-such-program-anywhere"] {
            assert_eq!(find_in_path(unresolved), None, "{unresolved}");
        }
        // argv[0] is still the name the user gave.
        let out = run(&["sh", "-c", "echo $0"], &task(json!(null)));
        assert_eq!(out, Ok(json!("sh")));
    }

    #[test]
    fn stdout_is_the_result_and_json_is_parsed() {
        assert_eq!(
            run(&["echo", "hello"], &task(json!(null))),
            Ok(json!("hello"))
        );
        assert_eq!(
            run(&["echo", r#"{"a":1}"#], &task(json!(null))),
            Ok(json!({"a": 1}))
        );
        assert_eq!(run(&["true"], &task(json!(null))), Ok(Value::Null));
    }

    #[test]
    fn payload_reaches_stdin_and_env_without_a_shell() {
        let t = task(json!({"x": "$(rm -rf /)"}));
        assert_eq!(run(&["cat"], &t), Ok(json!({"x": "$(rm -rf /)"})));
        let out = run(
            &[
                "sh",
                "-c",
                "echo $WRANGLE_TASK_ID $WRANGLE_ATTEMPT $WRANGLE_JOB",
            ],
            &t,
        );
        assert_eq!(out, Ok(json!("42 2 nightly")));
        let ranged = task(json!({"start": 3, "end": 9}));
        assert_eq!(
            run(&["sh", "-c", "echo $WRANGLE_START..$WRANGLE_END"], &ranged),
            Ok(json!("3..9"))
        );
    }

    #[test]
    fn a_payload_too_long_for_the_environment_still_runs_on_stdin() {
        let report = "wc -c | tr -d ' '; echo ${WRANGLE_PAYLOAD:+in-env}";
        // 1 MiB of text: far over Linux's 128 KiB limit for one environment string.
        let big = task(json!("x".repeat(1 << 20)));
        // stdin: the JSON string (two quotes) and a newline.
        assert_eq!(run(&["sh", "-c", report], &big), Ok(json!((1 << 20) + 3)));
        let small = task(json!("x".repeat(1000)));
        assert_eq!(
            run(&["sh", "-c", report], &small),
            Ok(json!("1003\nin-env"))
        );
        // Just under and just over the limit.
        for (len, in_env) in [
            (MAX_ENV_STRING_BYTES - 20, true),
            (MAX_ENV_STRING_BYTES, false),
        ] {
            let t = task(json!("y".repeat(len)));
            let out = run(&["sh", "-c", "echo ${WRANGLE_PAYLOAD:+in-env}"], &t);
            let expected = if in_env { json!("in-env") } else { Value::Null };
            assert_eq!(out, Ok(expected), "payload of {len} bytes");
        }
    }

    #[test]
    fn failure_carries_exit_code_and_stderr_tail() {
        let err = run(
            &["sh", "-c", "echo out; echo boom >&2; exit 3"],
            &task(json!(null)),
        )
        .unwrap_err();
        assert_eq!(err.0, "exit code 3: boom");
        let err = run(&["/nonexistent/program"], &task(json!(null))).unwrap_err();
        assert!(
            err.0.starts_with("cannot run '/nonexistent/program'"),
            "{err}"
        );
    }

    #[test]
    fn timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survivor");
        let mut t = task(json!(null));
        t.timeout = Some(Duration::from_millis(300));
        let script = format!("(sleep 1; touch {}) & sleep 30", marker.display());
        let started = std::time::Instant::now();
        let err = run(&["sh", "-c", &script], &t).unwrap_err();
        assert_eq!(err.0, "timed out after 300ms");
        assert!(started.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(1500));
        assert!(
            !marker.exists(),
            "the background child was killed with its group"
        );
    }

    #[test]
    fn large_output_is_bounded() {
        let mut spec = CommandSpec::new(vec![
            "sh".into(),
            "-c".into(),
            "yes | head -c 100000".into(),
        ]);
        spec.max_result_bytes = 1000;
        let out = execute(spec, &task(json!(null))).unwrap();
        assert!(out.as_str().unwrap().len() <= 1000);
    }

    #[test]
    fn output_dir_gets_each_tasks_full_streams() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = CommandSpec::new(vec![
            "sh".into(),
            "-c".into(),
            "echo out; echo err >&2".into(),
        ]);
        spec.output_dir = Some(dir.path().join("logs"));
        spec.max_result_bytes = 2;
        let mut plain = task(json!(null));
        plain.job = None;
        let result = execute(spec.clone(), &plain).unwrap();
        assert_eq!(result, json!("ou"), "the result is bounded");
        let read =
            |name: &str| std::fs::read_to_string(dir.path().join("logs").join(name)).unwrap();
        assert_eq!(read("42.stdout"), "out\n", "the file is not");
        assert_eq!(read("42.stderr"), "err\n");

        // A job's block goes to DIR/JOB/START-END.*, and its outcome to DIR/JOB/blocks.log.
        execute(spec, &task(json!({"start": 10, "end": 20}))).unwrap();
        assert_eq!(read("nightly/10-20.stdout"), "out\n");
        let log = read("nightly/blocks.log");
        assert!(log.ends_with(" 10-20 task=42 attempt=2 ok\n"), "{log}");
    }

    #[test]
    fn silent_streams_leave_no_output_files_and_a_retry_replaces_the_last_attempts() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let run = |script: &str, attempt: u32| {
            let mut spec = CommandSpec::new(vec!["sh".into(), "-c".into(), script.into()]);
            spec.output_dir = Some(logs.clone());
            let mut t = task(json!(null));
            t.job = None;
            t.attempt = attempt;
            let _ = execute(spec, &t);
        };
        run("echo only-stdout", 1);
        assert!(logs.join("42.stdout").exists());
        assert!(!logs.join("42.stderr").exists(), "no empty .stderr");
        run("echo failed >&2; exit 1", 1);
        assert!(logs.join("42.stderr").exists());
        // The retry writes nothing: the earlier attempt's files are gone, none is empty.
        run("true", 2);
        let left: Vec<_> = std::fs::read_dir(&logs).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
