//! The console's process commands, as resque-pool-dynamic's shell had them: `start` runs
//! a `wrangle worker` on this machine against the console's store (detached, so it keeps
//! running when the console leaves; its log goes to a file of its own), and `pstree`
//! draws every worker on every machine with its runner processes, from what the workers
//! report to the store (the console never looks at local PIDs to decide anything).

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use wrangle::WorkerRecord;

use super::super::Context;
use crate::fail::{CliError, CliResult};
use crate::stdout::outp;

/// Where the log files of workers started from the console go.
const LOG_DIR: &str = ".wrangle/logs";

/// How `start` reaches the console's own store from a new process.
#[derive(Debug, Clone)]
pub(crate) struct Launcher {
    /// The store URL, passed in the environment (`WRANGLE_STORE`), never in argv where
    /// `ps` would show a password.
    pub(crate) store_url: String,
    /// The config file the console read, if one was named.
    pub(crate) config: Option<PathBuf>,
}

/// `start [WORKER OPTIONS…]`: starts `wrangle worker OPTIONS` here, detached, and says
/// where its log goes. A worker that refuses its options at once is reported as an
/// error with its own message.
pub(super) async fn start(launcher: &Launcher, options: &[String]) -> CliResult {
    let program = std::env::current_exe()
        .map_err(|e| CliError::Runtime(format!("cannot find the wrangle binary: {e}")))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(LOG_DIR)
        .map_err(|e| CliError::Runtime(format!("cannot create {LOG_DIR}: {e}")))?;
    let log_path = PathBuf::from(LOG_DIR).join(format!(
        "worker-{}.log",
        Utc::now().format("%Y%m%dT%H%M%S%.3f")
    ));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(|e| CliError::Runtime(format!("cannot create {}: {e}", log_path.display())))?;
    let mut command = Command::new(program);
    command.arg("worker").args(options);
    if let Some(config) = &launcher.config {
        command.arg("--config").arg(config);
    }
    let mut child = command
        .env("WRANGLE_STORE", &launcher.store_url)
        .stdin(Stdio::null())
        .stdout(
            log.try_clone()
                .map_err(|e| CliError::Runtime(e.to_string()))?,
        )
        .stderr(log)
        // Its own process group: Ctrl-C in the console does not reach it.
        .process_group(0)
        .spawn()
        .map_err(|e| CliError::Runtime(format!("cannot start a worker: {e}")))?;
    // Bad options end the worker at once: say why here rather than in a log file.
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Ok(Some(status)) = child.try_wait() {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let why = text.lines().last().unwrap_or("no output");
        return Err(CliError::input(format!(
            "the worker exited at once ({status}): {}",
            why.trim_start_matches("wrangle: error: ")
        )));
    }
    outp!(
        "started wrangle worker {}(pid {}); its log: {}",
        name_in(options).map_or(String::new(), |name| format!("{name} ")),
        child.id(),
        log_path.display()
    );
    Ok(0)
}

/// The `--name` among worker options, if given.
fn name_in(options: &[String]) -> Option<&str> {
    options.iter().enumerate().find_map(|(i, option)| {
        option
            .strip_prefix("--name=")
            .or_else(|| (option == "--name").then(|| options.get(i + 1).map(String::as_str))?)
    })
}

/// `pstree`: hosts, their workers, and each worker's runner processes.
pub(super) async fn pstree(context: &Context) -> CliResult {
    let mut workers = context.store.list_workers().await?;
    if workers.is_empty() {
        outp!("no workers are registered");
        return Ok(0);
    }
    workers.sort_by(|a, b| (&a.info.host, &a.info.name).cmp(&(&b.info.host, &b.info.name)));
    outp!("{}", tree(&workers, Utc::now()));
    Ok(0)
}

fn tree(workers: &[WorkerRecord], now: chrono::DateTime<Utc>) -> String {
    let mut out = String::new();
    let mut hosts: Vec<&str> = workers.iter().map(|w| w.info.host.as_str()).collect();
    hosts.dedup();
    for host in hosts {
        out += &format!("{host}\n");
        let here: Vec<&WorkerRecord> = workers.iter().filter(|w| w.info.host == host).collect();
        for (i, worker) in here.iter().enumerate() {
            let last = i + 1 == here.len();
            let info = &worker.info;
            let health = if worker.is_lost(now) { ", LOST" } else { "" };
            out += &format!(
                "{}{} (pid {}, {} runners, {} running{health})\n",
                if last { "└─ " } else { "├─ " },
                info.name,
                info.pid,
                info.runners,
                info.executing()
            );
            let indent = if last { "   " } else { "│  " };
            for (j, process) in info.processes.iter().enumerate() {
                out += &format!(
                    "{indent}{}runner {} {} (pid {}, {} MiB, {} restarts)\n",
                    if j + 1 == info.processes.len() {
                        "└─ "
                    } else {
                        "├─ "
                    },
                    process.runner,
                    process.kind,
                    process.pid,
                    process.rss_bytes >> 20,
                    process.restarts
                );
            }
        }
    }
    out.trim_end().to_string()
}
