//! The MySQL 8 / MariaDB 10.6+ store (`mysql://user:password@host:3306/database`).
//!
//! Claims are `SELECT … FOR UPDATE SKIP LOCKED` over an index in claim order, then one
//! `UPDATE` for the whole batch, in one transaction: concurrent claimers skip each
//! other's rows instead of waiting or retrying (the optimistic locking of older designs
//! ends in retry storms under load). MySQL has no `UPDATE … RETURNING`, so every batch
//! operation locks and reads the rows it will change, decides in Rust what happens to each
//! (in request order), and writes the batch back in one statement. Batches travel as one
//! JSON parameter that `JSON_TABLE` turns into rows, so the SQL in `sql/*.sql` is static.
//!
//! A range job is one `wrangle_jobs` row; its blocks become tasks when a claim that found
//! too few due tasks locks the job's row (by name, in the claim's transaction), advances
//! its cursor and inserts the blocks already running. The job to use is named by the same
//! read that fetches the paused queues, so claims with no open job pay nothing more.
//!
//! Every connection runs at READ COMMITTED: locking reads then take no gap locks (an
//! enqueue never waits for a claim), and a locked scan releases the rows its WHERE rejects.
//! A transaction the server rolls back over a lock conflict (deadlock, lock wait timeout,
//! a unique key raced by another enqueue) is run again a few times before its error is
//! reported; connection problems are reported as [`StoreError::Unavailable`] at once, and
//! the pool reconnects on the next call.
//!
//! Times are the callers' `now`, stored as epoch milliseconds; the server clock is never
//! read. Wake-ups are polled (MySQL has no notification channel): see `listen.rs`.

mod connect;
mod listen;
mod logs;
mod rows;
mod schema;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::mysql::{MySqlConnectOptions, MySqlDatabaseError, MySqlPool, MySqlPoolOptions};
use sqlx::{MySql, Row, Transaction};
use wrangle_core::job::{BlockTally, Job, JobTallies, NewJob, block_payload};
use wrangle_core::log::{LogAppend, LogLine, LogOwner, newest_per_owner};
use wrangle_core::store::{
    ClaimRequest, ClaimedTask, Completion, CompletionStatus, Enqueued, Heartbeat, HeartbeatReply,
    JobDeletion, Listener, Outcome, PruneRequest, QueueFilter, QueueStats, Store, StoreError,
    StoreInfo, TaskFilter, Topic, recent_seconds,
};
use wrangle_core::task::{NewTask, Task, TaskId, TaskState};
use wrangle_core::worker::{
    CommandEnvelope, CommandId, ControlCommand, LOST_AFTER_LEASES, WorkerInfo, WorkerRecord,
};

pub use connect::MySqlOptions;
pub use listen::CROSS_PROCESS_POLL;
use listen::Topics;
use rows::{from_ms, job_from_row, json_text, ms, task_from_row};
pub use wrangle_core::connect::Open;

/// Most connections one store opens (besides the listener's own).
const MAX_CONNECTIONS: u32 = 10;
/// How long a statement waits for a row lock before the server gives up (error 1205).
/// Short, because the hot path never waits on purpose: claims skip locked rows.
const LOCK_WAIT_TIMEOUT_SECS: u32 = 10;
/// Runs of a transaction the server rolled back over a lock conflict, the first included.
const CONFLICT_TRIES: u32 = 6;
/// Rows per INSERT statement of an enqueue (MySQL allows 65,535 placeholders).
const ENQUEUE_CHUNK: usize = 1_000;
/// Slot rows of `wrangle_topic_versions` (see the schema).
const TOPIC_SLOTS: u32 = 16;

/// One task's placeholders in the enqueue INSERT (see `sql/enqueue.sql`).
const ENQUEUE_ROW: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '[]')";

/// MySQL / MariaDB error numbers this store reacts to.
mod code {
    /// ER_DUP_ENTRY: a unique key another enqueue inserted first.
    pub const DUP_ENTRY: u16 = 1062;
    /// ER_LOCK_WAIT_TIMEOUT.
    pub const LOCK_WAIT_TIMEOUT: u16 = 1205;
    /// ER_LOCK_DEADLOCK: the server rolled the transaction back.
    pub const DEADLOCK: u16 = 1213;
    /// Server-side reasons a connection is gone or refused, worth retrying later:
    /// too many connections, server shutdown, query interrupted or killed, connection
    /// killed (MariaDB), server in read-only or offline mode.
    pub const GONE: &[u16] = &[
        1040, 1053, 1077, 1078, 1079, 1080, 1152, 1158, 1159, 1160, 1161, 1317, 1836, 1927, 3032,
        4031,
    ];
}

/// How an attempt at an operation failed: a driver error (perhaps a lock conflict worth
/// running the transaction again for) or a verdict of the operation itself.
#[derive(Debug)]
pub(crate) enum Failure {
    Sql(sqlx::Error),
    Store(StoreError),
}

impl From<sqlx::Error> for Failure {
    fn from(err: sqlx::Error) -> Self {
        Failure::Sql(err)
    }
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        Failure::Store(err)
    }
}

impl Failure {
    /// Whether the server undid the transaction over a lock conflict, so running it again
    /// from the start may succeed.
    fn is_lock_conflict(&self) -> bool {
        matches!(
            error_number(self),
            Some(code::DEADLOCK | code::LOCK_WAIT_TIMEOUT | code::DUP_ENTRY)
        )
    }

    /// The error callers see: connection trouble and lock conflicts that outlived the
    /// retries are transient ([`StoreError::Unavailable`]), the rest is a backend failure.
    pub(crate) fn into_store_error(self) -> StoreError {
        let err = match self {
            Failure::Store(err) => return err,
            Failure::Sql(err) => err,
        };
        let transient = match &err {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => {
                db.try_downcast_ref::<MySqlDatabaseError>()
                    .is_some_and(|db| {
                        matches!(db.number(), code::DEADLOCK | code::LOCK_WAIT_TIMEOUT)
                            || code::GONE.contains(&db.number())
                    })
            }
            _ => false,
        };
        if transient {
            StoreError::Unavailable(err.to_string())
        } else {
            StoreError::Backend(err.to_string())
        }
    }
}

/// A `usize` limit as a LIMIT bind: callers may ask for `usize::MAX` ("all"), which would
/// wrap to -1 as an `i64`.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// The server's error number, for errors that came from the server.
fn error_number(failure: &Failure) -> Option<u16> {
    match failure {
        Failure::Sql(sqlx::Error::Database(db)) => db
            .try_downcast_ref::<MySqlDatabaseError>()
            .map(MySqlDatabaseError::number),
        _ => None,
    }
}

/// The pause before running a transaction again after its `tries`-th lock conflict:
/// growing, with jitter so that the two sides of a deadlock do not meet again.
fn conflict_pause(tries: u32) -> Duration {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 4_000_000);
    Duration::from_millis(2 * u64::from(tries)) + Duration::from_nanos(u64::from(jitter))
}

/// Awaits `$attempt` (a future of `Result<T, Failure>`, built again for every run) and
/// runs it again while it fails over a lock conflict, at most [`CONFLICT_TRIES`] times;
/// yields `Result<T, StoreError>`.
macro_rules! retrying {
    ($attempt:expr) => {{
        let mut tries = 1;
        loop {
            match $attempt.await {
                Ok(value) => break Ok(value),
                Err(failure) if failure.is_lock_conflict() && tries < CONFLICT_TRIES => {
                    tracing::debug!(
                        ?failure,
                        tries,
                        "lock conflict; running the transaction again"
                    );
                    tokio::time::sleep(conflict_pause(tries)).await;
                    tries += 1;
                }
                Err(failure) => break Err(failure.into_store_error()),
            }
        }
    }};
}

