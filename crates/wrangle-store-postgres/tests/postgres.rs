//! PostgreSQL-specific tests, beyond the conformance suite: transactional enqueue, a
//! server crash under a live store handle and listener, concurrent first-time migration and
//! the migration of a version 1 schema, notification scoping by schema, the claim's plan
//! with many finished tasks (and jobs), range jobs' blocks at the top of the i64 range and
//! under many concurrent claimers, COPY enqueue of big batches, vacuuming after claims, and
//! the wake-up latency (printed, not asserted: performance is measured, never asserted).
//!
//! Each test starts its own throwaway server (the crash test must not disturb others).

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone as _, Utc};
use serde_json::json;
use sqlx::Row;
use wrangle_core::job::NewJob;
use wrangle_core::{
    ClaimRequest, NewTask, QueueFilter, Store, StoreError, TaskId, TaskState, Topic,
};
use wrangle_store_postgres::PostgresStore;
use wrangle_testkit::{PostgresServer, or_skip};

/// The fake clock: `secs` seconds into 2026.
fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(secs)
}

fn task(kind: &str) -> NewTask {
    NewTask::new(kind, json!({ "kind": kind }))
}

fn claim_request(limit: usize, now: DateTime<Utc>) -> ClaimRequest {
    ClaimRequest {
        worker: "w1".into(),
        queues: QueueFilter::All,
        limit,
        lease: Duration::from_secs(30),
        now,
    }
}

/// Ids of the tasks a claim of up to 100 takes at `now`.
async fn claim_ids(store: &PostgresStore, now: DateTime<Utc>) -> Vec<TaskId> {
    let claimed = store.claim_batch(claim_request(100, now)).await.unwrap();
    claimed.iter().map(|c| c.id).collect()
}

/// A throwaway server (or `None` where servers may be skipped and none starts) and a store
/// on it under `schema`.
async fn server_with_store(schema: &str) -> Option<(PostgresServer, PostgresStore)> {
    let pg = or_skip(PostgresServer::start())?;
    let store = PostgresStore::connect_with_schema(&pg.url(), schema)
        .await
        .unwrap();
    Some((pg, store))
}

/// Tasks enqueued with `enqueue_in` exist if and only if the caller's transaction commits,
/// and wake listeners only on commit; the caller's own `search_path` does not matter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_in_follows_the_callers_transaction() {
    let Some((pg, store)) = server_with_store("jobs").await else {
        return;
    };
    let other = PostgresStore::connect_with_schema(&pg.url(), "jobs")
        .await
        .unwrap();
    let mut listener = other.listen(Topic::Tasks).await.unwrap();
    let quiet = Duration::from_millis(200);

    let mut tx = store.pool().begin().await.unwrap();
    sqlx::query("SET LOCAL search_path TO public")
        .execute(&mut *tx)
        .await
        .unwrap();
    let enqueued = store
        .enqueue_in(&mut tx, vec![task("a"), task("b")], at(0))
        .await
        .unwrap();
    assert_eq!(enqueued.len(), 2);
    assert!(!listener.wait(quiet).await.unwrap(), "woke before commit");
    assert!(
        claim_ids(&other, at(1)).await.is_empty(),
        "visible before commit"
    );
    tx.rollback().await.unwrap();
    assert!(!listener.wait(quiet).await.unwrap(), "woke on rollback");
    assert!(
        claim_ids(&other, at(1)).await.is_empty(),
        "survived rollback"
    );

    let mut tx = store.pool().begin().await.unwrap();
    let enqueued = store
        .enqueue_in(
            &mut tx,
            vec![task("c").unique_key("k"), task("d").unique_key("k")],
            at(2),
        )
        .await
        .unwrap();
    assert!(!enqueued[0].duplicate && enqueued[1].duplicate);
    assert_eq!(enqueued[0].id, enqueued[1].id);
    tx.commit().await.unwrap();
    assert!(
        listener.wait(Duration::from_secs(2)).await.unwrap(),
        "no wake-up on commit"
    );
    assert_eq!(claim_ids(&other, at(3)).await, vec![enqueued[0].id]);
}

