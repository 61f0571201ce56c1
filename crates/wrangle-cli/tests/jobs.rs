//! End-to-end tests of `wrangle job` (DScript's range runs) through the real binary, with
//! real `wrangle worker --exec` processes, on the embedded SQLite store and on throwaway
//! PostgreSQL, Redis and MariaDB servers (`wrangle-testkit`):
//!
//! - a job over 0..1,000,000 in blocks of 1000 run by 3 worker processes, one killed with
//!   kill -9 midway: every id is processed (side effects counted), the job ends 100% with
//!   no failed block, and `job status` agrees;
//! - creating a job over 10^12 ids is one record (no task) and takes well under 100 ms;
//! - a block that always fails ends dead, the job reports it, `job retry` runs only it;
//! - `job status --follow` draws a live bar with rate and ETA on a terminal; `--json`
//!   gives the same numbers as the human report; list jobs; bad input exits 2;
//! - the other long commands (`submit --batch`, `job create --items`, `tasks retry
//!   --dead`, `submit --wait`) draw their progress on a terminal, and nothing off one.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Sandbox, signal, text};
use wrangle_testkit::{MariaDbServer, PostgresServer, RedisServer, or_skip};

/// The `(start, end)` blocks a handler recorded, one `START END` line each.
fn recorded_blocks(sandbox: &Sandbox, file: &str) -> Vec<(i64, i64)> {
    std::fs::read_to_string(sandbox.path(file))
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let (start, end) = line.split_once(' ').expect("START END");
            (start.parse().unwrap(), end.parse().unwrap())
        })
        .collect()
}

/// A handler appending `START END` to FILE after `sleep` seconds (one short write, so
/// lines from several processes never mix), failing while the file `fail-START` exists.
fn recording_handler(file: &str, sleep: &str) -> String {
    format!(
        "sh -c 'sleep {sleep}; [ ! -e fail-$WRANGLE_START ] || exit 3; echo $WRANGLE_START $WRANGLE_END >> {file}'"
    )
}

// --- 1,000,000 ids, 3 workers, one killed -------------------------------------------------

