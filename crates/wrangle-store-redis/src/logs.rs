//! Log rings (see [`wrangle_core::log`]) as Redis keeps them: a list of lines per owner
//! (`B:log:OWNER`, each "seq TAB at TAB source TAB text") and the seq of its last line ever
//! (`B:log-seq:OWNER`). `lua/append_logs.lua` appends and trims; the rest is here.

use crate::rows::{from_ms, ms};
use redis::ScriptInvocation;
use wrangle_core::log::{LogAppend, LogLine, LogOwner, LogSource};
use wrangle_core::store::StoreError;

/// The key of `owner`'s lines under base name `base`.
pub(crate) fn lines_key(base: &str, owner: &LogOwner) -> String {
    format!("{base}:log:{}", owner.key())
}

/// The key of `owner`'s last seq under base name `base`.
pub(crate) fn seq_key(base: &str, owner: &LogOwner) -> String {
    format!("{base}:log-seq:{}", owner.key())
}

/// Adds `append_logs.lua`'s arguments for merged, cut appends.
pub(crate) fn append_args(
    invocation: &mut ScriptInvocation<'_>,
    appends: &[LogAppend],
    keep: usize,
) {
    invocation.arg(keep);
    for append in appends {
        let task = match &append.owner {
            LogOwner::Task(id) => id.to_string(),
            LogOwner::Worker(_) => String::new(),
        };
        invocation
            .arg(append.owner.key())
            .arg(task)
            .arg(append.lines.len());
        for line in &append.lines {
            invocation
                .arg(ms(line.at))
                .arg(line.source.as_str())
                .arg(&line.text);
        }
    }
}

/// One stored line, parsed.
pub(crate) fn parse_line(stored: &str) -> Result<LogLine, StoreError> {
    let corrupt = || StoreError::Backend(format!("bad log line in Redis: {stored:.80}"));
    let mut parts = stored.splitn(4, '\t');
    let mut next = || parts.next().ok_or_else(corrupt);
    let seq = next()?.parse().map_err(|_| corrupt())?;
    let at = next()?.parse().map_err(|_| corrupt())?;
    let source = LogSource::parse(next()?);
    let text = next()?.to_string();
    Ok(LogLine {
        seq,
        at: from_ms(at)?,
        source,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_lines_parse_with_tabs_in_the_text() {
        let line = parse_line("12\t1700000000000\tstderr\ta\tb").unwrap();
        assert_eq!(line.seq, 12);
        assert_eq!(line.source, LogSource::Stderr);
        assert_eq!(line.text, "a\tb");
        assert!(parse_line("x\t1\tlog\t").is_err());
        assert!(parse_line("1\t2").is_err());
    }
}
