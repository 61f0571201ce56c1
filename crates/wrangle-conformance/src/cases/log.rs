//! Log rings (`append_logs`, `read_log`): lines come back in order with sequence numbers
//! that only grow, each owner keeps only its newest lines, one call serves many owners,
//! text survives byte for byte, and a ring goes with its task or worker.

use anyhow::Result;
use wrangle_core::log::{LogAppend, LogLine, LogOwner, LogSource, NewLogLine};
use wrangle_core::{PruneRequest, TaskState, WorkerInfo};

use crate::Handle;
use crate::ensure_eq;
use crate::support::{at, register_workers, task, task_in_state, worker_info};

cases![
    lines_read_back_in_order_after_a_sequence_number,
    a_ring_keeps_the_newest_lines_and_numbers_never_repeat,
    one_append_serves_many_owners,
    text_and_sources_survive_unchanged,
    pruned_tasks_and_removed_workers_lose_their_rings,
];

/// A line at `secs` seconds of the test clock.
fn line(secs: i64, source: LogSource, text: &str) -> NewLogLine {
    NewLogLine::new(at(secs), source, text)
}

/// An append of stdout lines `texts` to `owner`, written at second 1.
fn lines(owner: LogOwner, texts: &[&str]) -> LogAppend {
    LogAppend {
        owner,
        lines: texts
            .iter()
            .map(|t| line(1, LogSource::Stdout, t))
            .collect(),
    }
}

/// `(seq, text)` of each line.
fn seq_text(lines: &[LogLine]) -> Vec<(u64, String)> {
    lines.iter().map(|l| (l.seq, l.text.clone())).collect()
}

fn numbered(pairs: &[(u64, &str)]) -> Vec<(u64, String)> {
    pairs.iter().map(|(s, t)| (*s, t.to_string())).collect()
}

/// Lines appended on one handle read back on the other in order, numbered 1, 2, …;
/// `after` skips what a reader has seen and `limit` bounds a read; an owner with no ring
/// reads as empty.
async fn lines_read_back_in_order_after_a_sequence_number(a: Handle, b: Handle) -> Result<()> {
    let owner = LogOwner::Task(7);
    a.append_logs(&[lines(owner.clone(), &["one", "two"])], 100)
        .await?;
    a.append_logs(&[lines(owner.clone(), &["three"])], 100)
        .await?;
    ensure_eq!(
        seq_text(&b.read_log(&owner, 0, 100).await?),
        numbered(&[(1, "one"), (2, "two"), (3, "three")]),
        "every line"
    );
    ensure_eq!(
        seq_text(&b.read_log(&owner, 1, 100).await?),
        numbered(&[(2, "two"), (3, "three")]),
        "lines after 1"
    );
    ensure_eq!(
        seq_text(&b.read_log(&owner, 0, 2).await?),
        numbered(&[(1, "one"), (2, "two")]),
        "the first 2"
    );
    ensure_eq!(
        b.read_log(&owner, 3, 100).await?.len(),
        0,
        "lines after the last"
    );
    ensure_eq!(
        b.read_log(&LogOwner::Task(8), 0, 100).await?.len(),
        0,
        "lines of an owner with no ring"
    );
    a.append_logs(&[], 100).await?;
    a.append_logs(&[lines(owner.clone(), &[])], 100).await?;
    ensure_eq!(
        b.read_log(&owner, 0, 100).await?.len(),
        3,
        "lines after empty appends"
    );
    Ok(())
}

/// With `keep = 3`, a ring holds its newest 3 lines, however they arrived (one by one or
/// more than 3 in one call), and numbering goes on from the last line ever appended.
async fn a_ring_keeps_the_newest_lines_and_numbers_never_repeat(
    a: Handle,
    b: Handle,
) -> Result<()> {
    let owner = LogOwner::Worker("w1".into());
    for text in ["1", "2", "3", "4"] {
        a.append_logs(&[lines(owner.clone(), &[text])], 3).await?;
    }
    ensure_eq!(
        seq_text(&b.read_log(&owner, 0, 100).await?),
        numbered(&[(2, "2"), (3, "3"), (4, "4")]),
        "after 4 single appends"
    );
    a.append_logs(&[lines(owner.clone(), &["5", "6", "7", "8", "9"])], 3)
        .await?;
    let kept = b.read_log(&owner, 0, 100).await?;
    let texts: Vec<&str> = kept.iter().map(|l| l.text.as_str()).collect();
    ensure_eq!(texts, vec!["7", "8", "9"], "after 5 lines at once");
    let seqs: Vec<u64> = kept.iter().map(|l| l.seq).collect();
    anyhow::ensure!(
        seqs.windows(2).all(|w| w[0] < w[1]) && seqs[0] > 4,
        "sequence numbers must grow past the last one read (4): {seqs:?}"
    );
    a.append_logs(&[lines(owner.clone(), &["10"])], 3).await?;
    let after = b.read_log(&owner, seqs[2], 100).await?;
    ensure_eq!(
        after.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
        vec!["10"],
        "a follower resuming after its last line"
    );
    Ok(())
}

