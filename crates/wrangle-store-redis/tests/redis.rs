//! Redis-specific behaviour the conformance suite cannot see: surviving a server restart,
//! wake-ups after the subscription reconnects, the key layout's hash slot, the result
//! TTL, wake-up latency, and range jobs' exact arithmetic and task index. Each test starts
//! its own throwaway server.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone as _, Utc};
use redis::AsyncCommands as _;
use serde_json::json;
use tokio::runtime::Runtime;
use wrangle_core::job::{NewJob, block_payload};
use wrangle_core::{
    ClaimRequest, Completion, NewTask, Outcome, PruneRequest, QueueFilter, Store, StoreError,
    TaskFilter, TaskState, Topic,
};
use wrangle_store_redis::{RedisOptions, RedisStore};
use wrangle_testkit::{RedisServer, or_skip};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn claim_request(queue: Option<&str>) -> ClaimRequest {
    ClaimRequest {
        worker: "w1".into(),
        queues: queue.map_or(QueueFilter::All, |q| QueueFilter::Only(vec![q.into()])),
        limit: 10,
        lease: Duration::from_secs(30),
        now: t0(),
    }
}

/// Retries `operation` while the store is unavailable, for up to 20 s.
async fn until_available<T, F, Fut>(mut operation: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match operation().await {
            Ok(value) => return value,
            Err(err) if err.is_transient() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => panic!("the store did not come back: {err}"),
        }
    }
}

/// While the server is down every operation fails as `Unavailable` (transient); once it
/// is back (its script cache empty, so EVALSHA meets NOSCRIPT) operations succeed again
/// on the same store handle, and the data written before is there.
#[test]
fn restart_while_in_use_is_unavailable_then_succeeds() {
    let Some(mut server) = or_skip(RedisServer::start()) else {
        return;
    };
    if server.is_external() {
        return;
    }
    let rt = runtime();
    let store = rt.block_on(RedisStore::connect(&server.url())).unwrap();
    let id = rt
        .block_on(store.enqueue_batch(vec![NewTask::new("k", json!(1))], t0()))
        .unwrap()[0]
        .id;

    server.stop();
    let down = rt.block_on(store.claim_batch(claim_request(None)));
    match down {
        Err(err @ StoreError::Unavailable(_)) => assert!(err.is_transient()),
        other => panic!("expected Unavailable while the server is down, got {other:?}"),
    }

    server.restart().expect("restart Redis");
    let claimed = rt.block_on(until_available(|| store.claim_batch(claim_request(None))));
    assert_eq!(
        claimed.iter().map(|c| c.id).collect::<Vec<_>>(),
        [id],
        "the task enqueued before the restart is claimed after it"
    );
}

/// A listener that was waiting when the pub/sub connection dropped wakes once it is
/// re-established (messages sent meanwhile are lost, so callers must re-check), and
/// then wakes on new activity as before.
#[test]
fn listener_wakes_after_reconnect() {
    let Some(mut server) = or_skip(RedisServer::start()) else {
        return;
    };
    if server.is_external() {
        return;
    }
    let rt = runtime();
    let store = rt.block_on(RedisStore::connect(&server.url())).unwrap();
    let mut listener = rt.block_on(store.listen(Topic::Tasks)).unwrap();
    assert!(
        !rt.block_on(listener.wait(Duration::from_millis(100)))
            .unwrap(),
        "quiet before the restart"
    );

    server.stop();
    server.restart().expect("restart Redis");
    assert!(
        rt.block_on(listener.wait(Duration::from_secs(10))).unwrap(),
        "no wake-up after the subscription reconnected"
    );

    let other = rt.block_on(RedisStore::connect(&server.url())).unwrap();
    rt.block_on(until_available(|| {
        other.enqueue_batch(vec![NewTask::new("k", json!(1))], t0())
    }));
    assert!(
        rt.block_on(listener.wait(Duration::from_secs(1))).unwrap(),
        "no wake-up for an enqueue after the reconnect"
    );
}

/// Redis Cluster's CRC16 (XMODEM) of `data`.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The Cluster hash slot of `key`: of its first non-empty `{tag}` if it has one.
fn hash_slot(key: &str) -> u16 {
    let tag = key
        .find('{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.find('}')
                .filter(|&close| close > 0)
                .map(|close| &rest[..close])
        })
        .unwrap_or(key);
    crc16(tag.as_bytes()) % 16384
}

