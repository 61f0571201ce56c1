//! Jobs: range jobs cost one record to create and hand out their blocks lazily through
//! claims (due tasks first, cursor advanced atomically, never a block twice); list jobs
//! make no blocks; cancelled jobs and paused queues make none; tallies count blocks and ids
//! per state and worker, keep what pruning deleted, and go with the job.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use serde_json::json;
use wrangle_core::job::{BlockTally, NewJob, block_payload};
use wrangle_core::{ClaimedTask, NewTask, QueueFilter, StoreError, TaskFilter, TaskState, Topic};

use crate::Handle;
use crate::ensure_eq;
use crate::support::{
    at, claim, claim_from, complete_as, completion, enqueue, enqueue_one, ensure_nothing_claimable,
    failed, list_ids, succeeded, task,
};

cases![
    creating_a_huge_range_job_stores_no_blocks,
    claims_make_blocks_in_order_from_the_cursor,
    due_tasks_and_retries_come_before_new_blocks,
    concurrent_claimers_partition_the_range_exactly,
    paused_or_filtered_queues_make_no_blocks,
    cancelled_jobs_make_no_blocks,
    jobs_are_ordered_by_priority_then_age,
    a_claim_goes_on_to_the_next_job_when_one_runs_out,
    list_jobs_make_no_blocks,
    bad_or_duplicate_jobs_are_rejected,
    tallies_count_blocks_and_ids_per_state_and_worker,
    pruning_a_jobs_tasks_keeps_its_tallies,
    deleting_a_job_drops_its_tallies,
    creating_a_range_job_wakes_idle_workers,
    deleting_a_job_removes_it_and_its_tasks_in_batches,
];

/// The `(start, end)` of claimed blocks, in order.
fn spans(claimed: &[ClaimedTask]) -> Result<Vec<(i64, i64)>> {
    claimed
        .iter()
        .map(|c| {
            let start = c.payload.get("start").and_then(|v| v.as_i64());
            let end = c.payload.get("end").and_then(|v| v.as_i64());
            start
                .zip(end)
                .with_context(|| format!("task {} is not a block: {}", c.id, c.payload))
        })
        .collect()
}

/// Creates `job` at `now`, failing the case on an error.
async fn create(store: &Handle, job: NewJob, now: i64) -> Result<()> {
    store
        .create_job(job, at(now))
        .await
        .context("create_job")
        .map(drop)
}

/// Tasks of job `name`, any state.
async fn job_task_ids(store: &Handle, name: &str) -> Result<Vec<i64>> {
    list_ids(
        store,
        TaskFilter {
            job: Some(name.to_string()),
            limit: 10_000,
            ..TaskFilter::default()
        },
    )
    .await
}

/// Creating a job over 10^12 ids stores its record and no task; the record reads back
/// with its definition and the cursor at the start.
async fn creating_a_huge_range_job_stores_no_blocks(a: Handle, b: Handle) -> Result<()> {
    let job = NewJob::range("huge", "scan", 0, 1_000_000_000_000, 1000)
        .queue("q")
        .retries(2)
        .timeout(Duration::from_secs(9))
        .priority(3);
    let created = a.create_job(job.clone(), at(0)).await?;
    ensure_eq!(created.definition, job, "the created job's definition");
    ensure_eq!(created.cursor, 0, "a new job's cursor");
    ensure!(!created.cancelled, "a new job is not cancelled");
    let read = b.get_job("huge").await?.context("get_job after create")?;
    ensure_eq!(read, created, "the job read back on the other handle");
    ensure_eq!(read.total_blocks(), 1_000_000_000, "blocks in the job");
    ensure!(
        job_task_ids(&b, "huge").await?.is_empty(),
        "creating a range job must not create its blocks"
    );
    ensure_eq!(b.get_job("nope").await?, None, "an unknown job");
    Ok(())
}

