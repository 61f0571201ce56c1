//! wrangle as a library: connect to a store, submit tasks, wait for their results, and
//! run workers with Rust handlers registered by kind.
//!
//! ```no_run
//! use std::time::Duration;
//! use serde_json::json;
//! use wrangle::{Client, NewTask, Registry, Shutdown, Worker, WorkerConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = wrangle::connect("sqlite://.wrangle/wrangle.db").await?;
//! let mut registry = Registry::new();
//! registry.handle("add", |_ctx, payload| async move {
//!     let sum = payload["a"].as_i64().unwrap_or(0) + payload["b"].as_i64().unwrap_or(0);
//!     Ok::<_, String>(json!(sum))
//! });
//! let shutdown = Shutdown::new();
//! let worker = Worker::new(store.clone(), registry, WorkerConfig::new());
//! let running = tokio::spawn(worker.run(shutdown.clone()));
//!
//! let client = Client::new(store);
//! let id = client.submit(NewTask::new("add", json!({"a": 1, "b": 2}))).await?.id;
//! let task = client.wait(id, Some(Duration::from_secs(10))).await?;
//! assert_eq!(task.result, Some(json!(3)));
//!
//! shutdown.graceful.cancel();
//! running.await??;
//! # Ok(()) }
//! ```

pub mod control;
pub mod jobs;
pub mod logs;
pub mod parallel;
pub mod tasks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

pub use wrangle_core::connect::{self, ConnectCause, ConnectFailure, Open};
pub use wrangle_core::halt;
pub use wrangle_core::log;
pub use wrangle_core::parse::{self, StoreUrl};
pub use wrangle_core::placeholder;
pub use wrangle_core::pool;
pub use wrangle_core::retention::{self, Retention};
pub use wrangle_core::store::{self, Store, StoreError, TaskFilter};
pub use wrangle_core::task::{DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_QUEUE, DEFAULT_RETRIES};
pub use wrangle_core::{
    Enqueued, GroupInfo, InputError, NewTask, ProcessInfo, QueueFilter, RetryPolicy, Task, TaskId,
    TaskState, Topic, WorkerInfo, WorkerRecord,
};
pub use wrangle_exec::{
    self as exec, CommandExecutor, CommandSpec, ExecResult, Executor, Failure, Registry,
    RunnerExecutor, RunnerSpec, TaskContext,
};
pub use wrangle_store_memory::MemoryStore;
#[cfg(feature = "mysql")]
pub use wrangle_store_mysql::{MySqlOptions, MySqlStore};
#[cfg(feature = "postgres")]
pub use wrangle_store_postgres::{PostgresOptions, PostgresStore};
#[cfg(feature = "redis")]
pub use wrangle_store_redis::{RedisOptions, RedisStore};
#[cfg(feature = "sqlite")]
pub use wrangle_store_sqlite::{SqliteOptions, SqliteStore};
pub use wrangle_worker::{
    ControlOp, OutcomeObserver, ReloadFactory, Reloaded, Shutdown, Worker, WorkerConfig,
    WorkerControl, WorkerError, WorkerMetrics, WorkerReport,
};

/// Why connecting failed.
///
/// A store that cannot be reached or refuses the connection is
/// `Store(StoreError::Connect(_))`, one line naming the store, address and cause (see
/// [`ConnectFailure`]); a store missing under [`Open::Existing`] is
/// `Store(StoreError::NoStore(_))`. No message shows the URL's password.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL is malformed or names an unknown scheme.
    #[error(transparent)]
    Url(#[from] InputError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Opens the store a URL names (see [`StoreUrl`]): `sqlite://PATH`, `memory://`,
/// `postgres://...`, `redis://...`, `mysql://...`, creating the store if it is missing and
/// migrating it if it is older: `connect_with(url, Open::Create)`.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, ConnectError> {
    connect_with(url, Open::Create).await
}