/// Every key a store writes (tasks of two queues in every index, unique keys, workers,
/// commands) lies in the hash slot of its `{prefix}` tag, so every script touches one
/// slot.
#[test]
fn keys_of_a_store_share_one_hash_slot() {
    assert_eq!(crc16(b"123456789"), 0x31C3, "CRC16 check value");
    let Some(server) = or_skip(RedisServer::start()) else {
        return;
    };
    let rt = runtime();
    rt.block_on(async {
        let prefix = format!("slots-{}", std::process::id());
        let store = RedisStore::connect_with_prefix(&server.url(), &prefix)
            .await
            .unwrap();
        let tasks = vec![
            NewTask::new("k", json!(1)).queue("emails").unique_key("u1"),
            NewTask::new("k", json!(2)).queue("emails"),
            NewTask::new("k", json!(3))
                .queue("emails")
                .run_at(t0() + chrono::Duration::hours(1)),
            NewTask::new("k", json!(4)).queue("other"),
        ];
        store.enqueue_batch(tasks, t0()).await.unwrap();
        let mut request = claim_request(Some("emails"));
        request.limit = 1;
        let claimed = store.claim_batch(request).await.unwrap();
        let failure = Outcome::Failed {
            error: "boom".into(),
            retry_at: None,
        };
        let completion = claimed[0].completion("w1", failure);
        store.complete_batch(&[completion], t0()).await.unwrap();
        store.set_queue_paused("other", true).await.unwrap();
        let info = wrangle_core::WorkerInfo {
            name: "w1".into(),
            host: "h".into(),
            pid: 1,
            queues: vec![],
            runners: 1,
            tasks: vec![],
            started_at: t0(),
            version: "0".into(),
            ..Default::default()
        };
        store.register_worker(info, t0()).await.unwrap();
        let job = NewJob::range("scan", "k", 0, 1_000, 10).queue("scans");
        store.create_job(job, t0()).await.unwrap();
        let mut request = claim_request(Some("scans"));
        request.limit = 2;
        let blocks = store.claim_batch(request).await.unwrap();
        assert_eq!(blocks.len(), 2, "two blocks of the job");
        store
            .send_command("w1", wrangle_core::ControlCommand::Stop, t0())
            .await
            .unwrap();

        let client = redis::Client::open(server.url()).unwrap();
        let mut raw = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = raw.keys(format!("{{{prefix}}}*")).await.unwrap();
        for expected in [
            ":queue:emails:ready",
            ":queue:emails:scheduled",
            ":dead",
            ":unique:u1",
            ":job:scan",
            ":jobs",
            ":job-tasks:scan",
            ":job-queues",
            ":queue:scans:open-jobs",
        ] {
            assert!(
                keys.iter().any(|k| k.ends_with(expected)),
                "no key ending in {expected} among {keys:?}"
            );
        }
        let slot = hash_slot(&format!("{{{prefix}}}"));
        for key in &keys {
            assert_eq!(hash_slot(key), slot, "slot of {key}");
        }
    });
}

