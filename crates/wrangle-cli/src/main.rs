//! The `wrangle` command-line tool: a thin layer over the `wrangle` library.
//!
//! - [`cli`]: the command-line grammar (clap), with an example in every `--help`.
//! - [`config`]: `wrangle.toml` and the precedence flags > environment > file > defaults.
//! - [`commands`]: one module per subcommand.
//! - [`fail`]: how errors become one line on stderr and an exit code (2 for bad input).
//! - [`log_capture`]: a worker's own log lines, sent to the store as well as printed.
//! - [`progress`]: progress bars that fit the terminal.
//! - [`stdout`]: printing that ends quietly when the reader closes the pipe.

mod cli;
mod commands;
mod config;
mod fail;
mod log_capture;
mod progress;
mod stdout;

use clap::{CommandFactory, Parser};

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => match err.kind() {
            // --help, --version: what was asked for, exit 0.
            _ if !err.use_stderr() => err.exit(),
            // Bare `wrangle`: the usage, and exit 2 as for any incomplete command line.
            clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                let _ = err.print();
                std::process::exit(fail::EXIT_BAD_INPUT);
            }
            _ => {
                let args: Vec<String> = std::env::args().skip(1).collect();
                let command = fail::command_path(&cli::Cli::command(), &args);
                eprintln!("wrangle: error: {}", fail::usage_error_line(&err, &command));
                std::process::exit(fail::EXIT_BAD_INPUT);
            }
        },
    };
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
