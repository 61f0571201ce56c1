//! One module per subcommand; [`dispatch`] loads the config, opens the store and runs it.

mod inspect;
mod submit;
mod worker;

use std::sync::Arc;

use wrangle::Store;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::config::Config;
use crate::fail::CliResult;

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
    init_logging(matches!(cli.command, Command::Worker(_)));
    // Validate everything the user typed before touching the store, so bad input never
    // creates a database or enqueues half a batch.
    let config = Config::load(cli.global.config.as_deref())?;
    match cli.command {
        Command::Submit(args) => {
            let plan = submit::plan(&args, &config)?;
            submit::run(&Context::open(&cli.global, &config).await?, plan).await
        }
        Command::Worker(args) => {
            let setup = worker::plan(&args, &config)?;
            worker::run(Context::open(&cli.global, &config).await?, setup).await
        }
        Command::Status => inspect::status(&Context::open(&cli.global, &config).await?).await,
        Command::Tasks(command) => {
            let state = inspect::validate_tasks(&command)?;
            inspect::tasks(&Context::open(&cli.global, &config).await?, command, state).await
        }
        Command::Queues(command) => {
            inspect::queues(&Context::open(&cli.global, &config).await?, command).await
        }
    }
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
