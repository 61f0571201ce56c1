//! Leases: heartbeats extend them, `rescue_expired` returns the tasks of dead workers, and
//! the old holder learns it lost them.

use anyhow::{Result, ensure};
use serde_json::json;
use wrangle_core::TaskState;

use crate::Handle;
use crate::ensure_eq;
use crate::support::{
    at, by_id, claim, claim_ids, claim_one, completion, enqueue, enqueue_one,
    ensure_nothing_claimable, ensure_stale, ensure_state, get, heartbeat, lease, register_workers,
    set, succeed, succeeded, task, tasks,
};

cases![
    rescue_ignores_unexpired_leases,
    expired_lease_returns_task_to_available,
    expired_lease_on_last_attempt_is_dead,
    heartbeat_extends_leases,
    heartbeat_reports_lost_tasks,
    completion_after_rescue_is_stale,
    rescue_respects_limit,
];

/// `rescue_expired` leaves running tasks whose lease has not ended alone.
async fn rescue_ignores_unexpired_leases(a: Handle, b: Handle) -> Result<()> {
    let ids = enqueue(&a, tasks("t", 2), at(0)).await?;
    claim(&a, "w1", 2, at(0)).await?;
    let rescued = b.rescue_expired(at(29), 100).await?;
    ensure!(
        rescued.is_empty(),
        "rescued {rescued:?} a second before their leases end"
    );
    for id in ids {
        ensure_state(&a, id, TaskState::Running).await?;
    }
    Ok(())
}

/// A running task whose lease ended goes back to `available` with its attempt counted
/// and a `lease expired` record, and is claimable at once as the next attempt.
async fn expired_lease_returns_task_to_available(a: Handle, b: Handle) -> Result<()> {
    let id = enqueue_one(&a, task("t"), at(0)).await?;
    claim_one(&a, "w1", at(0)).await?;
    ensure_eq!(b.rescue_expired(at(31), 100).await?, vec![id], "rescued");
    let t = ensure_state(&a, id, TaskState::Available).await?;
    ensure_eq!(t.attempt, 1, "attempts counted");
    ensure_eq!(t.attempts.len(), 1, "attempt records: {:?}", t.attempts);
    let record = &t.attempts[0];
    ensure_eq!(
        (
            record.attempt,
            record.worker.as_deref(),
            record.started_at,
            record.outcome.as_str()
        ),
        (1, Some("w1"), Some(at(0)), "lease expired"),
        "the rescued attempt's record"
    );
    ensure!(
        at(0) + lease() <= record.finished_at && record.finished_at <= at(31),
        "the lease-expired attempt ended at {}, outside its lease end .. rescue",
        record.finished_at
    );
    ensure!(
        b.rescue_expired(at(32), 100).await?.is_empty(),
        "a task was rescued twice"
    );
    let again = claim_one(&b, "w2", at(32)).await?;
    ensure_eq!((again.id, again.attempt), (id, 2), "claim after the rescue");
    Ok(())
}

/// A task whose lease ends on its last attempt goes `dead`, with a `lease expired`
/// record, and is not claimed again.
async fn expired_lease_on_last_attempt_is_dead(a: Handle, b: Handle) -> Result<()> {
    let id = enqueue_one(&a, task("t").retries(0), at(0)).await?;
    claim_one(&a, "w1", at(0)).await?;
    ensure_eq!(b.rescue_expired(at(31), 100).await?, vec![id], "rescued");
    let t = ensure_state(&a, id, TaskState::Dead).await?;
    ensure!(t.finished_at.is_some(), "the dead task has no finished_at");
    let outcomes: Vec<_> = t.attempts.iter().map(|r| r.outcome.as_str()).collect();
    ensure_eq!(outcomes, vec!["lease expired"], "attempt history");
    ensure_nothing_claimable(&b, at(1000)).await
}

/// A heartbeat moves its leases' end, so they are not rescued at the old end but are
/// at the new one; leases it does not name are not extended.
async fn heartbeat_extends_leases(a: Handle, b: Handle) -> Result<()> {
    register_workers(&a, &["w1"]).await?;
    let ids = enqueue(&a, tasks("t", 2), at(0)).await?;
    let claimed = claim(&a, "w1", 2, at(0)).await?;
    let kept = by_id(&claimed, ids[0])?;
    let reply = heartbeat(&b, "w1", vec![(kept.id, kept.attempt)], at(20)).await?;
    ensure!(
        reply.lost.is_empty(),
        "a held task was reported lost: {reply:?}"
    );
    let t = get(&a, ids[0]).await?.lease_until;
    ensure_eq!(t, Some(at(20) + lease()), "lease_until after the heartbeat");
    ensure_eq!(
        b.rescue_expired(at(31), 100).await?,
        vec![ids[1]],
        "rescued at the old lease end"
    );
    ensure!(
        b.rescue_expired(at(49), 100).await?.is_empty(),
        "the extended lease was rescued early"
    );
    ensure_eq!(
        b.rescue_expired(at(51), 100).await?,
        vec![ids[0]],
        "rescued at the new lease end"
    );
    Ok(())
}

