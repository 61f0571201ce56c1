//! The task model and its state machine.
//!
//! ```text
//! scheduled ──(run_at reached)──> available ──claim──> running ──success──> completed
//!                                     ^                   │
//!                                     │                   ├─failure, attempts left──> retryable ──(run_at)──> available
//!                                     └──lease expired────┤
//!                                                         └─failure, attempts used──> dead
//! any non-final state ──cancel──> cancelled
//! ```
//!
//! `completed`, `dead` and `cancelled` are final for the worker loop; only an operator's
//! explicit retry moves `dead` or `cancelled` back to `available`. A completed task never
//! runs again.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A task's identifier: unique within one store, increasing in submission order.
pub type TaskId = i64;

/// Where a task is in its life. See the module documentation for the transitions.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Waiting for its `run_at` (a delayed task).
    Scheduled,
    /// Ready to be claimed.
    Available,
    /// Claimed by a worker that holds a lease on it.
    Running,
    /// Failed, will be available again at its `run_at` (the backoff).
    Retryable,
    /// Succeeded. Final.
    Completed,
    /// Failed with no attempts left, or its lease expired on the last attempt. Final
    /// unless an operator retries it.
    Dead,
    /// Cancelled by an operator. Final unless an operator retries it.
    Cancelled,
}

impl TaskState {
    /// Every state, in life-cycle order.
    pub const ALL: [TaskState; 7] = [
        TaskState::Scheduled,
        TaskState::Available,
        TaskState::Running,
        TaskState::Retryable,
        TaskState::Completed,
        TaskState::Dead,
        TaskState::Cancelled,
    ];

    /// The lowercase name used in stores, the CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Scheduled => "scheduled",
            TaskState::Available => "available",
            TaskState::Running => "running",
            TaskState::Retryable => "retryable",
            TaskState::Completed => "completed",
            TaskState::Dead => "dead",
            TaskState::Cancelled => "cancelled",
        }
    }

    /// A final state is one the worker loop never moves a task out of.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskState::Completed | TaskState::Dead | TaskState::Cancelled
        )
    }

    /// States from which a task becomes claimable once its `run_at` has passed.
    pub fn is_waiting(self) -> bool {
        matches!(
            self,
            TaskState::Scheduled | TaskState::Available | TaskState::Retryable
        )
    }

    /// Whether an operator may cancel a task in this state.
    pub fn can_cancel(self) -> bool {
        !self.is_final()
    }

    /// Whether an operator may ask for a task in this state to run again now.
    /// Completed tasks never run again; running ones are already running.
    pub fn can_retry(self) -> bool {
        matches!(
            self,
            TaskState::Scheduled | TaskState::Retryable | TaskState::Dead | TaskState::Cancelled
        )
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskState {
    type Err = crate::InputError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                crate::InputError::new(format!(
                    "unknown task state '{s}' (expected one of: scheduled, available, running, retryable, completed, dead, cancelled)"
                ))
            })
    }
}

/// A task to be enqueued. Build it with [`NewTask::new`] and the builder methods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTask {
    /// Queue it goes to (`default` unless set).
    pub queue: String,
    /// Which handler runs it.
    pub kind: String,
    /// Arguments for the handler, as JSON.
    pub payload: Value,
    /// Higher runs first.
    pub priority: i32,
    /// Earliest time it may start; `None` means as soon as possible.
    pub run_at: Option<DateTime<Utc>>,
    /// Total attempts allowed, the first included (retries + 1). At least 1.
    pub max_attempts: u32,
    /// Longest one attempt may run before it is killed and counted as failed.
    pub timeout: Option<Duration>,
    /// Submitting again with the same key returns the existing task instead of a new one.
    pub unique_key: Option<String>,
    /// Name of the job this task belongs to, if any.
    pub job: Option<String>,
}

/// The queue a task goes to when none is named.
pub const DEFAULT_QUEUE: &str = "default";

/// Retries a task gets when none are asked for (so 4 attempts in all).
pub const DEFAULT_RETRIES: u32 = 3;

/// The largest payload (as compact JSON) a task may carry unless a larger limit is set
/// (`Client::max_payload`, `wrangle submit --max-payload`). A queue is no place for big
/// data, and every store copies a payload several times on its way: pass a path or a
/// URL instead.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 8 << 20;

/// Counts the bytes serde_json writes, so a payload is measured without a copy.
#[derive(Default)]
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The size of `payload` as compact JSON, in bytes.
pub fn payload_size(payload: &Value) -> usize {
    let mut count = ByteCount::default();
    serde_json::to_writer(&mut count, payload).expect("counting cannot fail");
    count.0
}

impl NewTask {
    /// A task of `kind` with `payload` on the default queue, priority 0, default retries.
    pub fn new(kind: impl Into<String>, payload: Value) -> Self {
        NewTask {
            queue: DEFAULT_QUEUE.to_string(),
            kind: kind.into(),
            payload,
            priority: 0,
            run_at: None,
            max_attempts: DEFAULT_RETRIES + 1,
            timeout: None,
            unique_key: None,
            job: None,
        }
    }

    /// Refuses a payload over `limit` bytes (as compact JSON), with a one-line reason.
    pub fn check_payload_size(&self, limit: usize) -> Result<(), crate::parse::InputError> {
        let size = payload_size(&self.payload);
        if size <= limit {
            return Ok(());
        }
        Err(crate::parse::InputError::new(format!(
            "the payload is {} bytes, over the limit of {limit} bytes: pass a path or URL to the data instead, or raise the limit",
            size
        )))
    }

