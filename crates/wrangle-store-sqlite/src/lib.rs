//! The SQLite store: wrangle's embedded default (`sqlite://.wrangle/wrangle.db`).
//!
//! Many processes on one machine may share the file: it runs in WAL mode, every write
//! transaction starts with `BEGIN IMMEDIATE` (a deferred transaction that reads and then
//! writes can fail with a busy-snapshot error that `busy_timeout` does not cover), and
//! writers wait on each other through `busy_timeout`.
//!
//! Every hot-path operation is one SQL statement over a whole batch: the batch travels as
//! one JSON array parameter and `json_each` turns it into rows, so claiming, completing or
//! heartbeating N tasks costs one statement, not N. SQL lives in `sql/*.sql`.
//!
//! Wake-ups: inside one process, writers notify listeners directly. Across processes
//! SQLite has no notification channel, so a listener polls `PRAGMA data_version` (which
//! changes when another connection commits; reading it touches no table) every
//! [`CROSS_PROCESS_POLL`], and reads the `topic_versions` row only when it changed.
//!
//! Durability: `synchronous=FULL` by default, so a committed task survives power loss;
//! `?synchronous=normal` in the URL trades that for speed (still safe on process crashes).

mod listen;
mod logs;
mod rows;
mod schema;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Row, Sqlite, Transaction};
use wrangle_core::job::{BlockTally, Job, JobTallies, NewJob, ids_of_payload};
use wrangle_core::log::{LogAppend, LogLine, LogOwner, newest_per_owner};
use wrangle_core::store::{
    ClaimRequest, ClaimedTask, Completion, CompletionStatus, Enqueued, Heartbeat, HeartbeatReply,
    JobDeletion, Listener, Outcome, PruneRequest, QueueFilter, QueueStats, Store, StoreError,
    StoreInfo, TaskFilter, Topic, match_inserted, recent_seconds,
};
use wrangle_core::task::{NewTask, Task, TaskId, TaskState};
use wrangle_core::worker::{
    CommandEnvelope, CommandId, ControlCommand, LOST_AFTER_LEASES, WorkerInfo, WorkerRecord,
};

pub use listen::CROSS_PROCESS_POLL;
use listen::Topics;
use rows::{from_ms, job_from_row, ms, task_from_row};
pub use wrangle_core::connect::Open;

/// How long a writer waits for another process's write transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The SQLite store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    topics: Arc<Topics>,
    path: PathBuf,
}

/// Open-time options, parsed from the store URL's query string (`open` is not a URL
/// option).
#[derive(Debug, Clone, Copy)]
pub struct SqliteOptions {
    /// `synchronous=FULL` (true, the default) or `NORMAL`.
    pub full_sync: bool,
    /// Whether a missing file (and its directory) is created and an older schema migrated
    /// ([`Open::Create`]), or only a current store opened ([`Open::Existing`]).
    pub open: Open,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            full_sync: true,
            open: Open::Create,
        }
    }
}

impl SqliteOptions {
    /// Reads `synchronous=full|normal` from a URL query string such as `a=b&synchronous=normal`.
    pub fn from_query(query: &str) -> Result<Self, StoreError> {
        let mut options = SqliteOptions::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("synchronous", value)) => {
                    options.full_sync = match value.to_ascii_lowercase().as_str() {
                        "full" => true,
                        "normal" => false,
                        other => {
                            return Err(StoreError::InvalidRequest(format!(
                                "synchronous must be full or normal, not '{other}'"
                            )));
                        }
                    }
                }
                _ => {
                    return Err(StoreError::InvalidRequest(format!(
                        "unknown SQLite store option '{pair}' (known: synchronous=full|normal)"
                    )));
                }
            }
        }
        Ok(options)
    }
}