/// Finished tasks get the result TTL (their unique key too) while waiting ones keep no
/// TTL; once it passes the task is gone from reads and its unique key is free again.
#[test]
fn finished_tasks_get_the_result_ttl() {
    let Some(server) = or_skip(RedisServer::start()) else {
        return;
    };
    let rt = runtime();
    rt.block_on(async {
        let url = format!("{}?prefix=ttl&result_ttl=1h", server.url());
        let store = RedisStore::connect(&url).await.unwrap();
        let client = redis::Client::open(server.url()).unwrap();
        let raw = client.get_multiplexed_async_connection().await.unwrap();

        let ids: Vec<_> = store
            .enqueue_batch(
                vec![
                    NewTask::new("k", json!(1)).unique_key("once"),
                    NewTask::new("k", json!(2)),
                ],
                t0(),
            )
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        let mut request = claim_request(None);
        request.limit = 1;
        let claimed = store.claim_batch(request).await.unwrap();
        let done = claimed[0].completion(
            "w1",
            Outcome::Succeeded {
                result: json!("ok"),
            },
        );
        store.complete_batch(&[done], t0()).await.unwrap();
        let hour_ms = 3_600_000;
        let pttl = |key: String| {
            let mut raw = raw.clone();
            async move { raw.pttl::<_, i64>(key).await.unwrap() }
        };
        let done_ttl = pttl(format!("{{ttl}}:task:{}", ids[0])).await;
        assert!(
            0 < done_ttl && done_ttl <= hour_ms,
            "TTL of the completed task: {done_ttl}"
        );
        let key_ttl = pttl("{ttl}:unique:once".to_string()).await;
        assert!(
            0 < key_ttl && key_ttl <= hour_ms,
            "TTL of its unique key: {key_ttl}"
        );
        assert_eq!(
            pttl(format!("{{ttl}}:task:{}", ids[1])).await,
            -1,
            "a waiting task"
        );

        // With a short TTL the finished task disappears and its key can be used again.
        let (store, _) = store_with_ttl(&server, "short", 200).await;
        let first = store
            .enqueue_batch(vec![NewTask::new("k", json!(1)).unique_key("k")], t0())
            .await
            .unwrap()[0];
        store.cancel_task(first.id, t0()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            store.get_task(first.id).await.unwrap(),
            None,
            "expired task"
        );
        let listed = store
            .list_tasks(TaskFilter {
                limit: 10,
                ..TaskFilter::default()
            })
            .await
            .unwrap();
        assert!(
            listed.is_empty(),
            "expired tasks are not listed: {listed:?}"
        );
        let again = store
            .enqueue_batch(vec![NewTask::new("k", json!(2)).unique_key("k")], t0())
            .await
            .unwrap()[0];
        assert!(
            !again.duplicate && again.id > first.id,
            "the key of an expired task is free: {again:?}"
        );
    });
}

/// A worker blocked in `wait` sees a task submitted through another connection within
/// about a millisecond (median over 200 submissions, measured from the submit call).
#[test]
fn blocked_listener_wakes_within_milliseconds() {
    let Some(server) = or_skip(RedisServer::start()) else {
        return;
    };
    let rt = runtime();
    rt.block_on(async {
        let worker = RedisStore::connect(&server.url()).await.unwrap();
        let client = RedisStore::connect(&server.url()).await.unwrap();
        let mut latencies = Vec::new();
        for i in 0..200 {
            let mut listener = worker.listen(Topic::Tasks).await.unwrap();
            let waiter = tokio::spawn(async move {
                let woke = listener.wait(Duration::from_secs(2)).await.unwrap();
                (woke, Instant::now())
            });
            tokio::time::sleep(Duration::from_millis(2)).await;
            let submitted = Instant::now();
            client
                .enqueue_batch(vec![NewTask::new("k", json!(i))], t0())
                .await
                .unwrap();
            let (woke, at) = waiter.await.unwrap();
            assert!(woke, "submission {i} did not wake the worker");
            latencies.push(at.duration_since(submitted));
        }
        latencies.sort();
        let median = latencies[latencies.len() / 2];
        let p99 = latencies[latencies.len() * 99 / 100];
        eprintln!("wake-up latency from submit: median {median:?}, p99 {p99:?}");
        assert!(
            median < Duration::from_millis(5),
            "median wake-up {median:?}"
        );
    });
}

/// Successful completions (result null) of tasks `w1` claimed on their first attempt.
fn successes(claimed: &[wrangle_core::ClaimedTask]) -> Vec<Completion> {
    claimed
        .iter()
        .map(|task| {
            task.completion(
                "w1",
                Outcome::Succeeded {
                    result: json!(null),
                },
            )
        })
        .collect()
}

