//! Conversions between SQLite rows and wrangle's types. Times are stored as integer
//! milliseconds since the epoch, JSON as text.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use wrangle_core::job::{Job, JobKind, NewJob};
use wrangle_core::store::{QueueStats, StoreError, add_recent_outcomes, recent_seconds};
use wrangle_core::stored::StoredAttempt;
use wrangle_core::task::{AttemptRecord, Task, TaskState};
use wrangle_core::worker::CommandEnvelope;

use crate::backend;

/// A time as stored: milliseconds since the epoch.
pub(crate) fn ms(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

pub(crate) use wrangle_core::stored::from_ms;

fn corrupt(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("unreadable {what} in the database: {err}"))
}

fn json_column(text: Option<String>) -> Option<Value> {
    text.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

pub(crate) fn task_from_row(row: &SqliteRow) -> Result<Task, StoreError> {
    let state: String = row.get("state");
    let attempts: String = row.get("attempts");
    let attempts: Vec<StoredAttempt> =
        serde_json::from_str(&attempts).map_err(|e| corrupt("attempt history", e))?;
    Ok(Task {
        id: row.get("id"),
        queue: row.get("queue"),
        kind: row.get("kind"),
        payload: json_column(row.get("payload")).unwrap_or(Value::Null),
        priority: row.get("priority"),
        state: state
            .parse::<TaskState>()
            .map_err(|e| corrupt("state", e))?,
        run_at: from_ms(row.get("run_at")),
        attempt: row.get::<i64, _>("attempt") as u32,
        max_attempts: row.get::<i64, _>("max_attempts") as u32,
        timeout: row
            .get::<Option<i64>, _>("timeout_ms")
            .map(|t| Duration::from_millis(t as u64)),
        unique_key: row.get("unique_key"),
        job: row.get("job"),
        result: json_column(row.get("result")),
        error: row.get("error"),
        worker: row.get("worker"),
        lease_until: row.get::<Option<i64>, _>("lease_until").map(from_ms),
        created_at: from_ms(row.get("created_at")),
        started_at: row.get::<Option<i64>, _>("started_at").map(from_ms),
        finished_at: row.get::<Option<i64>, _>("finished_at").map(from_ms),
        attempts: attempts.into_iter().map(AttemptRecord::from).collect(),
    })
}

pub(crate) fn job_from_row(row: &SqliteRow) -> Result<Job, StoreError> {
    Ok(Job {
        definition: NewJob {
            name: row.get("name"),
            kind: JobKind::parse(row.get("kind"))?,
            queue: row.get("queue"),
            task_kind: row.get("task_kind"),
            priority: row.get("priority"),
            max_attempts: row.get::<i64, _>("max_attempts") as u32,
            timeout: row
                .get::<Option<i64>, _>("timeout_ms")
                .map(|t| Duration::from_millis(t as u64)),
            start: row.get("start_id"),
            end: row.get("end_id"),
            block: row.get("block"),
        },
        cursor: row.get("cursor"),
        cancelled: row.get::<i64, _>("cancelled") != 0,
        created_at: from_ms(row.get("created_at")),
    })
}

pub(crate) fn command_from_row(row: &SqliteRow) -> Result<CommandEnvelope, StoreError> {
    let command: String = row.get("command");
    Ok(CommandEnvelope {
        id: row.get("id"),
        worker: row.get("worker"),
        command: serde_json::from_str(&command).map_err(|e| corrupt("command", e))?,
        sent_at: from_ms(row.get("sent_at")),
        acked_at: row.get::<Option<i64>, _>("acked_at").map(from_ms),
        reply: json_column(row.get("reply")),
    })
}

/// Per-queue numbers in three grouped reads plus the paused list.
pub(crate) async fn queue_stats(
    pool: &SqlitePool,
    now: DateTime<Utc>,
) -> Result<Vec<QueueStats>, StoreError> {
    let mut stats: BTreeMap<String, QueueStats> = BTreeMap::new();
    fn entry<'a>(stats: &'a mut BTreeMap<String, QueueStats>, queue: &str) -> &'a mut QueueStats {
        stats
            .entry(queue.to_string())
            .or_insert_with(|| QueueStats::empty(queue, false))
    }
    let paused: Vec<String> = sqlx::query_scalar("SELECT queue FROM paused_queues")
        .fetch_all(pool)
        .await
        .map_err(backend)?;
    for queue in paused {
        entry(&mut stats, &queue).paused = true;
    }
    let counts: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT queue, state, n FROM queue_counts WHERE n > 0")
            .fetch_all(pool)
            .await
            .map_err(backend)?;
    for (queue, state, count) in counts {
        let state = state
            .parse::<TaskState>()
            .map_err(|e| corrupt("state", e))?;
        entry(&mut stats, &queue).counts.insert(state, count as u64);
    }
    let due: Vec<(String, i64)> = sqlx::query_as(
        "SELECT queue, min(run_at) FROM tasks
         WHERE state IN ('scheduled', 'available', 'retryable') AND run_at <= ?1
         GROUP BY queue",
    )
    .bind(ms(now))
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    for (queue, oldest) in due {
        entry(&mut stats, &queue).oldest_due_at = Some(from_ms(oldest));
    }
    let (first, last) = recent_seconds(now);
    let recent: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT queue, outcome, sum(n) FROM recent_counts
         WHERE second > ?1 AND second <= ?2 GROUP BY queue, outcome",
    )
    .bind(first)
    .bind(last)
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    for (queue, outcome, attempts) in recent {
        add_recent_outcomes(&mut stats, &queue, &outcome, attempts as u64);
    }
    Ok(stats.into_values().collect())
}
