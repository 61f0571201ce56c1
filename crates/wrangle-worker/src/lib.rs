//! The worker loop: claim a batch, run each task on its executor, record outcomes in
//! batches, keep leases alive, and hand unfinished work back on shutdown.
//!
//! Concurrent parts share one [`held::HeldTasks`] table (what this worker holds):
//! - one claim loop per pool [`group`] claims as many tasks as the group has free runners
//!   (up to the batch size), and sleeps on the store's `Tasks` notification when its
//!   queues are empty;
//! - the [`completer`] collects finished attempts and records them with one
//!   `complete_batch` per burst;
//! - the [`heartbeat`] extends the leases of everything held and refreshes the worker's
//!   registration; after each beat the [`rescuer`] rescues other workers' expired leases
//!   and prunes lost workers;
//! - the [`pruner`], in turns with the other workers, deletes finished tasks past their
//!   [`Retention`];
//! - the [`control`] server applies scale/reload/pause/stop commands from the store's
//!   mailbox and from this process ([`WorkerControl`]); the [`autoscale`] loop, when
//!   asked for, grows and shrinks groups with their backlog.
//!
//! A runner slot is freed as soon as its attempt ends, before the outcome is written, so
//! claiming and completing overlap; the lease stays in the heartbeat until the outcome is
//! recorded, so a slow store never lets a finished task's lease lapse.

mod autoscale;
mod completer;
mod control;
mod group;
mod heartbeat;
mod held;
mod metrics;
mod pruner;
mod rescuer;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use wrangle_core::parse::parse_name;
use wrangle_core::pool::{AutoscaleLimits, MAX_GROUP_RUNNERS, PoolGroup};
use wrangle_core::retention::Retention;
use wrangle_core::store::{
    ClaimedTask, Completion, CompletionStatus, Outcome, QueueFilter, Store, StoreError,
};
use wrangle_core::worker::WorkerInfo;
use wrangle_core::{InputError, RetryPolicy};
use wrangle_exec::{ExecResult, Executor, Failure, Registry};

use completer::Finished;
pub use control::{ControlOp, WorkerControl};
use group::Group;
use held::HeldTasks;
pub use metrics::WorkerMetrics;

/// How a worker behaves. `WorkerConfig::new` gives sensible defaults.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Unique worker name (default `HOST-PID`).
    pub name: String,
    /// Queues to claim from (when `pool` is empty).
    pub queues: QueueFilter,
    /// Runner slots: tasks running at once (when `pool` is empty).
    pub runners: usize,
    /// Pool groups, each with its own queues and runners; empty means one group of
    /// `runners` on `queues`.
    pub pool: Vec<PoolGroup>,
    /// Grow and shrink every group within these limits with its backlog.
    pub autoscale: Option<AutoscaleLimits>,
    /// Time between autoscaler decisions.
    pub autoscale_interval: Duration,
    /// Most tasks claimed in one round trip.
    pub batch_size: usize,
    /// Lease length; heartbeats renew it every third of it.
    pub lease: Duration,
    /// How long a graceful shutdown waits for running tasks before handing them back.
    pub shutdown_timeout: Duration,
    /// Backoff between failed attempts.
    pub retry_policy: RetryPolicy,
    /// How long finished tasks are kept before this worker's pruner (in turns with the
    /// other workers) deletes them; `None` prunes nothing.
    pub retention: Option<Retention>,
    /// Longest sleep while idle, so delayed and retryable tasks that become due are
    /// picked up even though nothing notifies about the passage of time.
    pub idle_recheck: Duration,
    /// Tests only (feature `test-clock`): added to every time this worker reads from its
    /// clock, to show that leases stay safe while machines' clocks disagree.
    #[cfg(feature = "test-clock")]
    pub clock_skew: chrono::TimeDelta,
}

