//! Failed attempts: retries with backoff, and death when attempts run out.

use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::json;
use wrangle_core::{AttemptRecord, RetryPolicy, TaskState};

use crate::Handle;
use crate::ensure_eq;
use crate::support::{
    at, claim_one, complete_as, completion, enqueue_one, ensure_nothing_claimable, ensure_state,
    failed, succeeded, task,
};

cases![
    failure_with_attempts_left_becomes_retryable,
    failure_on_last_attempt_is_dead,
    failure_without_retry_at_is_dead,
    third_attempt_succeeds_after_two_backoffs,
];

/// A failure with `retry_at` and attempts left makes the task `retryable` with `run_at =
/// retry_at` and the error recorded; it is not claimable before `retry_at`, and is from
/// then on, as the next attempt.
async fn failure_with_attempts_left_becomes_retryable(a: Handle, b: Handle) -> Result<()> {
    let id = enqueue_one(&a, task("flaky"), at(0)).await?;
    let claimed = claim_one(&a, "w1", at(1)).await?;
    let fail = completion(&claimed, "w1", failed("exit 1: disk full", Some(at(12))));
    complete_as(&b, fail, at(2), TaskState::Retryable).await?;
    let t = ensure_state(&a, id, TaskState::Retryable).await?;
    ensure_eq!(t.run_at, at(12), "run_at of the retryable task");
    ensure_eq!(t.error.as_deref(), Some("exit 1: disk full"), "error");
    ensure_eq!(t.attempt, 1, "attempt");
    ensure_eq!(t.result, None, "result");
    ensure_eq!(
        t.attempts,
        vec![AttemptRecord {
            attempt: 1,
            worker: Some("w1".into()),
            started_at: Some(at(1)),
            finished_at: at(2),
            outcome: "failed".into(),
            error: Some("exit 1: disk full".into()),
            retry_at: Some(at(12)),
        }],
        "attempt history"
    );
    ensure_nothing_claimable(&b, at(11)).await?;
    let again = claim_one(&b, "w2", at(12)).await?;
    ensure_eq!((again.id, again.attempt), (id, 2), "the retry's claim");
    let t = ensure_state(&a, id, TaskState::Running).await?;
    ensure_eq!(
        (t.worker.as_deref(), t.started_at),
        (Some("w2"), Some(at(12))),
        "the retry's holder"
    );
    Ok(())
}

/// A failure on the last attempt makes the task `dead` even when a `retry_at` is given;
/// a dead task is never claimed.
async fn failure_on_last_attempt_is_dead(a: Handle, b: Handle) -> Result<()> {
    let id = enqueue_one(&a, task("doomed").retries(1), at(0)).await?;
    let first = claim_one(&a, "w1", at(1)).await?;
    complete_as(
        &a,
        completion(&first, "w1", failed("one", Some(at(5)))),
        at(2),
        TaskState::Retryable,
    )
    .await?;
    let second = claim_one(&b, "w1", at(5)).await?;
    ensure_eq!(
        (second.attempt, second.max_attempts),
        (2, 2),
        "last attempt"
    );
    complete_as(
        &b,
        completion(&second, "w1", failed("two", Some(at(50)))),
        at(6),
        TaskState::Dead,
    )
    .await?;
    let t = ensure_state(&a, id, TaskState::Dead).await?;
    ensure_eq!(t.error.as_deref(), Some("two"), "error of the last attempt");
    ensure_eq!(t.finished_at, Some(at(6)), "finished_at");
    let outcomes: Vec<_> = t
        .attempts
        .iter()
        .map(|r| (r.attempt, r.outcome.as_str()))
        .collect();
    ensure_eq!(
        outcomes,
        vec![(1, "failed"), (2, "failed")],
        "attempt history"
    );
    ensure_eq!(
        t.attempts[1].retry_at,
        None,
        "retry_at recorded for the final failure"
    );
    ensure_nothing_claimable(&b, at(100_000)).await
}

/// A failure without `retry_at` makes the task `dead` even with attempts left.
async fn failure_without_retry_at_is_dead(a: Handle, b: Handle) -> Result<()> {
    let id = enqueue_one(&a, task("fatal").retries(5), at(0)).await?;
    let claimed = claim_one(&a, "w1", at(1)).await?;
    complete_as(
        &b,
        completion(&claimed, "w1", failed("bad input", None)),
        at(2),
        TaskState::Dead,
    )
    .await?;
    let t = ensure_state(&a, id, TaskState::Dead).await?;
    ensure_eq!(
        (t.attempt, t.max_attempts),
        (1, 6),
        "attempts used of allowed"
    );
    ensure_eq!(t.error.as_deref(), Some("bad input"), "error");
    ensure_nothing_claimable(&b, at(100_000)).await
}

/// A task with four attempts that fails twice (retried on the backoff of
/// [`RetryPolicy`]) and then succeeds ends `completed` on attempt 3 with two failure
/// records, their `retry_at`s, and one success.
async fn third_attempt_succeeds_after_two_backoffs(a: Handle, b: Handle) -> Result<()> {
    let policy = RetryPolicy {
        jitter: 0.0,
        ..RetryPolicy::exponential(Duration::from_secs(10))
    };
    let id = enqueue_one(&a, task("eventually").retries(3), at(0)).await?;
    let mut now = at(0);
    let mut expected = Vec::new();
    for attempt in 1..=2 {
        let claimed = claim_one(if attempt == 1 { &a } else { &b }, "w1", now).await?;
        ensure_eq!(claimed.attempt, attempt, "attempt claimed");
        let started = now;
        now += chrono::Duration::seconds(1);
        let retry_at = policy
            .next_run_at(id, attempt, claimed.max_attempts, now)
            .context("the policy retries an attempt that is not the last")?;
        let error = format!("failure {attempt}");
        complete_as(
            &a,
            completion(&claimed, "w1", failed(&error, Some(retry_at))),
            now,
            TaskState::Retryable,
        )
        .await?;
        expected.push(AttemptRecord {
            attempt,
            worker: Some("w1".into()),
            started_at: Some(started),
            finished_at: now,
            outcome: "failed".into(),
            error: Some(error),
            retry_at: Some(retry_at),
        });
        ensure_nothing_claimable(&b, retry_at - chrono::Duration::seconds(1)).await?;
        now = retry_at;
    }
    ensure_eq!(
        now,
        at(1 + 10 + 1 + 20),
        "time after two backoffs of 10 s and 20 s"
    );
    let third = claim_one(&b, "w2", now).await?;
    ensure_eq!(third.attempt, 3, "attempt claimed");
    let finished = now + chrono::Duration::seconds(1);
    complete_as(
        &b,
        completion(&third, "w2", succeeded(json!({ "ok": true }))),
        finished,
        TaskState::Completed,
    )
    .await?;
    expected.push(AttemptRecord {
        attempt: 3,
        worker: Some("w2".into()),
        started_at: Some(now),
        finished_at: finished,
        outcome: "completed".into(),
        error: None,
        retry_at: None,
    });
    let t = ensure_state(&a, id, TaskState::Completed).await?;
    ensure_eq!(
        (t.attempt, t.max_attempts),
        (3, 4),
        "attempts used of allowed"
    );
    ensure_eq!(t.result, Some(json!({ "ok": true })), "result");
    ensure_eq!(t.attempts, expected, "attempt history");
    Ok(())
}
