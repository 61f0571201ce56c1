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
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => err.exit(), // --help and --version
        Err(err) => {
            // One line, like every other bad-input error; `--help` has the rest.
            let rendered = err.to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            let message = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("wrangle: error: {message} (see --help)");
            std::process::exit(fail::EXIT_BAD_INPUT);
        }
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
