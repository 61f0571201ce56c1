//! One module per subcommand; [`dispatch`] loads the config, opens the store and runs it.

mod console;
mod help;
mod inspect;
mod job;
mod logs;
mod run;
mod serve;
mod submit;
mod top;
mod worker;
mod workers;

use std::sync::Arc;

use wrangle::logs::LogShipper;
use wrangle::{Open, Shutdown, Store};

use crate::cli::{Cli, Command, EarlyArgs, JsonArg, StoreArgs};
use crate::config::Config;
use crate::fail::{CliError, CliResult};

/// What every command needs: the store and the output mode.
pub(crate) struct Context {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) json: bool,
}

/// The store options of one command line: the command's own, else those written before
/// the command, else `$WRANGLE_STORE` (for the URL).
struct StoreChoice {
    url: Option<String>,
    config: Option<std::path::PathBuf>,
    json: bool,
}

impl StoreChoice {
    fn of(early: &EarlyArgs, store: &StoreArgs, json: JsonArg) -> StoreChoice {
        StoreChoice {
            url: store
                .store
                .clone()
                .or_else(|| early.store.clone())
                .or_else(|| {
                    std::env::var("WRANGLE_STORE")
                        .ok()
                        .filter(|u| !u.is_empty())
                }),
            config: store.config.clone().or_else(|| early.config.clone()),
            json: json.json || early.json,
        }
    }

    fn load_config(&self) -> CliResult<Config> {
        Config::load(self.config.as_deref())
    }

    /// Opens the store: `Open::Create` for the commands that put work in it (submit,
    /// worker, job create), `Open::Existing` for every other, so that looking at a store
    /// with a typo in its path never creates an empty one.
    async fn open(&self, config: &Config, open: Open) -> CliResult<Context> {
        let url = config.store_url(self.url.as_deref());
        let store = wrangle::connect_with(&url, open).await?;
        Ok(Context {
            store,
            json: self.json,
        })
    }
}

/// Runs the parsed command line; returns the exit code.
pub(crate) async fn dispatch(cli: Cli) -> CliResult {
    // A worker keeps its own log lines and its tasks' output in the store too.
    let shipper = match &cli.command {
        Command::Worker(args) if args.log_lines > 0 => Some(LogShipper::new(args.log_lines)),
        _ => None,
    };
    // The dashboard owns the screen: log lines on stderr would tear it.
    if !matches!(cli.command, Command::Top(_)) {
        init_logging(matches!(cli.command, Command::Worker(_)), shipper.clone());
    }
    let early = &cli.early;
    // Validate everything the user typed before touching the store, so bad input never
    // creates a database or enqueues half a batch.
    match cli.command {
        // A run is local: its store is in memory, or its --journal file.
        Command::Run(args) => {
            if early.store.is_some() || early.config.is_some() {
                return Err(CliError::input(
                    "wrangle run does not use a store or wrangle.toml: its items live in memory (or in --journal FILE)",
                ));
            }
            run::run(run::plan(&args)?, args.json || early.json).await
        }
        Command::Submit(args) => {
            let choice = StoreChoice::of(early, &args.store, args.json);
            let config = choice.load_config()?;
            let plan = submit::plan(&args, &config)?;
            submit::run(&choice.open(&config, Open::Create).await?, plan).await
        }
        Command::Worker(args) => {
            let choice = StoreChoice::of(early, &args.store, args.json);
            let config = choice.load_config()?;
            let setup = worker::plan(&args, &config, choice.config.as_deref(), shipper)?;
            worker::run(&choice, &config, setup).await
        }
        Command::Job(args) => {
            let choice = StoreChoice::of(early, &args.store, args.json);
            let config = choice.load_config()?;
            let create = match &args.command {
                crate::cli::JobCommand::Create(create) => Some(job::plan_create(create, &config)?),
                _ => None,
            };
            let open = if create.is_some() {
                Open::Create
            } else {
                Open::Existing
            };
            job::run(&choice.open(&config, open).await?, args.command, create).await
        }
        Command::Workers(args) => {
            let choice = StoreChoice::of(early, &args.store, args.json);
            let config = choice.load_config()?;
            let plan = workers::plan(&args.command)?;
            workers::run(&choice.open(&config, Open::Existing).await?, plan).await
        }
        Command::Status(args) => {
            let choice = StoreChoice::of(early, &args.store, args.json);
            let config = choice.load_config()?;
            inspect::status(&choice.open(&config, Open::Existing).await?).await
        }
        Command::Tasks(args) => {
            let choice = StoreChoice::of(early, &args.store, args.json);
            let config = choice.load_config()?;
            let state = inspect::validate_tasks(&args.command)?;
            inspect::tasks(
                &choice.open(&config, Open::Existing).await?,
                args.command,
                state,
            )
            .await
        }
        Command::Queues(args) => {
            let choice = StoreChoice::of(early, &args.store, args.json);
            let config = choice.load_config()?;
            inspect::queues(&choice.open(&config, Open::Existing).await?, args.command).await
        }
        Command::Top(args) => {
            let choice = StoreChoice::of(early, &args.store, JsonArg::default());
            let config = choice.load_config()?;
            let plan = top::plan(&args, early.json)?;
            top::run(choice.open(&config, Open::Existing).await?, plan).await
        }
        Command::Console(args) => {
            let choice = StoreChoice::of(early, &args.store, args.json);
            let config = choice.load_config()?;
            let launcher = console::Launcher {
                store_url: config.store_url(choice.url.as_deref()),
                config: choice.config.clone(),
            };
            console::run(choice.open(&config, Open::Existing).await?, launcher).await
        }
        Command::Serve(args) => {
            let choice = StoreChoice::of(early, &args.store, JsonArg::default());
            let config = choice.load_config()?;
            let plan = serve::plan(&args, &config)?;
            serve::run(choice.open(&config, Open::Existing).await?, plan).await
        }
        Command::Completions(args) => help::completions(args.shell),
        Command::Man(args) => help::man(&args),
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

/// Log lines on stderr (`WRANGLE_LOG` filters them), and into `shipper` too when given.
fn init_logging(worker: bool, shipper: Option<Arc<LogShipper>>) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let default = if worker { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WRANGLE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let printed = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(printed)
        .with(shipper.map(crate::log_capture::Capture))
        .try_init();
}

/// What a command says when it is interrupted: `interrupts` is 1 for the first SIGINT
/// (graceful), 2 and more for the next ones (immediate), 0 for SIGTERM (graceful).
pub(crate) type OnInterrupt = Box<dyn Fn(u32) + Send + Sync>;

/// The worker's way of announcing interrupts: log lines, like the rest of its output.
pub(crate) fn log_interrupts() -> OnInterrupt {
    Box::new(|interrupts| match interrupts {
        0 => tracing::info!("terminated: finishing running tasks"),
        1 => tracing::info!("interrupted: finishing running tasks (Ctrl-C again to stop now)"),
        _ => tracing::info!("interrupted again: stopping running tasks now"),
    })
}

/// SIGTERM or a first SIGINT: graceful; a second SIGINT: immediate. Returns a token that
/// is cancelled once an interrupt arrived (for the exit code).
pub(crate) fn watch_signals(
    shutdown: Shutdown,
    announce: OnInterrupt,
) -> CliResult<tokio_util::sync::CancellationToken> {
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
                    announce(interrupts);
                    if interrupts == 1 {
                        shutdown.graceful.cancel();
                    } else {
                        shutdown.immediate.cancel();
                    }
                }
                _ = terminate.recv() => {
                    announce(0);
                    shutdown.graceful.cancel();
                }
            }
        }
    });
    Ok(interrupted)
}
