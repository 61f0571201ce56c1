//! The tasks a worker holds: claimed and not yet recorded as finished.
//!
//! The heartbeat extends exactly these leases; a task the store reports lost while it is
//! still running is cancelled here and marked so that its outcome is not written (the store
//! would refuse it anyway).
//!
//! A task whose attempt has ended is *finishing*: its outcome is on its way to the store,
//! and it stays held (its lease extended) until the outcome is recorded. A heartbeat can
//! reach the store just after that outcome and hear the task is no longer this worker's;
//! that is the outcome arriving, not a loss, so a finishing task is never marked lost here:
//! the completer learns from the store whether its outcome was applied or stale.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio_util::sync::CancellationToken;
use wrangle_core::TaskId;

#[derive(Debug)]
struct Held {
    attempt: u32,
    cancel: CancellationToken,
    lost: bool,
    /// The attempt ended; its outcome is being recorded.
    finishing: bool,
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
                finishing: false,
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

    /// The attempt of `id` ended: its outcome goes to the store next.
    pub(crate) fn finishing(&self, id: TaskId) {
        if let Some(held) = self.lock().get_mut(&id) {
            held.finishing = true;
        }
    }

    /// Cancels the still running tasks among those the store says this worker no longer
    /// holds (cancelled, or rescued after the lease expired), and returns them. Tasks not
    /// held any more or finishing are left alone (see the module documentation).
    pub(crate) fn mark_lost(&self, ids: &[TaskId]) -> Vec<TaskId> {
        let mut tasks = self.lock();
        let mut stopped = Vec::new();
        for id in ids {
            if let Some(held) = tasks.get_mut(id)
                && !held.finishing
            {
                held.lost = true;
                held.cancel.cancel();
                stopped.push(*id);
            }
        }
        stopped
    }

    /// Whether the store took `id` away from this worker.
    pub(crate) fn is_lost(&self, id: TaskId) -> bool {
        self.lock().get(&id).is_some_and(|h| h.lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_running_tasks_are_marked_lost() {
        let held = HeldTasks::default();
        let (running, done) = (CancellationToken::new(), CancellationToken::new());
        held.insert(1, 1, running.clone());
        held.insert(2, 1, done.clone());
        held.finishing(2);
        // 3 is not held at all (its outcome was recorded before the reply came back).
        assert_eq!(held.mark_lost(&[1, 2, 3]), vec![1]);
        assert!(running.is_cancelled() && held.is_lost(1));
        assert!(!done.is_cancelled() && !held.is_lost(2));
    }
}
