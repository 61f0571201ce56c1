//! The command-line grammar. Every command's `--help` ends with examples.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// How long `workers scale|reload|stop` (and the console's) wait for the worker's
/// acknowledgement by default.
pub(crate) const ACK_WAIT: &str = "10s";

/// wrangle runs work in parallel: on this machine with no infrastructure, or across many
/// machines through a shared store.
#[derive(Debug, Parser)]
#[command(name = "wrangle", version, about, long_about = None, arg_required_else_help = true,
    after_help = "\
Examples:
  seq 1 100 | wrangle run -n 4 -- echo {}                 # in the foreground, nothing to set up
  wrangle worker --exec 'sh -c \"echo hello $WRANGLE_PAYLOAD\"' &
  wrangle submit greet '{\"name\":\"ada\"}' --wait
  wrangle status

Every command has --help with examples. The store is sqlite://.wrangle/wrangle.db unless
--store URL, $WRANGLE_STORE or store = \"...\" in wrangle.toml says otherwise.")]
pub(crate) struct Cli {
    /// `--store`, `--config` and `--json` given before the command (`wrangle --store URL
    /// status`); each command offers the ones it uses, so they are not shown here.
    #[command(flatten)]
    pub(crate) early: EarlyArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The store options written before the command, accepted for the commands that use them.
#[derive(Debug, Default, Args)]
pub(crate) struct EarlyArgs {
    #[arg(long, hide = true, value_name = "URL")]
    pub(crate) store: Option<String>,
    #[arg(long, hide = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    #[arg(long, hide = true)]
    pub(crate) json: bool,
}

/// Where the store is: what every command that opens one accepts.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct StoreArgs {
    /// Store URL: sqlite://PATH (default sqlite://.wrangle/wrangle.db), postgres://..., redis://..., mysql://..., memory:// [env: WRANGLE_STORE]
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) store: Option<String>,
    /// Config file (default: ./wrangle.toml when present)
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
}

