//! How the stores that keep times as epoch milliseconds (SQLite, PostgreSQL, MySQL) read
//! them back: one definition of the conversion and of the attempt-history record their
//! SQL writes, instead of a copy per store.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::task::AttemptRecord;

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
}
