//! The Redis store (`redis://HOST:PORT/DB?prefix=wrangle`): many workers on
//! many machines share one Redis server.
//!
//! Every operation that changes more than one key runs as one Lua script (see
//! [`scripts`] and `src/lua/`), so it is atomic and a whole batch costs one round trip;
//! big enqueue batches without unique keys are one `MULTI`/`EXEC` instead ([`bulk`]).
//! Times are the `now` the caller passes, as epoch milliseconds; the server's clock is
//! used only for the result TTL.
//!
//! Key layout (all under the hash tag `{prefix}`, so one store's keys share one hash
//! slot), where `B` is `{prefix}`:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `B:ids` | string | the last task id |
//! | `B:task:ID` | hash | one task's fields; times in ms, payload and result as JSON |
//! | `B:tasks` | zset | every task id (score = id), for listing |
//! | `B:queue:Q:ready` | zset | due tasks of queue Q, in claim order |
//! | `B:queue:Q:scheduled` | zset | not yet due tasks of Q (score = `run_at`) |
//! | `B:queues` | set | queues that may have waiting tasks (for claims from every queue) |
//! | `B:paused` | set | paused queues |
//! | `B:running` | zset | running tasks (score = lease end), for rescues |
//! | `B:finished` | zset | final tasks (score = `finished_at`, member `ID:S:QUEUE`, S the state's letter), for pruning |
//! | `B:prune-from:STATE` | string | where the last pruning walk for STATE stopped in `B:finished` |
//! | `B:dead` | zset | dead tasks, for `retry_dead` |
//! | `B:queue:Q:counts`, `B:queue:Q:recent` | hash, hash | tasks of Q per state; attempts completed/failed per second (`queue_stats`) |
//! | `B:stats-queues` | set | queues with counts |
//! | `B:layout` | string | the key layout's version (see `upgrade_layout`) |
//! | `B:unique:KEY` | string | the id of the task holding unique key KEY |
//! | `B:job:NAME` | hash | one job's definition, cursor, cancelled flag and created_at |
//! | `B:jobs` | zset | every job name (score 0, so in name order), for listing |
//! | `B:queue:Q:open-jobs` | zset | range jobs of queue Q that may still make blocks, in the order claims take them |
//! | `B:job-queues` | set | queues with open jobs (claims that come up short visit these) |
//! | `B:job-tasks:NAME` | set | ids of job NAME's tasks, for deleting them |
//! | `B:job-counts:NAME`, `B:job-recent:NAME` | hash, hash | job NAME's tasks and ids per state and worker; ids completed per second (`job_tallies`) |
//! | `B:workers`, `B:workers:seen`, `B:workers:lost-at` | hash, zset, zset | worker infos, last heartbeat, when each counts as lost |
//! | `B:command-ids`, `B:command:ID`, `B:mailbox:W` | string, hash, zset | commands |
//!
//! Finished tasks are kept until the workers prune them by the retention policy, as on
//! every store; a result TTL ([`RedisOptions::result_ttl`]) also expires them (and
//! acknowledged commands) with their unique keys. Wake-ups are Redis
//! pub/sub, published by the scripts themselves (see [`listen`]).

mod bulk;
mod connect;
mod listen;
mod logs;
mod rows;
mod scripts;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, ScriptInvocation, Value};
use serde::Deserialize;
use serde_json::Value as Json;
use wrangle_core::connect::{DEFAULT_CONNECT_TIMEOUT, outdated_store, parse_connect_timeout};
use wrangle_core::job::{Job, JobTallies, NewJob};
use wrangle_core::log::{LogAppend, LogLine, LogOwner, newest_per_owner};
use wrangle_core::parse::parse_duration;
use wrangle_core::store::{
    ClaimRequest, ClaimedTask, Completion, CompletionStatus, Enqueued, Heartbeat, HeartbeatReply,
    JobDeletion, Listener, Outcome, PruneRequest, QueueFilter, QueueStats, Store, StoreError,
    StoreInfo, TaskFilter, Topic, recent_seconds,
};
use wrangle_core::task::{NewTask, Task, TaskId, TaskState};
use wrangle_core::worker::{
    CommandEnvelope, CommandId, ControlCommand, LOST_AFTER_LEASES, WorkerInfo, WorkerRecord,
};

use listen::Wakeups;
use rows::{
    Fields, StoredNewTask, command_from_fields, from_ms, job_from_fields, json_text, ms,
    optional_arg, redis_error, task_from_fields,
};
use scripts::Scripts;

pub use wrangle_core::connect::Open;