impl WorkerConfig {
    /// Defaults: every queue, one runner per CPU, batches of 100, 30 s leases.
    pub fn new() -> Self {
        WorkerConfig {
            name: format!("{}-{}", hostname(), std::process::id()),
            queues: QueueFilter::All,
            runners: std::thread::available_parallelism().map_or(2, |n| n.get()),
            pool: Vec::new(),
            autoscale: None,
            autoscale_interval: Duration::from_secs(1),
            batch_size: 100,
            lease: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(30),
            retry_policy: RetryPolicy::default(),
            idle_recheck: Duration::from_millis(250),
            retention: Some(Retention::default()),
            #[cfg(feature = "test-clock")]
            clock_skew: chrono::TimeDelta::zero(),
        }
    }

    /// The time now, as this worker tells it to the store: lease ends, heartbeats,
    /// outcomes and rescues are all judged against it.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        #[cfg(feature = "test-clock")]
        return Utc::now() + self.clock_skew;
        #[cfg(not(feature = "test-clock"))]
        Utc::now()
    }

    /// Checks every setting, as `Worker::run` does before it touches the store: a worker
    /// built in code gets the same one-line errors as `wrangle worker` on the command line
    /// (a zero batch would claim nothing forever, a zero lease would beat without pause).
    pub fn validate(&self) -> Result<(), InputError> {
        let fail = |message: String| Err(InputError::new(message));
        parse_name("worker", &self.name)?;
        if let QueueFilter::Only(queues) = &self.queues {
            if queues.is_empty() {
                return fail("queues: name at least one queue (or every queue)".into());
            }
            for queue in queues {
                parse_name("queue", queue)?;
            }
        }
        if self.pool.is_empty() && !(1..=MAX_GROUP_RUNNERS as usize).contains(&self.runners) {
            return fail(format!(
                "runners must be 1 to {MAX_GROUP_RUNNERS}, not {}",
                self.runners
            ));
        }
        for group in &self.pool {
            if group.runners > MAX_GROUP_RUNNERS {
                return fail(format!(
                    "pool group '{}': at most {MAX_GROUP_RUNNERS} runners, not {}",
                    group.name, group.runners
                ));
            }
        }
        if self.autoscale.is_none() && self.groups().iter().all(|g| g.runners == 0) {
            return fail("the pool has no runners: give at least one group a runner".into());
        }
        if let Some(limits) = &self.autoscale {
            if limits.min < 1 || limits.min > limits.max || limits.max > MAX_GROUP_RUNNERS {
                return fail(format!(
                    "autoscale {}..{}: expected 1 <= MIN <= MAX <= {MAX_GROUP_RUNNERS}",
                    limits.min, limits.max
                ));
            }
            if !(limits.max_load_per_cpu > 0.0 && limits.max_load_per_cpu.is_finite()) {
                return fail("autoscale load limit must be above 0".into());
            }
            if self.autoscale_interval.is_zero() {
                return fail("autoscale interval must be above 0".into());
            }
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            return fail(format!(
                "batch size must be 1 to {MAX_BATCH_SIZE}, not {}",
                self.batch_size
            ));
        }
        if !(MIN_LEASE..=MAX_LEASE).contains(&self.lease) {
            return fail(format!(
                "lease must be {} to {}, not {}",
                humantime::format_duration(MIN_LEASE),
                humantime::format_duration(MAX_LEASE),
                humantime::format_duration(self.lease)
            ));
        }
        if self.shutdown_timeout > MAX_SHUTDOWN_TIMEOUT {
            return fail(format!(
                "shutdown timeout must be at most {}",
                humantime::format_duration(MAX_SHUTDOWN_TIMEOUT)
            ));
        }
        if self.retention.is_some_and(|r| r.interval.is_zero()) {
            return fail("prune interval must be above 0".into());
        }
        if self.idle_recheck.is_zero() {
            return fail("idle recheck must be above 0".into());
        }
        Ok(())
    }

    /// The pool groups to start with: `pool`, or one group of `runners` on `queues`.
    pub fn groups(&self) -> Vec<PoolGroup> {
        if !self.pool.is_empty() {
            return self.pool.clone();
        }
        let name = match &self.queues {
            QueueFilter::All => "*".to_string(),
            QueueFilter::Only(queues) => queues.join(","),
        };
        vec![PoolGroup {
            name,
            queues: self.queues.clone(),
            runners: self.runners as u32,
        }]
    }
}

