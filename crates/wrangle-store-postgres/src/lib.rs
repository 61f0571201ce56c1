//! The PostgreSQL store (`postgres://user@host/db?schema=wrangle`): many workers on many
//! machines sharing one database.
//!
//! - Claims lock due tasks with `FOR UPDATE SKIP LOCKED`, so concurrent workers pass over
//!   each other's rows instead of queueing on them, and walk a partial index that holds
//!   only waiting tasks, so their cost stays flat however many finished tasks pile up.
//! - Every hot-path operation (enqueue, claim, complete, heartbeat, rescue) is one
//!   statement over the whole batch, which travels as arrays (or one JSON parameter), and
//!   runs in autocommit: one round trip per batch. A big enqueue without unique keys is
//!   two: ids reserved, then the rows streamed with COPY.
//! - Every `vacuum_every` claimed tasks the store VACUUMs the tasks table itself (the
//!   `vacuum` module says why).
//! - Range jobs hand out their blocks lazily: a claim that finds fewer due tasks than asked
//!   for advances the cursor of the jobs it takes (row-locked) and inserts the blocks, already
//!   running, in the same statement (`sql/claim.sql`, through the `claim_blocks` function
//!   of `sql/schema_v2.sql`).
//! - Wake-ups are LISTEN/NOTIFY; triggers send them inside the writing transaction (see
//!   the `listen` module).
//! - Times are the `now` callers pass in, stored as epoch milliseconds; the server's clock
//!   is never used for anything a caller can observe.
//! - [`PostgresStore::enqueue_in`] enqueues inside the caller's own transaction.
//!
//! Modules: `options` (URL options), `connect` (the first connection and its errors),
//! `sql` (the statements, from `sql/*.sql`), `schema` (migrations), `rows` (row
//! decoding), `listen` (the LISTEN bridge), `vacuum` (the store's own VACUUM).

mod connect;
mod listen;
mod options;
mod rows;
mod schema;
mod sql;
mod vacuum;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, Transaction};
use wrangle_core::job::{Job, JobTallies, NewJob};
use wrangle_core::log::{LogAppend, LogLine, LogOwner, LogRow, newest_per_owner};
use wrangle_core::store::{
    ClaimRequest, ClaimedTask, Completion, CompletionStatus, Enqueued, Heartbeat, HeartbeatReply,
    JobDeletion, Listener, Outcome, PruneRequest, QueueFilter, QueueStats, Store, StoreError,
    StoreInfo, TaskFilter, Topic, match_inserted, recent_seconds,
};
use wrangle_core::task::{NewTask, Task, TaskId, TaskState};
use wrangle_core::worker::{
    CommandEnvelope, CommandId, ControlCommand, LOST_AFTER_LEASES, WorkerInfo, WorkerRecord,
};

pub use options::{DEFAULT_POOL_SIZE, DEFAULT_SCHEMA, PostgresOptions};
pub use vacuum::DEFAULT_VACUUM_EVERY;
pub use wrangle_core::connect::Open;

use listen::Notifier;
use rows::{column, command_from_row, from_ms, job_from_row, ms, task_from_row};
use sql::{Statements, sql};
use vacuum::ClaimVacuum;

