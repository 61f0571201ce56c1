//! What a worker tells the store about itself, and the control commands other processes
//! send it through the store (its mailbox), from any machine.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::TaskId;

/// A worker's self-description, refreshed with every heartbeat (and at once after a
/// control command changed it).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Unique name (default `HOST-PID`).
    pub name: String,
    /// Host it runs on.
    pub host: String,
    /// Its process id on that host (informational only: liveness is decided by heartbeats).
    pub pid: u32,
    /// Queues it claims from; empty means every queue.
    pub queues: Vec<String>,
    /// Runner slots (concurrent tasks).
    pub runners: u32,
    /// Tasks it holds right now: executing, or finished with the outcome not yet
    /// recorded (see [`WorkerInfo::executing`] and [`WorkerInfo::finishing`]).
    pub tasks: Vec<TaskId>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// wrangle version.
    pub version: String,
    /// Its pool groups, each with its runners (one group for a worker without a pool).
    #[serde(default)]
    pub pool: Vec<GroupInfo>,
    /// Its long-lived runner processes (runner-protocol handlers), if any.
    #[serde(default)]
    pub processes: Vec<ProcessInfo>,
    /// The worker process's resident memory, in bytes (0 where unknown).
    #[serde(default)]
    pub rss_bytes: u64,
    /// Its autoscale range `(min, max)`, if it autoscales.
    #[serde(default)]
    pub autoscale: Option<(u32, u32)>,
    /// Its lease in milliseconds: it heartbeats every third of it, so a worker silent for
    /// longer is lost (0 where unknown).
    #[serde(default)]
    pub lease_ms: u64,
}

/// A worker silent for more than this many of its own leases is removed from the registry
/// ([`Store::prune_lost_workers`](crate::Store::prune_lost_workers)); `status` shows it as
/// lost after one.
pub const LOST_AFTER_LEASES: i32 = 5;

impl WorkerInfo {
    /// Tasks its runners are executing right now (what its pool groups report).
    pub fn executing(&self) -> usize {
        self.pool.iter().map(|g| g.tasks.len()).sum()
    }

    /// Tasks it holds whose attempt has ended, with the outcome on its way to the store
    /// (outcomes are written in batches): the store still counts them as running.
    pub fn finishing(&self) -> usize {
        self.tasks.len().saturating_sub(self.executing())
    }
}

impl WorkerRecord {
    /// Whether the worker has missed heartbeats for a whole lease at `now`: its tasks are
    /// being rescued, and it is presumably gone.
    pub fn is_lost(&self, now: DateTime<Utc>) -> bool {
        self.silent_for_leases(now, 1)
    }

    /// Whether the worker has been silent for more than `leases` of its own leases at
    /// `now` (never, for a worker that did not say its lease).
    pub fn silent_for_leases(&self, now: DateTime<Utc>, leases: i32) -> bool {
        let lease = chrono::Duration::milliseconds(self.info.lease_ms as i64);
        self.info.lease_ms > 0 && now - self.last_seen > lease * leases
    }
}

/// One pool group of a worker, as `status WORKER` shows it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    /// Its name: the queue list as written (`*` for every queue).
    pub name: String,
    /// Runners it has (the target, while runners being removed finish their tasks).
    pub runners: u32,
    /// Tasks its runners are running.
    pub tasks: Vec<TaskId>,
}

/// A long-lived runner process of a worker.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// The task kind it serves.
    pub kind: String,
    /// Its runner number (1-based, `WRANGLE_RUNNER`).
    pub runner: u32,
    /// Its process id.
    pub pid: u32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Tasks it holds now.
    pub tasks: u32,
    /// Its resident memory, in bytes (0 where unknown).
    pub rss_bytes: u64,
    /// Times this runner was started again after its process ended.
    pub restarts: u32,
}

/// A registered worker as the store sees it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// What the worker last said about itself.
    pub info: WorkerInfo,
    /// Its last heartbeat.
    pub last_seen: DateTime<Utc>,
}

/// A command sent to a worker through the store.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "lowercase")]
pub enum ControlCommand {
    /// Set the number of runners (for one queue of a pool, or the whole worker).
    Scale {
        /// The pool entry to change; `None` for the whole worker.
        queue: Option<String>,
        /// Desired runners.
        runners: u32,
    },
    /// Stop claiming from a queue.
    Pause {
        /// The queue.
        queue: String,
    },
    /// Claim from a paused queue again.
    Resume {
        /// The queue.
        queue: String,
    },
    /// Restart runner processes gracefully, picking up new code and config.
    Reload,
    /// Replace one runner's process (runner `runner` of every runner kind) after its
    /// current tasks: DScript's reload of the script on one runner.
    #[serde(rename = "reload-runner")]
    ReloadRunner {
        /// The runner's number (1..N, as `wrangle status WORKER` lists its processes).
        runner: u32,
    },
    /// Shut down gracefully.
    Stop,
}

/// Identifier of a sent command.
pub type CommandId = i64;

/// A command in a worker's mailbox, with its acknowledgement once the worker has acted.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandEnvelope {
    /// Identifier, for waiting on the acknowledgement.
    pub id: CommandId,
    /// Addressee.
    pub worker: String,
    /// What to do.
    pub command: ControlCommand,
    /// When it was sent.
    pub sent_at: DateTime<Utc>,
    /// When the worker acknowledged it.
    pub acked_at: Option<DateTime<Utc>>,
    /// The worker's reply (what it did, or why it could not).
    pub reply: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_serialize_with_a_tag() {
        let cmd = ControlCommand::Scale {
            queue: Some("a".into()),
            runners: 3,
        };
        let json = serde_json::to_value(&cmd).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"command": "scale", "queue": "a", "runners": 3})
        );
        assert_eq!(serde_json::from_value::<ControlCommand>(json).unwrap(), cmd);
        assert_eq!(
            serde_json::to_value(ControlCommand::Stop).unwrap(),
            serde_json::json!({"command": "stop"})
        );
        let one = ControlCommand::ReloadRunner { runner: 2 };
        let json = serde_json::to_value(&one).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"command": "reload-runner", "runner": 2})
        );
        assert_eq!(serde_json::from_value::<ControlCommand>(json).unwrap(), one);
    }
}
