//! Wake-ups through `Store::listen`, in real time: a listener wakes within a second of
//! activity on the other handle, keeps a notification that came before its `wait`, and
//! stays quiet when nothing happens (spurious wake-ups are allowed by the trait, but a
//! listener that always wakes would make idle workers spin).

use std::future::Future;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use serde_json::json;
use wrangle_core::log::{LogAppend, LogOwner, LogSource, NewLogLine};
use wrangle_core::{ControlCommand, Listener, TaskState, Topic};

use crate::Handle;
use crate::ensure_eq;
use crate::support::{
    at, claim_one, complete_as, completion, enqueue_one, ensure_state, released, succeeded, task,
    task_in_state, worker_info,
};

cases![
    tasks_listener_wakes_on_enqueue_from_other_handle,
    notification_before_wait_is_not_lost,
    quiet_listener_times_out,
    tasks_listener_wakes_when_tasks_become_claimable,
    outcomes_listener_wakes_result_waiter,
    commands_listener_wakes_on_send_and_ack,
    logs_listener_wakes_on_append,
];

/// Longest a listener may take to notice activity.
const WAKE: Duration = Duration::from_secs(1);
/// How long a listener is watched for (not) waking when nothing happens.
const QUIET: Duration = Duration::from_millis(100);
/// How long a trigger waits before acting, so that the listener is already waiting.
const DELAY: Duration = Duration::from_millis(50);

/// Subscribes to `topic` on `store`.
async fn listen(store: &Handle, topic: Topic) -> Result<Box<dyn Listener>> {
    store
        .listen(topic)
        .await
        .with_context(|| format!("listen({topic:?})"))
}

/// Fails unless `listener` wakes within [`WAKE`].
async fn ensure_wakes(listener: &mut Box<dyn Listener>, what: &str) -> Result<()> {
    let woke = listener.wait(WAKE).await.context("wait")?;
    ensure!(woke, "the listener did not wake within {WAKE:?} of {what}");
    Ok(())
}

/// Fails if `listener` wakes within [`QUIET`].
async fn ensure_quiet(listener: &mut Box<dyn Listener>, what: &str) -> Result<()> {
    let woke = listener.wait(QUIET).await.context("wait")?;
    ensure!(!woke, "the listener woke with nothing happening ({what})");
    Ok(())
}

/// Listens to `topic` on `store`, runs `trigger` (meant for the other handle) after
/// [`DELAY`] while the listener waits, and fails unless the listener wakes within [`WAKE`].
async fn ensure_trigger_wakes<F>(store: &Handle, topic: Topic, what: &str, trigger: F) -> Result<()>
where
    F: Future<Output = Result<()>> + Send + 'static,
{
    let mut listener = listen(store, topic).await?;
    let trigger = tokio::spawn(async move {
        tokio::time::sleep(DELAY).await;
        trigger.await
    });
    let woke = ensure_wakes(&mut listener, what).await;
    trigger.await.context("the trigger panicked")??;
    woke
}

/// A `Tasks` listener created before an enqueue on the other handle wakes within a
/// second of it, while it waits.
async fn tasks_listener_wakes_on_enqueue_from_other_handle(a: Handle, b: Handle) -> Result<()> {
    ensure_trigger_wakes(&a, Topic::Tasks, "an enqueue", async move {
        enqueue_one(&b, task("t"), at(0)).await.map(drop)
    })
    .await
}

/// A notification between a listener's creation and its `wait` is not lost: the wait
/// returns at once with it.
async fn notification_before_wait_is_not_lost(a: Handle, b: Handle) -> Result<()> {
    let mut listener = listen(&a, Topic::Tasks).await?;
    enqueue_one(&b, task("t"), at(0)).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    ensure_wakes(&mut listener, "an enqueue before the wait").await
}

/// With nothing happening a wait times out (returns false), both for a new listener
/// (activity before its creation does not count) and after it woke once.
async fn quiet_listener_times_out(a: Handle, b: Handle) -> Result<()> {
    enqueue_one(&b, task("before"), at(0)).await?;
    let mut listener = listen(&a, Topic::Tasks).await?;
    ensure_quiet(&mut listener, "a new listener after earlier enqueues").await?;
    enqueue_one(&b, task("t"), at(0)).await?;
    ensure_wakes(&mut listener, "an enqueue").await?;
    ensure_quiet(&mut listener, "after the wake-up was consumed").await
}