/// Retries `op` until it succeeds or `within` passes, returning its value and the errors
/// seen on the way (all must be transient).
async fn until_ok<T, F, Fut>(within: Duration, mut op: F) -> (T, Vec<StoreError>)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let deadline = Instant::now() + within;
    let mut errors = Vec::new();
    loop {
        match op().await {
            Ok(value) => return (value, errors),
            Err(err) => {
                assert!(err.is_transient(), "a non-transient error: {err:?}");
                assert!(
                    Instant::now() < deadline,
                    "still failing after {within:?}: {err}"
                );
                errors.push(err);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A crash of the server under a store in use: operations fail with `Unavailable` while it
/// is down; once it is back the pool reconnects by itself, the committed tasks are there,
/// a waiting listener wakes (notifications sent meanwhile are lost, so it must re-check)
/// and notifications flow again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_and_listener_recover_from_a_server_crash() {
    let Some(mut pg) = or_skip(PostgresServer::start()) else {
        return;
    };
    if pg.is_external() {
        eprintln!("skipping: cannot crash an external server");
        return;
    }
    let store = PostgresStore::connect_with_schema(&pg.url(), "chaos")
        .await
        .unwrap();
    let other = PostgresStore::connect_with_schema(&pg.url(), "chaos")
        .await
        .unwrap();
    let mut listener = store.listen(Topic::Tasks).await.unwrap();
    let before = other
        .enqueue_batch(vec![task("before")], at(0))
        .await
        .unwrap();
    assert!(listener.wait(Duration::from_secs(2)).await.unwrap());

    tokio::task::block_in_place(|| pg.kill());
    let err = store
        .enqueue_batch(vec![task("down")], at(1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = store
        .claim_batch(claim_request(10, at(1)))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");

    tokio::task::block_in_place(|| pg.restart()).expect("restart PostgreSQL");
    assert!(
        listener.wait(Duration::from_secs(15)).await.unwrap(),
        "the listener did not wake after its connection came back"
    );
    let (claimed, errors) = until_ok(Duration::from_secs(20), || {
        store.claim_batch(claim_request(10, at(2)))
    })
    .await;
    eprintln!(
        "first claim after the restart succeeded after {} failed tries",
        errors.len()
    );
    assert_eq!(
        claimed.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![before[0].id]
    );

    // LISTEN is active again: a new enqueue on the other handle wakes the listener.
    while listener.wait(Duration::from_millis(50)).await.unwrap() {}
    until_ok(Duration::from_secs(20), || {
        other.enqueue_batch(vec![task("after")], at(3))
    })
    .await;
    assert!(
        listener.wait(Duration::from_secs(2)).await.unwrap(),
        "no notification after the reconnect"
    );
}

/// Many processes starting at once against an empty database: the advisory lock lets one
/// of them migrate while the others wait, and every one of them connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_connects_migrate_once() {
    let Some(pg) = or_skip(PostgresServer::start()) else {
        return;
    };
    let connects = (0..8).map(|_| {
        let url = pg.url();
        tokio::spawn(async move { PostgresStore::connect_with_schema(&url, "fresh").await })
    });
    let mut stores = Vec::new();
    for connect in connects {
        stores.push(connect.await.unwrap().expect("a concurrent first connect"));
    }
    let versions: Vec<i32> = sqlx::query_scalar("SELECT version FROM fresh.schema_migrations")
        .fetch_all(stores[0].pool())
        .await
        .unwrap();
    assert_eq!(
        versions,
        vec![1, 2, 3, 4, 5, 6, 7],
        "each migration recorded once"
    );
    let id = stores[1]
        .enqueue_batch(vec![task("t")], at(0))
        .await
        .unwrap()[0]
        .id;
    assert_eq!(claim_ids(&stores[7], at(0)).await, vec![id]);
}

/// Stores in different schemas of one database share nothing, not even wake-ups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_are_isolated_including_notifications() {
    let Some(pg) = or_skip(PostgresServer::start()) else {
        return;
    };
    let red = PostgresStore::connect_with_schema(&pg.url(), "red")
        .await
        .unwrap();
    let url = format!("{}?schema=blue", pg.url());
    let blue = PostgresStore::connect(&url).await.unwrap();
    assert_eq!(blue.schema(), "blue");
    let mut red_listener = red.listen(Topic::Tasks).await.unwrap();
    let mut blue_listener = blue.listen(Topic::Tasks).await.unwrap();
    blue.enqueue_batch(vec![task("blue")], at(0)).await.unwrap();
    assert!(blue_listener.wait(Duration::from_secs(2)).await.unwrap());
    assert!(!red_listener.wait(Duration::from_millis(200)).await.unwrap());
    assert!(claim_ids(&red, at(1)).await.is_empty());
    assert_eq!(claim_ids(&blue, at(1)).await.len(), 1);
}

/// With many finished tasks in the table, the claim reads the partial index of waiting
/// tasks (its cost does not grow with them), not the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_plan_uses_the_waiting_index_among_many_finished_tasks() {
    let Some((_pg, store)) = server_with_store("plan").await else {
        return;
    };
    sqlx::query(
        "INSERT INTO plan.tasks (queue, kind, payload, state, run_at, max_attempts,
                                 created_at, finished_at)
         SELECT 'default', 'done', '{}', 'completed', g, 1, g, g
         FROM generate_series(1, 200000) AS g",
    )
    .execute(store.pool())
    .await
    .unwrap();
    store
        .enqueue_batch(vec![task("waiting"); 10], at(0))
        .await
        .unwrap();
    sqlx::query("ANALYZE plan.tasks")
        .execute(store.pool())
        .await
        .unwrap();

    let claim = include_str!("../src/sql/claim.sql").replace("{schema}", "\"plan\"");
    let plan: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN {claim}")))
        .bind("w1")
        .bind(at(30).timestamp_millis())
        .bind(at(0).timestamp_millis())
        .bind(1000_i64)
        .bind(None::<Vec<String>>)
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(
        plan.contains("tasks_due"),
        "the claim does not use tasks_due:\n{plan}"
    );
    assert!(
        !plan.contains("Seq Scan on tasks"),
        "the claim scans the table:\n{plan}"
    );
    assert_eq!(claim_ids(&store, at(0)).await.len(), 10);
}