/// The key prefix when none is given.
pub const DEFAULT_PREFIX: &str = "wrangle";

/// The key layout version this code reads and writes (`B:layout`; see
/// `lua/upgrade_layout.lua`).
const LAYOUT: u32 = 3;

/// The smallest batch [`RedisOptions::bulk_enqueue_from`] sends without a script by
/// default: below it the extra round trip costs more than the script's overhead saves.
pub const DEFAULT_BULK_ENQUEUE_FROM: usize = 64;

/// Connection and storage options. The URL's query can set `prefix`, `result_ttl`,
/// `connect_timeout` and `ca_file` (see [`RedisOptions::from_url`]); the rest have
/// defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// Start of every key, inside a hash tag (`{prefix}:…`). Stores with different
    /// prefixes share a server without seeing each other.
    pub prefix: String,
    /// How long a finished (completed, dead or cancelled) task and an acknowledged command
    /// are kept at most; `None` (the default) keeps them until pruned (the workers prune
    /// finished tasks by the retention policy).
    pub result_ttl: Option<Duration>,
    /// Longest wait for a reply before the operation fails as unavailable.
    pub response_timeout: Duration,
    /// Longest time connecting may take (TCP, TLS, authentication), at first and at each
    /// reconnection.
    pub connect_timeout: Duration,
    /// For `rediss://`: a PEM file of the CA certificates to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Whether a prefix without a store gets one ([`Open::Create`], which also upgrades an
    /// older layout) or is an error ([`Open::Existing`], which writes nothing). Not a URL
    /// option.
    pub open: Open,
    /// Batches of at least this many tasks, none with a unique key, are written with
    /// plain commands in one `MULTI`/`EXEC` after reserving their ids (two round trips,
    /// about half the server's work per task) instead of one script call; `0` never.
    pub bulk_enqueue_from: usize,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            prefix: DEFAULT_PREFIX.to_string(),
            // Kept until pruned by the retention policy, the same on every store.
            result_ttl: None,
            response_timeout: Duration::from_secs(5),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            ca_file: None,
            open: Open::Create,
            bulk_enqueue_from: DEFAULT_BULK_ENQUEUE_FROM,
        }
    }
}

impl RedisOptions {
    /// Splits wrangle's own options (`prefix=NAME`, `result_ttl=DURATION` where `0` keeps
    /// results forever, `connect_timeout=DURATION`, `ca_file=PATH`) out of a store URL's
    /// query; returns the URL for the Redis client (its own options, such as `protocol`,
    /// stay) and the options.
    pub fn from_url(url: &str) -> Result<(String, RedisOptions), StoreError> {
        let mut options = RedisOptions::default();
        let Some((address, query)) = url.split_once('?') else {
            return Ok((url.to_string(), options));
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("prefix", prefix)) => options.prefix = prefix.to_string(),
                Some(("result_ttl", "0")) => options.result_ttl = None,
                Some(("result_ttl", ttl)) => {
                    let ttl = parse_duration(ttl)
                        .map_err(|e| StoreError::InvalidRequest(format!("result_ttl: {e}")))?;
                    options.result_ttl = Some(ttl);
                }
                Some(("connect_timeout", value)) => {
                    options.connect_timeout = parse_connect_timeout(value)?;
                }
                Some(("ca_file", path)) => options.ca_file = Some(PathBuf::from(path)),
                _ => kept.push(pair),
            }
        }
        check_prefix(&options.prefix)?;
        let url = if kept.is_empty() {
            address.to_string()
        } else {
            format!("{address}?{}", kept.join("&"))
        };
        Ok((url, options))
    }
}

/// The refusal of a key layout newer than this code.
fn newer_layout(prefix: &str, found: u32) -> StoreError {
    StoreError::InvalidRequest(format!(
        "the Redis store under prefix '{prefix}' has key layout {found}, newer than this \
         wrangle's {LAYOUT}: upgrade wrangle"
    ))
}

/// Succeeds only if the keys under `base` are a store at the current layout, reading them
/// and writing nothing: [`StoreError::NoStore`] (naming `at`) when there is no `B:layout`
/// and none of the keys a store before numbered layouts always had, a refusal when the
/// layout is older (those keys without `B:layout` are layout 1) or newer than this code.
async fn check_current(
    connection: &mut redis::aio::MultiplexedConnection,
    base: &str,
    prefix: &str,
    at: &str,
) -> Result<(), StoreError> {
    let key = |name: &str| format!("{base}:{name}");
    let (layout, unnumbered): (Option<u32>, u32) = redis::pipe()
        .get(key("layout"))
        .exists(&[key("ids"), key("jobs"), key("workers")])
        .query_async(connection)
        .await
        .map_err(redis_error)?;
    match layout {
        Some(found) if found > LAYOUT => Err(newer_layout(prefix, found)),
        Some(found) if found < LAYOUT => Err(outdated_store(at, found.into(), LAYOUT.into())),
        Some(_) => Ok(()),
        None if unnumbered > 0 => Err(outdated_store(at, 1, LAYOUT.into())),
        None => Err(StoreError::NoStore(at.to_string())),
    }
}