/// A heartbeat's `lost` names exactly the tasks its worker no longer holds: cancelled,
/// rescued, and rescued then claimed by another worker; it extends only the rest and
/// does not touch the new holder's lease.
async fn heartbeat_reports_lost_tasks(a: Handle, b: Handle) -> Result<()> {
    register_workers(&a, &["w1", "w2"]).await?;
    let ids = enqueue(
        &a,
        vec![
            task("cancelled"),
            task("reclaimed").priority(2),
            task("kept"),
            task("rescued").priority(1),
        ],
        at(0),
    )
    .await?;
    let [cancelled, reclaimed, kept, rescued] = ids[..] else {
        unreachable!("four tasks enqueued")
    };
    let held: Vec<_> = claim(&a, "w1", 4, at(0))
        .await?
        .iter()
        .map(|c| (c.id, c.attempt))
        .collect();
    ensure_eq!(held.len(), 4, "tasks claimed");
    b.cancel_task(cancelled, at(5)).await?;
    heartbeat(&a, "w1", vec![(kept, 1)], at(10)).await?;
    ensure_eq!(
        set(b.rescue_expired(at(31), 100).await?),
        set([reclaimed, rescued]),
        "rescued"
    );
    ensure_eq!(
        claim_ids(&b, "w2", 1, at(31)).await?,
        vec![reclaimed],
        "claimed by w2"
    );

    let reply = heartbeat(&a, "w1", held, at(32)).await?;
    ensure_eq!(
        set(reply.lost.iter().copied()),
        set([cancelled, reclaimed, rescued]),
        "lost tasks"
    );
    ensure_eq!(
        reply.lost.len(),
        3,
        "lost tasks listed once each: {:?}",
        reply.lost
    );
    ensure_eq!(
        get(&b, kept).await?.lease_until,
        Some(at(32) + lease()),
        "lease of the kept task"
    );
    let r = ensure_state(&b, reclaimed, TaskState::Running).await?;
    ensure_eq!(
        (r.worker.as_deref(), r.attempt, r.lease_until),
        (Some("w2"), 2, Some(at(31) + lease())),
        "the reclaimed task's holder, attempt and lease"
    );
    ensure_state(&b, rescued, TaskState::Available).await?;
    ensure_state(&b, cancelled, TaskState::Cancelled).await?;
    Ok(())
}

/// After a rescue the old holder's completion is stale, both while the task waits and
/// once another worker reclaimed it (whichever attempt it names); the new holder's
/// completion applies.
async fn completion_after_rescue_is_stale(a: Handle, b: Handle) -> Result<()> {
    let id = enqueue_one(&a, task("t"), at(0)).await?;
    let old = claim_one(&a, "w1", at(0)).await?;
    ensure_eq!(b.rescue_expired(at(31), 10).await?, vec![id], "rescued");
    ensure_stale(&a, completion(&old, "w1", succeeded(json!("late"))), at(32)).await?;
    let new = claim_one(&b, "w2", at(33)).await?;
    ensure_stale(&a, completion(&old, "w1", succeeded(json!("late"))), at(34)).await?;
    ensure_stale(&a, completion(&new, "w1", succeeded(json!("late"))), at(34)).await?;
    succeed(&b, &new, "w2", at(35)).await?;
    let t = ensure_state(&a, id, TaskState::Completed).await?;
    ensure_eq!(
        (t.attempt, t.worker.as_deref()),
        (2, Some("w2")),
        "the completing attempt"
    );
    Ok(())
}

/// `rescue_expired` moves at most `limit` tasks per call; further calls move the rest.
async fn rescue_respects_limit(a: Handle, b: Handle) -> Result<()> {
    let ids = enqueue(&a, tasks("t", 5), at(0)).await?;
    claim(&a, "w1", 5, at(0)).await?;
    let first = b.rescue_expired(at(31), 2).await?;
    ensure_eq!(first.len(), 2, "tasks rescued with limit 2");
    let rest = b.rescue_expired(at(31), 10).await?;
    ensure_eq!(rest.len(), 3, "tasks rescued by the next call");
    ensure_eq!(
        set(first.into_iter().chain(rest)),
        set(ids),
        "every expired task rescued once"
    );
    Ok(())
}
