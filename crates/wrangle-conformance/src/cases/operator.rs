//! Operator actions: cancel, retry, retry-dead, listing and pruning.

use std::collections::BTreeMap;

use anyhow::{Result, ensure};
use chrono::{DateTime, Utc};
use wrangle_core::{NewTask, PruneRequest, StoreError, TaskFilter, TaskId, TaskState};

use crate::Handle;
use crate::ensure_eq;
use crate::support::{
    all_tasks, at, claim, claim_one, complete_as, completion, enqueue_one,
    ensure_invalid_transition, ensure_nothing_claimable, ensure_state, ensure_task_not_found,
    failed, get, list_ids, set, task, task_in_state,
};

cases![
    cancel_from_each_non_final_state,
    cancel_of_final_state_is_invalid,
    retry_makes_task_available_now,
    retry_of_exhausted_task_grants_one_more_attempt,
    retry_of_completed_running_or_available_is_invalid,
    unknown_task_is_not_found,
    cancel_and_retry_many_skip_what_they_cannot_move,
    retry_dead_moves_only_that_queues_dead_tasks,
    list_tasks_filters_newest_first_and_pages,
    prune_finished_deletes_only_old_final_tasks,
    prune_finished_respects_limit,
    prune_takes_one_state_oldest_first,
];

/// Cancel moves a scheduled, available, retryable or running task to `cancelled`
/// (stamping `finished_at`), returns it, and it is never claimed again.
async fn cancel_from_each_non_final_state(a: Handle, b: Handle) -> Result<()> {
    use TaskState::{Available, Retryable, Running, Scheduled};
    let mut ids = Vec::new();
    for state in [Running, Retryable, Scheduled, Available] {
        ids.push((state, task_in_state(&a, task("t"), state, at(0)).await?));
    }
    for (state, id) in ids {
        ensure_state(&a, id, state).await?;
        let returned = b.cancel_task(id, at(5)).await?;
        ensure_eq!(
            (returned.id, returned.state),
            (id, TaskState::Cancelled),
            "cancel of a {state} task returns"
        );
        let t = ensure_state(&a, id, TaskState::Cancelled).await?;
        ensure_eq!(
            t.finished_at,
            Some(at(5)),
            "finished_at of the cancelled {state} task"
        );
    }
    ensure_nothing_claimable(&b, at(100_000)).await
}

/// Cancelling a completed, dead or cancelled task is an invalid transition and changes
/// nothing.
async fn cancel_of_final_state_is_invalid(a: Handle, b: Handle) -> Result<()> {
    for state in [TaskState::Completed, TaskState::Dead, TaskState::Cancelled] {
        let id = task_in_state(&a, task("t"), state, at(0)).await?;
        let before = get(&a, id).await?;
        ensure_invalid_transition(b.cancel_task(id, at(1)).await, id, state, "cancel")?;
        ensure_eq!(
            get(&a, id).await?,
            before,
            "the {state} task after a refused cancel"
        );
    }
    Ok(())
}

/// Retry makes a dead, cancelled, retryable or scheduled task `available` and claimable
/// now, keeping its attempt count when it has attempts left.
async fn retry_makes_task_available_now(a: Handle, b: Handle) -> Result<()> {
    use TaskState::{Cancelled, Dead, Retryable, Scheduled};
    let mut ids = Vec::new();
    for (state, attempts_used) in [(Dead, 1), (Retryable, 1), (Cancelled, 0), (Scheduled, 0)] {
        ids.push((
            state,
            attempts_used,
            task_in_state(&a, task("t"), state, at(0)).await?,
        ));
    }
    for &(state, _, id) in &ids {
        let returned = b.retry_task(id, at(10)).await?;
        ensure_eq!(
            (returned.id, returned.state),
            (id, TaskState::Available),
            "retry of a {state} task returns"
        );
        ensure!(
            returned.run_at <= at(10),
            "the retried {state} task is due only at {}",
            returned.run_at
        );
        ensure_state(&a, id, TaskState::Available).await?;
    }
    let claimed = claim(&a, "w1", 10, at(10)).await?;
    ensure_eq!(
        set(claimed.iter().map(|c| c.id)),
        set(ids.iter().map(|i| i.2)),
        "claimed after the retries"
    );
    for (state, attempts_used, id) in ids {
        let c = claimed.iter().find(|c| c.id == id).expect("checked above");
        ensure_eq!(
            c.attempt,
            attempts_used + 1,
            "attempt of the retried {state} task"
        );
    }
    Ok(())
}

