//! How the stores that keep times as epoch milliseconds (SQLite, PostgreSQL, MySQL) read
//! them back: one definition of the conversion and of the attempt-history record their
//! SQL writes, instead of a copy per store; and the history rule of the stores whose hot
//! path skips writing a success's record (`imply_success`).

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::task::{AttemptRecord, Task, TaskState};

/// Completes the history of a task read from a store that does not write the record of a
/// successful attempt (PostgreSQL, Redis, MySQL: building and appending it was a
/// measurable part of every completion). Completed is final, so that record is implied by
/// the task's `attempt`, `worker`, `started_at` and `finished_at`; it is appended here
/// unless the history already ends with it (tasks completed before the rule existed).
pub fn imply_success(task: &mut Task) {
    if task.state != TaskState::Completed {
        return;
    }
    let recorded = task
        .attempts
        .last()
        .is_some_and(|last| last.attempt == task.attempt && last.outcome == "completed");
    if !recorded {
        task.attempts.push(AttemptRecord {
            attempt: task.attempt,
            worker: task.worker.clone(),
            started_at: task.started_at,
            finished_at: task.finished_at.unwrap_or_default(),
            outcome: "completed".into(),
            error: None,
            retry_at: None,
        });
    }
}

/// A stored epoch-millisecond time (out-of-range values read as the epoch).
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// One attempt as the stores' SQL writes it into a task's history (times in ms).
#[derive(Debug, Deserialize)]
pub struct StoredAttempt {
    attempt: u32,
    worker: Option<String>,
    started_at: Option<i64>,
    finished_at: i64,
    outcome: String,
    error: Option<String>,
    retry_at: Option<i64>,
}

impl From<StoredAttempt> for AttemptRecord {
    fn from(stored: StoredAttempt) -> Self {
        AttemptRecord {
            attempt: stored.attempt,
            worker: stored.worker,
            started_at: stored.started_at.map(from_ms),
            finished_at: from_ms(stored.finished_at),
            outcome: stored.outcome,
            error: stored.error,
            retry_at: stored.retry_at.map(from_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_read_back_with_their_times() {
        let stored: StoredAttempt = serde_json::from_str(
            r#"{"attempt":2,"worker":"w","started_at":1000,"finished_at":2500,"outcome":"failed","error":"boom","retry_at":null}"#,
        )
        .unwrap();
        let record = AttemptRecord::from(stored);
        assert_eq!(record.started_at, Some(from_ms(1000)));
        assert_eq!(record.finished_at.timestamp_millis(), 2500);
        assert_eq!(
            (record.attempt, record.error.as_deref(), record.retry_at),
            (2, Some("boom"), None)
        );
        assert_eq!(from_ms(i64::MAX), DateTime::<Utc>::default());
    }

    fn completed_task(attempts: Vec<AttemptRecord>) -> Task {
        let mut task: Task = serde_json::from_value(serde_json::json!({
            "id": 7, "queue": "q", "kind": "k", "payload": null, "priority": 0,
            "state": "completed", "run_at": "2026-01-01T00:00:00Z", "attempt": 2,
            "max_attempts": 3, "timeout": null, "unique_key": null, "job": null,
            "result": null, "error": null, "worker": "w2", "lease_until": null,
            "created_at": "2026-01-01T00:00:00Z", "started_at": "2026-01-01T00:00:01Z",
            "finished_at": "2026-01-01T00:00:02Z", "attempts": []
        }))
        .unwrap();
        task.attempts = attempts;
        task
    }

    fn record(attempt: u32, outcome: &str) -> AttemptRecord {
        AttemptRecord {
            attempt,
            worker: Some(format!("w{attempt}")),
            started_at: None,
            finished_at: from_ms(0),
            outcome: outcome.into(),
            error: None,
            retry_at: None,
        }
    }

    #[test]
    fn a_completed_task_gets_its_implied_success_once() {
        let mut task = completed_task(vec![record(1, "failed")]);
        imply_success(&mut task);
        let last = task.attempts.last().unwrap();
        assert_eq!(task.attempts.len(), 2);
        assert_eq!((last.attempt, last.outcome.as_str()), (2, "completed"));
        assert_eq!(last.worker.as_deref(), Some("w2"));
        assert_eq!(last.started_at, task.started_at);
        assert_eq!(Some(last.finished_at), task.finished_at);
        // Already there (written before the rule): not added again.
        imply_success(&mut task);
        assert_eq!(task.attempts.len(), 2);
        // Other states are left alone.
        let mut dead = completed_task(vec![record(1, "failed"), record(2, "failed")]);
        dead.state = TaskState::Dead;
        imply_success(&mut dead);
        assert_eq!(dead.attempts.len(), 2);
    }
}
