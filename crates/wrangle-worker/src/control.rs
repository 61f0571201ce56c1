//! Live control of a running worker: scale its pool groups, reload its handlers, pause a
//! queue, stop it. Commands come from two places and go through one function
//! ([`Controller::apply`]):
//!
//! - the store's mailbox (`wrangle workers scale|reload|stop`, the console, from any
//!   machine): read when the `Commands` topic wakes the mailbox reader (or a heartbeat
//!   says commands wait), acknowledged with the reply the sender waits for;
//! - this process, through a [`WorkerControl`] handle (the CLI's signals: HUP reload,
//!   TTIN/TTOU one runner more/less).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use wrangle_core::pool::{MAX_GROUP_RUNNERS, PoolGroup};
use wrangle_core::store::Topic;
use wrangle_core::worker::ControlCommand;

use crate::group::Group;
use crate::{Shared, spawn_claim_loop};

/// What a control request asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum ControlOp {
    /// The command as sent through the store.
    Command(ControlCommand),
    /// One runner more (positive) or fewer, in the worker's first group (TTIN/TTOU).
    ScaleBy(i32),
}

type Reply = Result<String, String>;

/// A handle to steer a running worker from its own process; cheap to clone. Every request
/// is answered with what the worker did (`Ok`) or why it could not (`Err`).
#[derive(Debug, Clone)]
pub struct WorkerControl {
    requests: mpsc::UnboundedSender<(ControlOp, oneshot::Sender<Reply>)>,
}

impl WorkerControl {
    pub(crate) fn channel() -> (
        WorkerControl,
        mpsc::UnboundedReceiver<(ControlOp, oneshot::Sender<Reply>)>,
    ) {
        let (requests, receiver) = mpsc::unbounded_channel();
        (WorkerControl { requests }, receiver)
    }

    /// Sends `op` and waits for the worker's answer.
    pub async fn request(&self, op: ControlOp) -> Reply {
        let (reply_tx, reply_rx) = oneshot::channel();
        self.requests
            .send((op, reply_tx))
            .map_err(|_| "the worker is not running".to_string())?;
        reply_rx
            .await
            .unwrap_or_else(|_| Err("the worker stopped before answering".into()))
    }
}

/// Applies control requests to a running worker.
pub(crate) struct Controller {
    pub(crate) shared: Arc<Shared>,
}

impl Controller {
    /// Does what `op` asks; the reply says what changed.
    pub(crate) async fn apply(&self, op: ControlOp) -> Reply {
        let reply = match op {
            ControlOp::Command(ControlCommand::Scale { queue, runners }) => {
                self.scale(queue.as_deref(), runners)
            }
            ControlOp::ScaleBy(delta) => {
                let first = self.shared.groups()[0].clone();
                let runners =
                    (first.target() as i64 + delta as i64).clamp(0, MAX_GROUP_RUNNERS as i64);
                self.scale(Some(&first.name), runners as u32)
            }
            ControlOp::Command(ControlCommand::Reload) => self.reload(),
            ControlOp::Command(ControlCommand::ReloadRunner { runner }) => {
                self.shared.reload_runner(runner).await
            }
            ControlOp::Command(ControlCommand::Pause { queue }) => self.pause(&queue, true).await,
            ControlOp::Command(ControlCommand::Resume { queue }) => self.pause(&queue, false).await,
            ControlOp::Command(ControlCommand::Stop) => {
                self.shared.loops.stop_claiming.cancel();
                Ok("stopping: no new claims, finishing running tasks".into())
            }
        };
        match &reply {
            Ok(message) => tracing::info!("control: {message}"),
            Err(error) => tracing::warn!("control refused: {error}"),
        }
        // Show the change in `status` at once, not at the next heartbeat.
        if let Err(err) = self
            .shared
            .store
            .register_worker(self.shared.info(), self.shared.config.now())
            .await
        {
            tracing::debug!(error = %err, "could not refresh the worker's registration");
        }
        reply
    }

    /// Reads the configuration again: the pool is changed as it now says (groups added,
    /// resized or retired, each gracefully, as `scale` does), then new tasks get the new
    /// handlers and runner processes restart after their current tasks.
    fn reload(&self) -> Reply {
        let reloaded = self.shared.build_reload()?;
        let changes = match &reloaded.pool {
            Some(pool) => self.apply_pool(pool)?,
            None => Vec::new(),
        };
        let kinds = self.shared.swap_registry(reloaded.registry);
        let pool = if changes.is_empty() {
            String::new()
        } else {
            format!("; pool: {}", changes.join(", "))
        };
        Ok(format!(
            "reloaded ({kinds} kinds): new tasks use the new handlers; runner processes restart after their current tasks{pool}"
        ))
    }

