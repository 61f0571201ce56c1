//! Conversions between PostgreSQL rows and wrangle's types. Times are stored as bigint
//! milliseconds since the epoch, JSON as jsonb, attempt counts as bigint.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{Decode, Postgres, Row, Type};
use wrangle_core::job::{BlockTally, Job, JobKind, JobTallies, NewJob};
use wrangle_core::store::{QueueStats, StoreError, add_recent_outcomes};
use wrangle_core::stored::{StoredAttempt, imply_success};
use wrangle_core::task::{AttemptRecord, Task, TaskState};
use wrangle_core::worker::CommandEnvelope;

/// A time as stored: milliseconds since the epoch.
pub(crate) fn ms(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

pub(crate) use wrangle_core::stored::from_ms;

fn corrupt(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("unreadable {what} in the database: {err}"))
}

/// Column `name` of `row`, or a `Backend` error naming it.
pub(crate) fn column<'r, T>(row: &'r PgRow, name: &str) -> Result<T, StoreError>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    row.try_get(name).map_err(|e| corrupt(name, e))
}

/// A stored state name as a `TaskState`.
pub(crate) fn state(name: &str) -> Result<TaskState, StoreError> {
    name.parse().map_err(|e| corrupt("state", e))
}

/// A stored count (bigint) as wrangle's `u32`.
fn count(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// A stored timeout in milliseconds.
pub(crate) fn timeout(ms: Option<i64>) -> Option<Duration> {
    ms.map(|t| Duration::from_millis(t.max(0) as u64))
}

pub(crate) fn task_from_row(row: &PgRow) -> Result<Task, StoreError> {
    let attempts: Vec<StoredAttempt> = serde_json::from_value(column(row, "attempts")?)
        .map_err(|e| corrupt("attempt history", e))?;
    let mut task = Task {
        id: column(row, "id")?,
        queue: column(row, "queue")?,
        kind: column(row, "kind")?,
        payload: column(row, "payload")?,
        priority: column(row, "priority")?,
        state: state(column(row, "state")?)?,
        run_at: from_ms(column(row, "run_at")?),
        attempt: count(column(row, "attempt")?),
        max_attempts: count(column(row, "max_attempts")?),
        timeout: timeout(column(row, "timeout_ms")?),
        unique_key: column(row, "unique_key")?,
        job: column(row, "job")?,
        result: column(row, "result")?,
        error: column(row, "error")?,
        worker: column(row, "worker")?,
        lease_until: column::<Option<i64>>(row, "lease_until")?.map(from_ms),
        created_at: from_ms(column(row, "created_at")?),
        started_at: column::<Option<i64>>(row, "started_at")?.map(from_ms),
        finished_at: column::<Option<i64>>(row, "finished_at")?.map(from_ms),
        attempts: attempts.into_iter().map(AttemptRecord::from).collect(),
    };
    // complete.sql does not append a success's record.
    imply_success(&mut task);
    Ok(task)
}

pub(crate) fn job_from_row(row: &PgRow) -> Result<Job, StoreError> {
    Ok(Job {
        definition: NewJob {
            name: column(row, "name")?,
            kind: JobKind::parse(column(row, "kind")?)?,
            queue: column(row, "queue")?,
            task_kind: column(row, "task_kind")?,
            priority: column(row, "priority")?,
            max_attempts: count(column(row, "max_attempts")?),
            timeout: timeout(column(row, "timeout_ms")?),
            start: column(row, "start_id")?,
            end: column(row, "end_id")?,
            block: column(row, "block")?,
        },
        cursor: column(row, "cursor")?,
        cancelled: column(row, "cancelled")?,
        created_at: from_ms(column(row, "created_at")?),
    })
}

/// The rows of `job_tallies.sql` as tallies; `None` when there was no row (no such job).
pub(crate) fn job_tallies(rows: &[PgRow]) -> Result<Option<JobTallies>, StoreError> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let mut blocks = Vec::with_capacity(rows.len());
    for row in rows {
        // A job with no task counted comes back as one row with no state.
        let Some(name) = column::<Option<&str>>(row, "state")? else {
            continue;
        };
        blocks.push(BlockTally {
            state: state(name)?,
            worker: column(row, "worker")?,
            blocks: column::<i64>(row, "blocks")?.max(0) as u64,
            ids: column::<i64>(row, "ids")?.max(0) as u64,
        });
    }
    Ok(Some(JobTallies {
        blocks,
        ids_completed_last_minute: column::<i64>(first, "recent")?.max(0) as u64,
    }))
}

pub(crate) fn command_from_row(row: &PgRow) -> Result<CommandEnvelope, StoreError> {
    Ok(CommandEnvelope {
        id: column(row, "id")?,
        worker: column(row, "worker")?,
        command: serde_json::from_value(column(row, "command")?)
            .map_err(|e| corrupt("command", e))?,
        sent_at: from_ms(column(row, "sent_at")?),
        acked_at: column::<Option<i64>>(row, "acked_at")?.map(from_ms),
        reply: column::<Option<Value>>(row, "reply")?,
    })
}

/// Folds the tagged rows of `queue_stats.sql` into one entry per queue, sorted by name.
pub(crate) fn queue_stats(rows: &[PgRow]) -> Result<Vec<QueueStats>, StoreError> {
    let mut stats: BTreeMap<String, QueueStats> = BTreeMap::new();
    let mut recent = Vec::new();
    for row in rows {
        let queue: String = column(row, "queue")?;
        let n = column::<i64>(row, "n")?.max(0) as u64;
        let kind = column::<&str>(row, "kind")?;
        if kind == "recent" {
            recent.push((queue, column::<String>(row, "state")?, n));
            continue;
        }
        let entry = stats
            .entry(queue.clone())
            .or_insert_with(|| QueueStats::empty(&queue, false));
        match kind {
            "paused" => entry.paused = true,
            "count" => {
                entry.counts.insert(state(column(row, "state")?)?, n);
            }
            "due" => entry.oldest_due_at = column::<Option<i64>>(row, "at")?.map(from_ms),
            other => return Err(corrupt("queue stats row kind", other)),
        }
    }
    for (queue, outcome, n) in recent {
        add_recent_outcomes(&mut stats, &queue, &outcome, n);
    }
    Ok(stats.into_values().collect())
}