impl SqliteStore {
    /// Opens (creating it and its directory if missing) the database at `path` with the
    /// default options, and migrates it to the current schema.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, SqliteOptions::default()).await
    }

    /// Opens the store at `path` only if it exists at the current schema version, creating,
    /// migrating or converting nothing: a missing (or empty) file is
    /// [`StoreError::NoStore`], and its directory is not created (see [`Open::Existing`]).
    pub async fn open_existing(path: &Path) -> Result<SqliteStore, StoreError> {
        let options = SqliteOptions {
            open: Open::Existing,
            ..SqliteOptions::default()
        };
        SqliteStore::open_with(path, options).await
    }

    /// Opens the database at `path` with `options`.
    pub async fn open_with(path: &Path, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        match options.open {
            Open::Create => create_private(path)?,
            // Before the pool below, whose connections switch the file to WAL: a file that
            // is not a current wrangle store is left exactly as it is.
            Open::Existing => schema::check_current(path).await?,
        }
        let connect = SqliteConnectOptions::from_str("sqlite://")
            .map_err(backend)?
            .filename(path)
            .create_if_missing(options.open == Open::Create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if options.full_sync {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("cache_size", "-16000");
        // Two processes opening a new file at once race to switch it to WAL, which SQLite
        // reports as "database is locked" without consulting the busy handler; the loser
        // retries until the busy timeout.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        let mut pause = Duration::from_millis(10);
        let pool = loop {
            let opened = SqlitePoolOptions::new()
                .max_connections(4)
                .min_connections(1)
                // A COMMIT that failed (disk full) can leave sqlx counting a transaction
                // that SQLite already rolled back; such a connection refuses every later
                // BEGIN. It is closed and replaced instead of handed out again.
                .before_acquire(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
                .connect_with(connect.clone())
                .await
                .map_err(backend);
            let error = match opened {
                Ok(pool) if options.open == Open::Existing => break pool,
                Ok(pool) => match schema::migrate(&pool).await {
                    Ok(()) => break pool,
                    Err(err) => err,
                },
                Err(err) => err,
            };
            if !error.is_transient() || std::time::Instant::now() >= deadline {
                return Err(StoreError::Unavailable(format!(
                    "cannot open {}: {error}",
                    path.display()
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        };
        Ok(SqliteStore {
            pool,
            topics: Arc::new(Topics::new(connect)),
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)
    }

    /// Commits `tx` after bumping the versions of `topics`, then wakes this process's
    /// listeners (other processes notice the bump).
    async fn commit_notify(
        &self,
        mut tx: Transaction<'static, Sqlite>,
        topics: &[Topic],
    ) -> Result<(), StoreError> {
        for &topic in topics {
            sqlx::query("UPDATE topic_versions SET version = version + 1 WHERE topic = ?1")
                .bind(listen::topic_name(topic))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        for &topic in topics {
            self.topics.notify(topic);
        }
        Ok(())
    }

    /// Runs an UPDATE of tasks in one write transaction, waking the listeners of `topic`
    /// if it changed any; returns how many it changed.
    async fn update_tasks(
        &self,
        update: sqlx::query::Query<'_, Sqlite, sqlx::sqlite::SqliteArguments>,
        topic: Topic,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write_tx().await?;
        let changed = update
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        let topics: &[Topic] = if changed == 0 { &[] } else { &[topic] };
        self.commit_notify(tx, topics).await?;
        Ok(changed)
    }

    /// Runs `statement` (`?1` the ids as a JSON array for `json_each`, `?2` now) over the
    /// tasks of `ids`; see [`update_tasks`](Self::update_tasks).
    async fn move_tasks(
        &self,
        statement: &'static str,
        ids: &[TaskId],
        now: DateTime<Utc>,
        topic: Topic,
    ) -> Result<u64, StoreError> {
        let ids = serde_json::to_string(ids).expect("ids serialize");
        self.update_tasks(sqlx::query(statement).bind(ids).bind(ms(now)), topic)
            .await
    }

    async fn fetch_task(&self, id: TaskId) -> Result<Task, StoreError> {
        self.get_task(id).await?.ok_or(StoreError::TaskNotFound(id))
    }
}

/// An operator's "run it again now": available at `now` (?2), with one more attempt if
/// it had none left. `$where` picks the tasks.
macro_rules! revive_sql {
    ($where:literal) => {
        concat!(
            "UPDATE tasks SET state = 'available', run_at = ?2, lease_until = NULL, ",
            "max_attempts = max(max_attempts, attempt + 1) WHERE ",
            $where
        )
    };
}

/// Cancels the tasks matched by `$where` (which binds ?1) at ?2: a running attempt ends
/// with a `cancelled` record; its worker learns it at its next heartbeat.
macro_rules! cancel_sql {
    ($where:literal) => {
        concat!(
            "UPDATE tasks SET
                 attempts = CASE WHEN state = 'running' THEN json_insert(attempts, '$[#]',
                     json_object('attempt', attempt, 'worker', worker, 'started_at', started_at,
                                 'finished_at', ?2, 'outcome', 'cancelled'))
                     ELSE attempts END,
                 state = 'cancelled', finished_at = ?2, lease_until = NULL
             WHERE ",
            $where
        )
    };
}

/// Fails with `InvalidTransition` unless `allowed` accepts task `id`'s current state.
async fn guard_transition(
    tx: &mut Transaction<'static, Sqlite>,
    id: TaskId,
    action: &'static str,
    allowed: fn(TaskState) -> bool,
) -> Result<(), StoreError> {
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM tasks WHERE id = ?1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(backend)?;
    let state: TaskState = state
        .ok_or(StoreError::TaskNotFound(id))?
        .parse()
        .map_err(|e| StoreError::Backend(format!("{e}")))?;
    if allowed(state) {
        Ok(())
    } else {
        Err(StoreError::InvalidTransition { id, state, action })
    }
}

/// Makes up to `count` new blocks for a claim from the range jobs it may take (see
/// `wrangle_core::job`), inside the claim's transaction: the cursor moves and the blocks are
/// inserted already running, so no other claimer can get them.
async fn create_blocks(
    tx: &mut Transaction<'static, Sqlite>,
    request: &ClaimRequest,
    queues: Option<&str>,
    mut count: usize,
    lease_until: DateTime<Utc>,
) -> Result<Vec<ClaimedTask>, StoreError> {
    let mut claimed = Vec::new();
    while count > 0 {
        let Some(row) = sqlx::query(include_str!("sql/job_to_advance.sql"))
            .bind(queues)
            .fetch_optional(&mut **tx)
            .await
            .map_err(backend)?
        else {
            break;
        };
        let job = job_from_row(&row)?;
        let (blocks, cursor) = job.next_blocks(count);
        sqlx::query("UPDATE jobs SET cursor = ?1 WHERE name = ?2")
            .bind(cursor)
            .bind(job.name())
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
        let mut ids: Vec<TaskId> =
            sqlx::query_scalar::<_, i64>(include_str!("sql/insert_blocks.sql"))
                // (start, end) pairs serialize as the [[start, end], ...] the SQL reads.
                .bind(serde_json::to_string(&blocks).expect("integers serialize"))
                .bind(&request.worker)
                .bind(ms(lease_until))
                .bind(ms(request.now))
                .bind(job.name())
                .fetch_all(&mut **tx)
                .await
                .map_err(backend)?;
        // Rows were inserted in block order, so ids increase with the blocks.
        ids.sort_unstable();
        if ids.len() != blocks.len() {
            return Err(StoreError::Backend("block insert lost track of ids".into()));
        }
        count -= blocks.len();
        claimed.extend(
            ids.into_iter()
                .zip(blocks)
                .map(|(id, block)| job.claimed_block(id, block, lease_until)),
        );
    }
    Ok(claimed)
}

/// Registers a worker or refreshes its row.
async fn upsert_worker(
    tx: &mut Transaction<'static, Sqlite>,
    info: &WorkerInfo,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let text = serde_json::to_string(info).map_err(|e| StoreError::Backend(e.to_string()))?;
    sqlx::query(
        "INSERT INTO workers (name, info, last_seen) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET info = excluded.info, last_seen = excluded.last_seen",
    )
    .bind(&info.name)
    .bind(text)
    .bind(ms(now))
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    Ok(())
}

/// Creates the store's directory (0700) and an empty database file (0600) where they are
/// missing: a store holds payloads and results, which are nobody else's business. SQLite
/// gives its `-wal` and `-shm` files the database file's permissions. A directory or
/// file that already exists keeps the permissions its owner chose.
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let failed = |what: &Path, err: std::io::Error| {
        StoreError::Unavailable(format!("cannot create {}: {err}", what.display()))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|err| failed(dir, err))?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(failed(path, err)),
    }
}

/// Maps a driver error: busy databases, I/O errors and a full disk are transient (the
/// worker keeps its outcomes and retries until space returns).
pub(crate) fn backend(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            StoreError::Unavailable(err.to_string())
        }
        sqlx::Error::Database(db) if db.code().is_some_and(|code| is_transient_code(&code)) => {
            StoreError::Unavailable(err.to_string())
        }
        _ => StoreError::Backend(err.to_string()),
    }
}

/// SQLite result codes (extended ones carry the primary code in their low byte) that
/// retrying later may mend: SQLITE_BUSY (5), SQLITE_LOCKED (6), SQLITE_IOERR (10),
/// SQLITE_FULL (13).
fn is_transient_code(code: &str) -> bool {
    code.parse::<i32>()
        .is_ok_and(|code| matches!(code & 0xff, 5 | 6 | 10 | 13))
}

fn json_text(value: &Value) -> String {
    serde_json::to_string(value).expect("serializing a JSON value cannot fail")
}

#[async_trait]
impl Store for SqliteStore {
    fn info(&self) -> StoreInfo {
        StoreInfo {
            name: "sqlite",
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
        let rows: Vec<Value> = tasks
            .iter()
            .map(|t| {
                json!({
                    "queue": t.queue,
                    "kind": t.kind,
                    "payload": json_text(&t.payload),
                    "priority": t.priority,
                    "state": t.initial_state(now).as_str(),
                    "run_at": ms(t.initial_run_at(now)),
                    "max_attempts": t.stored_max_attempts(),
                    "timeout_ms": t.timeout.map(|d| d.as_millis() as i64),
                    "unique_key": t.unique_key,
                    "job": t.job,
                    // What the job's counters add up (schema_v7.sql).
                    "ids": t.job.as_ref().map(|_| {
                        i64::try_from(ids_of_payload(&t.payload)).unwrap_or(i64::MAX)
                    }),
                })
            })
            .collect();
        let mut tx = self.write_tx().await?;
        let inserted = sqlx::query(include_str!("sql/enqueue.sql"))
            .bind(json_text(&Value::Array(rows)))
            .bind(ms(now))
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        let inserted: Vec<(TaskId, Option<String>)> = inserted
            .iter()
            .map(|r| (r.get::<i64, _>(0), r.get::<Option<String>, _>(1)))
            .collect();
        let inserted_any = !inserted.is_empty();
        let mut results = match_inserted(&tasks, inserted)?;
        let duplicates: Vec<usize> = (0..results.len())
            .filter(|&i| results[i].duplicate)
            .collect();
        if !duplicates.is_empty() {
            let keys: Vec<&str> = duplicates
                .iter()
                .filter_map(|&i| tasks[i].unique_key.as_deref())
                .collect();
            let existing: std::collections::HashMap<String, TaskId> = sqlx::query_as(
                "SELECT unique_key, id FROM tasks WHERE unique_key IN (SELECT value FROM json_each(?1))",
            )
            .bind(json_text(&json!(keys)))
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?
            .into_iter()
            .collect();
            for index in duplicates {
                let key = tasks[index].unique_key.as_deref().unwrap_or_default();
                results[index].id = *existing
                    .get(key)
                    .ok_or_else(|| StoreError::Backend(format!("unique key {key} vanished")))?;
            }
        }
        let topics: &[Topic] = if inserted_any { &[Topic::Tasks] } else { &[] };
        self.commit_notify(tx, topics).await?;
        Ok(results)
    }

    async fn claim_batch(&self, request: ClaimRequest) -> Result<Vec<ClaimedTask>, StoreError> {
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        let lease_until = request.now
            + chrono::Duration::from_std(request.lease)
                .map_err(|_| StoreError::InvalidRequest("lease too long".into()))?;
        let sql = match &request.queues {
            QueueFilter::All => include_str!("sql/claim_all.sql"),
            QueueFilter::Only(_) => include_str!("sql/claim_queues.sql"),
        };
        let queues = match &request.queues {
            QueueFilter::All => None,
            QueueFilter::Only(queues) => Some(json_text(&json!(queues))),
        };
        let mut query = sqlx::query(sql)
            .bind(&request.worker)
            .bind(ms(lease_until))
            .bind(ms(request.now))
            .bind(request.limit as i64);
        if let Some(queues) = &queues {
            query = query.bind(queues);
        }
        let mut tx = self.write_tx().await?;
        let rows = query.fetch_all(&mut *tx).await.map_err(backend)?;
        let blocks = if rows.len() < request.limit {
            let count = request.limit - rows.len();
            create_blocks(&mut tx, &request, queues.as_deref(), count, lease_until).await?
        } else {
            Vec::new()
        };
        tx.commit().await.map_err(backend)?;
        let mut claimed: Vec<(i32, i64, ClaimedTask)> = rows
            .iter()
            .map(|row| {
                let payload: String = row.get("payload");
                let task = ClaimedTask {
                    id: row.get("id"),
                    queue: row.get("queue"),
                    kind: row.get("kind"),
                    payload: serde_json::from_str(&payload).unwrap_or(Value::String(payload)),
                    attempt: row.get::<i64, _>("attempt") as u32,
                    max_attempts: row.get::<i64, _>("max_attempts") as u32,
                    timeout: row
                        .get::<Option<i64>, _>("timeout_ms")
                        .map(|t| Duration::from_millis(t as u64)),
                    job: row.get("job"),
                    lease_until,
                };
                (row.get("priority"), row.get("run_at"), task)
            })
            .collect();
        claimed
            .sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.id.cmp(&b.2.id)));
        Ok(claimed
            .into_iter()
            .map(|(_, _, task)| task)
            .chain(blocks)
            .collect())
    }

    async fn complete_batch(
        &self,
        completions: &[Completion],
        now: DateTime<Utc>,
    ) -> Result<Vec<CompletionStatus>, StoreError> {
        if completions.is_empty() {
            return Ok(Vec::new());
        }
        // An attempt named twice in one batch: the first applies, the repeats are stale
        // (one UPDATE cannot apply two rows to one task in a defined order). Entries for
        // other attempts of the same task stay: only the running one can match.
        let mut first_seen = std::collections::HashSet::new();
        let firsts: Vec<bool> = completions
            .iter()
            .map(|c| first_seen.insert((c.id, c.attempt, c.worker.as_str())))
            .collect();
        let rows: Vec<Value> = completions
            .iter()
            .zip(&firsts)
            .filter(|(_, first)| **first)
            .map(|(c, _)| {
                let (outcome, result, error, retry_at) = match &c.outcome {
                    Outcome::Succeeded { result } => ("ok", Some(json_text(result)), None, None),
                    Outcome::Failed { error, retry_at } => {
                        ("fail", None, Some(error.clone()), retry_at.map(ms))
                    }
                    Outcome::Released { reason } => ("release", None, Some(reason.clone()), None),
                };
                json!({
                    "id": c.id, "attempt": c.attempt, "worker": c.worker, "outcome": outcome,
                    "result": result, "error": error, "retry_at": retry_at,
                })
            })
            .collect();
        let mut tx = self.write_tx().await?;
        // (task, attempt that ran, its worker) -> the state it is in now.
        let applied: std::collections::HashMap<(TaskId, u32, String), String> =
            sqlx::query_as(include_str!("sql/complete.sql"))
                .bind(ms(now))
                .bind(json_text(&Value::Array(rows)))
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?
                .into_iter()
                .map(
                    |(id, state, attempt, worker): (TaskId, String, u32, String)| {
                        let ran = if state == "available" {
                            attempt + 1
                        } else {
                            attempt
                        };
                        ((id, ran, worker), state)
                    },
                )
                .collect();
        let released = applied.values().any(|s| s == "available");
        let topics: &[Topic] = match (applied.is_empty(), released) {
            (true, _) => &[],
            (false, false) => &[Topic::Outcomes],
            (false, true) => &[Topic::Outcomes, Topic::Tasks],
        };
        self.commit_notify(tx, topics).await?;
        completions
            .iter()
            .zip(firsts)
            .map(
                |(c, first)| match applied.get(&(c.id, c.attempt, c.worker.clone())) {
                    Some(state) if first => state
                        .parse()
                        .map(CompletionStatus::Applied)
                        .map_err(|e| StoreError::Backend(format!("{e}"))),
                    _ => Ok(CompletionStatus::Stale),
                },
            )
            .collect()
    }

    async fn heartbeat(&self, beat: Heartbeat) -> Result<HeartbeatReply, StoreError> {
        let name = beat.worker.name.clone();
        let mut tx = self.write_tx().await?;
        upsert_worker(&mut tx, &beat.worker, beat.now).await?;
        let mut lost = Vec::new();
        if !beat.leases.is_empty() {
            let extended: std::collections::HashSet<TaskId> =
                sqlx::query_scalar(include_str!("sql/extend_leases.sql"))
                    .bind(ms(beat.lease_until))
                    .bind(json_text(&json!(beat.leases)))
                    .bind(&name)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(backend)?
                    .into_iter()
                    .collect();
            lost = beat
                .leases
                .iter()
                .map(|(id, _)| *id)
                .filter(|id| !extended.contains(id))
                .collect();
        }
        let commands_waiting: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM commands WHERE worker = ?1 AND acked_at IS NULL)",
        )
        .bind(&name)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(HeartbeatReply {
            lost,
            commands_waiting,
        })
    }

    async fn rescue_expired(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<TaskId>, StoreError> {
        let mut tx = self.write_tx().await?;
        let mut rescued: Vec<TaskId> = sqlx::query_scalar(include_str!("sql/rescue.sql"))
            .bind(ms(now))
            .bind(limit as i64)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        let topics: &[Topic] = if rescued.is_empty() {
            &[]
        } else {
            &[Topic::Tasks, Topic::Outcomes]
        };
        self.commit_notify(tx, topics).await?;
        rescued.sort_unstable();
        Ok(rescued)
    }

    async fn get_task(&self, id: TaskId) -> Result<Option<Task>, StoreError> {
        sqlx::query("SELECT * FROM tasks WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .map(|row| task_from_row(&row))
            .transpose()
    }

    async fn list_tasks(&self, filter: TaskFilter) -> Result<Vec<Task>, StoreError> {
        sqlx::query(
            "SELECT * FROM tasks
             WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR queue = ?2)
               AND (?3 IS NULL OR job = ?3) AND id < ?4
             ORDER BY id DESC LIMIT ?5",
        )
        .bind(filter.state.map(TaskState::as_str))
        .bind(filter.queue)
        .bind(filter.job)
        .bind(filter.before_id.unwrap_or(i64::MAX))
        .bind(filter.limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(task_from_row)
        .collect()
    }

    async fn retry_task(&self, id: TaskId, now: DateTime<Utc>) -> Result<Task, StoreError> {
        let mut tx = self.write_tx().await?;
        guard_transition(&mut tx, id, "retry", TaskState::can_retry).await?;
        sqlx::query(revive_sql!("id = ?1"))
            .bind(id)
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        self.commit_notify(tx, &[Topic::Tasks]).await?;
        self.fetch_task(id).await
    }

    async fn retry_dead(
        &self,
        queue: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let revive = sqlx::query(revive_sql!("state = 'dead' AND (?1 IS NULL OR queue = ?1)"))
            .bind(queue)
            .bind(ms(now));
        self.update_tasks(revive, Topic::Tasks).await
    }

    async fn cancel_task(&self, id: TaskId, now: DateTime<Utc>) -> Result<Task, StoreError> {
        let mut tx = self.write_tx().await?;
        guard_transition(&mut tx, id, "cancel", TaskState::can_cancel).await?;
        sqlx::query(cancel_sql!("id = ?1"))
            .bind(id)
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        self.commit_notify(tx, &[Topic::Outcomes]).await?;
        self.fetch_task(id).await
    }

    async fn cancel_tasks(&self, ids: &[TaskId], now: DateTime<Utc>) -> Result<u64, StoreError> {
        let statement = cancel_sql!(
            "id IN (SELECT value FROM json_each(?1))
             AND state IN ('scheduled', 'available', 'retryable', 'running')"
        );
        self.move_tasks(statement, ids, now, Topic::Outcomes).await
    }

    async fn retry_tasks(&self, ids: &[TaskId], now: DateTime<Utc>) -> Result<u64, StoreError> {
        let statement = revive_sql!(
            "id IN (SELECT value FROM json_each(?1))
             AND state IN ('scheduled', 'retryable', 'dead', 'cancelled')"
        );
        self.move_tasks(statement, ids, now, Topic::Tasks).await
    }

    async fn prune_finished(&self, request: PruneRequest) -> Result<u64, StoreError> {
        request.check()?;
        let mut tx = self.write_tx().await?;
        let deleted: Vec<TaskId> = sqlx::query_scalar(include_str!("sql/prune.sql"))
            .bind(ms(request.finished_before))
            .bind(i64::try_from(request.limit).unwrap_or(i64::MAX))
            .bind(request.state.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        logs::drop_rings(&mut tx, deleted.iter().map(|&id| LogOwner::Task(id))).await?;
        tx.commit().await.map_err(backend)?;
        Ok(deleted.len() as u64)
    }

    async fn create_job(&self, job: NewJob, now: DateTime<Utc>) -> Result<Job, StoreError> {
        job.validate()?;
        let job = job.into_job(now);
        let definition = &job.definition;
        let mut tx = self.write_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO jobs (name, kind, queue, task_kind, priority, max_attempts, timeout_ms,
                               start_id, end_id, block, cursor, cancelled, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, ?12)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&definition.name)
        .bind(definition.kind.as_str())
        .bind(&definition.queue)
        .bind(&definition.task_kind)
        .bind(definition.priority)
        .bind(definition.max_attempts as i64)
        .bind(definition.timeout.map(|d| d.as_millis() as i64))
        .bind(definition.start)
        .bind(definition.end)
        .bind(definition.block)
        .bind(job.cursor)
        .bind(ms(now))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::JobExists(definition.name.clone()));
        }
        let topics: &[Topic] = if job.has_blocks_to_create() {
            &[Topic::Tasks]
        } else {
            &[]
        };
        self.commit_notify(tx, topics).await?;
        Ok(job)
    }

    async fn get_job(&self, name: &str) -> Result<Option<Job>, StoreError> {
        sqlx::query("SELECT * FROM jobs WHERE name = ?1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(job_from_row)
            .transpose()
    }

    async fn list_jobs(&self) -> Result<Vec<Job>, StoreError> {
        sqlx::query("SELECT * FROM jobs ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(job_from_row)
            .collect()
    }

    async fn delete_job(&self, name: &str, limit: usize) -> Result<JobDeletion, StoreError> {
        let mut tx = self.write_tx().await?;
        let found = sqlx::query("UPDATE jobs SET cancelled = 1 WHERE name = ?1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        if found == 0 {
            return Err(StoreError::JobNotFound(name.to_string()));
        }
        let deleted: Vec<TaskId> = sqlx::query_scalar(include_str!("sql/delete_job_tasks.sql"))
            .bind(name)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        logs::drop_rings(&mut tx, deleted.iter().map(|&id| LogOwner::Task(id))).await?;
        let done = deleted.len() < limit;
        if done {
            sqlx::query("DELETE FROM jobs WHERE name = ?1")
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        // A running task deleted: its worker's completion is now stale.
        self.commit_notify(tx, &[Topic::Outcomes]).await?;
        Ok(JobDeletion {
            tasks: deleted.len() as u64,
            done,
        })
    }

    async fn cancel_job(&self, name: &str) -> Result<Job, StoreError> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("UPDATE jobs SET cancelled = 1 WHERE name = ?1 RETURNING *")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
            .ok_or_else(|| StoreError::JobNotFound(name.to_string()))?;
        let job = job_from_row(&row)?;
        tx.commit().await.map_err(backend)?;
        Ok(job)
    }

    async fn job_tallies(&self, name: &str, now: DateTime<Utc>) -> Result<JobTallies, StoreError> {
        let (first, last) = recent_seconds(now);
        let rows = sqlx::query(include_str!("sql/job_tallies.sql"))
            .bind(name)
            .bind(first)
            .bind(last)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let Some(first_row) = rows.first() else {
            return Err(StoreError::JobNotFound(name.to_string()));
        };
        let blocks = rows
            .iter()
            // The one row of a job that has no task counted.
            .filter_map(|row| Some((row.get::<Option<String>, _>("state")?, row)))
            .map(|(state, row)| {
                Ok(BlockTally {
                    state: state
                        .parse()
                        .map_err(|e| StoreError::Backend(format!("{e}")))?,
                    worker: row.get("worker"),
                    blocks: row.get::<i64, _>("blocks") as u64,
                    ids: row.get::<i64, _>("ids") as u64,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(JobTallies {
            blocks,
            ids_completed_last_minute: first_row.get::<i64, _>("recent") as u64,
        })
    }

    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let sql = if paused {
            "INSERT INTO paused_queues (queue) VALUES (?1) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM paused_queues WHERE queue = ?1"
        };
        sqlx::query(sql)
            .bind(queue)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let topics: &[Topic] = if paused { &[] } else { &[Topic::Tasks] };
        self.commit_notify(tx, topics).await
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<Vec<QueueStats>, StoreError> {
        rows::queue_stats(&self.pool, now).await
    }

    async fn register_worker(
        &self,
        info: WorkerInfo,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        upsert_worker(&mut tx, &info, now).await?;
        tx.commit().await.map_err(backend)
    }

    async fn deregister_worker(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM workers WHERE name = ?1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        logs::drop_rings(&mut tx, [LogOwner::Worker(name.to_string())]).await?;
        tx.commit().await.map_err(backend)
    }

    async fn list_workers(&self) -> Result<Vec<WorkerRecord>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT info, last_seen FROM workers ORDER BY name")
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        rows.into_iter()
            .map(|(info, last_seen)| {
                Ok(WorkerRecord {
                    info: serde_json::from_str(&info)
                        .map_err(|e| StoreError::Backend(format!("bad worker row: {e}")))?,
                    last_seen: from_ms(last_seen),
                })
            })
            .collect()
    }

    async fn prune_lost_workers(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let mut tx = self.write_tx().await?;
        let mut gone: Vec<String> = sqlx::query_scalar(
            "DELETE FROM workers
             WHERE json_extract(info, '$.lease_ms') > 0
               AND last_seen < ?1 - json_extract(info, '$.lease_ms') * ?2
             RETURNING name",
        )
        .bind(ms(now))
        .bind(LOST_AFTER_LEASES)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        logs::drop_rings(&mut tx, gone.iter().cloned().map(LogOwner::Worker)).await?;
        tx.commit().await.map_err(backend)?;
        gone.sort();
        Ok(gone)
    }

    async fn send_command(
        &self,
        worker: &str,
        command: ControlCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandId, StoreError> {
        let text =
            serde_json::to_string(&command).map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut tx = self.write_tx().await?;
        let id: CommandId = sqlx::query_scalar(
            "INSERT INTO commands (worker, command, sent_at) VALUES (?1, ?2, ?3) RETURNING id",
        )
        .bind(worker)
        .bind(text)
        .bind(ms(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        self.commit_notify(tx, &[Topic::Commands]).await?;
        Ok(id)
    }

    async fn pending_commands(&self, worker: &str) -> Result<Vec<CommandEnvelope>, StoreError> {
        sqlx::query("SELECT * FROM commands WHERE worker = ?1 AND acked_at IS NULL ORDER BY id")
            .bind(worker)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(rows::command_from_row)
            .collect()
    }

    async fn ack_command(
        &self,
        id: CommandId,
        reply: Value,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let updated = sqlx::query("UPDATE commands SET acked_at = ?2, reply = ?3 WHERE id = ?1")
            .bind(id)
            .bind(ms(now))
            .bind(json_text(&reply))
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        if updated == 0 {
            return Err(StoreError::CommandNotFound(id));
        }
        self.commit_notify(tx, &[Topic::Commands]).await
    }

    async fn get_command(&self, id: CommandId) -> Result<Option<CommandEnvelope>, StoreError> {
        sqlx::query("SELECT * FROM commands WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .map(|row| rows::command_from_row(&row))
            .transpose()
    }

    async fn listen(&self, topic: Topic) -> Result<Box<dyn Listener>, StoreError> {
        self.topics.listen(topic).await
    }

    async fn take_turn(
        &self,
        duty: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let held: Option<String> = sqlx::query_scalar(include_str!("sql/take_turn.sql"))
            .bind(duty)
            .bind(holder)
            .bind(ms(until))
            .bind(ms(now))
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(held.is_some())
    }

    async fn tidy(&self) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::raw_sql(include_str!("sql/tidy.sql"))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn append_logs(&self, appends: &[LogAppend], keep: usize) -> Result<(), StoreError> {
        let appends = newest_per_owner(appends, keep);
        if appends.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        logs::append(&mut tx, &appends, keep).await?;
        self.commit_notify(tx, &[Topic::Logs]).await
    }

    async fn read_log(
        &self,
        owner: &LogOwner,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LogLine>, StoreError> {
        logs::read(&self.pool, owner, after, limit).await
    }
}
