//! Store benchmarks for the server stores (run them with `bench/stores.sh`).
//!
//! For each store (PostgreSQL, Redis, MariaDB), on a throwaway server with durable settings
//! (PostgreSQL `fsync=on`; Redis AOF `appendfsync everysec`; InnoDB
//! `innodb_flush_log_at_trx_commit=1`), in one run:
//!
//! 1. the server's own ceiling, measured with its own tool (`pgbench`, `redis-benchmark`,
//!    `mariadb-slap`) against the same server, for comparison;
//! 2. a preload of `--completed` tasks (default 1,000,000) that really ran: enqueued,
//!    claimed and completed through the store in big batches, so that claims run against
//!    a table/keyspace full of finished tasks;
//! 3. per claim batch size (`--batches 100,1000`): bulk enqueue of `--tasks` no-op tasks
//!    in batches of 1000 (into a paused queue), then end to end: 2 worker processes
//!    (no-op Rust handler) start, the queue is resumed, and the clock stops when both
//!    together have recorded `--tasks` completions; round trips per task are every
//!    `Store` call of the workers (`CountingStore`) divided by the tasks;
//! 4. submit-to-start latency: one worker process waits for work; tasks are submitted one
//!    at a time and the handler reports how long after the submit call began it started
//!    (both clocks are the same machine's `CLOCK_REALTIME`).
//!
//! It prints one table per store: value, the ceiling it compares with, and the ratio.
//!
//! With `--retained LEVELS` it measures instead what finished tasks kept cost, on SQLite
//! as well (see [`retained`]).

mod retained;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::Utc;
use serde_json::{Value, json};
use wrangle::store::{ClaimRequest, Completion, CompletionStatus, CountingStore, Outcome};
use wrangle::{
    NewTask, OutcomeObserver, QueueFilter, Registry, Shutdown, Store, Worker, WorkerConfig,
};
use wrangle_testkit::{MariaDbServer, PostgresServer, RedisServer};

const QUEUE: &str = wrangle::DEFAULT_QUEUE;

#[derive(Debug, Clone)]
struct Args {
    stores: Vec<String>,
    tasks: usize,
    completed: usize,
    batches: Vec<usize>,
    samples: usize,
    ceiling_secs: u64,
    workers: usize,
    /// `--retained`: the retained-tasks levels to measure instead of the usual run.
    retained: Option<Vec<usize>>,
    job_blocks: usize,
    /// `--worker-query`: URL options added to the worker processes' store URL (say
    /// `pool_size=3`), to measure what they change.
    worker_query: Option<String>,
}

impl Args {
    /// The store URL the worker processes use: `url` with `--worker-query` added, and on
    /// PostgreSQL an `application_name` that tells their connections apart.
    fn worker_url(&self, url: &str) -> String {
        let mut query: Vec<&str> = self.worker_query.iter().map(String::as_str).collect();
        if url.starts_with("postgres") {
            query.push("application_name=wrangle-bench-worker");
        }
        if query.is_empty() {
            return url.to_string();
        }
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}{}", query.join("&"))
    }
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn number(args: &[String], name: &str, default: usize) -> usize {
    flag(args, name).map_or(default, |v| {
        v.replace(['_', ','], "")
            .parse()
            .unwrap_or_else(|_| panic!("{name} takes a number, not '{v}'"))
    })
}