/// Pruning completed tasks reaches them behind more entries of another state than one
/// call looks at (12,000 dead tasks kept for longer finished first): each call goes on
/// from where the last one stopped instead of walking the kept ones again.
#[test]
fn pruning_is_not_held_back_by_many_kept_tasks_of_another_state() {
    let Some(server) = or_skip(RedisServer::start()) else {
        return;
    };
    let rt = runtime();
    rt.block_on(async {
        let store = RedisStore::connect(&server.url()).await.unwrap();
        let run = |n: usize, outcome: Outcome, at: DateTime<Utc>| {
            let store = store.clone();
            async move {
                let tasks = (0..n)
                    .map(|i| NewTask::new("k", json!(i)).retries(0))
                    .collect();
                store.enqueue_batch(tasks, at).await.unwrap();
                let mut request = claim_request(None);
                (request.limit, request.now) = (n, at);
                let claimed = store.claim_batch(request).await.unwrap();
                assert_eq!(claimed.len(), n);
                let done: Vec<_> = claimed
                    .iter()
                    .map(|t| t.completion("w1", outcome.clone()))
                    .collect();
                store.complete_batch(&done, at).await.unwrap();
            }
        };
        let failed = Outcome::Failed {
            error: "no".into(),
            retry_at: None,
        };
        run(12_000, failed, t0()).await;
        let ok = Outcome::Succeeded { result: json!(1) };
        run(500, ok, t0() + chrono::Duration::seconds(1)).await;
        let completed = |limit| PruneRequest {
            state: TaskState::Completed,
            finished_before: t0() + chrono::Duration::hours(1),
            limit,
        };
        // The first call looks at its 10,000 entries, all dead, and prunes none; the next
        // ones go on from there.
        let mut pruned = 0;
        for _ in 0..4 {
            pruned += store.prune_finished(completed(1000)).await.unwrap();
        }
        assert_eq!(
            pruned, 500,
            "every completed task is pruned within a few calls"
        );
        let stats = store.queue_stats(t0()).await.unwrap();
        assert_eq!(stats[0].counts.get(&TaskState::Dead), Some(&12_000));
        assert_eq!(stats[0].counts.get(&TaskState::Completed), None);
    });
}

/// A store under `prefix` whose finished tasks expire after `ttl_ms`, and a plain
/// connection to the same server to look at its keys.
async fn store_with_ttl(
    server: &RedisServer,
    prefix: &str,
    ttl_ms: u64,
) -> (RedisStore, redis::aio::MultiplexedConnection) {
    let options = RedisOptions {
        prefix: prefix.into(),
        result_ttl: Some(Duration::from_millis(ttl_ms)),
        ..RedisOptions::default()
    };
    let store = RedisStore::connect_with(&server.url(), options)
        .await
        .unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let raw = client.get_multiplexed_async_connection().await.unwrap();
    (store, raw)
}

/// Claims everything `store` hands out at `t0` for worker w1, 10 at a time.
async fn claim_all(store: &RedisStore) -> Vec<wrangle_core::ClaimedTask> {
    let mut all = Vec::new();
    loop {
        let claimed = store.claim_batch(claim_request(None)).await.unwrap();
        if claimed.is_empty() {
            return all;
        }
        all.extend(claimed);
    }
}

/// Lua numbers are doubles, exact only up to 2^53: range jobs near the ends of i64 still
/// get exact blocks (the last one cut at the end, with no overflow), an exact cursor, and
/// exact id sums in their tallies.
#[test]
fn range_jobs_stay_exact_beyond_2_pow_53() {
    let Some(server) = or_skip(RedisServer::start()) else {
        return;
    };
    let rt = runtime();
    rt.block_on(async {
        let store = RedisStore::connect_with_prefix(&server.url(), "exact")
            .await
            .unwrap();
        let cases = [
            ("top", i64::MAX - 10, i64::MAX, 4),
            ("bottom", i64::MIN, i64::MIN + 7, 3),
            ("across-zero", -(1 << 53) - 3, (1 << 53) + 3, 1 << 53),
            ("whole", 0, i64::MAX, i64::MAX / 2 + 1),
        ];
        for (name, start, end, block) in cases {
            let job = NewJob::range(name, "k", start, end, block);
            store.create_job(job.clone(), t0()).await.unwrap();
            let claimed = claim_all(&store).await;
            let mut expected = start;
            for task in &claimed {
                let block_end = expected.saturating_add(block).min(end);
                assert_eq!(task.payload, block_payload(expected, block_end), "{name}");
                expected = block_end;
            }
            assert_eq!(expected, end, "{name}: the blocks reach the end");
            let read = store.get_job(name).await.unwrap().unwrap();
            assert_eq!(read.cursor, end, "{name}: the cursor");
            assert_eq!(claimed.len() as u64, read.total_blocks(), "{name}");
            store
                .complete_batch(&successes(&claimed), t0())
                .await
                .unwrap();
            let tallies = store.job_tallies(name, t0()).await.unwrap();
            assert_eq!(tallies.blocks.len(), 1, "{name}: {tallies:?}");
            assert_eq!(tallies.blocks[0].state, TaskState::Completed);
            assert_eq!(tallies.blocks[0].ids, read.total_ids(), "{name}: ids");
            assert_eq!(
                tallies.ids_completed_last_minute,
                read.total_ids(),
                "{name}"
            );
        }
    });
}