/// Opens the store a URL names, creating and migrating it ([`Open::Create`]) or only if
/// it exists at the current version ([`Open::Existing`], for commands that only look:
/// nothing is created or written, and a missing store is [`StoreError::NoStore`]).
///
/// ```no_run
/// # async fn demo() -> Result<(), wrangle::ConnectError> {
/// use wrangle::{Open, StoreError};
/// match wrangle::connect_with("sqlite://.wrangle/wrangle.db", Open::Existing).await {
///     Ok(store) => println!("{:?}", store.queue_stats(chrono::Utc::now()).await),
///     Err(wrangle::ConnectError::Store(StoreError::NoStore(at))) => println!("nothing at {at}"),
///     Err(other) => return Err(other),
/// }
/// # Ok(()) }
/// ```
pub async fn connect_with(url: &str, open: Open) -> Result<Arc<dyn Store>, ConnectError> {
    connect_url_with(&StoreUrl::parse(url)?, open).await
}

/// First and longest pause of [`connect_waiting`].
const CONNECT_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(500);
const CONNECT_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// Connects like [`connect_with`], waiting out a store that cannot be reached yet, so a
/// worker started before its store (or during an outage) begins work when the store
/// comes up. Failures that retrying may mend ([`StoreError::is_transient`]: refused,
/// timed out, reset) are retried with backoff, 0.5 s doubling up to 30 s, each one passed
/// to `on_retry` with the pause that follows; any other error (a malformed URL, a wrong
/// password, a missing store under [`Open::Existing`]) is returned at once. `Ok(None)`
/// means `shutdown` asked to stop before the store answered.
pub async fn connect_waiting(
    url: &str,
    open: Open,
    shutdown: &Shutdown,
    mut on_retry: impl FnMut(&StoreError, std::time::Duration),
) -> Result<Option<Arc<dyn Store>>, ConnectError> {
    let url = StoreUrl::parse(url)?;
    let mut pause = CONNECT_RETRY_FIRST;
    loop {
        let attempt = tokio::select! {
            attempt = connect_url_with(&url, open) => attempt,
            _ = shutdown.graceful.cancelled() => return Ok(None),
        };
        match attempt {
            Ok(store) => return Ok(Some(store)),
            Err(ConnectError::Store(err)) if err.is_transient() => {
                on_retry(&err, pause);
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.graceful.cancelled() => return Ok(None),
                }
                pause = (pause * 2).min(CONNECT_RETRY_MAX);
            }
            Err(other) => return Err(other),
        }
    }
}

/// Opens the store `url` names, creating and migrating it as needed
/// (`connect_url_with(url, Open::Create)`).
pub async fn connect_url(url: &StoreUrl) -> Result<Arc<dyn Store>, ConnectError> {
    connect_url_with(url, Open::Create).await
}

/// Opens the store `url` names; `open` as for [`connect_with`]. A `memory://` store is
/// new in every case: it keeps nothing anywhere, so opening it creates nothing either. A
/// store whose Cargo feature is off in this build is an [`InputError`] that says which
/// feature to enable.
pub async fn connect_url_with(url: &StoreUrl, open: Open) -> Result<Arc<dyn Store>, ConnectError> {
    let _ = open; // unused in a build with no store but memory
    match url {
        #[cfg(feature = "sqlite")]
        StoreUrl::Sqlite { path, options } => {
            let options = SqliteOptions::from_query(options)
                .map_err(|e| InputError::new(format!("invalid store URL '{url}': {e}")))?;
            let options = SqliteOptions { open, ..options };
            Ok(Arc::new(SqliteStore::open_with(path, options).await?))
        }
        StoreUrl::Memory => Ok(Arc::new(MemoryStore::new())),
        #[cfg(feature = "postgres")]
        StoreUrl::Postgres(raw) => {
            let (connect, options) = PostgresOptions::from_url(raw).map_err(|e| in_url(url, e))?;
            let options = PostgresOptions { open, ..options };
            Ok(Arc::new(
                PostgresStore::connect_with(connect, options).await?,
            ))
        }
        #[cfg(feature = "redis")]
        StoreUrl::Redis(raw) => {
            let (address, options) = RedisOptions::from_url(raw).map_err(|e| in_url(url, e))?;
            let options = RedisOptions { open, ..options };
            Ok(Arc::new(RedisStore::connect_with(&address, options).await?))
        }
        #[cfg(feature = "mysql")]
        StoreUrl::Mysql(raw) => {
            let (connect, options) = MySqlOptions::from_url(raw).map_err(|e| in_url(url, e))?;
            let options = MySqlOptions { open, ..options };
            Ok(Arc::new(MySqlStore::connect_with(connect, options).await?))
        }
        #[allow(unreachable_patterns)] // every store compiled in: nothing is left
        other => Err(not_compiled_in(other).into()),
    }
}

