//! Waiting for outcomes, shared by every request: one listener on the store's `Outcomes`
//! topic for the whole server bumps a generation counter at each notification, and each
//! waiting request reads its own task once per bump. So a hundred clients waiting cost one
//! listener, and the store is read only when something finished, never on a timer per
//! client. A missed notification (the listener reconnecting) is covered by a bump every
//! [`SAFETY_TICK`], one for all waiters.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use wrangle::{Store, StoreError, Task, TaskId, Topic};

/// How often waiters re-read their task without a notification.
const SAFETY_TICK: Duration = Duration::from_secs(5);

/// The shared wait; cloned into every handler.
#[derive(Clone)]
pub(crate) struct Waiters {
    generation: watch::Receiver<u64>,
    store: Arc<dyn Store>,
}

impl Waiters {
    /// Starts the listener on `store` (it ends when the last `Waiters` is dropped).
    pub(crate) fn start(store: Arc<dyn Store>) -> Waiters {
        let (bump, generation) = watch::channel(0);
        tokio::spawn(listen(store.clone(), bump));
        Waiters { generation, store }
    }

    /// Task `id` once it is final, or as it is when `timeout` has passed.
    pub(crate) async fn wait(&self, id: TaskId, timeout: Duration) -> Result<Task, StoreError> {
        let deadline = Instant::now() + timeout;
        let mut generation = self.generation.clone();
        loop {
            // Marked seen before the read: a bump during the read wakes the next wait.
            generation.borrow_and_update();
            let task = self
                .store
                .get_task(id)
                .await?
                .ok_or(StoreError::TaskNotFound(id))?;
            if task.state.is_final() {
                return Ok(task);
            }
            match tokio::time::timeout_at(deadline, generation.changed()).await {
                Ok(Ok(())) => {}
                // The deadline passed, or the listener task ended with the server.
                Ok(Err(_)) | Err(_) => return Ok(task),
            }
        }
    }
}

/// Bumps the generation at each outcome notification and every [`SAFETY_TICK`].
async fn listen(store: Arc<dyn Store>, bump: watch::Sender<u64>) {
    while !bump.is_closed() {
        let mut listener = match store.listen(Topic::Outcomes).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for outcomes; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        while !bump.is_closed() {
            match listener.wait(SAFETY_TICK).await {
                Ok(_) => {
                    bump.send_modify(|g| *g += 1);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "outcome listener failed; listening again");
                    bump.send_modify(|g| *g += 1);
                    break;
                }
            }
        }
    }
}
