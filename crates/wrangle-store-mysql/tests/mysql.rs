//! MySQL-specific behaviour the conformance suite does not cover, each test on its own
//! throwaway MariaDB server: surviving a server restart, many concurrent claimers and
//! completers with no lock conflict surfacing as an error (with plain tasks and with the
//! blocks of range jobs), claim cost that does not grow with finished tasks or finished
//! jobs, many processes migrating a new database at once, and a version 1 database
//! migrating to version 2.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone as _, Utc};
use serde_json::json;
use sqlx::{Connection, MySqlConnection, Row};
use wrangle_core::job::NewJob;
use wrangle_core::store::{
    ClaimRequest, ClaimedTask, Completion, Outcome, QueueFilter, Store, StoreError, TaskFilter,
};
use wrangle_core::task::{NewTask, TaskId, TaskState};
use wrangle_store_mysql::MySqlStore;
use wrangle_testkit::{MariaDbServer, or_skip};

fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date")
        + chrono::Duration::seconds(secs)
}

fn tasks(n: usize) -> Vec<NewTask> {
    (0..n)
        .map(|i| NewTask::new("t", json!({ "i": i })))
        .collect()
}

fn claim(worker: &str, limit: usize, now: DateTime<Utc>) -> ClaimRequest {
    ClaimRequest {
        worker: worker.to_string(),
        queues: QueueFilter::All,
        limit,
        lease: Duration::from_secs(30),
        now,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// While the server is down calls fail with a transient error (never hang or panic);
/// after it restarts the same store works again without being reopened, and the
/// committed task survived.
#[test]
fn server_restart_is_unavailable_then_recovers() {
    let Some(mut db) = or_skip(MariaDbServer::start()) else {
        return;
    };
    if db.is_external() {
        eprintln!("skipping: cannot restart an external server");
        return;
    }
    let rt = runtime();
    let store = rt
        .block_on(MySqlStore::connect(&db.url()))
        .expect("connect");
    let ids = rt
        .block_on(store.enqueue_batch(tasks(1), at(0)))
        .expect("enqueue");

    db.kill();
    let started = Instant::now();
    let down = rt.block_on(store.claim_batch(claim("w", 1, at(1))));
    match down {
        Err(err) => assert!(err.is_transient(), "error while down: {err:?}"),
        Ok(claimed) => panic!("a claim succeeded with the server down: {claimed:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "a call took {:?} to fail with the server down",
        started.elapsed()
    );
    let read = rt.block_on(store.get_task(ids[0].id));
    assert!(
        matches!(read, Err(StoreError::Unavailable(_))),
        "get_task while down: {read:?}"
    );

    db.restart().expect("restart MariaDB");
    let claimed = rt
        .block_on(store.claim_batch(claim("w", 1, at(2))))
        .expect("the first claim after the restart");
    assert_eq!(
        claimed.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![ids[0].id],
        "the task committed before the crash"
    );
}

/// `STORES` store handles (as many worker processes would have) on `db`.
async fn connect_stores(db: &MariaDbServer) -> Vec<Arc<MySqlStore>> {
    let mut stores = Vec::new();
    for _ in 0..STORES {
        stores.push(Arc::new(
            MySqlStore::connect(&db.url()).await.expect("connect"),
        ));
    }
    stores
}

/// `CLAIMERS_PER_STORE` claimers on each store (claimer k taking batches of `batch(k)`)
/// claim and complete, all at once, until nothing is left; every completion must apply.
/// Each claimer's name and the tasks it ran.
async fn claim_and_complete_until_empty(
    stores: &[Arc<MySqlStore>],
    batch: fn(usize) -> usize,
) -> Vec<(String, Vec<ClaimedTask>)> {
    let mut claimers = tokio::task::JoinSet::new();
    for (s, store) in stores.iter().enumerate() {
        for k in 0..CLAIMERS_PER_STORE {
            let store = Arc::clone(store);
            let worker = format!("w{s}-{k}");
            claimers.spawn(async move {
                let mut ran = Vec::new();
                loop {
                    let claimed = store
                        .claim_batch(claim(&worker, batch(k), at(1)))
                        .await
                        .unwrap_or_else(|e| panic!("{worker} claiming: {e}"));
                    if claimed.is_empty() {
                        return (worker, ran);
                    }
                    let done: Vec<Completion> = claimed
                        .iter()
                        .map(|c| {
                            c.completion(
                                &worker,
                                Outcome::Succeeded {
                                    result: json!(c.id),
                                },
                            )
                        })
                        .collect();
                    let statuses = store
                        .complete_batch(&done, at(2))
                        .await
                        .unwrap_or_else(|e| panic!("{worker} completing: {e}"));
                    assert!(
                        statuses.iter().all(|s| *s
                            == wrangle_core::store::CompletionStatus::Applied(
                                TaskState::Completed
                            )),
                        "{worker}'s completions: {statuses:?}"
                    );
                    ran.extend(claimed);
                }
            });
        }
    }
    let mut all = Vec::new();
    while let Some(joined) = claimers.join_next().await {
        all.push(joined.expect("a claimer panicked"));
    }
    all
}

/// Store handles in the concurrency tests, as worker processes.
const STORES: usize = 4;
/// Concurrent claimers per store handle.
const CLAIMERS_PER_STORE: usize = 4;

/// Claimers on four stores (as four processes) claim and complete 3,000 tasks at once
/// with small batches: every task runs exactly once, and no lock conflict surfaces as an
/// error (the store runs conflicted transactions again itself).
#[test]
fn many_claimers_and_completers_never_share_a_task_or_fail() {
    const TASKS: usize = 3_000;
    let Some(db) = or_skip(MariaDbServer::start()) else {
        return;
    };
    let rt = runtime();
    rt.block_on(async {
        let stores = connect_stores(&db).await;
        stores[0]
            .enqueue_batch(tasks(TASKS), at(0))
            .await
            .expect("enqueue");
        let started = Instant::now();
        let claimers = claim_and_complete_until_empty(&stores, |k| 2 + k * 3).await;
        let mut runner: BTreeMap<TaskId, String> = BTreeMap::new();
        for (worker, ran) in claimers {
            for task in ran {
                if let Some(first) = runner.insert(task.id, worker.clone()) {
                    panic!("task {} ran under both {first} and {worker}", task.id);
                }
            }
        }
        eprintln!(
            "{TASKS} tasks claimed and completed in {:?}",
            started.elapsed()
        );
        assert_eq!(runner.len(), TASKS, "tasks run");
        let completed = stores[1]
            .list_tasks(TaskFilter {
                state: Some(TaskState::Completed),
                limit: TASKS + 1,
                ..TaskFilter::default()
            })
            .await
            .expect("list");
        assert_eq!(completed.len(), TASKS, "completed tasks");
    });
}

/// The claim's locking scan reads a handful of index entries whether or not thousands of
/// finished tasks sit in the table: finished tasks share the claim index's NULL key, which
/// the scan skips in one seek. Pruning them with an unbounded limit then removes them all.
#[test]
fn claim_scan_does_not_grow_with_finished_tasks() {
    const FINISHED: usize = 5_000;
    let Some(db) = or_skip(MariaDbServer::start()) else {
        return;
    };
    let rt = runtime();
    rt.block_on(async {
        let store = MySqlStore::connect(&db.url()).await.expect("connect");
        store
            .enqueue_batch(tasks(FINISHED), at(0))
            .await
            .expect("enqueue");
        loop {
            let claimed = store
                .claim_batch(claim("w", 1_000, at(1)))
                .await
                .expect("claim");
            if claimed.is_empty() {
                break;
            }
            let done: Vec<Completion> = claimed
                .iter()
                .map(|c| {
                    c.completion(
                        "w",
                        Outcome::Succeeded {
                            result: json!(null),
                        },
                    )
                })
                .collect();
            store.complete_batch(&done, at(2)).await.expect("complete");
        }
        store
            .enqueue_batch(tasks(10), at(3))
            .await
            .expect("enqueue the waiting tasks");

        let mut conn = MySqlConnection::connect(&db.url()).await.expect("connect");
        let index_reads = async |conn: &mut MySqlConnection| -> i64 {
            let rows = sqlx::query("SHOW SESSION STATUS LIKE 'Handler_read%'")
                .fetch_all(&mut *conn)
                .await
                .expect("status");
            rows.iter()
                .map(|r| r.get::<String, _>(1).parse::<i64>().unwrap_or(0))
                .sum()
        };
        let before = index_reads(&mut conn).await;
        let mut tx = conn.begin().await.expect("begin");
        let picked = sqlx::query(include_str!("../src/sql/claim_pick.sql"))
            .bind(at(4).timestamp_millis())
            .bind("[]")
            .bind(true)
            .bind("[]")
            .bind(5_i64)
            .fetch_all(&mut *tx)
            .await
            .expect("the claim's locking scan");
        tx.rollback().await.expect("rollback");
        let reads = index_reads(&mut conn).await - before;
        eprintln!("claim of 5 with {FINISHED} finished tasks: {reads} handler reads");
        assert_eq!(picked.len(), 5, "tasks picked");
        assert!(
            reads < 50,
            "the claim read {reads} index entries with {FINISHED} finished tasks in the table"
        );
        // `usize::MAX` means "all" to callers such as `wrangle run`'s pruner.
        let pruned = store
            .prune_finished(wrangle_core::PruneRequest {
                state: wrangle_core::TaskState::Completed,
                finished_before: at(10),
                limit: usize::MAX,
            })
            .await
            .expect("prune everything");
        assert_eq!(pruned, FINISHED as u64, "finished tasks pruned");
    });
}

/// Eight processes opening a new database at the same moment all succeed: the migration
/// lock makes them wait for the first one's migration instead of racing it.
#[test]
fn concurrent_first_connects_migrate_once() {
    let Some(db) = or_skip(MariaDbServer::start()) else {
        return;
    };
    let rt = runtime();
    rt.block_on(async {
        let mut opening = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let url = db.url();
            opening.spawn(async move { MySqlStore::connect(&url).await });
        }
        let mut stores = Vec::new();
        while let Some(opened) = opening.join_next().await {
            stores.push(opened.expect("no panic").expect("connect and migrate"));
        }
        let enqueued = stores[3]
            .enqueue_batch(tasks(2), at(0))
            .await
            .expect("enqueue");
        let seen = stores[5].get_task(enqueued[1].id).await.expect("get_task");
        assert!(seen.is_some(), "a task enqueued through another store");
    });
}

/// Claimers on four stores (as four processes) take the blocks of two range jobs, after a
/// few plain tasks, and complete them: every block is handed out exactly once, the blocks
/// tile each range, and no lock conflict surfaces as an error.
#[test]
fn many_claimers_partition_range_jobs_exactly() {
    let Some(db) = or_skip(MariaDbServer::start()) else {
        return;
    };
    let rt = runtime();
    rt.block_on(async {
        let stores = connect_stores(&db).await;
        stores[0]
            .enqueue_batch(tasks(50), at(0))
            .await
            .expect("enqueue");
        stores[1]
            .create_job(NewJob::range("big", "scan", -1_000, 9_000, 7), at(0))
            .await
            .expect("create big");
        stores[2]
            .create_job(
                NewJob::range("near-max", "scan", i64::MAX - 500, i64::MAX, 11).priority(1),
                at(0),
            )
            .await
            .expect("create near-max");
        let mut all = Vec::new();
        for (_, ran) in claim_and_complete_until_empty(&stores, |k| 1 + k * 4).await {
            for c in ran.iter().filter(|c| c.job.is_some()) {
                let start = c.payload["start"].as_i64().expect("start");
                let end = c.payload["end"].as_i64().expect("end");
                all.push((c.job.clone().unwrap_or_default(), start, end, c.id));
            }
        }
        all.sort_unstable();
        let ids: std::collections::BTreeSet<TaskId> = all.iter().map(|b| b.3).collect();
        assert_eq!(ids.len(), all.len(), "every block is its own task");
        for (job, start, end, block) in [
            ("big", -1_000, 9_000, 7),
            ("near-max", i64::MAX - 500, i64::MAX, 11),
        ] {
            let spans: Vec<(i64, i64)> = all
                .iter()
                .filter(|b| b.0 == job)
                .map(|b| (b.1, b.2))
                .collect();
            let mut expected = start;
            for (s, e) in &spans {
                assert_eq!(*s, expected, "{job}: blocks tile the range");
                assert!(e > s && e - s <= block, "{job}: block {s}..{e}");
                expected = *e;
            }
            assert_eq!(expected, end, "{job}: the last block ends the range");
            let record = stores[3].get_job(job).await.expect("get_job").expect("job");
            assert_eq!(record.cursor, end, "{job}: cursor at the end");
            let tallies = stores[3].job_tallies(job, at(2)).await.expect("tallies");
            let done: u64 = tallies
                .blocks
                .iter()
                .filter(|t| t.state == TaskState::Completed)
                .map(|t| t.ids)
                .sum();
            assert_eq!(done, (end - start) as u64, "{job}: ids completed");
        }
    });
}

/// Handler reads (index entries read) of one statement on `conn`.
async fn handler_reads(
    conn: &mut MySqlConnection,
    run: impl AsyncFnOnce(&mut MySqlConnection),
) -> i64 {
    async fn total(conn: &mut MySqlConnection) -> i64 {
        let rows = sqlx::query("SHOW SESSION STATUS LIKE 'Handler_read%'")
            .fetch_all(&mut *conn)
            .await
            .expect("status");
        rows.iter()
            .map(|r| r.get::<String, _>(1).parse::<i64>().unwrap_or(0))
            .sum()
    }
    let before = total(conn).await;
    run(conn).await;
    total(conn).await - before
}

/// The read that starts every claim (paused queues, and the job to make blocks from)
/// costs a handful of index reads with no job, and still with hundreds of exhausted and
/// cancelled jobs; a job's tallies read its own tasks, not the whole table.
#[test]
fn claim_start_and_tallies_do_not_grow_with_other_rows() {
    const JOBS: usize = 300;
    let Some(db) = or_skip(MariaDbServer::start()) else {
        return;
    };
    let rt = runtime();
    rt.block_on(async {
        let store = MySqlStore::connect(&db.url()).await.expect("connect");
        let mut conn = MySqlConnection::connect(&db.url()).await.expect("connect");
        let claim_start = async |conn: &mut MySqlConnection| {
            let rows: Vec<(Option<String>, Option<String>)> =
                sqlx::query_as(include_str!("../src/sql/claim_start.sql"))
                    .bind(true)
                    .bind("[]")
                    .fetch_all(&mut *conn)
                    .await
                    .expect("claim_start");
            rows
        };
        // Once before measuring: opening the tables reads their statistics.
        let mut rows = claim_start(&mut conn).await;
        let no_jobs = handler_reads(&mut conn, async |c| rows = claim_start(c).await).await;
        assert!(rows.is_empty(), "nothing paused, no job: {rows:?}");

        for n in 0..JOBS {
            store
                .create_job(NewJob::range(format!("j{n:03}"), "k", 0, 1, 1), at(0))
                .await
                .expect("create");
        }
        store
            .create_job(NewJob::range("cancelled", "k", 0, 10, 1), at(0))
            .await
            .expect("create");
        store.cancel_job("cancelled").await.expect("cancel");
        let claimed = store
            .claim_batch(claim("w", 10_000, at(1)))
            .await
            .expect("claim every block");
        assert_eq!(claimed.len(), JOBS, "one block per job");
        store
            .enqueue_batch(tasks(2_000), at(1))
            .await
            .expect("unrelated tasks");
        let finished_jobs = handler_reads(&mut conn, async |c| rows = claim_start(c).await).await;
        assert!(rows.is_empty(), "no open job: {rows:?}");

        store
            .create_job(NewJob::range("open", "k", 0, 100, 10), at(2))
            .await
            .expect("create");
        let one_open = handler_reads(&mut conn, async |c| rows = claim_start(c).await).await;
        assert_eq!(rows, [(None, Some("open".to_string()))], "the open job");
        eprintln!(
            "claim start: {no_jobs} handler reads with no job, {finished_jobs} with {JOBS} \
             finished jobs, {one_open} with one open job"
        );
        assert!(
            no_jobs < 10 && finished_jobs < 10 && one_open < 10,
            "claim start read {no_jobs} / {finished_jobs} / {one_open} index entries"
        );

        let tallies = handler_reads(&mut conn, async |c| {
            let rows = sqlx::query(include_str!("../src/sql/job_tallies.sql"))
                .bind(0_i64)
                .bind(i64::MAX)
                .bind("j007")
                .bind("j007")
                .fetch_all(&mut *c)
                .await
                .expect("tallies");
            assert_eq!(rows.len(), 1, "one group");
        })
        .await;
        eprintln!("tallies of a one-task job among 2,300 tasks: {tallies} handler reads");
        assert!(tallies < 20, "tallies read {tallies} index entries");
    });
}

/// A database at schema version 1 (before jobs) gains the jobs table when a newer store
/// connects, keeping its tasks.
#[test]
fn a_version_1_database_migrates_to_version_2() {
    let Some(db) = or_skip(MariaDbServer::start()) else {
        return;
    };
    let rt = runtime();
    rt.block_on(async {
        let store = MySqlStore::connect(&db.url()).await.expect("connect");
        let ids = store.enqueue_batch(tasks(1), at(0)).await.expect("enqueue");
        let of_job = NewTask::new("k", serde_json::json!({"start": 3, "end": 10}))
            .queue("other")
            .job("old-job");
        store.enqueue_batch(vec![of_job], at(0)).await.expect("enqueue");
        drop(store);
        // Back to what version 1 left.
        let mut conn = MySqlConnection::connect(&db.url()).await.expect("connect");
        sqlx::raw_sql(
            "DROP TABLE wrangle_jobs; DROP TABLE wrangle_queue_counts; DROP TABLE wrangle_recent_counts;
             DROP TRIGGER wrangle_tasks_counted_insert; DROP TRIGGER wrangle_tasks_counted_delete;
             DROP TRIGGER wrangle_tasks_counted_move;
             DROP TABLE wrangle_job_counts; DROP TABLE wrangle_job_recent;
             DROP FUNCTION wrangle_job_ids;
             UPDATE wrangle_schema_version SET version = 1 WHERE id = 1",
        )
        .execute(&mut conn)
        .await
        .expect("downgrade");

        let store = MySqlStore::connect(&db.url()).await.expect("migrate");
        let version: i32 = sqlx::query_scalar("SELECT version FROM wrangle_schema_version")
            .fetch_one(&mut conn)
            .await
            .expect("version");
        assert_eq!(
            version, 6,
            "schema version after the migration (jobs, log rings, turns, counters, job counters)"
        );
        let stats = store.queue_stats(at(1)).await.expect("stats");
        assert_eq!(
            stats[0].counts.get(&TaskState::Available),
            Some(&1),
            "the counters are seeded from the tasks already there"
        );
        store
            .create_job(NewJob::list("old-job", "k", 1), at(1))
            .await
            .expect("create a job");
        let tallies = store.job_tallies("old-job", at(1)).await.expect("tallies");
        assert_eq!(
            tallies.blocks,
            [wrangle_core::BlockTally {
                state: TaskState::Available,
                worker: None,
                blocks: 1,
                ids: 7
            }],
            "the job counters are seeded from the tasks already there"
        );
        store
            .create_job(NewJob::range("j", "k", 0, 3, 2), at(1))
            .await
            .expect("create a job");
        let claimed = store
            .claim_batch(claim("w", 5, at(2)))
            .await
            .expect("claim");
        assert_eq!(claimed[0].id, ids[0].id, "the old task first");
        assert_eq!(claimed.len(), 4, "then the old job's task and both blocks");
    });
}
