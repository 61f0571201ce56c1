//! `wrangle worker`: build the executor registry from `--exec` and `[kinds.*]`, run the
//! worker loop, and turn signals into control: graceful (first TERM/INT) or immediate
//! (second INT) shutdown, reload (HUP: wrangle.toml read again, `[pool]` changes applied,
//! runner processes replaced after their current tasks), one runner more or less
//! (TTIN/TTOU).

use std::sync::Arc;
use std::time::Duration;

use wrangle::logs::LogShipper;
use wrangle::parse::{parse_duration, parse_env_assignment, parse_name, parse_size};
use wrangle::pool::{AutoscaleLimits, parse_autoscale, parse_pool};
use wrangle::{
    CommandExecutor, CommandSpec, ControlOp, Open, QueueFilter, Registry, RetryPolicy,
    RunnerExecutor, RunnerSpec, Shutdown, Worker, WorkerConfig, WorkerControl,
};

use super::{Context, StoreChoice};
use crate::cli::WorkerArgs;
use crate::config::{Config, KindConfig, RetentionFlags};
use crate::fail::{CliError, CliResult, EXIT_INTERRUPTED};
use crate::stdout::out;

/// A validated worker set-up.
pub(crate) struct WorkerSetup {
    registry: Registry,
    /// Sends the worker's log and its tasks' output to the store (unless `--log-lines 0`).
    shipper: Option<Arc<LogShipper>>,
    config: WorkerConfig,
    /// Builds the registry and pool again from a freshly read config file (reload).
    reload: wrangle::ReloadFactory,
    /// Where to serve the worker's metrics (`--metrics`).
    metrics: Option<std::net::SocketAddr>,
}