fn parse_args(args: &[String]) -> Args {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "usage: stores [--store postgres,redis,mysql] [--tasks 200000] [--completed 1000000]\n\
             \x20             [--batches 100,1000] [--samples 300] [--ceiling-secs 5] [--workers 2]\n\
             \x20             [--worker-query pool_size=3]\n\
             \x20      stores --retained 0,1000000,10000000 [--store sqlite,postgres,redis,mysql]\n\
             \x20             [--job-blocks 1000000] [--tasks 200000] [--samples 300] [--workers 2]"
        );
        std::process::exit(0);
    }
    let retained: Option<Vec<usize>> = flag(args, "--retained").map(|levels| {
        levels
            .split(',')
            .map(|l| {
                l.replace('_', "")
                    .parse()
                    .expect("--retained takes numbers")
            })
            .collect()
    });
    let all_stores = if retained.is_some() {
        "sqlite,postgres,redis,mysql"
    } else {
        "postgres,redis"
    };
    Args {
        worker_query: flag(args, "--worker-query").map(str::to_owned),
        retained,
        job_blocks: number(args, "--job-blocks", 1_000_000),
        stores: flag(args, "--store")
            .unwrap_or(all_stores)
            .split(',')
            .map(str::to_owned)
            .collect(),
        tasks: number(args, "--tasks", 200_000),
        completed: number(args, "--completed", 1_000_000),
        batches: flag(args, "--batches")
            .unwrap_or("100,1000")
            .split(',')
            .map(|b| b.parse().expect("--batches takes numbers"))
            .collect(),
        samples: number(args, "--samples", 300),
        ceiling_secs: number(args, "--ceiling-secs", 5) as u64,
        workers: number(args, "--workers", 2),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("worker") {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(worker_process(
            &args[2],
            number(&args, "--batch", 100),
            number(&args, "--runners", 200),
        ));
        return;
    }
    let args = parse_args(&args);
    if let Some(levels) = &args.retained {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(retained::run(&args, levels));
        return;
    }
    println!(
        "wrangle store benchmark: {} tasks end to end per claim batch size, {} completed tasks \
         preloaded, {} worker processes (no-op Rust handler), {} CPUs",
        args.tasks,
        args.completed,
        args.workers,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut tables = Vec::new();
    for store in args.stores.clone() {
        let rows = match store.as_str() {
            "postgres" | "pg" => runtime.block_on(postgres(&args)),
            "redis" => runtime.block_on(redis(&args)),
            "mysql" | "mariadb" => runtime.block_on(mariadb(&args)),
            other => panic!("unknown store '{other}' (postgres, redis, mysql)"),
        };
        print_table(&rows);
        tables.push(rows);
    }
    if tables.len() > 1 {
        println!("\n=== all stores ===");
        for rows in &tables {
            print_table(rows);
        }
    }
}

// --- the table ----------------------------------------------------------------------------

struct Row {
    store: &'static str,
    metric: String,
    value: String,
    baseline: String,
    ratio: String,
}

fn row(store: &'static str, metric: impl Into<String>, value: String) -> Row {
    Row {
        store,
        metric: metric.into(),
        value,
        baseline: "-".into(),
        ratio: "-".into(),
    }
}

impl Row {
    fn against(mut self, baseline: &Ceiling, value: f64) -> Row {
        if let Some(b) = baseline.value {
            self.baseline = format!("{} {}", baseline.name, fmt_value(b, baseline.unit));
            self.ratio = format!("{:.2}x", value / b);
        } else {
            self.baseline = format!("{} (not measured)", baseline.name);
        }
        self
    }
}

fn print_table(rows: &[Row]) {
    let width = |f: fn(&Row) -> &str, min: usize| {
        rows.iter().map(|r| f(r).len()).max().unwrap_or(0).max(min)
    };
    let (m, v, b) = (
        width(|r| &r.metric, 6),
        width(|r| &r.value, 5),
        width(|r| &r.baseline, 8),
    );
    println!();
    println!(
        "{:<9} {:<m$}  {:>v$}  {:<b$}  {:>7}",
        "store", "metric", "value", "baseline (same run)", "ratio"
    );
    for r in rows {
        println!(
            "{:<9} {:<m$}  {:>v$}  {:<b$}  {:>7}",
            r.store, r.metric, r.value, r.baseline, r.ratio
        );
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Unit {
    PerSec,
    Ms,
}

fn fmt_value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::PerSec => format!("{}/s", thousands(v)),
        Unit::Ms => format!("{v:.3} ms"),
    }
}

fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One number measured with the server's own tool.
#[derive(Clone)]
struct Ceiling {
    name: String,
    value: Option<f64>,
    unit: Unit,
}

impl Ceiling {
    fn new(name: impl Into<String>, value: Option<f64>, unit: Unit) -> Self {
        Ceiling {
            name: name.into(),
            value,
            unit,
        }
    }

    fn rows(&self, store: &'static str) -> Row {
        row(
            store,
            format!("ceiling: {}", self.name),
            self.value
                .map_or("failed".into(), |v| fmt_value(v, self.unit)),
        )
    }
}

// --- per store ----------------------------------------------------------------------------

async fn postgres(args: &Args) -> Vec<Row> {
    const S: &str = "postgres";
    let server = PostgresServer::start_durable().expect("start PostgreSQL");
    let url = server.url();
    let store = wrangle::PostgresStore::connect(&url)
        .await
        .expect("connect PostgreSQL");
    let pool = store.pool().clone();
    let show = |setting: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!("SHOW {setting}")))
                .fetch_one(&pool)
                .await
                .unwrap_or_else(|e| e.to_string())
        }
    };
    println!(
        "\n== PostgreSQL {} at {url}: fsync={}, synchronous_commit={}, wal_level={}",
        show("server_version").await,
        show("fsync").await,
        show("synchronous_commit").await,
        show("wal_level").await,
    );
    let ceilings = pg_ceilings(&server, &pool, args.ceiling_secs).await;
    let vacuum = {
        let pool = pool.clone();
        move || {
            let pool = pool.clone();
            async move {
                // What autovacuum does within a minute of the preload in any deployment;
                // done here so the run does not depend on when autovacuum wakes up.
                sqlx::query("VACUUM (ANALYZE) wrangle.tasks")
                    .execute(&pool)
                    .await
                    .expect("vacuum");
            }
        }
    };
    let store: Arc<dyn Store> = Arc::new(store);
    // The server connections the worker processes hold while they run: what their hot
    // paths need (the pool opens a connection only when a call finds none idle).
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (pool, peak) = (pool.clone(), peak.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(n) = sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE application_name = 'wrangle-bench-worker'",
                )
                .fetch_one(&pool)
                .await
                {
                    peak.fetch_max(n as u64, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let m = measure(args, S, store, &url, Some(vacuum)).await;
    sampler.abort();
    let mut rows = report(S, args, &m, &ceilings);
    rows.push(row(
        S,
        format!(
            "peak server connections of the {} worker processes (LISTEN included)",
            args.workers
        ),
        peak.load(Ordering::Relaxed).to_string(),
    ));
    rows.extend(ceilings.all.iter().map(|c| c.rows(S)));
    drop(server);
    rows
}

struct Ceilings {
    enqueue: Ceiling,
    e2e: Ceiling,
    latency: Ceiling,
    all: Vec<Ceiling>,
}

async fn pg_ceilings(server: &PostgresServer, pool: &sqlx::PgPool, secs: u64) -> Ceilings {
    let port = server.port().to_string();
    let base = ["-h", "127.0.0.1", "-p", &port, "-U", "wrangle", "-n"];
    let init = Command::new("pgbench")
        .args(&base[..6])
        .args(["-i", "-q", "-s", "1", "postgres"])
        .output()
        .expect("run pgbench -i");
    assert!(
        init.status.success(),
        "pgbench -i: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    sqlx::query("CREATE TABLE bench_insert (id bigserial PRIMARY KEY, v int, p jsonb)")
        .execute(pool)
        .await
        .expect("create bench_insert");
    let dir = tempfile::tempdir().expect("temp dir");
    let script = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write pgbench script");
        path.to_str().expect("utf-8").to_owned()
    };
    let update100 = script(
        "update100.sql",
        "\\set a random(1, 99901)\n\
         UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid >= :a AND aid < :a + 100;\n",
    );
    let insert1000 = script(
        "insert1000.sql",
        "INSERT INTO bench_insert (v, p) SELECT g, '{\"i\": 1}' FROM generate_series(1, 1000) g;\n",
    );
    let secs = secs.to_string();
    let run = |extra: &[&str], clients: &str| -> (Option<f64>, Option<f64>) {
        let out = Command::new("pgbench")
            .args(base)
            .args(["-c", clients, "-j", clients, "-T", &secs])
            .args(extra)
            .arg("postgres")
            .output()
            .expect("run pgbench");
        let text = String::from_utf8_lossy(&out.stdout);
        let tps = text
            .lines()
            .find(|l| l.starts_with("tps = "))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|v| v.parse().ok());
        let latency = text
            .lines()
            .find(|l| l.starts_with("latency average = "))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse().ok());
        if tps.is_none() {
            eprintln!(
                "pgbench {extra:?} failed: {}{}",
                text,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        (tps, latency)
    };
    let (update_tps, _) = run(&["-N"], "2");
    let (select_tps, select_latency) = run(&["-S"], "1");
    let (batch_tps, _) = run(&["-f", &update100], "2");
    let (insert_tps, _) = run(&["-f", &insert1000], "1");
    let update = Ceiling::new("pgbench -N, 2 clients (tx/s)", update_tps, Unit::PerSec);
    let select = Ceiling::new("pgbench -S, 1 client (tx/s)", select_tps, Unit::PerSec);
    let select_lat = Ceiling::new(
        "pgbench -S, 1 client, latency avg",
        select_latency,
        Unit::Ms,
    );
    let batch = Ceiling::new(
        "pgbench UPDATE 100 rows/tx, 2 clients (rows/s)",
        batch_tps.map(|t| t * 100.0),
        Unit::PerSec,
    );
    let insert = Ceiling::new(
        "pgbench INSERT 1000 rows/tx, 1 client (rows/s)",
        insert_tps.map(|t| t * 1000.0),
        Unit::PerSec,
    );
    Ceilings {
        enqueue: insert.clone(),
        e2e: batch.clone(),
        latency: select_lat.clone(),
        all: vec![update, select, select_lat, batch, insert],
    }
}

async fn redis(args: &Args) -> Vec<Row> {
    const S: &str = "redis";
    let server = RedisServer::start().expect("start Redis");
    let url = server.url();
    let port = server.port().to_string();
    let cli = |words: &[&str]| -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port])
            .args(words)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .replace('\n', "=")
    };
    // The testkit server already runs with AOF; make sure (and say so).
    cli(&["CONFIG", "SET", "appendonly", "yes"]);
    cli(&["CONFIG", "SET", "appendfsync", "everysec"]);
    println!(
        "\n== Redis {} at {url}: {}, {}, save='{}'",
        cli(&["INFO", "server"])
            .split('=')
            .find_map(|l| l.trim().strip_prefix("redis_version:").map(str::to_owned))
            .unwrap_or_default(),
        cli(&["CONFIG", "GET", "appendonly"]),
        cli(&["CONFIG", "GET", "appendfsync"]),
        cli(&["CONFIG", "GET", "save"])
            .strip_prefix("save=")
            .unwrap_or_default(),
    );
    let ceilings = redis_ceilings(&port, args.ceiling_secs);
    cli(&["FLUSHALL"]);
    let store: Arc<dyn Store> = Arc::new(
        wrangle::RedisStore::connect(&url)
            .await
            .expect("connect Redis"),
    );
    let m = measure(args, S, store, &url, None::<fn() -> std::future::Ready<()>>).await;
    println!(
        "   redis memory after the run: {}",
        cli(&["INFO", "memory"])
            .split('=')
            .find_map(|l| l
                .trim()
                .strip_prefix("used_memory_human:")
                .map(str::to_owned))
            .unwrap_or_default()
    );
    let mut rows = report(S, args, &m, &ceilings);
    rows.extend(ceilings.all.iter().map(|c| c.rows(S)));
    drop(server);
    rows
}

