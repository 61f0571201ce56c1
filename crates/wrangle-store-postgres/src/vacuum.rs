//! Vacuums the tasks table after every so many claimed tasks (URL option `vacuum_every`).
//!
//! Why the store does it instead of leaving it to autovacuum: a claim walks `tasks_due`
//! from its start, and every task claimed since the table was last vacuumed left an entry
//! there (its waiting version) that only VACUUM removes, since new tasks are inserted at
//! the other end of the index and never give B-tree cleanup a reason to visit those pages.
//! So between vacuums each claim costs more than the one before: measured here, an empty
//! claim read 1,976 index pages (7.6 ms) after 400,000 claimed tasks, and 1 page (0.02 ms)
//! after a VACUUM that took 0.55 s. Autovacuum looks at a database once a minute at most
//! (`autovacuum_naptime`, a server-wide setting), which at tens of thousands of tasks per
//! second is millions of dead entries. The same holds for `tasks_lease`, which rescue walks.
//!
//! Each store handle counts the tasks it claimed and, past the threshold, starts one
//! `VACUUM (SKIP_LOCKED, INDEX_CLEANUP ON)` in the background (never more than one per
//! handle; SKIP_LOCKED makes it give way if another process's vacuum already runs). If the
//! server refuses it (options unknown before PostgreSQL 12) the store says so once and stops
//! trying; a role that does not own the table gets a warning from PostgreSQL and a no-op.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use sqlx::PgPool;

use crate::sql::sql;

/// SQLSTATEs meaning this server will never run our VACUUM: options it does not know
/// (syntax_error, before 12), or a refusal of the privilege (PostgreSQL itself only warns
/// and skips a table the role does not own). Anything else (a restart, a dropped
/// connection) is tried again after more claims.
const REFUSED: [&str; 2] = ["42501", "42601"];

/// Claimed tasks between two vacuums when the URL does not say (0 turns it off).
pub const DEFAULT_VACUUM_EVERY: u64 = 50_000;

#[derive(Debug)]
pub(crate) struct ClaimVacuum {
    every: u64,
    statement: Arc<str>,
    claimed: AtomicU64,
    running: AtomicBool,
    refused: AtomicBool,
}

impl ClaimVacuum {
    pub(crate) fn new(every: u64, statement: Arc<str>) -> Arc<Self> {
        Arc::new(ClaimVacuum {
            every,
            statement,
            claimed: AtomicU64::new(0),
            running: AtomicBool::new(false),
            refused: AtomicBool::new(false),
        })
    }

    /// Records `count` tasks claimed through this handle; starts a vacuum when due.
    pub(crate) fn claimed(self: &Arc<Self>, pool: &PgPool, count: usize) {
        if self.every == 0 || count == 0 || self.refused.load(Ordering::Relaxed) {
            return;
        }
        let total = self.claimed.fetch_add(count as u64, Ordering::Relaxed) + count as u64;
        if total < self.every || self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        self.claimed.store(0, Ordering::Relaxed);
        let this = Arc::clone(self);
        let pool = pool.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            match sqlx::raw_sql(sql(&this.statement)).execute(&pool).await {
                Ok(_) => tracing::debug!(took = ?started.elapsed(), "vacuumed the tasks table"),
                Err(sqlx::Error::Database(err))
                    if err.code().is_some_and(|c| REFUSED.contains(&&*c)) =>
                {
                    // It will not get better by retrying.
                    this.refused.store(true, Ordering::Relaxed);
                    tracing::warn!(error = %err, "cannot VACUUM the tasks table; leaving it to autovacuum (claims slow down between its runs)");
                }
                Err(err) => {
                    tracing::debug!(error = %err, "VACUUM of the tasks table failed; will try again later")
                }
            }
            this.running.store(false, Ordering::Release);
        });
    }
}
