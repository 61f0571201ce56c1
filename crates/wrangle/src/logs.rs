//! Logs kept in the store, so they can be followed from any machine: a worker's own log
//! lines and its tasks' output (see [`wrangle_core::log`] for the rings themselves).
//!
//! - [`LogShipper`]: the writing side, inside a worker. It collects the worker's own lines
//!   ([`LogShipper::push_own`], fed by the CLI's logging layer) and its tasks' output (it is
//!   the executors' [`OutputSink`]), and sends everything gathered in one
//!   [`Store::append_logs`] call a moment after the first new line, so a task printing
//!   thousands of lines costs a few round trips, not thousands. While the store is
//!   unreachable it holds at most the ring's size per owner and drops the oldest.
//! - [`follow`]: the reading side (`wrangle workers log`, `wrangle tasks log`, the
//!   console's `tail WORKER`): prints what a ring keeps, then, when following, each new line
//!   as it arrives, woken by the store's notifications.
//!
//! What this module does not do: decide where a worker's lines come from (the CLI's
//! logging layer) or print anything.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use wrangle_core::log::{LogAppend, LogLine, LogOwner, LogSource, MAX_LINE_BYTES, NewLogLine};
use wrangle_core::store::ClaimedTask;
use wrangle_core::{Store, StoreError, TaskId, Topic};
use wrangle_exec::{ExecResult, OutputSink, OutputStream};

/// Lines each ring keeps unless told otherwise (`wrangle worker --log-lines`).
pub const DEFAULT_LOG_LINES: usize = 1000;

/// How long the shipper gathers lines after the first new one before sending them: the
/// delay a follower sees, traded for one round trip per batch.
const GATHER: Duration = Duration::from_millis(200);

/// Lines read per store call while following.
const READ_PAGE: usize = 1000;

/// Longest a follower waits for a notification before looking again anyway (a
/// notification lost while a store reconnected).
const FOLLOW_RECHECK: Duration = Duration::from_secs(30);

/// What the shipper holds between sends.
#[derive(Debug, Default)]
struct Pending {
    /// The worker's own lines (its name is known only once it starts).
    own: VecDeque<NewLogLine>,
    /// Tasks' complete lines.
    tasks: BTreeMap<TaskId, VecDeque<NewLogLine>>,
    /// The unfinished last line of each task's stream.
    partial: HashMap<(TaskId, OutputStream), Vec<u8>>,
    /// Tasks whose current attempt wrote output.
    wrote: HashSet<TaskId>,
}

/// Pushes `line` onto `ring`, dropping the oldest beyond `keep`.
fn push_bounded(ring: &mut VecDeque<NewLogLine>, line: NewLogLine, keep: usize) {
    ring.push_back(line);
    while ring.len() > keep {
        ring.pop_front();
    }
}

/// Sends a worker's own log lines and its tasks' output to the store. Cheap to share:
/// the executors hold it as their output sink.
#[derive(Debug)]
pub struct LogShipper {
    keep: usize,
    pending: Mutex<Pending>,
    /// Rung by the first line after a send.
    new_lines: tokio::sync::Notify,
}

impl LogShipper {
    /// A shipper whose rings keep `keep` lines each (at least 1).
    pub fn new(keep: usize) -> Arc<Self> {
        Arc::new(LogShipper {
            keep: keep.max(1),
            pending: Mutex::new(Pending::default()),
            new_lines: tokio::sync::Notify::new(),
        })
    }