/// How long a worker blocked on a `Tasks` listener takes to see a task submitted by
/// another handle (from the submit call to the wake-up). Printed for the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wake_up_latency_is_reported() {
    let Some(pg) = or_skip(PostgresServer::start()) else {
        return;
    };
    let worker = PostgresStore::connect_with_schema(&pg.url(), "latency")
        .await
        .unwrap();
    let client = PostgresStore::connect_with_schema(&pg.url(), "latency")
        .await
        .unwrap();
    let mut listener = worker.listen(Topic::Tasks).await.unwrap();
    let mut latencies = Vec::new();
    for round in 0..100 {
        let (woke_tx, woke_rx) = tokio::sync::oneshot::channel();
        let waiter = tokio::spawn(async move {
            let woke = listener.wait(Duration::from_secs(2)).await.unwrap();
            woke_tx.send(Instant::now()).unwrap();
            (woke, listener)
        });
        tokio::time::sleep(Duration::from_millis(2)).await;
        let submitted = Instant::now();
        client
            .enqueue_batch(vec![task("t")], at(round))
            .await
            .unwrap();
        let woke_at = woke_rx.await.unwrap();
        let (woke, returned) = waiter.await.unwrap();
        assert!(woke, "round {round}: the listener did not wake");
        listener = returned;
        latencies.push(woke_at.saturating_duration_since(submitted));
    }
    latencies.sort();
    eprintln!(
        "wake-up latency over {} rounds: median {:?}, p90 {:?}, max {:?}",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 9 / 10],
        latencies[latencies.len() - 1]
    );
}

