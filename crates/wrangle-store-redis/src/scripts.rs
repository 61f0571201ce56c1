//! The Lua scripts behind every operation that must be atomic: each is
//! `lua/common.lua` (key names and shared task moves), then any other shared files it
//! needs (`lua/int64.lua`: exact 64-bit arithmetic), then the operation's own file,
//! loaded once into a [`redis::Script`], which calls it by hash (EVALSHA) and loads it
//! again when the server forgot it (NOSCRIPT after a restart).

use redis::Script;

/// Builds the script for the last file with `lua/common.lua` and the files before it in
/// front.
macro_rules! script {
    ($($file:literal),+) => {
        Script::new(concat!(
            include_str!("lua/common.lua"),
            $(include_str!(concat!("lua/", $file))),+
        ))
    };
}

/// Every script the store runs.
pub(crate) struct Scripts {
    pub(crate) enqueue: Script,
    pub(crate) claim: Script,
    pub(crate) complete: Script,
    pub(crate) heartbeat: Script,
    pub(crate) rescue: Script,
    pub(crate) retry: Script,
    pub(crate) retry_dead: Script,
    pub(crate) cancel: Script,
    pub(crate) cancel_tasks: Script,
    pub(crate) retry_tasks: Script,
    pub(crate) prune_finished: Script,
    pub(crate) list_tasks: Script,
    pub(crate) create_job: Script,
    pub(crate) list_jobs: Script,
    pub(crate) cancel_job: Script,
    pub(crate) job_tallies: Script,
    pub(crate) queue_stats: Script,
    pub(crate) send_command: Script,
    pub(crate) pending_commands: Script,
    pub(crate) ack_command: Script,
    pub(crate) prune_workers: Script,
    pub(crate) append_logs: Script,
    pub(crate) take_turn: Script,
    pub(crate) delete_job: Script,
    pub(crate) upgrade_layout: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Scripts {
            enqueue: script!("enqueue.lua"),
            claim: script!("int64.lua", "claim.lua"),
            complete: script!("complete.lua"),
            heartbeat: script!("heartbeat.lua"),
            rescue: script!("rescue.lua"),
            retry: script!("retry.lua"),
            retry_dead: script!("retry_dead.lua"),
            cancel: script!("cancel.lua"),
            cancel_tasks: script!("cancel_tasks.lua"),
            retry_tasks: script!("retry_tasks.lua"),
            prune_finished: script!("prune_finished.lua"),
            list_tasks: script!("list_tasks.lua"),
            create_job: script!("create_job.lua"),
            list_jobs: script!("list_jobs.lua"),
            cancel_job: script!("cancel_job.lua"),
            job_tallies: script!("job_tallies.lua"),
            queue_stats: script!("queue_stats.lua"),
            send_command: script!("send_command.lua"),
            pending_commands: script!("pending_commands.lua"),
            ack_command: script!("ack_command.lua"),
            prune_workers: script!("prune_workers.lua"),
            append_logs: script!("append_logs.lua"),
            take_turn: script!("take_turn.lua"),
            delete_job: script!("delete_job.lua"),
            upgrade_layout: script!("upgrade_layout.lua"),
        }
    }
}