/// A claim with nothing due makes up to `limit` blocks from the cursor: running under the
/// claimer at attempt 1, with the job's queue, kind, attempts and timeout, the block as
/// payload, and the last block cut at the end of the range.
async fn claims_make_blocks_in_order_from_the_cursor(a: Handle, b: Handle) -> Result<()> {
    let job = NewJob::range("j", "scan", 100, 350, 100)
        .queue("q")
        .retries(4)
        .timeout(Duration::from_secs(7));
    create(&a, job, 0).await?;
    let first = claim(&a, "w1", 2, at(1)).await?;
    ensure_eq!(
        spans(&first)?,
        [(100, 200), (200, 300)],
        "the first claim's blocks"
    );
    for block in &first {
        ensure_eq!(block.attempt, 1, "a new block's attempt");
        ensure_eq!(block.max_attempts, 5, "a block's attempts");
        ensure_eq!(
            block.timeout,
            Some(Duration::from_secs(7)),
            "a block's timeout"
        );
        ensure_eq!(
            (
                block.queue.as_str(),
                block.kind.as_str(),
                block.job.as_deref()
            ),
            ("q", "scan", Some("j")),
            "a block's queue, kind and job"
        );
        ensure_eq!(block.lease_until, at(31), "a block's lease");
    }
    ensure_eq!(b.get_job("j").await?.context("job")?.cursor, 300, "cursor");
    let rest = claim(&b, "w2", 10, at(2)).await?;
    ensure_eq!(spans(&rest)?, [(300, 350)], "the last, short block");
    ensure_eq!(
        b.get_job("j").await?.context("job")?.cursor,
        350,
        "cursor at end"
    );
    ensure_nothing_claimable(&a, at(3)).await?;

    let stored = b
        .get_task(first[0].id)
        .await?
        .context("the block as a task")?;
    ensure_eq!(stored.state, TaskState::Running, "a claimed block's state");
    ensure_eq!(
        stored.worker.as_deref(),
        Some("w1"),
        "a claimed block's worker"
    );
    ensure_eq!(stored.payload, block_payload(100, 200), "a block's payload");
    complete_as(
        &a,
        completion(&first[0], "w1", succeeded(json!(1))),
        at(4),
        TaskState::Completed,
    )
    .await?;
    ensure_nothing_claimable(&a, at(5)).await
}

/// Due tasks, a failed block's retry among them, are claimed before new blocks are made.
async fn due_tasks_and_retries_come_before_new_blocks(a: Handle, b: Handle) -> Result<()> {
    let plain = enqueue_one(&a, task("plain"), at(0)).await?;
    create(&a, NewJob::range("j", "scan", 0, 10, 1).queue("default"), 0).await?;
    let claimed = claim(&b, "w1", 2, at(1)).await?;
    ensure_eq!(claimed[0].id, plain, "the due task comes first");
    ensure_eq!(spans(&claimed[1..])?, [(0, 1)], "then one new block");
    complete_as(
        &b,
        completion(&claimed[1], "w1", failed("boom", Some(at(2)))),
        at(1),
        TaskState::Retryable,
    )
    .await?;
    let next = claim(&a, "w2", 2, at(2)).await?;
    ensure_eq!(
        next[0].id,
        claimed[1].id,
        "the failed block is retried first"
    );
    ensure_eq!(next[0].attempt, 2, "as its second attempt");
    ensure_eq!(spans(&next[1..])?, [(1, 2)], "then the next new block");
    Ok(())
}

/// Two handles claiming at once from one job get every block exactly once, the last one
/// short, and then nothing.
async fn concurrent_claimers_partition_the_range_exactly(a: Handle, b: Handle) -> Result<()> {
    create(&a, NewJob::range("j", "scan", -50, 1_000, 30), 0).await?;
    let claimer = |store: Handle, worker: &'static str| async move {
        let mut got = Vec::new();
        loop {
            let claimed = claim(&store, worker, 3, at(1)).await?;
            if claimed.is_empty() {
                return anyhow::Ok(got);
            }
            got.extend(spans(&claimed)?);
        }
    };
    let (left, right) = tokio::join!(
        tokio::spawn(claimer(a.clone(), "w1")),
        tokio::spawn(claimer(b.clone(), "w2"))
    );
    let mut all: Vec<(i64, i64)> = left??;
    all.extend(right??);
    all.sort_unstable();
    ensure_eq!(all.len(), 35, "blocks of 30 over 1050 ids");
    let mut expected = -50;
    for (start, end) in &all {
        ensure_eq!(
            *start,
            expected,
            "blocks must tile the range without gaps or overlaps"
        );
        expected = *end;
    }
    ensure_eq!(
        expected,
        1_000,
        "the last block ends at the end of the range"
    );
    ensure_eq!(job_task_ids(&a, "j").await?.len(), 35, "one task per block");
    Ok(())
}

