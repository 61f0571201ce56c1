//! `--retained 0,1000000,10000000`: what finished tasks kept in a store cost a running
//! deployment, on each store (SQLite, PostgreSQL, Redis, MariaDB; the memory store keeps
//! nothing between processes, so it has no such deployment).
//!
//! Per store, on one throwaway server: a range job of `--job-blocks` blocks (default
//! 1,000,000) runs through first (claimed and completed by the store), then for each
//! retained level in turn the store is filled up to that many other completed tasks (really
//! enqueued, claimed and completed, as `preload` does) and measured:
//!
//! - `queue_stats`: median of 5 calls (what `wrangle status`, `top` and `--autoscale` call
//!   every interval);
//! - the job's progress (`wrangle job status`): median of 5;
//! - claim + complete: `--tasks` no-op tasks through `--workers` worker processes at
//!   claim batch 100, tasks/s;
//! - submit-to-start p50 over `--samples` single submits to an idle worker.
//!
//! The table shows each figure per level and its ratio to the same figure with nothing
//! retained (a time's ratio above 1 or a rate's below 1 is the cost of what is kept).

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use wrangle::Store;
use wrangle::jobs::NewJob;
use wrangle_testkit::{MariaDbServer, PostgresServer, RedisServer};

use crate::{
    Args, QUEUE, end_to_end, enqueue, latency, preload, run_through, stats_call_ms, thousands,
};

/// The job whose progress is measured, and its queue.
const PROBE: &str = "probe";

/// One store's figures at one retained level.
struct Level {
    retained: usize,
    stats_ms: f64,
    progress_ms: f64,
    claim_complete: f64,
    start_p50_ms: f64,
}

/// A server kept alive while it is measured, with the URL its store is at.
enum Server {
    Sqlite(tempfile::TempDir),
    Postgres(PostgresServer),
    Redis(RedisServer),
    MariaDb(MariaDbServer),
}

impl Server {
    fn start(store: &str) -> Server {
        match store {
            "sqlite" => Server::Sqlite(tempfile::tempdir().expect("temp dir")),
            "postgres" | "pg" => {
                Server::Postgres(PostgresServer::start_durable().expect("start PostgreSQL"))
            }
            "redis" => Server::Redis(RedisServer::start().expect("start Redis")),
            "mysql" | "mariadb" => Server::MariaDb(MariaDbServer::start().expect("start MariaDB")),
            other => panic!("unknown store '{other}' (sqlite, postgres, redis, mysql)"),
        }
    }

