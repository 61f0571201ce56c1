//! One module per subcommand; [`dispatch`] loads the config, opens the store and runs it.

mod console;
mod inspect;
mod job;
mod run;
mod submit;
mod top;
mod worker;
mod workers;

use std::sync::Arc;

use wrangle::{Shutdown, Store};

use crate::cli::{Cli, Command, GlobalArgs};
use crate::config::Config;
use crate::fail::{CliError, CliResult};

/// What every command needs: the store and the output mode.
pub(crate) struct Context {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) json: bool,
}

impl Context {
    async fn open(global: &GlobalArgs, config: &Config) -> CliResult<Context> {
        let url = config.store_url(global.store.as_deref());
        let store = wrangle::connect(&url).await?;
        Ok(Context {
            store,
            json: global.json,
        })
    }
}

/// Runs the parsed command line; returns the exit code.
pub(crate) async fn dispatch(cli: Cli) -> CliResult {
    // The dashboard owns the screen: log lines on stderr would tear it.
    if !matches!(cli.command, Command::Top(_)) {
        init_logging(matches!(cli.command, Command::Worker(_)));
    }
    // Validate everything the user typed before touching the store, so bad input never
    // creates a database or enqueues half a batch.
    let config = Config::load(cli.global.config.as_deref())?;
    match cli.command {
        // A run is local: its store is in memory, or its --journal file.
        Command::Run(args) => run::run(run::plan(&args)?, cli.global.json).await,
        Command::Submit(args) => {
            let plan = submit::plan(&args, &config)?;
            submit::run(&Context::open(&cli.global, &config).await?, plan).await
        }
        Command::Worker(args) => {
            let setup = worker::plan(&args, &config, cli.global.config.as_deref())?;
            worker::run(Context::open(&cli.global, &config).await?, setup).await
        }
        Command::Job(command) => {
            let create = match &command {
                crate::cli::JobCommand::Create(args) => Some(job::plan_create(args, &config)?),
                _ => None,
            };
            job::run(&Context::open(&cli.global, &config).await?, command, create).await
        }
        Command::Workers(command) => {
            let plan = workers::plan(&command)?;
            workers::run(&Context::open(&cli.global, &config).await?, plan).await
        }
        Command::Status => inspect::status(&Context::open(&cli.global, &config).await?).await,
        Command::Tasks(command) => {
            let state = inspect::validate_tasks(&command)?;
            inspect::tasks(&Context::open(&cli.global, &config).await?, command, state).await
        }
        Command::Queues(command) => {
            inspect::queues(&Context::open(&cli.global, &config).await?, command).await
        }
        Command::Top(args) => {
            let plan = top::plan(&args, cli.global.json)?;
            top::run(Context::open(&cli.global, &config).await?, plan).await
        }
        Command::Console => console::run(Context::open(&cli.global, &config).await?).await,
    }
}

/// Splits a command given as one string (`--exec`, `--runner`, `--dispatch`) into argv
/// with shell quoting rules; nothing is ever run through a shell.
pub(crate) fn split_command(option: &str, text: &str) -> CliResult<Vec<String>> {
    let argv = shell_words::split(text)
        .map_err(|e| CliError::input(format!("invalid {option} '{text}': {e}")))?;
    if argv.is_empty() {
        return Err(CliError::input(format!("{option} needs a command")));
    }
    Ok(argv)
}

fn init_logging(worker: bool) {
    let default = if worker { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WRANGLE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// SIGTERM or a first SIGINT: graceful; a second SIGINT: immediate. Returns a token that
/// is cancelled once an interrupt arrived (for the exit code).
pub(crate) fn watch_signals(shutdown: Shutdown) -> CliResult<tokio_util::sync::CancellationToken> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(|e| CliError::Runtime(e.to_string()))?;
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|e| CliError::Runtime(e.to_string()))?;
    let interrupted = tokio_util::sync::CancellationToken::new();
    let seen = interrupted.clone();
    tokio::spawn(async move {
        let mut interrupts = 0;
        loop {
            tokio::select! {
                _ = interrupt.recv() => {
                    interrupts += 1;
                    seen.cancel();
                    if interrupts == 1 {
                        tracing::info!("interrupted: finishing running tasks (Ctrl-C again to stop now)");
                        shutdown.graceful.cancel();
                    } else {
                        tracing::warn!("interrupted again: stopping running tasks now");
                        shutdown.immediate.cancel();
                    }
                }
                _ = terminate.recv() => {
                    tracing::info!("terminated: finishing running tasks");
                    shutdown.graceful.cancel();
                }
            }
        }
    });
    Ok(interrupted)
}
