//! Conversions between Redis replies and wrangle's types: times as epoch milliseconds,
//! task and command records from their hash fields, and driver errors as [`StoreError`].

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::{ErrorKind, RedisError, ServerErrorKind};
use serde::Deserialize;
use serde_json::Value;
use wrangle_core::job::{BlockTally, Job, JobKind, JobTallies, NewJob, ids_of_payload};
use wrangle_core::store::StoreError;
use wrangle_core::stored::imply_success;
use wrangle_core::task::{AttemptRecord, NewTask, Task, TaskState};
use wrangle_core::worker::CommandEnvelope;

/// A record's fields as `HGETALL` returns them.
pub(crate) type Fields = HashMap<String, String>;

/// A time as epoch milliseconds, the form every stored time takes.
pub(crate) fn ms(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

/// The time `ms` epoch milliseconds stand for.
pub(crate) fn from_ms(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Backend(format!("stored time {ms} ms is out of range")))
}

/// Maps a driver error: anything about reaching the server (I/O, timeouts, a server
/// still loading its data, a cluster failing over) is transient.
pub(crate) fn redis_error(err: RedisError) -> StoreError {
    let transient = err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || matches!(
            err.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            ) | ErrorKind::ClusterConnectionNotFound
        );
    if transient {
        StoreError::Unavailable(format!("redis: {err}"))
    } else {
        StoreError::Backend(format!("redis: {err}"))
    }
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("malformed {what} in redis: {detail}"))
}

fn required<'a>(fields: &'a Fields, name: &str) -> Result<&'a str, StoreError> {
    fields
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| corrupt("record", format!("field '{name}' missing")))
}

fn parsed<T: FromStr>(text: &str, name: &str) -> Result<T, StoreError> {
    text.parse()
        .map_err(|_| corrupt("record", format!("field '{name}' is '{text}'")))
}

fn number<T: FromStr>(fields: &Fields, name: &str) -> Result<T, StoreError> {
    parsed(required(fields, name)?, name)
}

fn optional_number<T: FromStr>(fields: &Fields, name: &str) -> Result<Option<T>, StoreError> {
    fields.get(name).map(|text| parsed(text, name)).transpose()
}

fn time(fields: &Fields, name: &str) -> Result<DateTime<Utc>, StoreError> {
    from_ms(number(fields, name)?)
}

fn optional_time(fields: &Fields, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    optional_number(fields, name)?.map(from_ms).transpose()
}

fn json(fields: &Fields, name: &str) -> Result<Value, StoreError> {
    serde_json::from_str(required(fields, name)?).map_err(|e| corrupt(name, e))
}

fn optional_json(fields: &Fields, name: &str) -> Result<Option<Value>, StoreError> {
    fields
        .get(name)
        .map(|text| serde_json::from_str(text).map_err(|e| corrupt(name, e)))
        .transpose()
}

/// An attempt record as the scripts write it (`cjson`, times in milliseconds).
#[derive(Deserialize)]
struct StoredAttempt {
    attempt: u32,
    #[serde(default)]
    worker: Option<String>,
    #[serde(default)]
    started_at: Option<i64>,
    finished_at: i64,
    outcome: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    retry_at: Option<i64>,
}

impl StoredAttempt {
    fn into_record(self) -> Result<AttemptRecord, StoreError> {
        Ok(AttemptRecord {
            attempt: self.attempt,
            worker: self.worker,
            started_at: self.started_at.map(from_ms).transpose()?,
            finished_at: from_ms(self.finished_at)?,
            outcome: self.outcome,
            error: self.error,
            retry_at: self.retry_at.map(from_ms).transpose()?,
        })
    }
}

/// A task from its hash.
pub(crate) fn task_from_fields(fields: &Fields) -> Result<Task, StoreError> {
    // No history field until an attempt ends other than by success (see imply_success).
    let attempts: Vec<StoredAttempt> = match fields.get("attempts") {
        Some(text) => serde_json::from_str(text).map_err(|e| corrupt("attempts", e))?,
        None => Vec::new(),
    };
    let state: TaskState = number(fields, "state")?;
    // A completion leaves `lease_until` in the record (one command less per task): it
    // means something only while the task runs.
    let lease_until = if state == TaskState::Running {
        optional_time(fields, "lease_until")?
    } else {
        None
    };
    let mut task = Task {
        id: number(fields, "id")?,
        queue: required(fields, "queue")?.to_string(),
        kind: required(fields, "kind")?.to_string(),
        payload: json(fields, "payload")?,
        priority: number(fields, "priority")?,
        state,
        run_at: time(fields, "run_at")?,
        attempt: number(fields, "attempt")?,
        max_attempts: number(fields, "max_attempts")?,
        timeout: optional_number(fields, "timeout")?.map(Duration::from_millis),
        unique_key: fields.get("unique_key").cloned(),
        job: fields.get("job").cloned(),
        result: optional_json(fields, "result")?,
        error: fields.get("error").cloned(),
        worker: fields.get("worker").cloned(),
        lease_until,
        created_at: time(fields, "created_at")?,
        started_at: optional_time(fields, "started_at")?,
        finished_at: optional_time(fields, "finished_at")?,
        attempts: attempts
            .into_iter()
            .map(StoredAttempt::into_record)
            .collect::<Result<_, _>>()?,
    };
    // complete.lua does not append a success's record.
    imply_success(&mut task);
    Ok(task)
}