/// The issue's scenario on one store: see the module documentation.
fn three_workers_one_killed_process_every_id(url: &str) {
    let mut sandbox = Sandbox::on(url);
    sandbox.ok(&[
        "job",
        "create",
        "backfill",
        "--range",
        "0..1000000",
        "--block",
        "1000",
        "--kind",
        "scan",
        "--retries",
        "3",
    ]);
    // w1 is the one killed: its blocks take 5 s, so it surely holds some when it dies
    // (its orphaned handlers may still record them: at least once, never lost).
    for (name, seconds) in [("w1", "5"), ("w2", "0.01"), ("w3", "0.01")] {
        let handler = recording_handler("effects", seconds);
        sandbox.spawn_worker(
            name,
            &[
                "--exec",
                &handler,
                "-n",
                "2",
                "--lease",
                "2s",
                "--backoff",
                "100ms",
            ],
        );
    }
    // Kill w1 midway, while it holds blocks.
    let started = Instant::now();
    loop {
        let progress = sandbox.json(&["job", "status", "backfill"]);
        let done = progress["done"]["blocks"].as_u64().unwrap();
        let holding = progress["workers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["worker"] == "w1" && w["running"].as_u64().unwrap() > 0);
        if done >= 250 && holding {
            assert!(
                done < 900,
                "the job nearly finished before the kill: {progress}"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "w1 never held blocks midway: {progress}\n{}",
            sandbox.worker_logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&sandbox.workers[0], nix::sys::signal::Signal::SIGKILL);
    let _ = sandbox.workers[0].wait();

    assert_eq!(sandbox.follow("backfill", Duration::from_secs(300)), 0);
    sandbox.stop_workers();

    // Every id was processed: the recorded blocks tile 0..1,000,000 (a block the killed
    // worker was running may have been recorded twice).
    let mut blocks = recorded_blocks(&sandbox, "effects");
    blocks.sort_unstable();
    blocks.dedup();
    assert_eq!(blocks.len(), 1000, "distinct blocks processed");
    let mut next = 0;
    for (start, end) in &blocks {
        assert_eq!(*start, next, "a gap or overlap before block {start}");
        next = *end;
    }
    assert_eq!(next, 1_000_000);

    let progress = sandbox.json(&["job", "status", "backfill"]);
    assert_eq!(progress["status"], "completed", "{progress}");
    assert_eq!(progress["done"]["ids"], 1_000_000, "{progress}");
    assert_eq!(progress["done"]["blocks"], 1000, "{progress}");
    assert_eq!(progress["failed"]["blocks"], 0, "{progress}");
    assert!((progress["job"]["cursor"].as_i64().unwrap()) == 1_000_000);
    // The killed worker's blocks were rescued after its lease expired and rerun elsewhere.
    let tasks = sandbox.json(&["tasks", "list", "--job", "backfill", "--limit", "2000"]);
    let rescued = tasks
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            t["attempts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["outcome"] == "lease expired")
        })
        .count();
    assert!(rescued >= 1, "no block of the killed worker was rescued");
    let shares: Vec<&str> = progress["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["worker"].as_str().unwrap())
        .collect();
    assert!(
        shares.contains(&"w2") && shares.contains(&"w3"),
        "{progress}"
    );
    eprintln!(
        "{url}: 1000 blocks, {rescued} rescued, {:?}",
        started.elapsed()
    );
}

#[test]
fn sqlite_range_job_survives_a_worker_killed_with_kill_9() {
    let sandbox = Sandbox::sqlite();
    three_workers_one_killed_process_every_id(sandbox.store());
}

#[test]
fn postgres_range_job_survives_a_worker_killed_with_kill_9() {
    let Some(server) = or_skip(PostgresServer::start()) else {
        return;
    };
    three_workers_one_killed_process_every_id(&server.url());
}

#[test]
fn redis_range_job_survives_a_worker_killed_with_kill_9() {
    let Some(server) = or_skip(RedisServer::start()) else {
        return;
    };
    three_workers_one_killed_process_every_id(&server.url());
}

#[test]
fn mariadb_range_job_survives_a_worker_killed_with_kill_9() {
    let Some(server) = or_skip(MariaDbServer::start()) else {
        return;
    };
    three_workers_one_killed_process_every_id(&server.url());
}

// --- creating a huge job is O(1) ------------------------------------------------------------

/// `create_job` over 10^12 ids in blocks of 1000 stores one job and no task, and takes
/// well under 100 ms; the CLI's `job create` says so too.
fn creating_a_huge_job_is_one_record(url: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = wrangle::connect(url).await.unwrap();
        let job = wrangle::jobs::NewJob::range("huge", "scan", 0, 1_000_000_000_000, 1000);
        let started = Instant::now();
        wrangle::jobs::create(&store, job).await.unwrap();
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(100),
            "create_job took {took:?}"
        );
        let tasks = store
            .list_tasks(wrangle::TaskFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(tasks.is_empty(), "a new job created tasks: {tasks:?}");
        assert!(
            store
                .queue_stats(chrono::Utc::now())
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.list_jobs().await.unwrap().len(), 1);
        eprintln!("{url}: create_job over 10^12 ids took {took:?}");
    });
    let sandbox = Sandbox::on(url);
    let started = Instant::now();
    let out = sandbox.ok(&[
        "job",
        "create",
        "huge2",
        "--range",
        "0..1000000000000",
        "--block",
        "1000",
        "--kind",
        "scan",
    ]);
    eprintln!(
        "{url}: `wrangle job create` process took {:?}",
        started.elapsed()
    );
    assert!(out.contains("1000000000 blocks"), "{out}");
    let progress = sandbox.json(&["job", "status", "huge2"]);
    assert_eq!(
        progress["waiting"]["blocks"], 1_000_000_000u64,
        "{progress}"
    );
    assert_eq!(progress["total"]["ids"], 1_000_000_000_000u64, "{progress}");
}

#[test]
fn sqlite_creating_a_job_over_10_to_the_12_ids_is_one_record() {
    let sandbox = Sandbox::sqlite();
    creating_a_huge_job_is_one_record(sandbox.store());
}

#[test]
fn postgres_creating_a_job_over_10_to_the_12_ids_is_one_record() {
    let Some(server) = or_skip(PostgresServer::start()) else {
        return;
    };
    creating_a_huge_job_is_one_record(&server.url());
}

#[test]
fn redis_creating_a_job_over_10_to_the_12_ids_adds_a_constant_number_of_keys() {
    let Some(server) = or_skip(RedisServer::start()) else {
        return;
    };
    let dbsize = || {
        let out = Command::new("redis-cli")
            .args(["-p", &server.port().to_string(), "dbsize"])
            .output()
            .expect("redis-cli");
        text(&out.stdout).trim().parse::<u64>().expect("dbsize")
    };
    // The store's own keys (script cache, counters) exist once it is opened.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(wrangle::connect(&server.url())).unwrap();
    let before = dbsize();
    creating_a_huge_job_is_one_record(&server.url());
    let added = dbsize() - before;
    assert!(added <= 6, "two huge jobs added {added} keys");
}

#[test]
fn mariadb_creating_a_job_over_10_to_the_12_ids_is_one_record() {
    let Some(server) = or_skip(MariaDbServer::start()) else {
        return;
    };
    creating_a_huge_job_is_one_record(&server.url());
}

// --- failures, retry, status, list jobs, bad input (SQLite) ------------------------------

#[test]
fn a_block_that_always_fails_ends_dead_and_job_retry_runs_only_it() {
    let mut sandbox = Sandbox::sqlite();
    std::fs::write(sandbox.path("fail-7"), "").unwrap();
    sandbox.ok(&[
        "job",
        "create",
        "j",
        "--range",
        "0..10",
        "--kind",
        "scan",
        "--retries",
        "2",
    ]);
    let handler = recording_handler("effects", "0");
    sandbox.spawn_worker("w", &["--exec", &handler, "-n", "2", "--backoff", "10ms"]);
    assert_eq!(
        sandbox.follow("j", Duration::from_secs(60)),
        1,
        "a block failed for good"
    );
    let progress = sandbox.json(&["job", "status", "j"]);
    assert_eq!(progress["status"], "failed", "{progress}");
    assert_eq!(progress["failed"]["blocks"], 1, "{progress}");
    assert_eq!(progress["done"]["blocks"], 9, "{progress}");
    let dead = sandbox.json(&["tasks", "list", "--job", "j", "--state", "dead"]);
    let dead = dead.as_array().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["payload"]["start"], 7);
    assert_eq!(
        dead[0]["attempts"].as_array().unwrap().len(),
        3,
        "1 + 2 retries"
    );
    let human = sandbox.ok(&["job", "status", "j"]);
    assert!(human.contains("job j: failed"), "{human}");

    std::fs::remove_file(sandbox.path("fail-7")).unwrap();
    let out = sandbox.ok(&["job", "retry", "j"]);
    assert!(out.contains("1 dead blocks"), "{out}");
    assert_eq!(sandbox.follow("j", Duration::from_secs(60)), 0);
    sandbox.stop_workers();
    let mut runs: Vec<i64> = recorded_blocks(&sandbox, "effects")
        .into_iter()
        .map(|(start, _)| start)
        .collect();
    runs.sort_unstable();
    assert_eq!(
        runs,
        (0..10).collect::<Vec<_>>(),
        "each block ran to the end once"
    );
    let progress = sandbox.json(&["job", "status", "j"]);
    assert_eq!(progress["status"], "completed", "{progress}");
    assert_eq!(progress["done"]["ids"], 10, "{progress}");
    // The retried block's history: three failures, then the success after the retry.
    let done = sandbox.json(&["tasks", "list", "--job", "j"]);
    let block7 = done
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["payload"]["start"] == 7)
        .unwrap();
    assert_eq!(block7["attempts"].as_array().unwrap().len(), 4);
}

