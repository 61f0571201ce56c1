//! PostgreSQL-specific tests, beyond the conformance suite: transactional enqueue, a
//! server crash under a live store handle and listener, concurrent first-time migration,
//! notification scoping by schema, the claim's plan with many finished tasks, and the
//! wake-up latency (printed, not asserted: performance is measured, never asserted).
//!
//! Each test starts its own throwaway server (the crash test must not disturb others).

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone as _, Utc};
use serde_json::json;
use sqlx::Row;
use wrangle_core::{ClaimRequest, NewTask, QueueFilter, Store, StoreError, TaskId, Topic};
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

/// Tasks enqueued with `enqueue_in` exist if and only if the caller's transaction commits,
/// and wake listeners only on commit; the caller's own `search_path` does not matter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_in_follows_the_callers_transaction() {
    let Some(pg) = or_skip(PostgresServer::start()) else {
        return;
    };
    let store = PostgresStore::connect_with_schema(&pg.url(), "jobs")
        .await
        .unwrap();
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
    assert_eq!(versions, vec![1], "each migration recorded once");
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
    let Some(pg) = or_skip(PostgresServer::start()) else {
        return;
    };
    let store = PostgresStore::connect_with_schema(&pg.url(), "plan")
        .await
        .unwrap();
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
