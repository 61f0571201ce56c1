//! How `wrangle run` shows items' output: the [`Printer`] receives every chunk a command
//! writes (or a runner's result) and prints it so that outputs never interleave:
//! - grouped (default): an item's stdout and stderr are printed whole when it ends;
//! - `--line-buffer`: whole lines as they come, lines of different items mixed;
//! - `--keep-order`: grouped, in input order;
//! - `--output DIR`: nothing printed; `DIR/SEQ.stdout` and `DIR/SEQ.stderr` per item.
//!
//! `--tag` prefixes every line with the item and a tab. Only an item's last attempt is
//! printed in grouped modes: a failed attempt that will be retried stays quiet.
//!
//! The executors see the item's sequence number as the task id (see `RunExecutor`), so
//! everything here is keyed by sequence number.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use indicatif::ProgressBar;
use tokio_util::sync::CancellationToken;
use wrangle::exec::command::placeholder_text;
use wrangle::exec::{ExecResult, OutputSink, OutputStream};
use wrangle::store::ClaimedTask;

/// Where output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OutputMode {
    Grouped,
    LineBuffer,
    KeepOrder,
    Files(PathBuf),
}

/// Prints items' output; see the module documentation.
#[derive(Debug)]
pub(crate) struct Printer {
    mode: OutputMode,
    tag: bool,
    /// The progress bar, hidden while printing so lines don't tear it.
    bar: Option<ProgressBar>,
    /// Cancelled when stdout turns out to be a closed pipe: the run stops starting items.
    stdout_closed: CancellationToken,
    state: Mutex<PrintState>,
}

#[derive(Debug, Default)]
struct PrintState {
    /// Output of running attempts, by sequence number.
    running: HashMap<u64, Captured>,
    /// `--keep-order`: finished items waiting for earlier ones, and what comes next.
    finished: BTreeMap<u64, Captured>,
    /// `--keep-order`: sequence numbers that will print nothing (done in an earlier run).
    skipped: BTreeSet<u64>,
    next_in_order: u64,
    /// `--output`: open files by (sequence number, stream).
    files: HashMap<(u64, OutputStream), Option<std::fs::File>>,
}

