//! Log rings: each owner's newest lines and the sequence number of its last line ever.
//! Only the bookkeeping lives here; the [`Store`](wrangle_core::Store) methods that use
//! it (and notify) are in the crate root with the rest of the trait.

use std::collections::{BTreeMap, VecDeque};

use wrangle_core::log::{LogAppend, LogLine, LogOwner};

/// One owner's ring.
#[derive(Debug, Default)]
struct Ring {
    /// Sequence number of the newest line ever appended (0 before the first).
    last_seq: u64,
    lines: VecDeque<LogLine>,
}

/// Every owner's ring.
#[derive(Debug, Default)]
pub(crate) struct Logs {
    rings: BTreeMap<LogOwner, Ring>,
}

impl Logs {
    /// Appends (already merged and cut by `newest_per_owner`), keeping `keep` lines each.
    pub(crate) fn append(&mut self, appends: Vec<LogAppend>, keep: usize) {
        for append in appends {
            let ring = self.rings.entry(append.owner).or_default();
            for line in append.lines {
                ring.last_seq += 1;
                ring.lines.push_back(LogLine {
                    seq: ring.last_seq,
                    at: line.at,
                    source: line.source,
                    text: line.text,
                });
            }
            let excess = ring.lines.len().saturating_sub(keep);
            ring.lines.drain(..excess);
        }
    }

    /// Up to `limit` lines of `owner` after `after`, oldest first.
    pub(crate) fn read(&self, owner: &LogOwner, after: u64, limit: usize) -> Vec<LogLine> {
        self.rings.get(owner).map_or_else(Vec::new, |ring| {
            ring.lines
                .iter()
                .filter(|line| line.seq > after)
                .take(limit)
                .cloned()
                .collect()
        })
    }

    /// Drops `owner`'s ring.
    pub(crate) fn remove(&mut self, owner: &LogOwner) {
        self.rings.remove(owner);
    }
}
