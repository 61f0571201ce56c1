//! Bounded log rings kept in the store: a worker's own log lines and a running task's
//! output, so either can be followed from any machine (`wrangle workers log NAME`,
//! `wrangle tasks log ID`).
//!
//! Each owner (a worker or a task) has one ring of lines numbered by a sequence that only
//! grows; an append keeps the newest `keep` lines of the owner and drops the rest, so a
//! ring never grows past its bound however long the owner writes. A reader follows a ring
//! by asking for the lines after the last sequence number it saw and waiting on
//! [`Topic::Logs`](crate::store::Topic::Logs) between reads.
//!
//! A task's ring goes when the task is pruned; a worker's when its record is removed
//! (it deregisters, or is pruned as lost). Full logs belong in files (`--output`).
//!
//! This module owns the types and the rules every store shares; it does no I/O.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::task::TaskId;

/// Longest line kept, in bytes; a longer one is cut at a character boundary and ends in
/// `…`, so one runaway line cannot fill a ring's bound many times over.
pub const MAX_LINE_BYTES: usize = 8 * 1024;

/// Whose log a line belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogOwner {
    /// A worker's own log (what it prints to stderr).
    Worker(String),
    /// A task's output, across its attempts.
    Task(TaskId),
}

impl LogOwner {
    /// The owner as the stores key it: `worker:NAME` or `task:ID`.
    pub fn key(&self) -> String {
        match self {
            LogOwner::Worker(name) => format!("worker:{name}"),
            LogOwner::Task(id) => format!("task:{id}"),
        }
    }
}

/// Where a line came from.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSource {
    /// A task's standard output (or a runner's `output` messages).
    Stdout,
    /// A task's standard error.
    Stderr,
    /// A worker's own log.
    Log,
}

impl LogSource {
    /// The name stores keep.
    pub fn as_str(self) -> &'static str {
        match self {
            LogSource::Stdout => "stdout",
            LogSource::Stderr => "stderr",
            LogSource::Log => "log",
        }
    }

    /// The source named `name`; unknown names (a newer writer) read as `log`.
    pub fn parse(name: &str) -> LogSource {
        match name {
            "stdout" => LogSource::Stdout,
            "stderr" => LogSource::Stderr,
            _ => LogSource::Log,
        }
    }
}

/// A line to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLogLine {
    /// When it was written.
    pub at: DateTime<Utc>,
    /// Where it came from.
    pub source: LogSource,
    /// The line, without its ending.
    pub text: String,
}

impl NewLogLine {
    /// A line written at `at`, cut to [`MAX_LINE_BYTES`].
    pub fn new(at: DateTime<Utc>, source: LogSource, text: &str) -> Self {
        let text = if text.len() > MAX_LINE_BYTES {
            let mut end = MAX_LINE_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}…", &text[..end])
        } else {
            text.to_string()
        };
        NewLogLine { at, source, text }
    }
}

/// Lines for one owner's ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogAppend {
    /// Whose ring.
    pub owner: LogOwner,
    /// The lines, oldest first.
    pub lines: Vec<NewLogLine>,
}

/// A kept line.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Its place in its owner's ring: 1 for the first line ever kept, then one more for
    /// each line an append keeps (lines an append drops at once get none); never reused,
    /// so "after N" resumes a read exactly.
    pub seq: u64,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// Where it came from.
    pub source: LogSource,
    /// The line, without its ending.
    pub text: String,
}

/// A stored row as the SQL stores read it: `(seq, at in epoch ms, source, text)`.
pub type LogRow = (i64, i64, String, String);

impl LogLine {
    /// The line a SQL store's row holds.
    pub fn from_row((seq, at, source, text): LogRow) -> LogLine {
        LogLine {
            seq: u64::try_from(seq).unwrap_or(0),
            at: crate::stored::from_ms(at),
            source: LogSource::parse(&source),
            text,
        }
    }
}

/// What every store does with an append before writing it: one entry per owner (in order
/// of first appearance, lines in order) holding only that owner's newest `keep` lines, so a
/// store that trims after inserting never has to trim what it just wrote. Empty entries are
/// dropped.
pub fn newest_per_owner(appends: &[LogAppend], keep: usize) -> Vec<LogAppend> {
    let mut merged: Vec<LogAppend> = Vec::new();
    let mut index: HashMap<&LogOwner, usize> = HashMap::new();
    for append in appends {
        let slot = *index.entry(&append.owner).or_insert_with(|| {
            merged.push(LogAppend {
                owner: append.owner.clone(),
                lines: Vec::new(),
            });
            merged.len() - 1
        });
        merged[slot].lines.extend(append.lines.iter().cloned());
    }
    for append in &mut merged {
        let excess = append.lines.len().saturating_sub(keep);
        append.lines.drain(..excess);
    }
    merged.retain(|append| !append.lines.is_empty());
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> NewLogLine {
        NewLogLine::new(DateTime::UNIX_EPOCH, LogSource::Stdout, text)
    }

    fn append(owner: LogOwner, texts: &[&str]) -> LogAppend {
        LogAppend {
            owner,
            lines: texts.iter().map(|t| line(t)).collect(),
        }
    }

    fn texts(append: &LogAppend) -> Vec<&str> {
        append.lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn keys_name_the_owner() {
        assert_eq!(LogOwner::Worker("w-1".into()).key(), "worker:w-1");
        assert_eq!(LogOwner::Task(42).key(), "task:42");
    }

    #[test]
    fn sources_round_trip_and_unknown_reads_as_log() {
        for source in [LogSource::Stdout, LogSource::Stderr, LogSource::Log] {
            assert_eq!(LogSource::parse(source.as_str()), source);
        }
        assert_eq!(LogSource::parse("trace"), LogSource::Log);
    }

    #[test]
    fn long_lines_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_LINE_BYTES);
        let cut = line(&long).text;
        assert!(cut.len() <= MAX_LINE_BYTES + '…'.len_utf8());
        assert!(cut.ends_with('…'));
        assert_eq!(line("short").text, "short");
    }

    #[test]
    fn appends_merge_per_owner_and_keep_the_newest() {
        let appends = [
            append(LogOwner::Task(1), &["a", "b"]),
            append(LogOwner::Worker("w".into()), &["x"]),
            append(LogOwner::Task(1), &["c", "d"]),
            append(LogOwner::Task(2), &[]),
        ];
        let merged = newest_per_owner(&appends, 3);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].owner, LogOwner::Task(1));
        assert_eq!(texts(&merged[0]), ["b", "c", "d"]);
        assert_eq!(texts(&merged[1]), ["x"]);
        assert!(newest_per_owner(&appends, 0).is_empty());
    }
}