fn redis_ceilings(port: &str, secs: u64) -> Ceilings {
    // About `secs` seconds per test at ~100k-1M requests/s.
    let n = |per_sec: u64| (per_sec * secs).to_string();
    let run = |extra: &[&str]| -> Vec<(String, f64, f64)> {
        let out = Command::new("redis-benchmark")
            .args(["-h", "127.0.0.1", "-p", port, "--csv"])
            .args(extra)
            .output()
            .expect("run redis-benchmark");
        let text = String::from_utf8_lossy(&out.stdout);
        // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",...
        text.lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split("\",\"").map(|s| s.trim_matches('"')).collect();
                Some((
                    f.first()?.to_string(),
                    f.get(1)?.parse().ok()?,
                    f.get(4)?.parse().ok()?,
                ))
            })
            .collect()
    };
    let find = |results: &[(String, f64, f64)], test: &str| {
        results.iter().find(|r| r.0.starts_with(test)).cloned()
    };
    let pipelined = run(&["-t", "set,get,lpush", "-P", "16", "-n", &n(300_000)]);
    let plain = run(&["-t", "set,get,lpush", "-n", &n(60_000)]);
    let single = run(&["-t", "get", "-c", "1", "-n", &n(15_000)]);
    let eval = run(&["-n", &n(60_000), "eval", "return 1", "0"]);
    let eval_hset = run(&[
        "-n",
        &n(40_000),
        "-r",
        "1000000",
        "eval",
        "redis.call('HSET', KEYS[1], 'state', 'running', 'worker', 'w'); return 1",
        "1",
        "task:__rand_int__",
    ]);
    // What one task's record costs by itself: an HSET of the 10 fields enqueue writes,
    // pipelined, no script and no index. Enqueue cannot beat it.
    let record = run(&[
        "-P",
        "16",
        "-r",
        "100000000",
        "-n",
        &n(100_000),
        "hset",
        "task:__rand_int__",
        "id",
        "123456",
        "queue",
        "default",
        "kind",
        "noop",
        "payload",
        "{\"i\":1}",
        "priority",
        "0",
        "state",
        "available",
        "run_at",
        "1732380000000",
        "attempt",
        "0",
        "max_attempts",
        "3",
        "created_at",
        "1732380000000",
    ]);
    let record = Ceiling::new(
        "redis-benchmark HSET 10-field task record -P 16",
        record.first().map(|r| r.1),
        Unit::PerSec,
    );
    let mut all = Vec::new();
    for (label, results) in [("-P 16", &pipelined), ("50 clients", &plain)] {
        for test in ["SET", "GET", "LPUSH"] {
            all.push(Ceiling::new(
                format!("redis-benchmark {test} {label}"),
                find(results, test).map(|r| r.1),
                Unit::PerSec,
            ));
        }
    }
    let get1 = find(&single, "GET");
    all.push(Ceiling::new(
        "redis-benchmark GET 1 client",
        get1.as_ref().map(|r| r.1),
        Unit::PerSec,
    ));
    let latency = Ceiling::new(
        "redis-benchmark GET 1 client, p50",
        get1.map(|r| r.2),
        Unit::Ms,
    );
    all.push(latency.clone());
    all.push(Ceiling::new(
        "redis-benchmark EVAL 'return 1', 50 clients",
        eval.first().map(|r| r.1),
        Unit::PerSec,
    ));
    let hset = Ceiling::new(
        "redis-benchmark EVAL HSET 1 key, 50 clients",
        eval_hset.first().map(|r| r.1),
        Unit::PerSec,
    );
    all.push(hset);
    all.push(record);
    let (enqueue, e2e) = redis_hot_path_ceilings(port, 50_000 * secs as usize);
    all.push(enqueue.clone());
    all.push(e2e.clone());
    Ceilings {
        enqueue,
        e2e,
        latency,
        all,
    }
}