/// A `Tasks` listener also wakes when tasks become claimable without an enqueue: an
/// operator's retry, a released attempt, a lease rescue, a queue resumed.
async fn tasks_listener_wakes_when_tasks_become_claimable(a: Handle, b: Handle) -> Result<()> {
    let dead = task_in_state(&a, task("dead"), TaskState::Dead, at(0)).await?;
    let other = b.clone();
    ensure_trigger_wakes(&a, Topic::Tasks, "a retry", async move {
        other
            .retry_task(dead, at(1))
            .await
            .map(drop)
            .map_err(Into::into)
    })
    .await?;

    let claimed = claim_one(&a, "w1", at(2)).await?;
    let other = b.clone();
    ensure_trigger_wakes(&a, Topic::Tasks, "a release", async move {
        complete_as(
            &other,
            completion(&claimed, "w1", released()),
            at(3),
            TaskState::Available,
        )
        .await
    })
    .await?;

    claim_one(&a, "w1", at(4)).await?;
    let other = b.clone();
    ensure_trigger_wakes(&a, Topic::Tasks, "a rescue", async move {
        let rescued = other.rescue_expired(at(100), 10).await?;
        ensure_eq!(rescued, vec![dead], "rescued");
        Ok(())
    })
    .await?;

    a.set_queue_paused("default", true).await?;
    let other = b.clone();
    ensure_trigger_wakes(&a, Topic::Tasks, "a resume", async move {
        other
            .set_queue_paused("default", false)
            .await
            .map_err(Into::into)
    })
    .await
}

/// An `Outcomes` listener wakes a client waiting for a task's result when the worker
/// completes it on the other handle, and when a task is cancelled.
async fn outcomes_listener_wakes_result_waiter(a: Handle, b: Handle) -> Result<()> {
    let id = enqueue_one(&a, task("t"), at(0)).await?;
    let claimed = claim_one(&b, "w1", at(1)).await?;
    let other = b.clone();
    ensure_trigger_wakes(&a, Topic::Outcomes, "a completion", async move {
        let done = completion(&claimed, "w1", succeeded(json!({ "answer": 42 })));
        complete_as(&other, done, at(2), TaskState::Completed).await
    })
    .await?;
    let t = ensure_state(&a, id, TaskState::Completed).await?;
    ensure_eq!(
        t.result,
        Some(json!({ "answer": 42 })),
        "the awaited result"
    );

    let doomed = enqueue_one(&a, task("t"), at(3)).await?;
    let other = b.clone();
    ensure_trigger_wakes(&a, Topic::Outcomes, "a cancel", async move {
        other
            .cancel_task(doomed, at(4))
            .await
            .map(drop)
            .map_err(Into::into)
    })
    .await
}

/// A `Commands` listener wakes when a command is sent to a worker (its mailbox) and
/// when one is acknowledged (the sender waiting for the reply).
async fn commands_listener_wakes_on_send_and_ack(a: Handle, b: Handle) -> Result<()> {
    a.register_worker(worker_info("w1"), at(0)).await?;
    let other = b.clone();
    let (sent_tx, sent_rx) = tokio::sync::oneshot::channel();
    ensure_trigger_wakes(&a, Topic::Commands, "a send", async move {
        let id = other
            .send_command("w1", ControlCommand::Reload, at(1))
            .await?;
        sent_tx.send(id).ok();
        Ok(())
    })
    .await?;
    let id = sent_rx.await.context("the command id")?;
    let other = b.clone();
    ensure_trigger_wakes(&a, Topic::Commands, "an ack", async move {
        other
            .ack_command(id, json!("reloaded"), at(2))
            .await
            .map_err(Into::into)
    })
    .await
}

/// A `Logs` listener wakes within a second of lines appended on the other handle (how
/// `tasks log --follow` and `workers log --follow` learn of new lines).
async fn logs_listener_wakes_on_append(a: Handle, b: Handle) -> Result<()> {
    ensure_trigger_wakes(&a, Topic::Logs, "an append", async move {
        let append = LogAppend {
            owner: LogOwner::Task(1),
            lines: vec![NewLogLine::new(at(1), LogSource::Stdout, "hello")],
        };
        b.append_logs(&[append], 10).await.map_err(Into::into)
    })
    .await
}