#[test]
fn job_status_follow_draws_a_live_bar_with_rate_and_eta_and_json_agrees() {
    let mut sandbox = Sandbox::sqlite();
    sandbox.ok(&[
        "job", "create", "slow", "--range", "0..3000", "--block", "100", "--kind", "k",
    ]);
    sandbox.spawn_worker(
        "w",
        &[
            "--exec",
            "sh -c 'sleep 0.2; echo block $WRANGLE_START'",
            "-n",
            "2",
            "--output",
            "out",
        ],
    );
    let screen = on_a_terminal(
        &sandbox,
        &["job", "status", "slow", "--follow", "--interval", "200ms"],
    );
    assert!(screen.contains("ETA"), "{screen}");
    assert!(screen.contains("/s  ETA"), "{screen}");
    assert!(
        screen.contains("/3,000 ids") || screen.contains("/3000 ids"),
        "{screen}"
    );
    let redraws = screen.matches("/s  ETA").count();
    assert!(redraws >= 3, "the bar was drawn {redraws} times:\n{screen}");
    assert!(screen.contains("job slow: completed"), "{screen}");

    // The human report and --json give the same numbers.
    let json = sandbox.json(&["job", "status", "slow"]);
    let human = sandbox.ok(&["job", "status", "slow"]);
    let done_line = human
        .lines()
        .find(|l| l.trim_start().starts_with("done"))
        .unwrap();
    let numbers: Vec<&str> = done_line.split_whitespace().collect();
    assert_eq!(
        numbers[1],
        json["done"]["blocks"].to_string(),
        "{human}\n{json}"
    );
    assert_eq!(
        numbers[3],
        json["done"]["ids"].to_string(),
        "{human}\n{json}"
    );
    let list = sandbox.json(&["job", "list"]);
    assert_eq!(list[0]["done"], json["done"]);
    let status = sandbox.json(&["status"]);
    assert_eq!(status["jobs"][0]["job"]["name"], "slow");

    // DScript's output directory: per-block files under out/JOB/ and a log of outcomes.
    sandbox.stop_workers();
    let log = std::fs::read_to_string(sandbox.path("out/slow/blocks.log")).unwrap();
    assert_eq!(log.lines().count(), 30, "{log}");
    assert!(log.contains(" 2900-3000 task="), "{log}");
    let stdout = std::fs::read_to_string(sandbox.path("out/slow/0-100.stdout")).unwrap();
    assert_eq!(stdout, "block 0\n");
    // Silent streams leave no files.
    assert!(!sandbox.path("out/slow/0-100.stderr").exists());
}

