//! Enqueue of big batches without a script: the ids are reserved with one `INCRBY`, then
//! every record and index entry goes in with one `MULTI`/`EXEC` of plain commands.
//!
//! Why: a script pays for every task twice over, once to turn its arguments into Lua
//! strings and again for each `redis.call` (argument objects, reply conversion). Plain
//! commands in a transaction skip both: measured with `INFO commandstats`, about 7 µs of
//! the server per task against 16-20 µs through `enqueue.lua`. The price is one more round
//! trip, so only batches of at least [`RedisOptions::bulk_enqueue_from`](crate::RedisOptions)
//! tasks come here, and only without unique keys (checking those needs the script's
//! read-then-write).
//!
//! What it writes must be exactly what `lua/enqueue.lua` writes for the same tasks; the
//! conformance suite runs a second time with every batch sent here to hold it to that.
//! Ids reserved by a client that dies before its `EXEC` are skipped, never reused.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use wrangle_core::store::{Enqueued, StoreError, Topic};
use wrangle_core::task::{NewTask, TaskId, TaskState};

use crate::RedisStore;
use crate::listen;
use crate::rows::{StoredNewTask, ms};

/// A ready-set member: zero-padded run_at then id, as `ready_member` in `lua/common.lua`.
fn ready_member(run_at: i64, id: TaskId) -> String {
    format!("{:015}:{id:016}", run_at.max(0))
}

impl RedisStore {
    /// Inserts `tasks` (none with a unique key) in order, all or nothing.
    pub(crate) async fn enqueue_bulk(
        &self,
        tasks: &[NewTask],
        now: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        let mut reserve = redis::pipe();
        reserve.incr(self.key("ids"), tasks.len());
        let (last,): (TaskId,) = self.query(&reserve).await?;
        let first = last - tasks.len() as TaskId + 1;
        let now_ms = ms(now);

        let mut pipeline = redis::pipe();
        pipeline.atomic();
        let mut index = Vec::with_capacity(tasks.len());
        let mut ready: BTreeMap<&str, Vec<(i64, String)>> = BTreeMap::new();
        let mut scheduled: BTreeMap<&str, Vec<(i64, TaskId)>> = BTreeMap::new();
        let mut counts: BTreeMap<(&str, TaskState), i64> = BTreeMap::new();
        let mut jobs: BTreeMap<&str, Vec<TaskId>> = BTreeMap::new();
        // Per (job, state): tasks, and their ids above and below 10^9 (as count_job in
        // lua/common.lua).
        let mut job_counts: BTreeMap<(&str, TaskState), [i64; 3]> = BTreeMap::new();
        for (task, id) in tasks.iter().zip(first..) {
            let stored = StoredNewTask::of(task, now)?;
            let (state, run_at) = (stored.state, stored.run_at);
            let mut fields: Vec<(&str, String)> = vec![
                ("id", id.to_string()),
                ("queue", task.queue.clone()),
                ("kind", task.kind.clone()),
                ("payload", stored.payload),
                ("priority", task.priority.to_string()),
                ("state", state.as_str().to_string()),
                ("run_at", run_at.to_string()),
                ("attempt", "0".to_string()),
                ("max_attempts", stored.max_attempts.to_string()),
                ("created_at", now_ms.to_string()),
            ];
            if let Some(timeout) = stored.timeout {
                fields.push(("timeout", timeout));
            }
            if let (Some(job), Some(ids)) = (&task.job, stored.ids) {
                let split: u128 = ids.parse().unwrap_or(1);
                let counts = job_counts.entry((job, state)).or_default();
                counts[0] += 1;
                counts[1] += (split / 1_000_000_000) as i64;
                counts[2] += (split % 1_000_000_000) as i64;
                fields.push(("job", job.clone()));
                fields.push(("ids", ids));
                jobs.entry(job).or_default().push(id);
            }
            pipeline
                .hset_multiple(self.key(&format!("task:{id}")), &fields)
                .ignore();
            index.push((id, id));
            if run_at <= now_ms {
                ready
                    .entry(&task.queue)
                    .or_default()
                    .push((-i64::from(task.priority), ready_member(run_at, id)));
            } else {
                scheduled.entry(&task.queue).or_default().push((run_at, id));
            }
            *counts.entry((&task.queue, state)).or_default() += 1;
        }
        pipeline.zadd_multiple(self.key("tasks"), &index).ignore();
        for (queue, members) in &ready {
            pipeline
                .zadd_multiple(self.key(&format!("queue:{queue}:ready")), members)
                .ignore();
        }
        for (queue, members) in &scheduled {
            pipeline
                .zadd_multiple(self.key(&format!("queue:{queue}:scheduled")), members)
                .ignore();
        }
        let queues: Vec<&str> = ready.keys().chain(scheduled.keys()).copied().collect();
        pipeline.sadd(self.key("queues"), &queues).ignore();
        for (job, ids) in &jobs {
            pipeline
                .sadd(self.key(&format!("job-tasks:{job}")), ids)
                .ignore();
        }
        for ((job, state), [n, high, low]) in &job_counts {
            let counts = self.key(&format!("job-counts:{job}"));
            let state = state.as_str();
            pipeline.hincr(&counts, format!("n:{state}"), *n).ignore();
            pipeline.hincr(&counts, format!("l:{state}"), *low).ignore();
            if *high > 0 {
                pipeline
                    .hincr(&counts, format!("h:{state}"), *high)
                    .ignore();
            }
        }
        for ((queue, state), n) in &counts {
            pipeline
                .hincr(
                    self.key(&format!("queue:{queue}:counts")),
                    state.as_str(),
                    *n,
                )
                .ignore();
        }
        pipeline.sadd(self.key("stats-queues"), &queues).ignore();
        pipeline
            .publish(listen::channel(&self.inner.base, Topic::Tasks), "1")
            .ignore();
        self.query::<()>(&pipeline).await?;
        Ok((first..=last)
            .map(|id| Enqueued {
                id,
                duplicate: false,
            })
            .collect())
    }
}