/// Retrying a task out of attempts (dead after its last attempt) grants exactly one more:
/// it runs as its last attempt and a failure makes it dead again.
async fn retry_of_exhausted_task_grants_one_more_attempt(a: Handle, b: Handle) -> Result<()> {
    let id = enqueue_one(&a, task("t").retries(0), at(0)).await?;
    let first = claim_one(&a, "w1", at(0)).await?;
    complete_as(
        &a,
        completion(&first, "w1", failed("one", Some(at(5)))),
        at(1),
        TaskState::Dead,
    )
    .await?;
    ensure_eq!(
        b.retry_task(id, at(10)).await?.state,
        TaskState::Available,
        "state after retry"
    );
    let again = claim_one(&b, "w1", at(10)).await?;
    ensure_eq!(again.id, id, "claimed task");
    ensure_eq!(
        again.attempt,
        again.max_attempts,
        "the granted attempt is the last (attempt of allowed)"
    );
    complete_as(
        &b,
        completion(&again, "w1", failed("two", Some(at(20)))),
        at(11),
        TaskState::Dead,
    )
    .await?;
    let outcomes: Vec<_> = get(&a, id)
        .await?
        .attempts
        .into_iter()
        .map(|r| r.outcome)
        .collect();
    ensure_eq!(outcomes, vec!["failed", "failed"], "attempt history");
    Ok(())
}

/// Retrying a completed, running or available task is an invalid transition and changes
/// nothing (a completed task never runs again).
async fn retry_of_completed_running_or_available_is_invalid(a: Handle, b: Handle) -> Result<()> {
    for state in [
        TaskState::Completed,
        TaskState::Running,
        TaskState::Available,
    ] {
        let id = task_in_state(&a, task("t"), state, at(0)).await?;
        let before = get(&a, id).await?;
        ensure_invalid_transition(b.retry_task(id, at(1)).await, id, state, "retry")?;
        ensure_eq!(
            get(&a, id).await?,
            before,
            "the {state} task after a refused retry"
        );
    }
    Ok(())
}

/// Retry and cancel of an id the store never issued fail with `TaskNotFound`;
/// `get_task` returns `None`.
async fn unknown_task_is_not_found(a: Handle, b: Handle) -> Result<()> {
    let known = enqueue_one(&a, task("t"), at(0)).await?;
    let unknown = known + 1000;
    ensure_task_not_found(b.retry_task(unknown, at(1)).await, unknown, "retry")?;
    ensure_task_not_found(b.cancel_task(unknown, at(1)).await, unknown, "cancel")?;
    ensure_eq!(
        b.get_task(unknown).await?,
        None,
        "get_task of an unknown id"
    );
    Ok(())
}

/// `cancel_tasks` cancels, in one call, every listed task that is not final (a running
/// one gets its `cancelled` attempt record) and skips final and unknown ids; `retry_tasks`
/// then makes every listed task an operator may retry available and skips the others.
/// Both count what they moved, and tasks not listed are untouched.
async fn cancel_and_retry_many_skip_what_they_cannot_move(a: Handle, b: Handle) -> Result<()> {
    use TaskState::{Available, Cancelled, Completed, Dead, Retryable, Running, Scheduled};
    let mut ids = BTreeMap::new();
    for state in [
        Running, Completed, Dead, Retryable, Scheduled, Available, Cancelled,
    ] {
        ids.insert(state, task_in_state(&a, task("t"), state, at(0)).await?);
    }
    let untouched = enqueue_one(&a, task("t"), at(0)).await?;
    let unknown = ids.values().max().copied().unwrap_or_default() + 1_000;
    let mut listed: Vec<_> = ids.values().copied().collect();
    listed.push(unknown);

    ensure_eq!(b.cancel_tasks(&listed, at(5)).await?, 4, "tasks cancelled");
    for (&state, &id) in &ids {
        let t = get(&a, id).await?;
        let expected = if state.is_final() { state } else { Cancelled };
        ensure_eq!(t.state, expected, "the {state} task after cancel_tasks");
        if !state.is_final() {
            ensure_eq!(
                t.finished_at,
                Some(at(5)),
                "finished_at of the {state} task"
            );
        }
    }
    let running = get(&a, ids[&Running]).await?;
    ensure_eq!(
        running.attempts.last().map(|r| r.outcome.as_str()),
        Some("cancelled"),
        "the running task's last attempt record"
    );
    ensure_state(&a, untouched, Available).await?;

    // Completed stays completed; the other six (dead, and the five cancelled) run again.
    ensure_eq!(b.retry_tasks(&listed, at(6)).await?, 6, "tasks retried");
    for (&state, &id) in &ids {
        let expected = if state == Completed {
            Completed
        } else {
            Available
        };
        ensure_state(&a, id, expected).await?;
    }
    ensure_eq!(b.retry_tasks(&[], at(7)).await?, 0, "retry of no ids");
    ensure_eq!(b.cancel_tasks(&[], at(7)).await?, 0, "cancel of no ids");
    Ok(())
}