/// A prefix must be non-empty and free of braces, which would change the hash tag.
fn check_prefix(prefix: &str) -> Result<(), StoreError> {
    if prefix.is_empty() || prefix.contains(['{', '}']) {
        return Err(StoreError::InvalidRequest(format!(
            "invalid redis key prefix '{prefix}': it must be non-empty, without '{{' or '}}'"
        )));
    }
    Ok(())
}

/// The Redis store. Cheap to clone: clones share the connection and the subscription.
#[derive(Debug, Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// Multiplexed and reconnecting: every operation runs on it concurrently.
    connection: ConnectionManager,
    /// `{prefix}`: the hash tag every key starts with, passed to scripts as KEYS[1].
    base: String,
    scripts: Scripts,
    wakeups: Wakeups,
    /// `result_ttl` in milliseconds, 0 for none, as the scripts take it.
    result_ttl_ms: u64,
    /// See [`RedisOptions::bulk_enqueue_from`].
    bulk_enqueue_from: usize,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("base", &self.base)
            .field("result_ttl_ms", &self.result_ttl_ms)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the Redis server at `url` (`redis://`, `rediss://` or `redis+unix://`),
    /// with wrangle's options from its query (see [`RedisOptions::from_url`]).
    pub async fn connect(url: &str) -> Result<RedisStore, StoreError> {
        let (url, options) = RedisOptions::from_url(url)?;
        RedisStore::connect_with(&url, options).await
    }

    /// Connects like [`connect`](Self::connect), with keys under `prefix`.
    pub async fn connect_with_prefix(url: &str, prefix: &str) -> Result<RedisStore, StoreError> {
        let (url, options) = RedisOptions::from_url(url)?;
        let options = RedisOptions {
            prefix: prefix.to_string(),
            ..options
        };
        RedisStore::connect_with(&url, options).await
    }

    /// Like [`connect`](Self::connect), but only if the prefix holds a store at the current
    /// key layout: nothing is written, a missing store is [`StoreError::NoStore`] (see
    /// [`Open::Existing`]).
    pub async fn connect_existing(url: &str) -> Result<RedisStore, StoreError> {
        let (url, options) = RedisOptions::from_url(url)?;
        let options = RedisOptions {
            open: Open::Existing,
            ..options
        };
        RedisStore::connect_with(&url, options).await
    }

    /// Connects to the Redis server at `url` (a plain Redis URL) with `options`.
    ///
    /// A server that cannot be reached, refuses the password or the TLS handshake, or has
    /// no such database fails with [`StoreError::Connect`] within
    /// `options.connect_timeout`.
    pub async fn connect_with(url: &str, options: RedisOptions) -> Result<RedisStore, StoreError> {
        check_prefix(&options.prefix)?;
        let client = connect::client(url, options.ca_file.as_deref())?;
        let base = format!("{{{}}}", options.prefix);
        let mut first = connect::first_connection(&client, options.connect_timeout).await?;
        if options.open == Open::Existing {
            let at = connect::store_at(&client, &options.prefix);
            check_current(&mut first, &base, &options.prefix, &at).await?;
        }
        drop(first);
        // Few, short reconnection attempts per operation: a worker retries an
        // unavailable store with its own backoff.
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(options.response_timeout))
            .set_connection_timeout(Some(options.connect_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(redis_error)?;
        let wakeups = Wakeups::new(&client, &base)?;
        let store = RedisStore {
            inner: Arc::new(Inner {
                connection,
                scripts: Scripts::new(),
                wakeups,
                result_ttl_ms: options.result_ttl.map_or(0, |ttl| ttl.as_millis() as u64),
                bulk_enqueue_from: options.bulk_enqueue_from,
                base,
            }),
        };
        if options.open == Open::Create {
            let found = store.upgrade_layout().await?;
            if found > LAYOUT {
                return Err(newer_layout(&options.prefix, found));
            }
        }
        Ok(store)
    }

    /// Brings the keys to the current layout (`lua/upgrade_layout.lua`); returns the
    /// version they were at (0: a new store).
    pub async fn upgrade_layout(&self) -> Result<u32, StoreError> {
        let mut invocation = self.inner.scripts.upgrade_layout.key(&self.inner.base);
        invocation.arg(LOST_AFTER_LEASES).arg(LAYOUT);
        self.run(&invocation).await
    }

    /// The name of the key `name` of this store, `{prefix}:name`.
    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.inner.base)
    }

    /// Runs a prepared script invocation.
    async fn run<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let mut connection = self.inner.connection.clone();
        invocation
            .invoke_async(&mut connection)
            .await
            .map_err(redis_error)
    }

    /// Runs one command (or an atomic pipeline).
    async fn query<T: FromRedisValue>(&self, pipeline: &redis::Pipeline) -> Result<T, StoreError> {
        let mut connection = self.inner.connection.clone();
        pipeline
            .query_async(&mut connection)
            .await
            .map_err(redis_error)
    }

    /// Reads one hash, `None` when the key does not exist.
    async fn hash(&self, key: String) -> Result<Option<Fields>, StoreError> {
        let fields: Fields = self
            .query(redis::pipe().hgetall(key))
            .await
            .map(|(fields,): (Fields,)| fields)?;
        Ok((!fields.is_empty()).then_some(fields))
    }
}

