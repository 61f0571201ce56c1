//! Keeps the worker's leases and registration alive and tells the control server when
//! commands wait in the mailbox; after each beat it runs the [`rescuer`](crate::rescuer)
//! (expired leases, lost workers), whose pace is the heartbeat's.
//!
//! One heartbeat is one round trip however many tasks are held. It runs every third of
//! the lease, so two missed beats in a row still leave the lease intact.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use wrangle_core::store::Heartbeat;

use crate::Shared;

pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let store = &shared.store;
    let config = &shared.config;
    let mut tick = tokio::time::interval(config.lease / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut outage_logged = false;
    let mut beats: u32 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let now = config.now();
        let leases = shared.held.leases();
        let beat = Heartbeat {
            worker: shared.info_holding(leases.iter().map(|(id, _)| *id).collect()),
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
        let stopped = shared.held.mark_lost(&reply.lost);
        if !stopped.is_empty() {
            tracing::warn!(tasks = ?stopped, "tasks taken from this worker (cancelled, or lease expired and rescued); stopping them");
        }
        if reply.commands_waiting {
            shared.mailbox_nudge.notify_one();
        }
        beats += 1;
        crate::rescuer::after_beat(&shared, now, beats).await;
    }
}