    /// Lines each ring keeps.
    pub fn keep(&self) -> usize {
        self.keep
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One of the worker's own log lines (already formatted).
    pub fn push_own(&self, text: &str) {
        let line = NewLogLine::new(Utc::now(), LogSource::Log, text);
        push_bounded(&mut self.pending().own, line, self.keep);
        self.new_lines.notify_one();
    }

    /// A complete line of task `id`'s output.
    fn push_task_line(&self, pending: &mut Pending, id: TaskId, source: LogSource, text: &str) {
        let line = NewLogLine::new(Utc::now(), source, text);
        push_bounded(pending.tasks.entry(id).or_default(), line, self.keep);
    }

    /// Takes everything gathered, as appends for worker `name`.
    fn take(&self, name: &str) -> Vec<LogAppend> {
        let mut pending = self.pending();
        let mut appends = Vec::new();
        if !pending.own.is_empty() {
            appends.push(LogAppend {
                owner: LogOwner::Worker(name.to_string()),
                lines: std::mem::take(&mut pending.own).into(),
            });
        }
        for (id, lines) in std::mem::take(&mut pending.tasks) {
            appends.push(LogAppend {
                owner: LogOwner::Task(id),
                lines: lines.into(),
            });
        }
        appends
    }

    /// Puts back appends a failed send could not deliver, before anything newer, within
    /// the bound.
    fn put_back(&self, appends: Vec<LogAppend>) {
        let mut pending = self.pending();
        for append in appends {
            let ring = match append.owner {
                LogOwner::Worker(_) => &mut pending.own,
                LogOwner::Task(id) => pending.tasks.entry(id).or_default(),
            };
            let newer = std::mem::take(ring);
            for line in append.lines.into_iter().chain(newer) {
                push_bounded(ring, line, self.keep);
            }
        }
    }

    /// Sends everything gathered now, as worker `name`'s, in one store call; what a failed
    /// call could not deliver is kept for the next one.
    pub async fn flush(&self, store: &dyn Store, name: &str) -> Result<(), StoreError> {
        let appends = self.take(name);
        if appends.is_empty() {
            return Ok(());
        }
        let sent = store.append_logs(&appends, self.keep).await;
        if sent.is_err() {
            self.put_back(appends);
        }
        sent
    }

    /// Sends what is gathered as worker `name`'s, a moment after each first new line,
    /// until `stop` fires; then sends the tasks' last lines. The worker's own last lines
    /// are dropped then: the worker has deregistered, and its ring went with it.
    pub async fn run(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        name: String,
        stop: CancellationToken,
    ) {
        let mut failing = false;
        loop {
            let stopping = tokio::select! {
                _ = self.new_lines.notified() => {
                    tokio::select! {
                        _ = tokio::time::sleep(GATHER) => false,
                        _ = stop.cancelled() => true,
                    }
                }
                _ = stop.cancelled() => true,
            };
            if stopping {
                self.pending().own.clear();
                let _ = self.flush(store.as_ref(), &name).await;
                return;
            }
            match self.flush(store.as_ref(), &name).await {
                Ok(()) => failing = false,
                Err(err) => {
                    if !failing {
                        tracing::warn!(error = %err, "could not send log lines to the store; holding the newest");
                    }
                    failing = true;
                    // Try again after a pause, not on the next line.
                    tokio::time::sleep(GATHER * 5).await;
                    self.new_lines.notify_one();
                }
            }
        }
    }
}

impl OutputSink for LogShipper {
    fn wants_result_text(&self) -> bool {
        // The result is kept on the task; a log needs only what the task wrote.
        false
    }