/// A job's counters outlive its tasks: a pruned task leaves the job's task index but stays
/// counted, and so does one whose record expired.
#[test]
fn a_jobs_counters_keep_pruned_and_expired_tasks() {
    let Some(server) = or_skip(RedisServer::start()) else {
        return;
    };
    let rt = runtime();
    rt.block_on(async {
        let (store, mut raw) = store_with_ttl(&server, "job-index", 300).await;
        let index = "{job-index}:job-tasks:j";

        let items: Vec<NewTask> = (0..3)
            .map(|i| NewTask::new("k", json!({"start": 0, "end": 5 + i})).job("j"))
            .collect();
        store.enqueue_batch(items, t0()).await.unwrap();
        store
            .create_job(NewJob::range("j", "k", 100, 130, 10), t0())
            .await
            .unwrap();
        let claimed = claim_all(&store).await;
        assert_eq!(claimed.len(), 6, "3 items, then 3 blocks");
        assert_eq!(raw.scard::<_, u64>(index).await.unwrap(), 6);
        let tallies = store.job_tallies("j", t0()).await.unwrap();
        assert_eq!(tallies.blocks.len(), 1);
        assert_eq!(
            tallies.blocks[0].ids,
            5 + 6 + 7 + 30,
            "item payloads count as blocks"
        );

        // Two complete (and get the short TTL); pruning takes them, the counters keep them.
        store
            .complete_batch(&successes(&claimed[..2]), t0())
            .await
            .unwrap();
        let later = t0() + chrono::Duration::seconds(1);
        let completed = PruneRequest {
            state: TaskState::Completed,
            finished_before: later,
            limit: 10,
        };
        let before = store.job_tallies("j", later).await.unwrap();
        assert_eq!(store.prune_finished(completed).await.unwrap(), 2);
        assert_eq!(raw.scard::<_, u64>(index).await.unwrap(), 4, "pruned");
        assert_eq!(store.job_tallies("j", later).await.unwrap(), before);

        // Two more complete and expire: still counted.
        store
            .complete_batch(&successes(&claimed[2..4]), t0())
            .await
            .unwrap();
        let before = store.job_tallies("j", later).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        let mut tallies = store.job_tallies("j", later).await.unwrap();
        assert_eq!(tallies, before, "after expiry");
        tallies.blocks.sort_by_key(|t| t.state);
        assert_eq!(
            tallies
                .blocks
                .iter()
                .map(|t| (t.state, t.blocks, t.ids))
                .collect::<Vec<_>>(),
            [
                (TaskState::Running, 2, 20),
                (TaskState::Completed, 4, 5 + 6 + 7 + 10)
            ]
        );
        assert_eq!(tallies.ids_completed_last_minute, 28);
    });
}

/// Prunes every final state before `before`, up to `limit` in all, oldest state first.
async fn prune_all(store: &RedisStore, before: DateTime<Utc>, limit: usize) -> u64 {
    let mut pruned = 0;
    for request in PruneRequest::every_final_state(before, limit) {
        let left = limit - pruned as usize;
        let request = PruneRequest {
            limit: left,
            ..request
        };
        pruned += store.prune_finished(request).await.unwrap();
    }
    pruned
}

/// Tasks per queue and state as `list_tasks` reads them, with paused queues and no
/// throughput: what `queue_stats` must report.
async fn recount(store: &RedisStore) -> BTreeMap<String, BTreeMap<TaskState, u64>> {
    let tasks = store
        .list_tasks(TaskFilter {
            limit: 100_000,
            ..TaskFilter::default()
        })
        .await
        .unwrap();
    let mut counts: BTreeMap<String, BTreeMap<TaskState, u64>> = BTreeMap::new();
    for task in tasks {
        *counts
            .entry(task.queue)
            .or_default()
            .entry(task.state)
            .or_default() += 1;
    }
    counts
}

async fn stats_counts(
    store: &RedisStore,
    now: DateTime<Utc>,
) -> BTreeMap<String, BTreeMap<TaskState, u64>> {
    store
        .queue_stats(now)
        .await
        .unwrap()
        .into_iter()
        .map(|q| (q.queue, q.counts))
        .collect()
}

