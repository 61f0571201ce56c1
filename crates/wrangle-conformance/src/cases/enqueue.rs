//! Enqueueing: ids, the stored fields, the initial state and unique keys.

use std::time::Duration;

use anyhow::{Result, ensure};
use serde_json::json;
use wrangle_core::{Enqueued, NewTask, TaskFilter, TaskState};

use crate::Handle;
use crate::ensure_eq;
use crate::support::{
    all_tasks, at, claim_ids, claim_one, enqueue, ensure_state, get, succeed, task, tasks,
};

cases![
    batch_of_one_and_many_returns_increasing_ids,
    fields_round_trip,
    future_run_at_is_scheduled_else_available,
    unique_key_returns_existing_task,
    unique_key_holds_after_completion,
    unique_key_repeated_within_batch,
    empty_batch_returns_empty,
];

/// Task ids increase in submission order: a batch of 1 and a batch of 500 return one id
/// per task, in order, each larger than every id before it, and all 501 are stored.
async fn batch_of_one_and_many_returns_increasing_ids(a: Handle, b: Handle) -> Result<()> {
    let one = enqueue(&a, vec![task("one")], at(0)).await?;
    ensure_eq!(one.len(), 1, "ids for a batch of 1");
    let many = enqueue(&b, tasks("many", 500), at(1)).await?;
    let ids: Vec<_> = one.iter().chain(&many).copied().collect();
    ensure!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids are not strictly increasing: {ids:?}"
    );
    for (i, id) in many.iter().enumerate() {
        let stored = get(&a, *id).await?;
        ensure_eq!(
            stored.payload,
            json!({ "i": i }),
            "payload of the batch's task {i} (id {id})"
        );
    }
    ensure_eq!(all_tasks(&a).await?.len(), 501, "tasks stored");
    Ok(())
}

/// Everything a task is enqueued with reads back unchanged through `get_task` (on the
/// other handle), with the bookkeeping fields of a task that never ran.
async fn fields_round_trip(a: Handle, b: Handle) -> Result<()> {
    let payload = json!({
        "text": "héllo wörld ✓ 日本語 🚀",
        "nested": { "list": [1, 2.5, -3, null, true, "x"], "empty": {}, "deep": { "a": [[]] } },
        "big": 9_007_199_254_740_991_i64,
    });
    let new = NewTask::new("mail.send", payload.clone())
        .queue("emails")
        .priority(-7)
        .retries(5)
        .timeout(Duration::from_millis(1500))
        .unique_key("mail-42")
        .job("newsletter");
    let ids = enqueue(&a, vec![new, task("plain")], at(10)).await?;

    let t = get(&b, ids[0]).await?;
    ensure_eq!(t.id, ids[0], "id");
    ensure_eq!(t.queue, "emails", "queue");
    ensure_eq!(t.kind, "mail.send", "kind");
    ensure_eq!(t.payload, payload, "payload");
    ensure_eq!(t.priority, -7, "priority");
    ensure_eq!(t.state, TaskState::Available, "state");
    ensure_eq!(t.run_at, at(10), "run_at of a task enqueued without one");
    ensure_eq!(t.attempt, 0, "attempt before any claim");
    ensure_eq!(t.max_attempts, 6, "max_attempts");
    ensure_eq!(t.timeout, Some(Duration::from_millis(1500)), "timeout");
    ensure_eq!(t.unique_key.as_deref(), Some("mail-42"), "unique_key");
    ensure_eq!(t.job.as_deref(), Some("newsletter"), "job");
    ensure_eq!(t.created_at, at(10), "created_at");
    ensure_eq!(t.result, None, "result");
    ensure_eq!(t.error, None, "error");
    ensure_eq!(t.worker, None, "worker");
    ensure_eq!(t.lease_until, None, "lease_until");
    ensure_eq!(t.started_at, None, "started_at");
    ensure_eq!(t.finished_at, None, "finished_at");
    ensure_eq!(t.attempts, vec![], "attempt history");

    let p = get(&b, ids[1]).await?;
    ensure_eq!(p.queue, wrangle_core::task::DEFAULT_QUEUE, "default queue");
    ensure_eq!(p.priority, 0, "default priority");
    ensure_eq!(p.max_attempts, 4, "default max_attempts");
    ensure_eq!(
        (p.timeout, p.unique_key, p.job),
        (None, None, None),
        "unset options"
    );
    Ok(())
}