/// A job's queue that the claim does not ask for, or that is paused, makes no block;
/// resuming it does.
async fn paused_or_filtered_queues_make_no_blocks(a: Handle, b: Handle) -> Result<()> {
    create(&a, NewJob::range("j", "scan", 0, 10, 5).queue("q"), 0).await?;
    let other = QueueFilter::Only(vec!["other".into()]);
    ensure!(
        claim_from(&b, "w1", other, 5, at(1)).await?.is_empty(),
        "a claim from another queue must not make blocks"
    );
    b.set_queue_paused("q", true).await?;
    ensure_nothing_claimable(&b, at(1)).await?;
    b.set_queue_paused("q", false).await?;
    let only_q = QueueFilter::Only(vec!["q".into()]);
    let claimed = claim_from(&a, "w1", only_q, 5, at(2)).await?;
    ensure_eq!(spans(&claimed)?, [(0, 5), (5, 10)], "blocks once resumed");
    Ok(())
}

/// A cancelled job makes no more blocks; its record says so; cancelling an unknown job
/// fails with JobNotFound.
async fn cancelled_jobs_make_no_blocks(a: Handle, b: Handle) -> Result<()> {
    create(&a, NewJob::range("j", "scan", 0, 100, 10), 0).await?;
    claim(&a, "w1", 1, at(1)).await?;
    let cancelled = b.cancel_job("j").await?;
    ensure!(cancelled.cancelled, "cancel_job returns the cancelled job");
    ensure_eq!(cancelled.cursor, 10, "the cursor where it stopped");
    ensure_nothing_claimable(&a, at(2)).await?;
    ensure!(
        a.get_job("j").await?.context("job")?.cancelled,
        "the job reads back cancelled"
    );
    match b.cancel_job("nope").await {
        Err(StoreError::JobNotFound(name)) => ensure_eq!(name, "nope", "the missing job"),
        other => anyhow::bail!("cancel of an unknown job gave {other:?}"),
    }
    Ok(())
}

/// Blocks come from the highest-priority job first, then the oldest; `list_jobs` is
/// sorted by name.
async fn jobs_are_ordered_by_priority_then_age(a: Handle, b: Handle) -> Result<()> {
    create(&a, NewJob::range("c-old", "k", 0, 1, 1), 0).await?;
    create(&a, NewJob::range("b-new", "k", 10, 11, 1), 5).await?;
    create(&a, NewJob::range("a-urgent", "k", 20, 21, 1).priority(9), 6).await?;
    let mut order = Vec::new();
    for second in 10..13 {
        let claimed = claim(&b, "w", 1, at(second)).await?;
        order.extend(claimed.iter().map(|c| c.job.clone().unwrap_or_default()));
    }
    ensure_eq!(order, ["a-urgent", "c-old", "b-new"], "jobs in claim order");
    let names: Vec<String> = a
        .list_jobs()
        .await?
        .iter()
        .map(|j| j.name().to_string())
        .collect();
    ensure_eq!(names, ["a-urgent", "b-new", "c-old"], "list_jobs by name");
    Ok(())
}

/// A claim goes on to the next job (by priority, then age) when one runs out, so a worker
/// gets a full batch while any job has blocks left.
async fn a_claim_goes_on_to_the_next_job_when_one_runs_out(a: Handle, b: Handle) -> Result<()> {
    for (name, start, priority, created) in
        [("old", 100, 0, 1), ("urgent", 0, 5, 2), ("new", 200, 0, 3)]
    {
        create(
            &a,
            NewJob::range(name, "k", start, start + 2, 1).priority(priority),
            created,
        )
        .await?;
    }
    let claimed = claim(&b, "w", 5, at(4)).await?;
    let jobs: Vec<&str> = claimed.iter().filter_map(|c| c.job.as_deref()).collect();
    ensure_eq!(
        jobs,
        ["urgent", "urgent", "old", "old", "new"],
        "jobs of one claim"
    );
    ensure_eq!(
        spans(&claimed)?,
        [(0, 1), (1, 2), (100, 101), (101, 102), (200, 201)],
        "blocks of one claim"
    );
    ensure_eq!(
        spans(&claim(&a, "w", 5, at(5)).await?)?,
        [(201, 202)],
        "the rest"
    );
    Ok(())
}