/// Reads the reply of `retry.lua` and `cancel.lua`: the task, or why not.
fn transition_reply(
    reply: Vec<Value>,
    id: TaskId,
    action: &'static str,
) -> Result<Task, StoreError> {
    let malformed = || StoreError::Backend(format!("malformed reply to {action} from redis"));
    let mut parts = reply.into_iter();
    let status: String = parts
        .next()
        .and_then(|v| redis::from_redis_value(v).ok())
        .ok_or_else(malformed)?;
    let detail = parts.next();
    match status.as_str() {
        "ok" => {
            let fields: Fields = detail
                .and_then(|v| redis::from_redis_value(v).ok())
                .ok_or_else(malformed)?;
            task_from_fields(&fields)
        }
        "not_found" => Err(StoreError::TaskNotFound(id)),
        "invalid" => {
            let state: String = detail
                .and_then(|v| redis::from_redis_value(v).ok())
                .ok_or_else(malformed)?;
            Err(StoreError::InvalidTransition {
                id,
                state: state.parse().map_err(|_| malformed())?,
                action,
            })
        }
        _ => Err(malformed()),
    }
}

/// One queue's numbers as `queue_stats.lua` reports them.
#[derive(Deserialize)]
struct StoredStats {
    paused: bool,
    #[serde(default)]
    counts: HashMap<TaskState, u64>,
    #[serde(default)]
    oldest_due_at: Option<i64>,
    completed_last_minute: u64,
    failed_last_minute: u64,
}

/// When a worker seen at `now` counts as lost for good if it stays silent
/// ([`LOST_AFTER_LEASES`] of its own leases later), in ms; `None` for a worker that did not
/// say its lease (never pruned).
fn lost_at(info: &WorkerInfo, now: DateTime<Utc>) -> Option<i64> {
    let lease_ms = i64::try_from(info.lease_ms).ok().filter(|&ms| ms > 0)?;
    Some(ms(now).saturating_add(lease_ms.saturating_mul(i64::from(LOST_AFTER_LEASES))))
}

fn chrono_duration(duration: Duration) -> Result<chrono::Duration, StoreError> {
    chrono::Duration::from_std(duration)
        .map_err(|_| StoreError::InvalidRequest(format!("duration {duration:?} is too long")))
}