/// The commands the store's hot path sends for a task, as plain commands piped by
/// `redis-cli --pipe` (no Lua, no wrangle client, one connection): what the same work
/// costs this server at best. Enqueue: per 1000 tasks a MULTI with each task's HSET,
/// one ZADD to the task index and one to the ready set, EXEC (what `bulk.rs` sends).
/// Claim and complete: per 100 tasks what `claim.lua` and `complete.lua` run, i.e.
/// ZRANGE of the ready set, per task HMGET + HSET, ZREMRANGEBYRANK, ZADD of the running
/// set, counts; then per task HMGET + HSET + PEXPIRE, ZREM running, ZADD finished,
/// counts, PUBLISH. Returns the two rates as ceilings.
fn redis_hot_path_ceilings(port: &str, tasks: usize) -> (Ceiling, Ceiling) {
    fn resp<S: AsRef<str>>(out: &mut Vec<u8>, args: &[S]) {
        write!(out, "*{}\r\n", args.len()).unwrap();
        for arg in args {
            let arg = arg.as_ref();
            write!(out, "${}\r\n{arg}\r\n", arg.len()).unwrap();
        }
    }
    let now = 1_767_225_600_000_i64;
    let key = |id: usize| format!("{{hot}}:task:{id}");
    let ready = "{hot}:queue:default:ready";
    let counts = "{hot}:queue:default:counts";
    let mut enqueue = Vec::new();
    for block in (1..=tasks).step_by(1000) {
        let ids: Vec<usize> = (block..(block + 1000).min(tasks + 1)).collect();
        resp(&mut enqueue, &["MULTI"]);
        let mut index = vec!["ZADD".to_string(), "{hot}:tasks".to_string()];
        let mut waiting = vec!["ZADD".to_string(), ready.to_string()];
        for &id in &ids {
            let (id_text, payload) = (id.to_string(), format!("{{\"i\":{id}}}"));
            let now_text = now.to_string();
            resp(
                &mut enqueue,
                &[
                    "HSET",
                    &key(id),
                    "id",
                    &id_text,
                    "queue",
                    "default",
                    "kind",
                    "noop",
                    "payload",
                    &payload,
                    "priority",
                    "0",
                    "state",
                    "available",
                    "run_at",
                    &now_text,
                    "attempt",
                    "0",
                    "max_attempts",
                    "3",
                    "created_at",
                    &now_text,
                ],
            );
            index.extend([id_text.clone(), id_text]);
            waiting.extend(["0".to_string(), format!("{now:015}:{id:016}")]);
        }
        resp(&mut enqueue, &index);
        resp(&mut enqueue, &waiting);
        resp(
            &mut enqueue,
            &["HINCRBY", counts, "available", &ids.len().to_string()],
        );
        resp(&mut enqueue, &["EXEC"]);
    }
    let mut e2e = Vec::new();
    let lease = (now + 30_000).to_string();
    for block in (1..=tasks).step_by(100) {
        let ids: Vec<usize> = (block..(block + 100).min(tasks + 1)).collect();
        let n = ids.len().to_string();
        resp(&mut e2e, &["ZRANGE", ready, "0", "99", "WITHSCORES"]);
        let mut running = vec!["ZADD".to_string(), "{hot}:running".to_string()];
        for &id in &ids {
            resp(
                &mut e2e,
                &[
                    "HMGET",
                    &key(id),
                    "attempt",
                    "kind",
                    "payload",
                    "max_attempts",
                    "timeout",
                    "job",
                    "state",
                ],
            );
            resp(
                &mut e2e,
                &[
                    "HSET",
                    &key(id),
                    "state",
                    "running",
                    "attempt",
                    "1",
                    "worker",
                    "w1",
                    "lease_until",
                    &lease,
                    "started_at",
                    "1767225600000",
                ],
            );
            running.extend([lease.clone(), id.to_string()]);
        }
        resp(&mut e2e, &["ZREMRANGEBYRANK", ready, "0", "99"]);
        resp(&mut e2e, &running);
        resp(
            &mut e2e,
            &["HINCRBY", counts, "available", &format!("-{n}")],
        );
        resp(&mut e2e, &["HINCRBY", counts, "running", &n]);
        let mut unrun = vec!["ZREM".to_string(), "{hot}:running".to_string()];
        let mut finished = vec!["ZADD".to_string(), "{hot}:finished".to_string()];
        for &id in &ids {
            resp(
                &mut e2e,
                &[
                    "HMGET",
                    &key(id),
                    "state",
                    "attempt",
                    "worker",
                    "unique_key",
                    "error",
                    "queue",
                ],
            );
            resp(
                &mut e2e,
                &[
                    "HSET",
                    &key(id),
                    "state",
                    "completed",
                    "result",
                    "null",
                    "finished_at",
                    "1767225600005",
                ],
            );
            resp(&mut e2e, &["PEXPIRE", &key(id), "604800000"]);
            unrun.push(id.to_string());
            finished.extend(["1767225600005".to_string(), format!("{id}:c:default")]);
        }
        resp(&mut e2e, &unrun);
        resp(&mut e2e, &finished);
        resp(&mut e2e, &["HINCRBY", counts, "running", &format!("-{n}")]);
        resp(&mut e2e, &["HINCRBY", counts, "completed", &n]);
        resp(&mut e2e, &["PUBLISH", "{hot}:wake:outcomes", "1"]);
    }
    let pipe = |commands: &[u8]| -> Option<f64> {
        let mut child = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", port, "--pipe"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .ok()?;
        let started = Instant::now();
        child.stdin.take()?.write_all(commands).ok()?;
        child
            .wait()
            .ok()?
            .success()
            .then(|| tasks as f64 / started.elapsed().as_secs_f64())
    };
    let enqueue = pipe(&enqueue);
    let e2e = pipe(&e2e);
    (
        Ceiling::new(
            "redis-cli --pipe: enqueue's commands (HSET, 2 ZADD / task)",
            enqueue,
            Unit::PerSec,
        ),
        Ceiling::new(
            "redis-cli --pipe: claim + complete's commands, no Lua",
            e2e,
            Unit::PerSec,
        ),
    )
}