/// One attempt's output so far.
#[derive(Debug, Default)]
struct Captured {
    attempt: u32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Captured {
    fn stream(&mut self, stream: OutputStream) -> &mut Vec<u8> {
        match stream {
            OutputStream::Stdout => &mut self.stdout,
            OutputStream::Stderr => &mut self.stderr,
        }
    }
}

impl Printer {
    pub(crate) fn new(mode: OutputMode, tag: bool, bar: Option<ProgressBar>) -> Self {
        Printer {
            mode,
            tag,
            bar,
            stdout_closed: CancellationToken::new(),
            state: Mutex::new(PrintState {
                next_in_order: 1,
                ..PrintState::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PrintState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Cancelled once a write found stdout closed.
    pub(crate) fn stdout_closed(&self) -> &CancellationToken {
        &self.stdout_closed
    }

    /// `seq` will print nothing in this run (its item was done in an earlier one).
    pub(crate) fn skip(&self, seq: u64) {
        if self.mode == OutputMode::KeepOrder {
            let mut state = self.lock();
            state.skipped.insert(seq);
            self.print_ready(&mut state);
        }
    }

    /// The run is over: prints what `--keep-order` still holds back, in order.
    pub(crate) fn finish(&self) {
        let mut state = self.lock();
        let held = std::mem::take(&mut state.finished);
        for captured in held.into_values() {
            self.emit(&captured.stdout, &captured.stderr, None);
        }
    }

    /// Prints, in order, every finished item whose predecessors are all printed.
    fn print_ready(&self, state: &mut PrintState) {
        loop {
            let next = state.next_in_order;
            if state.skipped.remove(&next) {
                state.next_in_order += 1;
            } else if let Some(captured) = state.finished.remove(&next) {
                self.emit(&captured.stdout, &captured.stderr, None);
                state.next_in_order += 1;
            } else {
                return;
            }
        }
    }

    /// Writes whole output to our stdout and stderr, with tags if asked for.
    fn emit(&self, stdout: &[u8], stderr: &[u8], tag: Option<&str>) {
        let write = || {
            for (bytes, stream) in [
                (stdout, OutputStream::Stdout),
                (stderr, OutputStream::Stderr),
            ] {
                if bytes.is_empty() {
                    continue;
                }
                let tagged;
                let bytes = match tag {
                    Some(tag) => {
                        tagged = tag_lines(bytes, tag);
                        &tagged[..]
                    }
                    None => bytes,
                };
                let written = match stream {
                    OutputStream::Stdout => std::io::stdout().lock().write_all(bytes),
                    OutputStream::Stderr => std::io::stderr().lock().write_all(bytes),
                };
                // `wrangle run ... | head`: the output has nowhere to go, so the run stops
                // starting items (a panic or an error would be noise).
                if let Err(err) = written
                    && stream == OutputStream::Stdout
                    && err.kind() == std::io::ErrorKind::BrokenPipe
                {
                    self.stdout_closed.cancel();
                }
            }
        };
        match &self.bar {
            Some(bar) if !bar.is_hidden() => bar.suspend(write),
            _ => write(),
        }
    }

    fn tag_for(&self, task: &ClaimedTask) -> Option<String> {
        self.tag
            .then(|| format!("{}\t", placeholder_text(&task.payload)))
    }

    fn write_file(
        &self,
        state: &mut PrintState,
        dir: &std::path::Path,
        task: &ClaimedTask,
        stream: OutputStream,
        bytes: &[u8],
    ) {
        let seq = task.id as u64;
        let file = state.files.entry((seq, stream)).or_insert_with(|| {
            let suffix = match stream {
                OutputStream::Stdout => "stdout",
                OutputStream::Stderr => "stderr",
            };
            open_output_file(dir, seq, suffix)
        });
        if let Some(file) = file
            && let Err(err) = file.write_all(bytes)
        {
            tracing::warn!(error = %err, item = seq, "cannot write output file");
        }
    }
}

/// Creates `DIR/SEQ.SUFFIX` (and DIR, owner-only, if missing), readable by its owner
/// alone; `None` (after a warning) when that fails, and the output is only printed.
fn open_output_file(dir: &std::path::Path, seq: u64, suffix: &str) -> Option<std::fs::File> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let path = dir.join(format!("{seq}.{suffix}"));
    let create = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
    };
    create()
        .or_else(|_| {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
            create()
        })
        .inspect_err(|err| tracing::warn!("cannot create {}: {err}", path.display()))
        .ok()
}

/// Puts `tag` before every line of `bytes` (a last line without newline gets one).
fn tag_lines(bytes: &[u8], tag: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + tag.len() * 4);
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(tag.as_bytes());
        out.extend_from_slice(line);
    }
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

impl OutputSink for Printer {
    fn output(&self, task: &ClaimedTask, stream: OutputStream, bytes: &[u8]) {
        let seq = task.id as u64;
        let mut state = self.lock();
        if let OutputMode::Files(dir) = &self.mode {
            self.write_file(&mut state, dir, task, stream, bytes);
            return;
        }
        let captured = state.running.entry(seq).or_default();
        if captured.attempt != task.attempt {
            *captured = Captured {
                attempt: task.attempt,
                ..Captured::default()
            };
        }
        let buffer = captured.stream(stream);
        buffer.extend_from_slice(bytes);
        if self.mode == OutputMode::LineBuffer
            && let Some(end) = buffer.iter().rposition(|&b| b == b'\n')
        {
            let lines: Vec<u8> = buffer.drain(..=end).collect();
            drop(state);
            let tag = self.tag_for(task);
            match stream {
                OutputStream::Stdout => self.emit(&lines, &[], tag.as_deref()),
                OutputStream::Stderr => self.emit(&[], &lines, tag.as_deref()),
            }
        }
    }

    fn attempt_ended(&self, task: &ClaimedTask, result: &ExecResult) {
        let seq = task.id as u64;
        let last_attempt = result.is_ok() || task.attempt >= task.max_attempts;
        let mut state = self.lock();
        if let OutputMode::Files(dir) = &self.mode {
            // Every item that ends gets both files, empty or not, as GNU parallel's --results.
            for stream in [OutputStream::Stdout, OutputStream::Stderr] {
                if !state.files.contains_key(&(seq, stream)) {
                    self.write_file(&mut state, dir, task, stream, &[]);
                }
            }
            state.files.remove(&(seq, OutputStream::Stdout));
            state.files.remove(&(seq, OutputStream::Stderr));
            return;
        }
        let captured = state.running.remove(&seq).unwrap_or_default();
        if !last_attempt && self.mode != OutputMode::LineBuffer {
            return;
        }
        // What is left to print: the whole output (grouped), or the unterminated last
        // line (--line-buffer), tagged if asked for.
        let tag = self.tag_for(task);
        let finish = |bytes: Vec<u8>| match &tag {
            _ if bytes.is_empty() => bytes,
            Some(tag) => tag_lines(&bytes, tag),
            None if !bytes.ends_with(b"\n") && self.mode == OutputMode::LineBuffer => {
                [bytes, b"\n".to_vec()].concat()
            }
            None => bytes,
        };
        let stdout = finish(captured.stdout);
        let stderr = finish(captured.stderr);
        if self.mode == OutputMode::KeepOrder {
            state.finished.insert(
                seq,
                Captured {
                    attempt: task.attempt,
                    stdout,
                    stderr,
                },
            );
            self.print_ready(&mut state);
        } else {
            drop(state);
            self.emit(&stdout, &stderr, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_go_before_every_line() {
        assert_eq!(tag_lines(b"a\nb\n", "x\t"), b"x\ta\nx\tb\n");
        assert_eq!(tag_lines(b"a\nb", "x\t"), b"x\ta\nx\tb\n");
    }
}
