//! Claiming: which tasks a claim returns, in what order, what it does to them, and that
//! concurrent claimers never get the same task.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use wrangle_core::{QueueFilter, TaskFilter, TaskId, TaskState};

use crate::Handle;
use crate::ensure_eq;
use crate::support::{
    at, claim_from, claim_ids, claim_one, claim_request, enqueue, ensure_nothing_claimable,
    ensure_state, get, lease, set, task, tasks,
};

cases![
    only_due_tasks_are_claimed,
    priority_then_run_at_then_id,
    limit_of_one_and_many_is_respected,
    claim_starts_a_leased_attempt,
    queue_filter_only_and_all,
    paused_queue_skipped_until_resumed,
    concurrent_claimers_never_share_a_task,
];

/// A scheduled task is not claimed before its `run_at` and is claimable from the moment
/// `now` reaches it.
async fn only_due_tasks_are_claimed(a: Handle, b: Handle) -> Result<()> {
    let ids = enqueue(
        &a,
        vec![task("soon").run_at(at(10)), task("later").run_at(at(20))],
        at(0),
    )
    .await?;
    ensure_nothing_claimable(&b, at(0)).await?;
    ensure_nothing_claimable(&b, at(9)).await?;
    ensure_eq!(
        claim_ids(&b, "w1", 10, at(10)).await?,
        vec![ids[0]],
        "claimed at the first run_at"
    );
    ensure_nothing_claimable(&b, at(19)).await?;
    ensure_eq!(
        claim_ids(&b, "w1", 10, at(25)).await?,
        vec![ids[1]],
        "claimed after the second run_at"
    );
    Ok(())
}

/// Claims take the highest priority first, then the oldest `run_at`, then the lowest id.
async fn priority_then_run_at_then_id(a: Handle, b: Handle) -> Result<()> {
    // Ids follow the order of this list; the expected claim order does not.
    let ids = enqueue(
        &a,
        vec![
            task("a").priority(0).run_at(at(5)),
            task("b").priority(5).run_at(at(9)),
            task("c").priority(0).run_at(at(1)),
            task("d").priority(5).run_at(at(9)),
            task("e").priority(-1),
            task("f").priority(0).run_at(at(1)),
        ],
        at(0),
    )
    .await?;
    let [ta, tb, tc, td, te, tf] = ids[..] else {
        unreachable!("six tasks enqueued")
    };
    let now = at(10);
    ensure_eq!(
        claim_ids(&b, "w", 1, now).await?,
        vec![tb],
        "first claim (priority 5, lower id)"
    );
    ensure_eq!(
        claim_ids(&b, "w", 1, now).await?,
        vec![td],
        "second claim (priority 5)"
    );
    ensure_eq!(
        set(claim_ids(&b, "w", 2, now).await?),
        set([tc, tf]),
        "claim of 2 (priority 0, oldest run_at)"
    );
    ensure_eq!(
        claim_ids(&b, "w", 1, now).await?,
        vec![ta],
        "claim after them (priority 0)"
    );
    ensure_eq!(
        claim_ids(&b, "w", 5, now).await?,
        vec![te],
        "last claim (priority -1)"
    );
    ensure_nothing_claimable(&a, now).await
}

/// A claim returns at most `limit` tasks (1 and many), as many as are due when fewer,
/// and never a task it already handed out.
async fn limit_of_one_and_many_is_respected(a: Handle, b: Handle) -> Result<()> {
    let ids = enqueue(&a, tasks("t", 7), at(0)).await?;
    let first = claim_ids(&b, "w", 1, at(1)).await?;
    ensure_eq!(first, ids[..1].to_vec(), "claim with limit 1");
    let next = claim_ids(&a, "w", 4, at(1)).await?;
    ensure_eq!(
        set(next.clone()),
        set(ids[1..5].iter().copied()),
        "claim with limit 4"
    );
    let rest = claim_ids(&b, "w", 100, at(1)).await?;
    ensure_eq!(
        set(rest),
        set(ids[5..].iter().copied()),
        "claim with limit 100 of the 2 left"
    );
    ensure_nothing_claimable(&a, at(1)).await
}