/// Puts tasks of two queues in every state: 10 of queue q completed, 3 dead, 2
/// cancelled, 5 running, 4 available and 2 scheduled; and a range job's 3 blocks on the
/// default queue, one completed.
async fn tasks_in_every_state(store: &RedisStore) {
    let mut batch: Vec<NewTask> = (0..24)
        .map(|i| NewTask::new("k", json!(i)).queue("q"))
        .collect();
    batch.extend((0..2).map(|i| {
        NewTask::new("k", json!(i))
            .queue("q")
            .run_at(t0() + chrono::Duration::hours(1))
    }));
    store.enqueue_batch(batch, t0()).await.unwrap();
    store
        .create_job(NewJob::range("j", "k", 0, 30, 10), t0())
        .await
        .unwrap();
    let mut request = claim_request(Some("q"));
    request.limit = 18;
    let claimed = store.claim_batch(request).await.unwrap();
    let mut outcomes = successes(&claimed[..10]);
    for task in &claimed[10..13] {
        outcomes.push(task.completion(
            "w1",
            Outcome::Failed {
                error: "boom".into(),
                retry_at: None,
            },
        ));
    }
    store.complete_batch(&outcomes, t0()).await.unwrap();
    for task in &claimed[13..15] {
        store.cancel_task(task.id, t0()).await.unwrap();
    }
    let blocks = store
        .claim_batch(claim_request(Some("default")))
        .await
        .unwrap();
    assert_eq!(blocks.len(), 3, "the job's blocks");
    store
        .complete_batch(&successes(&blocks[..1]), t0())
        .await
        .unwrap();
}

/// `queue_stats` reads per-queue counts instead of walking the tasks (a fixed number of
/// commands whatever the number of tasks), and the counts follow every move, range
/// job blocks, pruning and the result TTL: after each, they equal a recount of the
/// listed tasks. Completions and failures stay in the last minute's numbers after the
/// tasks are gone.
#[test]
fn queue_stats_reads_counts_that_follow_pruning_and_expiry() {
    let Some(server) = or_skip(RedisServer::start()) else {
        return;
    };
    let rt = runtime();
    rt.block_on(async {
        let (store, mut raw) = store_with_ttl(&server, "stats", 400).await;
        tasks_in_every_state(&store).await;

        let counts = stats_counts(&store, t0()).await;
        assert_eq!(counts, recount(&store).await);
        use TaskState::{Available, Cancelled, Completed, Dead, Running, Scheduled};
        let q: BTreeMap<_, _> = [
            (Completed, 10),
            (Dead, 3),
            (Cancelled, 2),
            (Running, 3),
            (Available, 6),
            (Scheduled, 2),
        ]
        .into();
        assert_eq!(counts["q"], q);
        assert_eq!(counts["default"], [(Running, 2), (Completed, 1)].into());

        // A fixed number of commands: no HMGET per task.
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async(&mut raw)
            .await
            .unwrap();
        let stats = store.queue_stats(t0()).await.unwrap();
        let q_stats = stats.iter().find(|s| s.queue == "q").unwrap();
        assert_eq!(
            (q_stats.completed_last_minute, q_stats.failed_last_minute),
            (10, 3)
        );
        assert_eq!(q_stats.oldest_due_at, Some(t0()));
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(!info.contains("cmdstat_hmget"), "{info}");

        // Pruning takes tasks off the counts.
        let later = t0() + chrono::Duration::seconds(1);
        assert_eq!(prune_all(&store, later, 4).await, 4);
        assert_eq!(stats_counts(&store, later).await, recount(&store).await);

        // Expired records leave the counts; the last minute's numbers stay. An upgrade run
        // again by hand meanwhile (the documented way to rebuild the counts) drops the
        // entries of expired records instead of leaving them to be subtracted twice.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let _: () = raw.del("{stats}:layout").await.unwrap();
        assert_eq!(store.upgrade_layout().await.unwrap(), 1);
        let counts = stats_counts(&store, later).await;
        let stored: BTreeMap<String, i64> = raw.hgetall("{stats}:queue:q:counts").await.unwrap();
        assert!(stored.values().all(|&n| n > 0), "stored counts: {stored:?}");
        assert_eq!(counts, recount(&store).await);
        assert_eq!(
            counts["q"],
            [(Running, 3), (Available, 6), (Scheduled, 2)].into()
        );
        let stats = store.queue_stats(later).await.unwrap();
        let q_stats = stats.iter().find(|s| s.queue == "q").unwrap();
        assert_eq!(
            (q_stats.completed_last_minute, q_stats.failed_last_minute),
            (10, 3)
        );
        let a_minute_on = store
            .queue_stats(later + chrono::Duration::seconds(60))
            .await
            .unwrap();
        assert_eq!(a_minute_on[1].completed_last_minute, 0);
    });
}

