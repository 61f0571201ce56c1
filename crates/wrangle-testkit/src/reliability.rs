//! The fault suite's reliability table: each fault run records one row, which
//! `scripts/chaos.sh` collects (through `$WRANGLE_CHAOS_REPORT`) into
//! `docs/reliability.md`.

use std::io::Write;
use std::time::Duration;

/// One row of the reliability table, appended to `$WRANGLE_CHAOS_REPORT` when it is set
/// (`scripts/chaos.sh` turns the rows into `docs/reliability.md`).
#[derive(Debug)]
pub struct ReliabilityRow<'a> {
    /// What was done to the workers or the store, and for how long.
    pub fault: &'a str,
    /// SQLite, PostgreSQL, Redis or MariaDB.
    pub store: &'a str,
    /// Tasks in the run.
    pub tasks: usize,
    /// Tasks never completed.
    pub lost: usize,
    /// Tasks completed twice in the store, or whose completed attempt ran twice.
    pub completed_twice: usize,
    /// Runs of a task after the attempt that completed it.
    pub run_after_completing: usize,
    /// From the last fault until every task was completed.
    pub recovery: Duration,
}

impl ReliabilityRow<'_> {
    /// Prints the row (to stderr) and appends it to `$WRANGLE_CHAOS_REPORT` when set.
    pub fn record(&self) {
        let line = format!(
            "| {} | {} | {} | {} | {} | {} | {:.1} s |\n",
            self.fault,
            self.store,
            self.tasks,
            self.lost,
            self.completed_twice,
            self.run_after_completing,
            self.recovery.as_secs_f64()
        );
        eprint!("reliability: {line}");
        if let Ok(path) = std::env::var("WRANGLE_CHAOS_REPORT") {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut file| file.write_all(line.as_bytes()))
                .expect("append to WRANGLE_CHAOS_REPORT");
        }
    }
}