/// The executors for `[kinds.*]` and `--exec`. Runner kinds start with one process; the
/// worker sizes them to its pool (and resizes them when it is scaled).
fn build_registry(
    args: &WorkerArgs,
    config: &Config,
    shipper: Option<&Arc<LogShipper>>,
) -> CliResult<Registry> {
    let sink = shipper.map(|s| Arc::clone(s) as Arc<dyn wrangle::exec::OutputSink>);
    let mut registry = Registry::new();
    let worker_env = args
        .env
        .iter()
        .map(|assignment| parse_env_assignment(assignment))
        .collect::<Result<Vec<_>, _>>()?;
    // A kind's own variables come after the worker's, so they win.
    let env_of = |kind: Option<&KindConfig>| {
        let mut env = worker_env.clone();
        if let Some(kind) = kind {
            env.extend(kind.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        env
    };
    let spec = |argv: Vec<String>, timeout: Option<Duration>, kind: Option<&KindConfig>| {
        let mut spec = CommandSpec::new(argv);
        spec.default_timeout = timeout;
        spec.output_dir = args.output.clone();
        spec.output = sink.clone();
        spec.env = env_of(kind);
        spec.cwd = kind.and_then(|k| k.cwd.clone());
        Arc::new(CommandExecutor::new(spec))
    };
    let max_memory = args
        .max_runner_memory
        .as_deref()
        .map(parse_size)
        .transpose()?;
    for (kind, kind_config) in &config.kinds {
        let timeout = kind_config.timeout(kind)?;
        if let Some(dir) = &kind_config.cwd
            && !dir.is_dir()
        {
            return Err(CliError::input(format!(
                "[kinds.{kind}] cwd '{}' is not a directory",
                dir.display()
            )));
        }
        if let Some(argv) = &kind_config.exec {
            registry.insert(kind.clone(), spec(argv.clone(), timeout, Some(kind_config)));
        } else if let Some(argv) = &kind_config.runner {
            // One process per runner, started as tasks of this kind arrive.
            let mut runner = RunnerSpec::new(argv.clone(), 1);
            runner.default_timeout = timeout;
            runner.max_memory = max_memory;
            runner.env = env_of(Some(kind_config));
            runner.cwd = kind_config.cwd.clone();
            runner.output_dir = args.output.clone();
            runner.output = sink.clone();
            registry.insert(kind.clone(), Arc::new(RunnerExecutor::new(runner)));
        }
    }
    if let Some(text) = &args.exec {
        let argv = super::split_command("--exec", text)?;
        wrangle::placeholder::check_template(&argv)?;
        registry.fallback(spec(argv, None, None));
    }
    if registry.is_empty() {
        return Err(CliError::input(
            "nothing to run: give --exec CMD, or [kinds.NAME] exec = [...] or runner = [...] in wrangle.toml",
        ));
    }
    Ok(registry)
}

pub(crate) fn plan(
    args: &WorkerArgs,
    config: &Config,
    config_path: Option<&std::path::Path>,
    shipper: Option<Arc<LogShipper>>,
) -> CliResult<WorkerSetup> {
    let mut worker = WorkerConfig::new();
    if let Some(runners) = args.runners {
        worker.runners = runners;
    }
    worker.pool = match &args.pool {
        Some(spec) => parse_pool(spec)?,
        None => config.pool_groups()?,
    };
    if let Some(range) = &args.autoscale {
        let (min, max) = parse_autoscale(range)?;
        let mut limits = AutoscaleLimits::new(min, max);
        limits.max_load_per_cpu = args.autoscale_max_load;
        worker.autoscale = Some(limits);
        worker.autoscale_interval = parse_duration(&args.autoscale_interval)?;
    }
    let registry = build_registry(args, config, shipper.as_ref())?;
    let reload: wrangle::ReloadFactory = {
        let args = args.clone();
        let shipper = shipper.clone();
        let config_path = config_path.map(std::path::Path::to_path_buf);
        Arc::new(move || {
            let config = Config::load(config_path.as_deref()).map_err(|e| e.to_string())?;
            let registry =
                build_registry(&args, &config, shipper.as_ref()).map_err(|e| e.to_string())?;
            // A pool given by --pool stays; one from [pool] follows the file (a file
            // with no [pool] left keeps the running one).
            let pool = match &args.pool {
                Some(_) => None,
                None => Some(config.pool_groups().map_err(|e| e.to_string())?)
                    .filter(|pool| !pool.is_empty()),
            };
            Ok(wrangle::Reloaded { registry, pool })
        })
    };
    let queues = if args.queues.trim() == "*" {
        QueueFilter::All
    } else {
        QueueFilter::Only(
            args.queues
                .split(',')
                .map(|q| parse_name("queue", q.trim()))
                .collect::<Result<_, _>>()?,
        )
    };
    worker.queues = queues;
    if let Some(name) = &args.name {
        worker.name = parse_name("worker", name)?;
    }
    worker.shutdown_timeout = parse_duration(&args.shutdown_timeout)?;
    worker.lease = parse_duration(&args.lease)?;
    worker.retry_policy = RetryPolicy::exponential(parse_duration(&args.backoff)?);
    worker.batch_size = args.batch_size;
    worker.retention = Some(config.retention.retention(&RetentionFlags {
        completed: args.keep_completed.as_deref(),
        dead: args.keep_dead.as_deref(),
        cancelled: args.keep_cancelled.as_deref(),
        completed_max: args.keep_completed_max,
        interval: args.prune_every.as_deref(),
    })?);
    // The library's own checks (ranges of runners, lease, batch size, ...), before the
    // store is opened.
    worker.validate()?;
    let metrics = args
        .metrics
        .as_deref()
        .map(|addr| {
            addr.parse().map_err(|_| {
                CliError::input(format!(
                    "--metrics '{addr}' is not an address and port (e.g. 127.0.0.1:9187)"
                ))
            })
        })
        .transpose()?;
    Ok(WorkerSetup {
        registry,
        shipper,
        config: worker,
        reload,
        metrics,
    })
}

pub(crate) async fn run(choice: &StoreChoice, config: &Config, setup: WorkerSetup) -> CliResult {
    let shutdown = Shutdown::new();
    let interrupted = super::watch_signals(shutdown.clone(), super::log_interrupts())?;
    // A worker started before its store waits for it (and can be stopped meanwhile).
    let url = config.store_url(choice.url.as_deref());
    let store = wrangle::connect_waiting(&url, Open::Create, &shutdown, |err, pause| {
        tracing::warn!(error = %err, retry_in = ?pause, "store unavailable; waiting for it");
    })
    .await?;
    let Some(store) = store else {
        return Ok(EXIT_INTERRUPTED);
    };
    let context = Context {
        store,
        json: choice.json,
    };
    tracing::info!(
        worker = %setup.config.name,
        store = context.store.info().name,
        pool = ?setup.config.groups().iter().map(|g| format!("{}={}", g.name, g.runners)).collect::<Vec<_>>(),
        kinds = ?setup.registry.kinds(),
        "worker started"
    );
    let stop_shipping = tokio_util::sync::CancellationToken::new();
    let shipping = setup.shipper.map(|shipper| {
        let (store, name) = (context.store.clone(), setup.config.name.clone());
        tokio::spawn(shipper.run(store, name, stop_shipping.clone()))
    });
    let mut worker =
        Worker::new(context.store.clone(), setup.registry, setup.config).with_reload(setup.reload);
    if let Some(addr) = setup.metrics {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| CliError::Runtime(format!("--metrics: cannot listen on {addr}: {e}")))?;
        let metrics = Arc::new(wrangle::WorkerMetrics::default());
        worker = worker.with_metrics(metrics.clone());
        let stop = shutdown.graceful.clone();
        tracing::info!(%addr, "serving metrics at /metrics");
        tokio::spawn(async move {
            let stopped = async move { stop.cancelled().await };
            if let Err(err) = wrangle_server::serve_worker_metrics(listener, metrics, stopped).await
            {
                tracing::warn!(error = %err, "serving metrics failed");
            }
        });
    }
    watch_control_signals(worker.control())?;
    let report = worker.run(shutdown).await;
    stop_shipping.cancel();
    if let Some(shipping) = shipping {
        let _ = shipping.await;
    }
    let report = report?;
    tracing::info!(
        succeeded = report.succeeded,
        failed = report.failed,
        released = report.released,
        "worker stopped"
    );
    if context.json {
        out!(
            "{}",
            serde_json::json!({"succeeded": report.succeeded, "failed": report.failed, "released": report.released, "stale": report.stale})
        );
    }
    Ok(if interrupted.is_cancelled() {
        EXIT_INTERRUPTED
    } else {
        0
    })
}

/// SIGHUP: reload; SIGTTIN/SIGTTOU: one runner more/less in the first pool group.
fn watch_control_signals(control: WorkerControl) -> CliResult<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let open = |kind: SignalKind| signal(kind).map_err(|e| CliError::Runtime(e.to_string()));
    let mut hangup = open(SignalKind::hangup())?;
    let mut more = open(SignalKind::from_raw(nix::libc::SIGTTIN))?;
    let mut fewer = open(SignalKind::from_raw(nix::libc::SIGTTOU))?;
    tokio::spawn(async move {
        loop {
            let op = tokio::select! {
                _ = hangup.recv() => ControlOp::Command(wrangle::control::ControlCommand::Reload),
                _ = more.recv() => ControlOp::ScaleBy(1),
                _ = fewer.recv() => ControlOp::ScaleBy(-1),
            };
            // The worker logs what it did; a refusal is logged there too.
            let _ = control.request(op).await;
        }
    });
    Ok(())
}