/// A store's verdict on its URL's options: bad input (naming the URL, without its
/// password) when the options are malformed, the store's own error otherwise (an
/// unreadable CA file is a connect failure).
#[cfg(any(feature = "postgres", feature = "redis", feature = "mysql"))]
fn in_url(url: &StoreUrl, err: StoreError) -> ConnectError {
    match err {
        StoreError::InvalidRequest(why) => {
            InputError::new(format!("invalid store URL '{url}': {why}")).into()
        }
        other => other.into(),
    }
}

/// The error for a store URL whose store this build left out.
#[allow(dead_code)] // used only when some store feature is off
fn not_compiled_in(url: &StoreUrl) -> InputError {
    let feature = match url {
        StoreUrl::Sqlite { .. } => "sqlite",
        StoreUrl::Postgres(_) => "postgres",
        StoreUrl::Redis(_) => "redis",
        StoreUrl::Mysql(_) => "mysql",
        StoreUrl::Memory => "memory",
    };
    InputError::new(format!(
        "the {feature} store is not compiled into this build (enable the wrangle crate's \"{feature}\" feature)"
    ))
}

/// Submits tasks and waits for their outcomes.
#[derive(Debug, Clone)]
pub struct Client {
    store: Arc<dyn Store>,
    max_payload: usize,
}

/// Why waiting for a task ended without a final state.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The task was not final when the timeout passed.
    #[error("task {id} is still {state} after {waited:?}")]
    TimedOut {
        /// The task.
        id: TaskId,
        /// Its state then.
        state: TaskState,
        /// How long we waited.
        waited: Duration,
    },
}

impl Client {
    /// A client of `store`, refusing payloads over [`DEFAULT_MAX_PAYLOAD_BYTES`].
    pub fn new(store: Arc<dyn Store>) -> Self {
        Client {
            store,
            max_payload: DEFAULT_MAX_PAYLOAD_BYTES,
        }
    }

    /// Sets the largest payload (compact JSON bytes) this client submits; a larger one is
    /// [`StoreError::InvalidRequest`] and nothing is enqueued.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Enqueues one task.
    pub async fn submit(&self, task: NewTask) -> Result<Enqueued, StoreError> {
        let mut results = self.submit_batch(vec![task]).await?;
        results
            .pop()
            .ok_or_else(|| StoreError::Backend("enqueue returned nothing".into()))
    }

    /// Enqueues many tasks, all or nothing.
    pub async fn submit_batch(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>, StoreError> {
        for task in &tasks {
            task.check_payload_size(self.max_payload)
                .map_err(|err| StoreError::InvalidRequest(err.to_string()))?;
        }
        self.store.enqueue_batch(tasks, Utc::now()).await
    }

    /// Waits until task `id` is completed, dead or cancelled (or `timeout` passes), woken
    /// by the store's outcome notifications rather than polling.
    pub async fn wait(&self, id: TaskId, timeout: Option<Duration>) -> Result<Task, WaitError> {
        self.wait_watching(id, timeout, |_| {}).await
    }

    /// [`Client::wait`], showing `watch` the task each time it is read on the way: after
    /// every outcome notification, and at least every second (a claim sends none, so a
    /// task is seen running within a second of starting).
    pub async fn wait_watching(
        &self,
        id: TaskId,
        timeout: Option<Duration>,
        mut watch: impl FnMut(&Task),
    ) -> Result<Task, WaitError> {
        let started = Instant::now();
        let mut listener = self.store.listen(Topic::Outcomes).await?;
        loop {
            let task = self
                .store
                .get_task(id)
                .await?
                .ok_or(StoreError::TaskNotFound(id))?;
            watch(&task);
            if task.state.is_final() {
                return Ok(task);
            }
            let remaining = match timeout {
                Some(limit) => match limit.checked_sub(started.elapsed()) {
                    Some(left) if !left.is_zero() => left,
                    _ => {
                        return Err(WaitError::TimedOut {
                            id,
                            state: task.state,
                            waited: started.elapsed(),
                        });
                    }
                },
                None => Duration::from_secs(3600),
            };
            // Bounded so a missed notification costs at most a second.
            listener.wait(remaining.min(Duration::from_secs(1))).await?;
        }
    }
}