/// `--json`, for the commands that print something a script may read.
#[derive(Debug, Clone, Copy, Default, Args)]
pub(crate) struct JsonArg {
    /// Machine-readable JSON output
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a command over many items in parallel, in the foreground (like GNU parallel)
    #[command(after_help = "\
Examples:
  seq 1 10000 | wrangle run -n 4 -- echo {}              # items from stdin lines
  wrangle run gzip -9 {} ::: a.log b.log c.log           # items after :::
  wrangle run --range 0..1000000 --block 10000 -- ./scan {start} {end}
  wrangle run --items urls.txt --retries 3 --timeout 30s -- curl -fsS {}
  wrangle run --dispatch 'find . -name *.png' --keep-order -- identify {}
  wrangle run --runner 'python3 handler.py' -n 2 < items.txt   # one process per runner, loaded once
  wrangle run --journal run.db --items big.txt -- ./convert {}  # Ctrl-C, then rerun to resume

Placeholders in argv, as GNU parallel spells them: {} the item (a range block's
start..end), {.} without extension, {/} file name, {//} directory, {/.} file name without
extension, {N} (and {N.} {N/} {N//} {N/.}) argument N of an item from several input
sources, --colsep or -N, {start} {end}, {#} its sequence number (also {id}), {%} the job
slot (1 to -n), {attempt}. Without any placeholder, the item's arguments are appended. A
misspelled placeholder is an error; ${VAR} and braces around other text ({print $1}) are
passed as written. No shell is involved; for pipes and redirections use --shell, which
hands the item to the script as $1, $2…

Input sources: ::: ITEMS and :::: FILES; several give every combination (the last varying
fastest), and :::+ / ::::+ pair with the source before instead:
  wrangle run echo {1}-{2} ::: a b ::: 1 2         # a-1 a-2 b-1 b-2
  wrangle run cp {1} {2} :::: from.txt ::::+ to.txt  # line by line
  wrangle run --colsep , echo {2} :::: table.csv    # columns of each line
  find . -print0 | wrangle run -0 --shell 'wc -c < \"$1\"'
  wrangle run --halt now,fail=1 --joblog jobs.tsv ./test {} ::: 1 2 3

Output is grouped per item unless --line-buffer.
Ctrl-C once: stop starting items, let running ones finish; twice: kill them.
Exit code: 0 all items succeeded, 1 some failed, 2 bad usage, 130 interrupted.")]
    Run(RunArgs),
    /// Enqueue a task, and optionally wait for its result
    #[command(after_help = "\
Examples:
  wrangle submit resize '{\"file\":\"a.png\"}'             # prints the task id
  wrangle submit echo '{\"x\":1}' --wait                    # prints the result; exit 1 if it failed
  wrangle submit report '{}' --delay 10m --retries 5 -q reports
  wrangle submit mail '{\"to\":\"a@b\"}' --unique mail-a@b   # submitting twice enqueues once
  seq 3 | jq -c '{n: .}' | wrangle submit square --batch -  # one task per line, all or nothing")]
    Submit(SubmitArgs),
    /// Claim and run tasks from the store
    #[command(after_help = "\
Examples:
  wrangle worker --exec 'convert {} -resize 50% out/{id}.png' -n 4
  wrangle worker -q mail,reports --config wrangle.toml --name mail-1
  wrangle worker --exec 'python3 job.py' --output logs/ --shutdown-timeout 2m
  wrangle worker --exec ./handle.sh --metrics 127.0.0.1:9187         # Prometheus at /metrics
  wrangle worker --pool 'mail=2:reports,exports=1:*=1' --name box-1
  wrangle worker -q scans --autoscale 1..8 --max-runner-memory 512M
  wrangle worker --config wrangle.toml --env RAILS_ENV=production   # for every kind

The command gets the payload as {} in argv, as $WRANGLE_PAYLOAD and on stdin; no shell
is involved unless you run one. SIGTERM/SIGINT stop claiming and let running tasks
finish (within --shutdown-timeout), then hand unfinished ones back; a second SIGINT
stops at once. SIGHUP reloads wrangle.toml and restarts runner processes after their
current tasks; SIGTTIN/SIGTTOU add/remove one runner (first pool group). From any
machine: wrangle workers scale|reload|stop|log NAME, and wrangle tasks log ID for a
task's output as it runs.")]
    Worker(WorkerArgs),
    /// Registered workers; scale, reload or stop one from any machine (through the store)
    #[command(after_help = "\
Examples:
  wrangle workers list
  wrangle workers scale box-1 mail=4                 # pool group mail of worker box-1
  wrangle workers reload box-1                       # re-read wrangle.toml, restart runners
  wrangle workers stop box-1                         # running tasks finish first")]
    Workers(WorkersArgs),
    /// Named jobs over id ranges or item lists, run by every worker that serves their queue
    #[command(after_help = "\
Examples:
  wrangle job create backfill --range 0..11000000 --block 1000 --kind scan
  wrangle job status backfill --follow
  wrangle job list
  wrangle job retry backfill                         # its dead blocks run again
  wrangle job cancel backfill")]
    Job(JobArgs),
    /// Queues (depth by state, oldest waiting task, throughput), workers and jobs
    #[command(after_help = "\
Examples:
  wrangle status
  wrangle status --json | jq '.queues[] | {queue, counts}'
  wrangle status --store postgres://db.internal/jobs

LEASED counts tasks the store holds as claimed by a worker: running now, or finished with
their outcome about to be written (workers write outcomes in batches). EXECUTING is what the
workers report running right now (as of their last heartbeat). DONE/MIN and FAILED/MIN are
attempts that ended in the last minute; OLDEST is how long the oldest due task has waited.")]
    Status(StatusArgs),
    /// List, inspect, retry and cancel tasks
    #[command(after_help = "\
Examples:
  wrangle tasks list --state dead --limit 20
  wrangle tasks show 42
  wrangle tasks retry --dead                         # every dead task runs again
  wrangle tasks cancel 42")]
    Tasks(TasksArgs),
    /// Pause and resume queues (workers stop claiming from a paused queue)
    #[command(after_help = "\
Examples:
  wrangle queues pause mail                          # running tasks finish; nothing new starts
  wrangle queues resume mail")]
    Queues(QueuesArgs),
    /// Full-screen dashboard: workers and their runners, queue depths, job progress, throughput
    #[command(after_help = "\
Examples:
  wrangle top
  wrangle top --interval 250ms
  wrangle top --store postgres://db/wrangle

Keys: Tab switches between the workers and queues panes, Up/Down select a row, +/- give
the selected pool group (or the selected worker's first group) one runner more/less,
p pauses or resumes the selected queue for every worker, r refreshes now, q, Esc or
Ctrl-C quit. A finished task also refreshes the screen early. Needs a terminal: with
stdout redirected it exits 2 (use `wrangle status` or `wrangle status --json` there).")]
    Top(TopArgs),
    /// HTTP API over the store (JSON, OpenAPI at /api/openapi.json)
    #[command(after_help = "\
Examples:
  wrangle serve                                     # http://127.0.0.1:7077, no token on loopback
  wrangle serve --bind 0.0.0.0:7077 --token-file /etc/wrangle/token
  WRANGLE_TOKEN=s3cret wrangle serve --bind 10.0.0.5:7077 --read-only-token-file ro.token
  curl -s localhost:7077/api/tasks -d '{\"kind\":\"echo\",\"payload\":{\"x\":1}}' -H 'content-type: application/json'
  curl -s localhost:7077/api/tasks/1/wait?timeout=30s   # 200 once final, 202 if not yet

Any bind address other than loopback needs a token (--token-file or $WRANGLE_TOKEN):
requests send it as `Authorization: Bearer TOKEN`. A read-only token (--read-only-token-file
or $WRANGLE_READ_ONLY_TOKEN) may read everything and change nothing. /healthz and /readyz
need no token. Errors are JSON problem objects; bad input is a 4xx. SIGTERM or Ctrl-C stops
accepting connections and finishes the requests in flight.")]
    Serve(ServeArgs),
    /// Interactive shell over the store: status, scale, reload, pause, retry, tail, ...
    #[command(after_help = "\
Examples:
  wrangle console                                   # type help at the prompt
  echo status | wrangle console                     # commands from a pipe, for scripts
  printf 'pause mail\\nscale box-1 mail=4\\nresume mail\\n' | wrangle console
  echo 'tail 1m' | wrangle console > events.log     # task events for one minute

Commands: status [WORKER], workers, jobs, job NAME, task ID, scale WORKER [QUEUE=]N,
pool WORKER, reload WORKER, stop WORKER, pause QUEUE, resume QUEUE, retry ID, cancel ID,
tail [DURATION], help, exit (or quit, Ctrl-D). Tab completes command, worker, queue and
job names; history is kept in .wrangle/console_history.

tail follows task events (started, completed, failed, dead, ...) until Ctrl-C, or for
DURATION when given; Ctrl-C ends tail (or a slow command) and returns to the prompt. With
--json, tail prints one JSON object per event and the other commands print JSON as their
one-shot equivalents do.

From a pipe (stdin not a terminal) commands are read line by line with no prompt; blank
lines and lines starting with # are skipped. There tail runs for its DURATION, or until
SIGINT/SIGTERM, then the next command runs. A bad command prints one `error:` line and
the next one runs. Exit code: 0 when every command succeeded, 1 otherwise, 130 when
interrupted outside tail.")]
    Console(ConsoleArgs),
    /// Print a shell's completion script for wrangle (bash, zsh, fish, elvish, powershell)
    #[command(after_help = "\
Examples:
  source <(wrangle completions bash)                         # this shell only
  wrangle completions bash > ~/.local/share/bash-completion/completions/wrangle
  wrangle completions zsh > \"${fpath[1]}/_wrangle\"
  wrangle completions fish > ~/.config/fish/completions/wrangle.fish

Completes commands, options and the values an option takes from a fixed list.")]
    Completions(CompletionsArgs),
    /// Write wrangle's manual pages (one per command), or print one
    #[command(after_help = "\
Examples:
  wrangle man | man -l -                                     # wrangle(1), read now
  wrangle man job create | man -l -                          # wrangle-job-create(1)
  wrangle man --dir ~/.local/share/man/man1                  # every page; then: man wrangle-run

The pages are made from the same definitions as --help, so they never disagree with it.")]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// The command whose page to print (none: wrangle itself)
    #[arg(value_name = "COMMAND")]
    pub(crate) command: Vec<String>,
    /// Write every page into DIR (wrangle.1, wrangle-run.1, wrangle-job-create.1, ...)
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub(crate) dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) json: JsonArg,
}

#[derive(Debug, Args)]
pub(crate) struct ConsoleArgs {
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) json: JsonArg,
}

#[derive(Debug, Args)]
pub(crate) struct TasksArgs {
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) json: JsonArg,
    #[command(subcommand)]
    pub(crate) command: TasksCommand,
}

#[derive(Debug, Args)]
pub(crate) struct QueuesArgs {
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) json: JsonArg,
    #[command(subcommand)]
    pub(crate) command: QueuesCommand,
}

#[derive(Debug, Args)]
pub(crate) struct JobArgs {
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) json: JsonArg,
    #[command(subcommand)]
    pub(crate) command: JobCommand,
}