#[async_trait]
impl Store for RedisStore {
    fn info(&self) -> StoreInfo {
        StoreInfo {
            name: "redis",
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
        let bulk_from = self.inner.bulk_enqueue_from;
        if bulk_from > 0
            && tasks.len() >= bulk_from
            && tasks.iter().all(|task| task.unique_key.is_none())
        {
            return self.enqueue_bulk(&tasks, now).await;
        }
        let mut invocation = self.inner.scripts.enqueue.key(&self.inner.base);
        invocation.arg(ms(now));
        for task in &tasks {
            let stored = StoredNewTask::of(task, now)?;
            invocation
                .arg(&task.queue)
                .arg(&task.kind)
                .arg(stored.payload)
                .arg(task.priority)
                .arg(stored.state.as_str())
                .arg(stored.run_at)
                .arg(stored.max_attempts)
                .arg(stored.timeout.unwrap_or_default())
                .arg(optional_arg(task.unique_key.as_deref()))
                .arg(optional_arg(task.job.as_deref()))
                .arg(stored.ids.unwrap_or_default());
        }
        let rows: Vec<(TaskId, u8)> = self.run(&invocation).await?;
        Ok(rows
            .into_iter()
            .map(|(id, duplicate)| Enqueued {
                id,
                duplicate: duplicate == 1,
            })
            .collect())
    }

    async fn claim_batch(&self, request: ClaimRequest) -> Result<Vec<ClaimedTask>, StoreError> {
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        let lease_until = request.now + chrono_duration(request.lease)?;
        let mut invocation = self.inner.scripts.claim.key(&self.inner.base);
        invocation
            .arg(ms(request.now))
            .arg(&request.worker)
            .arg(ms(lease_until))
            .arg(request.limit);
        match &request.queues {
            QueueFilter::All => {
                invocation.arg("all");
            }
            QueueFilter::Only(queues) => {
                let mut queues: Vec<&String> = queues.iter().collect();
                queues.sort();
                queues.dedup();
                if queues.is_empty() {
                    return Ok(Vec::new());
                }
                invocation.arg("only").arg(queues);
            }
        }
        type Row = (
            TaskId,
            String,
            String,
            String,
            u32,
            u32,
            Option<u64>,
            Option<String>,
        );
        let rows: Vec<Row> = self.run(&invocation).await?;
        rows.into_iter()
            .map(
                |(id, queue, kind, payload, attempt, max_attempts, timeout, job)| {
                    Ok(ClaimedTask {
                        id,
                        queue,
                        kind,
                        payload: serde_json::from_str(&payload).map_err(|e| {
                            StoreError::Backend(format!("malformed payload of task {id}: {e}"))
                        })?,
                        attempt,
                        max_attempts,
                        timeout: timeout.map(Duration::from_millis),
                        job,
                        lease_until,
                    })
                },
            )
            .collect()
    }

    async fn complete_batch(
        &self,
        completions: &[Completion],
        now: DateTime<Utc>,
    ) -> Result<Vec<CompletionStatus>, StoreError> {
        if completions.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = self.inner.scripts.complete.key(&self.inner.base);
        invocation.arg(ms(now)).arg(self.inner.result_ttl_ms);
        for completion in completions {
            let (outcome, text, retry_at) = match &completion.outcome {
                Outcome::Succeeded { result } => ("succeeded", json_text(result)?, None),
                Outcome::Failed { error, retry_at } => ("failed", error.clone(), *retry_at),
                Outcome::Released { reason } => ("released", reason.clone(), None),
            };
            invocation
                .arg(completion.id)
                .arg(completion.attempt)
                .arg(&completion.worker)
                .arg(outcome)
                .arg(text)
                .arg(retry_at.map_or(String::new(), |at| ms(at).to_string()));
        }
        let statuses: Vec<String> = self.run(&invocation).await?;
        statuses
            .iter()
            .map(|status| match status.as_str() {
                "stale" => Ok(CompletionStatus::Stale),
                state => state
                    .parse()
                    .map(CompletionStatus::Applied)
                    .map_err(|e| StoreError::Backend(format!("{e}"))),
            })
            .collect()
    }

    async fn heartbeat(&self, beat: Heartbeat) -> Result<HeartbeatReply, StoreError> {
        let mut invocation = self.inner.scripts.heartbeat.key(&self.inner.base);
        invocation
            .arg(ms(beat.now))
            .arg(ms(beat.lease_until))
            .arg(&beat.worker.name)
            .arg(json_text(&beat.worker)?)
            .arg(lost_at(&beat.worker, beat.now).map_or(String::new(), |at| at.to_string()));
        for (id, attempt) in &beat.leases {
            invocation.arg(id).arg(attempt);
        }
        let (commands, lost): (u64, Vec<TaskId>) = self.run(&invocation).await?;
        Ok(HeartbeatReply {
            lost,
            commands_waiting: commands > 0,
        })
    }

    async fn rescue_expired(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<TaskId>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut invocation = self.inner.scripts.rescue.key(&self.inner.base);
        invocation
            .arg(ms(now))
            .arg(limit)
            .arg(self.inner.result_ttl_ms);
        let mut rescued: Vec<TaskId> = self.run(&invocation).await?;
        rescued.sort_unstable();
        Ok(rescued)
    }

    async fn get_task(&self, id: TaskId) -> Result<Option<Task>, StoreError> {
        self.hash(self.key(&format!("task:{id}")))
            .await?
            .map(|fields| task_from_fields(&fields))
            .transpose()
    }

    async fn list_tasks(&self, filter: TaskFilter) -> Result<Vec<Task>, StoreError> {
        if filter.limit == 0 {
            return Ok(Vec::new());
        }
        let mut invocation = self.inner.scripts.list_tasks.key(&self.inner.base);
        invocation
            .arg(
                filter
                    .before_id
                    .map_or("+inf".to_string(), |id| format!("({id}")),
            )
            .arg(filter.limit)
            .arg(filter.state.map_or("", TaskState::as_str))
            .arg(filter.queue.as_deref().unwrap_or(""))
            .arg(filter.job.as_deref().unwrap_or(""));
        let rows: Vec<Fields> = self.run(&invocation).await?;
        rows.iter().map(task_from_fields).collect()
    }

    async fn retry_task(&self, id: TaskId, now: DateTime<Utc>) -> Result<Task, StoreError> {
        let mut invocation = self.inner.scripts.retry.key(&self.inner.base);
        invocation.arg(id).arg(ms(now));
        transition_reply(self.run(&invocation).await?, id, "retry")
    }

    async fn retry_dead(
        &self,
        queue: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut invocation = self.inner.scripts.retry_dead.key(&self.inner.base);
        invocation.arg(ms(now));
        if let Some(queue) = queue {
            invocation.arg(queue);
        }
        self.run(&invocation).await
    }

    async fn cancel_task(&self, id: TaskId, now: DateTime<Utc>) -> Result<Task, StoreError> {
        let mut invocation = self.inner.scripts.cancel.key(&self.inner.base);
        invocation
            .arg(id)
            .arg(ms(now))
            .arg(self.inner.result_ttl_ms);
        transition_reply(self.run(&invocation).await?, id, "cancel")
    }

    async fn cancel_tasks(&self, ids: &[TaskId], now: DateTime<Utc>) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut invocation = self.inner.scripts.cancel_tasks.key(&self.inner.base);
        invocation
            .arg(ms(now))
            .arg(self.inner.result_ttl_ms)
            .arg(ids);
        self.run(&invocation).await
    }