/// A store written before the layout was numbered (no counts, `B:finished` members that
/// are bare ids) is upgraded when a handle connects: the counts are rebuilt from the
/// tasks and the finished index is rewritten, so stats, pruning and expiry work on it.
#[test]
fn an_unnumbered_layout_is_upgraded_on_connect() {
    let Some(server) = or_skip(RedisServer::start()) else {
        return;
    };
    let rt = runtime();
    rt.block_on(async {
        let url = format!("{}?prefix=old", server.url());
        let store = RedisStore::connect(&url).await.unwrap();
        assert_eq!(
            store.upgrade_layout().await.unwrap(),
            3,
            "a new store is current"
        );
        tasks_in_every_state(&store).await;
        let before = stats_counts(&store, t0()).await;
        let worker = wrangle_core::WorkerInfo {
            name: "w-old".into(),
            lease_ms: 1000,
            ..wrangle_core::WorkerInfo::default()
        };
        store.register_worker(worker, t0()).await.unwrap();

        // Back to the old layout, as the previous version left it.
        let client = redis::Client::open(server.url()).unwrap();
        let mut raw = client.get_multiplexed_async_connection().await.unwrap();
        let finished: Vec<(String, f64)> = raw
            .zrange_withscores("{old}:finished", 0, -1)
            .await
            .unwrap();
        assert_eq!(finished.len(), 16);
        let _: () = raw.del("{old}:finished").await.unwrap();
        for (member, score) in finished {
            let id = member.split(':').next().unwrap().to_string();
            let _: () = raw.zadd("{old}:finished", id, score).await.unwrap();
        }
        for key in [
            "{old}:layout",
            "{old}:workers:lost-at",
            "{old}:stats-queues",
            "{old}:queue:q:counts",
            "{old}:queue:default:counts",
        ] {
            let _: () = raw.del(key).await.unwrap();
        }
        assert_eq!(
            stats_counts(&store, t0()).await,
            BTreeMap::new(),
            "counts gone"
        );

        let upgraded = RedisStore::connect(&url).await.unwrap();
        assert_eq!(upgraded.upgrade_layout().await.unwrap(), 3);
        assert_eq!(stats_counts(&upgraded, t0()).await, before);
        // Workers get their "lost at" score from their lease (5 s after t0 here).
        let at = |secs| t0() + chrono::Duration::seconds(secs);
        assert!(upgraded.prune_lost_workers(at(5)).await.unwrap().is_empty());
        assert_eq!(upgraded.prune_lost_workers(at(6)).await.unwrap(), ["w-old"]);

        // Run again by hand over an upgraded store: counts rebuilt, not added to.
        let _: () = raw.del("{old}:layout").await.unwrap();
        assert_eq!(upgraded.upgrade_layout().await.unwrap(), 1);
        assert_eq!(stats_counts(&upgraded, t0()).await, before);

        // A layout newer than this code knows is refused, not written over.
        let _: () = raw.set("{old}:layout", 4).await.unwrap();
        let refused = RedisStore::connect(&url).await.unwrap_err();
        assert!(
            matches!(&refused, StoreError::InvalidRequest(m) if m.contains("layout 4")),
            "{refused}"
        );

        // Layout 2 (before job counters): the upgrade counts each job's tasks.
        let sorted = |mut tallies: wrangle_core::JobTallies| {
            tallies
                .blocks
                .sort_by(|a, b| (a.state, &a.worker).cmp(&(b.state, &b.worker)));
            tallies.blocks
        };
        let jobs_before = sorted(upgraded.job_tallies("j", t0()).await.unwrap());
        assert_eq!(jobs_before.len(), 2, "{jobs_before:?}");
        let _: () = raw.del("{old}:job-counts:j").await.unwrap();
        let _: () = raw.set("{old}:layout", 2).await.unwrap();
        let upgraded = RedisStore::connect(&url).await.unwrap();
        assert_eq!(
            sorted(upgraded.job_tallies("j", t0()).await.unwrap()),
            jobs_before
        );
        let later = t0() + chrono::Duration::seconds(1);
        // Every finished task.
        assert_eq!(prune_all(&upgraded, later, 100).await, 16);
        let after = stats_counts(&upgraded, later).await;
        assert_eq!(after, recount(&upgraded).await);
        assert!(!after["q"].contains_key(&TaskState::Completed));
    });
}
