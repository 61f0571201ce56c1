//! Retention, one maintenance duty: deletes finished tasks past the time their state is
//! kept (see [`Retention`]), so a store that runs for months stays bounded.
//!
//! Of all the workers on a store, one at a time prunes: every interval each asks the store
//! for the pruner's turn ([`Store::take_turn`]), held for three intervals (at least
//! [`MIN_TURN`]) and renewed by its holder, so a hundred workers do not prune a hundred
//! times, and when the holder stops another takes over once its turn has run out. The holder deletes in batches of [`BATCH`]
//! tasks, each one short statement or script (claims wait for none of them for long), and
//! stops for the interval after [`BUDGET`] of work, so a large backlog is worked off over
//! several intervals rather than in one long burst. Waiting, running and retryable tasks
//! are never pruned (the store refuses them); a job's finished tasks are, and the job's
//! counters keep them.
//!
//! With `completed_max`, the holder then prunes the oldest completed tasks beyond that
//! many (counted by `queue_stats`, which reads the stores' counters).
//!
//! The turn's holder also asks the store to tidy its bookkeeping ([`Store::tidy`]: the SQL
//! stores fold their per-connection counter rows and drop per-second outcome counters no
//! minute reads any more) once per interval.
//!
//! This is the retention of every store, Redis included (its `result_ttl` is an optional
//! hard limit on top). What this module does not do: delete jobs (`wrangle job delete` is
//! the operator's).
//!
//! [`Store::take_turn`]: wrangle_core::Store::take_turn
//! [`Store::tidy`]: wrangle_core::Store::tidy

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use wrangle_core::retention::Retention;
use wrangle_core::task::TaskState;

use crate::Shared;

/// The duty's name in the store.
pub(crate) const DUTY: &str = "pruner";
/// Tasks deleted per store call.
pub(crate) const BATCH: usize = 1000;
/// Shortest turn: a holder whose tick is late on a loaded machine keeps its turn.
const MIN_TURN: Duration = Duration::from_secs(15);
/// Most time spent pruning per interval.
const BUDGET: Duration = Duration::from_secs(5);

pub(crate) async fn run(shared: Arc<Shared>, retention: Retention, stop: CancellationToken) {
    let store = &shared.store;
    let name = &shared.config.name;
    let turn = chrono::Duration::from_std((retention.interval * 3).max(MIN_TURN))
        .unwrap_or(chrono::Duration::MAX);
    let mut tick = tokio::time::interval(retention.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let now = shared.config.now();
        let until = now.checked_add_signed(turn).unwrap_or(now);
        match store.take_turn(DUTY, name, until, now).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(err) => {
                tracing::debug!(error = %err, "could not take the pruner's turn");
                continue;
            }
        }
        if let Err(err) = store.tidy().await {
            tracing::warn!(error = %err, "tidying the store's counters failed");
        }
        let started = Instant::now();
        let mut pruned = 0;
        'states: for request in retention.requests(now, BATCH) {
            loop {
                if stop.is_cancelled() || started.elapsed() >= BUDGET {
                    break 'states;
                }
                match store.prune_finished(request).await {
                    Ok(deleted) => {
                        pruned += deleted;
                        if (deleted as usize) < BATCH {
                            break;
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, state = %request.state, "pruning finished tasks failed");
                        break;
                    }
                }
            }
        }
        pruned += prune_over_max(&shared, &retention, &stop, started).await;
        if pruned > 0 {
            tracing::info!(
                tasks = pruned,
                took_ms = started.elapsed().as_millis() as u64,
                "pruned finished tasks past their retention"
            );
        }
    }
}

/// Prunes the oldest completed tasks beyond `completed_max`, counted by `queue_stats` (the
/// stores' counters: one cheap call), within the interval's budget. Stops when a batch
/// deletes less than asked (the count moved meanwhile).
async fn prune_over_max(
    shared: &Shared,
    retention: &Retention,
    stop: &CancellationToken,
    started: Instant,
) -> u64 {
    let store = &shared.store;
    let mut pruned = 0;
    while !stop.is_cancelled() && started.elapsed() < BUDGET {
        let now = shared.config.now();
        let completed = match store.queue_stats(now).await {
            Ok(stats) => stats
                .iter()
                .filter_map(|q| q.counts.get(&TaskState::Completed))
                .sum(),
            Err(err) => {
                tracing::warn!(error = %err, "counting completed tasks failed");
                break;
            }
        };
        let Some(request) = retention.over_max_request(completed, now, BATCH) else {
            break;
        };
        match store.prune_finished(request).await {
            Ok(deleted) => {
                pruned += deleted;
                if (deleted as usize) < request.limit {
                    break;
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "pruning completed tasks over the limit failed");
                break;
            }
        }
    }
    pruned
}