/// The `(start, end)` of claimed blocks.
fn spans(claimed: &[wrangle_core::ClaimedTask]) -> Vec<(i64, i64)> {
    claimed
        .iter()
        .map(|c| {
            let field = |name: &str| c.payload[name].as_i64().expect("a block payload");
            (field("start"), field("end"))
        })
        .collect()
}

/// A database migrated by a wrangle without jobs (schema version 1, with a waiting task
/// and a finished one of a job to be) is brought to the newest version on connect: the
/// tasks survive, the counters count them, and jobs work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_schema_is_migrated_to_jobs() {
    let Some(pg) = or_skip(PostgresServer::start()) else {
        return;
    };
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    let v1 = include_str!("../src/sql/schema_v1.sql").replace("{schema}", "\"old\"");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA old;
         CREATE TABLE old.schema_migrations (version integer PRIMARY KEY,
                                             applied_at timestamptz NOT NULL DEFAULT now());
         {v1};
         INSERT INTO old.schema_migrations (version) VALUES (1);
         INSERT INTO old.tasks (queue, kind, payload, state, run_at, max_attempts, created_at)
         VALUES ('default', 'old', '{{}}', 'available', 0, 1, 0);
         INSERT INTO old.tasks (queue, kind, payload, state, run_at, max_attempts, created_at,
                                job, worker, attempt, finished_at)
         VALUES ('other', 'old', '{{\"start\": 3, \"end\": 10}}', 'completed', 0, 1, 0,
                 'old-job', 'w', 1, 0);"
    )))
    .execute(&pool)
    .await
    .unwrap();
    let store = PostgresStore::connect_with_schema(&pg.url(), "old")
        .await
        .unwrap();
    let versions: Vec<i32> =
        sqlx::query_scalar("SELECT version FROM old.schema_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(versions, vec![1, 2, 3, 4, 5, 6, 7]);
    let stats = store.queue_stats(at(0)).await.unwrap();
    assert_eq!(
        stats[0].counts.get(&TaskState::Available),
        Some(&1),
        "the version 1 task is counted by the version 6 counters: {stats:?}"
    );
    store
        .create_job(NewJob::list("old-job", "old", 1), at(0))
        .await
        .unwrap();
    let tallies = store.job_tallies("old-job", at(0)).await.unwrap();
    assert_eq!(
        tallies.blocks,
        [wrangle_core::BlockTally {
            state: TaskState::Completed,
            worker: Some("w".into()),
            blocks: 1,
            ids: 7
        }],
        "the version 7 job counters count the version 1 task"
    );
    store
        .create_job(NewJob::range("j", "scan", 0, 10, 5), at(0))
        .await
        .unwrap();
    let claimed = store.claim_batch(claim_request(3, at(1))).await.unwrap();
    assert_eq!(claimed[0].kind, "old", "the version 1 task, first");
    assert_eq!(spans(&claimed[1..]), [(0, 5), (5, 10)]);
}

