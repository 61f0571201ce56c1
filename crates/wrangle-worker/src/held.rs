//! The tasks a worker holds: claimed and not yet recorded as finished.
//!
//! The heartbeat extends exactly these leases; a task the store reports lost is cancelled
//! here and marked so that its outcome is not written (the store would refuse it anyway).

use std::collections::HashMap;
use std::sync::Mutex;

use tokio_util::sync::CancellationToken;
use wrangle_core::TaskId;

#[derive(Debug)]
struct Held {
    attempt: u32,
    cancel: CancellationToken,
    lost: bool,
}

/// Shared table of held tasks.
#[derive(Debug, Default)]
pub(crate) struct HeldTasks {
    tasks: Mutex<HashMap<TaskId, Held>>,
}

impl HeldTasks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TaskId, Held>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn insert(&self, id: TaskId, attempt: u32, cancel: CancellationToken) {
        self.lock().insert(
            id,
            Held {
                attempt,
                cancel,
                lost: false,
            },
        );
    }

    /// Forgets tasks whose outcome is recorded.
    pub(crate) fn remove_all(&self, ids: impl IntoIterator<Item = TaskId>) {
        let mut tasks = self.lock();
        for id in ids {
            tasks.remove(&id);
        }
    }

    /// Every held lease, for the heartbeat.
    pub(crate) fn leases(&self) -> Vec<(TaskId, u32)> {
        let mut leases: Vec<_> = self.lock().iter().map(|(id, h)| (*id, h.attempt)).collect();
        leases.sort_unstable();
        leases
    }

    /// Cancels tasks the store says this worker no longer holds.
    pub(crate) fn mark_lost(&self, ids: &[TaskId]) {
        let mut tasks = self.lock();
        for id in ids {
            if let Some(held) = tasks.get_mut(id) {
                held.lost = true;
                held.cancel.cancel();
            }
        }
    }

    /// Whether the store took `id` away from this worker.
    pub(crate) fn is_lost(&self, id: TaskId) -> bool {
        self.lock().get(&id).is_some_and(|h| h.lost)
    }
}