    /// Puts the task on `queue`.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// Sets the priority (higher runs first).
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Delays the task until `run_at`.
    pub fn run_at(mut self, run_at: DateTime<Utc>) -> Self {
        self.run_at = Some(run_at);
        self
    }

    /// Allows `retries` attempts after the first.
    pub fn retries(mut self, retries: u32) -> Self {
        self.max_attempts = retries.saturating_add(1);
        self
    }

    /// Limits one attempt to `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Makes submission idempotent under `key`.
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    /// Attaches the task to job `job`.
    pub fn job(mut self, job: impl Into<String>) -> Self {
        self.job = Some(job.into());
        self
    }

    /// The state a task enters when enqueued at `now`.
    pub fn initial_state(&self, now: DateTime<Utc>) -> TaskState {
        match self.run_at {
            Some(at) if at > now => TaskState::Scheduled,
            _ => TaskState::Available,
        }
    }

    /// When a task enqueued at `now` becomes due: its `run_at`, never before `now`.
    pub fn initial_run_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.run_at.unwrap_or(now).max(now)
    }

    /// The attempts it is stored with: at least one.
    pub fn stored_max_attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }
}

/// One finished (or abandoned) attempt, kept on the task so that `tasks show` can tell
/// the whole story: who ran it, when, how it ended, and when the next attempt was due.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The worker that ran it.
    pub worker: Option<String>,
    /// When it was claimed.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// `completed`, `failed`, `lease expired`, `released` or `cancelled`.
    pub outcome: String,
    /// The error, for failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the next attempt became due (the backoff), for failures that will be retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<DateTime<Utc>>,
}

/// Everything a store knows about a task.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Identifier.
    pub id: TaskId,
    /// Queue.
    pub queue: String,
    /// Handler name.
    pub kind: String,
    /// Arguments.
    pub payload: Value,
    /// Higher first.
    pub priority: i32,
    /// Current state.
    pub state: TaskState,
    /// When it may (next) run.
    pub run_at: DateTime<Utc>,
    /// Attempts started so far.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Per-attempt time limit.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>))]
    #[serde(with = "duration_ms")]
    pub timeout: Option<Duration>,
    /// Idempotency key.
    pub unique_key: Option<String>,
    /// Parent job.
    pub job: Option<String>,
    /// Result of the successful attempt.
    pub result: Option<Value>,
    /// Error of the last failed attempt; cleared when an attempt succeeds (the attempt
    /// history keeps it).
    pub error: Option<String>,
    /// The worker holding it (running) or that last held it.
    pub worker: Option<String>,
    /// Lease end while running.
    pub lease_until: Option<DateTime<Utc>>,
    /// Submission time.
    pub created_at: DateTime<Utc>,
    /// Start of the current or last attempt.
    pub started_at: Option<DateTime<Utc>>,
    /// End of the last attempt.
    pub finished_at: Option<DateTime<Utc>>,
    /// Attempts that have ended, oldest first.
    pub attempts: Vec<AttemptRecord>,
}

/// Serde helper: an optional duration as whole milliseconds.
pub mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Writes `Some(d)` as milliseconds, `None` as null.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(d.as_millis() as u64),
            None => s.serialize_none(),
        }
    }

    /// Reads milliseconds or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn state_names_round_trip() {
        for state in TaskState::ALL {
            assert_eq!(state.as_str().parse::<TaskState>().unwrap(), state);
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                Value::String(state.as_str().into())
            );
        }
        let err = "finished".parse::<TaskState>().unwrap_err();
        assert!(err.to_string().contains("unknown task state 'finished'"));
    }

    #[test]
    fn final_states_cannot_be_cancelled_and_completed_cannot_be_retried() {
        for state in TaskState::ALL {
            assert_eq!(state.can_cancel(), !state.is_final(), "{state}");
        }
        assert!(!TaskState::Completed.can_retry());
        assert!(!TaskState::Running.can_retry());
        assert!(!TaskState::Available.can_retry());
        assert!(TaskState::Dead.can_retry());
        assert!(TaskState::Cancelled.can_retry());
        assert!(TaskState::Retryable.can_retry());
    }

    #[test]
    fn waiting_states_are_exactly_the_claimable_ones() {
        let waiting: Vec<_> = TaskState::ALL
            .into_iter()
            .filter(|s| s.is_waiting())
            .collect();
        assert_eq!(
            waiting,
            [
                TaskState::Scheduled,
                TaskState::Available,
                TaskState::Retryable
            ]
        );
    }

    #[test]
    fn initial_state_depends_on_run_at() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let task = NewTask::new("k", Value::Null);
        assert_eq!(task.initial_state(now), TaskState::Available);
        let later = task.clone().run_at(now + chrono::Duration::seconds(1));
        assert_eq!(later.initial_state(now), TaskState::Scheduled);
        let past = task.run_at(now - chrono::Duration::seconds(1));
        assert_eq!(past.initial_state(now), TaskState::Available);
    }

    #[test]
    fn builder_sets_fields() {
        let t = NewTask::new("mail", serde_json::json!({"to": "a"}))
            .queue("q")
            .priority(5)
            .retries(2)
            .timeout(Duration::from_secs(3))
            .unique_key("u")
            .job("j");
        assert_eq!(t.queue, "q");
        assert_eq!(t.priority, 5);
        assert_eq!(t.max_attempts, 3);
        assert_eq!(t.timeout, Some(Duration::from_secs(3)));
        assert_eq!(t.unique_key.as_deref(), Some("u"));
        assert_eq!(t.job.as_deref(), Some("j"));
        assert_eq!(
            NewTask::new("k", Value::Null)
                .retries(u32::MAX)
                .max_attempts,
            u32::MAX
        );
    }
}