/// Most tasks one claim may take.
pub const MAX_BATCH_SIZE: usize = 10_000;
/// Shortest lease: heartbeats every third of it must have time to reach the store.
pub const MIN_LEASE: Duration = Duration::from_millis(300);
/// Longest lease: a dead worker's tasks wait this long before they run elsewhere.
pub const MAX_LEASE: Duration = Duration::from_secs(24 * 3600);
/// Longest graceful shutdown (a year: `wrangle run` lets items finish however long).
pub const MAX_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(366 * 24 * 3600);

/// Why a worker could not run.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Its configuration is invalid (see [`WorkerConfig::validate`]); nothing was started.
    #[error("invalid worker configuration: {0}")]
    Config(#[from] InputError),
    /// The store failed in a way that retrying does not mend.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// This machine's host name.
fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig::new()
    }
}

/// Tells a running worker to stop: `graceful` stops claiming and lets running tasks end
/// (within the shutdown timeout); `immediate` stops them now and hands them back.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Stop claiming, finish running tasks.
    pub graceful: CancellationToken,
    /// Stop running tasks now.
    pub immediate: CancellationToken,
}

impl Shutdown {
    /// A fresh pair of untriggered tokens.
    pub fn new() -> Self {
        Shutdown::default()
    }
}

/// What a worker did, returned when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Attempts that succeeded.
    pub succeeded: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Tasks handed back unfinished at shutdown.
    pub released: u64,
    /// Completions the store refused because the lease had been lost.
    pub stale: u64,
}

/// Told about every outcome the store recorded, in the order recorded: what a caller
/// running its own items (`wrangle run`) counts and reports.
pub trait OutcomeObserver: Send + Sync + 'static {
    /// `completion` was written; `status` says what became of the task.
    fn recorded(&self, completion: &Completion, status: CompletionStatus);
}

/// What a reload builds from the configuration read again (the CLI re-reads
/// `wrangle.toml`).
#[derive(Debug)]
pub struct Reloaded {
    /// The handlers for new tasks.
    pub registry: Registry,
    /// The pool as the configuration now has it; `None` keeps the running pool (one
    /// given by flags, which a file does not override).
    pub pool: Option<Vec<PoolGroup>>,
}

/// Builds what a reload swaps in; see [`Reloaded`].
pub type ReloadFactory = Arc<dyn Fn() -> Result<Reloaded, String> + Send + Sync>;

type ControlReceiver =
    mpsc::UnboundedReceiver<(ControlOp, oneshot::Sender<Result<String, String>>)>;

/// A worker bound to a store and a registry of executors.
pub struct Worker {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    config: WorkerConfig,
    observer: Option<Arc<dyn OutcomeObserver>>,
    reload: Option<ReloadFactory>,
    metrics: Option<Arc<WorkerMetrics>>,
    control: WorkerControl,
    control_rx: ControlReceiver,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("store", &self.store)
            .field("registry", &self.registry)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// First and longest pause after a store error.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

impl Worker {
    /// A worker that runs tasks from `store` with `registry`.
    pub fn new(store: Arc<dyn Store>, registry: Registry, config: WorkerConfig) -> Self {
        let (control, control_rx) = WorkerControl::channel();
        Worker {
            store,
            registry: Arc::new(registry),
            config,
            observer: None,
            reload: None,
            metrics: None,
            control,
            control_rx,
        }
    }