/// The PostgreSQL store. Cheap to clone: clones share the pool and the LISTEN connection.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    statements: Arc<Statements>,
    notifier: Arc<Notifier>,
    vacuum: Arc<ClaimVacuum>,
    schema: Arc<str>,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`, with
    /// wrangle's options `schema`, `pool_size`, `vacuum_every` and `connect_timeout` and any
    /// of the driver's, such as `sslmode` and `sslrootcert`, in the query string), creating
    /// and migrating wrangle's schema as needed.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let (connect, options) = PostgresOptions::from_url(url)?;
        PostgresStore::connect_with(connect, options).await
    }

    /// Like [`connect`](Self::connect), but only if wrangle's schema exists at the current
    /// version: nothing is created or migrated, a missing store is
    /// [`StoreError::NoStore`] (see [`Open::Existing`]).
    pub async fn connect_existing(url: &str) -> Result<PostgresStore, StoreError> {
        let (connect, options) = PostgresOptions::from_url(url)?;
        let options = PostgresOptions {
            open: Open::Existing,
            ..options
        };
        PostgresStore::connect_with(connect, options).await
    }

    /// Like [`connect`](Self::connect), with wrangle's tables in `schema` whatever the URL
    /// says (how tests give each case a fresh, empty schema on one server).
    pub async fn connect_with_schema(url: &str, schema: &str) -> Result<PostgresStore, StoreError> {
        let (connect, mut options) = PostgresOptions::from_url(url)?;
        options.schema = schema.to_string();
        PostgresStore::connect_with(connect, options).await
    }

    /// Connects with driver options `connect` and wrangle's `options`.
    ///
    /// A server that cannot be reached, refuses the credentials or the TLS handshake, or
    /// has no such database fails with [`StoreError::Connect`] within
    /// `options.connect_timeout`.
    pub async fn connect_with(
        connect: PgConnectOptions,
        options: PostgresOptions,
    ) -> Result<PostgresStore, StoreError> {
        options.validate()?;
        // Named "wrangle" in pg_stat_activity unless the URL names the connections itself
        // (`application_name=billing-workers`).
        let connect = if connect.get_application_name().is_none() {
            connect.application_name("wrangle")
        } else {
            connect
        };
        let statements = Statements::for_schema(&options.schema);
        let mut first = connect::first_connection(&connect, options.connect_timeout).await?;
        let checked = match options.open {
            Open::Create => schema::migrate(&mut first, &statements, &options.schema).await,
            Open::Existing => {
                let at = connect::store_at(&connect, &options.schema);
                schema::check_current(&mut first, &statements, &options.schema, &at).await
            }
        };
        // The pool opens its own connections; a failed goodbye changes nothing.
        let _ = sqlx::Connection::close(first).await;
        checked?;
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_size)
            .acquire_timeout(options.connect_timeout)
            // No ping before every operation (a round trip each): a connection broken by a
            // server restart fails its next operation with `Unavailable`, is discarded, and
            // the caller's retry gets a new one.
            .test_before_acquire(false)
            .connect_lazy_with(connect.clone());
        Ok(PostgresStore {
            pool,
            vacuum: ClaimVacuum::new(options.vacuum_every, statements.vacuum.clone()),
            statements: Arc::new(statements),
            notifier: Arc::new(Notifier::new(
                connect,
                &options.schema,
                options.connect_timeout,
            )),
            schema: options.schema.into(),
        })
    }

    /// The schema holding wrangle's tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The connection pool, for callers who want to open their own transactions (for
    /// [`enqueue_in`](Self::enqueue_in)) on the same database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Enqueues `tasks` on `connection`, normally inside the caller's transaction (pass
    /// `&mut *tx`): the tasks exist if and only if the caller commits, and workers are woken
    /// on commit. Same rules as [`Store::enqueue_batch`] (unique keys, order, ids).
    ///
    /// ```no_run
    /// # async fn example(store: wrangle_store_postgres::PostgresStore) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut tx = store.pool().begin().await?;
    /// sqlx::query("INSERT INTO orders (id) VALUES (42)").execute(&mut *tx).await?;
    /// let task = wrangle_core::NewTask::new("ship", serde_json::json!({ "order": 42 }));
    /// store.enqueue_in(&mut tx, vec![task], chrono::Utc::now()).await?;
    /// tx.commit().await?; // the order and its task, or neither
    /// # Ok(()) }
    /// ```
    pub async fn enqueue_in(
        &self,
        connection: &mut PgConnection,
        tasks: Vec<NewTask>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        if tasks.len() >= COPY_FROM && tasks.iter().all(|t| t.unique_key.is_none()) {
            return self.enqueue_by_copy(connection, &tasks, now).await;
        }
        let rows: Vec<Value> = tasks
            .iter()
            .enumerate()
            .map(|(ord, t)| {
                json!({
                    "ord": ord,
                    "queue": t.queue,
                    "kind": t.kind,
                    "payload": t.payload,
                    "priority": t.priority,
                    "state": t.initial_state(now).as_str(),
                    "run_at": ms(t.initial_run_at(now)),
                    "max_attempts": t.stored_max_attempts(),
                    "timeout_ms": t.timeout.map(|d| d.as_millis() as i64),
                    "unique_key": t.unique_key,
                    "job": t.job,
                })
            })
            .collect();
        let returned = sqlx::query(sql(&self.statements.enqueue))
            .bind(Json(rows))
            .bind(ms(now))
            .fetch_all(&mut *connection)
            .await
            .map_err(backend)?;
        // Inserted rows got increasing ids in request order; the others are the tasks that
        // already held a key of the batch.
        let mut inserted: Vec<(TaskId, Option<String>)> = Vec::new();
        let mut holders: HashMap<String, TaskId> = HashMap::new();
        for row in &returned {
            let id: TaskId = column(row, "id")?;
            let key: Option<String> = column(row, "unique_key")?;
            if column(row, "inserted")? {
                inserted.push((id, key));
            } else if let Some(key) = key {
                holders.insert(key, id);
            }
        }
        for (id, key) in &inserted {
            if let Some(key) = key {
                holders.insert(key.clone(), *id);
            }
        }
        let mut results = match_inserted(&tasks, inserted)?;
        let mut unresolved = Vec::new();
        for (task, result) in tasks.iter().zip(&mut results) {
            if result.duplicate {
                let key = task.unique_key.as_deref().unwrap_or_default();
                match holders.get(key) {
                    Some(id) => result.id = *id,
                    None => unresolved.push(key.to_string()),
                }
            }
        }
        if !unresolved.is_empty() {
            // The key's holder committed concurrently, after the statement's snapshot: the
            // insert waited for it and skipped, but the statement could not see it.
            let found: HashMap<String, TaskId> =
                sqlx::query_as::<_, (TaskId, String)>(sql(&self.statements.existing_keys))
                    .bind(&unresolved)
                    .fetch_all(&mut *connection)
                    .await
                    .map_err(backend)?
                    .into_iter()
                    .map(|(id, key)| (key, id))
                    .collect();
            for (task, result) in tasks.iter().zip(&mut results) {
                if result.duplicate && result.id == 0 {
                    let key = task.unique_key.as_deref().unwrap_or_default();
                    result.id = *found.get(key).ok_or_else(|| {
                        StoreError::Backend(format!("the task holding unique key {key} vanished"))
                    })?;
                }
            }
        }
        Ok(results)
    }

    /// Enqueues a batch without unique keys with COPY: ids reserved from the sequence in
    /// one round trip, rows streamed in a second. COPY inserts the rows a page at a time
    /// instead of one by one through the executor, which on this table is about twice as
    /// fast for big batches. All or nothing, like the INSERT (COPY is one statement).
    async fn enqueue_by_copy(
        &self,
        connection: &mut PgConnection,
        tasks: &[NewTask],
        now: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(sql(&self.statements.reserve_ids))
            .bind(tasks.len() as i64)
            .fetch_all(&mut *connection)
            .await
            .map_err(backend)?;
        if ids.len() != tasks.len() {
            return Err(StoreError::Backend(format!(
                "reserved {} ids for {} tasks",
                ids.len(),
                tasks.len()
            )));
        }
        let created_at = ms(now);
        let mut data = String::with_capacity(tasks.len() * 128);
        for (task, id) in tasks.iter().zip(&ids) {
            let mut row = CopyRow::new(&mut data);
            row.field(id);
            row.field(&task.queue);
            row.field(&task.kind);
            row.field(&task.payload);
            row.field(task.priority);
            row.field(task.initial_state(now).as_str());
            row.field(ms(task.initial_run_at(now)));
            row.field(task.stored_max_attempts());
            row.optional(task.timeout.map(|d| d.as_millis()));
            row.optional(task.job.as_deref());
            row.field(created_at);
        }
        let mut copy = connection
            .copy_in_raw(&self.statements.enqueue_copy)
            .await
            .map_err(backend)?;
        if let Err(err) = copy.send(data.into_bytes()).await {
            let _ = copy.abort("send failed").await;
            return Err(backend(err));
        }
        copy.finish().await.map_err(backend)?;
        Ok(ids
            .into_iter()
            .map(|id| Enqueued {
                id,
                duplicate: false,
            })
            .collect())
    }

    /// Runs `statement` (binds: the ids, now) and returns how many rows it changed.
    async fn update_tasks(
        &self,
        statement: &Arc<str>,
        ids: &[TaskId],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(sql(statement))
            .bind(ids)
            .bind(ms(now))
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected())
    }

    /// An operator action on task `id` in one transaction: locks the task, checks that
    /// `allowed` accepts its state (else `InvalidTransition`), runs `statement` (which takes
    /// the id and `now` and returns the task) and commits.
    async fn operator_action(
        &self,
        id: TaskId,
        now: DateTime<Utc>,
        action: &'static str,
        allowed: fn(TaskState) -> bool,
        statement: &Arc<str>,
    ) -> Result<Task, StoreError> {
        let mut tx: Transaction<'_, Postgres> = self.pool.begin().await.map_err(backend)?;
        let state: Option<String> = sqlx::query_scalar(sql(&self.statements.lock_task))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let state = rows::state(&state.ok_or(StoreError::TaskNotFound(id))?)?;
        if !allowed(state) {
            return Err(StoreError::InvalidTransition { id, state, action });
        }
        let row = sqlx::query(sql(statement))
            .bind(id)
            .bind(ms(now))
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        let task = task_from_row(&row)?;
        tx.commit().await.map_err(backend)?;
        Ok(task)
    }
}

