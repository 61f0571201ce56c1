//! `wrangle worker`: build the executor registry from `--exec` and `[kinds.*]`, run the
//! worker loop, and turn signals into graceful (first TERM/INT) or immediate (second INT)
//! shutdown.

use std::sync::Arc;
use std::time::Duration;

use wrangle::parse::{parse_duration, parse_name};
use wrangle::{
    CommandExecutor, CommandSpec, QueueFilter, Registry, RetryPolicy, RunnerExecutor, RunnerSpec,
    Shutdown, Worker, WorkerConfig,
};

use super::Context;
use crate::cli::WorkerArgs;
use crate::config::Config;
use crate::fail::{CliError, CliResult, EXIT_INTERRUPTED};

/// A validated worker set-up.
pub(crate) struct WorkerSetup {
    registry: Registry,
    config: WorkerConfig,
}

pub(crate) fn plan(args: &WorkerArgs, config: &Config) -> CliResult<WorkerSetup> {
    let mut worker = WorkerConfig::new();
    if let Some(runners) = args.runners {
        if runners == 0 {
            return Err(CliError::input("-n/--runners must be at least 1"));
        }
        worker.runners = runners;
    }
    let mut registry = Registry::new();
    let spec = |argv: Vec<String>, timeout: Option<Duration>| {
        let mut spec = CommandSpec::new(argv);
        spec.default_timeout = timeout;
        spec.output_dir = args.output.clone();
        Arc::new(CommandExecutor::new(spec))
    };
    for (kind, kind_config) in &config.kinds {
        let timeout = kind_config.timeout(kind)?;
        if let Some(argv) = &kind_config.exec {
            registry.insert(kind.clone(), spec(argv.clone(), timeout));
        } else if let Some(argv) = &kind_config.runner {
            // One process per runner slot, started as tasks of this kind arrive.
            let mut runner = RunnerSpec::new(argv.clone(), worker.runners);
            runner.default_timeout = timeout;
            registry.insert(kind.clone(), Arc::new(RunnerExecutor::new(runner)));
        }
    }
    if let Some(text) = &args.exec {
        registry.fallback(spec(super::split_command("--exec", text)?, None));
    }
    if registry.is_empty() {
        return Err(CliError::input(
            "nothing to run: give --exec CMD, or [kinds.NAME] exec = [...] or runner = [...] in wrangle.toml",
        ));
    }
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
    if worker.lease < Duration::from_millis(300) {
        return Err(CliError::input("--lease must be at least 300ms"));
    }
    worker.retry_policy = RetryPolicy::exponential(parse_duration(&args.backoff)?);
    if args.batch_size == 0 {
        return Err(CliError::input("--batch-size must be at least 1"));
    }
    worker.batch_size = args.batch_size;
    Ok(WorkerSetup {
        registry,
        config: worker,
    })
}

pub(crate) async fn run(context: Context, setup: WorkerSetup) -> CliResult {
    let shutdown = Shutdown::new();
    let interrupted = super::watch_signals(shutdown.clone())?;
    tracing::info!(
        worker = %setup.config.name,
        store = context.store.info().name,
        runners = setup.config.runners,
        kinds = ?setup.registry.kinds(),
        "worker started"
    );
    let worker = Worker::new(context.store.clone(), setup.registry, setup.config);
    let report = worker.run(shutdown).await?;
    tracing::info!(
        succeeded = report.succeeded,
        failed = report.failed,
        released = report.released,
        "worker stopped"
    );
    if context.json {
        println!(
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
