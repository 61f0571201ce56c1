//! Steering workers from anywhere through the store: send a control command to a worker's
//! mailbox and wait for its acknowledgement (woken by the store's `Commands` notifications).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use wrangle::control::{self, ControlCommand};
//! let store = wrangle::connect("postgres://db/wrangle").await?;
//! let reply = control::send_and_wait(
//!     &store,
//!     "host-1-4242",
//!     ControlCommand::Scale { queue: Some("mail".into()), runners: 3 },
//!     Duration::from_secs(10),
//! )
//! .await?;
//! println!("{}", reply.message);
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;

pub use wrangle_core::worker::{CommandEnvelope, ControlCommand};
use wrangle_core::{Store, StoreError, Topic};

/// A worker's answer to a command.
#[derive(Debug, Clone, PartialEq)]
pub struct Acknowledgement {
    /// Whether the worker did it.
    pub ok: bool,
    /// What it did, or why it could not.
    pub message: String,
    /// The whole envelope, with times.
    pub envelope: CommandEnvelope,
}

/// Why a command got no acknowledgement.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No worker of that name is registered.
    #[error("no worker named '{0}' is registered (see `wrangle workers list`)")]
    UnknownWorker(String),
    /// The worker did not answer in time (it may be busy, stuck or gone).
    #[error("worker '{worker}' did not acknowledge command {id} within {waited:?}")]
    TimedOut {
        /// The worker.
        worker: String,
        /// The command, still in its mailbox.
        id: i64,
        /// How long we waited.
        waited: Duration,
    },
}

/// Sends `command` to `worker`'s mailbox and waits up to `timeout` for its answer.
pub async fn send_and_wait(
    store: &Arc<dyn Store>,
    worker: &str,
    command: ControlCommand,
    timeout: Duration,
) -> Result<Acknowledgement, ControlError> {
    let workers = store.list_workers().await?;
    if !workers.iter().any(|w| w.info.name == worker) {
        return Err(ControlError::UnknownWorker(worker.to_string()));
    }
    let mut listener = store.listen(Topic::Commands).await?;
    let id = store.send_command(worker, command, Utc::now()).await?;
    let started = Instant::now();
    loop {
        let envelope = store
            .get_command(id)
            .await?
            .ok_or(StoreError::CommandNotFound(id))?;
        if envelope.acked_at.is_some() {
            let reply = envelope.reply.clone().unwrap_or(Value::Null);
            let ok = reply.get("ok").and_then(Value::as_bool).unwrap_or(false);
            let message = reply
                .get(if ok { "message" } else { "error" })
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            return Ok(Acknowledgement {
                ok,
                message,
                envelope,
            });
        }
        let Some(left) = timeout.checked_sub(started.elapsed()) else {
            return Err(ControlError::TimedOut {
                worker: worker.to_string(),
                id,
                waited: started.elapsed(),
            });
        };
        // Bounded so a missed notification costs at most a quarter second.
        listener.wait(left.min(Duration::from_millis(250))).await?;
    }
}