    fn output(&self, task: &ClaimedTask, stream: OutputStream, bytes: &[u8]) {
        let source = match stream {
            OutputStream::Stdout => LogSource::Stdout,
            OutputStream::Stderr => LogSource::Stderr,
        };
        if bytes.is_empty() {
            return;
        }
        let mut pending = self.pending();
        pending.wrote.insert(task.id);
        let mut partial = pending
            .partial
            .remove(&(task.id, stream))
            .unwrap_or_default();
        partial.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(end) = partial[start..].iter().position(|&b| b == b'\n') {
            let line = &partial[start..start + end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            self.push_task_line(
                &mut pending,
                task.id,
                source,
                &String::from_utf8_lossy(line),
            );
            start += end + 1;
        }
        partial.drain(..start);
        // A line with no end in sight is sent in pieces rather than held without bound.
        if partial.len() > MAX_LINE_BYTES {
            self.push_task_line(
                &mut pending,
                task.id,
                source,
                &String::from_utf8_lossy(&partial),
            );
            partial.clear();
        }
        if !partial.is_empty() {
            pending.partial.insert((task.id, stream), partial);
        }
        drop(pending);
        self.new_lines.notify_one();
    }

    fn attempt_ended(&self, task: &ClaimedTask, result: &ExecResult) {
        let mut pending = self.pending();
        // An attempt that wrote nothing leaves no line: most tasks print nothing, and a
        // line for each would cost the store a row per task (its outcome is on the task).
        if !pending.wrote.remove(&task.id) {
            return;
        }
        for (stream, source) in [
            (OutputStream::Stdout, LogSource::Stdout),
            (OutputStream::Stderr, LogSource::Stderr),
        ] {
            if let Some(rest) = pending.partial.remove(&(task.id, stream)) {
                self.push_task_line(
                    &mut pending,
                    task.id,
                    source,
                    &String::from_utf8_lossy(&rest),
                );
            }
        }
        let ending = match result {
            Ok(_) => format!("attempt {} succeeded", task.attempt),
            Err(failure) => {
                let reason = failure.0.lines().next().unwrap_or("");
                format!("attempt {} failed: {reason}", task.attempt)
            }
        };
        self.push_task_line(&mut pending, task.id, LogSource::Log, &ending);
        drop(pending);
        self.new_lines.notify_one();
    }
}

/// How [`follow`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowEnd {
    /// Everything kept was shown (not following).
    Shown,
    /// The task followed has finished and every line of it was shown.
    TaskFinished,
}

/// Shows `owner`'s kept lines through `show`, oldest first; with `keep_following`, then
/// shows new lines as they arrive, until the task (for a task's log) has finished and
/// its last lines are shown; a worker's log is followed until the caller stops waiting.
/// `last` shows only the newest that many kept lines first. A task that does not exist
/// is [`StoreError::TaskNotFound`].
pub async fn follow(
    store: &Arc<dyn Store>,
    owner: &LogOwner,
    last: Option<usize>,
    keep_following: bool,
    mut show: impl FnMut(&LogLine) + Send,
) -> Result<FollowEnd, StoreError> {
    let task = match owner {
        LogOwner::Task(id) => Some(*id),
        LogOwner::Worker(_) => None,
    };
    // Listeners first, so nothing appended between a read and the wait is missed.
    let mut logs = store.listen(Topic::Logs).await?;
    let mut outcomes = match task {
        Some(_) if keep_following => Some(store.listen(Topic::Outcomes).await?),
        _ => None,
    };
    let mut after = 0;
    if let Some(last) = last {
        let kept = read_all(store, owner, 0).await?;
        after = kept.last().map_or(0, |l| l.seq);
        for line in kept.iter().skip(kept.len().saturating_sub(last)) {
            show(line);
        }
    }
    loop {
        // Whether the task had finished before this read: then the read has its last lines.
        let finished = match task {
            Some(id) => store
                .get_task(id)
                .await?
                .ok_or(StoreError::TaskNotFound(id))?
                .state
                .is_final(),
            None => false,
        };
        let lines = read_all(store, owner, after).await?;
        for line in &lines {
            show(line);
        }
        after = lines.last().map_or(after, |l| l.seq);
        if !keep_following {
            return Ok(FollowEnd::Shown);
        }
        if finished {
            // Lines a worker was still sending when the task ended arrive within its
            // gathering delay; one more look after it catches them.
            tokio::time::sleep(GATHER * 2).await;
            for line in &read_all(store, owner, after).await? {
                show(line);
            }
            return Ok(FollowEnd::TaskFinished);
        }
        match &mut outcomes {
            Some(outcomes) => {
                tokio::select! {
                    woke = logs.wait(FOLLOW_RECHECK) => { woke?; }
                    woke = outcomes.wait(FOLLOW_RECHECK) => { woke?; }
                }
            }
            None => {
                logs.wait(FOLLOW_RECHECK).await?;
            }
        }
    }
}

/// Every kept line of `owner` after `after`, a page per store call.
async fn read_all(
    store: &Arc<dyn Store>,
    owner: &LogOwner,
    mut after: u64,
) -> Result<Vec<LogLine>, StoreError> {
    let mut all = Vec::new();
    loop {
        let page = store.read_log(owner, after, READ_PAGE).await?;
        let full = page.len() == READ_PAGE;
        after = page.last().map_or(after, |l| l.seq);
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wrangle_core::{NewTask, QueueFilter};
    use wrangle_store_memory::MemoryStore;

    fn claimed(id: TaskId) -> ClaimedTask {
        ClaimedTask {
            id,
            kind: "k".into(),
            queue: "default".into(),
            payload: json!(null),
            attempt: 1,
            max_attempts: 1,
            lease_until: Utc::now(),
            timeout: None,
            job: None,
        }
    }

    fn texts(appends: &[LogAppend]) -> Vec<(LogOwner, Vec<String>)> {
        appends
            .iter()
            .map(|a| {
                let lines = a.lines.iter().map(|l| l.text.clone()).collect();
                (a.owner.clone(), lines)
            })
            .collect()
    }

    #[test]
    fn output_is_cut_into_lines_and_the_rest_sent_when_the_attempt_ends() {
        let shipper = LogShipper::new(10);
        let task = claimed(5);
        shipper.output(&task, OutputStream::Stdout, b"one\r\ntw");
        shipper.output(&task, OutputStream::Stderr, b"oops\n");
        shipper.output(&task, OutputStream::Stdout, b"o\nthree");
        assert_eq!(
            texts(&shipper.take("w")),
            [(
                LogOwner::Task(5),
                vec!["one".into(), "oops".into(), "two".into()]
            )]
        );
        shipper.attempt_ended(&task, &Err("boom\nmore".into()));
        shipper.push_own("worker line");
        assert_eq!(
            texts(&shipper.take("w")),
            [
                (LogOwner::Worker("w".into()), vec!["worker line".into()]),
                (
                    LogOwner::Task(5),
                    vec!["three".into(), "attempt 1 failed: boom".into()]
                ),
            ]
        );
        assert!(shipper.take("w").is_empty());
    }

    #[test]
    fn an_attempt_that_wrote_nothing_leaves_no_line() {
        let shipper = LogShipper::new(10);
        shipper.output(&claimed(6), OutputStream::Stdout, b"");
        shipper.attempt_ended(&claimed(6), &Ok(json!("result")));
        shipper.attempt_ended(&claimed(7), &Err("boom".into()));
        assert!(shipper.take("w").is_empty());
        assert!(
            !shipper.wants_result_text(),
            "a runner's result stays on the task"
        );
    }

    #[test]
    fn held_lines_stay_bounded_and_failed_sends_go_back_in_order() {
        let shipper = LogShipper::new(3);
        for n in 0..5 {
            shipper.push_own(&format!("line {n}"));
        }
        let taken = shipper.take("w");
        assert_eq!(texts(&taken)[0].1, ["line 2", "line 3", "line 4"]);
        shipper.push_own("line 5");
        shipper.put_back(taken);
        assert_eq!(
            texts(&shipper.take("w"))[0].1,
            ["line 3", "line 4", "line 5"]
        );
    }

    #[tokio::test]
    async fn a_followed_task_shows_lines_as_they_come_and_ends_with_the_task() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let now = Utc::now();
        let id = store
            .enqueue_batch(vec![NewTask::new("k", json!(null))], now)
            .await
            .unwrap()[0]
            .id;
        let request = wrangle_core::ClaimRequest {
            worker: "w".into(),
            queues: QueueFilter::All,
            limit: 1,
            lease: Duration::from_secs(30),
            now,
        };
        let task = store.claim_batch(request).await.unwrap().remove(0);
        let shipper = LogShipper::new(100);
        let stop = CancellationToken::new();
        let sending = tokio::spawn(shipper.clone().run(store.clone(), "w".into(), stop.clone()));

        let seen = Arc::new(Mutex::new(Vec::new()));
        let follower = {
            let (store, seen) = (store.clone(), seen.clone());
            tokio::spawn(async move {
                follow(&store, &LogOwner::Task(id), None, true, |line| {
                    seen.lock().unwrap().push(line.text.clone())
                })
                .await
            })
        };
        shipper.output(&task, OutputStream::Stdout, b"first\n");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while seen.lock().unwrap().is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the line never arrived"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(*seen.lock().unwrap(), ["first"]);
        assert!(!follower.is_finished(), "following a running task goes on");

        shipper.output(&task, OutputStream::Stdout, b"last");
        shipper.attempt_ended(&task, &Ok(json!(null)));
        let completion = wrangle_core::Completion {
            id,
            attempt: 1,
            worker: "w".into(),
            outcome: wrangle_core::Outcome::Succeeded {
                result: json!(null),
            },
        };
        // The worker completes right after the attempt; its last lines are still in flight.
        store
            .complete_batch(&[completion], Utc::now())
            .await
            .unwrap();
        let end = tokio::time::timeout(Duration::from_secs(5), follower)
            .await
            .expect("the follower ends with the task")
            .unwrap()
            .unwrap();
        assert_eq!(end, FollowEnd::TaskFinished);
        assert_eq!(
            *seen.lock().unwrap(),
            ["first", "last", "attempt 1 succeeded"]
        );
        stop.cancel();
        sending.await.unwrap();
    }
}