    async fn retry_tasks(&self, ids: &[TaskId], now: DateTime<Utc>) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut invocation = self.inner.scripts.retry_tasks.key(&self.inner.base);
        invocation.arg(ms(now)).arg(ids);
        self.run(&invocation).await
    }

    async fn prune_finished(&self, request: PruneRequest) -> Result<u64, StoreError> {
        request.check()?;
        if request.limit == 0 {
            return Ok(0);
        }
        let mut invocation = self.inner.scripts.prune_finished.key(&self.inner.base);
        invocation
            .arg(ms(request.finished_before))
            .arg(request.limit)
            .arg(request.state.as_str());
        self.run(&invocation).await
    }

    async fn delete_job(&self, name: &str, limit: usize) -> Result<JobDeletion, StoreError> {
        let mut invocation = self.inner.scripts.delete_job.key(&self.inner.base);
        invocation.arg(name).arg(limit.max(1));
        let reply: Option<(u64, u8)> = self.run(&invocation).await?;
        let (tasks, done) = reply.ok_or_else(|| StoreError::JobNotFound(name.to_string()))?;
        Ok(JobDeletion {
            tasks,
            done: done == 1,
        })
    }

    async fn take_turn(
        &self,
        duty: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.inner.scripts.take_turn.key(&self.inner.base);
        invocation.arg(duty).arg(holder).arg(ms(until)).arg(ms(now));
        Ok(self.run::<i64>(&invocation).await? == 1)
    }

    async fn create_job(&self, job: NewJob, now: DateTime<Utc>) -> Result<Job, StoreError> {
        job.validate()?;
        let job = job.into_job(now);
        let definition = &job.definition;
        let mut invocation = self.inner.scripts.create_job.key(&self.inner.base);
        invocation
            .arg(&definition.name)
            .arg(definition.kind.as_str())
            .arg(&definition.queue)
            .arg(&definition.task_kind)
            .arg(definition.priority)
            .arg(definition.max_attempts)
            .arg(
                definition
                    .timeout
                    .map_or(String::new(), |t| t.as_millis().to_string()),
            )
            .arg(definition.start)
            .arg(definition.end)
            .arg(definition.block)
            .arg(job.cursor)
            .arg(ms(job.created_at))
            .arg(if job.has_blocks_to_create() { "1" } else { "0" });
        let status: String = self.run(&invocation).await?;
        match status.as_str() {
            "ok" => Ok(job),
            "exists" => Err(StoreError::JobExists(job.definition.name)),
            other => Err(StoreError::Backend(format!(
                "unexpected reply '{other}' to create_job from redis"
            ))),
        }
    }

    async fn get_job(&self, name: &str) -> Result<Option<Job>, StoreError> {
        self.hash(self.key(&format!("job:{name}")))
            .await?
            .map(|fields| job_from_fields(&fields))
            .transpose()
    }

    async fn list_jobs(&self) -> Result<Vec<Job>, StoreError> {
        let invocation = self.inner.scripts.list_jobs.key(&self.inner.base);
        let rows: Vec<Fields> = self.run(&invocation).await?;
        // In name order already: the script reads a sorted set whose scores are all 0, which
        // Redis orders bytewise, as `str` does.
        rows.iter().map(job_from_fields).collect()
    }

    async fn cancel_job(&self, name: &str) -> Result<Job, StoreError> {
        let mut invocation = self.inner.scripts.cancel_job.key(&self.inner.base);
        invocation.arg(name);
        let fields: Option<Fields> = self.run(&invocation).await?;
        match fields {
            Some(fields) => job_from_fields(&fields),
            None => Err(StoreError::JobNotFound(name.to_string())),
        }
    }

    async fn job_tallies(&self, name: &str, now: DateTime<Utc>) -> Result<JobTallies, StoreError> {
        let (first, last) = recent_seconds(now);
        let mut invocation = self.inner.scripts.job_tallies.key(&self.inner.base);
        invocation.arg(name).arg(first).arg(last);
        let found: Option<(BTreeMap<String, i64>, Vec<Option<i64>>)> =
            self.run(&invocation).await?;
        let (counts, recent) = found.ok_or_else(|| StoreError::JobNotFound(name.to_string()))?;
        rows::job_tallies(&counts, &recent)
    }

    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<(), StoreError> {
        let mut pipeline = redis::pipe();
        pipeline.atomic();
        if paused {
            pipeline.sadd(self.key("paused"), queue).ignore();
        } else {
            // Resuming may make tasks claimable: wake the workers, atomically with it.
            pipeline
                .srem(self.key("paused"), queue)
                .ignore()
                .sadd(self.key("queues"), queue)
                .ignore()
                .publish(listen::channel(&self.inner.base, Topic::Tasks), "1")
                .ignore();
        }
        self.query(&pipeline).await
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<Vec<QueueStats>, StoreError> {
        let mut invocation = self.inner.scripts.queue_stats.key(&self.inner.base);
        invocation.arg(ms(now));
        let text: String = self.run(&invocation).await?;
        let stats: BTreeMap<String, StoredStats> = serde_json::from_str(&text)
            .map_err(|e| StoreError::Backend(format!("malformed queue stats from redis: {e}")))?;
        stats
            .into_iter()
            .map(|(queue, s)| {
                Ok(QueueStats {
                    queue,
                    paused: s.paused,
                    counts: s.counts.into_iter().collect(),
                    oldest_due_at: s.oldest_due_at.map(from_ms).transpose()?,
                    completed_last_minute: s.completed_last_minute,
                    failed_last_minute: s.failed_last_minute,
                })
            })
            .collect()
    }

    async fn register_worker(
        &self,
        info: WorkerInfo,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut pipeline = redis::pipe();
        pipeline
            .atomic()
            .hset(self.key("workers"), &info.name, json_text(&info)?)
            .ignore()
            .zadd(self.key("workers:seen"), &info.name, ms(now))
            .ignore();
        match lost_at(&info, now) {
            Some(at) => pipeline.zadd(self.key("workers:lost-at"), &info.name, at),
            None => pipeline.zrem(self.key("workers:lost-at"), &info.name),
        }
        .ignore();
        self.query(&pipeline).await
    }

    async fn deregister_worker(&self, name: &str) -> Result<(), StoreError> {
        let mut pipeline = redis::pipe();
        pipeline
            .atomic()
            .hdel(self.key("workers"), name)
            .ignore()
            .zrem(self.key("workers:seen"), name)
            .ignore()
            .zrem(self.key("workers:lost-at"), name)
            .ignore();
        let owner = LogOwner::Worker(name.to_string());
        pipeline
            .del(logs::lines_key(&self.inner.base, &owner))
            .ignore()
            .del(logs::seq_key(&self.inner.base, &owner))
            .ignore();
        self.query(&pipeline).await
    }

    async fn list_workers(&self) -> Result<Vec<WorkerRecord>, StoreError> {
        let mut pipeline = redis::pipe();
        pipeline
            .atomic()
            .hgetall(self.key("workers"))
            .zrange_withscores(self.key("workers:seen"), 0, -1);
        let (infos, seen): (Fields, Vec<(String, i64)>) = self.query(&pipeline).await?;
        let seen: HashMap<String, i64> = seen.into_iter().collect();
        let mut workers = infos
            .into_iter()
            .map(|(name, info)| {
                Ok(WorkerRecord {
                    info: serde_json::from_str(&info).map_err(|e| {
                        StoreError::Backend(format!("malformed worker {name} in redis: {e}"))
                    })?,
                    last_seen: from_ms(seen.get(&name).copied().unwrap_or_default())?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        workers.sort_by(|a, b| a.info.name.cmp(&b.info.name));
        Ok(workers)
    }

    async fn prune_lost_workers(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let mut invocation = self.inner.scripts.prune_workers.key(&self.inner.base);
        invocation.arg(ms(now));
        let mut gone: Vec<String> = self.run(&invocation).await?;
        gone.sort();
        Ok(gone)
    }

    async fn send_command(
        &self,
        worker: &str,
        command: ControlCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandId, StoreError> {
        let mut invocation = self.inner.scripts.send_command.key(&self.inner.base);
        invocation
            .arg(worker)
            .arg(json_text(&command)?)
            .arg(ms(now));
        self.run(&invocation).await
    }

    async fn pending_commands(&self, worker: &str) -> Result<Vec<CommandEnvelope>, StoreError> {
        let mut invocation = self.inner.scripts.pending_commands.key(&self.inner.base);
        invocation.arg(worker);
        let rows: Vec<Fields> = self.run(&invocation).await?;
        rows.iter().map(command_from_fields).collect()
    }

    async fn ack_command(
        &self,
        id: CommandId,
        reply: Json,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut invocation = self.inner.scripts.ack_command.key(&self.inner.base);
        invocation
            .arg(id)
            .arg(json_text(&reply)?)
            .arg(ms(now))
            .arg(self.inner.result_ttl_ms);
        let acked: u8 = self.run(&invocation).await?;
        if acked == 0 {
            return Err(StoreError::CommandNotFound(id));
        }
        Ok(())
    }

    async fn get_command(&self, id: CommandId) -> Result<Option<CommandEnvelope>, StoreError> {
        self.hash(self.key(&format!("command:{id}")))
            .await?
            .map(|fields| command_from_fields(&fields))
            .transpose()
    }

    async fn listen(&self, topic: Topic) -> Result<Box<dyn Listener>, StoreError> {
        self.inner.wakeups.listen(topic).await
    }

    async fn append_logs(&self, appends: &[LogAppend], keep: usize) -> Result<(), StoreError> {
        let appends = newest_per_owner(appends, keep);
        if appends.is_empty() {
            return Ok(());
        }
        let mut invocation = self.inner.scripts.append_logs.key(&self.inner.base);
        logs::append_args(&mut invocation, &appends, keep);
        self.run::<i64>(&invocation).await.map(drop)
    }

    async fn read_log(
        &self,
        owner: &LogOwner,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LogLine>, StoreError> {
        // A ring is at most `keep` lines: reading it whole is one round trip, and cheaper
        // than finding where `after` falls in it on the server.
        let stored: Vec<String> = self
            .query(redis::pipe().lrange(logs::lines_key(&self.inner.base, owner), 0, -1))
            .await
            .map(|(lines,): (Vec<String>,)| lines)?;
        let mut lines = Vec::new();
        for line in stored {
            let line = logs::parse_line(&line)?;
            if line.seq > after {
                lines.push(line);
                if lines.len() == limit {
                    break;
                }
            }
        }
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_options_are_split_from_the_client_url() {
        let (url, options) =
            RedisOptions::from_url("redis://h:1/2?prefix=jobs&protocol=resp3&result_ttl=1h")
                .unwrap();
        assert_eq!(url, "redis://h:1/2?protocol=resp3");
        assert_eq!(options.prefix, "jobs");
        assert_eq!(options.result_ttl, Some(Duration::from_secs(3600)));

        let (url, options) = RedisOptions::from_url("redis://h/?result_ttl=0").unwrap();
        assert_eq!(url, "redis://h/");
        assert_eq!(options.result_ttl, None);
        assert_eq!(options.prefix, DEFAULT_PREFIX);

        let (_, options) = RedisOptions::from_url("redis://h/").unwrap();
        assert_eq!(options, RedisOptions::default());
    }

    #[test]
    fn bad_url_options_are_invalid_requests() {
        for url in [
            "redis://h/?prefix=a{b}",
            "redis://h/?prefix=",
            "redis://h/?result_ttl=soon",
        ] {
            assert!(
                matches!(
                    RedisOptions::from_url(url),
                    Err(StoreError::InvalidRequest(_))
                ),
                "{url}"
            );
        }
    }
}
