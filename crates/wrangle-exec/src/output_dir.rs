//! `--output DIR`, shared by the exec and runner executors: where each attempt's files go
//! (`DIR/ID.*`, or `DIR/JOB/START-END.*` for a job's block, as DScript kept a block's
//! output), files that appear only at their first byte, and `DIR/JOB/blocks.log` with a
//! line per attempt of a job's task. What goes into the files is the executors' business.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;
use wrangle_core::job::block_bounds;
use wrangle_core::store::ClaimedTask;

use crate::{ExecResult, Failure};

/// One of a task's `--output` files, created at its first byte: a stream that stays
/// silent leaves no empty file (a job of 11,000 quiet blocks makes no 11,000 `.stderr`s).
#[derive(Debug)]
pub(crate) struct OutputFile {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    /// Creating or writing failed; reported once, then the stream is only read.
    failed: bool,
}

impl OutputFile {
    fn new(path: PathBuf) -> Self {
        OutputFile {
            path,
            file: None,
            failed: false,
        }
    }

    pub(crate) async fn write(&mut self, bytes: &[u8]) {
        if self.failed {
            return;
        }
        if self.file.is_none() {
            let created = tokio::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&self.path)
                .await;
            match created {
                Ok(file) => self.file = Some(file),
                Err(err) => return self.fail(&err),
            }
        }
        if let Some(file) = self.file.as_mut()
            && let Err(err) = file.write_all(bytes).await
        {
            self.fail(&err);
        }
    }

    /// tokio's File finishes writes in the background; flush so the file is whole when
    /// the task's outcome is reported.
    pub(crate) async fn flush(&mut self) {
        if let Some(file) = self.file.as_mut()
            && let Err(err) = file.flush().await
        {
            self.fail(&err);
        }
    }

    fn fail(&mut self, err: &std::io::Error) {
        self.failed = true;
        tracing::warn!("cannot write {}: {err}", self.path.display());
    }
}

/// The attempt's files under `base` with these suffixes (`stdout`, `stderr`, …), none
/// created yet. An earlier attempt's files are removed, so what is there is this
/// attempt's output. `None` when the directory cannot be made (said in the log).
pub(crate) async fn attempt_files<const N: usize>(
    base: &Path,
    task: &ClaimedTask,
    suffixes: [&str; N],
) -> Option<[OutputFile; N]> {
    let dir = task_dir(base, task);
    if let Err(err) = create_private_dir(&dir).await {
        tracing::warn!("cannot create output directory {}: {err}", dir.display());
        return None;
    }
    let stem = output_stem(task);
    let paths = suffixes.map(|suffix| dir.join(format!("{stem}.{suffix}")));
    if task.attempt > 1 {
        for path in &paths {
            let _ = tokio::fs::remove_file(path).await;
        }
    }
    Some(paths.map(OutputFile::new))
}

/// Appends one line per attempt of a job's task to `DIR/JOB/blocks.log`: when, which
/// block, which task and attempt, and how it ended. Tasks outside a job have no log.
pub(crate) async fn log_block_outcome(base: &Path, task: &ClaimedTask, result: &ExecResult) {
    if task.job.is_none() {
        return;
    }
    let dir = task_dir(base, task);
    let outcome = match result {
        Ok(_) => "ok".to_string(),
        Err(Failure(error)) => format!("failed: {}", error.lines().next().unwrap_or("")),
    };
    let line = format!(
        "{} {} task={} attempt={} {outcome}\n",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        output_stem(task),
        task.id,
        task.attempt,
    );
    let append = async {
        create_private_dir(&dir).await?;
        let mut log = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(dir.join("blocks.log"))
            .await?;
        log.write_all(line.as_bytes()).await
    };
    if let Err(err) = append.await {
        tracing::warn!("cannot append to {}/blocks.log: {err}", dir.display());
    }
}

/// Creates an output directory (and its missing parents) readable by its owner alone:
/// tasks' output is nobody else's business. One made beforehand keeps its permissions.
pub(crate) async fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    tokio::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .await
}

/// Where a task's output files go: `DIR/`, or `DIR/JOB/` for a job's task (DScript's
/// per-job output directory).
fn task_dir(base: &Path, task: &ClaimedTask) -> PathBuf {
    match &task.job {
        Some(job) => base.join(safe_file_name(job)),
        None => base.to_path_buf(),
    }
}

/// A task's output file name without extension: `START-END` for a range block, else its id.
fn output_stem(task: &ClaimedTask) -> String {
    match block_bounds(&task.payload) {
        Some((start, end)) if task.job.is_some() => format!("{start}-{end}"),
        _ => task.id.to_string(),
    }
}

/// A job name made safe as one path component.
fn safe_file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}
