//! Operator moves of many tasks at once: retrying the dead set, pruning finished tasks,
//! and (for [`crate::jobs`]) cancelling or retrying a job's tasks. Each walks the tasks a page of ids per store
//! call, so a million dead tasks never make one giant statement that holds locks while
//! workers claim, and reports how far it got after every page (the CLI draws its
//! progress bar from that).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use wrangle_core::{PruneRequest, Store, StoreError, TaskFilter, TaskState};

/// Tasks read and moved per store call.
const PAGE: usize = 1000;
/// Times a page of moves is sent again after a transient failure.
const TRANSIENT_TRIES: u64 = 5;

/// Told how many tasks have moved so far, after every page.
pub type Progress<'a> = &'a (dyn Fn(u64) + Send + Sync);

/// What an operator does to tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Move {
    Cancel,
    Retry,
}

/// Runs every dead task again (on `queue`, or on every queue), a page at a time;
/// returns how many. `progress` hears the running count.
pub async fn retry_dead(
    store: &Arc<dyn Store>,
    queue: Option<&str>,
    progress: Progress<'_>,
) -> Result<u64, StoreError> {
    let filter = TaskFilter {
        state: Some(TaskState::Dead),
        queue: queue.map(str::to_string),
        ..TaskFilter::default()
    };
    move_tasks(store, filter, Move::Retry, progress).await
}

/// Deletes every task in `states` (final ones) that finished before `finished_before`, a
/// page per store call (`wrangle tasks prune`); returns how many.
/// `progress` hears the running count.
pub async fn prune(
    store: &Arc<dyn Store>,
    states: &[TaskState],
    finished_before: DateTime<Utc>,
    progress: Progress<'_>,
) -> Result<u64, StoreError> {
    let mut pruned = 0;
    for &state in states {
        let request = PruneRequest {
            state,
            finished_before,
            limit: PAGE,
        };
        request.check()?;
        loop {
            let deleted = store.prune_finished(request).await?;
            pruned += deleted;
            progress(pruned);
            if (deleted as usize) < PAGE {
                break;
            }
        }
    }
    Ok(pruned)
}

/// How many dead tasks there are (on `queue`, or on every queue), from the stores'
/// per-queue counts: the total for a progress bar.
pub async fn dead_count(store: &Arc<dyn Store>, queue: Option<&str>) -> Result<u64, StoreError> {
    let stats = store.queue_stats(Utc::now()).await?;
    Ok(stats
        .iter()
        .filter(|s| queue.is_none_or(|q| s.queue == q))
        .map(|s| s.counts.get(&TaskState::Dead).copied().unwrap_or(0))
        .sum())
}

/// Cancels or retries every task that `filter` (with its state set) selects, newest
/// first, a page of ids per store call (tasks that moved meanwhile are skipped by the
/// store); returns how many moved. Listing by state with `before_id` is unaffected by
/// the moves: the moved tasks leave the state, and the next page starts below the last
/// id seen.
pub(crate) async fn move_tasks(
    store: &Arc<dyn Store>,
    filter: TaskFilter,
    operation: Move,
    progress: Progress<'_>,
) -> Result<u64, StoreError> {
    let mut moved = 0;
    let mut before_id = None;
    loop {
        let page = store
            .list_tasks(TaskFilter {
                before_id,
                limit: PAGE,
                ..filter.clone()
            })
            .await?;
        let ids: Vec<_> = page.iter().map(|task| task.id).collect();
        let Some(&last) = ids.last() else {
            return Ok(moved);
        };
        let mut tries = 0;
        moved += loop {
            let outcome = match operation {
                Move::Cancel => store.cancel_tasks(&ids, Utc::now()).await,
                Move::Retry => store.retry_tasks(&ids, Utc::now()).await,
            };
            match outcome {
                Ok(n) => break n,
                // A deadlock with a worker's completion batch over the same rows, or a
                // brief outage: moving a page is idempotent, so it is simply sent again.
                Err(err) if err.is_transient() && tries < TRANSIENT_TRIES => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100 * tries)).await;
                }
                Err(err) => return Err(err),
            }
        };
        progress(moved);
        if ids.len() < PAGE {
            return Ok(moved);
        }
        before_id = Some(last);
    }
}