    /// Measures the worker into `metrics` (attempts, store calls, runner restarts; see
    /// [`WorkerMetrics`]): every store call goes through an [`ObservedStore`].
    ///
    /// [`ObservedStore`]: wrangle_core::store::ObservedStore
    pub fn with_metrics(mut self, metrics: Arc<WorkerMetrics>) -> Self {
        self.store = Arc::new(wrangle_core::store::ObservedStore::observed(
            self.store,
            metrics.clone(),
        ));
        self.metrics = Some(metrics);
        self
    }

    /// Lets `reload` (the command, or SIGHUP in the CLI) swap in a registry built by
    /// `factory`: tasks already running finish on the old executors (whose runner
    /// processes then exit), new tasks start on the new ones. A pool it returns is
    /// applied as far as it changed since the last read (see [`Reloaded`]).
    pub fn with_reload(mut self, factory: ReloadFactory) -> Self {
        self.reload = Some(factory);
        self
    }

    /// A handle to steer the worker once it runs (scale, reload, stop).
    pub fn control(&self) -> WorkerControl {
        self.control.clone()
    }

    /// Reports every recorded outcome to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn OutcomeObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Runs until `shutdown` fires (or a `stop` command arrives), then hands back what it
    /// could not finish and deregisters. Checks the configuration first
    /// ([`WorkerConfig::validate`]).
    pub async fn run(self, shutdown: Shutdown) -> Result<WorkerReport, WorkerError> {
        self.config.validate()?;
        let config = Arc::new(self.config);
        let store = self.store;
        // Cancels every running attempt; fired by an immediate shutdown or when a graceful
        // one runs out of time.
        let abort_all = CancellationToken::new();
        let stop_claiming = shutdown.graceful.clone();
        let (finished_tx, finished_rx) = mpsc::unbounded_channel::<Finished>();
        let shared = Arc::new(Shared {
            store: store.clone(),
            config: config.clone(),
            held: Arc::new(HeldTasks::default()),
            registry: RwLock::new(self.registry),
            groups: RwLock::new(Vec::new()),
            started_at: config.now(),
            reload: self.reload,
            configured_pool: std::sync::Mutex::new(config.pool.clone()),
            mailbox_nudge: Notify::new(),
            metrics: self.metrics,
            loops: ClaimLoops {
                finished_tx: std::sync::Mutex::new(Some(finished_tx)),
                stop_claiming: stop_claiming.clone(),
                abort_all: abort_all.clone(),
            },
        });
        for group in config.groups() {
            shared.add_group(&group);
        }
        shared.resize_executors();
        // The store may be down as the worker starts: wait for it, as for an outage later.
        let mut backoff = RETRY_FIRST;
        loop {
            match store
                .register_worker(shared.info(), shared.started_at)
                .await
            {
                Ok(()) => break,
                Err(err) if err.is_transient() => {
                    tracing::warn!(error = %err, retry_in = ?backoff, "store unavailable; cannot register the worker yet, retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop_claiming.cancelled() => return Ok(WorkerReport::default()),
                    }
                    backoff = (backoff * 2).min(RETRY_MAX);
                }
                Err(err) => return Err(err.into()),
            }
        }

        let completer = tokio::spawn(completer::run(
            store.clone(),
            config.clone(),
            shared.held.clone(),
            finished_rx,
            self.observer.clone(),
        ));
        let worker_done = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat::run(shared.clone(), worker_done.clone()));
        let controller = control::Controller {
            shared: shared.clone(),
        };
        let control = tokio::spawn(control::serve(
            controller,
            self.control_rx,
            worker_done.clone(),
        ));
        if let Some(limits) = config.autoscale {
            tokio::spawn(autoscale::run(shared.clone(), limits, worker_done.clone()));
        }
        if let Some(retention) = config.retention {
            tokio::spawn(pruner::run(shared.clone(), retention, worker_done.clone()));
        }
        {
            let immediate = shutdown.immediate.clone();
            let abort_all = abort_all.clone();
            let stop_claiming = stop_claiming.clone();
            let worker_done = worker_done.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = immediate.cancelled() => {
                        stop_claiming.cancel();
                        abort_all.cancel();
                    }
                    // The worker ended first: nothing left to stop.
                    _ = worker_done.cancelled() => {}
                }
            });
        }
        for group in shared.groups() {
            spawn_claim_loop(&shared, group);
        }
        stop_claiming.cancelled().await;

        // Graceful: give running tasks the shutdown timeout, then cancel them (they are
        // handed back, not counted as failures).
        let all_idle = async {
            for group in shared.groups() {
                group.wait_idle().await;
            }
        };
        tokio::select! {
            _ = all_idle => {}
            _ = tokio::time::sleep(config.shutdown_timeout) => {
                tracing::warn!("shutdown timeout reached; handing back running tasks");
            }
            _ = abort_all.cancelled() => {}
        }
        abort_all.cancel();
        for group in shared.groups() {
            group.wait_idle().await;
        }
        // The completer ends once every sender of the finished channel is gone: the claim
        // loops' (they ended with stop_claiming), the attempts' (all idle) and this one.
        shared.close_finished();
        let report = completer.await.unwrap_or_default();
        worker_done.cancel();
        let _ = heartbeat.await;
        let _ = control.await;
        if let Err(err) = store.deregister_worker(&config.name).await {
            tracing::warn!(error = %err, "could not deregister worker");
        }
        Ok(report)
    }
}

