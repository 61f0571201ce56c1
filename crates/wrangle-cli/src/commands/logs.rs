//! `wrangle tasks log ID` and `wrangle workers log NAME` (and the console's `tail WORKER`):
//! printing a log ring the store keeps, and following it, through [`wrangle::logs::follow`].
//!
//! A task's standard output goes to standard output exactly as written, so `tasks log 42 >
//! out.txt` saves it; its standard error and the lines saying how each attempt ended go to
//! standard error. A worker's lines are printed with their time. `--json` prints one
//! object per line (`seq`, `at`, `source`, `text`) on standard output.

use chrono::Local;
use wrangle::log::{LogLine, LogOwner, LogSource};
use wrangle::logs::follow;

use super::Context;
use crate::cli::LogViewArgs;
use crate::fail::{CliError, CliResult};
use crate::stdout::out;

/// Prints `owner`'s log as `view` asks; returns the exit code.
pub(crate) async fn show(context: &Context, owner: &LogOwner, view: LogViewArgs) -> CliResult {
    if let LogOwner::Worker(name) = owner {
        let known = context
            .store
            .list_workers()
            .await?
            .iter()
            .any(|w| &w.info.name == name);
        if !known {
            return Err(CliError::input(format!(
                "no worker named '{name}' in the store (wrangle workers list shows them)"
            )));
        }
    }
    let json = context.json;
    let print = |line: &LogLine| print_line(owner, line, json);
    follow(&context.store, owner, view.last, view.follow, print).await?;
    Ok(0)
}

fn print_line(owner: &LogOwner, line: &LogLine, json: bool) {
    if json {
        out!("{}", serde_json::to_string(line).expect("serializable"));
        return;
    }
    match (owner, line.source) {
        (LogOwner::Worker(_), _) => out!(
            "{} {}",
            line.at
                .with_timezone(&Local)
                .format("%Y-%m-%d %H:%M:%S%.3f"),
            line.text
        ),
        (LogOwner::Task(_), LogSource::Stdout) => out!("{}", line.text),
        (LogOwner::Task(_), LogSource::Stderr) => eprintln!("{}", line.text),
        (LogOwner::Task(_), LogSource::Log) => eprintln!("wrangle: {}", line.text),
    }
}
