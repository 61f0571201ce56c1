//! wrangle's core: everything that is wrangle's own and does no I/O.
//!
//! - [`task`]: the task model and its state machine (which transitions are legal).
//! - [`retention`]: how long finished tasks are kept before a worker prunes them.
//! - [`retry`]: the retry/backoff policy that decides when a failed attempt runs again.
//! - [`parse`]: parsers for user input (durations, times, payload JSON, store URLs), each
//!   returning an [`InputError`] with one clear line, so every front end reports bad input
//!   the same way.
//! - [`placeholder`]: the `{}`, `{.}`, `{1}`, `{#}`… of command templates, as GNU
//!   parallel spells them.
//! - [`halt`]: when a foreground run stops early (GNU parallel's `--halt`).
//! - [`connect`]: opening a store ([`Open`]: create it or only open an existing one) and
//!   the one wording of connection failures every server store reports.
//! - [`store`]: the [`Store`] trait, the one seam between the engine and every backend
//!   (SQLite, in-memory, PostgreSQL, Redis, MySQL), with its request/response types.
//! - [`job`]: range and list jobs: lazy blocks and progress.
//! - [`log`]: bounded log rings of workers and tasks, kept in the store.
//! - [`pool`]: worker pool specs and the autoscaling policy.
//! - [`notify`]: in-process wake-ups every store builds its listeners on.
//! - [`stored`]: epoch-millisecond times and attempt records as the SQL stores keep them.
//! - [`worker`]: what a worker tells the store about itself, and the control commands sent
//!   to it through the store.
//!
//! Time is always passed in (`now` fields), never read here, so that stores and the
//! conformance suite can be driven by a fake clock.

pub mod connect;
pub mod halt;
pub mod job;
pub mod log;
pub mod notify;
pub mod parse;
pub mod placeholder;
pub mod pool;
pub mod retention;
pub mod retry;
pub mod store;
pub mod stored;
pub mod task;
pub mod worker;

pub use connect::{ConnectCause, ConnectFailure, Open};
pub use job::{BlockTally, Job, JobKind, JobProgress, JobStatus, JobTallies, NewJob};
pub use log::{LogAppend, LogLine, LogOwner, LogSource, NewLogLine};
pub use parse::InputError;
pub use retry::RetryPolicy;
pub use store::{
    ClaimRequest, ClaimedTask, Completion, CompletionStatus, CountingStore, Enqueued, Heartbeat,
    HeartbeatReply, JobDeletion, Listener, Outcome, PruneRequest, QueueFilter, QueueStats, Store,
    StoreError, StoreInfo, TaskFilter, Topic,
};
pub use task::{AttemptRecord, NewTask, Task, TaskId, TaskState};
pub use worker::{
    CommandEnvelope, CommandId, ControlCommand, GroupInfo, ProcessInfo, WorkerInfo, WorkerRecord,
};
