//! Keeps the worker's leases and registration alive, rescues expired leases (of any
//! worker: whoever notices first), and reads the worker's mailbox.
//!
//! One heartbeat is one round trip however many tasks are held. It runs every third of
//! the lease, so two missed beats in a row still leave the lease intact.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use wrangle_core::store::{Heartbeat, Store};
use wrangle_core::worker::ControlCommand;

use crate::WorkerConfig;
use crate::held::HeldTasks;

/// Most expired leases rescued per beat.
const RESCUE_BATCH: usize = 1000;

pub(crate) async fn run(
    store: Arc<dyn Store>,
    config: Arc<WorkerConfig>,
    held: Arc<HeldTasks>,
    stop_claiming: CancellationToken,
    stop: CancellationToken,
    started_at: DateTime<Utc>,
) {
    let mut tick = tokio::time::interval(config.lease / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut outage_logged = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let now = Utc::now();
        let leases = held.leases();
        let info = config.info(leases.iter().map(|(id, _)| *id).collect(), started_at);
        let beat = Heartbeat {
            worker: info,
            leases,
            lease_until: now + chrono::Duration::from_std(config.lease).unwrap_or_default(),
            now,
        };
        let reply = match store.heartbeat(beat).await {
            Ok(reply) => {
                if outage_logged {
                    tracing::info!("store reachable again");
                    outage_logged = false;
                }
                reply
            }
            Err(err) => {
                if !outage_logged {
                    tracing::warn!(error = %err, "heartbeat failed; will keep trying");
                    outage_logged = true;
                }
                continue;
            }
        };
        if !reply.lost.is_empty() {
            tracing::warn!(tasks = ?reply.lost, "lost tasks (cancelled, or lease expired and rescued); stopping them");
            held.mark_lost(&reply.lost);
        }
        match store.rescue_expired(now, RESCUE_BATCH).await {
            Ok(rescued) if !rescued.is_empty() => {
                tracing::warn!(tasks = ?rescued, "rescued tasks whose worker stopped heartbeating");
            }
            Ok(_) => {}
            Err(err) => tracing::debug!(error = %err, "rescue failed"),
        }
        if reply.commands_waiting {
            obey_commands(store.as_ref(), &config.name, &stop_claiming).await;
        }
    }
}

/// Acts on the mailbox. `stop` is obeyed here; the other commands belong to worker pools
/// and are answered as unsupported by this worker.
async fn obey_commands(store: &dyn Store, name: &str, stop_claiming: &CancellationToken) {
    let Ok(commands) = store.pending_commands(name).await else {
        return;
    };
    for envelope in commands {
        let reply = match envelope.command {
            ControlCommand::Stop => {
                stop_claiming.cancel();
                json!({"ok": true, "message": "stopping: no new claims, finishing running tasks"})
            }
            other => {
                json!({"ok": false, "error": format!("{other:?} is not supported by this worker")})
            }
        };
        if let Err(err) = store.ack_command(envelope.id, reply, Utc::now()).await {
            tracing::warn!(error = %err, command = envelope.id, "could not acknowledge command");
        }
    }
}