    fn url(&self) -> String {
        match self {
            Server::Sqlite(dir) => format!("sqlite://{}", dir.path().join("w.db").display()),
            Server::Postgres(s) => s.url(),
            Server::Redis(s) => s.url(),
            Server::MariaDb(s) => s.url(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Server::Sqlite(_) => "sqlite",
            Server::Postgres(_) => "postgres",
            Server::Redis(_) => "redis",
            Server::MariaDb(_) => "mariadb",
        }
    }
}

/// Measures every store of `args` at each of `levels` and prints one table per store.
pub(crate) async fn run(args: &Args, levels: &[usize]) {
    println!(
        "wrangle retained-tasks benchmark: a {}-block job, then {} other completed tasks kept; \
         per level {} tasks claimed and completed by {} worker processes (claim batch 100), \
         {} submit-to-start samples, {} CPUs",
        thousands(args.job_blocks as f64),
        levels
            .iter()
            .map(|l| thousands(*l as f64))
            .collect::<Vec<_>>()
            .join(" / "),
        thousands(args.tasks as f64),
        args.workers,
        args.samples,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for store in &args.stores {
        let server = Server::start(store);
        let measured = measure_store(args, &server, levels).await;
        print_levels(server.name(), args, &measured);
    }
}

async fn measure_store(args: &Args, server: &Server, levels: &[usize]) -> Vec<Level> {
    let name = server.name();
    let url = server.url();
    let store: Arc<dyn Store> = wrangle::connect(&url).await.expect("connect");
    let started = Instant::now();
    let job = NewJob::range(PROBE, "noop", 0, args.job_blocks as i64, 1).queue(PROBE);
    store.create_job(job, Utc::now()).await.expect("create job");
    run_through(&store, args.job_blocks, PROBE, false).await;
    println!(
        "   {name}: ran a {}-block job in {:.1}s",
        args.job_blocks,
        started.elapsed().as_secs_f64()
    );
    let mut kept = 0;
    let mut measured = Vec::new();
    for &retained in levels {
        if retained > kept {
            let started = Instant::now();
            preload(&store, retained - kept).await;
            println!(
                "   {name}: {} more completed tasks in {:.1}s",
                retained - kept,
                started.elapsed().as_secs_f64()
            );
            kept = retained;
            settle(server).await;
        }
        let level = measure_level(args, &store, &url, retained).await;
        println!(
            "   {name}, {} kept: queue_stats {:.3} ms, job progress {:.3} ms, \
             claim+complete {}/s, submit-to-start p50 {:.3} ms",
            thousands(retained as f64),
            level.stats_ms,
            level.progress_ms,
            thousands(level.claim_complete),
            level.start_p50_ms
        );
        measured.push(level);
    }
    measured
}

/// What a server does by itself soon after a big load, done now so that the figures do
/// not depend on when it wakes up: PostgreSQL's autovacuum (VACUUM ANALYZE).
async fn settle(server: &Server) {
    if let Server::Postgres(s) = server {
        let pool = sqlx::PgPool::connect(&s.url()).await.expect("connect");
        sqlx::query("VACUUM (ANALYZE) wrangle.tasks")
            .execute(&pool)
            .await
            .expect("vacuum");
    }
}

async fn measure_level(args: &Args, store: &Arc<dyn Store>, url: &str, retained: usize) -> Level {
    let stats_ms = stats_call_ms(store).await;
    let mut progress = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        match wrangle::jobs::progress(store, PROBE).await {
            Ok(_) => progress.push(started.elapsed().as_secs_f64() * 1000.0),
            Err(err) => {
                // Shown as "failed" in the table: a figure, not a reason to stop.
                println!("   job progress failed: {err}");
                progress.push(f64::NAN);
            }
        }
    }
    progress.sort_by(f64::total_cmp);
    store
        .set_queue_paused(QUEUE, true)
        .await
        .expect("pause queue");
    enqueue(store, args.tasks).await;
    let (claim_complete, _) =
        end_to_end(store, &args.worker_url(url), args.tasks, args.workers, 100).await;
    let (mut starts, _) = latency(store, &args.worker_url(url), args.samples).await;
    starts.sort_by(f64::total_cmp);
    Level {
        retained,
        stats_ms,
        progress_ms: progress[2],
        claim_complete,
        start_p50_ms: starts
            .get(starts.len() / 2)
            .map_or(f64::NAN, |us| us / 1000.0),
    }
}

/// A row of the table: its name, how to read it from a level, and whether it is a rate.
type Figure = (String, fn(&Level) -> f64, bool);

fn print_levels(store: &str, args: &Args, levels: &[Level]) {
    let Some(base) = levels.first() else { return };
    let figures: [Figure; 4] = [
        ("queue_stats (ms)".into(), |l| l.stats_ms, false),
        (
            format!(
                "progress of a {}-block job (ms)",
                thousands(args.job_blocks as f64)
            ),
            |l| l.progress_ms,
            false,
        ),
        (
            "claim+complete (tasks/s)".into(),
            |l| l.claim_complete,
            true,
        ),
        ("submit-to-start p50 (ms)".into(), |l| l.start_p50_ms, false),
    ];
    let width = figures.iter().map(|f| f.0.len()).max().unwrap_or(0);
    println!();
    print!("{store:<9} {:<width$}", "figure");
    for level in levels {
        print!(
            "  {:>24}",
            format!("{} kept", thousands(level.retained as f64))
        );
    }
    println!();
    for (name, figure, rate) in &figures {
        print!("{store:<9} {name:<width$}");
        for level in levels {
            let value = figure(level);
            let shown = if value.is_nan() {
                "failed".to_string()
            } else if *rate {
                thousands(value)
            } else {
                format!("{value:.3}")
            };
            let cell = if std::ptr::eq(level, base) || value.is_nan() || figure(base).is_nan() {
                shown
            } else {
                format!("{shown} ({:.2}x)", value / figure(base))
            };
            print!("  {cell:>24}");
        }
        println!();
    }
}