/// Folds the per-connection rows of the job counters into slot 0, skipping those a writer
/// holds (folded next time).
async fn fold_job_counts(tx: &mut Transaction<'static, MySql>) -> Result<(), Failure> {
    let picked: Vec<(String, String, String, i64, i64, String)> =
        sqlx::query_as(include_str!("sql/job_counts_fold_pick.sql"))
            .fetch_all(&mut **tx)
            .await?;
    if picked.is_empty() {
        return Ok(());
    }
    let mut sums: HashMap<(&str, &str, &str), (i64, i128)> = HashMap::new();
    for (job, state, worker, _, blocks, ids) in &picked {
        let ids: i128 = ids.parse().map_err(|e| {
            Failure::from(StoreError::Backend(format!("job counter ids {ids:?}: {e}")))
        })?;
        let sum = sums.entry((job, state, worker)).or_default();
        sum.0 += blocks;
        sum.1 = sum.1.saturating_add(ids);
    }
    let keys: Vec<_> = picked
        .iter()
        .map(|(job, state, worker, slot, _, _)| (job, state, worker, slot))
        .collect();
    let sums: Vec<_> = sums
        .into_iter()
        .map(|((job, state, worker), (blocks, ids))| (job, state, worker, blocks, ids.to_string()))
        .collect();
    sqlx::query(include_str!("sql/job_counts_fold_delete.sql"))
        .bind(json_text(&keys))
        .execute(&mut **tx)
        .await?;
    sqlx::query(include_str!("sql/job_counts_fold_add.sql"))
        .bind(json_text(&sums))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes tasks `ids` (locked by the caller's transaction) with their log rings.
async fn delete_tasks(tx: &mut Transaction<'static, MySql>, ids: &[TaskId]) -> Result<(), Failure> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(include_str!("sql/tasks_delete.sql"))
        .bind(json_text(&ids))
        .execute(&mut **tx)
        .await?;
    logs::drop_rings(tx, ids.iter().map(|&id| LogOwner::Task(id))).await
}

/// The MySQL store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MySqlStore {
    pool: MySqlPool,
    topics: Arc<Topics>,
    /// The server's `auto_increment_increment`: the step between the ids of one INSERT.
    id_step: i64,
    /// Picks the `wrangle_topic_versions` slot of the next notifying write.
    next_slot: Arc<AtomicU32>,
}

impl MySqlStore {
    /// Connects to the database at `url` (`mysql://user:password@host:port/database`, with
    /// sqlx's options such as `?ssl-mode=VERIFY_IDENTITY&ssl-ca=/etc/ca.pem` and wrangle's
    /// `connect_timeout`) and migrates it to the current schema. The database must exist;
    /// the user needs the rights to create tables in it.
    pub async fn connect(url: &str) -> Result<MySqlStore, StoreError> {
        let (connect, options) = MySqlOptions::from_url(url)?;
        MySqlStore::connect_with(connect, options).await
    }

    /// Like [`connect`](Self::connect), but only if the database holds wrangle's tables at
    /// the current version: nothing is created or migrated, a missing store is
    /// [`StoreError::NoStore`] (see [`Open::Existing`]).
    pub async fn connect_existing(url: &str) -> Result<MySqlStore, StoreError> {
        let (connect, options) = MySqlOptions::from_url(url)?;
        let options = MySqlOptions {
            open: Open::Existing,
            ..options
        };
        MySqlStore::connect_with(connect, options).await
    }

    /// Connects with ready-made driver options and wrangle's `options`.
    ///
    /// A server that cannot be reached, refuses the credentials or the TLS handshake, or
    /// has no such database fails with [`StoreError::Connect`] within
    /// `options.connect_timeout`.
    pub async fn connect_with(
        connect: MySqlConnectOptions,
        options: MySqlOptions,
    ) -> Result<MySqlStore, StoreError> {
        let mut first = connect::first_connection(&connect, options.connect_timeout).await?;
        let id_step = async {
            match options.open {
                Open::Create => schema::migrate(&mut first).await?,
                Open::Existing => {
                    schema::check_current(&mut first, &connect::store_at(&connect)).await?
                }
            }
            let step: u64 = sqlx::query_scalar("SELECT @@auto_increment_increment")
                .fetch_one(&mut first)
                .await?;
            Ok::<_, Failure>(step.max(1) as i64)
        }
        .await
        .map_err(Failure::into_store_error);
        // The pool opens its own connections; a failed goodbye changes nothing.
        let _ = sqlx::Connection::close(first).await;
        let id_step = id_step?;
        let session = format!(
            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED; \
             SET SESSION innodb_lock_wait_timeout = {LOCK_WAIT_TIMEOUT_SECS}"
        );
        let pool = MySqlPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(0)
            .acquire_timeout(options.connect_timeout)
            .idle_timeout(Duration::from_secs(60))
            .after_connect(move |conn, _| {
                let session = session.clone();
                Box::pin(async move {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(session))
                        .execute(conn)
                        .await
                        .map(drop)
                })
            })
            .connect_lazy_with(connect.clone());
        Ok(MySqlStore {
            pool,
            topics: Arc::new(Topics::new(connect)),
            id_step,
            next_slot: Arc::new(AtomicU32::new(std::process::id())),
        })
    }

    async fn begin(&self) -> Result<Transaction<'static, MySql>, Failure> {
        Ok(self.pool.begin().await?)
    }

    /// Commits `tx` after bumping the versions of `topics` (for other processes' listeners),
    /// then wakes this process's listeners.
    async fn commit_notify(
        &self,
        mut tx: Transaction<'static, MySql>,
        topics: &[Topic],
    ) -> Result<(), Failure> {
        if !topics.is_empty() {
            let bump = |topic| i64::from(topics.contains(&topic));
            let slot = self.next_slot.fetch_add(1, Ordering::Relaxed) % TOPIC_SLOTS;
            sqlx::query(include_str!("sql/bump_topics.sql"))
                .bind(bump(Topic::Tasks))
                .bind(bump(Topic::Outcomes))
                .bind(bump(Topic::Commands))
                .bind(slot)
                .execute(&mut *tx)
                .await?;
            if topics.contains(&Topic::Logs) {
                sqlx::query(include_str!("sql/bump_logs.sql"))
                    .bind(slot)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        for &topic in topics {
            self.topics.notify(topic);
        }
        Ok(())
    }

    // --- one run of each writing operation (`retrying!` runs them again on conflicts) ---

    async fn enqueue_once(
        &self,
        tasks: &[NewTask],
        now: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>, Failure> {
        let mut tx = self.begin().await?;
        // Which tasks are new: the first of each unique key, unless the key exists.
        let keys: Vec<&str> = tasks
            .iter()
            .filter_map(|t| t.unique_key.as_deref())
            .collect();
        let mut existing: HashMap<String, TaskId> = HashMap::new();
        if !keys.is_empty() {
            existing = sqlx::query_as(
                "SELECT t.unique_key, t.id
                 FROM JSON_TABLE(?, '$[*]' COLUMNS (
                     k VARCHAR(512) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$')) AS wanted
                 JOIN wrangle_tasks AS t ON t.unique_key = wanted.k",
            )
            .bind(json_text(&keys))
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        }
        let mut first_of_key: HashMap<&str, usize> = HashMap::new();
        let fresh: Vec<usize> = (0..tasks.len())
            .filter(|&i| match tasks[i].unique_key.as_deref() {
                None => true,
                Some(key) => {
                    !existing.contains_key(key) && *first_of_key.entry(key).or_insert(i) == i
                }
            })
            .collect();
        let mut ids: HashMap<usize, TaskId> = HashMap::with_capacity(fresh.len());
        for chunk in fresh.chunks(ENQUEUE_CHUNK) {
            let sql = multi_row_insert(include_str!("sql/enqueue.sql"), ENQUEUE_ROW, chunk.len());
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
            for &i in chunk {
                let t = &tasks[i];
                insert = insert
                    .bind(&t.queue)
                    .bind(&t.kind)
                    .bind(json_text(&t.payload))
                    .bind(t.priority)
                    .bind(t.initial_state(now).as_str())
                    .bind(ms(t.initial_run_at(now)))
                    .bind(i64::from(t.stored_max_attempts()))
                    .bind(t.timeout.map(|d| d.as_millis() as i64))
                    .bind(&t.unique_key)
                    .bind(&t.job)
                    .bind(ms(now));
            }
            // One multi-row INSERT gets its ids in one block, in row order.
            let first = insert.execute(&mut *tx).await?.last_insert_id() as i64;
            for (n, &i) in chunk.iter().enumerate() {
                ids.insert(i, first + n as i64 * self.id_step);
            }
        }
        let results = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| match ids.get(&i) {
                Some(&id) => Enqueued {
                    id,
                    duplicate: false,
                },
                None => {
                    let key = t.unique_key.as_deref().unwrap_or_default();
                    let id = existing
                        .get(key)
                        .copied()
                        .or_else(|| {
                            first_of_key
                                .get(key)
                                .and_then(|first| ids.get(first).copied())
                        })
                        .unwrap_or_default();
                    Enqueued {
                        id,
                        duplicate: true,
                    }
                }
            })
            .collect();
        let topics: &[Topic] = if fresh.is_empty() {
            &[]
        } else {
            &[Topic::Tasks]
        };
        self.commit_notify(tx, topics).await?;
        Ok(results)
    }

    async fn claim_once(
        &self,
        request: &ClaimRequest,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<ClaimedTask>, Failure> {
        let mut tx = self.begin().await?;
        let (all_queues, wanted) = match &request.queues {
            QueueFilter::All => (true, String::from("[]")),
            QueueFilter::Only(queues) => (false, json_text(queues)),
        };
        // Read apart from the locking claim: a subquery's locks differ between MySQL (none)
        // and MariaDB, and a pause only has to be seen by claims that start after it. The
        // same read names the job to make blocks from, if any (see `sql/claim_start.sql`).
        let (paused, mut next_job) = claim_start(&mut tx, all_queues, &wanted).await?;
        let picked = sqlx::query(include_str!("sql/claim_pick.sql"))
            .bind(ms(request.now))
            .bind(json_text(&paused))
            .bind(all_queues)
            .bind(&wanted)
            .bind(sql_limit(request.limit))
            .fetch_all(&mut *tx)
            .await?;
        let mut claimed = Vec::with_capacity(picked.len());
        if !picked.is_empty() {
            let ids: Vec<TaskId> = picked
                .iter()
                .map(|row| row.try_get("id"))
                .collect::<Result<_, _>>()?;
            sqlx::query(include_str!("sql/claim_mark.sql"))
                .bind(json_text(&ids))
                .bind(&request.worker)
                .bind(ms(lease_until))
                .bind(ms(request.now))
                .execute(&mut *tx)
                .await?;
            for row in &picked {
                claimed.push(claimed_from_row(row, lease_until)?);
            }
        }
        // Fewer due tasks than asked for: make the rest from range jobs, in this same
        // transaction, while the limit allows. With no open job `next_job` is None and
        // this costs nothing more.
        // A job used here either filled the claim or has no blocks left (its open_rank is
        // then NULL and claim_start, reading this transaction's own update, skips it), so
        // the loop never takes one job twice.
        while claimed.len() < request.limit
            && let Some(name) = next_job.take()
        {
            self.make_blocks(&mut tx, &name, request, lease_until, &mut claimed)
                .await?;
            if claimed.len() < request.limit {
                next_job = claim_start(&mut tx, all_queues, &wanted).await?.1;
            }
        }
        // New blocks need no wake-up: they are running already, under this claimer.
        tx.commit().await?;
        Ok(claimed)
    }

    /// Locks job `name`, advances its cursor by up to the blocks the claim still lacks, and
    /// inserts those blocks as tasks already running under the claimer, adding them to
    /// `claimed` in block order. The row lock, held to the commit, is what makes claimers
    /// in any process take disjoint blocks: a second claimer waits for it and then reads
    /// the cursor the first one left (or finds the job exhausted and makes nothing).
    async fn make_blocks(
        &self,
        tx: &mut Transaction<'static, MySql>,
        name: &str,
        request: &ClaimRequest,
        lease_until: DateTime<Utc>,
        claimed: &mut Vec<ClaimedTask>,
    ) -> Result<(), Failure> {
        let Some(row) = sqlx::query("SELECT * FROM wrangle_jobs WHERE name = ? FOR UPDATE")
            .bind(name)
            .fetch_optional(&mut **tx)
            .await?
        else {
            return Ok(());
        };
        let job = job_from_row(&row)?;
        // Empty for a job another claimer exhausted or an operator cancelled meanwhile.
        let (blocks, cursor) = job.next_blocks(request.limit - claimed.len());
        if blocks.is_empty() {
            return Ok(());
        }
        sqlx::query("UPDATE wrangle_jobs SET next_start = ? WHERE name = ?")
            .bind(cursor)
            .bind(name)
            .execute(&mut **tx)
            .await?;
        let definition = &job.definition;
        let timeout_ms = definition.timeout.map(|d| d.as_millis() as i64);
        let now = ms(request.now);
        for chunk in blocks.chunks(ENQUEUE_CHUNK) {
            let sql = multi_row_insert(
                include_str!("sql/job_blocks.sql"),
                JOB_BLOCK_ROW,
                chunk.len(),
            );
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
            for &(start, end) in chunk {
                insert = insert
                    .bind(&definition.queue)
                    .bind(&definition.task_kind)
                    .bind(json_text(&block_payload(start, end)))
                    .bind(definition.priority)
                    .bind(now)
                    .bind(i64::from(definition.max_attempts))
                    .bind(timeout_ms)
                    .bind(name)
                    .bind(&request.worker)
                    .bind(ms(lease_until))
                    .bind(now)
                    .bind(now);
            }
            // One multi-row INSERT gets its ids in one block, in row order.
            let first = insert.execute(&mut **tx).await?.last_insert_id() as i64;
            for (n, &block) in chunk.iter().enumerate() {
                claimed.push(job.claimed_block(
                    first + n as i64 * self.id_step,
                    block,
                    lease_until,
                ));
            }
        }
        Ok(())
    }

    async fn create_job_once(&self, job: &Job) -> Result<(), Failure> {
        let definition = &job.definition;
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO wrangle_jobs (name, kind, queue, task_kind, priority, max_attempts,
                                       timeout_ms, start_id, end_id, block_size, next_start,
                                       cancelled, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&definition.name)
        .bind(definition.kind.as_str())
        .bind(&definition.queue)
        .bind(&definition.task_kind)
        .bind(definition.priority)
        .bind(i64::from(definition.max_attempts))
        .bind(definition.timeout.map(|d| d.as_millis() as i64))
        .bind(definition.start)
        .bind(definition.end)
        .bind(definition.block)
        .bind(job.cursor)
        .bind(i8::from(job.cancelled))
        .bind(ms(job.created_at))
        .execute(&mut *tx)
        .await;
        if let Err(err) = inserted {
            let failure = Failure::from(err);
            // Reported, not run again as a lock conflict: the name is taken.
            if error_number(&failure) == Some(code::DUP_ENTRY) {
                return Err(StoreError::JobExists(definition.name.clone()).into());
            }
            return Err(failure);
        }
        // Idle workers (in any process) wake up to claim its blocks.
        let topics: &[Topic] = if job.has_blocks_to_create() {
            &[Topic::Tasks]
        } else {
            &[]
        };
        self.commit_notify(tx, topics).await
    }

    async fn cancel_job_once(&self, name: &str) -> Result<Job, Failure> {
        let mut tx = self.begin().await?;
        // Counts matched rows (CLIENT_FOUND_ROWS): cancelling twice is not "not found".
        let matched = sqlx::query("UPDATE wrangle_jobs SET cancelled = 1 WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if matched == 0 {
            return Err(StoreError::JobNotFound(name.to_string()).into());
        }
        let row = sqlx::query("SELECT * FROM wrangle_jobs WHERE name = ?")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        let job = job_from_row(&row)?;
        tx.commit().await?;
        Ok(job)
    }

    async fn delete_job_once(&self, name: &str, limit: usize) -> Result<JobDeletion, Failure> {
        let mut tx = self.begin().await?;
        let matched = sqlx::query("UPDATE wrangle_jobs SET cancelled = 1 WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if matched == 0 {
            return Err(StoreError::JobNotFound(name.to_string()).into());
        }
        let doomed: Vec<TaskId> =
            sqlx::query_scalar("SELECT id FROM wrangle_tasks WHERE job = ? LIMIT ? FOR UPDATE")
                .bind(name)
                .bind(sql_limit(limit))
                .fetch_all(&mut *tx)
                .await?;
        delete_tasks(&mut tx, &doomed).await?;
        let done = doomed.len() < limit;
        if done {
            sqlx::query("DELETE FROM wrangle_jobs WHERE name = ?")
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        // A running task deleted: its worker's completion is now stale.
        self.commit_notify(tx, &[Topic::Outcomes]).await?;
        Ok(JobDeletion {
            tasks: doomed.len() as u64,
            done,
        })
    }

    async fn complete_once(
        &self,
        completions: &[Completion],
        now: DateTime<Utc>,
    ) -> Result<Vec<CompletionStatus>, Failure> {
        let mut ids: Vec<TaskId> = completions.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut tx = self.begin().await?;
        let mut attempts = lock_attempts(&mut tx, include_str!("sql/attempts_lock.sql"), |q| {
            q.bind(json_text(&ids))
        })
        .await?;
        // Decided in request order against the rows as each earlier completion left them,
        // as if sent one by one: a repeat of a task ended earlier in the batch is stale.
        let mut ended = Vec::new();
        let mut released = false;
        let statuses = completions
            .iter()
            .map(|c| {
                let Some(current) = attempts
                    .get_mut(&c.id)
                    .filter(|t| t.is_held_by(&c.worker, c.attempt))
                else {
                    return CompletionStatus::Stale;
                };
                let end = current.end_by(&c.outcome, now);
                released |= end.state == TaskState::Available.as_str();
                let state = current.apply(&end);
                ended.push(end);
                CompletionStatus::Applied(state)
            })
            .collect();
        if ended.is_empty() {
            tx.commit().await?;
            return Ok(statuses);
        }
        sqlx::query(include_str!("sql/attempts_end.sql"))
            .bind(json_text(&ended))
            .execute(&mut *tx)
            .await?;
        let topics: &[Topic] = if released {
            &[Topic::Tasks, Topic::Outcomes]
        } else {
            &[Topic::Outcomes]
        };
        self.commit_notify(tx, topics).await?;
        Ok(statuses)
    }

    async fn heartbeat_once(&self, beat: &Heartbeat) -> Result<HeartbeatReply, Failure> {
        let name = &beat.worker.name;
        let mut tx = self.begin().await?;
        upsert_worker(&mut tx, &beat.worker, beat.now).await?;
        let mut lost = Vec::new();
        if !beat.leases.is_empty() {
            let mut leases = beat.leases.clone();
            leases.sort_unstable();
            let held: Vec<TaskId> = sqlx::query_scalar(include_str!("sql/leases_lock.sql"))
                .bind(json_text(&leases))
                .bind(name)
                .fetch_all(&mut *tx)
                .await?;
            if !held.is_empty() {
                sqlx::query(include_str!("sql/leases_extend.sql"))
                    .bind(json_text(&held))
                    .bind(ms(beat.lease_until))
                    .execute(&mut *tx)
                    .await?;
            }
            let held: HashSet<TaskId> = held.into_iter().collect();
            lost = beat
                .leases
                .iter()
                .map(|(id, _)| *id)
                .filter(|id| !held.contains(id))
                .collect();
        }
        let commands_waiting: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM wrangle_commands WHERE worker = ? AND acked_at IS NULL)",
        )
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(HeartbeatReply {
            lost,
            commands_waiting,
        })
    }

    async fn rescue_once(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<TaskId>, Failure> {
        let mut tx = self.begin().await?;
        let attempts = lock_attempts(&mut tx, include_str!("sql/rescue_lock.sql"), |q| {
            q.bind(ms(now)).bind(sql_limit(limit))
        })
        .await?;
        if attempts.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let ended: Vec<AttemptEnd> = attempts.values().map(|t| t.expire(now)).collect();
        sqlx::query(include_str!("sql/attempts_end.sql"))
            .bind(json_text(&ended))
            .execute(&mut *tx)
            .await?;
        self.commit_notify(tx, &[Topic::Tasks, Topic::Outcomes])
            .await?;
        let mut rescued: Vec<TaskId> = attempts.into_keys().collect();
        rescued.sort_unstable();
        Ok(rescued)
    }

    async fn retry_task_once(&self, id: TaskId, now: DateTime<Utc>) -> Result<Task, Failure> {
        let mut tx = self.begin().await?;
        guard_transition(&mut tx, id, "retry", TaskState::can_retry).await?;
        sqlx::query(REVIVE_ONE)
            .bind(ms(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let task = fetch_task(&mut tx, id).await?;
        self.commit_notify(tx, &[Topic::Tasks]).await?;
        Ok(task)
    }

    async fn retry_dead_once(
        &self,
        queue: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<u64, Failure> {
        let revive = sqlx::query(REVIVE_DEAD)
            .bind(ms(now))
            .bind(queue)
            .bind(queue);
        self.update_tasks_once(revive, Topic::Tasks).await
    }

    async fn cancel_once(&self, id: TaskId, now: DateTime<Utc>) -> Result<Task, Failure> {
        let mut tx = self.begin().await?;
        guard_transition(&mut tx, id, "cancel", TaskState::can_cancel).await?;
        sqlx::query(CANCEL_ONE)
            .bind(ms(now))
            .bind(ms(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let task = fetch_task(&mut tx, id).await?;
        self.commit_notify(tx, &[Topic::Outcomes]).await?;
        Ok(task)
    }

    async fn prune_lost_workers_once(&self, now: DateTime<Utc>) -> Result<Vec<String>, Failure> {
        let mut tx = self.begin().await?;
        let mut gone: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM wrangle_workers
             WHERE JSON_EXTRACT(info, '$.lease_ms') > 0
               AND last_seen < ? - JSON_EXTRACT(info, '$.lease_ms') * ?
             ORDER BY name FOR UPDATE",
        )
        .bind(ms(now))
        .bind(LOST_AFTER_LEASES)
        .fetch_all(&mut *tx)
        .await?;
        if !gone.is_empty() {
            sqlx::query("DELETE FROM wrangle_workers WHERE JSON_CONTAINS(?, JSON_QUOTE(name))")
                .bind(json_text(&gone))
                .execute(&mut *tx)
                .await?;
            logs::drop_rings(&mut tx, gone.iter().cloned().map(LogOwner::Worker)).await?;
        }
        tx.commit().await?;
        gone.sort();
        Ok(gone)
    }

    async fn prune_finished_once(&self, request: PruneRequest) -> Result<u64, Failure> {
        let mut tx = self.begin().await?;
        let doomed: Vec<TaskId> = sqlx::query_scalar(
            "SELECT id FROM wrangle_tasks
             WHERE state = ? AND finished_at < ?
             ORDER BY finished_at
             LIMIT ? FOR UPDATE",
        )
        .bind(request.state.as_str())
        .bind(ms(request.finished_before))
        .bind(sql_limit(request.limit))
        .fetch_all(&mut *tx)
        .await?;
        delete_tasks(&mut tx, &doomed).await?;
        tx.commit().await?;
        Ok(doomed.len() as u64)
    }

    async fn take_turn_once(
        &self,
        duty: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, Failure> {
        let mut tx = self.begin().await?;
        let current: Option<(String, i64)> =
            sqlx::query_as("SELECT holder, until FROM wrangle_turns WHERE duty = ? FOR UPDATE")
                .bind(duty)
                .fetch_optional(&mut *tx)
                .await?;
        let free = current.is_none_or(|(current, end)| current == holder || end <= ms(now));
        if free {
            sqlx::query(
                "INSERT INTO wrangle_turns (duty, holder, until) VALUES (?, ?, ?)
                 ON DUPLICATE KEY UPDATE holder = VALUES(holder), until = VALUES(until)",
            )
            .bind(duty)
            .bind(holder)
            .bind(ms(until))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(free)
    }

    /// In one transaction: drops the outcome counters no minute reads any more, and folds
    /// the per-connection counter rows into slot 0 (the rows picked are locked, those a
    /// writer holds skipped, then deleted and their sums added).
    async fn tidy_once(&self) -> Result<(), Failure> {
        let mut tx = self.begin().await?;
        sqlx::query(include_str!("sql/recent_drop.sql"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(include_str!("sql/job_recent_drop.sql"))
            .execute(&mut *tx)
            .await?;
        fold_job_counts(&mut tx).await?;
        let picked: Vec<(String, String, i64, i64)> =
            sqlx::query_as(include_str!("sql/counts_fold_pick.sql"))
                .fetch_all(&mut *tx)
                .await?;
        if picked.is_empty() {
            tx.commit().await?;
            return Ok(());
        }
        let mut sums: HashMap<(&str, &str), i64> = HashMap::new();
        for (queue, state, _, n) in &picked {
            *sums.entry((queue, state)).or_default() += n;
        }
        let keys: Vec<_> = picked.iter().map(|(q, s, slot, _)| (q, s, slot)).collect();
        let sums: Vec<_> = sums.into_iter().map(|((q, s), n)| (q, s, n)).collect();
        sqlx::query(include_str!("sql/counts_fold_delete.sql"))
            .bind(json_text(&keys))
            .execute(&mut *tx)
            .await?;
        sqlx::query(include_str!("sql/counts_fold_add.sql"))
            .bind(json_text(&sums))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn deregister_worker_once(&self, name: &str) -> Result<(), Failure> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM wrangle_workers WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        logs::drop_rings(&mut tx, [LogOwner::Worker(name.to_string())]).await?;
        Ok(tx.commit().await?)
    }

    async fn append_logs_once(&self, appends: &[LogAppend], keep: usize) -> Result<(), Failure> {
        let mut tx = self.begin().await?;
        logs::append(&mut tx, appends, keep).await?;
        self.commit_notify(tx, &[Topic::Logs]).await
    }

    async fn send_command_once(
        &self,
        worker: &str,
        command: &str,
        now: DateTime<Utc>,
    ) -> Result<CommandId, Failure> {
        let mut tx = self.begin().await?;
        let id =
            sqlx::query("INSERT INTO wrangle_commands (worker, command, sent_at) VALUES (?, ?, ?)")
                .bind(worker)
                .bind(command)
                .bind(ms(now))
                .execute(&mut *tx)
                .await?
                .last_insert_id() as CommandId;
        self.commit_notify(tx, &[Topic::Commands]).await?;
        Ok(id)
    }

    async fn ack_command_once(
        &self,
        id: CommandId,
        reply: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Failure> {
        let mut tx = self.begin().await?;
        // Counts matched rows (sqlx connects with CLIENT_FOUND_ROWS), so acknowledging
        // twice is not mistaken for an unknown id.
        let matched =
            sqlx::query("UPDATE wrangle_commands SET acked_at = ?, reply = ? WHERE id = ?")
                .bind(ms(now))
                .bind(reply)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if matched == 0 {
            return Err(StoreError::CommandNotFound(id).into());
        }
        self.commit_notify(tx, &[Topic::Commands]).await
    }

    async fn set_queue_paused_once(&self, queue: &str, paused: bool) -> Result<(), Failure> {
        let mut tx = self.begin().await?;
        let sql = if paused {
            "INSERT INTO wrangle_paused_queues (queue) VALUES (?) ON DUPLICATE KEY UPDATE queue = queue"
        } else {
            "DELETE FROM wrangle_paused_queues WHERE queue = ?"
        };
        sqlx::query(sql).bind(queue).execute(&mut *tx).await?;
        let topics: &[Topic] = if paused { &[] } else { &[Topic::Tasks] };
        self.commit_notify(tx, topics).await
    }

    /// Runs `statement` (ending in `id IN`) over the tasks of `ids`, after `now_binds` binds
    /// of `now`; returns how many it changed (see [`update_tasks_once`](Self::update_tasks_once)).
    async fn move_tasks(
        &self,
        statement: &str,
        now_binds: usize,
        ids: &[TaskId],
        now: DateTime<Utc>,
        topic: Topic,
    ) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let statement = with_ids(statement, ids.len());
        let query = || {
            let query = (0..now_binds).fold(
                sqlx::query(sqlx::AssertSqlSafe(statement.as_str())),
                |query, _| query.bind(ms(now)),
            );
            ids.iter().fold(query, |query, id| query.bind(id))
        };
        retrying!(self.update_tasks_once(query(), topic))
    }

    /// Runs an UPDATE of tasks and wakes the listeners of `topic` if it changed any;
    /// returns how many it changed.
    async fn update_tasks_once(
        &self,
        query: sqlx::query::Query<'_, MySql, sqlx::mysql::MySqlArguments>,
        topic: Topic,
    ) -> Result<u64, Failure> {
        let mut tx = self.begin().await?;
        let changed = query.execute(&mut *tx).await?.rows_affected();
        let topics: &[Topic] = if changed == 0 { &[] } else { &[topic] };
        self.commit_notify(tx, topics).await?;
        Ok(changed)
    }
}

/// An operator's "run it again now" for the tasks matched by `$where` (which follows the
/// one `now` bind): available at `now`, with one more attempt where they had none left.
macro_rules! revive_sql {
    ($where:literal) => {
        concat!(
            "UPDATE wrangle_tasks SET state = 'available', run_at = ?, lease_until = NULL,
                 max_attempts = GREATEST(max_attempts, attempt + 1)
             WHERE ",
            $where
        )
    };
}

/// An operator's cancel of the tasks matched by `$where` (which follows two `now` binds):
/// a running attempt ends with a `cancelled` record (appended first: single-table
/// assignments are evaluated left to right, so `attempts` still sees the old state); its
/// worker learns it at its next heartbeat.
macro_rules! cancel_sql {
    ($where:literal) => {
        concat!(
            "UPDATE wrangle_tasks SET
                 attempts = IF(state = 'running', JSON_ARRAY_APPEND(attempts, '$', JSON_OBJECT(
                     'attempt', attempt, 'worker', worker, 'started_at', started_at,
                     'finished_at', ?, 'outcome', 'cancelled')), attempts),
                 state = 'cancelled', finished_at = ?, lease_until = NULL
             WHERE ",
            $where
        )
    };
}

/// Retry of one task (its state checked first). Binds: now, id.
const REVIVE_ONE: &str = revive_sql!("id = ?");

/// Retry of every dead task, of one queue or all. Binds: now, queue, queue.
const REVIVE_DEAD: &str = revive_sql!("state = 'dead' AND (? IS NULL OR queue = ?)");

/// Retry of the tasks of the ids that follow (`id IN (?, …)`, see [`with_ids`]) that an
/// operator may retry. Binds: now, the ids.
const REVIVE_MANY: &str =
    revive_sql!("state IN ('scheduled', 'retryable', 'dead', 'cancelled') AND id IN");

/// Cancel of one task (its state checked first). Binds: now, now, id.
const CANCEL_ONE: &str = cancel_sql!("id = ?");

/// Cancel of the tasks of the ids that follow that are not final. Binds: now, now, the ids.
const CANCEL_MANY: &str =
    cancel_sql!("state IN ('scheduled', 'available', 'retryable', 'running') AND id IN");

/// `statement` (ending in `id IN`) followed by one placeholder per id: a plain list, which
/// every MySQL and MariaDB version answers with primary-key lookups.
fn with_ids(statement: &str, ids: usize) -> String {
    format!("{statement} ({})", vec!["?"; ids].join(", "))
}

/// One block's placeholders in the INSERT of `sql/job_blocks.sql`.
const JOB_BLOCK_ROW: &str = "(?, ?, ?, ?, 'running', ?, 1, ?, ?, ?, ?, ?, ?, ?, '[]')";

/// A multi-row INSERT: the statement `head` (ending in `VALUES`) and `rows` copies of the
/// row placeholders `row`.
fn multi_row_insert(head: &str, row: &str, rows: usize) -> String {
    let mut sql = String::from(head.trim_end());
    sql.push(' ');
    sql.push_str(&vec![row; rows].join(", "));
    sql
}

/// Runs `sql/claim_start.sql`: the paused queues, and the range job a claim would make
/// blocks from (if any).
async fn claim_start(
    tx: &mut Transaction<'static, MySql>,
    all_queues: bool,
    wanted: &str,
) -> Result<(Vec<String>, Option<String>), Failure> {
    let rows: Vec<(Option<String>, Option<String>)> =
        sqlx::query_as(include_str!("sql/claim_start.sql"))
            .bind(all_queues)
            .bind(wanted)
            .fetch_all(&mut **tx)
            .await?;
    let mut paused = Vec::with_capacity(rows.len());
    let mut job = None;
    for (queue, name) in rows {
        match (queue, name) {
            (Some(queue), _) => paused.push(queue),
            (None, Some(name)) => job = Some(name),
            (None, None) => {}
        }
    }
    Ok((paused, job))
}

/// A due task as `sql/claim_pick.sql` read it, handed out by the claim.
fn claimed_from_row(
    row: &sqlx::mysql::MySqlRow,
    lease_until: DateTime<Utc>,
) -> Result<ClaimedTask, Failure> {
    let payload: String = row.try_get("payload")?;
    Ok(ClaimedTask {
        id: row.try_get("id")?,
        queue: row.try_get("queue")?,
        kind: row.try_get("kind")?,
        payload: serde_json::from_str(&payload).unwrap_or(Value::String(payload)),
        attempt: row.try_get::<i64, _>("attempt")? as u32 + 1,
        max_attempts: row.try_get::<i64, _>("max_attempts")? as u32,
        timeout: row
            .try_get::<Option<i64>, _>("timeout_ms")?
            .map(|t| Duration::from_millis(t as u64)),
        job: row.try_get("job")?,
        lease_until,
    })
}

/// A running attempt as locked for ending it: what deciding its end needs.
#[derive(Debug, Clone)]
struct LockedAttempt {
    id: TaskId,
    state: TaskState,
    attempt: i64,
    max_attempts: i64,
    worker: Option<String>,
    started_at: Option<i64>,
    run_at: i64,
}

/// The new values of one task whose attempt ends, as `sql/attempts_end.sql` reads them.
#[derive(Debug, Serialize)]
struct AttemptEnd {
    id: TaskId,
    state: &'static str,
    run_at: i64,
    attempt: i64,
    /// `None` keeps the stored value (a release does not finish the task).
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<i64>,
    /// JSON text of the result; `None` keeps the stored one.
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<String>,
    /// The task's error: the new one, or `None` for none (unless `keep_error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// 1 to leave the stored error alone.
    keep_error: u8,
    /// The record appended to the history; none for a success, which readers imply.
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<AttemptEndRecord>,
}

/// The attempt record appended to the history (times in ms).
#[derive(Debug, Serialize)]
struct AttemptEndRecord {
    attempt: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    worker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<i64>,
    finished_at: i64,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_at: Option<i64>,
}

impl LockedAttempt {
    fn is_held_by(&self, worker: &str, attempt: u32) -> bool {
        self.state == TaskState::Running
            && self.attempt == i64::from(attempt)
            && self.worker.as_deref() == Some(worker)
    }

    fn record(&self, now: DateTime<Utc>, outcome: &'static str) -> AttemptEndRecord {
        AttemptEndRecord {
            attempt: self.attempt,
            worker: self.worker.clone(),
            started_at: self.started_at,
            finished_at: ms(now),
            outcome,
            error: None,
            retry_at: None,
        }
    }

    /// How the worker's `outcome` ends this attempt at `now`.
    fn end_by(&self, outcome: &Outcome, now: DateTime<Utc>) -> AttemptEnd {
        let mut end = AttemptEnd {
            id: self.id,
            state: TaskState::Completed.as_str(),
            run_at: self.run_at,
            attempt: self.attempt,
            finished_at: Some(ms(now)),
            result: None,
            error: None,
            keep_error: 0,
            record: None,
        };
        match outcome {
            Outcome::Succeeded { result } => end.result = Some(json_text(result)),
            Outcome::Failed { error, retry_at } => {
                end.error = Some(error.clone());
                let mut record = self.record(now, "failed");
                record.error = Some(error.clone());
                match retry_at.filter(|_| self.attempt < self.max_attempts) {
                    Some(at) => {
                        end.state = TaskState::Retryable.as_str();
                        end.run_at = ms(at.max(now));
                        record.retry_at = Some(ms(at));
                    }
                    None => end.state = TaskState::Dead.as_str(),
                }
                end.record = Some(record);
            }
            Outcome::Released { reason } => {
                // Handed back unfinished: available now, and the attempt does not count.
                end.state = TaskState::Available.as_str();
                end.run_at = ms(now);
                end.attempt = self.attempt - 1;
                end.finished_at = None;
                end.keep_error = 1;
                let mut record = self.record(now, "released");
                record.error = Some(reason.clone());
                end.record = Some(record);
            }
        }
        end
    }

    /// How an expired lease ends this attempt at `now`: available again, or dead on the
    /// last attempt.
    fn expire(&self, now: DateTime<Utc>) -> AttemptEnd {
        let message = format!(
            "lease expired: worker {} stopped heartbeating during attempt {}",
            self.worker.as_deref().unwrap_or("?"),
            self.attempt
        );
        let retry = self.attempt < self.max_attempts;
        let mut record = self.record(now, "lease expired");
        record.error = Some(message.clone());
        AttemptEnd {
            id: self.id,
            state: if retry { "available" } else { "dead" },
            run_at: if retry { ms(now) } else { self.run_at },
            attempt: self.attempt,
            finished_at: Some(ms(now)),
            result: None,
            error: Some(message),
            keep_error: 0,
            record: Some(record),
        }
    }

    /// Takes `end` into this row, so later completions of the same batch see it; returns
    /// the new state.
    fn apply(&mut self, end: &AttemptEnd) -> TaskState {
        self.state = rows::state(end.state).unwrap_or(TaskState::Dead);
        self.attempt = end.attempt;
        self.run_at = end.run_at;
        self.state
    }
}

/// Runs a locking read of `sql` (columns: id, state, attempt, max_attempts, worker,
/// started_at, run_at) with the binds `bind` adds; the rows by id.
async fn lock_attempts<'q>(
    tx: &mut Transaction<'static, MySql>,
    sql: &'static str,
    bind: impl FnOnce(
        sqlx::query::Query<'q, MySql, sqlx::mysql::MySqlArguments>,
    ) -> sqlx::query::Query<'q, MySql, sqlx::mysql::MySqlArguments>,
) -> Result<std::collections::BTreeMap<TaskId, LockedAttempt>, Failure> {
    let rows = bind(sqlx::query(sql)).fetch_all(&mut **tx).await?;
    rows.iter()
        .map(|row| {
            let id: TaskId = row.try_get("id")?;
            Ok((
                id,
                LockedAttempt {
                    id,
                    state: rows::state(row.try_get("state")?)?,
                    attempt: row.try_get("attempt")?,
                    max_attempts: row.try_get("max_attempts")?,
                    worker: row.try_get("worker")?,
                    started_at: row.try_get("started_at")?,
                    run_at: row.try_get("run_at")?,
                },
            ))
        })
        .collect()
}

/// Locks task `id` and fails with `InvalidTransition` unless `allowed` accepts its
/// state; returns the state.
async fn guard_transition(
    tx: &mut Transaction<'static, MySql>,
    id: TaskId,
    action: &'static str,
    allowed: fn(TaskState) -> bool,
) -> Result<TaskState, Failure> {
    let state: Option<String> =
        sqlx::query_scalar("SELECT state FROM wrangle_tasks WHERE id = ? FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    let state = rows::state(&state.ok_or(StoreError::TaskNotFound(id))?)?;
    if allowed(state) {
        Ok(state)
    } else {
        Err(StoreError::InvalidTransition { id, state, action }.into())
    }
}

/// Task `id` as the transaction sees it.
async fn fetch_task(tx: &mut Transaction<'static, MySql>, id: TaskId) -> Result<Task, Failure> {
    let row = sqlx::query("SELECT * FROM wrangle_tasks WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::TaskNotFound(id))?;
    task_from_row(&row)
}

/// Registers a worker or refreshes its row.
async fn upsert_worker(
    tx: &mut Transaction<'static, MySql>,
    info: &WorkerInfo,
    now: DateTime<Utc>,
) -> Result<(), Failure> {
    // VALUES() in ON DUPLICATE KEY UPDATE is understood by MySQL 8 (deprecated there in
    // favour of row aliases, which MariaDB lacks) and MariaDB alike.
    sqlx::query(
        "INSERT INTO wrangle_workers (name, info, last_seen) VALUES (?, ?, ?)
         ON DUPLICATE KEY UPDATE info = VALUES(info), last_seen = VALUES(last_seen)",
    )
    .bind(&info.name)
    .bind(json_text(info))
    .bind(ms(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl Store for MySqlStore {
    fn info(&self) -> StoreInfo {
        StoreInfo {
            name: "mysql",
            native_notifications: false,
        }
    }

    async fn enqueue_batch(
        &self,
        tasks: Vec<NewTask>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        retrying!(self.enqueue_once(&tasks, now))
    }

    async fn claim_batch(&self, request: ClaimRequest) -> Result<Vec<ClaimedTask>, StoreError> {
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        let lease_until = request.now
            + chrono::Duration::from_std(request.lease)
                .map_err(|_| StoreError::InvalidRequest("lease too long".into()))?;
        retrying!(self.claim_once(&request, lease_until))
    }

    async fn complete_batch(
        &self,
        completions: &[Completion],
        now: DateTime<Utc>,
    ) -> Result<Vec<CompletionStatus>, StoreError> {
        if completions.is_empty() {
            return Ok(Vec::new());
        }
        retrying!(self.complete_once(completions, now))
    }

    async fn heartbeat(&self, beat: Heartbeat) -> Result<HeartbeatReply, StoreError> {
        retrying!(self.heartbeat_once(&beat))
    }

    async fn rescue_expired(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<TaskId>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        retrying!(self.rescue_once(now, limit))
    }

    async fn get_task(&self, id: TaskId) -> Result<Option<Task>, StoreError> {
        let row = sqlx::query("SELECT * FROM wrangle_tasks WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| Failure::from(e).into_store_error())?;
        row.map(|row| task_from_row(&row))
            .transpose()
            .map_err(Failure::into_store_error)
    }

    async fn list_tasks(&self, filter: TaskFilter) -> Result<Vec<Task>, StoreError> {
        let state = filter.state.map(TaskState::as_str);
        let rows = sqlx::query(
            "SELECT * FROM wrangle_tasks
             WHERE (? IS NULL OR state = ?) AND (? IS NULL OR queue = ?)
               AND (? IS NULL OR job = ?) AND id < ?
             ORDER BY id DESC LIMIT ?",
        )
        .bind(state)
        .bind(state)
        .bind(&filter.queue)
        .bind(&filter.queue)
        .bind(&filter.job)
        .bind(&filter.job)
        .bind(filter.before_id.unwrap_or(i64::MAX))
        .bind(sql_limit(filter.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| Failure::from(e).into_store_error())?;
        rows.iter()
            .map(task_from_row)
            .collect::<Result<_, _>>()
            .map_err(Failure::into_store_error)
    }

    async fn retry_task(&self, id: TaskId, now: DateTime<Utc>) -> Result<Task, StoreError> {
        retrying!(self.retry_task_once(id, now))
    }

    async fn retry_dead(
        &self,
        queue: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        retrying!(self.retry_dead_once(queue.as_deref(), now))
    }

    async fn cancel_task(&self, id: TaskId, now: DateTime<Utc>) -> Result<Task, StoreError> {
        retrying!(self.cancel_once(id, now))
    }

    async fn cancel_tasks(&self, ids: &[TaskId], now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.move_tasks(CANCEL_MANY, 2, ids, now, Topic::Outcomes)
            .await
    }

    async fn retry_tasks(&self, ids: &[TaskId], now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.move_tasks(REVIVE_MANY, 1, ids, now, Topic::Tasks)
            .await
    }

    async fn prune_finished(&self, request: PruneRequest) -> Result<u64, StoreError> {
        request.check()?;
        retrying!(self.prune_finished_once(request))
    }

    async fn take_turn(
        &self,
        duty: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        retrying!(self.take_turn_once(duty, holder, until, now))
    }

    async fn tidy(&self) -> Result<(), StoreError> {
        retrying!(self.tidy_once())
    }

    async fn create_job(&self, job: NewJob, now: DateTime<Utc>) -> Result<Job, StoreError> {
        job.validate()?;
        // The record as it is stored (times and timeouts in whole milliseconds), so that
        // what is returned here is what `get_job` reads back.
        let mut job = job.into_job(from_ms(ms(now)));
        job.definition.timeout = job
            .definition
            .timeout
            .map(|d| Duration::from_millis(d.as_millis() as u64));
        retrying!(self.create_job_once(&job))?;
        Ok(job)
    }

    async fn get_job(&self, name: &str) -> Result<Option<Job>, StoreError> {
        let row = sqlx::query("SELECT * FROM wrangle_jobs WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| Failure::from(e).into_store_error())?;
        row.map(|row| job_from_row(&row))
            .transpose()
            .map_err(Failure::into_store_error)
    }

    async fn list_jobs(&self) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query("SELECT * FROM wrangle_jobs ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| Failure::from(e).into_store_error())?;
        rows.iter()
            .map(job_from_row)
            .collect::<Result<_, _>>()
            .map_err(Failure::into_store_error)
    }

    async fn cancel_job(&self, name: &str) -> Result<Job, StoreError> {
        retrying!(self.cancel_job_once(name))
    }

    async fn delete_job(&self, name: &str, limit: usize) -> Result<JobDeletion, StoreError> {
        retrying!(self.delete_job_once(name, limit))
    }

    async fn job_tallies(&self, name: &str, now: DateTime<Utc>) -> Result<JobTallies, StoreError> {
        let (first, last) = recent_seconds(now);
        let rows: Vec<(
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<i64>,
            i64,
        )> = sqlx::query_as(include_str!("sql/job_tallies.sql"))
            .bind(first)
            .bind(last)
            .bind(name)
            .bind(name)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| Failure::from(e).into_store_error())?;
        let Some(recent) = rows.first().map(|row| row.4) else {
            return Err(StoreError::JobNotFound(name.to_string()));
        };
        let blocks = rows
            .into_iter()
            // A job with no task counted comes back as one row with no state.
            .filter_map(|(state, worker, blocks, ids, _)| {
                state.map(|state| {
                    Ok(BlockTally {
                        state: rows::state(&state)?,
                        worker,
                        blocks: blocks.unwrap_or(0).max(0) as u64,
                        ids: ids.unwrap_or(0).max(0) as u64,
                    })
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(JobTallies {
            blocks,
            ids_completed_last_minute: recent.max(0) as u64,
        })
    }

    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<(), StoreError> {
        retrying!(self.set_queue_paused_once(queue, paused))
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<Vec<QueueStats>, StoreError> {
        async {
            let mut conn = self.pool.acquire().await?;
            rows::queue_stats(&mut conn, now).await
        }
        .await
        .map_err(Failure::into_store_error)
    }

    async fn register_worker(
        &self,
        info: WorkerInfo,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        retrying!(async {
            let mut tx = self.begin().await?;
            upsert_worker(&mut tx, &info, now).await?;
            Ok::<_, Failure>(tx.commit().await?)
        })
    }

    async fn deregister_worker(&self, name: &str) -> Result<(), StoreError> {
        retrying!(self.deregister_worker_once(name))
    }

    async fn list_workers(&self) -> Result<Vec<WorkerRecord>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT info, last_seen FROM wrangle_workers ORDER BY name")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| Failure::from(e).into_store_error())?;
        rows.into_iter()
            .map(|(info, last_seen)| {
                Ok(WorkerRecord {
                    info: serde_json::from_str(&info).map_err(|e| rows::corrupt("worker", e))?,
                    last_seen: from_ms(last_seen),
                })
            })
            .collect()
    }

    async fn prune_lost_workers(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        retrying!(self.prune_lost_workers_once(now))
    }

    async fn send_command(
        &self,
        worker: &str,
        command: ControlCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandId, StoreError> {
        let text = json_text(&command);
        retrying!(self.send_command_once(worker, &text, now))
    }

    async fn pending_commands(&self, worker: &str) -> Result<Vec<CommandEnvelope>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM wrangle_commands WHERE worker = ? AND acked_at IS NULL ORDER BY id",
        )
        .bind(worker)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| Failure::from(e).into_store_error())?;
        rows.iter()
            .map(rows::command_from_row)
            .collect::<Result<_, _>>()
            .map_err(Failure::into_store_error)
    }

    async fn ack_command(
        &self,
        id: CommandId,
        reply: Value,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let text = json_text(&reply);
        retrying!(self.ack_command_once(id, &text, now))
    }

    async fn get_command(&self, id: CommandId) -> Result<Option<CommandEnvelope>, StoreError> {
        let row = sqlx::query("SELECT * FROM wrangle_commands WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| Failure::from(e).into_store_error())?;
        row.map(|row| rows::command_from_row(&row))
            .transpose()
            .map_err(Failure::into_store_error)
    }

    async fn listen(&self, topic: Topic) -> Result<Box<dyn Listener>, StoreError> {
        self.topics.listen(topic).await
    }

    async fn append_logs(&self, appends: &[LogAppend], keep: usize) -> Result<(), StoreError> {
        let appends = newest_per_owner(appends, keep);
        if appends.is_empty() {
            return Ok(());
        }
        retrying!(self.append_logs_once(&appends, keep))
    }

    async fn read_log(
        &self,
        owner: &LogOwner,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LogLine>, StoreError> {
        logs::read(&self.pool, owner, after, limit)
            .await
            .map_err(Failure::into_store_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_hands_the_attempt_back_and_keeps_the_error() {
        let now = from_ms(50_000);
        let running = LockedAttempt {
            id: 1,
            state: TaskState::Running,
            attempt: 2,
            max_attempts: 3,
            worker: Some("w".into()),
            started_at: Some(40_000),
            run_at: 10_000,
        };
        let end = running.end_by(
            &Outcome::Released {
                reason: "bye".into(),
            },
            now,
        );
        assert_eq!(
            (end.state, end.attempt, end.run_at),
            ("available", 1, 50_000)
        );
        assert_eq!((end.finished_at, end.keep_error), (None, 1));
        let text = json_text(&end);
        assert!(
            !text.contains("\"result\""),
            "absent, so the stored result stays: {text}"
        );
    }

    #[test]
    fn a_failure_retries_only_with_attempts_left() {
        let now = from_ms(50_000);
        let mut running = LockedAttempt {
            id: 1,
            state: TaskState::Running,
            attempt: 2,
            max_attempts: 3,
            worker: Some("w".into()),
            started_at: Some(40_000),
            run_at: 10_000,
        };
        let failed = Outcome::Failed {
            error: "boom".into(),
            retry_at: Some(from_ms(10_000)),
        };
        let end = running.end_by(&failed, now);
        assert_eq!(
            (end.state, end.run_at),
            ("retryable", 50_000),
            "retry_at in the past runs now"
        );
        assert_eq!(end.record.as_ref().and_then(|r| r.retry_at), Some(10_000));
        running.attempt = 3;
        assert_eq!(running.end_by(&failed, now).state, "dead");
        assert_eq!(running.expire(now).state, "dead");
    }

    #[test]
    fn only_lock_conflicts_are_run_again() {
        assert!(!Failure::Store(StoreError::TaskNotFound(1)).is_lock_conflict());
        assert!(!Failure::Sql(sqlx::Error::PoolTimedOut).is_lock_conflict());
        assert!(
            Failure::Sql(sqlx::Error::PoolTimedOut)
                .into_store_error()
                .is_transient()
        );
    }
}