/// A task whose `run_at` is after `now` starts `scheduled` with that `run_at`; one due
/// now or earlier starts `available`.
async fn future_run_at_is_scheduled_else_available(a: Handle, b: Handle) -> Result<()> {
    let ids = enqueue(
        &a,
        vec![
            task("later").run_at(at(60)),
            task("now").run_at(at(0)),
            task("past").run_at(at(-60)),
            task("unset"),
        ],
        at(0),
    )
    .await?;
    let later = ensure_state(&b, ids[0], TaskState::Scheduled).await?;
    ensure_eq!(later.run_at, at(60), "run_at of the scheduled task");
    for id in &ids[1..] {
        let t = ensure_state(&b, *id, TaskState::Available).await?;
        ensure!(
            t.run_at <= at(0),
            "task {id} is due but its run_at is {}",
            t.run_at
        );
    }
    Ok(())
}

/// Enqueueing a task whose unique key exists returns the existing id with
/// `duplicate: true`, inserts nothing and leaves the existing task as it was; other
/// tasks in the same batch are inserted.
async fn unique_key_returns_existing_task(a: Handle, b: Handle) -> Result<()> {
    let first = a
        .enqueue_batch(vec![task("first").unique_key("k")], at(0))
        .await?;
    ensure_eq!(first.len(), 1, "results");
    ensure!(!first[0].duplicate, "a new key was reported duplicate");
    let original = get(&a, first[0].id).await?;

    let again = b
        .enqueue_batch(
            vec![
                task("other"),
                task("second")
                    .unique_key("k")
                    .priority(9)
                    .queue("elsewhere"),
            ],
            at(5),
        )
        .await?;
    ensure_eq!(again.len(), 2, "results");
    ensure!(
        !again[0].duplicate,
        "a task without a key was reported duplicate"
    );
    ensure_eq!(
        again[1],
        Enqueued {
            id: first[0].id,
            duplicate: true
        },
        "result for the repeated key"
    );
    ensure_eq!(get(&a, first[0].id).await?, original, "the existing task");
    ensure_eq!(all_tasks(&b).await?.len(), 2, "tasks stored");
    Ok(())
}

/// A unique key keeps naming its task after the task completed: submitting again is
/// idempotent and does not run the work a second time.
async fn unique_key_holds_after_completion(a: Handle, b: Handle) -> Result<()> {
    let id = enqueue(&a, vec![task("once").unique_key("once")], at(0)).await?[0];
    let claimed = claim_one(&a, "w1", at(1)).await?;
    succeed(&a, &claimed, "w1", at(2)).await?;
    let again = b
        .enqueue_batch(vec![task("once").unique_key("once")], at(3))
        .await?;
    ensure_eq!(
        again,
        vec![Enqueued {
            id,
            duplicate: true
        }],
        "resubmission after completion"
    );
    ensure_state(&b, id, TaskState::Completed).await?;
    let waiting = claim_ids(&b, "w2", 10, at(4)).await?;
    ensure!(
        waiting.is_empty(),
        "a completed unique task ran again: claimed {waiting:?}"
    );
    Ok(())
}

/// A key repeated within one batch inserts the first task only; the later ones name it
/// as duplicates, and results stay in request order.
async fn unique_key_repeated_within_batch(a: Handle, b: Handle) -> Result<()> {
    let results = a
        .enqueue_batch(
            vec![
                task("a").unique_key("x"),
                task("b"),
                task("c").unique_key("x"),
                task("d").unique_key("y"),
                task("e").unique_key("y"),
            ],
            at(0),
        )
        .await?;
    ensure_eq!(results.len(), 5, "results");
    let dups: Vec<_> = results.iter().map(|r| r.duplicate).collect();
    ensure_eq!(
        dups,
        vec![false, false, true, false, true],
        "duplicate flags"
    );
    ensure_eq!(results[2].id, results[0].id, "id for the repeated key x");
    ensure_eq!(results[4].id, results[3].id, "id for the repeated key y");
    ensure!(
        results[0].id < results[1].id && results[1].id < results[3].id,
        "new ids do not increase in batch order: {results:?}"
    );
    let stored = all_tasks(&b).await?;
    let kinds: Vec<_> = stored.iter().rev().map(|t| t.kind.as_str()).collect();
    ensure_eq!(kinds, vec!["a", "b", "d"], "kinds stored (oldest first)");
    Ok(())
}

/// An empty batch returns no results and stores nothing.
async fn empty_batch_returns_empty(a: Handle, b: Handle) -> Result<()> {
    let results = a.enqueue_batch(Vec::new(), at(0)).await?;
    ensure_eq!(results, vec![], "results of an empty batch");
    let listed = b
        .list_tasks(TaskFilter {
            limit: 10,
            ..TaskFilter::default()
        })
        .await?;
    ensure!(listed.is_empty(), "an empty batch stored tasks: {listed:?}");
    Ok(())
}