/// A claim makes the task `running` under the worker, increments its attempt, leases it
/// until `now + lease` and stamps `started_at`; the claimed task carries the task's data.
async fn claim_starts_a_leased_attempt(a: Handle, b: Handle) -> Result<()> {
    let new = task("work")
        .queue("q")
        .retries(2)
        .timeout(Duration::from_secs(7))
        .job("j");
    let id = enqueue(&a, vec![new.clone()], at(0)).await?[0];
    let claimed = claim_one(&b, "w1", at(3)).await?;
    ensure_eq!(claimed.id, id, "claimed id");
    ensure_eq!(claimed.queue, "q", "claimed queue");
    ensure_eq!(claimed.kind, "work", "claimed kind");
    ensure_eq!(claimed.payload, new.payload, "claimed payload");
    ensure_eq!(claimed.attempt, 1, "claimed attempt");
    ensure_eq!(claimed.max_attempts, 3, "claimed max_attempts");
    ensure_eq!(
        claimed.timeout,
        Some(Duration::from_secs(7)),
        "claimed timeout"
    );
    ensure_eq!(claimed.job.as_deref(), Some("j"), "claimed job");
    ensure_eq!(claimed.lease_until, at(3) + lease(), "claimed lease_until");

    let t = ensure_state(&a, id, TaskState::Running).await?;
    ensure_eq!(t.attempt, 1, "attempt");
    ensure_eq!(t.worker.as_deref(), Some("w1"), "worker");
    ensure_eq!(t.lease_until, Some(at(3) + lease()), "lease_until");
    ensure_eq!(t.started_at, Some(at(3)), "started_at");
    ensure_eq!(t.finished_at, None, "finished_at");
    ensure_eq!(
        t.attempts,
        vec![],
        "attempt history while the first attempt runs"
    );
    ensure_nothing_claimable(&b, at(4)).await
}

/// `QueueFilter::Only` claims from the named queues only; `All` from every queue.
async fn queue_filter_only_and_all(a: Handle, b: Handle) -> Result<()> {
    let ids = enqueue(
        &a,
        vec![
            task("1").queue("a"),
            task("2").queue("b"),
            task("3").queue("c"),
            task("4").queue("a"),
            task("5").queue("b"),
        ],
        at(0),
    )
    .await?;
    let only = QueueFilter::Only(vec!["a".into(), "c".into()]);
    let claimed = claim_from(&b, "w", only.clone(), 10, at(1)).await?;
    ensure!(
        claimed.iter().all(|c| c.queue == "a" || c.queue == "c"),
        "claim from a and c returned {claimed:?}"
    );
    ensure_eq!(
        set(claimed.iter().map(|c| c.id)),
        set([ids[0], ids[2], ids[3]]),
        "tasks claimed from queues a and c"
    );
    ensure!(
        claim_from(&b, "w", only, 10, at(1)).await?.is_empty(),
        "a second claim from a and c found more tasks"
    );
    let rest = claim_from(&a, "w", QueueFilter::All, 10, at(1)).await?;
    ensure_eq!(
        set(rest.iter().map(|c| c.id)),
        set([ids[1], ids[4]]),
        "tasks claimed from all queues"
    );
    Ok(())
}