async fn mariadb(args: &Args) -> Vec<Row> {
    const S: &str = "mariadb";
    let server = MariaDbServer::start().expect("start MariaDB");
    let url = server.url();
    println!("\n== MariaDB at {url} (InnoDB, innodb_flush_log_at_trx_commit=1)");
    let port = server.port().to_string();
    let slap = |query: &str, concurrency: &str, iterations: &str| -> Option<f64> {
        let out = Command::new("mariadb-slap")
            .args([
                "-h",
                "127.0.0.1",
                "-P",
                &port,
                "-u",
                "root",
                "--create-schema=slap",
            ])
            .args(["--concurrency", concurrency, "--iterations", "1"])
            .args(["--number-of-queries", iterations])
            .args(["--query", query])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let secs: f64 = text
            .lines()
            .find(|l| l.contains("Average number of seconds to run all queries"))?
            .split(':')
            .nth(1)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        Some(iterations.parse::<f64>().ok()? / secs)
    };
    let setup = "CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY, v int) ENGINE=InnoDB; \
                 INSERT IGNORE INTO t SELECT seq, 0 FROM seq_1_to_100000;";
    let _ = Command::new("mariadb")
        .args(["-h", "127.0.0.1", "-P", &port, "-u", "root"])
        .args([
            "-e",
            &format!("CREATE DATABASE IF NOT EXISTS slap; USE slap; {setup}"),
        ])
        .output();
    let n = (args.ceiling_secs * 1000).to_string();
    let update = Ceiling::new(
        "mariadb-slap 1-row UPDATE autocommit, 2 clients (tx/s)",
        slap(
            // RAND() in a derived table is evaluated once; in WHERE it would be evaluated
            // per row and turn the update into a table scan.
            "UPDATE t JOIN (SELECT 1 + FLOOR(RAND() * 100000) AS a) AS r ON t.id = r.a \
             SET t.v = t.v + 1",
            "2",
            &n,
        ),
        Unit::PerSec,
    );
    let batch = Ceiling::new(
        "mariadb-slap UPDATE 100 rows/tx, 2 clients (rows/s)",
        slap(
            "UPDATE t JOIN (SELECT 1 + FLOOR(RAND() * 99900) AS a) AS r \
             ON t.id BETWEEN r.a AND r.a + 99 SET t.v = t.v + 1",
            "2",
            &n,
        )
        .map(|t| t * 100.0),
        Unit::PerSec,
    );
    let insert = Ceiling::new(
        "mariadb-slap INSERT 1000 rows/tx, 1 client (rows/s)",
        slap(
            // Random 1000-id blocks above the updated range; IGNORE: two may collide.
            "INSERT IGNORE INTO t SELECT 100000 + seq + FLOOR(RAND() * 1000000) * 1000, 0 \
             FROM seq_1_to_1000",
            "1",
            &(args.ceiling_secs * 100).to_string(),
        )
        .map(|t| t * 1000.0),
        Unit::PerSec,
    );
    let ceilings = Ceilings {
        enqueue: insert.clone(),
        e2e: batch.clone(),
        latency: Ceiling::new("-", None, Unit::Ms),
        all: vec![update, batch, insert],
    };
    let store: Arc<dyn Store> = wrangle::connect(&url).await.expect("connect MariaDB");
    let m = measure(args, S, store, &url, None::<fn() -> std::future::Ready<()>>).await;
    let mut rows = report(S, args, &m, &ceilings);
    rows.extend(ceilings.all.iter().map(|c| c.rows(S)));
    drop(server);
    rows
}

