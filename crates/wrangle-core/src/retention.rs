//! How long finished tasks are kept: the policy a worker's pruner applies (`[retention]` in
//! wrangle.toml, `wrangle worker --keep-*`). Pure policy; the pruning itself is the
//! worker's (`wrangle-worker`'s `pruner`) and the store's ([`Store::prune_finished`]).
//!
//! [`Store::prune_finished`]: crate::Store::prune_finished

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::store::PruneRequest;
use crate::task::TaskState;

/// Completed tasks kept this long by default: a day of results to look at.
pub const DEFAULT_KEEP_COMPLETED: Duration = Duration::from_secs(24 * 3600);
/// Dead tasks kept this long by default: a month to notice, fix and retry them.
pub const DEFAULT_KEEP_DEAD: Duration = Duration::from_secs(30 * 24 * 3600);
/// Cancelled tasks kept this long by default.
pub const DEFAULT_KEEP_CANCELLED: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often the pruner looks, by default.
pub const DEFAULT_PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// How long each final state is kept (`None`: forever), and how often to prune.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Completed tasks.
    pub completed: Option<Duration>,
    /// Dead tasks.
    pub dead: Option<Duration>,
    /// Cancelled tasks.
    pub cancelled: Option<Duration>,
    /// Time between two prunes: a task past its time is gone within one interval.
    pub interval: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            completed: Some(DEFAULT_KEEP_COMPLETED),
            dead: Some(DEFAULT_KEEP_DEAD),
            cancelled: Some(DEFAULT_KEEP_CANCELLED),
            interval: DEFAULT_PRUNE_INTERVAL,
        }
    }
}

impl Retention {
    /// One request per state with a limit, at `now`: tasks that finished longer ago than
    /// their state's time, `batch` at a time.
    pub fn requests(&self, now: DateTime<Utc>, batch: usize) -> Vec<PruneRequest> {
        [
            (TaskState::Completed, self.completed),
            (TaskState::Dead, self.dead),
            (TaskState::Cancelled, self.cancelled),
        ]
        .into_iter()
        .filter_map(|(state, keep)| {
            let keep = chrono::Duration::from_std(keep?).ok()?;
            Some(PruneRequest {
                state,
                finished_before: now.checked_sub_signed(keep)?,
                limit: batch,
            })
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kept_state_gets_its_own_cutoff() {
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap();
        let retention = Retention {
            completed: Some(Duration::from_secs(10)),
            dead: None,
            cancelled: Some(Duration::from_secs(100)),
            interval: Duration::from_secs(1),
        };
        let requests = retention.requests(now, 50);
        assert_eq!(
            requests,
            [
                PruneRequest {
                    state: TaskState::Completed,
                    finished_before: now - chrono::Duration::seconds(10),
                    limit: 50
                },
                PruneRequest {
                    state: TaskState::Cancelled,
                    finished_before: now - chrono::Duration::seconds(100),
                    limit: 50
                },
            ]
        );
        // A time longer than the calendar allows keeps forever rather than overflowing.
        let huge = Retention {
            completed: Some(Duration::from_secs(u64::MAX)),
            ..retention
        };
        assert_eq!(huge.requests(now, 1).len(), 1);
    }
}
