//! SQLite on a full disk (a tmpfs of a few megabytes): writes fail with a clear error, the
//! worker says so and keeps the outcomes it holds, and it carries on by itself when space
//! returns. Every task runs once and completes once; none is lost.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wrangle::{Client, NewTask, Registry, Shutdown, TaskState, Worker, WorkerConfig};
use wrangle_testkit::{ReliabilityRow, SmallDisk, or_skip};

const TASKS: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_on_a_full_disk_reports_it_and_resumes_when_space_returns() {
    let Some(disk) = or_skip(SmallDisk::mount(16 << 20)) else {
        return;
    };
    let url = format!("sqlite://{}/store.db", disk.path().display());
    let store = wrangle::connect(&url).await.unwrap();
    let client = Client::new(store.clone());
    let ids: Vec<_> = client
        .submit_batch(
            (0..TASKS)
                .map(|i| NewTask::new("work", json!({ "i": i, "pad": "x".repeat(512) })))
                .collect(),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();

    // Side effects are counted here, off the small disk.
    let runs: Arc<Mutex<HashMap<i64, u32>>> = Arc::default();
    let mut registry = Registry::new();
    let counted = runs.clone();
    registry.handle("work", move |ctx, _payload: Value| {
        let counted = counted.clone();
        async move {
            *counted.lock().unwrap().entry(ctx.task.id).or_default() += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok::<_, String>(json!({ "ok": ctx.task.id }))
        }
    });
    let mut config = WorkerConfig::new();
    config.runners = 4;
    let shutdown = Shutdown::new();
    let worker = tokio::spawn(Worker::new(store.clone(), registry, config).run(shutdown.clone()));

    // Let some work finish, then fill the disk while the worker is busy.
    while runs.lock().unwrap().len() < 40 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let filler = disk.fill().unwrap();
    // Writing is now refused, with SQLite's own words for it.
    let refused = client
        .submit(NewTask::new("work", json!("y".repeat(256 << 10))))
        .await
        .expect_err("a 256 KiB task on a full disk");
    assert!(
        refused.to_string().contains("full"),
        "unclear error: {refused}"
    );
    let during = runs.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stalled = runs.lock().unwrap().len();
    assert!(
        stalled < TASKS,
        "the disk was full for 3 s but all tasks ran anyway ({during} then {stalled})"
    );

    // Space returns: the worker resumes without being restarted.
    std::fs::remove_file(filler).unwrap();
    let space_returned = Instant::now();
    let mut not_completed = Vec::new();
    for id in &ids {
        match client.wait(*id, Some(Duration::from_secs(60))).await {
            Ok(task) if task.state == TaskState::Completed => {
                assert_eq!(task.result, Some(json!({ "ok": id })));
            }
            other => not_completed.push((*id, other.map(|t| (t.state, t.error)))),
        }
    }
    let recovery = space_returned.elapsed();
    shutdown.graceful.cancel();
    worker.await.unwrap().unwrap();
    let runs = runs.lock().unwrap();
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n > 1).collect();
    ReliabilityRow {
        fault: "disk full: the store's tmpfs filled for 3 s under a working worker",
        store: "SQLite",
        tasks: TASKS,
        lost: not_completed.len(),
        // One worker, in process: a task run twice is counted in both columns.
        completed_twice: twice.len(),
        run_after_completing: twice.len(),
        recovery,
    }
    .record();
    assert!(
        not_completed.is_empty(),
        "not completed after space returned: {not_completed:?}"
    );
    assert_eq!(runs.len(), TASKS);
    assert!(twice.is_empty(), "tasks run more than once: {twice:?}");
}