/// `retry_dead(Some(queue))` makes only that queue's dead tasks available and counts
/// them; `retry_dead(None)` takes every queue's; cancelled tasks stay cancelled.
async fn retry_dead_moves_only_that_queues_dead_tasks(a: Handle, b: Handle) -> Result<()> {
    use TaskState::{Cancelled, Dead};
    let mut made = Vec::new();
    for (queue, state) in [("a", Dead), ("a", Dead), ("b", Dead), ("a", Cancelled)] {
        made.push(task_in_state(&a, task("t").queue(queue), state, at(0)).await?);
    }
    ensure_eq!(
        b.retry_dead(Some("a".into()), at(10)).await?,
        2,
        "retried from queue a"
    );
    for (id, state) in
        made.iter()
            .zip([TaskState::Available, TaskState::Available, Dead, Cancelled])
    {
        ensure_state(&a, *id, state).await?;
    }
    ensure_eq!(
        b.retry_dead(None, at(11)).await?,
        1,
        "retried from every queue"
    );
    ensure_state(&a, made[2], TaskState::Available).await?;
    ensure_eq!(
        b.retry_dead(None, at(12)).await?,
        0,
        "retried when none is dead"
    );
    ensure_state(&a, made[3], Cancelled).await?;
    let claimed = claim(&a, "w1", 10, at(12)).await?;
    ensure_eq!(
        set(claimed.iter().map(|c| c.id)),
        set(made[..3].iter().copied()),
        "claimable after retry_dead"
    );
    Ok(())
}

/// `list_tasks` filters by state, queue and job (combined), returns newest first, stops
/// at `limit` and pages with `before_id`.
async fn list_tasks_filters_newest_first_and_pages(a: Handle, b: Handle) -> Result<()> {
    let spec = [
        ("a", Some("j1")),
        ("b", None),
        ("a", Some("j1")),
        ("a", None),
        ("b", Some("j1")),
    ];
    let mut ids = Vec::new();
    for (queue, job) in spec {
        let mut new = task("t").queue(queue);
        new.job = job.map(String::from);
        ids.push(enqueue_one(&a, new, at(0)).await?);
    }
    b.cancel_task(ids[1], at(1)).await?;
    let [t1, t2, t3, t4, t5] = ids[..] else {
        unreachable!("five tasks enqueued")
    };
    let limit = 100;
    let checks = [
        (
            TaskFilter {
                limit,
                ..TaskFilter::default()
            },
            vec![t5, t4, t3, t2, t1],
        ),
        (
            TaskFilter {
                state: Some(TaskState::Cancelled),
                limit,
                ..TaskFilter::default()
            },
            vec![t2],
        ),
        (
            TaskFilter {
                state: Some(TaskState::Available),
                limit,
                ..TaskFilter::default()
            },
            vec![t5, t4, t3, t1],
        ),
        (
            TaskFilter {
                queue: Some("a".into()),
                limit,
                ..TaskFilter::default()
            },
            vec![t4, t3, t1],
        ),
        (
            TaskFilter {
                job: Some("j1".into()),
                limit,
                ..TaskFilter::default()
            },
            vec![t5, t3, t1],
        ),
        (
            TaskFilter {
                queue: Some("a".into()),
                job: Some("j1".into()),
                limit,
                ..TaskFilter::default()
            },
            vec![t3, t1],
        ),
        (
            TaskFilter {
                state: Some(TaskState::Available),
                queue: Some("b".into()),
                limit,
                ..TaskFilter::default()
            },
            vec![t5],
        ),
        (
            TaskFilter {
                queue: Some("none".into()),
                limit,
                ..TaskFilter::default()
            },
            vec![],
        ),
        (
            TaskFilter {
                limit: 2,
                ..TaskFilter::default()
            },
            vec![t5, t4],
        ),
        (
            TaskFilter {
                before_id: Some(t4),
                limit: 2,
                ..TaskFilter::default()
            },
            vec![t3, t2],
        ),
        (
            TaskFilter {
                before_id: Some(t2),
                limit: 2,
                ..TaskFilter::default()
            },
            vec![t1],
        ),
        (
            TaskFilter {
                before_id: Some(t5),
                job: Some("j1".into()),
                limit,
                ..TaskFilter::default()
            },
            vec![t3, t1],
        ),
    ];
    for (filter, expected) in checks {
        let what = format!("list_tasks({filter:?})");
        ensure_eq!(list_ids(&b, filter).await?, expected, "{what}");
    }
    Ok(())
}

