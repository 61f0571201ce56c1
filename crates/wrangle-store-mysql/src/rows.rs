//! Conversions between MySQL rows and wrangle's types. Times are stored as BIGINT
//! milliseconds since the epoch, JSON as LONGTEXT; the attempt history is a JSON array of
//! records with times in milliseconds.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use sqlx::mysql::MySqlRow;
use wrangle_core::job::{Job, JobKind, NewJob};
use wrangle_core::store::{QueueStats, StoreError, add_recent_outcomes, recent_seconds};
use wrangle_core::stored::{StoredAttempt, imply_success};
use wrangle_core::task::{AttemptRecord, Task, TaskState};
use wrangle_core::worker::CommandEnvelope;

use crate::Failure;

/// A time as stored: milliseconds since the epoch.
pub(crate) fn ms(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

pub(crate) use wrangle_core::stored::from_ms;

/// A JSON value as the text stored in a LONGTEXT column.
pub(crate) fn json_text(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("serializing plain data to JSON cannot fail")
}

pub(crate) fn corrupt(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("unreadable {what} in the database: {err}"))
}

/// Stored JSON text back as a value; text that is not JSON (written by hand, say) reads
/// as a JSON string rather than failing the whole read.
fn json_column(text: Option<String>) -> Option<Value> {
    text.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

/// A state column.
pub(crate) fn state(text: &str) -> Result<TaskState, StoreError> {
    text.parse::<TaskState>().map_err(|e| corrupt("state", e))
}

pub(crate) fn task_from_row(row: &MySqlRow) -> Result<Task, Failure> {
    let attempts: String = row.try_get("attempts")?;
    let attempts: Vec<StoredAttempt> =
        serde_json::from_str(&attempts).map_err(|e| corrupt("attempt history", e))?;
    let mut task = Task {
        id: row.try_get("id")?,
        queue: row.try_get("queue")?,
        kind: row.try_get("kind")?,
        payload: json_column(row.try_get("payload")?).unwrap_or(Value::Null),
        priority: row.try_get("priority")?,
        state: state(row.try_get("state")?)?,
        run_at: from_ms(row.try_get("run_at")?),
        attempt: row.try_get::<i64, _>("attempt")? as u32,
        max_attempts: row.try_get::<i64, _>("max_attempts")? as u32,
        timeout: row
            .try_get::<Option<i64>, _>("timeout_ms")?
            .map(|t| Duration::from_millis(t as u64)),
        unique_key: row.try_get("unique_key")?,
        job: row.try_get("job")?,
        result: json_column(row.try_get("result")?),
        error: row.try_get("error")?,
        worker: row.try_get("worker")?,
        lease_until: row.try_get::<Option<i64>, _>("lease_until")?.map(from_ms),
        created_at: from_ms(row.try_get("created_at")?),
        started_at: row.try_get::<Option<i64>, _>("started_at")?.map(from_ms),
        finished_at: row.try_get::<Option<i64>, _>("finished_at")?.map(from_ms),
        attempts: attempts.into_iter().map(AttemptRecord::from).collect(),
    };
    // attempts_end.sql does not append a success's record.
    imply_success(&mut task);
    Ok(task)
}

pub(crate) fn job_from_row(row: &MySqlRow) -> Result<Job, Failure> {
    Ok(Job {
        definition: NewJob {
            name: row.try_get("name")?,
            kind: JobKind::parse(row.try_get("kind")?)?,
            queue: row.try_get("queue")?,
            task_kind: row.try_get("task_kind")?,
            priority: row.try_get("priority")?,
            max_attempts: row.try_get::<i64, _>("max_attempts")? as u32,
            timeout: row
                .try_get::<Option<i64>, _>("timeout_ms")?
                .map(|t| Duration::from_millis(t as u64)),
            start: row.try_get("start_id")?,
            end: row.try_get("end_id")?,
            block: row.try_get("block_size")?,
        },
        cursor: row.try_get("next_start")?,
        cancelled: row.try_get::<i8, _>("cancelled")? != 0,
        created_at: from_ms(row.try_get("created_at")?),
    })
}

pub(crate) fn command_from_row(row: &MySqlRow) -> Result<CommandEnvelope, Failure> {
    let command: String = row.try_get("command")?;
    Ok(CommandEnvelope {
        id: row.try_get("id")?,
        worker: row.try_get("worker")?,
        command: serde_json::from_str(&command).map_err(|e| corrupt("command", e))?,
        sent_at: from_ms(row.try_get("sent_at")?),
        acked_at: row.try_get::<Option<i64>, _>("acked_at")?.map(from_ms),
        reply: json_column(row.try_get("reply")?),
    })
}

/// Per-queue numbers from three grouped reads plus the paused list, all on `conn`.
pub(crate) async fn queue_stats(
    conn: &mut sqlx::MySqlConnection,
    now: DateTime<Utc>,
) -> Result<Vec<QueueStats>, Failure> {
    let mut stats: BTreeMap<String, QueueStats> = BTreeMap::new();
    fn entry<'a>(stats: &'a mut BTreeMap<String, QueueStats>, queue: &str) -> &'a mut QueueStats {
        stats
            .entry(queue.to_string())
            .or_insert_with(|| QueueStats::empty(queue, false))
    }
    let paused: Vec<String> = sqlx::query_scalar("SELECT queue FROM wrangle_paused_queues")
        .fetch_all(&mut *conn)
        .await?;
    for queue in paused {
        entry(&mut stats, &queue).paused = true;
    }
    // The counters' slots summed (schema v5): O(queues x states x connections), whatever
    // the number of tasks.
    let counts: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT queue, state, CAST(SUM(n) AS SIGNED) FROM wrangle_queue_counts
         GROUP BY queue, state HAVING SUM(n) <> 0",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (queue, state_name, count) in counts {
        entry(&mut stats, &queue)
            .counts
            .insert(state(&state_name)?, count as u64);
    }
    let due: Vec<(String, i64)> = sqlx::query_as(
        "SELECT queue, MIN(run_at) FROM wrangle_tasks
         WHERE state IN ('scheduled', 'available', 'retryable') AND run_at <= ?
         GROUP BY queue",
    )
    .bind(ms(now))
    .fetch_all(&mut *conn)
    .await?;
    for (queue, oldest) in due {
        entry(&mut stats, &queue).oldest_due_at = Some(from_ms(oldest));
    }
    let (first, last) = recent_seconds(now);
    let recent: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT queue, outcome, CAST(SUM(n) AS SIGNED) FROM wrangle_recent_counts
         WHERE second > ? AND second <= ? GROUP BY queue, outcome",
    )
    .bind(first)
    .bind(last)
    .fetch_all(&mut *conn)
    .await?;
    for (queue, outcome, attempts) in recent {
        add_recent_outcomes(&mut stats, &queue, &outcome, attempts.max(0) as u64);
    }
    Ok(stats.into_values().collect())
}