/// Maps a driver error. Connection problems (I/O, timeouts, a server shutting down or
/// restarting, too many connections) and conflicts worth retrying (deadlock, serialization)
/// are transient: `Unavailable`, which workers retry with backoff.
pub(crate) fn backend(err: sqlx::Error) -> StoreError {
    let transient = match &err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 53: insufficient resources; 57P01-03: admin or
            // crash shutdown, cannot connect now; 40001/40P01: serialization, deadlock.
            code.starts_with("08")
                || code.starts_with("53")
                || matches!(&*code, "57P01" | "57P02" | "57P03" | "40001" | "40P01")
        }),
        _ => false,
    };
    if transient {
        StoreError::Unavailable(err.to_string())
    } else {
        StoreError::Backend(err.to_string())
    }
}

/// Where a claimed task goes in the claim's answer: due tasks in claim order (priority
/// first, then `run_at`, then id), then new blocks in the order they were made (by id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ClaimOrder {
    Due(std::cmp::Reverse<i32>, i64, TaskId),
    Block(TaskId),
}

/// A claimed task from a row of `claim.sql`, with its claim-order key.
fn claimed_from_row(
    row: &PgRow,
    lease_until: DateTime<Utc>,
) -> Result<(ClaimOrder, ClaimedTask), StoreError> {
    let task = ClaimedTask {
        id: column(row, "id")?,
        queue: column(row, "queue")?,
        kind: column(row, "kind")?,
        payload: column(row, "payload")?,
        attempt: column::<i64>(row, "attempt")? as u32,
        max_attempts: column::<i64>(row, "max_attempts")?.min(u32::MAX.into()) as u32,
        timeout: rows::timeout(column(row, "timeout_ms")?),
        job: column(row, "job")?,
        lease_until,
    };
    let order = if column(row, "block")? {
        ClaimOrder::Block(task.id)
    } else {
        ClaimOrder::Due(
            std::cmp::Reverse(column(row, "priority")?),
            column(row, "run_at")?,
            task.id,
        )
    };
    Ok((order, task))
}