/// Blocks at the top of the i64 range: the last one is cut at the end, and neither the
/// block starts, the block ends nor the cursor overflow, whatever the block size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_near_i64_max_do_not_overflow() {
    let Some((_pg, store)) = server_with_store("edge").await else {
        return;
    };
    let max = i64::MAX;
    let half = 1_i64 << 62;
    let cases = [
        (
            "small",
            max - 10,
            max,
            4,
            vec![(max - 10, max - 6), (max - 6, max - 2)],
        ),
        ("huge-block", max - 10, max, max, vec![(max - 10, max)]),
        ("two-halves", 0, max, half, vec![(0, half), (half, max)]),
        ("from-min", i64::MIN, -1, max, vec![(i64::MIN, -1)]),
    ];
    for (second, (name, start, end, block, expected)) in cases.into_iter().enumerate() {
        store
            .create_job(NewJob::range(name, "k", start, end, block), at(0))
            .await
            .unwrap();
        let claimed = store
            .claim_batch(claim_request(2, at(second as i64 + 1)))
            .await
            .unwrap();
        assert_eq!(spans(&claimed), expected, "{name}");
        let job = store.get_job(name).await.unwrap().unwrap();
        assert_eq!(job.cursor, expected.last().unwrap().1, "{name}: cursor");
        if job.cursor != end {
            let rest = store.claim_batch(claim_request(5, at(9))).await.unwrap();
            assert_eq!(
                spans(&rest),
                [(max - 2, max)],
                "{name}: the short last block"
            );
        }
        let job = store.get_job(name).await.unwrap().unwrap();
        assert_eq!(job.cursor, end, "{name}: cursor at the end");
        assert!(
            store
                .claim_batch(claim_request(5, at(9)))
                .await
                .unwrap()
                .is_empty(),
            "{name}: nothing left"
        );
    }
}

/// Several processes (store handles with their own pools), each with several claim loops,
/// share one job: every block exactly once, and a claim comes back empty only once the job
/// has no blocks left (claimers wait for each other on the job instead of skipping it, so
/// no worker goes idle while blocks remain).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_claimers_share_a_job_exactly_and_never_idle_early() {
    let Some(pg) = or_skip(PostgresServer::start()) else {
        return;
    };
    let url = format!("{}?pool_size=4", pg.url());
    let mut stores = Vec::new();
    for _ in 0..3 {
        stores.push(
            PostgresStore::connect_with_schema(&url, "many")
                .await
                .unwrap(),
        );
    }
    let (start, end, block) = (-1_000, 20_000, 7);
    stores[0]
        .create_job(NewJob::range("j", "k", start, end, block), at(0))
        .await
        .unwrap();
    let mut loops = Vec::new();
    for (n, store) in stores.iter().enumerate() {
        for l in 0..4 {
            let store = store.clone();
            let limit = 1 + (n * 4 + l) % 5;
            loops.push(tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let mut request = claim_request(limit, at(1));
                    request.worker = format!("w{n}-{l}");
                    let claimed = store.claim_batch(request).await.unwrap();
                    if claimed.is_empty() {
                        let job = store.get_job("j").await.unwrap().unwrap();
                        assert_eq!(job.cursor, job.definition.end, "an empty claim too early");
                        return got;
                    }
                    let spans = spans(&claimed);
                    if spans.len() < limit {
                        assert_eq!(spans.last().unwrap().1, end, "a short claim too early");
                    }
                    got.extend(spans);
                }
            }));
        }
    }
    let mut all = Vec::new();
    for claimer in loops {
        all.extend(claimer.await.unwrap());
    }
    all.sort_unstable();
    let mut expected = start;
    for (s, e) in &all {
        assert_eq!(*s, expected, "blocks tile the range");
        expected = *e;
    }
    assert_eq!(expected, end);
    assert_eq!(
        all.len() as u64,
        ((end - start) as u64).div_ceil(block as u64)
    );
}

/// Blocks a claim makes are inserted already running: nobody is woken for them. Creating a
/// range job wakes; a list job (nothing to make) does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claiming_blocks_wakes_nobody() {
    let Some((_pg, store)) = server_with_store("quiet").await else {
        return;
    };
    let mut listener = store.listen(Topic::Tasks).await.unwrap();
    store
        .create_job(NewJob::range("j", "k", 0, 100, 1), at(0))
        .await
        .unwrap();
    assert!(listener.wait(Duration::from_secs(2)).await.unwrap());
    assert_eq!(claim_ids(&store, at(1)).await.len(), 100);
    assert!(!listener.wait(Duration::from_millis(300)).await.unwrap());
    store
        .create_job(NewJob::list("l", "k", 0), at(2))
        .await
        .unwrap();
    assert!(!listener.wait(Duration::from_millis(300)).await.unwrap());
}