/// One call appends to several owners (an owner may appear twice: its lines join in
/// order), and each owner's ring is kept on its own.
async fn one_append_serves_many_owners(a: Handle, b: Handle) -> Result<()> {
    let (t1, t2, w) = (
        LogOwner::Task(1),
        LogOwner::Task(2),
        LogOwner::Worker("w".into()),
    );
    a.append_logs(
        &[
            lines(t1.clone(), &["a", "b"]),
            lines(w.clone(), &["x"]),
            lines(t1.clone(), &["c"]),
            lines(t2.clone(), &["p"]),
        ],
        2,
    )
    .await?;
    ensure_eq!(
        b.read_log(&t1, 0, 10)
            .await?
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>(),
        vec!["b", "c"],
        "task 1 (kept 2)"
    );
    ensure_eq!(
        seq_text(&b.read_log(&t2, 0, 10).await?),
        numbered(&[(1, "p")]),
        "task 2"
    );
    ensure_eq!(
        seq_text(&b.read_log(&w, 0, 10).await?),
        numbered(&[(1, "x")]),
        "worker w"
    );
    Ok(())
}

/// Text (quotes, backslashes, tabs, non-ASCII, an empty line), source and time read back
/// exactly as appended.
async fn text_and_sources_survive_unchanged(a: Handle, b: Handle) -> Result<()> {
    let owner = LogOwner::Worker("wörker \"1\"".into());
    let written = vec![
        line(5, LogSource::Stdout, "it's \"quoted\" \\ back\tslash"),
        line(6, LogSource::Stderr, "ünïcødé ✓ 日本"),
        line(7, LogSource::Log, ""),
        line(8, LogSource::Stdout, "%s %d ' -- ; DROP TABLE"),
    ];
    a.append_logs(
        &[LogAppend {
            owner: owner.clone(),
            lines: written.clone(),
        }],
        10,
    )
    .await?;
    let read = b.read_log(&owner, 0, 10).await?;
    let as_read: Vec<NewLogLine> = read
        .into_iter()
        .map(|l| NewLogLine {
            at: l.at,
            source: l.source,
            text: l.text,
        })
        .collect();
    ensure_eq!(as_read, written, "lines read back");
    Ok(())
}

/// Pruning a finished task drops its ring (a live task's stays); deregistering a worker,
/// or pruning it as lost, drops the worker's.
async fn pruned_tasks_and_removed_workers_lose_their_rings(a: Handle, b: Handle) -> Result<()> {
    let done = task_in_state(&a, task("t"), TaskState::Completed, at(0)).await?;
    let live = task_in_state(&a, task("t"), TaskState::Running, at(0)).await?;
    register_workers(&a, &["leaving"]).await?;
    let lost = WorkerInfo {
        lease_ms: 1000,
        ..worker_info("lost")
    };
    a.register_worker(lost, at(0)).await?;
    let owners = [
        LogOwner::Task(done),
        LogOwner::Task(live),
        LogOwner::Worker("leaving".into()),
        LogOwner::Worker("lost".into()),
    ];
    let appends: Vec<LogAppend> = owners.iter().map(|o| lines(o.clone(), &["x"])).collect();
    a.append_logs(&appends, 10).await?;

    let completed = PruneRequest {
        state: TaskState::Completed,
        finished_before: at(100),
        limit: 10,
    };
    ensure_eq!(b.prune_finished(completed).await?, 1, "tasks pruned");
    b.deregister_worker("leaving").await?;
    ensure_eq!(
        b.prune_lost_workers(at(100)).await?,
        vec!["lost".to_string()],
        "workers pruned"
    );
    let left: Vec<usize> = {
        let mut left = Vec::new();
        for owner in &owners {
            left.push(a.read_log(owner, 0, 10).await?.len());
        }
        left
    };
    ensure_eq!(
        left,
        vec![0, 1, 0, 0],
        "lines left of: the pruned task, the running task, the deregistered worker, the lost worker"
    );
    Ok(())
}