/// What the claim loops need to start tasks and report them.
pub(crate) struct ClaimLoops {
    /// Taken at shutdown (see [`Shared::close_finished`]).
    finished_tx: std::sync::Mutex<Option<mpsc::UnboundedSender<Finished>>>,
    pub(crate) stop_claiming: CancellationToken,
    pub(crate) abort_all: CancellationToken,
}

/// The running worker's state, shared by its parts.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: Arc<WorkerConfig>,
    pub(crate) held: Arc<HeldTasks>,
    registry: RwLock<Arc<Registry>>,
    groups: RwLock<Vec<Arc<Group>>>,
    started_at: DateTime<Utc>,
    reload: Option<ReloadFactory>,
    /// The pool as the configuration last said it: a reload applies only what the file
    /// changed since, so runners scaled by hand meanwhile stay as they are.
    pub(crate) configured_pool: std::sync::Mutex<Vec<PoolGroup>>,
    /// Woken by a heartbeat that says commands wait in the mailbox.
    pub(crate) mailbox_nudge: Notify,
    /// Where attempts and runner restarts are measured, if anywhere.
    pub(crate) metrics: Option<Arc<WorkerMetrics>>,
    pub(crate) loops: ClaimLoops,
}

impl Shared {
    /// The executor for `kind` in the current registry.
    pub(crate) fn executor(&self, kind: &str) -> Option<Arc<dyn Executor>> {
        self.registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(kind)
            .cloned()
    }

