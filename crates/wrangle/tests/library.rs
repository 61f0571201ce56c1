//! The library on its own: a worker with Rust handlers, submit, and wait for results, on
//! the in-memory and SQLite stores.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use wrangle::{
    Client, NewTask, Registry, Shutdown, Store, TaskFilter, TaskState, Worker, WorkerConfig,
};

fn registry(flaky_calls: Arc<AtomicU32>) -> Registry {
    let mut registry = Registry::new();
    registry
        .handle("add", |_ctx, p: Value| async move {
            Ok::<_, String>(json!(
                p["a"].as_i64().unwrap_or(0) + p["b"].as_i64().unwrap_or(0)
            ))
        })
        .handle("panics", |_ctx, _p| async move {
            if true {
                panic!("boom in handler");
            }
            Ok::<_, String>(Value::Null)
        })
        .handle("slow", |_ctx, _p| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<_, String>(Value::Null)
        })
        .handle("flaky", move |ctx, _p| {
            let calls = flaky_calls.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                if ctx.task.attempt < 2 {
                    Err(format!("attempt {} failed", ctx.task.attempt))
                } else {
                    Ok(json!("ok"))
                }
            }
        });
    registry
}

async fn exercise(store: Arc<dyn Store>) {
    let flaky_calls = Arc::new(AtomicU32::new(0));
    let mut config = WorkerConfig::new();
    config.runners = 4;
    config.retry_policy = wrangle::RetryPolicy::exponential(Duration::from_millis(20));
    let shutdown = Shutdown::new();
    let worker = tokio::spawn(
        Worker::new(store.clone(), registry(flaky_calls.clone()), config).run(shutdown.clone()),
    );
    let client = Client::new(store.clone());
    let wait = Some(Duration::from_secs(20));

    let id = client
        .submit(NewTask::new("add", json!({"a": 2, "b": 3})))
        .await
        .unwrap()
        .id;
    let task = client.wait(id, wait).await.unwrap();
    assert_eq!(task.state, TaskState::Completed);
    assert_eq!(task.result, Some(json!(5)));

    let id = client
        .submit(NewTask::new("panics", Value::Null).retries(0))
        .await
        .unwrap()
        .id;
    let task = client.wait(id, wait).await.unwrap();
    assert_eq!(
        task.state,
        TaskState::Dead,
        "a panic fails the attempt, not the worker"
    );
    assert!(task.error.unwrap().contains("boom in handler"));

    let id = client
        .submit(
            NewTask::new("slow", Value::Null)
                .retries(0)
                .timeout(Duration::from_millis(100)),
        )
        .await
        .unwrap()
        .id;
    let task = client.wait(id, wait).await.unwrap();
    assert_eq!(task.state, TaskState::Dead);
    assert_eq!(task.error.as_deref(), Some("timed out after 100ms"));

    let id = client
        .submit(NewTask::new("flaky", Value::Null).retries(2))
        .await
        .unwrap()
        .id;
    let task = client.wait(id, wait).await.unwrap();
    assert_eq!(task.state, TaskState::Completed);
    assert_eq!(task.attempt, 2);
    assert_eq!(flaky_calls.load(Ordering::SeqCst), 2);

    let id = client
        .submit(NewTask::new("unknown-kind", Value::Null).retries(0))
        .await
        .unwrap()
        .id;
    let task = client.wait(id, wait).await.unwrap();
    assert_eq!(task.state, TaskState::Dead);
    assert!(
        task.error
            .unwrap()
            .contains("no handler for kind 'unknown-kind'")
    );

    // Many at once: every task completes exactly once.
    let ids: Vec<_> = client
        .submit_batch(
            (0..500)
                .map(|i| NewTask::new("add", json!({"a": i, "b": 1})))
                .collect(),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let task = client.wait(*id, wait).await.unwrap();
        assert_eq!(task.result, Some(json!(i as i64 + 1)));
        assert_eq!(task.attempts.len(), 1);
    }

    shutdown.graceful.cancel();
    let report = worker.await.unwrap().unwrap();
    assert_eq!(report.succeeded, 502);
    assert_eq!(report.stale, 0);
    assert!(
        store.list_workers().await.unwrap().is_empty(),
        "worker deregistered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_handlers_on_the_memory_store() {
    exercise(wrangle::connect("memory://").await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_handlers_on_the_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("w.db").display());
    exercise(wrangle::connect(&url).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_task_stops_its_handler_at_the_next_heartbeat() {
    let store = wrangle::connect("memory://").await.unwrap();
    let stopped = Arc::new(AtomicU32::new(0));
    let mut registry = Registry::new();
    let seen = stopped.clone();
    // Counts when the handler stops, whether it returns on the cancel signal or the
    // executor drops it first.
    struct StopGuard(Arc<AtomicU32>);
    impl Drop for StopGuard {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    registry.handle("wait-for-cancel", move |ctx, _p| {
        let guard = StopGuard(seen.clone());
        async move {
            let _guard = guard;
            ctx.cancel.cancelled().await;
            Ok::<_, String>(Value::Null)
        }
    });
    let mut config = WorkerConfig::new();
    config.lease = Duration::from_millis(600);
    let shutdown = Shutdown::new();
    let worker = tokio::spawn(Worker::new(store.clone(), registry, config).run(shutdown.clone()));
    let client = Client::new(store.clone());
    let id = client
        .submit(NewTask::new("wait-for-cancel", Value::Null))
        .await
        .unwrap()
        .id;
    while store.get_task(id).await.unwrap().unwrap().state != TaskState::Running {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    store.cancel_task(id, chrono::Utc::now()).await.unwrap();
    let started = std::time::Instant::now();
    while stopped.load(Ordering::SeqCst) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "handler was never told"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.graceful.cancel();
    let report = worker.await.unwrap().unwrap();
    assert_eq!(report.succeeded, 0, "a lost task's outcome is not written");
    assert_eq!(
        store.get_task(id).await.unwrap().unwrap().state,
        TaskState::Cancelled
    );
}

/// A claim of up to `limit` tasks by worker `w`, leased for a minute.
fn claim(limit: usize) -> wrangle::store::ClaimRequest {
    wrangle::store::ClaimRequest {
        worker: "w".into(),
        queues: wrangle::QueueFilter::All,
        limit,
        lease: Duration::from_secs(60),
        now: chrono::Utc::now(),
    }
}

/// Claims up to `limit` tasks and fails each for good (dead).
async fn claim_and_kill(store: &Arc<dyn Store>, limit: usize) {
    use wrangle::store::{Completion, Outcome};
    let doomed = store.claim_batch(claim(limit)).await.unwrap();
    let failures: Vec<Completion> = doomed
        .iter()
        .map(|task| {
            task.completion(
                "w",
                Outcome::Failed {
                    error: "no".into(),
                    retry_at: None,
                },
            )
        })
        .collect();
    store
        .complete_batch(&failures, chrono::Utc::now())
        .await
        .unwrap();
}

/// `jobs::cancel` and `jobs::retry` walk a big list job a page of 1000 ids at a time with
/// one store call per page (not one per task): 2,500 items, 1,200 of them dead, 10
/// running; retry moves exactly the dead ones, cancel every unfinished one, and the
/// store calls stay a handful.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_cancel_and_retry_move_tasks_a_page_per_store_call() {
    use wrangle::jobs::{self, NewJob};
    use wrangle::store::CountingStore;

    let counting = Arc::new(CountingStore::new(
        wrangle::connect("memory://").await.unwrap(),
    ));
    let store: Arc<dyn Store> = counting.clone();
    let items: Vec<Value> = (0..2500).map(|i| json!(i)).collect();
    jobs::create_list(&store, NewJob::list("big", "t", 2500), items, &|_| {})
        .await
        .unwrap();
    claim_and_kill(&store, 1200).await;
    store.claim_batch(claim(10)).await.unwrap();

    let before = counting.calls();
    assert_eq!(jobs::retry(&store, "big").await.unwrap(), 1200);
    let dead_left = store
        .list_tasks(TaskFilter {
            state: Some(TaskState::Dead),
            limit: 10,
            ..TaskFilter::default()
        })
        .await
        .unwrap();
    assert!(dead_left.is_empty(), "{dead_left:?}");
    assert_eq!(jobs::cancel(&store, "big").await.unwrap(), 2500);
    let calls = counting.calls() - before;
    assert!(calls < 30, "{calls} store calls for 3,700 task moves");
    let progress = jobs::progress(&store, "big").await.unwrap();
    assert_eq!(progress.status, jobs::JobStatus::Cancelled, "{progress:?}");
}

/// `tasks::retry_dead` moves a queue's dead set a page of 1000 ids per store call,
/// reports its running count after every page (the CLI's progress bar), and leaves other
/// queues' dead tasks alone; `tasks::dead_count` gives the bar its total.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_the_dead_set_goes_a_page_at_a_time_and_reports_progress() {
    use wrangle::store::CountingStore;

    let counting = Arc::new(CountingStore::new(
        wrangle::connect("memory://").await.unwrap(),
    ));
    let store: Arc<dyn Store> = counting.clone();
    let tasks: Vec<NewTask> = (0..2500)
        .map(|i| NewTask::new("t", json!(i)).queue(if i < 2200 { "a" } else { "b" }))
        .collect();
    store
        .enqueue_batch(tasks, chrono::Utc::now())
        .await
        .unwrap();
    claim_and_kill(&store, 2500).await;
    assert_eq!(
        wrangle::tasks::dead_count(&store, None).await.unwrap(),
        2500
    );
    assert_eq!(
        wrangle::tasks::dead_count(&store, Some("a")).await.unwrap(),
        2200
    );

    let before = counting.calls();
    let reported = std::sync::Mutex::new(Vec::new());
    let moved = wrangle::tasks::retry_dead(&store, Some("a"), &|n| {
        reported.lock().unwrap().push(n);
    })
    .await
    .unwrap();
    assert_eq!(moved, 2200);
    assert_eq!(*reported.lock().unwrap(), [1000, 2000, 2200]);
    let calls = counting.calls() - before;
    assert!(calls <= 6, "{calls} store calls to retry 2,200 tasks");
    assert_eq!(
        wrangle::tasks::dead_count(&store, Some("a")).await.unwrap(),
        0
    );
    assert_eq!(
        wrangle::tasks::dead_count(&store, Some("b")).await.unwrap(),
        300
    );
}

/// A worker built in code gets the CLI's checks: each bad setting is a one-line error
/// from `Worker::run` before anything starts (no spinning claim loop, no panicking
/// heartbeat, no registration in the store).
#[tokio::test]
async fn invalid_worker_configurations_are_errors_not_spins_or_panics() {
    use wrangle::pool::{AutoscaleLimits, PoolGroup};
    use wrangle::{QueueFilter, WorkerError};
    type Change = Box<dyn Fn(&mut WorkerConfig)>;
    let bad: Vec<(&str, Change)> = vec![
        ("batch size", Box::new(|c| c.batch_size = 0)),
        ("batch size", Box::new(|c| c.batch_size = 1_000_000)),
        ("lease", Box::new(|c| c.lease = Duration::ZERO)),
        (
            "lease",
            Box::new(|c| c.lease = Duration::from_secs(1_000_000_000 * 86_400)),
        ),
        ("runners", Box::new(|c| c.runners = 0)),
        ("runners", Box::new(|c| c.runners = 1_000_000_000)),
        ("worker name", Box::new(|c| c.name = String::new())),
        ("worker name", Box::new(|c| c.name = "has space".into())),
        ("queue", Box::new(|c| c.queues = QueueFilter::Only(vec![]))),
        (
            "queue name",
            Box::new(|c| c.queues = QueueFilter::Only(vec!["".into()])),
        ),
        (
            "runners",
            Box::new(|c| {
                c.pool = vec![PoolGroup {
                    name: "a".into(),
                    queues: QueueFilter::All,
                    runners: 0,
                }]
            }),
        ),
        (
            "at most",
            Box::new(|c| {
                c.pool = vec![PoolGroup {
                    name: "a".into(),
                    queues: QueueFilter::All,
                    runners: 5000,
                }]
            }),
        ),
        (
            "autoscale",
            Box::new(|c| c.autoscale = Some(AutoscaleLimits::new(3, 2))),
        ),
        (
            "idle recheck",
            Box::new(|c| c.idle_recheck = Duration::ZERO),
        ),
        (
            "shutdown timeout",
            Box::new(|c| c.shutdown_timeout = Duration::from_secs(u64::MAX / 4)),
        ),
    ];
    let store: Arc<dyn Store> = Arc::new(wrangle::MemoryStore::new());
    for (what, change) in bad {
        let mut config = WorkerConfig::new();
        change(&mut config);
        let invalid = config.validate().expect_err(what);
        let run = Worker::new(store.clone(), Registry::new(), config).run(Shutdown::new());
        let err = tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .unwrap_or_else(|_| panic!("{what}: the worker ran instead of refusing"))
            .expect_err(what);
        assert!(matches!(err, WorkerError::Config(_)), "{what}: {err}");
        let message = err.to_string();
        assert!(message.contains(what), "{what}: {message}");
        assert!(message.contains(&invalid.to_string()), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }
    assert!(store.list_workers().await.unwrap().is_empty());
    WorkerConfig::new()
        .validate()
        .expect("the defaults are valid");
}