/// Claims skip a paused queue (paused through the other handle, whether named or
/// through `All`); once resumed its tasks are claimable again.
async fn paused_queue_skipped_until_resumed(a: Handle, b: Handle) -> Result<()> {
    let ids = enqueue(
        &a,
        vec![
            task("p").queue("paused").priority(9),
            task("o").queue("open"),
        ],
        at(0),
    )
    .await?;
    a.set_queue_paused("paused", true).await?;
    let only = QueueFilter::Only(vec!["paused".into()]);
    ensure!(
        claim_from(&b, "w", only.clone(), 10, at(1))
            .await?
            .is_empty(),
        "a claim named the paused queue and got its task"
    );
    ensure_eq!(
        claim_ids(&b, "w", 10, at(1)).await?,
        vec![ids[1]],
        "claim from all queues while one is paused"
    );
    a.set_queue_paused("paused", false).await?;
    let resumed = claim_from(&b, "w", only, 10, at(2)).await?;
    ensure_eq!(
        resumed.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![ids[0]],
        "claim after resume"
    );
    Ok(())
}

/// Concurrent claimers on each of the two handles.
const CLAIMERS_PER_HANDLE: usize = 4;
/// Tasks to claim concurrently.
const CONCURRENT_TASKS: usize = 2_000;

/// Eight claimers on two handles claiming small batches of 2,000 tasks at once: every
/// task is claimed exactly once (none twice, none missed), each left running under the
/// worker that claimed it.
async fn concurrent_claimers_never_share_a_task(a: Handle, b: Handle) -> Result<()> {
    let ids = enqueue(&a, tasks("c", CONCURRENT_TASKS), at(0)).await?;
    let mut claimers = tokio::task::JoinSet::new();
    for (h, store) in [&a, &b].into_iter().enumerate() {
        for k in 0..CLAIMERS_PER_HANDLE {
            let store = Handle::clone(store);
            let worker = format!("w{h}-{k}");
            let batch = 3 + 2 * k;
            claimers.spawn(async move { claim_until_empty(store, worker, batch).await });
        }
    }
    let mut owner: BTreeMap<TaskId, String> = BTreeMap::new();
    let mut claims = 0;
    while let Some(joined) = claimers.join_next().await {
        let (worker, got) = joined.context("a claimer panicked")??;
        for id in got {
            claims += 1;
            if let Some(first) = owner.insert(id, worker.clone()) {
                anyhow::bail!("task {id} was claimed by both {first} and {worker}");
            }
        }
    }
    ensure_eq!(claims, CONCURRENT_TASKS, "tasks claimed in total");
    let first = ids[0];
    ensure_eq!(
        set(owner.keys().copied()),
        set(ids),
        "the set of claimed tasks"
    );
    let running = a
        .list_tasks(TaskFilter {
            state: Some(TaskState::Running),
            limit: CONCURRENT_TASKS + 1,
            ..TaskFilter::default()
        })
        .await?;
    ensure_eq!(running.len(), CONCURRENT_TASKS, "running tasks");
    for t in running {
        ensure_eq!(
            t.worker.as_ref(),
            owner.get(&t.id),
            "worker of task {}",
            t.id
        );
        ensure_eq!(t.attempt, 1, "attempt of task {}", t.id);
    }
    let one = get(&b, first).await?;
    ensure_eq!(
        one.lease_until,
        Some(at(0) + lease()),
        "lease of a concurrently claimed task"
    );
    Ok(())
}

/// Claims batches of `batch` for `worker` until a claim comes back empty, retrying
/// transient errors a few times as a worker would; returns the worker and the ids it got.
async fn claim_until_empty(
    store: Handle,
    worker: String,
    batch: usize,
) -> Result<(String, Vec<TaskId>)> {
    let mut got = Vec::new();
    let mut transient = 0;
    loop {
        match store
            .claim_batch(claim_request(&worker, QueueFilter::All, batch, at(0)))
            .await
        {
            Ok(claimed) if claimed.is_empty() => return Ok((worker, got)),
            Ok(claimed) => {
                ensure!(
                    claimed.len() <= batch,
                    "{worker} asked for {batch}, got {}",
                    claimed.len()
                );
                got.extend(claimed.iter().map(|c| c.id));
            }
            Err(err) if err.is_transient() && transient < 50 => {
                transient += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(err) => return Err(err).with_context(|| format!("{worker} claiming")),
        }
    }
}