/// Batches of at least this many tasks (without unique keys) are enqueued with COPY; a
/// smaller one is one INSERT, a round trip less (what a single submit's latency wants).
const COPY_FROM: usize = 64;

/// Writes one row of COPY's text format into a buffer, field by field, with no temporary
/// strings: tab-separated, `\N` for NULL, and backslash, newline, carriage return and tab
/// escaped as they are written (user text is data, never syntax). The row ends on drop.
struct CopyRow<'a> {
    data: &'a mut String,
    first: bool,
}

impl<'a> CopyRow<'a> {
    fn new(data: &'a mut String) -> Self {
        CopyRow { data, first: true }
    }

    fn separate(&mut self) {
        if !self.first {
            self.data.push('\t');
        }
        self.first = false;
    }

    fn field(&mut self, value: impl std::fmt::Display) {
        use std::fmt::Write as _;
        self.separate();
        // Writing into a String cannot fail.
        let _ = write!(self, "{value}");
    }

    fn optional(&mut self, value: Option<impl std::fmt::Display>) {
        match value {
            Some(value) => self.field(value),
            None => {
                self.separate();
                self.data.push_str("\\N");
            }
        }
    }
}

impl std::fmt::Write for CopyRow<'_> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        if !text
            .bytes()
            .any(|b| matches!(b, b'\\' | b'\n' | b'\r' | b'\t'))
        {
            self.data.push_str(text);
            return Ok(());
        }
        for c in text.chars() {
            match c {
                '\\' => self.data.push_str("\\\\"),
                '\n' => self.data.push_str("\\n"),
                '\r' => self.data.push_str("\\r"),
                '\t' => self.data.push_str("\\t"),
                c => self.data.push(c),
            }
        }
        Ok(())
    }
}

