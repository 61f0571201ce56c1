//! What the dashboard's charts show: the store's numbers sampled every [`SAMPLE_EVERY`]
//! (`--history-every`) by this server (attempts completed and failed in the last minute, tasks waiting and
//! running, the oldest due task's wait) and kept for the last hour, in memory: one cheap
//! `queue_stats` call per sample whatever the number of viewers. A server started a minute
//! ago has a minute of history.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use wrangle::{Store, TaskState};

use crate::AppState;
use crate::problem::Problem;

/// Time between two samples unless told otherwise.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Samples kept: an hour at the default interval.
const KEEP: usize = 360;

/// The store's numbers at one instant, over every queue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Sample {
    /// When.
    at: DateTime<Utc>,
    /// Attempts completed in the minute before.
    completed: u64,
    /// Attempts failed in the minute before.
    failed: u64,
    /// Tasks waiting: available, scheduled or retryable.
    waiting: u64,
    /// Tasks running.
    running: u64,
    /// How long the oldest due task had waited, in seconds (0 with none).
    oldest_wait_seconds: f64,
}

/// The samples, newest last.
#[derive(Clone)]
pub(crate) struct History {
    samples: Arc<Mutex<VecDeque<Sample>>>,
}

impl History {
    /// Starts sampling `store` every `every`; it stops when the history is dropped.
    pub(crate) fn start(store: Arc<dyn Store>, every: Duration) -> History {
        let samples = Arc::new(Mutex::new(VecDeque::with_capacity(KEEP)));
        tokio::spawn(sample(store, every, Arc::downgrade(&samples)));
        History { samples }
    }

    fn snapshot(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .expect("no panic holds the lock")
            .iter()
            .cloned()
            .collect()
    }
}

async fn sample(store: Arc<dyn Store>, every: Duration, samples: Weak<Mutex<VecDeque<Sample>>>) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        let now = Utc::now();
        let stats = match store.queue_stats(now).await {
            Ok(stats) => stats,
            Err(err) => {
                tracing::warn!(error = %err, "sampling the queues failed");
                continue;
            }
        };
        let count = |states: &[TaskState]| -> u64 {
            stats
                .iter()
                .flat_map(|q| states.iter().filter_map(|s| q.counts.get(s)))
                .sum()
        };
        let oldest = stats.iter().filter_map(|q| q.oldest_due_at).min();
        let taken = Sample {
            at: now,
            completed: stats.iter().map(|q| q.completed_last_minute).sum(),
            failed: stats.iter().map(|q| q.failed_last_minute).sum(),
            waiting: count(&[
                TaskState::Available,
                TaskState::Scheduled,
                TaskState::Retryable,
            ]),
            running: count(&[TaskState::Running]),
            oldest_wait_seconds: oldest
                .map(|at| (now - at).num_milliseconds().max(0) as f64 / 1000.0)
                .unwrap_or(0.0),
        };
        let Some(samples) = samples.upgrade() else {
            return;
        };
        let mut samples = samples.lock().expect("no panic holds the lock");
        if samples.len() == KEEP {
            samples.pop_front();
        }
        samples.push_back(taken);
    }
}

/// The last hour's samples, oldest first.
#[utoipa::path(
    get,
    path = "/api/history",
    tag = "queues",
    responses((status = 200, description = "Samples every 10 s (`--history-every`) since this server started, the last 360", body = Vec<Sample>))
)]
pub(crate) async fn get(State(state): State<AppState>) -> Result<Json<Vec<Sample>>, Problem> {
    Ok(Json(state.history.snapshot()))
}