/// A list job's tasks are enqueued first; its record starts with the cursor at the end,
/// so claims return its tasks and make no blocks.
async fn list_jobs_make_no_blocks(a: Handle, b: Handle) -> Result<()> {
    let items = ["x", "y", "z"]
        .into_iter()
        .map(|item| NewTask::new("each", json!(item)).job("l").queue("q"))
        .collect::<Vec<_>>();
    let ids = enqueue(&a, items, at(0)).await?;
    let job = b
        .create_job(NewJob::list("l", "each", 3).queue("q"), at(0))
        .await?;
    ensure_eq!(
        (job.cursor, job.total_blocks()),
        (3, 3),
        "a list job's cursor and size"
    );
    let claimed = claim(&a, "w", 10, at(1)).await?;
    let claimed_ids: BTreeSet<i64> = claimed.iter().map(|c| c.id).collect();
    ensure_eq!(
        claimed_ids,
        ids.into_iter().collect(),
        "only the list's own tasks"
    );
    Ok(())
}

/// A duplicate name fails with JobExists, a bad definition with InvalidRequest, tallies
/// of an unknown job with JobNotFound; nothing is created by the failures.
async fn bad_or_duplicate_jobs_are_rejected(a: Handle, b: Handle) -> Result<()> {
    create(&a, NewJob::range("j", "k", 0, 10, 1), 0).await?;
    match b.create_job(NewJob::range("j", "k", 0, 99, 1), at(1)).await {
        Err(StoreError::JobExists(name)) => ensure_eq!(name, "j", "the existing job"),
        other => anyhow::bail!("a duplicate job name gave {other:?}"),
    }
    ensure_eq!(
        b.get_job("j").await?.context("job")?.definition.end,
        10,
        "first kept"
    );
    for bad in [
        NewJob::range("zero", "k", 0, 10, 0),
        NewJob::range("backwards", "k", 10, 0, 1),
        NewJob::range(" ", "k", 0, 10, 1),
    ] {
        let name = bad.name.clone();
        match b.create_job(bad, at(1)).await {
            Err(StoreError::InvalidRequest(_)) => {}
            other => anyhow::bail!("bad job {name:?} gave {other:?}"),
        }
        ensure_eq!(
            b.get_job(&name).await?,
            None,
            "a rejected job is not stored"
        );
    }
    match a.job_tallies("nope", at(1)).await {
        Err(StoreError::JobNotFound(_)) => Ok(()),
        other => anyhow::bail!("tallies of an unknown job gave {other:?}"),
    }
}

/// Tallies group the job's tasks by state and worker with their block and id counts, and
/// count the ids completed in the last minute.
async fn tallies_count_blocks_and_ids_per_state_and_worker(a: Handle, b: Handle) -> Result<()> {
    // Blocks of 100, 100 and 50 ids; one attempt each.
    create(&a, NewJob::range("j", "k", 0, 250, 100).retries(0), 0).await?;
    let by_a = claim(&a, "wa", 2, at(1)).await?;
    let by_b = claim(&b, "wb", 5, at(1)).await?;
    ensure_eq!(spans(&by_b)?, [(200, 250)], "the short block");
    complete_as(
        &a,
        completion(&by_a[0], "wa", succeeded(json!(0))),
        at(10),
        TaskState::Completed,
    )
    .await?;
    complete_as(
        &a,
        completion(&by_a[1], "wa", failed("no", None)),
        at(100),
        TaskState::Dead,
    )
    .await?;
    let expected = [
        tally(TaskState::Running, "wb", 1, 50),
        tally(TaskState::Completed, "wa", 1, 100),
        tally(TaskState::Dead, "wa", 1, 100),
    ];
    ensure_eq!(
        sorted_tallies(&b, "j", 100).await?,
        (expected.to_vec(), 0),
        "tallies at 100 s (the completion at 10 s is older than a minute, a death is no completion)"
    );
    ensure_eq!(
        sorted_tallies(&b, "j", 20).await?.1,
        100,
        "ids completed within the minute"
    );
    Ok(())
}