impl Drop for CopyRow<'_> {
    fn drop(&mut self) {
        self.data.push('\n');
    }
}

/// A completion batch as the arrays `complete.sql` takes, one element per completion.
#[derive(Default)]
struct CompletionColumns<'a> {
    ids: Vec<i64>,
    attempts: Vec<i64>,
    workers: Vec<&'a str>,
    outcomes: Vec<&'static str>,
    results: Vec<Option<String>>,
    errors: Vec<Option<&'a str>>,
    retry_at: Vec<Option<i64>>,
}

#[async_trait]
impl Store for PostgresStore {
    fn info(&self) -> StoreInfo {
        StoreInfo {
            name: "postgres",
            native_notifications: true,
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
        // Not in a transaction: the insert is one autocommitted statement, and the lookup
        // of concurrently committed keys (rare) only reads.
        let mut connection = self.pool.acquire().await.map_err(backend)?;
        self.enqueue_in(&mut connection, tasks, now).await
    }

    async fn claim_batch(&self, request: ClaimRequest) -> Result<Vec<ClaimedTask>, StoreError> {
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        let lease_until = request.now
            + chrono::Duration::from_std(request.lease)
                .map_err(|_| StoreError::InvalidRequest("lease too long".into()))?;
        let queues = match &request.queues {
            QueueFilter::All => None,
            QueueFilter::Only(queues) => Some(queues.clone()),
        };
        let rows = sqlx::query(sql(&self.statements.claim))
            .bind(&request.worker)
            .bind(ms(lease_until))
            .bind(ms(request.now))
            .bind(i64::try_from(request.limit).unwrap_or(i64::MAX))
            .bind(queues)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let mut claimed = rows
            .iter()
            .map(|row| claimed_from_row(row, lease_until))
            .collect::<Result<Vec<_>, _>>()?;
        // UPDATE … RETURNING comes back in no particular order; hand out in claim order.
        claimed.sort_unstable_by_key(|(order, _)| *order);
        self.vacuum.claimed(&self.pool, claimed.len());
        Ok(claimed.into_iter().map(|(_, task)| task).collect())
    }

    async fn complete_batch(
        &self,
        completions: &[Completion],
        now: DateTime<Utc>,
    ) -> Result<Vec<CompletionStatus>, StoreError> {
        if completions.is_empty() {
            return Ok(Vec::new());
        }
        // Each (id, attempt, worker) is sent once; a repeat is stale by definition (see
        // complete.sql), and sending it could match the row twice.
        let mut seen = HashSet::new();
        let mut sent = Vec::with_capacity(completions.len()); // position in `completions`
        let mut columns = CompletionColumns::default();
        for (index, c) in completions.iter().enumerate() {
            if !seen.insert((c.id, c.attempt, c.worker.as_str())) {
                continue;
            }
            let (outcome, result, error, retry_at) = match &c.outcome {
                Outcome::Succeeded { result } => ("ok", Some(result.to_string()), None, None),
                Outcome::Failed { error, retry_at } => {
                    ("fail", None, Some(error.as_str()), retry_at.map(ms))
                }
                Outcome::Released { reason } => ("release", None, Some(reason.as_str()), None),
            };
            sent.push(index);
            columns.ids.push(c.id);
            columns.attempts.push(i64::from(c.attempt));
            columns.workers.push(c.worker.as_str());
            columns.outcomes.push(outcome);
            columns.results.push(result);
            columns.errors.push(error);
            columns.retry_at.push(retry_at);
        }
        let applied: Vec<(i64, String)> = sqlx::query_as(sql(&self.statements.complete))
            .bind(ms(now))
            .bind(&columns.ids)
            .bind(&columns.attempts)
            .bind(&columns.workers)
            .bind(&columns.outcomes)
            .bind(&columns.results)
            .bind(&columns.errors)
            .bind(&columns.retry_at)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let mut statuses = vec![CompletionStatus::Stale; completions.len()];
        for (position, state) in applied {
            let index = usize::try_from(position - 1)
                .ok()
                .and_then(|p| sent.get(p))
                .ok_or_else(|| StoreError::Backend(format!("completion {position} unknown")))?;
            statuses[*index] = CompletionStatus::Applied(rows::state(&state)?);
        }
        Ok(statuses)
    }

    async fn heartbeat(&self, beat: Heartbeat) -> Result<HeartbeatReply, StoreError> {
        let (ids, attempts): (Vec<i64>, Vec<i64>) = beat
            .leases
            .iter()
            .map(|(id, attempt)| (*id, i64::from(*attempt)))
            .unzip();
        let row = sqlx::query(sql(&self.statements.heartbeat))
            .bind(&beat.worker.name)
            .bind(Json(&beat.worker))
            .bind(ms(beat.now))
            .bind(ms(beat.lease_until))
            .bind(ids)
            .bind(attempts)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        let held: HashSet<TaskId> = column::<Vec<TaskId>>(&row, "held")?.into_iter().collect();
        Ok(HeartbeatReply {
            lost: beat
                .leases
                .iter()
                .map(|(id, _)| *id)
                .filter(|id| !held.contains(id))
                .collect(),
            commands_waiting: column(&row, "commands_waiting")?,
        })
    }

    async fn rescue_expired(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<TaskId>, StoreError> {
        let mut rescued: Vec<TaskId> = sqlx::query_scalar(sql(&self.statements.rescue))
            .bind(ms(now))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rescued.sort_unstable();
        Ok(rescued)
    }

    async fn get_task(&self, id: TaskId) -> Result<Option<Task>, StoreError> {
        sqlx::query(sql(&self.statements.get_task))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .map(|row| task_from_row(&row))
            .transpose()
    }

    async fn list_tasks(&self, filter: TaskFilter) -> Result<Vec<Task>, StoreError> {
        sqlx::query(sql(&self.statements.list_tasks))
            .bind(filter.state.map(TaskState::as_str))
            .bind(filter.queue)
            .bind(filter.job)
            .bind(filter.before_id.unwrap_or(i64::MAX))
            .bind(i64::try_from(filter.limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(task_from_row)
            .collect()
    }

    async fn retry_task(&self, id: TaskId, now: DateTime<Utc>) -> Result<Task, StoreError> {
        let statement = &self.statements.retry_task;
        self.operator_action(id, now, "retry", TaskState::can_retry, statement)
            .await
    }

    async fn retry_dead(
        &self,
        queue: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(sql(&self.statements.retry_dead))
            .bind(queue)
            .bind(ms(now))
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected())
    }

    async fn cancel_task(&self, id: TaskId, now: DateTime<Utc>) -> Result<Task, StoreError> {
        let statement = &self.statements.cancel_task;
        self.operator_action(id, now, "cancel", TaskState::can_cancel, statement)
            .await
    }

    async fn cancel_tasks(&self, ids: &[TaskId], now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.update_tasks(&self.statements.cancel_tasks, ids, now)
            .await
    }

    async fn retry_tasks(&self, ids: &[TaskId], now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.update_tasks(&self.statements.retry_tasks, ids, now)
            .await
    }

    async fn prune_finished(&self, request: PruneRequest) -> Result<u64, StoreError> {
        request.check()?;
        let pruned: i64 = sqlx::query_scalar(sql(&self.statements.prune_finished))
            .bind(ms(request.finished_before))
            .bind(i64::try_from(request.limit).unwrap_or(i64::MAX))
            .bind(request.state.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(pruned as u64)
    }

    async fn create_job(&self, job: NewJob, now: DateTime<Utc>) -> Result<Job, StoreError> {
        job.validate()?;
        let job = job.into_job(now);
        let d = &job.definition;
        let row = sqlx::query(sql(&self.statements.create_job))
            .bind(&d.name)
            .bind(d.kind.as_str())
            .bind(&d.queue)
            .bind(&d.task_kind)
            .bind(d.priority)
            .bind(i64::from(d.max_attempts))
            .bind(
                d.timeout
                    .map(|t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX)),
            )
            .bind(d.start)
            .bind(d.end)
            .bind(d.block)
            .bind(job.cursor)
            .bind(job.cancelled)
            .bind(ms(job.created_at))
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        match row {
            Some(row) => job_from_row(&row),
            None => Err(StoreError::JobExists(job.definition.name)),
        }
    }

    async fn get_job(&self, name: &str) -> Result<Option<Job>, StoreError> {
        sqlx::query(sql(&self.statements.get_job))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .map(|row| job_from_row(&row))
            .transpose()
    }

    async fn list_jobs(&self) -> Result<Vec<Job>, StoreError> {
        sqlx::query(sql(&self.statements.list_jobs))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(job_from_row)
            .collect()
    }

    async fn delete_job(&self, name: &str, limit: usize) -> Result<JobDeletion, StoreError> {
        let (found, deleted, done): (bool, i64, bool) =
            sqlx::query_as(sql(&self.statements.delete_job))
                .bind(name)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_one(&self.pool)
                .await
                .map_err(backend)?;
        if !found {
            return Err(StoreError::JobNotFound(name.to_string()));
        }
        Ok(JobDeletion {
            tasks: deleted as u64,
            done,
        })
    }

    async fn cancel_job(&self, name: &str) -> Result<Job, StoreError> {
        let row = sqlx::query(sql(&self.statements.cancel_job))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .ok_or_else(|| StoreError::JobNotFound(name.to_string()))?;
        job_from_row(&row)
    }

    async fn job_tallies(&self, name: &str, now: DateTime<Utc>) -> Result<JobTallies, StoreError> {
        let (first, last) = recent_seconds(now);
        let rows = sqlx::query(sql(&self.statements.job_tallies))
            .bind(name)
            .bind(first)
            .bind(last)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows::job_tallies(&rows)?.ok_or_else(|| StoreError::JobNotFound(name.to_string()))
    }

    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<(), StoreError> {
        let statement = if paused {
            &self.statements.pause_queue
        } else {
            &self.statements.resume_queue
        };
        sqlx::query(sql(statement))
            .bind(queue)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<Vec<QueueStats>, StoreError> {
        let rows = sqlx::query(sql(&self.statements.queue_stats))
            .bind(ms(now))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows::queue_stats(&rows)
    }

    async fn register_worker(
        &self,
        info: WorkerInfo,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(sql(&self.statements.register_worker))
            .bind(&info.name)
            .bind(Json(&info))
            .bind(ms(now))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn deregister_worker(&self, name: &str) -> Result<(), StoreError> {
        sqlx::query(sql(&self.statements.deregister_worker))
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn list_workers(&self) -> Result<Vec<WorkerRecord>, StoreError> {
        let rows: Vec<(Json<WorkerInfo>, i64)> = sqlx::query_as(sql(&self.statements.list_workers))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        Ok(rows
            .into_iter()
            .map(|(Json(info), last_seen)| WorkerRecord {
                info,
                last_seen: from_ms(last_seen),
            })
            .collect())
    }

    async fn prune_lost_workers(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let mut gone: Vec<String> = sqlx::query_scalar(sql(&self.statements.prune_workers))
            .bind(ms(now))
            .bind(i64::from(LOST_AFTER_LEASES))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        gone.sort();
        Ok(gone)
    }

    async fn send_command(
        &self,
        worker: &str,
        command: ControlCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandId, StoreError> {
        sqlx::query_scalar(sql(&self.statements.send_command))
            .bind(worker)
            .bind(Json(&command))
            .bind(ms(now))
            .fetch_one(&self.pool)
            .await
            .map_err(backend)
    }

    async fn pending_commands(&self, worker: &str) -> Result<Vec<CommandEnvelope>, StoreError> {
        sqlx::query(sql(&self.statements.pending_commands))
            .bind(worker)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(command_from_row)
            .collect()
    }

    async fn ack_command(
        &self,
        id: CommandId,
        reply: Value,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let updated = sqlx::query(sql(&self.statements.ack_command))
            .bind(id)
            .bind(ms(now))
            .bind(reply)
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected();
        if updated == 0 {
            return Err(StoreError::CommandNotFound(id));
        }
        Ok(())
    }

    async fn get_command(&self, id: CommandId) -> Result<Option<CommandEnvelope>, StoreError> {
        sqlx::query(sql(&self.statements.get_command))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .map(|row| command_from_row(&row))
            .transpose()
    }

    async fn listen(&self, topic: Topic) -> Result<Box<dyn Listener>, StoreError> {
        self.notifier.listen(topic).await
    }

    async fn take_turn(
        &self,
        duty: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let held: Option<String> = sqlx::query_scalar(sql(&self.statements.take_turn))
            .bind(duty)
            .bind(holder)
            .bind(ms(until))
            .bind(ms(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(held.is_some())
    }

    async fn tidy(&self) -> Result<(), StoreError> {
        sqlx::query(sql(&self.statements.tidy))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn append_logs(&self, appends: &[LogAppend], keep: usize) -> Result<(), StoreError> {
        let appends = newest_per_owner(appends, keep);
        if appends.is_empty() {
            return Ok(());
        }
        let lines = appends.iter().flat_map(|a| {
            let owner = a.owner.key();
            a.lines.iter().map(move |l| (owner.clone(), l))
        });
        let (mut owners, mut ats, mut sources, mut texts) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (owner, line) in lines {
            owners.push(owner);
            ats.push(ms(line.at));
            sources.push(line.source.as_str());
            texts.push(line.text.as_str());
        }
        sqlx::query(sql(&self.statements.log_append))
            .bind(owners)
            .bind(ats)
            .bind(sources)
            .bind(texts)
            .bind(i64::try_from(keep).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn read_log(
        &self,
        owner: &LogOwner,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LogLine>, StoreError> {
        let rows: Vec<LogRow> = sqlx::query_as(sql(&self.statements.log_read))
            .bind(owner.key())
            .bind(i64::try_from(after).unwrap_or(i64::MAX))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        Ok(rows.into_iter().map(LogLine::from_row).collect())
    }
}