// --- the measurements ---------------------------------------------------------------------

struct Measured {
    preload: Option<f64>,
    /// Per batch size: enqueue tasks/s, end-to-end tasks/s, round trips per task.
    runs: Vec<(usize, f64, f64, f64)>,
    latency_us: Vec<f64>,
    /// How long each of those submit calls took (the store's own commit).
    submit_us: Vec<f64>,
    /// Median time of one `queue_stats` call (what `wrangle status`, `top` and
    /// `--autoscale` run every interval) with every task of the run kept, in ms.
    stats_ms: f64,
}

fn report(store: &'static str, args: &Args, m: &Measured, c: &Ceilings) -> Vec<Row> {
    let mut rows = Vec::new();
    if let Some(rate) = m.preload {
        rows.push(row(
            store,
            format!(
                "preload {} completed tasks",
                thousands(args.completed as f64)
            ),
            fmt_value(rate, Unit::PerSec),
        ));
    }
    for (i, (batch, enqueue, e2e, trips)) in m.runs.iter().enumerate() {
        rows.push(
            row(
                store,
                format!("enqueue (batch 1000), run {}", i + 1),
                fmt_value(*enqueue, Unit::PerSec),
            )
            .against(&c.enqueue, *enqueue),
        );
        rows.push(
            row(
                store,
                format!("end to end, {} workers, claim batch {batch}", args.workers),
                fmt_value(*e2e, Unit::PerSec),
            )
            .against(&c.e2e, *e2e),
        );
        rows.push(row(
            store,
            format!("round trips/task, claim batch {batch}"),
            format!("{trips:.4}"),
        ));
    }
    if !m.latency_us.is_empty() {
        let mut sorted = m.latency_us.clone();
        sorted.sort_by(f64::total_cmp);
        let pct = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize] / 1000.0;
        let n = sorted.len();
        let mut submit = m.submit_us.clone();
        submit.sort_by(f64::total_cmp);
        rows.push(row(
            store,
            "  of which the submit call itself, p50".to_string(),
            fmt_value(submit[submit.len() / 2] / 1000.0, Unit::Ms),
        ));
        rows.push(
            row(
                store,
                format!("submit-to-start p50 ({n} samples)"),
                fmt_value(pct(0.5), Unit::Ms),
            )
            .against(&c.latency, pct(0.5)),
        );
        rows.push(row(
            store,
            format!("submit-to-start p99 ({n} samples)"),
            fmt_value(pct(0.99), Unit::Ms),
        ));
        rows.push(row(
            store,
            "submit-to-start max".to_string(),
            fmt_value(pct(1.0), Unit::Ms),
        ));
    }
    rows.push(row(
        store,
        format!(
            "queue_stats call, {} tasks kept",
            thousands((args.completed + args.tasks * args.batches.len()) as f64)
        ),
        fmt_value(m.stats_ms, Unit::Ms),
    ));
    rows
}