/// A group of a job's tasks held by `worker`.
fn tally(state: TaskState, worker: &str, blocks: u64, ids: u64) -> BlockTally {
    BlockTally {
        state,
        worker: Some(worker.to_string()),
        blocks,
        ids,
    }
}

/// Job `name`'s tallies at `now` seconds, sorted by (state, worker), and its ids completed
/// in the last minute.
async fn sorted_tallies(store: &Handle, name: &str, now: i64) -> Result<(Vec<BlockTally>, u64)> {
    let mut tallies = store.job_tallies(name, at(now)).await?;
    tallies
        .blocks
        .sort_by(|x, y| (x.state, &x.worker).cmp(&(y.state, &y.worker)));
    Ok((tallies.blocks, tallies.ids_completed_last_minute))
}

/// Pruning deletes a job's finished tasks but not their counts: the tallies, and so the
/// job's progress, stay as they were; a task still running is never pruned.
async fn pruning_a_jobs_tasks_keeps_its_tallies(a: Handle, b: Handle) -> Result<()> {
    create(&a, NewJob::range("j", "k", 0, 30, 10).retries(0), 0).await?;
    let blocks = claim(&a, "w", 3, at(1)).await?;
    ensure_eq!(blocks.len(), 3, "blocks claimed");
    complete_as(
        &a,
        completion(&blocks[0], "w", succeeded(json!(0))),
        at(2),
        TaskState::Completed,
    )
    .await?;
    complete_as(
        &a,
        completion(&blocks[1], "w", failed("no", None)),
        at(2),
        TaskState::Dead,
    )
    .await?;
    let before = sorted_tallies(&b, "j", 3).await?;
    ensure_eq!(before.1, 10, "ids completed in the minute");
    for state in [TaskState::Completed, TaskState::Dead] {
        let request = wrangle_core::PruneRequest {
            state,
            finished_before: at(3),
            limit: 10,
        };
        ensure_eq!(b.prune_finished(request).await?, 1, "{state} tasks pruned");
    }
    ensure_eq!(
        job_task_ids(&a, "j").await?,
        [blocks[2].id],
        "the running block is all that is left"
    );
    ensure_eq!(
        sorted_tallies(&a, "j", 3).await?,
        before,
        "tallies after pruning"
    );
    complete_as(
        &b,
        completion(&blocks[2], "w", succeeded(json!(2))),
        at(4),
        TaskState::Completed,
    )
    .await?;
    ensure_eq!(
        sorted_tallies(&a, "j", 4).await?,
        (
            vec![
                tally(TaskState::Completed, "w", 2, 20),
                tally(TaskState::Dead, "w", 1, 10)
            ],
            20
        ),
        "tallies once the last block completed"
    );
    Ok(())
}

/// A job's tallies go with its record: a job created again under the name of a deleted one
/// starts from nothing.
async fn deleting_a_job_drops_its_tallies(a: Handle, b: Handle) -> Result<()> {
    create(&a, NewJob::range("j", "k", 0, 20, 10), 0).await?;
    let blocks = claim(&a, "w", 1, at(1)).await?;
    complete_as(
        &a,
        completion(&blocks[0], "w", succeeded(json!(0))),
        at(2),
        TaskState::Completed,
    )
    .await?;
    let request = wrangle_core::PruneRequest {
        state: TaskState::Completed,
        finished_before: at(3),
        limit: 10,
    };
    ensure_eq!(b.prune_finished(request).await?, 1, "tasks pruned");
    while !b.delete_job("j", 10).await?.done {}
    create(&a, NewJob::range("j", "k", 0, 20, 10), 5).await?;
    ensure_eq!(
        sorted_tallies(&b, "j", 6).await?,
        (Vec::new(), 0),
        "tallies of the new job"
    );
    Ok(())
}

