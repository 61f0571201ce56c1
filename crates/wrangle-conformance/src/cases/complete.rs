//! Completing attempts: success, hand-backs, stale completions and mixed batches.

use anyhow::{Result, ensure};
use serde_json::json;
use wrangle_core::{AttemptRecord, CompletionStatus, TaskState};

use crate::Handle;
use crate::ensure_eq;
use crate::support::{
    at, by_id, claim, claim_one, complete, complete_as, completion, enqueue, enqueue_one,
    ensure_nothing_claimable, ensure_stale, ensure_state, failed, get, released, succeed,
    succeeded, task, tasks,
};

cases![
    success_records_result_and_history,
    released_returns_task_without_consuming_attempt,
    stale_wrong_attempt_or_worker,
    stale_after_cancel,
    completing_twice_is_stale,
    mixed_batch_statuses_in_order,
];

/// A successful completion makes the task `completed` with its result, `finished_at` and
/// one `completed` attempt record; a completed task is never claimed again.
async fn success_records_result_and_history(a: Handle, b: Handle) -> Result<()> {
    let ids = enqueue(&a, tasks("t", 2), at(0)).await?;
    let results = [
        json!({ "rows": [1, 2, 3], "note": "fini ✓" }),
        json!("plain text output"),
    ];
    for (id, result) in ids.iter().zip(results) {
        let claimed = claim_one(&b, "w1", at(1)).await?;
        ensure_eq!(claimed.id, *id, "claimed task");
        let done = completion(&claimed, "w1", succeeded(result.clone()));
        complete_as(&b, done, at(5), TaskState::Completed).await?;
        let t = ensure_state(&a, *id, TaskState::Completed).await?;
        ensure_eq!(t.result, Some(result), "result");
        ensure_eq!(t.error, None, "error");
        ensure_eq!(t.attempt, 1, "attempt");
        ensure_eq!(t.worker.as_deref(), Some("w1"), "worker that last held it");
        ensure_eq!(t.started_at, Some(at(1)), "started_at");
        ensure_eq!(t.finished_at, Some(at(5)), "finished_at");
        ensure_eq!(
            t.attempts,
            vec![AttemptRecord {
                attempt: 1,
                worker: Some("w1".into()),
                started_at: Some(at(1)),
                finished_at: at(5),
                outcome: "completed".into(),
                error: None,
                retry_at: None,
            }],
            "attempt history"
        );
    }
    ensure_nothing_claimable(&b, at(100_000)).await
}

/// A released task is `available` at once and its attempt is handed back: a task with a
/// single attempt can be released twice and still run (and fail) as attempt 1.
async fn released_returns_task_without_consuming_attempt(a: Handle, b: Handle) -> Result<()> {
    let id = enqueue_one(&a, task("once").retries(0), at(0)).await?;
    for round in 1..=2 {
        let now = at(round * 10);
        let claimed = claim_one(&b, "w1", now).await?;
        ensure_eq!(
            (claimed.id, claimed.attempt),
            (id, 1),
            "claim in round {round}"
        );
        complete_as(
            &b,
            completion(&claimed, "w1", released()),
            now,
            TaskState::Available,
        )
        .await?;
        let t = ensure_state(&a, id, TaskState::Available).await?;
        ensure_eq!(t.attempt, 0, "attempts counted after {round} release(s)");
        ensure_eq!(t.max_attempts, 1, "max_attempts after {round} release(s)");
        ensure!(
            t.attempts.iter().all(|r| r.outcome == "released"),
            "a release was recorded as something else: {:?}",
            t.attempts
        );
    }
    let claimed = claim_one(&a, "w2", at(30)).await?;
    ensure_eq!(
        (claimed.attempt, claimed.max_attempts),
        (1, 1),
        "attempt after two releases"
    );
    let last = completion(&claimed, "w2", failed("boom", Some(at(40))));
    complete_as(&a, last, at(31), TaskState::Dead).await?;
    ensure_state(&b, id, TaskState::Dead).await?;
    Ok(())
}

/// A completion naming another attempt or another worker than the lease holder is stale
/// and changes nothing; the holder's own completion then applies.
async fn stale_wrong_attempt_or_worker(a: Handle, b: Handle) -> Result<()> {
    enqueue(&a, vec![task("t")], at(0)).await?;
    let claimed = claim_one(&a, "w1", at(1)).await?;
    for (attempt, worker) in [(2, "w1"), (0, "w1"), (1, "w2"), (2, "w2")] {
        let mut wrong = completion(&claimed, worker, succeeded(json!("wrong")));
        wrong.attempt = attempt;
        ensure_stale(&b, wrong, at(2)).await?;
        let fail = completion(&claimed, "intruder", failed("x", None));
        ensure_stale(&b, fail, at(2)).await?;
    }
    succeed(&b, &claimed, "w1", at(3)).await
}

