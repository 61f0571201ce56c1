//! A runner that breaks every rule of the protocol: garbage lines, bytes that are not
//! UTF-8, a 100 MB line, never replying, closing its stdout, forking and exiting. Each of
//! its tasks ends with a clear error (or succeeds, where the rule broken was harmless),
//! the worker carries on with a fresh runner process, and its memory stays bounded (the
//! 100 MB line is never held).

use std::time::Duration;

use serde_json::{Value, json};
use wrangle::{
    Client, NewTask, Registry, RunnerExecutor, RunnerSpec, Shutdown, TaskState, Worker,
    WorkerConfig,
};

const RUNNER: &str = r#"
import json, os, sys, time
out = sys.stdout.buffer
def reply(id, **fields):
    out.write(json.dumps(dict(id=id, **fields)).encode() + b"\n")
    out.flush()
for raw in sys.stdin.buffer:
    request = json.loads(raw)
    id, what = request["id"], request["payload"]
    if what == "ok":
        reply(id, ok=True, result="fine")
    elif what == "garbage":
        out.write(b'not json\n{"id": "x"}\n[1, 2]\n\n{"id": 999999, "ok": true}\n')
        reply(id, ok=True, result="after garbage")
    elif what == "not-utf8":
        out.write(b"\xff\xfe\xfd\x00\n")
        reply(id, ok=True, result="after bytes")
    elif what == "huge":
        chunk = b"x" * (1 << 20)
        for _ in range(100):
            out.write(chunk)
        reply(id, ok=True, result="never read")
    elif what == "silent":
        pass
    elif what == "close-stdout":
        out.flush()
        os.close(1)
        time.sleep(60)
    elif what == "fork-and-exit":
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        os._exit(3)
    elif what == "error":
        reply(id, ok=False, error="a clear error")
"#;

/// Peak resident memory of this process (VmHWM), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_runner_fails_its_tasks_clearly_and_the_worker_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("runner.py");
    std::fs::write(&script, RUNNER).unwrap();
    let store = wrangle::connect("memory://").await.unwrap();
    let client = Client::new(store.clone());
    let mut registry = Registry::new();
    let mut spec = RunnerSpec::new(vec!["python3".into(), script.display().to_string()], 1);
    spec.kill_grace = Duration::from_millis(500);
    registry.insert("hostile", std::sync::Arc::new(RunnerExecutor::new(spec)));
    let mut config = WorkerConfig::new();
    config.runners = 1;
    let shutdown = Shutdown::new();
    let worker = tokio::spawn(Worker::new(store.clone(), registry, config).run(shutdown.clone()));
    let baseline = peak_rss();

    // What each task must end as: its state and a piece of its result or error.
    let cases: &[(&str, TaskState, &str)] = &[
        ("ok", TaskState::Completed, "fine"),
        ("garbage", TaskState::Completed, "after garbage"),
        ("not-utf8", TaskState::Completed, "after bytes"),
        ("huge", TaskState::Dead, "wrote a line over 16 MiB"),
        ("ok", TaskState::Completed, "fine"),
        ("silent", TaskState::Dead, "timed out after 2s"),
        ("close-stdout", TaskState::Dead, "closed its stdout"),
        ("fork-and-exit", TaskState::Dead, "exited (exit code 3)"),
        ("error", TaskState::Dead, "a clear error"),
        ("ok", TaskState::Completed, "fine"),
    ];
    for (what, state, says) in cases {
        let task = NewTask::new("hostile", json!(what))
            .retries(0)
            .timeout(Duration::from_secs(2));
        let id = client.submit(task).await.unwrap().id;
        let task = client
            .wait(id, Some(Duration::from_secs(30)))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let text = match &task.result {
            Some(Value::String(result)) => result.clone(),
            _ => task.error.clone().unwrap_or_default(),
        };
        assert_eq!(task.state, *state, "{what}: {text}");
        assert!(
            text.contains(says),
            "{what}: '{text}' does not say '{says}'"
        );
        assert!(!text.contains('\n'), "{what}: a one-line error: {text:?}");
        assert!(!worker.is_finished(), "the worker stopped after {what}");
    }
    let grown = peak_rss().saturating_sub(baseline);
    assert!(
        grown < 48 << 20,
        "the worker's memory grew by {} MiB",
        grown >> 20
    );
    shutdown.graceful.cancel();
    worker.await.unwrap().unwrap();
}