/// `prune_finished` deletes completed, dead and cancelled tasks that finished before the
/// cutoff, and nothing else; it returns how many it deleted.
async fn prune_finished_deletes_only_old_final_tasks(a: Handle, b: Handle) -> Result<()> {
    use TaskState::{Available, Cancelled, Completed, Dead, Retryable, Running, Scheduled};
    let mut old = Vec::new();
    for state in [Completed, Dead, Cancelled] {
        old.push(task_in_state(&a, task("old"), state, at(10)).await?);
    }
    let mut kept = Vec::new();
    for state in [
        Completed, Dead, Cancelled, Running, Retryable, Scheduled, Available,
    ] {
        kept.push(task_in_state(&a, task("new"), state, at(50)).await?);
    }
    ensure_eq!(
        prune_all(&b, at(20), 100).await?,
        3,
        "tasks pruned before 20 s"
    );
    for id in &old {
        ensure_eq!(
            a.get_task(*id).await?.map(|t| t.state),
            None,
            "state of pruned task {id}"
        );
    }
    let left: Vec<_> = all_tasks(&a).await?.into_iter().map(|t| t.id).collect();
    ensure_eq!(
        set(left),
        set(kept.iter().copied()),
        "tasks left after pruning"
    );
    ensure_eq!(
        prune_all(&b, at(20), 100).await?,
        0,
        "tasks pruned again before 20 s"
    );
    ensure_eq!(
        prune_all(&b, at(60), 100).await?,
        3,
        "tasks pruned before 60 s"
    );
    let left: Vec<_> = all_tasks(&a).await?.into_iter().map(|t| t.state).collect();
    ensure_eq!(
        left,
        vec![Available, Scheduled, Retryable, Running],
        "states left, newest first"
    );
    Ok(())
}

/// `prune_finished` deletes at most `limit` tasks per call; further calls delete the rest.
async fn prune_finished_respects_limit(a: Handle, b: Handle) -> Result<()> {
    for _ in 0..5 {
        task_in_state(&a, task("t"), TaskState::Cancelled, at(0)).await?;
    }
    let cancelled = |limit| PruneRequest {
        state: TaskState::Cancelled,
        finished_before: at(10),
        limit,
    };
    ensure_eq!(
        b.prune_finished(cancelled(2)).await?,
        2,
        "pruned with limit 2"
    );
    ensure_eq!(all_tasks(&a).await?.len(), 3, "tasks left");
    ensure_eq!(
        b.prune_finished(cancelled(10)).await?,
        3,
        "pruned by the next call"
    );
    ensure_eq!(all_tasks(&a).await?.len(), 0, "tasks left");
    Ok(())
}

/// Prunes every final state before `before`, up to `limit` each; how many in all.
async fn prune_all(store: &Handle, before: DateTime<Utc>, limit: usize) -> Result<u64> {
    let mut pruned = 0;
    for request in PruneRequest::every_final_state(before, limit) {
        pruned += store.prune_finished(request).await?;
    }
    Ok(pruned)
}

/// A prune takes only its state, oldest first, a job's task too (the job's counters keep
/// it); a state that is not final is refused.
async fn prune_takes_one_state_oldest_first(a: Handle, b: Handle) -> Result<()> {
    use TaskState::{Completed, Dead};
    let newer = task_in_state(&a, task("t"), Completed, at(30)).await?;
    let older = task_in_state(&a, task("t"), Completed, at(20)).await?;
    let dead = task_in_state(&a, task("t"), Dead, at(10)).await?;
    let of_job = NewTask {
        job: Some("j".into()),
        ..task("t")
    };
    let job_task = task_in_state(&a, of_job, Completed, at(5)).await?;
    let completed = |limit| PruneRequest {
        state: Completed,
        finished_before: at(100),
        limit,
    };
    ensure_eq!(b.prune_finished(completed(1)).await?, 1, "pruned, limit 1");
    ensure_eq!(
        a.get_task(job_task).await?.map(|t| t.id),
        None,
        "the oldest, a job's"
    );
    ensure_eq!(b.prune_finished(completed(1)).await?, 1, "pruned next");
    ensure_eq!(
        a.get_task(older).await?.map(|t| t.id),
        None,
        "the next oldest"
    );
    ensure_eq!(b.prune_finished(completed(10)).await?, 1, "pruned last");
    let left: Vec<TaskId> = all_tasks(&a).await?.into_iter().map(|t| t.id).collect();
    ensure_eq!(set(left), set([dead]), "left: the dead task (not {newer})");
    let refused = b
        .prune_finished(PruneRequest {
            state: TaskState::Running,
            finished_before: at(100),
            limit: 10,
        })
        .await;
    ensure!(
        matches!(refused, Err(StoreError::InvalidRequest(_))),
        "pruning running tasks must be refused, got {refused:?}"
    );
    Ok(())
}