#[derive(Debug, Args)]
pub(crate) struct WorkersArgs {
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) json: JsonArg,
    #[command(subcommand)]
    pub(crate) command: WorkersCommand,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:7077", value_name = "ADDR")]
    pub(crate) bind: String,
    /// File holding the full-access token (else $WRANGLE_TOKEN)
    #[arg(long, value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// File holding a read-only token (else $WRANGLE_READ_ONLY_TOKEN)
    #[arg(long, value_name = "FILE")]
    pub(crate) read_only_token_file: Option<PathBuf>,
    /// Time between two samples of the dashboard's charts (it keeps the last 360)
    #[arg(long, default_value = "10s", value_name = "DUR")]
    pub(crate) history_every: String,
}

#[derive(Debug, Args)]
pub(crate) struct TopArgs {
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    /// Time between refreshes
    #[arg(long, default_value = "1s", value_name = "DUR")]
    pub(crate) interval: String,
}

#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) json: JsonArg,
    /// Task kind (which handler runs it)
    pub(crate) kind: String,
    /// Payload JSON, or - to read it from stdin
    pub(crate) payload: Option<String>,
    /// Queue
    #[arg(short = 'q', long, default_value = "default")]
    pub(crate) queue: String,
    /// Start no earlier than this from now (e.g. 30s, 10m)
    #[arg(long, conflicts_with = "at")]
    pub(crate) delay: Option<String>,
    /// Start no earlier than this time (RFC 3339, e.g. 2026-12-01T09:00:00Z)
    #[arg(long)]
    pub(crate) at: Option<String>,
    /// Retries after a failed first attempt (default: the kind's in wrangle.toml, else 3)
    #[arg(long)]
    pub(crate) retries: Option<u32>,
    /// Time limit for one attempt (e.g. 30s)
    #[arg(long)]
    pub(crate) timeout: Option<String>,
    /// Priority; higher runs first
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub(crate) priority: i32,
    /// Idempotency key: submitting again with it returns the existing task
    #[arg(long)]
    pub(crate) unique: Option<String>,
    /// Wait for the task to finish; print its result (exit 0) or error (exit 1)
    #[arg(long)]
    pub(crate) wait: bool,
    /// Give up waiting after this long (exit 1)
    #[arg(long, requires = "wait")]
    pub(crate) wait_timeout: Option<String>,
    /// Enqueue one task per line of JSON payloads from FILE (or - for stdin), all or nothing
    #[arg(long, value_name = "FILE", conflicts_with_all = ["payload", "unique", "wait"])]
    pub(crate) batch: Option<String>,
    /// Largest payload accepted (compact JSON): pass a path or URL to bigger data
    #[arg(long, value_name = "SIZE", default_value = "8M")]
    pub(crate) max_payload: String,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Runners: items processed at once (default: number of CPUs)
    #[arg(
        short = 'n',
        long = "jobs",
        visible_short_alias = 'j',
        value_name = "N"
    )]
    pub(crate) jobs: Option<usize>,
    /// Read items from FILE, one per line (- for stdin)
    #[arg(
        short = 'a',
        long,
        visible_alias = "arg-file",
        value_name = "FILE",
        conflicts_with_all = ["range", "dispatch"]
    )]
    pub(crate) items: Option<PathBuf>,
    /// Items are separated by NUL bytes instead of newlines (find -print0)
    #[arg(short = '0', long)]
    pub(crate) null: bool,
    /// Split each item into columns at this regular expression: {1}, {2}… are the columns
    #[arg(long, value_name = "REGEX", conflicts_with_all = ["range", "max_args"])]
    pub(crate) colsep: Option<String>,
    /// Give each command N items at once as {1}…{N} ({} is all of them); 0 runs it once per item with none
    #[arg(short = 'N', long, value_name = "N", conflicts_with = "range")]
    pub(crate) max_args: Option<usize>,
    /// Items are the ids START..END (end exclusive), in blocks of --block ids
    #[arg(long, value_name = "START..END", conflicts_with = "dispatch")]
    pub(crate) range: Option<String>,
    /// Ids per range block (one item per block)
    #[arg(long, value_name = "SIZE", requires = "range")]
    pub(crate) block: Option<u64>,
    /// Items are the stdout lines of CMD, read as it runs (bounded memory)
    #[arg(long, value_name = "CMD")]
    pub(crate) dispatch: Option<String>,
    /// Send items to long-lived runner processes speaking JSON lines (see docs/runner-protocol.md)
    #[arg(long, value_name = "CMD")]
    pub(crate) runner: Option<String>,
    /// Items sent ahead to each runner process before it answers (pipelining)
    #[arg(long, value_name = "N", default_value_t = 32, requires = "runner")]
    pub(crate) runner_in_flight: usize,
    /// Retries of a failed item
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub(crate) retries: u32,
    /// Time limit per attempt (e.g. 30s); the whole process group is killed
    #[arg(long, value_name = "DUR")]
    pub(crate) timeout: Option<String>,
    /// First retry delay; doubles per attempt (with jitter)
    #[arg(long, default_value = "1s", value_name = "DUR")]
    pub(crate) backoff: String,
    /// Print output lines as they come (whole lines, never mixed) instead of per item
    #[arg(long, conflicts_with_all = ["keep_order", "output"])]
    pub(crate) line_buffer: bool,
    /// Prefix each output line with its item and a tab
    #[arg(long)]
    pub(crate) tag: bool,
    /// Print items' output in input order
    #[arg(short = 'k', long, conflicts_with = "output")]
    pub(crate) keep_order: bool,
    /// Write each item's stdout and stderr to DIR/SEQ.stdout and DIR/SEQ.stderr instead of printing
    #[arg(long, value_name = "DIR")]
    pub(crate) output: Option<PathBuf>,
    /// Record outcomes in this SQLite file; rerunning with it skips the items already done
    #[arg(long, value_name = "FILE")]
    pub(crate) journal: Option<PathBuf>,
    /// Show a progress bar on stderr (default: when stderr is a terminal)
    #[arg(long, overrides_with = "no_progress")]
    pub(crate) progress: bool,
    /// Never show a progress bar
    #[arg(long)]
    pub(crate) no_progress: bool,
    /// Stop early: now|soon,fail|success|done=N|P% (GNU parallel's --halt), e.g. now,fail=1
    #[arg(long, value_name = "WHEN,WHY=N")]
    pub(crate) halt: Option<String>,
    /// Wait at least DUR between starting one item and the next (e.g. 0.5s)
    #[arg(long, value_name = "DUR")]
    pub(crate) delay: Option<String>,
    /// Print each command that would run, quoted for a shell, instead of running it
    #[arg(long, conflicts_with = "runner")]
    pub(crate) dry_run: bool,
    /// Append a line per attempt to FILE in GNU parallel's joblog format (tab-separated)
    #[arg(long, value_name = "FILE")]
    pub(crate) joblog: Option<PathBuf>,
    /// Run SCRIPT with sh for each item, the item's values as $1, $2… (never put into the script's text)
    #[arg(long, value_name = "SCRIPT", conflicts_with = "runner")]
    pub(crate) shell: Option<String>,
    /// Print the summary as JSON on stderr
    #[arg(long)]
    pub(crate) json: bool,
    /// The command and its arguments (everything from the first word that is not one of
    /// the options above, or after --); `::: ITEM...` (or `:::: FILE`) after it gives the items
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub(crate) command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct WorkerArgs {
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    #[command(flatten)]
    pub(crate) json: JsonArg,
    /// Serve Prometheus metrics at http://ADDR/metrics: attempts' run times and outcomes per queue and kind, store round trips, errors and latency, runner restarts
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics: Option<String>,
    /// Queues to claim from, comma-separated; * for all
    #[arg(short = 'q', long, default_value = "*")]
    pub(crate) queues: String,
    /// Pool of runner groups, QUEUES=N separated by ':' (resque-pool's spec), e.g. 'mail=2:reports,exports=1:*=1'; overrides -q/-n and [pool] in wrangle.toml
    #[arg(long, value_name = "SPEC")]
    pub(crate) pool: Option<String>,
    /// Grow each group's runners while its queues back up (and the machine has room), shrink when idle
    #[arg(long, value_name = "MIN..MAX")]
    pub(crate) autoscale: Option<String>,
    /// Time between autoscaling decisions
    #[arg(long, value_name = "DUR", default_value = "1s", requires = "autoscale")]
    pub(crate) autoscale_interval: String,
    /// Autoscaling adds runners only while the 1-minute load per CPU is below this
    #[arg(
        long,
        value_name = "LOAD",
        default_value_t = 1.5,
        requires = "autoscale"
    )]
    pub(crate) autoscale_max_load: f64,
    /// Replace a runner process (after its current task) whose resident memory grows past SIZE, e.g. 512M
    #[arg(long, value_name = "SIZE")]
    pub(crate) max_runner_memory: Option<String>,
    /// Runner slots: tasks running at once (default: number of CPUs)
    #[arg(short = 'n', long)]
    pub(crate) runners: Option<usize>,
    /// Command run for every task kind without its own [kinds.NAME] in the config
    #[arg(long, value_name = "CMD")]
    pub(crate) exec: Option<String>,
    /// Set an environment variable for every kind's commands and runner processes (repeatable; a kind's own env wins)
    #[arg(long, value_name = "NAME=VALUE")]
    pub(crate) env: Vec<String>,
    /// Worker name, unique across the store (default HOST-PID)
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Write each task's output and errors to DIR/ID.stdout and DIR/ID.stderr (a job's block: DIR/JOB/START-END.*, and DIR/JOB/blocks.log)
    #[arg(long, value_name = "DIR")]
    pub(crate) output: Option<PathBuf>,
    /// Keep completed tasks this long, then prune them (e.g. 1d, 12h; "forever" keeps them). Default: [retention] completed in wrangle.toml, else 1d
    #[arg(long, value_name = "DUR")]
    pub(crate) keep_completed: Option<String>,
    /// Keep at most N completed tasks across all queues, pruning the oldest first (on top of --keep-completed; a job's tasks count but are kept). Default: [retention] completed_max, else no limit
    #[arg(long, value_name = "N")]
    pub(crate) keep_completed_max: Option<u64>,
    /// Keep dead tasks this long ("forever" keeps them). Default: [retention] dead, else 30d
    #[arg(long, value_name = "DUR")]
    pub(crate) keep_dead: Option<String>,
    /// Keep cancelled tasks this long ("forever" keeps them). Default: [retention] cancelled, else 7d
    #[arg(long, value_name = "DUR")]
    pub(crate) keep_cancelled: Option<String>,
    /// How often the pruner runs (one worker of the store at a time). Default: [retention] interval, else 1m
    #[arg(long, value_name = "DUR")]
    pub(crate) prune_every: Option<String>,
    /// Lines kept in the store of this worker's own log and of each task's output (the newest; 0 keeps none). Followed with `workers log` and `tasks log`
    #[arg(long, default_value_t = wrangle::logs::DEFAULT_LOG_LINES, value_name = "N")]
    pub(crate) log_lines: usize,
    /// How long SIGTERM/SIGINT waits for running tasks before handing them back
    #[arg(long, default_value = "30s")]
    pub(crate) shutdown_timeout: String,
    /// Lease length: a worker silent this long is presumed dead and its tasks rerun
    #[arg(long, default_value = "30s")]
    pub(crate) lease: String,
    /// First retry delay; doubles per attempt (with jitter)
    #[arg(long, default_value = "1s")]
    pub(crate) backoff: String,
    /// Most tasks claimed per store round trip
    #[arg(long, default_value_t = 100)]
    pub(crate) batch_size: usize,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TasksCommand {
    /// List tasks, newest first
    #[command(after_help = "\
Examples:
  wrangle tasks list --state dead
  wrangle tasks list -q mail --limit 20 --json")]
    List {
        /// Only tasks in this state (scheduled, available, running, retryable, completed, dead, cancelled)
        #[arg(long)]
        state: Option<String>,
        /// Only tasks on this queue
        #[arg(short = 'q', long)]
        queue: Option<String>,
        /// Only tasks of this job
        #[arg(long)]
        job: Option<String>,
        /// Most tasks shown
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show one task with every attempt (worker, times, error, backoff)
    #[command(after_help = "Example:\n  wrangle tasks show 42")]
    Show {
        /// Task id
        id: i64,
    },
    /// Run a dead, cancelled, retryable or scheduled task again now
    #[command(after_help = "\
Examples:
  wrangle tasks retry 42
  wrangle tasks retry --dead -q mail     # every dead task of queue mail")]
    Retry {
        /// Task id
        #[arg(required_unless_present = "dead", conflicts_with = "dead")]
        id: Option<i64>,
        /// Retry every dead task
        #[arg(long)]
        dead: bool,
        /// With --dead: only this queue
        #[arg(short = 'q', long, requires = "dead")]
        queue: Option<String>,
    },
    /// Cancel a task that has not finished (a running one is stopped by its worker)
    #[command(after_help = "Example:\n  wrangle tasks cancel 42")]
    Cancel {
        /// Task id
        id: i64,
    },
    /// Delete finished tasks now (completed, dead, cancelled; a job's tasks are kept)
    #[command(after_help = "\
Examples:
  wrangle tasks prune --older-than 1h                  # every finished task older than an hour
  wrangle tasks prune --state dead --older-than 30d

Workers prune by themselves as [retention] in wrangle.toml says (completed after 1d,
dead after 30d, cancelled after 7d by default); this is the operator's own sweep.")]
    Prune {
        /// Only tasks that finished longer ago than this
        #[arg(long, default_value = "0s", value_name = "DUR")]
        older_than: String,
        /// Only tasks in this state: completed, dead or cancelled (default: all three)
        #[arg(long, value_name = "STATE")]
        state: Option<String>,
    },
    /// A task's output (stdout, stderr, and how each attempt ended), from wherever it runs
    #[command(after_help = "\
Examples:
  wrangle tasks log 42                 # what the store keeps of its output
  wrangle tasks log 42 --follow        # and new lines as they are written, until it ends
  wrangle tasks log 42 --last 20 --json

The store keeps the newest lines of each task (wrangle worker --log-lines, 1000 by
default) until the task is pruned; whole outputs belong in files (wrangle worker
--output DIR). Standard error lines are printed to standard error.")]
    Log {
        /// Task id
        id: i64,
        #[command(flatten)]
        view: LogViewArgs,
    },
}

/// How `tasks log` and `workers log` show a log.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct LogViewArgs {
    /// Keep showing new lines as they arrive (a task's: until it has finished)
    #[arg(short, long)]
    pub(crate) follow: bool,
    /// Start with only the newest N kept lines
    #[arg(short = 'n', long, value_name = "N")]
    pub(crate) last: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum QueuesCommand {
    /// Stop workers claiming from a queue
    #[command(after_help = "Example:\n  wrangle queues pause mail")]
    Pause {
        /// Queue name
        queue: String,
    },
    /// Let workers claim from a paused queue again
    #[command(after_help = "Example:\n  wrangle queues resume mail")]
    Resume {
        /// Queue name
        queue: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum JobCommand {
    /// Create a job over ids START..END in blocks, or over the lines of a file
    #[command(after_help = "\
Examples:
  wrangle job create backfill --range 0..11000000 --block 1000 --kind scan
  wrangle job create thumbs --items images.txt --kind thumbnail -q media --retries 5
  find . -name '*.log' | wrangle job create logs --items - --kind gzip

A range job costs one record however large its range: workers create its blocks as they
claim them. A block's handler sees {start} {end} in argv, $WRANGLE_START $WRANGLE_END and
$WRANGLE_JOB in its environment, and {\"start\":S,\"end\":E} as payload. A list job has one
task per line; creating it again after an interruption adds only the missing items.")]
    Create(JobCreateArgs),
    /// Progress of a job: blocks and ids done, failed, running, waiting; rate and ETA
    #[command(after_help = "\
Examples:
  wrangle job status backfill
  wrangle job status backfill --follow             # live bar until the job ends
  wrangle job status backfill --json | jq .done

With --follow the exit code is 0 only if every block completed (1 if some failed for
good or the job was cancelled); with --json --follow one JSON object per refresh.")]
    Status {
        /// Job name
        name: String,
        /// Redraw until the job ends
        #[arg(long)]
        follow: bool,
        /// Time between refreshes with --follow
        #[arg(long, default_value = "1s", value_name = "DUR")]
        interval: String,
        /// Show a progress bar with --follow (default: when stderr is a terminal)
        #[arg(long, overrides_with = "no_progress")]
        progress: bool,
        /// Never show a progress bar
        #[arg(long)]
        no_progress: bool,
    },
    /// List jobs with their progress
    #[command(after_help = "Examples:\n  wrangle job list\n  wrangle job list --json")]
    List,
    /// Cancel a job: no new blocks, unfinished blocks cancelled (running ones stopped)
    #[command(after_help = "Example:\n  wrangle job cancel backfill")]
    Cancel {
        /// Job name
        name: String,
    },
    /// Run a job's dead blocks again (only those)
    #[command(after_help = "Example:\n  wrangle job retry backfill")]
    Retry {
        /// Job name
        name: String,
    },
    /// Delete a job and all its tasks, whatever their state (running ones are stopped)
    #[command(after_help = "\
Example:
  wrangle job delete backfill

A job's tasks are kept by retention (its progress is counted from them) until the job is
deleted. Interrupted, the job makes no more blocks; run the command again to finish.")]
    Delete {
        /// Job name
        name: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct JobCreateArgs {
    /// Job name, unique in the store
    pub(crate) name: String,
    /// Ids START..END (end exclusive)
    #[arg(long, value_name = "START..END", required_unless_present = "items")]
    pub(crate) range: Option<String>,
    /// Ids per block
    #[arg(long, value_name = "SIZE", default_value_t = 1, requires = "range")]
    pub(crate) block: i64,
    /// One task per line of FILE (- for stdin)
    #[arg(long, value_name = "FILE", conflicts_with = "range")]
    pub(crate) items: Option<PathBuf>,
    /// Task kind of its blocks (which handler runs them)
    #[arg(long)]
    pub(crate) kind: String,
    /// Queue
    #[arg(short = 'q', long, default_value = "default")]
    pub(crate) queue: String,
    /// Retries of a failed block (default: the kind's in wrangle.toml, else 3)
    #[arg(long)]
    pub(crate) retries: Option<u32>,
    /// Time limit for one attempt of a block (e.g. 5m)
    #[arg(long, value_name = "DUR")]
    pub(crate) timeout: Option<String>,
    /// Priority of its blocks; higher runs first
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub(crate) priority: i32,
}

#[derive(Debug, Subcommand)]
pub(crate) enum WorkersCommand {
    /// Workers with their pool groups, runners and tasks (lost ones marked)
    #[command(after_help = "Examples:\n  wrangle workers list\n  wrangle workers list --json")]
    List,
    /// Set a worker's runners: N (one-group worker) or QUEUES=N (a pool group; a new one is added)
    #[command(after_help = "\
Examples:
  wrangle workers scale box-1 8
  wrangle workers scale box-1 mail=3        # group 'mail' of its pool
  wrangle workers scale box-1 mail=1        # removed runners finish their tasks first")]
    Scale {
        /// Worker name
        worker: String,
        /// N or QUEUES=N
        target: String,
        /// How long to wait for the worker's acknowledgement
        #[arg(long, default_value = ACK_WAIT, value_name = "DUR")]
        wait: String,
    },
    /// Restart a worker's runner processes after their current tasks, re-reading wrangle.toml
    #[command(
        after_help = "Examples:\n  wrangle workers reload box-1\n  wrangle workers reload box-1 --runner 2   # only runner 2's process, new code, same config"
    )]
    Reload {
        /// Worker name
        worker: String,
        /// Replace only this runner's process (its number in `wrangle status WORKER`), without re-reading wrangle.toml
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        runner: Option<u32>,
        /// How long to wait for the worker's acknowledgement
        #[arg(long, default_value = ACK_WAIT, value_name = "DUR")]
        wait: String,
    },
    /// Stop a worker gracefully: no new claims, running tasks finish
    #[command(after_help = "Example:\n  wrangle workers stop box-1")]
    Stop {
        /// Worker name
        worker: String,
        /// How long to wait for the worker's acknowledgement
        #[arg(long, default_value = ACK_WAIT, value_name = "DUR")]
        wait: String,
    },
    /// A worker's own log lines, from any machine
    #[command(after_help = "\
Examples:
  wrangle workers log box-1
  wrangle workers log box-1 --follow --last 50   # like tail -f, until Ctrl-C

The store keeps the newest lines of each worker's log (wrangle worker --log-lines, 1000
by default) while the worker is registered: they go when it stops cleanly or is pruned
as lost.")]
    Log {
        /// Worker name
        worker: String,
        #[command(flatten)]
        view: LogViewArgs,
    },
}