async fn measure<F, Fut>(
    args: &Args,
    name: &str,
    store: Arc<dyn Store>,
    url: &str,
    after_preload: Option<F>,
) -> Measured
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let preload = if args.completed > 0 {
        let started = Instant::now();
        preload(&store, args.completed).await;
        let rate = args.completed as f64 / started.elapsed().as_secs_f64();
        println!(
            "   {name}: preloaded {} completed tasks in {:.1}s",
            args.completed,
            started.elapsed().as_secs_f64()
        );
        if let Some(f) = &after_preload {
            let started = Instant::now();
            f().await;
            println!(
                "   {name}: VACUUM ANALYZE took {:.1}s",
                started.elapsed().as_secs_f64()
            );
        }
        Some(rate)
    } else {
        None
    };
    let mut runs = Vec::new();
    for &batch in &args.batches {
        store
            .set_queue_paused(QUEUE, true)
            .await
            .expect("pause queue");
        let enqueue = enqueue(&store, args.tasks).await;
        let (e2e, trips) = end_to_end(
            &store,
            &args.worker_url(url),
            args.tasks,
            args.workers,
            batch,
        )
        .await;
        println!(
            "   {name}: claim batch {batch}: enqueue {}/s, end to end {}/s, {trips:.4} round trips/task",
            thousands(enqueue),
            thousands(e2e)
        );
        runs.push((batch, enqueue, e2e, trips));
    }
    let (latency_us, submit_us) = latency(&store, &args.worker_url(url), args.samples).await;
    let stats_ms = stats_call_ms(&store).await;
    Measured {
        preload,
        runs,
        latency_us,
        submit_us,
        stats_ms,
    }
}

/// The median of five `queue_stats` calls, in ms.
async fn stats_call_ms(store: &Arc<dyn Store>) -> f64 {
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        store.queue_stats(Utc::now()).await.expect("queue_stats");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    times[2]
}

fn noop_tasks(n: usize, start: usize) -> Vec<NewTask> {
    (start..start + n)
        .map(|i| NewTask::new("noop", json!({ "i": i })))
        .collect()
}

async fn enqueue(store: &Arc<dyn Store>, n: usize) -> f64 {
    let tasks = noop_tasks(n, 0);
    let started = Instant::now();
    for chunk in tasks.chunks(1000) {
        store
            .enqueue_batch(chunk.to_vec(), Utc::now())
            .await
            .expect("enqueue");
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// `n` tasks enqueued, claimed and completed successfully through the store in batches of
/// 5000, two loops at once: the finished tasks a long-running deployment accumulates.
async fn preload(store: &Arc<dyn Store>, n: usize) {
    run_through(store, n, "preload", true).await
}

/// `n` tasks of `queue` claimed and completed successfully in batches of 5000, two loops
/// at once; with `enqueue`, each loop first enqueues the tasks it then claims, else the
/// claims make them (blocks of a range job on `queue`).
async fn run_through(store: &Arc<dyn Store>, n: usize, queue: &'static str, enqueue: bool) {
    const BATCH: usize = 5000;
    let next = Arc::new(AtomicU64::new(0));
    let loops: Vec<_> = (0..2)
        .map(|l| {
            let store = store.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let worker = format!("preload-{l}");
                loop {
                    let start = next.fetch_add(BATCH as u64, Ordering::Relaxed) as usize;
                    if start >= n {
                        break;
                    }
                    let count = BATCH.min(n - start);
                    if enqueue {
                        let tasks = noop_tasks(count, start)
                            .into_iter()
                            .map(|t| t.queue(queue))
                            .collect();
                        store
                            .enqueue_batch(tasks, Utc::now())
                            .await
                            .expect("preload enqueue");
                    }
                    let mut left = count;
                    let mut empty = 0;
                    while left > 0 {
                        let claimed = store
                            .claim_batch(ClaimRequest {
                                worker: worker.clone(),
                                queues: QueueFilter::Only(vec![queue.into()]),
                                limit: left,
                                lease: Duration::from_secs(600),
                                now: Utc::now(),
                            })
                            .await
                            .expect("preload claim");
                        // A claim's `now` is taken before it waits for the store, so it
                        // can miss tasks the other loop enqueued meanwhile (their run_at is
                        // later) after that loop claimed this one's: ask again.
                        if claimed.is_empty() {
                            empty += 1;
                            assert!(empty < 100, "preload: nothing to claim, {left} left");
                            continue;
                        }
                        empty = 0;
                        left = left.saturating_sub(claimed.len());
                        let completions: Vec<Completion> = claimed
                            .iter()
                            .map(|t| {
                                t.completion(
                                    &worker,
                                    Outcome::Succeeded {
                                        result: Value::Null,
                                    },
                                )
                            })
                            .collect();
                        let statuses = store
                            .complete_batch(&completions, Utc::now())
                            .await
                            .expect("preload complete");
                        assert!(
                            statuses
                                .iter()
                                .all(|s| matches!(s, CompletionStatus::Applied(_))),
                            "preload completion was stale"
                        );
                    }
                }
            })
        })
        .collect();
    for l in loops {
        l.await.expect("preload loop");
    }
}

/// A worker process and what it reports on its stdout, one line at a time.
struct WorkerProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
    done: Arc<AtomicU64>,
}

fn spawn_worker(url: &str, batch: usize, runners: usize) -> WorkerProcess {
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .args(["worker", url])
        .args(["--batch", &batch.to_string()])
        .args(["--runners", &runners.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn worker");
    let stdout = child.stdout.take().expect("worker stdout");
    let (tx, lines) = mpsc::channel();
    let done = Arc::new(AtomicU64::new(0));
    let counter = done.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("done ") {
                counter.store(n.parse().unwrap_or(0), Ordering::Relaxed);
            } else if tx.send(line).is_err() {
                break;
            }
        }
    });
    WorkerProcess { child, lines, done }
}