/// With many finished jobs and many finished tasks, a claim that makes blocks reads the
/// waiting tasks' index and the jobs' partial index and scans neither table, in the
/// statement or in `claim_blocks`. The plan of a claim with nothing due and no job is
/// printed for the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_that_make_blocks_scan_no_table() {
    let Some((_pg, store)) = server_with_store("jplan").await else {
        return;
    };
    let claim = include_str!("../src/sql/claim.sql").replace("{schema}", "\"jplan\"");
    let run = |prefix: &str| {
        sqlx::query(sqlx::AssertSqlSafe(format!("{prefix} {claim}")))
            .bind("w1")
            .bind(at(30).timestamp_millis())
            .bind(at(0).timestamp_millis())
            .bind(3_i64)
            .bind(None::<Vec<String>>)
    };
    let lines = |rows: Vec<sqlx::postgres::PgRow>| -> String {
        let lines: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
        lines.join("\n")
    };
    let idle = run("EXPLAIN (ANALYZE, COSTS OFF)")
        .fetch_all(store.pool())
        .await
        .unwrap();
    eprintln!("claim with nothing due and no job:\n{}", lines(idle));

    sqlx::raw_sql(
        "INSERT INTO jplan.jobs (name, kind, queue, task_kind, priority, max_attempts,
                                 start_id, end_id, block, cursor, created_at)
         SELECT 'done-' || g, 'range', 'default', 'k', 0, 1, 0, 10, 1, 10, g
         FROM generate_series(1, 20000) AS g;
         INSERT INTO jplan.tasks (queue, kind, payload, state, run_at, max_attempts,
                                  created_at, finished_at)
         SELECT 'default', 'done', '{}', 'completed', g, 1, g, g
         FROM generate_series(1, 100000) AS g;
         ANALYZE jplan.jobs; ANALYZE jplan.tasks;",
    )
    .execute(store.pool())
    .await
    .unwrap();
    store
        .create_job(NewJob::range("live", "k", 0, 1000, 10), at(0))
        .await
        .unwrap();
    let plan = lines(run("EXPLAIN").fetch_all(store.pool()).await.unwrap());
    assert!(plan.contains("tasks_due"), "no tasks_due:\n{plan}");
    assert!(
        plan.contains("jobs_claimable"),
        "no jobs_claimable:\n{plan}"
    );

    // The statements of claim_blocks do not show in the plan: count the scans instead.
    let mut tx = store.pool().begin().await.unwrap();
    let mut made = Vec::new();
    for _ in 0..8 {
        made.extend(
            run("")
                .fetch_all(&mut *tx)
                .await
                .unwrap()
                .iter()
                .map(|row| {
                    let payload: serde_json::Value = row.get("payload");
                    (
                        payload["start"].as_i64().unwrap(),
                        payload["end"].as_i64().unwrap(),
                    )
                }),
        );
    }
    assert_eq!(made.len(), 24, "3 blocks a claim");
    assert_eq!(made[23], (230, 240));
    // Rows read by sequential scans (PostgreSQL counts the claim's TID scan of the rows
    // it locked as a sequential scan, but it reads no row that way).
    let scans: Vec<(String, i64)> = sqlx::query_as(
        "SELECT relname::text, seq_tup_read FROM pg_stat_xact_user_tables
         WHERE schemaname = 'jplan' AND relname IN ('tasks', 'jobs') ORDER BY relname",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert_eq!(
        scans,
        [("jobs".to_string(), 0), ("tasks".to_string(), 0)],
        "rows read by sequential scans in 8 claims"
    );
}