/// Once a running task is cancelled, its worker's completion (success, failure or
/// release) is stale and the task stays `cancelled`.
async fn stale_after_cancel(a: Handle, b: Handle) -> Result<()> {
    let id = enqueue_one(&a, task("t"), at(0)).await?;
    let claimed = claim_one(&a, "w1", at(1)).await?;
    b.cancel_task(id, at(2)).await?;
    for outcome in [succeeded(json!(1)), failed("x", Some(at(10))), released()] {
        ensure_stale(&a, completion(&claimed, "w1", outcome), at(3)).await?;
    }
    ensure_state(&b, id, TaskState::Cancelled).await?;
    ensure_nothing_claimable(&b, at(100)).await
}

/// A completed task is never completed twice: any later completion of that attempt is
/// stale, even later in the same batch (completions apply in request order, so of two
/// different endings of one attempt the first wins).
async fn completing_twice_is_stale(a: Handle, b: Handle) -> Result<()> {
    let ids = enqueue(&a, tasks("t", 2), at(0)).await?;
    let claimed = claim(&a, "w1", 2, at(1)).await?;
    let first = by_id(&claimed, ids[0])?;
    succeed(&a, first, "w1", at(2)).await?;
    for outcome in [
        succeeded(json!("again")),
        failed("x", Some(at(10))),
        released(),
    ] {
        ensure_stale(&b, completion(first, "w1", outcome), at(3)).await?;
    }
    let second = by_id(&claimed, ids[1])?;
    let done = completion(second, "w1", succeeded(json!(2)));
    let statuses = b.complete_batch(&[done.clone(), done], at(4)).await?;
    ensure_eq!(
        statuses,
        vec![
            CompletionStatus::Applied(TaskState::Completed),
            CompletionStatus::Stale
        ],
        "statuses of one completion sent twice in a batch"
    );
    ensure_eq!(
        get(&a, ids[1]).await?.attempts.len(),
        1,
        "attempt records of the twice-completed task"
    );

    // Two different endings of one attempt in one batch: the first applies, in order.
    let id = enqueue_one(&a, task("t"), at(5)).await?;
    let third = claim_one(&a, "w1", at(5)).await?;
    let statuses = b
        .complete_batch(
            &[
                completion(&third, "w1", failed("first", None)),
                completion(&third, "w1", succeeded(json!("second"))),
            ],
            at(6),
        )
        .await?;
    ensure_eq!(
        statuses,
        vec![
            CompletionStatus::Applied(TaskState::Dead),
            CompletionStatus::Stale
        ],
        "statuses of a failure then a success of one attempt in a batch"
    );
    let t = ensure_state(&a, id, TaskState::Dead).await?;
    ensure_eq!(
        (t.error.as_deref(), t.result),
        (Some("first"), None),
        "(error, result) of the task"
    );
    Ok(())
}

/// A batch mixing every outcome and a stale completion returns one status per
/// completion, in request order, and applies each.
async fn mixed_batch_statuses_in_order(a: Handle, b: Handle) -> Result<()> {
    let ids = enqueue(
        &a,
        vec![
            task("ok"),
            task("stale"),
            task("retry"),
            task("release"),
            task("last").retries(0),
        ],
        at(0),
    )
    .await?;
    let claimed = claim(&a, "w1", 5, at(1)).await?;
    let c = |i: usize| by_id(&claimed, ids[i]);
    let batch = vec![
        completion(c(0)?, "w1", succeeded(json!("done"))),
        completion(c(1)?, "w2", succeeded(json!("not mine"))),
        completion(c(2)?, "w1", failed("flaky", Some(at(60)))),
        completion(c(3)?, "w1", released()),
        completion(c(4)?, "w1", failed("fatal", Some(at(60)))),
    ];
    let statuses = b.complete_batch(&batch, at(2)).await?;
    use CompletionStatus::{Applied, Stale};
    ensure_eq!(
        statuses,
        vec![
            Applied(TaskState::Completed),
            Stale,
            Applied(TaskState::Retryable),
            Applied(TaskState::Available),
            Applied(TaskState::Dead),
        ],
        "statuses of the mixed batch"
    );
    let expected = [
        TaskState::Completed,
        TaskState::Running,
        TaskState::Retryable,
        TaskState::Available,
        TaskState::Dead,
    ];
    for (id, state) in ids.iter().zip(expected) {
        ensure_state(&a, *id, state).await?;
    }
    // The stale completion's task is still w1's to finish.
    let status = complete(&a, completion(c(1)?, "w1", succeeded(json!(1))), at(3)).await?;
    ensure_eq!(
        status,
        Applied(TaskState::Completed),
        "the holder's completion after the batch"
    );
    Ok(())
}