    /// The pool groups, in the order added.
    pub(crate) fn groups(&self) -> Vec<Arc<Group>> {
        self.groups
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn add_group(&self, group: &PoolGroup) -> Arc<Group> {
        let group = Group::new(group);
        self.groups
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(group.clone());
        group
    }

    /// Runners across every group.
    pub(crate) fn total_runners(&self) -> usize {
        self.groups().iter().map(|g| g.target()).sum()
    }

    /// Tells the executors (runner processes) how many runners the worker has now.
    pub(crate) fn resize_executors(&self) {
        let runners = self.total_runners();
        self.registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .resize(runners);
    }

    /// Builds what a reload swaps in (see [`Worker::with_reload`]).
    pub(crate) fn build_reload(&self) -> Result<Reloaded, String> {
        let factory = self
            .reload
            .as_ref()
            .ok_or("this worker has no configuration to reload")?;
        factory()
    }

    /// Swaps in a freshly built registry, sized to the pool; returns its kinds.
    pub(crate) fn swap_registry(&self, registry: Registry) -> usize {
        registry.resize(self.total_runners());
        let kinds = registry.kinds().len();
        *self.registry.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(registry);
        kinds
    }

    /// Replaces runner `number`'s process in every runner kind after its current tasks
    /// (the configuration is not read again: that is [`Shared::reload`]).
    pub(crate) async fn reload_runner(&self, number: u32) -> Result<String, String> {
        let registry = self
            .registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match registry.replace_runner(number as usize).await {
            0 => Err(format!(
                "runner {number} has no process running (runner kinds start theirs with their first task)"
            )),
            replaced => Ok(format!(
                "runner {number}: {replaced} process(es) replaced after their current tasks"
            )),
        }
    }

    /// Drops the worker's own sender of finished attempts; no claim loop starts after.
    fn close_finished(&self) {
        self.loops
            .finished_tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }

    /// What the worker tells the store about itself.
    pub(crate) fn info(&self) -> WorkerInfo {
        let tasks = self.held.leases().into_iter().map(|(id, _)| id).collect();
        self.info_holding(tasks)
    }

    /// [`Shared::info`] with the tasks it holds already listed (the heartbeat has them).
    pub(crate) fn info_holding(&self, tasks: Vec<wrangle_core::TaskId>) -> WorkerInfo {
        let groups = self.groups();
        // Every queue (empty) if any group takes every queue.
        let mut queues: Vec<String> = if groups.iter().any(|g| g.queues == QueueFilter::All) {
            Vec::new()
        } else {
            groups.iter().flat_map(|g| g.queues.names()).collect()
        };
        queues.sort_unstable();
        queues.dedup();
        let registry = self
            .registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let processes = registry.processes();
        if let Some(metrics) = &self.metrics {
            metrics.processes(&processes);
        }
        WorkerInfo {
            name: self.config.name.clone(),
            host: hostname(),
            pid: std::process::id(),
            queues,
            runners: groups.iter().map(|g| g.target() as u32).sum(),
            tasks,
            started_at: self.started_at,
            version: env!("CARGO_PKG_VERSION").to_string(),
            pool: groups.iter().map(|g| g.info()).collect(),
            processes,
            rss_bytes: wrangle_exec::rss_bytes(std::process::id()),
            autoscale: self.config.autoscale.map(|l| (l.min, l.max)),
            lease_ms: self.config.lease.as_millis() as u64,
        }
    }
}

/// Starts `group`'s claim loop (unless the worker is shutting down).
pub(crate) fn spawn_claim_loop(shared: &Arc<Shared>, group: Arc<Group>) {
    let finished_tx = shared
        .loops
        .finished_tx
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if let Some(finished_tx) = finished_tx {
        tokio::spawn(group::claim_loop(group, shared.clone(), finished_tx));
    }
}

/// Runs one attempt on its own tokio task so that a panicking handler fails the attempt
/// instead of the worker.
async fn run_attempt(
    executor: Arc<dyn wrangle_exec::Executor>,
    task: &ClaimedTask,
    cancel: CancellationToken,
) -> ExecResult {
    let owned = task.clone();
    let attempt = tokio::spawn(async move { executor.execute(&owned, cancel).await });
    match attempt.await {
        Ok(result) => result,
        Err(err) if err.is_panic() => {
            let panic = err.into_panic();
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Failure(format!("handler panicked: {message}")))
        }
        Err(_) => Err(Failure("cancelled".into())),
    }
}

/// The outcome to record for an attempt that ended with `result`.
fn outcome_for(
    task: &ClaimedTask,
    result: ExecResult,
    cancelled: bool,
    policy: &RetryPolicy,
    now: DateTime<Utc>,
) -> Outcome {
    match result {
        Ok(result) => Outcome::Succeeded { result },
        Err(_) if cancelled => Outcome::Released {
            reason: "worker shut down before the task finished".into(),
        },
        Err(Failure(error)) => Outcome::Failed {
            error,
            retry_at: policy.next_run_at(task.id, task.attempt, task.max_attempts, now),
        },
    }
}
