//! Keeps the worker's leases and registration alive, rescues expired leases (of any
//! worker: whoever notices first), prunes workers that stopped heartbeating, and tells the
//! control server when commands wait in the mailbox.
//!
//! One heartbeat is one round trip however many tasks are held. It runs every third of
//! the lease, so two missed beats in a row still leave the lease intact.

use std::sync::Arc;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use wrangle_core::store::Heartbeat;

use crate::Shared;

/// Most expired leases rescued per beat.
const RESCUE_BATCH: usize = 1000;
/// Beats between two prunes of lost workers: one per lease (three beats) is often enough
/// for a limit of `LOST_AFTER_LEASES` (five) leases.
const PRUNE_EVERY_BEATS: u32 = 3;

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
        match store.rescue_expired(now, RESCUE_BATCH).await {
            Ok(rescued) if !rescued.is_empty() => {
                tracing::warn!(tasks = ?rescued, "rescued tasks whose worker stopped heartbeating");
            }
            Ok(_) => {}
            Err(err) => tracing::debug!(error = %err, "rescue failed"),
        }
        beats += 1;
        if beats.is_multiple_of(PRUNE_EVERY_BEATS) {
            prune_lost_workers(&shared, now).await;
        }
    }
}

/// Removes workers silent for `LOST_AFTER_LEASES` of their own leases (status shows them
/// as lost before that): one store call that sends no worker's record, whatever the size
/// of the fleet.
async fn prune_lost_workers(shared: &Shared, now: chrono::DateTime<Utc>) {
    match shared.store.prune_lost_workers(now).await {
        Ok(gone) if !gone.is_empty() => {
            tracing::warn!(workers = ?gone, "removed lost workers from the registry");
        }
        Ok(_) => {}
        Err(err) => tracing::debug!(error = %err, "could not prune lost workers"),
    }
}
