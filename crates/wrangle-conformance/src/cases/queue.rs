//! Queue statistics and pause settings, as `wrangle status` shows them.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use wrangle_core::{QueueStats, TaskState};

use crate::Handle;
use crate::ensure_eq;
use crate::support::{
    at, claim_one, complete_as, completion, enqueue, failed, succeed, task, task_in_state, tasks,
};

cases![
    stats_count_states_per_queue_sorted_by_name,
    stats_throughput_counts_only_the_last_minute,
    paused_queue_without_tasks_is_listed,
];

/// Stats for `queue` with the given counts and nothing else.
fn stats(queue: &str, counts: &[(TaskState, u64)]) -> QueueStats {
    QueueStats {
        queue: queue.to_string(),
        paused: false,
        counts: counts.iter().copied().collect::<BTreeMap<_, _>>(),
        oldest_due_at: None,
        completed_last_minute: 0,
        failed_last_minute: 0,
    }
}

/// `queue_stats` lists every queue with tasks or a pause setting, sorted by name, with
/// its tasks counted per state (no entry for empty states), its paused flag, the
/// `run_at` of its oldest due unclaimed task, and its last minute's completions and
/// failures.
async fn stats_count_states_per_queue_sorted_by_name(a: Handle, b: Handle) -> Result<()> {
    use TaskState::{Available, Cancelled, Completed, Dead, Retryable, Running, Scheduled};
    a.set_queue_paused("c", true).await?;
    for state in [Scheduled, Available] {
        task_in_state(&a, task("t").queue("b"), state, at(15)).await?;
    }
    for state in [
        Running, Retryable, Completed, Dead, Cancelled, Scheduled, Available,
    ] {
        task_in_state(&a, task("t").queue("a"), state, at(10)).await?;
    }
    enqueue(&a, vec![task("t").queue("a")], at(20)).await?;

    let all_states = [
        (Scheduled, 1),
        (Available, 2),
        (Running, 1),
        (Retryable, 1),
        (Completed, 1),
        (Dead, 1),
        (Cancelled, 1),
    ];
    let expected = vec![
        QueueStats {
            oldest_due_at: Some(at(10)),
            completed_last_minute: 1,
            failed_last_minute: 2,
            ..stats("a", &all_states)
        },
        QueueStats {
            oldest_due_at: Some(at(15)),
            ..stats("b", &[(Scheduled, 1), (Available, 1)])
        },
        QueueStats {
            paused: true,
            ..stats("c", &[])
        },
    ];
    ensure_eq!(b.queue_stats(at(30)).await?, expected, "queue_stats");
    Ok(())
}

/// `completed_last_minute` and `failed_last_minute` count the attempts that ended in the
/// minute before `now` (failures both retried and final), not earlier ones.
async fn stats_throughput_counts_only_the_last_minute(a: Handle, b: Handle) -> Result<()> {
    let ids = enqueue(&a, tasks("t", 4), at(0)).await?;
    for _ in 0..2 {
        let claimed = claim_one(&a, "w1", at(0)).await?;
        succeed(&a, &claimed, "w1", at(1)).await?;
    }
    let flaky = claim_one(&a, "w1", at(0)).await?;
    let retry = completion(&flaky, "w1", failed("first", Some(at(90))));
    complete_as(&a, retry, at(2), TaskState::Retryable).await?;
    let throughput = |stats: Vec<QueueStats>| -> Result<(u64, u64)> {
        let q = stats.into_iter().next().context("no queue listed")?;
        Ok((q.completed_last_minute, q.failed_last_minute))
    };
    ensure_eq!(
        throughput(b.queue_stats(at(50)).await?)?,
        (2, 1),
        "(completed, failed) at 50 s"
    );

    let last = claim_one(&a, "w1", at(100)).await?;
    ensure_eq!(
        last.id,
        ids[3],
        "the never-claimed task goes first (oldest run_at)"
    );
    succeed(&a, &last, "w1", at(100)).await?;
    let flaky = claim_one(&a, "w1", at(100)).await?;
    ensure_eq!((flaky.id, flaky.attempt), (ids[2], 2), "the retried task");
    complete_as(
        &a,
        completion(&flaky, "w1", failed("second", None)),
        at(101),
        TaskState::Dead,
    )
    .await?;
    ensure_eq!(
        throughput(b.queue_stats(at(110)).await?)?,
        (1, 1),
        "(completed, failed) at 110 s"
    );
    ensure_eq!(
        throughput(b.queue_stats(at(200)).await?)?,
        (0, 0),
        "(completed, failed) at 200 s"
    );
    Ok(())
}

/// A paused queue with no tasks is listed (paused, nothing counted); the flag follows
/// pause and resume of a queue with tasks.
async fn paused_queue_without_tasks_is_listed(a: Handle, b: Handle) -> Result<()> {
    a.set_queue_paused("idle", true).await?;
    let idle = QueueStats {
        paused: true,
        ..stats("idle", &[])
    };
    ensure_eq!(
        b.queue_stats(at(0)).await?,
        vec![idle.clone()],
        "queue_stats"
    );

    enqueue(&a, vec![task("t").queue("busy")], at(0)).await?;
    a.set_queue_paused("busy", true).await?;
    let busy = QueueStats {
        paused: true,
        oldest_due_at: Some(at(0)),
        ..stats("busy", &[(TaskState::Available, 1)])
    };
    ensure_eq!(
        b.queue_stats(at(1)).await?,
        vec![busy.clone(), idle.clone()],
        "queue_stats"
    );
    a.set_queue_paused("busy", false).await?;
    let busy = QueueStats {
        paused: false,
        ..busy
    };
    let listed = b.queue_stats(at(2)).await?;
    ensure_eq!(listed.first(), Some(&busy), "stats of the resumed queue");
    Ok(())
}