/// What `wrangle ARGS` draws on a pseudo-terminal (`script`), as a user's shell sees it.
fn on_a_terminal(sandbox: &Sandbox, args: &[&str]) -> String {
    let out = Command::new("script")
        .args(["-qfec", &sandbox.shell_command(args), "/dev/null"])
        .current_dir(sandbox.dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", text(&out.stdout));
    text(&out.stdout)
}

#[test]
fn long_commands_show_progress_on_a_terminal() {
    let mut sandbox = Sandbox::sqlite();
    let payloads: String = (0..3000).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    std::fs::write(sandbox.path("payloads.jsonl"), &payloads).unwrap();
    // submit --batch: a bar over the payloads it checks, a spinner while they enqueue.
    let screen = on_a_terminal(
        &sandbox,
        &[
            "submit",
            "doomed",
            "--batch",
            "payloads.jsonl",
            "--retries",
            "0",
        ],
    );
    assert!(screen.contains("/3000 payloads"), "{screen}");
    assert!(screen.contains("enqueueing 3,000 tasks"), "{screen}");
    // Off a terminal only the ids are printed, and nothing on stderr.
    let plain = sandbox.run(&["submit", "k", "--batch", "payloads.jsonl", "-q", "other"]);
    assert!(
        plain.status.success() && plain.stderr.is_empty(),
        "{plain:?}"
    );
    assert_eq!(text(&plain.stdout).lines().count(), 3000);

    // job create --items: the items enqueued so far.
    let items: String = (0..2500).map(|i| format!("{i}\n")).collect();
    std::fs::write(sandbox.path("items.txt"), &items).unwrap();
    let screen = on_a_terminal(
        &sandbox,
        &[
            "job",
            "create",
            "list",
            "--items",
            "items.txt",
            "--kind",
            "k",
            "-q",
            "other",
        ],
    );
    assert!(screen.contains("/2500 items"), "{screen}");
    assert!(screen.contains("created job list"), "{screen}");

    // tasks retry --dead: the dead tasks moved so far, out of the queue counts.
    sandbox.spawn_worker("w", &["--exec", "false", "-n", "4", "-q", "default"]);
    sandbox.wait_until("3000 dead tasks", Duration::from_secs(90), || {
        sandbox.count("dead") == 3000
    });
    sandbox.stop_workers();
    let screen = on_a_terminal(&sandbox, &["tasks", "retry", "--dead"]);
    assert!(screen.contains("/3000 tasks"), "{screen}");
    assert!(
        screen.contains("3000 dead task(s) will run again"),
        "{screen}"
    );

    // submit --wait: the task's state as it goes.
    sandbox.spawn_worker("slow", &["--exec", "sleep 1.5", "-q", "naps"]);
    let screen = on_a_terminal(&sandbox, &["submit", "nap", "-q", "naps", "--wait"]);
    assert!(screen.contains("running (attempt 1 of"), "{screen}");
    sandbox.stop_workers();
}

#[test]
fn list_jobs_run_each_item_once_and_creating_again_adds_nothing() {
    let mut sandbox = Sandbox::sqlite();
    std::fs::write(sandbox.path("items.txt"), "a\nb b\n\nc\n").unwrap();
    let created = sandbox.ok(&["job", "create", "l", "--items", "items.txt", "--kind", "k"]);
    assert!(created.contains("3 blocks"), "{created}");
    // Creating it again (an interrupted create, rerun) adds nothing.
    sandbox.ok(&["job", "create", "l", "--items", "items.txt", "--kind", "k"]);
    sandbox.spawn_worker(
        "w",
        &["--exec", "sh -c 'echo \"$1\" >> seen' _ {}", "-n", "2"],
    );
    assert_eq!(sandbox.follow("l", Duration::from_secs(60)), 0);
    sandbox.stop_workers();
    let mut seen: Vec<String> = std::fs::read_to_string(sandbox.path("seen"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    seen.sort();
    assert_eq!(seen, ["a", "b b", "c"]);
    let out = sandbox.run(&["job", "create", "l", "--items", "-", "--kind", "other"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a different job of the same name"
    );
}

#[test]
fn cancel_stops_a_job_and_bad_input_exits_2() {
    let mut sandbox = Sandbox::sqlite();
    sandbox.ok(&["job", "create", "c", "--range", "0..1000000", "--kind", "k"]);
    sandbox.spawn_worker("w", &["--exec", "sh -c 'sleep 0.05'", "-n", "2"]);
    std::thread::sleep(Duration::from_millis(500));
    let out = sandbox.ok(&["job", "cancel", "c"]);
    assert!(out.contains("cancelled job c"), "{out}");
    assert_eq!(
        sandbox.follow("c", Duration::from_secs(30)),
        1,
        "a cancelled job"
    );
    let progress = sandbox.json(&["job", "status", "c"]);
    assert_eq!(progress["status"], "cancelled", "{progress}");
    assert!(
        progress["done"]["blocks"].as_u64().unwrap() < 1000,
        "{progress}"
    );
    sandbox.stop_workers();

    for args in [
        vec!["job", "create", "x", "--range", "5..1", "--kind", "k"],
        vec![
            "job", "create", "x", "--range", "0..9", "--block", "0", "--kind", "k",
        ],
        vec!["job", "create", "x", "--range", "zero..9", "--kind", "k"],
        vec!["job", "create", "x", "--kind", "k"],
        vec![
            "job",
            "create",
            "x",
            "--items",
            "missing.txt",
            "--kind",
            "k",
        ],
        vec!["job", "create", "c", "--range", "0..9", "--kind", "k"],
        vec!["job", "status", "nope"],
        vec!["job", "retry", "nope"],
        vec!["job", "cancel", "nope"],
        vec!["job", "delete", "nope"],
        vec!["job", "status", "c", "--follow", "--interval", "soon"],
    ] {
        sandbox.usage_error(&args);
    }
    for args in [
        vec!["job", "--help"],
        vec!["job", "create", "--help"],
        vec!["job", "status", "--help"],
        vec!["job", "list", "--help"],
        vec!["job", "cancel", "--help"],
        vec!["job", "retry", "--help"],
        vec!["job", "delete", "--help"],
    ] {
        let help = sandbox.ok(&args);
        assert!(
            help.contains("Example") || args.len() == 2,
            "{args:?}:\n{help}"
        );
    }
}

/// A runner-protocol handler, loaded once per runner process, gets each block's job, start
/// and end as request fields; two processes serve every block of the job.
/// DScript's slave set `RAILS_ENV` for every runner: `[kinds.X] env` and `cwd` reach a
/// kind's commands and its runner processes, `worker --env` reaches every kind (a kind's
/// own value wins), and a `cwd` that is not a directory stops the worker at start.
#[test]
fn kind_env_and_cwd_reach_commands_and_runner_processes() {
    let mut sandbox = Sandbox::sqlite();
    std::fs::create_dir(sandbox.path("app")).unwrap();
    let app = sandbox.path("app").canonicalize().unwrap();
    let app = app.to_str().unwrap();
    std::fs::write(
        sandbox.path("runner.py"),
        r#"import json, os, sys
for line in sys.stdin:
    request = json.loads(line)
    seen = [os.environ.get("RAILS_ENV"), os.environ.get("SHARED"), os.getcwd()]
    print(json.dumps({"id": request["id"], "ok": True, "result": " ".join(seen)}), flush=True)
"#,
    )
    .unwrap();
    let runner = sandbox.path("runner.py");
    std::fs::write(
        sandbox.path("wrangle.toml"),
        format!(
            r#"[kinds.shell]
exec = ["sh", "-c", "echo $RAILS_ENV $SHARED $(pwd)"]
env = {{ RAILS_ENV = "production" }}
cwd = "app"
[kinds.py]
runner = ["python3", "{}"]
env = {{ RAILS_ENV = "staging", SHARED = "kind" }}
cwd = "app"
"#,
            runner.display()
        ),
    )
    .unwrap();
    sandbox.spawn_worker(
        "w",
        &[
            "--env",
            "SHARED=worker",
            "--env",
            "RAILS_ENV=development",
            "--exec",
            "sh -c 'echo $RAILS_ENV $SHARED $(pwd)'",
        ],
    );
    let result = |kind: &str| sandbox.ok(&["submit", kind, "--wait"]).trim().to_string();
    assert_eq!(result("shell"), format!("production worker {app}"));
    assert_eq!(result("py"), format!("staging kind {app}"));
    let here = sandbox.dir.path().canonicalize().unwrap();
    assert_eq!(
        result("other"),
        format!("development worker {}", here.display())
    );
    sandbox.stop_workers();

    std::fs::write(
        sandbox.path("wrangle.toml"),
        "[kinds.shell]\nexec = [\"true\"]\ncwd = \"missing\"\n",
    )
    .unwrap();
    let err = sandbox.usage_error(&["worker"]);
    assert!(err.contains("cwd 'missing' is not a directory"), "{err}");
    let err = sandbox.usage_error(&["worker", "--exec", "true", "--env", "1X=y"]);
    assert!(err.contains("invalid environment variable name"), "{err}");
}

/// DScript's `run(start_id, end_id, output)` wrote each block's output to the output
/// directory: a runner kind's block does the same with `--output`, its output lines and
/// result in `START-END.stdout`, progress reports in `START-END.progress`, and one
/// `blocks.log` line per attempt (a block that failed once shows both attempts).
#[test]
fn a_runner_kinds_blocks_write_their_output_files_and_blocks_log() {
    let mut sandbox = Sandbox::sqlite();
    std::fs::write(
        sandbox.path("runner.py"),
        r#"import json, sys
for line in sys.stdin:
    r = json.loads(line)
    say = lambda message: print(json.dumps(dict(id=r["id"], **message)), flush=True)
    for i in range(r["start"], r["end"]):
        say({"output": f"id {i}"})
    say({"progress": 0.5})
    if r["start"] == 30 and r["attempt"] == 1:
        say({"ok": False, "error": "flaky block"})
    else:
        say({"ok": True, "result": f"block {r['start']}"})
"#,
    )
    .unwrap();
    std::fs::write(
        sandbox.path("wrangle.toml"),
        "[kinds.scan]\nrunner = [\"python3\", \"runner.py\"]\n",
    )
    .unwrap();
    sandbox.ok(&[
        "job",
        "create",
        "r",
        "--range",
        "0..50",
        "--block",
        "10",
        "--kind",
        "scan",
        "--retries",
        "2",
    ]);
    sandbox.spawn_worker("w", &["-n", "2", "--output", "out", "--backoff", "100ms"]);
    assert_eq!(sandbox.follow("r", Duration::from_secs(60)), 0);
    sandbox.stop_workers();
    let dir = sandbox.path("out/r");
    for start in (0..50).step_by(10) {
        let stem = format!("{start}-{}", start + 10);
        let stdout = std::fs::read_to_string(dir.join(format!("{stem}.stdout"))).unwrap();
        let mut expected: Vec<String> = (start..start + 10).map(|i| format!("id {i}")).collect();
        expected.push(format!("block {start}"));
        assert_eq!(stdout.lines().collect::<Vec<_>>(), expected, "{stem}");
        let progress = std::fs::read_to_string(dir.join(format!("{stem}.progress"))).unwrap();
        assert!(progress.trim_end().ends_with(" 0.5"), "{stem}: {progress}");
        // The retried block's files are its last attempt's: no error left behind.
        assert!(!dir.join(format!("{stem}.stderr")).exists(), "{stem}");
    }
    let log = std::fs::read_to_string(dir.join("blocks.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 6, "{log}");
    assert!(
        log.contains("30-40 task=") && log.contains("attempt=1 failed: flaky block"),
        "{log}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.ends_with(" ok")).count(),
        5,
        "{log}"
    );
}

#[test]
fn runner_protocol_handlers_get_the_block_and_load_once() {
    let mut sandbox = Sandbox::sqlite();
    std::fs::write(
        sandbox.path("runner.py"),
        r#"import json, os, sys
for line in sys.stdin:
    request = json.loads(line)
    with open("effects", "a") as out:
        out.write(f"{request['start']} {request['end']} {os.getpid()} {request['job']}\n")
    print(json.dumps({"id": request["id"], "ok": True, "result": request["end"] - request["start"]}), flush=True)
"#,
    )
    .unwrap();
    std::fs::write(
        sandbox.path("wrangle.toml"),
        "[kinds.scan]\nrunner = [\"python3\", \"runner.py\"]\n",
    )
    .unwrap();
    sandbox.ok(&[
        "job", "create", "r", "--range", "0..5000", "--block", "50", "--kind", "scan",
    ]);
    sandbox.spawn_worker("w", &["-n", "2"]);
    assert_eq!(sandbox.follow("r", Duration::from_secs(60)), 0);
    sandbox.stop_workers();
    let lines = std::fs::read_to_string(sandbox.path("effects")).unwrap();
    let mut starts = Vec::new();
    let mut pids = std::collections::BTreeSet::new();
    for line in lines.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (start, end): (i64, i64) = (fields[0].parse().unwrap(), fields[1].parse().unwrap());
        assert_eq!(end - start, 50, "{line}");
        assert_eq!(fields[3], "r", "{line}");
        starts.push(start);
        pids.insert(fields[2].to_string());
    }
    starts.sort_unstable();
    assert_eq!(starts, (0..100).map(|b| b * 50).collect::<Vec<_>>());
    assert!(pids.len() <= 2, "runner processes: {pids:?}");
}

/// `job delete` removes a running job and all its tasks, in every state, while a worker
/// runs its blocks; the worker carries on with other work, and a job of the same name can
/// be created again.
#[test]
fn delete_removes_a_running_job_and_all_its_tasks() {
    let mut sandbox = Sandbox::sqlite();
    sandbox.ok(&[
        "job",
        "create",
        "d",
        "--range",
        "0..1000000",
        "--block",
        "100",
        "--kind",
        "k",
    ]);
    sandbox.spawn_worker("w", &["--exec", "sh -c 'sleep 0.05'", "-n", "2"]);
    sandbox.wait_until("some blocks done", Duration::from_secs(30), || {
        sandbox.json(&["job", "status", "d"])["done"]["blocks"].as_u64() > Some(3)
    });
    let out = sandbox.json(&["job", "delete", "d"]);
    assert!(out["deleted_tasks"].as_u64().unwrap() > 3, "{out}");
    let listed = sandbox.json(&["tasks", "list", "--job", "d"]);
    assert_eq!(listed.as_array().unwrap().len(), 0, "{listed}");
    sandbox.usage_error(&["job", "status", "d"]);
    // The worker goes on: a plain task still runs, and the name is free again.
    let id = sandbox.submit("k", "{}", "default");
    sandbox.wait_for_state(id, "completed", Duration::from_secs(30));
    sandbox.ok(&["job", "create", "d", "--range", "0..10", "--kind", "k"]);
    assert_eq!(
        sandbox.follow("d", Duration::from_secs(30)),
        0,
        "the new job d"
    );
    sandbox.stop_workers();
}