/// A big batch without unique keys goes in with COPY (ids reserved first): every field
/// reads back exactly, including text COPY would otherwise take as syntax (tabs, newlines,
/// backslashes, `\N`), ids increase in request order, it wakes workers, and inside a
/// rolled-back transaction it leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_batches_go_in_by_copy_with_every_field_intact() {
    let Some((_pg, store)) = server_with_store("copy").await else {
        return;
    };
    let mut listener = store.listen(Topic::Tasks).await.unwrap();
    let awkward = "tab\there\nnewline\\backslash \\N café \r end";
    let tasks: Vec<NewTask> = (0..200)
        .map(|i| {
            let task = NewTask::new(format!("kind{}", i % 3), json!({ "i": i, "text": awkward }))
                .queue(if i % 2 == 0 { "even" } else { "odd\tq" })
                .priority(i % 5 - 2);
            match i % 4 {
                0 => task.run_at(at(100)),
                1 => task.timeout(Duration::from_millis(1500)).job("my job"),
                _ => task,
            }
        })
        .collect();
    let enqueued = store.enqueue_batch(tasks.clone(), at(0)).await.unwrap();
    assert!(
        listener.wait(Duration::from_secs(2)).await.unwrap(),
        "no wake-up"
    );
    assert_eq!(enqueued.len(), 200);
    assert!(enqueued.iter().all(|e| !e.duplicate));
    assert!(
        enqueued.windows(2).all(|w| w[0].id < w[1].id),
        "ids not increasing"
    );
    for (new, e) in tasks.iter().zip(&enqueued) {
        let stored = store.get_task(e.id).await.unwrap().unwrap();
        assert_eq!(stored.payload, new.payload);
        assert_eq!((&stored.queue, &stored.kind), (&new.queue, &new.kind));
        assert_eq!(stored.priority, new.priority);
        assert_eq!(stored.timeout, new.timeout);
        assert_eq!(stored.job, new.job);
        assert_eq!(stored.run_at, new.run_at.unwrap_or(at(0)));
        assert_eq!(stored.state, new.initial_state(at(0)));
        assert_eq!((stored.attempt, stored.max_attempts), (0, new.max_attempts));
        assert_eq!(stored.created_at, at(0));
    }

    let mut tx = store.pool().begin().await.unwrap();
    store
        .enqueue_in(&mut tx, tasks[..100].to_vec(), at(1))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM copy.tasks")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(count, 200, "the rolled-back COPY left rows");
}

/// With `vacuum_every=N` the store VACUUMs the tasks table once a handle claimed N tasks
/// (in the background; see the `vacuum` module); with 0 it never does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_vacuum_the_tasks_table_every_n_tasks() {
    let Some(pg) = or_skip(PostgresServer::start()) else {
        return;
    };
    let vacuums = |store: PostgresStore, schema: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
            "SELECT vacuum_count FROM pg_stat_user_tables
             WHERE schemaname = '{schema}' AND relname = 'tasks'"
        )))
        .fetch_one(store.pool())
        .await
        .unwrap()
    };
    let url = |every: u64| format!("{}?vacuum_every={every}", pg.url());
    for (schema, every) in [("vac_on", 150), ("vac_off", 0)] {
        let store = PostgresStore::connect_with_schema(&url(every), schema)
            .await
            .unwrap();
        store
            .enqueue_batch((0..400).map(|_| task("v")).collect(), at(0))
            .await
            .unwrap();
        for _ in 0..4 {
            store.claim_batch(claim_request(100, at(1))).await.unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut count = vacuums(store.clone(), schema).await;
        while every > 0 && count == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            count = vacuums(store.clone(), schema).await;
        }
        if every > 0 {
            assert!(
                count >= 1,
                "no VACUUM after 400 claimed tasks with vacuum_every=150"
            );
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert_eq!(
                vacuums(store, schema).await,
                0,
                "vacuumed with vacuum_every=0"
            );
        }
    }
}
