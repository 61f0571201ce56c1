//! The `wrangle` command-line tool: a thin layer over the `wrangle` library.
//!
//! - [`cli`]: the command-line grammar (clap), with an example in every `--help`.
//! - [`config`]: `wrangle.toml` and the precedence flags > environment > file > defaults.
//! - [`commands`]: one module per subcommand.
//! - [`fail`]: how errors become one line on stderr and an exit code (2 for bad input).

mod cli;
mod commands;
mod config;
mod fail;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("starting the async runtime");
    let code = match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => code,
        Err(err) => err.report(),
    };
    // Do not wait for background tasks (listeners, pollers) on the way out.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    std::process::exit(code);
}
