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
    /// At most this many completed tasks (across all queues; the newest are kept), on top
    /// of `completed`'s age.
    pub completed_max: Option<u64>,
    /// Time between two prunes: a task past its time is gone within one interval.
    pub interval: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            completed: Some(DEFAULT_KEEP_COMPLETED),
            dead: Some(DEFAULT_KEEP_DEAD),
            cancelled: Some(DEFAULT_KEEP_CANCELLED),
            completed_max: None,
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

impl Retention {
    /// The request that brings `completed` (how many completed tasks the store holds now)
    /// down towards `completed_max`, oldest first, at most `batch` at a time; `None` when
    /// there is no limit or nothing over it.
    pub fn over_max_request(
        &self,
        completed: u64,
        now: DateTime<Utc>,
        batch: usize,
    ) -> Option<PruneRequest> {
        let excess = completed
            .checked_sub(self.completed_max?)
            .filter(|e| *e > 0)?;
        Some(PruneRequest {
            state: TaskState::Completed,
            // Everything finished until now is a candidate; the oldest go first.
            finished_before: now + chrono::Duration::milliseconds(1),
            limit: usize::try_from(excess).map_or(batch, |e| e.min(batch)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_limit_prunes_only_the_excess_a_batch_at_a_time() {
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap();
        let none = Retention::default();
        assert_eq!(none.over_max_request(10, now, 100), None);
        let max = Retention {
            completed_max: Some(5),
            ..Retention::default()
        };
        assert_eq!(max.over_max_request(5, now, 100), None);
        assert_eq!(max.over_max_request(4, now, 100), None);
        let request = max.over_max_request(8, now, 100).unwrap();
        assert_eq!((request.state, request.limit), (TaskState::Completed, 3));
        assert!(request.finished_before > now);
        assert_eq!(max.over_max_request(5_000, now, 100).unwrap().limit, 100);
    }

    #[test]
    fn each_kept_state_gets_its_own_cutoff() {
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap();
        let retention = Retention {
            completed: Some(Duration::from_secs(10)),
            dead: None,
            cancelled: Some(Duration::from_secs(100)),
            completed_max: None,
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