    /// Applies what the configuration's pool changed since it was last read: groups
    /// added or resized there are scaled to their new size, groups taken out are scaled
    /// to 0 (their runners finish their tasks); groups the file left alone keep the
    /// runners they have (a `workers scale` meanwhile stands). What changed, one phrase
    /// per group.
    fn apply_pool(&self, pool: &[PoolGroup]) -> Result<Vec<String>, String> {
        let before = std::mem::replace(
            &mut *self
                .shared
                .configured_pool
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
            pool.to_vec(),
        );
        let mut changes = Vec::new();
        for wanted in pool.iter().filter(|wanted| !before.contains(wanted)) {
            changes.push(self.scale(Some(&wanted.name), wanted.runners)?);
        }
        for gone in before
            .iter()
            .filter(|g| !pool.iter().any(|w| w.name == g.name))
        {
            self.scale(Some(&gone.name), 0)?;
            changes.push(format!(
                "group {} removed (its runners finish their tasks first)",
                gone.name
            ));
        }
        Ok(changes)
    }

    /// Sets a group's runners; a group not in the pool yet is added.
    fn scale(&self, group: Option<&str>, runners: u32) -> Reply {
        if runners > MAX_GROUP_RUNNERS {
            return Err(format!("at most {MAX_GROUP_RUNNERS} runners per group"));
        }
        let groups = self.shared.groups();
        let target: Arc<Group> = match group {
            None if groups.len() == 1 => groups[0].clone(),
            None => {
                let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
                return Err(format!(
                    "this worker has {} pool groups; name one: {}",
                    groups.len(),
                    names.join(", ")
                ));
            }
            Some(name) => match groups.iter().find(|g| g.name == name) {
                Some(group) => group.clone(),
                None => {
                    let added = PoolGroup::new(name, runners).map_err(|e| e.to_string())?;
                    let group = self.shared.add_group(&added);
                    spawn_claim_loop(&self.shared, group);
                    self.shared.resize_executors();
                    return Ok(format!("added group {name} with {runners} runners"));
                }
            },
        };
        let previous = target.set_target(runners as usize);
        self.shared.resize_executors();
        let busy = target.running();
        let note = if busy > runners as usize {
            format!(
                "; {} removed runners finish their tasks first",
                busy - runners as usize
            )
        } else {
            String::new()
        };
        Ok(format!(
            "group {}: {previous} -> {runners} runners{note}",
            target.name
        ))
    }

    async fn pause(&self, queue: &str, paused: bool) -> Reply {
        self.shared
            .store
            .set_queue_paused(queue, paused)
            .await
            .map_err(|e| e.to_string())?;
        Ok(format!(
            "queue {queue} {} for every worker",
            if paused { "paused" } else { "resumed" }
        ))
    }
}

/// Serves control requests from this process and from the store's mailbox until `stop`.
pub(crate) async fn serve(
    controller: Controller,
    mut local: mpsc::UnboundedReceiver<(ControlOp, oneshot::Sender<Reply>)>,
    stop: CancellationToken,
) {
    let store = controller.shared.store.clone();
    let name = controller.shared.config.name.clone();
    let mut listener = store.listen(Topic::Commands).await.ok();
    // Commands sent while the worker was starting.
    let mut check_mailbox = true;
    let mut local_open = true;
    loop {
        if check_mailbox {
            check_mailbox = false;
            match store.pending_commands(&name).await {
                Ok(commands) => {
                    for envelope in commands {
                        let reply =
                            match controller.apply(ControlOp::Command(envelope.command)).await {
                                Ok(message) => json!({"ok": true, "message": message}),
                                Err(error) => json!({"ok": false, "error": error}),
                            };
                        if let Err(err) = store
                            .ack_command(envelope.id, reply, controller.shared.config.now())
                            .await
                        {
                            tracing::warn!(error = %err, command = envelope.id, "could not acknowledge command");
                        }
                    }
                }
                Err(err) => tracing::debug!(error = %err, "could not read the mailbox"),
            }
        }
        let wait_for_mail = async {
            match listener.as_mut() {
                Some(listener) => listener.wait(Duration::from_secs(5)).await.unwrap_or(false),
                None => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    true
                }
            }
        };
        tokio::select! {
            request = local.recv(), if local_open => match request {
                Some((op, reply)) => {
                    let _ = reply.send(controller.apply(op).await);
                }
                None => local_open = false,
            },
            woke = wait_for_mail => check_mailbox = woke,
            _ = controller.shared.mailbox_nudge.notified() => check_mailbox = true,
            _ = stop.cancelled() => return,
        }
    }
}