/// A worker idle on the `Tasks` topic wakes when a range job is created on the other
/// handle: its blocks are claimable although no task was enqueued.
async fn creating_a_range_job_wakes_idle_workers(a: Handle, b: Handle) -> Result<()> {
    let mut listener = a.listen(Topic::Tasks).await?;
    let creator = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        b.create_job(NewJob::range("j", "k", 0, 10, 1), at(0)).await
    });
    let woke = listener.wait(Duration::from_secs(1)).await?;
    creator.await??;
    ensure!(
        woke,
        "creating a range job did not wake a Tasks listener within 1 s"
    );
    Ok(())
}

/// `delete_job` stops the job making blocks, deletes its tasks in every state a batch at a
/// time (a running one's completion is then stale, and its log ring goes), and removes the
/// record once none is left; another job and plain tasks are untouched, and the counts
/// no longer include the deleted tasks.
async fn deleting_a_job_removes_it_and_its_tasks_in_batches(a: Handle, b: Handle) -> Result<()> {
    create(&a, NewJob::range("doomed", "scan", 0, 100, 10), 0).await?;
    create(&a, NewJob::range("kept", "scan", 0, 20, 10), 0).await?;
    let plain = enqueue_one(&a, task("t"), at(0)).await?;
    // 4 blocks of "doomed": one completes, one fails for good, two stay running.
    let claimed = claim(&a, "w", 5, at(1)).await?;
    let doomed: Vec<&ClaimedTask> = claimed
        .iter()
        .filter(|c| c.job.as_deref() == Some("doomed"))
        .collect();
    ensure_eq!(doomed.len(), 4, "blocks of the doomed job claimed");
    complete_as(
        &a,
        completion(doomed[0], "w", succeeded(json!(1))),
        at(2),
        TaskState::Completed,
    )
    .await?;
    let give_up = failed("no", None);
    complete_as(
        &a,
        completion(doomed[1], "w", give_up),
        at(2),
        TaskState::Dead,
    )
    .await?;
    let append = wrangle_core::log::LogAppend {
        owner: wrangle_core::log::LogOwner::Task(doomed[2].id),
        lines: vec![wrangle_core::log::NewLogLine::new(
            at(2),
            wrangle_core::log::LogSource::Stdout,
            "x",
        )],
    };
    a.append_logs(&[append], 10).await?;

    let first = b.delete_job("doomed", 3).await?;
    ensure_eq!((first.tasks, first.done), (3, false), "first batch");
    ensure_eq!(
        claim_from(&a, "w", QueueFilter::All, 10, at(3))
            .await?
            .iter()
            .filter(|c| c.job.as_deref() == Some("doomed"))
            .count(),
        0,
        "blocks made after the delete began"
    );
    let mut deleted = first.tasks;
    loop {
        let next = b.delete_job("doomed", 3).await?;
        deleted += next.tasks;
        if next.done {
            break;
        }
    }
    ensure_eq!(deleted, 4, "tasks deleted in all");
    ensure_eq!(
        b.get_job("doomed").await?.map(|j| j.definition.name),
        None,
        "record"
    );
    ensure_eq!(job_task_ids(&a, "doomed").await?.len(), 0, "tasks left");
    ensure_eq!(
        a.read_log(&wrangle_core::log::LogOwner::Task(doomed[2].id), 0, 10)
            .await?
            .len(),
        0,
        "log ring of a deleted task"
    );
    let stale = a
        .complete_batch(&[completion(doomed[3], "w", succeeded(json!(2)))], at(4))
        .await?;
    ensure_eq!(
        stale,
        vec![wrangle_core::CompletionStatus::Stale],
        "completion of a deleted task"
    );
    ensure!(b.get_job("kept").await?.is_some(), "the other job stays");
    ensure!(a.get_task(plain).await?.is_some(), "a plain task stays");
    let counted: u64 = a
        .queue_stats(at(4))
        .await?
        .iter()
        .flat_map(|q| q.counts.values())
        .sum();
    let listed = list_ids(
        &a,
        TaskFilter {
            limit: 10_000,
            ..TaskFilter::default()
        },
    )
    .await?;
    ensure_eq!(
        counted,
        listed.len() as u64,
        "queue_stats counts what is listed"
    );
    ensure!(
        matches!(
            b.delete_job("doomed", 3).await,
            Err(StoreError::JobNotFound(_))
        ),
        "deleting it again: not found"
    );
    Ok(())
}