/// A command envelope from its hash.
pub(crate) fn command_from_fields(fields: &Fields) -> Result<CommandEnvelope, StoreError> {
    Ok(CommandEnvelope {
        id: number(fields, "id")?,
        worker: required(fields, "worker")?.to_string(),
        command: serde_json::from_str(required(fields, "command")?)
            .map_err(|e| corrupt("command", e))?,
        sent_at: time(fields, "sent_at")?,
        acked_at: optional_time(fields, "acked_at")?,
        reply: optional_json(fields, "reply")?,
    })
}

/// A job from its hash (see `create_job.lua`).
pub(crate) fn job_from_fields(fields: &Fields) -> Result<Job, StoreError> {
    Ok(Job {
        definition: NewJob {
            name: required(fields, "name")?.to_string(),
            kind: JobKind::parse(required(fields, "kind")?)?,
            queue: required(fields, "queue")?.to_string(),
            task_kind: required(fields, "task_kind")?.to_string(),
            priority: number(fields, "priority")?,
            max_attempts: number(fields, "max_attempts")?,
            timeout: optional_number(fields, "timeout")?.map(Duration::from_millis),
            start: number(fields, "start")?,
            end: number(fields, "end")?,
            block: number(fields, "block")?,
        },
        cursor: number(fields, "cursor")?,
        cancelled: required(fields, "cancelled")? == "1",
        created_at: time(fields, "created_at")?,
    })
}

/// JSON text of a value (serializing a `Value` cannot fail).
pub(crate) fn json_text(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(format!("cannot encode: {e}")))
}

/// A new task's values as the store keeps them: what `lua/enqueue.lua` (through its
/// arguments) and the bulk enqueue (`bulk.rs`) both write.
pub(crate) struct StoredNewTask {
    pub(crate) payload: String,
    pub(crate) state: TaskState,
    pub(crate) run_at: i64,
    pub(crate) max_attempts: u32,
    /// The timeout in ms, if any.
    pub(crate) timeout: Option<String>,
    /// The ids it stands for in its job's tallies, for a task of a job.
    pub(crate) ids: Option<String>,
}

impl StoredNewTask {
    pub(crate) fn of(task: &NewTask, now: DateTime<Utc>) -> Result<Self, StoreError> {
        Ok(StoredNewTask {
            payload: json_text(&task.payload)?,
            state: task.initial_state(now),
            run_at: ms(task.initial_run_at(now)),
            max_attempts: task.stored_max_attempts(),
            timeout: task.timeout.map(|t| t.as_millis().to_string()),
            ids: task
                .job
                .as_ref()
                .map(|_| ids_of_payload(&task.payload).to_string()),
        })
    }
}

/// An optional string as the scripts take it: `-` for none, else `+` and the value (so an
/// empty string stays distinct from none).
pub(crate) fn optional_arg(value: Option<&str>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("+{v}"))
}

/// A job's tallies from `job_tallies.lua`: its counts hash ('n:GROUP' tasks, 'l:GROUP' and
/// 'h:GROUP' the ids below and above 10^9, GROUP being the state then ':' and the worker
/// if any) and the ids completed per second of the last minute, as (high, low) pairs.
pub(crate) fn job_tallies(
    counts: &BTreeMap<String, i64>,
    recent: &[Option<i64>],
) -> Result<JobTallies, StoreError> {
    let malformed =
        |what: &str| StoreError::Backend(format!("malformed {what} in job tallies from redis"));
    let ids = |high: i64, low: i64| -> u64 {
        let ids = i128::from(high) * 1_000_000_000 + i128::from(low);
        u64::try_from(ids.max(0)).unwrap_or(u64::MAX)
    };
    let mut blocks = Vec::new();
    for (field, &n) in counts {
        let Some(group) = field.strip_prefix("n:") else {
            continue;
        };
        if n <= 0 {
            continue;
        }
        let (state, worker) = match group.split_once(':') {
            Some((state, worker)) => (state, Some(worker.to_string())),
            None => (group, None),
        };
        let part = |prefix: &str| {
            counts
                .get(&format!("{prefix}:{group}"))
                .copied()
                .unwrap_or(0)
        };
        blocks.push(BlockTally {
            state: state.parse().map_err(|_| malformed("state"))?,
            worker,
            blocks: n as u64,
            ids: ids(part("h"), part("l")),
        });
    }
    let completed = recent
        .chunks(2)
        .map(|pair| {
            ids(
                pair[0].unwrap_or(0),
                pair.get(1).copied().flatten().unwrap_or(0),
            )
        })
        .fold(0u64, u64::saturating_add);
    Ok(JobTallies {
        blocks,
        ids_completed_last_minute: completed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loading_and_io_errors_are_transient_script_errors_are_not() {
        let loading = RedisError::from((
            ErrorKind::Server(ServerErrorKind::BusyLoading),
            "Redis is loading the dataset in memory",
        ));
        assert!(redis_error(loading).is_transient());
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(redis_error(io).is_transient());
        let script = RedisError::from((
            ErrorKind::Server(ServerErrorKind::ResponseError),
            "Error running script",
        ));
        assert!(!redis_error(script).is_transient());
    }

    #[test]
    fn optional_args_keep_empty_strings_distinct() {
        assert_eq!(optional_arg(None), "-");
        assert_eq!(optional_arg(Some("")), "+");
        assert_eq!(optional_arg(Some("k")), "+k");
    }
}