impl WorkerProcess {
    fn expect_line(&self, prefix: &str, timeout: Duration) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(timeout)
                .unwrap_or_else(|e| panic!("worker: no '{prefix}' line: {e}"));
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.trim().to_owned();
            }
        }
    }

    /// SIGTERM, then the worker's store calls from its last line.
    fn stop(mut self) -> u64 {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let report = self.expect_line("report ", Duration::from_secs(60));
        let _ = self.child.wait();
        let report: Value = serde_json::from_str(&report).expect("worker report");
        report["calls"].as_u64().unwrap_or(0)
    }
}

/// Starts `processes` workers, resumes the paused queue and waits for `n` completions.
async fn end_to_end(
    store: &Arc<dyn Store>,
    url: &str,
    n: usize,
    processes: usize,
    batch: usize,
) -> (f64, f64) {
    let workers: Vec<_> = (0..processes)
        .map(|_| spawn_worker(url, batch, 2 * batch))
        .collect();
    for w in &workers {
        w.expect_line("ready", Duration::from_secs(60));
    }
    // Let them register and go to sleep on the empty (paused) queue.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    store
        .set_queue_paused(QUEUE, false)
        .await
        .expect("resume queue");
    let deadline = Instant::now() + Duration::from_secs(600);
    while workers
        .iter()
        .map(|w| w.done.load(Ordering::Relaxed))
        .sum::<u64>()
        < n as u64
    {
        assert!(Instant::now() < deadline, "end to end: timed out");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let calls: u64 = workers.into_iter().map(WorkerProcess::stop).sum();
    (n as f64 / elapsed, calls as f64 / n as f64)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64
}

/// Submit-to-start latency in microseconds, one task at a time to an idle worker, and
/// how long each submit call took.
async fn latency(store: &Arc<dyn Store>, url: &str, samples: usize) -> (Vec<f64>, Vec<f64>) {
    if samples == 0 {
        return (Vec::new(), Vec::new());
    }
    let worker = spawn_worker(url, 100, 200);
    worker.expect_line("ready", Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut out = Vec::with_capacity(samples);
    let mut submits = Vec::with_capacity(samples);
    for i in 0..samples + 10 {
        // The worker is back to waiting: its claim came back short and it sleeps on the
        // store's notification (the idle recheck is 250 ms, far above what is measured).
        tokio::time::sleep(Duration::from_millis(5 + (i % 7) as u64)).await;
        let submitted = now_ns();
        store
            .enqueue_batch(
                vec![NewTask::new("latency", json!({ "t": submitted }))],
                Utc::now(),
            )
            .await
            .expect("submit");
        let submit_ns = now_ns() - submitted;
        let ns: f64 = worker
            .expect_line("lat ", Duration::from_secs(10))
            .parse()
            .expect("latency line");
        if i >= 10 {
            // The first few warm up connections and caches.
            out.push(ns / 1000.0);
            submits.push(submit_ns as f64 / 1000.0);
        }
    }
    worker.stop();
    (out, submits)
}

// --- the worker process -------------------------------------------------------------------

#[derive(Default)]
struct Done(AtomicU64);

impl OutcomeObserver for Done {
    fn recorded(&self, _completion: &Completion, status: CompletionStatus) {
        if matches!(status, CompletionStatus::Applied(_)) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A worker process: no-op handlers, counts its store calls. Prints `ready`, then `done N`
/// (completions recorded so far) every 2 ms while it changes, `lat NS` for each latency
/// task as its handler starts, and `report {...}` when SIGTERM has stopped it.
async fn worker_process(url: &str, batch: usize, runners: usize) {
    let inner = wrangle::connect(url).await.expect("worker connect");
    let store = Arc::new(CountingStore::new(inner));
    let stdout = Arc::new(Mutex::new(std::io::stdout()));
    let mut registry = Registry::new();
    registry.handle("noop", |_ctx, _payload| async {
        Ok::<_, String>(Value::Null)
    });
    {
        let stdout = stdout.clone();
        registry.handle("latency", move |_ctx, payload| {
            let started = now_ns();
            let submitted = payload["t"].as_u64().unwrap_or(started);
            let stdout = stdout.clone();
            async move {
                let mut out = stdout.lock().expect("stdout");
                let _ = writeln!(out, "lat {}", started.saturating_sub(submitted));
                let _ = out.flush();
                Ok::<_, String>(Value::Null)
            }
        });
    }
    let done = Arc::new(Done::default());
    {
        let done = done.clone();
        let stdout = stdout.clone();
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_millis(2)).await;
                let now = done.0.load(Ordering::Relaxed);
                if now != last {
                    last = now;
                    let mut out = stdout.lock().expect("stdout");
                    let _ = writeln!(out, "done {now}");
                    let _ = out.flush();
                }
            }
        });
    }
    let mut config = WorkerConfig::new();
    config.runners = runners;
    config.batch_size = batch;
    config.name = format!("bench-{}", std::process::id());
    let shutdown = Shutdown::new();
    let graceful = shutdown.graceful.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal");
        term.recv().await;
        graceful.cancel();
    });
    {
        let mut out = stdout.lock().expect("stdout");
        let _ = writeln!(out, "ready");
        let _ = out.flush();
    }
    let report = Worker::new(store.clone(), registry, config)
        .with_observer(done.clone())
        .run(shutdown)
        .await
        .expect("worker");
    let mut out = stdout.lock().expect("stdout");
    let _ = writeln!(
        out,
        "report {}",
        json!({"calls": store.calls(), "succeeded": report.succeeded})
    );
    let _ = out.flush();
}
