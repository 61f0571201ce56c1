//! What the dashboard shows, read from the store off the UI's path: a [`Snapshot`] of
//! workers, queues and jobs taken by [`refresh_loop`] (every interval, and early when a
//! task's outcome is notified), and the [`Throughput`] history derived from successive
//! snapshots.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use wrangle::jobs::JobProgress;
use wrangle::store::{Listener, QueueStats};
use wrangle::{Store, StoreError, TaskState, Topic, WorkerRecord};

use super::Update;

/// A store read slower than this is reported as an error (the last snapshot stays shown).
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything one refresh read from the store.
#[derive(Debug, Clone)]
pub(super) struct Snapshot {
    /// When the reads started: a change acknowledged before this is visible in it.
    pub(super) started: Instant,
    /// The store-side "now" the queue stats and ages are relative to.
    pub(super) taken_at: DateTime<Utc>,
    pub(super) workers: Vec<WorkerRecord>,
    /// Sorted by queue name.
    pub(super) queues: Vec<QueueStats>,
    pub(super) jobs: Vec<JobProgress>,
}

impl Snapshot {
    /// Tasks completed so far, over every queue: the throughput's running total.
    pub(super) fn completed_total(&self) -> u64 {
        self.queues
            .iter()
            .map(|q| q.counts.get(&TaskState::Completed).copied().unwrap_or(0))
            .sum()
    }
}

/// Reads one snapshot (the same reads as `wrangle status`).
async fn fetch(store: &Arc<dyn Store>) -> Result<Snapshot, String> {
    let started = Instant::now();
    let taken_at = Utc::now();
    // Sorted by name, as queue_stats promises.
    let queues = store
        .queue_stats(taken_at)
        .await
        .map_err(|e| e.to_string())?;
    let workers = store.list_workers().await.map_err(|e| e.to_string())?;
    let jobs = wrangle::jobs::all_progress(store)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Snapshot {
        started,
        taken_at,
        workers,
        queues,
        jobs,
    })
}

/// Sends a snapshot every `interval`, sooner when `refresh_now` is notified, and sooner
/// when a task's outcome is notified (but at most every quarter interval, so a busy
/// store is not read in a tight loop). Ends when the dashboard stops listening.
pub(super) async fn refresh_loop(
    store: Arc<dyn Store>,
    interval: Duration,
    refresh_now: Arc<Notify>,
    updates: mpsc::UnboundedSender<Update>,
) {
    let min_gap = (interval / 4).clamp(Duration::from_millis(50), interval);
    // Without notifications (or if they fail) the interval alone drives refreshes.
    let mut outcomes = store.listen(Topic::Outcomes).await.ok();
    loop {
        let started = Instant::now();
        let snapshot = match tokio::time::timeout(FETCH_TIMEOUT, fetch(&store)).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "the store did not answer within {}s",
                FETCH_TIMEOUT.as_secs()
            )),
        };
        if updates.send(Update::Snapshot(snapshot)).is_err() {
            return;
        }
        let due = started + interval;
        let outcome = tokio::select! {
            _ = refresh_now.notified() => continue,
            _ = tokio::time::sleep_until(due) => continue,
            outcome = wait_for_outcome(outcomes.as_mut(), due) => outcome,
        };
        match outcome {
            Ok(_) => {
                // Finish the quarter interval, but a requested refresh goes first.
                tokio::select! {
                    _ = refresh_now.notified() => {}
                    _ = tokio::time::sleep_until(started + min_gap) => {}
                }
            }
            Err(_) => outcomes = None,
        }
    }
}

/// Waits until a task's attempt ended (or `due`); never returns without a listener.
async fn wait_for_outcome(
    listener: Option<&mut Box<dyn Listener>>,
    due: Instant,
) -> Result<bool, StoreError> {
    match listener {
        Some(listener) => {
            listener
                .wait(due.saturating_duration_since(Instant::now()))
                .await
        }
        None => std::future::pending().await,
    }
}

/// Samples kept: more than any terminal is wide.
const THROUGHPUT_SAMPLES: usize = 512;

/// Tasks completed per second between successive snapshots, newest last.
#[derive(Debug, Default)]
pub(super) struct Throughput {
    previous: Option<(Instant, u64)>,
    rates: VecDeque<f64>,
}

impl Throughput {
    /// Adds the rate since the previous snapshot. A total that went down (finished tasks
    /// pruned) counts as nothing completed rather than a negative rate.
    pub(super) fn record(&mut self, at: Instant, completed_total: u64) {
        if let Some((before, total_before)) = self.previous {
            let seconds = at.saturating_duration_since(before).as_secs_f64();
            if seconds < 0.001 {
                return;
            }
            let rate = completed_total.saturating_sub(total_before) as f64 / seconds;
            if self.rates.len() == THROUGHPUT_SAMPLES {
                self.rates.pop_front();
            }
            self.rates.push_back(rate);
        }
        self.previous = Some((at, completed_total));
    }

    /// The latest rate, once two snapshots were seen.
    pub(super) fn latest(&self) -> Option<f64> {
        self.rates.back().copied()
    }

    /// The newest `count` rates, oldest first.
    pub(super) fn recent(&self, count: usize) -> impl Iterator<Item = f64> + '_ {
        self.rates
            .iter()
            .skip(self.rates.len().saturating_sub(count))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_is_completions_per_second_between_snapshots() {
        let start = Instant::now();
        let mut throughput = Throughput::default();
        throughput.record(start, 100);
        assert_eq!(throughput.latest(), None, "one snapshot gives no rate");
        throughput.record(start + Duration::from_millis(500), 110);
        assert_eq!(throughput.latest(), Some(20.0));
        // Pruning lowered the total: nothing completed, not a negative rate.
        throughput.record(start + Duration::from_millis(1500), 50);
        assert_eq!(throughput.latest(), Some(0.0));
        throughput.record(start + Duration::from_millis(2500), 53);
        assert_eq!(throughput.recent(2).collect::<Vec<_>>(), vec![0.0, 3.0]);
        assert_eq!(throughput.recent(99).count(), 3);
    }

    #[test]
    fn throughput_keeps_a_bounded_history() {
        let start = Instant::now();
        let mut throughput = Throughput::default();
        for i in 0..(THROUGHPUT_SAMPLES as u64 + 10) {
            throughput.record(start + Duration::from_secs(i), i * 2);
        }
        assert_eq!(throughput.recent(usize::MAX).count(), THROUGHPUT_SAMPLES);
        assert_eq!(throughput.latest(), Some(2.0));
    }
}
