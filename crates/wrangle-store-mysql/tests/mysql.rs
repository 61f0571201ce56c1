//! MySQL-specific behaviour the conformance suite does not cover, each test on its own
//! throwaway MariaDB server: surviving a server restart, many concurrent claimers and
//! completers with no lock conflict surfacing as an error, claim cost that does not grow
//! with finished tasks, and many processes migrating a new database at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone as _, Utc};
use serde_json::json;
use sqlx::{Connection, MySqlConnection, Row};
use wrangle_core::store::{
    ClaimRequest, Completion, Outcome, QueueFilter, Store, StoreError, TaskFilter,
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

/// Claimers on four stores (as four processes) claim and complete 3,000 tasks at once
/// with small batches: every task runs exactly once, and no lock conflict surfaces as an
/// error (the store runs conflicted transactions again itself).
#[test]
fn many_claimers_and_completers_never_share_a_task_or_fail() {
    const TASKS: usize = 3_000;
    const STORES: usize = 4;
    const CLAIMERS_PER_STORE: usize = 4;
    let Some(db) = or_skip(MariaDbServer::start()) else {
        return;
    };
    let rt = runtime();
    rt.block_on(async {
        let mut stores = Vec::new();
        for _ in 0..STORES {
            stores.push(Arc::new(
                MySqlStore::connect(&db.url()).await.expect("connect"),
            ));
        }
        stores[0]
            .enqueue_batch(tasks(TASKS), at(0))
            .await
            .expect("enqueue");
        let started = Instant::now();
        let mut claimers = tokio::task::JoinSet::new();
        for (s, store) in stores.iter().enumerate() {
            for k in 0..CLAIMERS_PER_STORE {
                let store = Arc::clone(store);
                let worker = format!("w{s}-{k}");
                claimers.spawn(async move {
                    let mut ran = Vec::new();
                    loop {
                        let claimed = store
                            .claim_batch(claim(&worker, 2 + k * 3, at(1)))
                            .await
                            .unwrap_or_else(|e| panic!("{worker} claiming: {e}"));
                        if claimed.is_empty() {
                            return (worker, ran);
                        }
                        let done: Vec<Completion> = claimed
                            .iter()
                            .map(|c| Completion {
                                id: c.id,
                                attempt: c.attempt,
                                worker: worker.clone(),
                                outcome: Outcome::Succeeded {
                                    result: json!(c.id),
                                },
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
                        ran.extend(claimed.iter().map(|c| c.id));
                    }
                });
            }
        }
        let mut runner: BTreeMap<TaskId, String> = BTreeMap::new();
        while let Some(joined) = claimers.join_next().await {
            let (worker, ran) = joined.expect("a claimer panicked");
            for id in ran {
                if let Some(first) = runner.insert(id, worker.clone()) {
                    panic!("task {id} ran under both {first} and {worker}");
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
                .map(|c| Completion {
                    id: c.id,
                    attempt: c.attempt,
                    worker: "w".into(),
                    outcome: Outcome::Succeeded {
                        result: json!(null),
                    },
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
            .prune_finished(at(10), usize::MAX)
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
