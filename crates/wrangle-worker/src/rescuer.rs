//! Rescue, one maintenance duty: returns the tasks of workers that stopped heartbeating to
//! the queue (or to `dead` on their last attempt), and removes those workers from the
//! registry once they have been silent for `LOST_AFTER_LEASES` of their own leases.
//!
//! Every worker does it, after each of its heartbeats (see [`crate::heartbeat`]): whoever
//! notices an expired lease first rescues it, and the store's rescue is atomic, so many
//! rescuers never rescue a task twice. Unlike pruning, rescue is not done in turns: a
//! stuck holder of a turn would hold up every lost task behind it.

use chrono::{DateTime, Utc};

use crate::Shared;

/// Most expired leases rescued per beat.
const RESCUE_BATCH: usize = 1000;
/// Beats between two prunes of lost workers: one per lease (three beats) is often enough
/// for a limit of `LOST_AFTER_LEASES` (five) leases.
const PRUNE_EVERY_BEATS: u32 = 3;

/// The duty after beat number `beats` (from 1) at `now`.
pub(crate) async fn after_beat(shared: &Shared, now: DateTime<Utc>, beats: u32) {
    match shared.store.rescue_expired(now, RESCUE_BATCH).await {
        Ok(rescued) if !rescued.is_empty() => {
            tracing::warn!(tasks = ?rescued, "rescued tasks whose worker stopped heartbeating");
        }
        Ok(_) => {}
        Err(err) => tracing::debug!(error = %err, "rescue failed"),
    }
    if beats.is_multiple_of(PRUNE_EVERY_BEATS) {
        prune_lost_workers(shared, now).await;
    }
}

/// Removes workers silent for `LOST_AFTER_LEASES` of their own leases (status shows them
/// as lost before that): one store call that sends no worker's record, whatever the size
/// of the fleet.
async fn prune_lost_workers(shared: &Shared, now: DateTime<Utc>) {
    match shared.store.prune_lost_workers(now).await {
        Ok(gone) if !gone.is_empty() => {
            tracing::warn!(workers = ?gone, "removed lost workers from the registry");
        }
        Ok(_) => {}
        Err(err) => tracing::debug!(error = %err, "could not prune lost workers"),
    }
}
